"""The task base class: one method's networks, optimisers and training update.

A *task* is what the engine trains (``benchmark.engine.train``). :class:`Task` owns what
every method does the same way: seeding, the device, the channels-last memory format,
SyncBatchNorm (an option under ``torchrun``), the gradient averaging across processes, bf16
autocast on CUDA, the optimiser container (a dict, name -> optimiser) and ``state_dict``.
A method overrides only what differs, as torchreid's engines override ``forward_backward``:

* :meth:`Task.build_model` the networks (an ``nn.Module`` with ``extract_features``, and
  ``recover`` if the method recovers HR images);
* :meth:`Task.build_optimizers` which parameters each optimiser updates;
* :meth:`Task.forward_backward` one training update from a batch.

Class attributes declare what the method can do: ``produces_images`` (it recovers HR
images: Table 2, Figure 3), ``query_upsampling`` (how an LR query is resized back to the
input size), ``recovered_is_query`` (its "recovered" image is the up-sampled query itself),
``shares_model_with`` (it reuses another method's trained model), ``preset`` (the method
half of its config, :class:`benchmark.profiles.Method` or a CAD-Net preset name),
``config_overrides`` and ``code_version`` (bump when its networks change in a way its config
does not record: cached models and stored results are then not reused).

:class:`CADNetTask` is CAD-Net's task, registered under every CAD-Net preset name
(:data:`benchmark.profiles.CADNET_PRESETS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from .engine import GradientAveraging, TrainData, train, world
from .losses import as_batch
from .profiles import CADNET_PRESETS, CADNetConfig
from .registry import register_method


class Task:
    """Networks + optimisers + one update; see the module docstring for what to override."""

    produces_images: bool = False
    query_upsampling: str = "bilinear"
    recovered_is_query: bool = False
    shares_model_with: str | None = None
    preset: object = "cadnet"
    config_overrides: Mapping = {}
    code_version: int | None = None

    def __init__(self, config: CADNetConfig, device="cpu", *, sync_bn: bool = False):
        torch.manual_seed(config.seed)
        self.config, self.device = config, torch.device(device)
        model = self.build_model(config)
        if sync_bn and world()[1] > 1:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        # channels_last: faster convolutions on CPU (measured: reference NOTES.md) and on CUDA
        self.model = model.to(self.device, memory_format=torch.channels_last)
        opts = {k: o for k, o in self.build_optimizers(self.model, config).items()
                if o is not None}
        if world()[1] > 1:
            opts = {k: GradientAveraging(o) for k, o in opts.items()}
        self.optimizers: dict[str, torch.optim.Optimizer] = opts

    # -- what a method overrides -------------------------------------------------------
    def build_model(self, config: CADNetConfig) -> nn.Module:
        raise NotImplementedError

    def build_optimizers(self, model: nn.Module, config: CADNetConfig) -> dict:
        raise NotImplementedError

    def forward_backward(self, batch) -> dict[str, torch.Tensor]:
        """One update from ``batch`` (a ``CrossResolutionBatch``): forward, backward and the
        optimiser steps, in the method's order; returns its losses."""
        raise NotImplementedError

    # -- the same for every method -----------------------------------------------------
    def autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda")

    def train_step(self, batch) -> dict[str, torch.Tensor]:
        """One update in train mode (under autocast on CUDA); losses detached, no host sync."""
        self.model.train()
        with self.autocast():
            losses = self.forward_backward(as_batch(batch))
        return {k: v.detach() for k, v in losses.items()}

    def step(self, loss: torch.Tensor, *names: str) -> None:
        """Zero the gradients of optimisers ``names``, back-propagate ``loss``, step them."""
        opts = [self.optimizers[n] for n in names]
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for opt in opts:
            opt.step()

    def compile(self) -> None:
        """``--compile``: torch.compile each top-level network of the model in place (the
        parameters and state_dict keys stay the same, so checkpoints and the model cache
        are shared with eager runs)."""
        for module in self.model.children():
            module.compile()

    def fit(self, data: TrainData, *, epochs: int | None = None, checkpoint: Path | None = None,
            on_log=None, history: list[dict] | None = None) -> list[dict]:
        """Train with the config's batch composition, rates and seed for ``epochs`` (default
        the config's); see :func:`benchmark.engine.train` for resuming and ``history``."""
        c = self.config
        return train(self, data, epochs=c.epochs if epochs is None else epochs,
                     ids_per_batch=c.ids_per_batch, instances_per_id=c.instances_per_id,
                     lr_batch_ids=c.lr_batch // c.instances_per_id, lr_rates=c.lr_rates,
                     lr_method=c.lr_method, seed=c.seed, checkpoint=checkpoint,
                     device=self.device, on_log=on_log, history=history)

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(),
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])


class CADNetTask(Task):
    """CAD-Net: model and optimisers from ``benchmark.models``; the update is
    :func:`benchmark.losses.cadnet_train_step` (E/G/F/C, then D_F, then D_I)."""

    produces_images = True

    def build_model(self, config):
        from .models import build_model

        return build_model(config)

    def build_optimizers(self, model, config):
        from .models import build_optimizers

        return build_optimizers(model, config)

    def forward_backward(self, batch):
        from .losses.cadnet import cadnet_train_step

        return cadnet_train_step(self.model, self.optimizers, batch, self.config)


for _preset in CADNET_PRESETS:
    register_method(_preset, preset=_preset)(CADNetTask)

__all__ = ["CADNetTask", "Task"]
