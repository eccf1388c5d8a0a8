"""Engine tasks and batches for the training benchmarks, built as the runner builds them.

:func:`make_task` is the one place that turns a method name into its engine task; the
benchmarks call nothing else of the method registry to build one.
"""

from __future__ import annotations

import torch


def engine_methods() -> tuple[str, ...]:
    """Names :func:`make_task` accepts: every registered engine-trained method."""
    from ..methods import LearnedMethod, create_method, list_methods

    return tuple(m for m in list_methods() if isinstance(create_method(m), LearnedMethod))


def make_task(profile: str, method: str, num_classes: int = 316):
    """The engine task of ``method`` as a run builds it, random init, on the CPU."""
    from ..methods import create_task

    return create_task(method, profile, num_classes)[1]


def random_batch(config, seed: int = 0):
    """One step's batch as the engine makes it, from random images in [0, 1]: P x K HR
    images, lr_batch LR images (synthetic LR of random targets at the profile's rates)."""
    from datasets.loader import make_lr

    from ..losses.cadnet import CrossResolutionBatch

    g = torch.Generator().manual_seed(seed)
    H, W = config.input_size
    k = config.instances_per_id

    def pids(n):
        return torch.randperm(config.num_classes, generator=g)[:n // k].repeat_interleave(k)

    hr = torch.rand(config.batch_size, 3, H, W, generator=g)
    target = torch.rand(config.lr_batch, 3, H, W, generator=g)
    rates = torch.tensor(config.lr_rates, dtype=torch.float64)[
        torch.randint(len(config.lr_rates), (config.lr_batch,), generator=g)]
    lr = make_lr(target, rates, config.lr_method)
    return CrossResolutionBatch(hr, pids(config.batch_size), lr, pids(config.lr_batch), target)
