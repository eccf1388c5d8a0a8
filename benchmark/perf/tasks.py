"""Engine tasks and batches for the training benchmarks, built as the runner builds them.

:func:`make_task` is the one place that turns a method name into its engine task; the
benchmarks call nothing else of the method registry to build one.
"""

from __future__ import annotations

import importlib

import torch


class MethodUnavailable(RuntimeError):
    """The method's task class cannot be imported (its module is missing or broken)."""


def engine_methods() -> tuple[str, ...]:
    """Names :func:`make_task` accepts: the CAD-Net presets and the engine baselines."""
    from ..methods import _TASKS, CADNET_PRESETS

    return (*CADNET_PRESETS, *_TASKS)


def make_task(profile: str, method: str, num_classes: int = 316):
    """The engine task of ``method`` as the runner builds it, random init, on the CPU."""
    from ..learned import CADNetTask, TaskMethod
    from ..methods import _TASKS, CADNET_PRESETS, known_methods
    from ..profiles import make_config

    if method in CADNET_PRESETS:
        return CADNetTask(make_config(profile, method, num_classes=num_classes,
                                      pretrained="none"), "cpu")
    if method not in _TASKS:
        raise ValueError(f"{method!r} is not an engine-trained method; known: "
                         f"{', '.join(m for m in known_methods() if m in _TASKS or m in CADNET_PRESETS)}")
    module, attr = _TASKS[method].split(":")
    try:
        task_cls = getattr(importlib.import_module(module), attr)
    except Exception as e:  # a missing or half-written module: skip, say why
        raise MethodUnavailable(f"{module} not available ({type(e).__name__}: {e})") from e
    tm = TaskMethod(method, task_cls)
    config = make_config(profile, tm.preset, num_classes=num_classes, pretrained="none",
                         **tm.config_overrides)
    return tm.make_task(config, "cpu")


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
