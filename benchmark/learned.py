"""Learned methods on the shared engine: CAD-Net and its variants, with a model cache.

A trained model is cached under ``OUT/cache/models/<dataset>/<protocol>/<profile>/<method>/
seed<S>-trial<T>/`` with the key it was made from (method config, manifest hash, model code
version); tables and figures reuse it, ``--retrain`` forces training, and an interrupted
training resumes from the checkpoint of its last finished epoch.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from rich.console import Console

from .engine import GradientAveraging, TrainData, train, world
from .provenance import atomic_write_json, is_main_process

MODEL_CODE_VERSION = 1  # bump when a change to models/losses/engine invalidates cached models
console = Console(stderr=True)


class CADNetTask:
    """CAD-Net model + optimisers; one update per ``train_step`` (order in losses/cadnet.py)."""

    def __init__(self, config, device="cpu"):
        from .models import build_model, build_optimizers

        torch.manual_seed(config.seed)
        self.config, self.device = config, torch.device(device)
        # channels_last: ~1.6x faster convolutions on this CPU too (measured), and on CUDA
        self.model = build_model(config).to(self.device, memory_format=torch.channels_last)
        opts = build_optimizers(self.model, config)
        if world()[1] > 1:
            opts = type(opts)(*(GradientAveraging(o) if o is not None else None for o in opts))
        self.optimizers = opts

    def train_step(self, batch):
        from .losses.cadnet import cadnet_train_step

        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            return cadnet_train_step(self.model, self.optimizers, batch, self.config)

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(),
                "optimizers": {k: o.state_dict() for k, o in self.optimizers._asdict().items()
                               if o is not None}}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        for k, o in self.optimizers._asdict().items():
            if o is not None:
                o.load_state_dict(state["optimizers"][k])


def training_seed(seed: int, trial: int) -> int:
    return seed * 1000 + trial


class CADNetMethod:
    """Registered as ``cadnet``, ``cadnet-f``, ``cadnet-g``, the ablations and ``authors-code``."""

    trainable = True
    produces_images = True

    def __init__(self, preset: str = "cadnet"):
        self.name = self.preset = preset
        self.model = None
        self.init = None
        self.history: list[dict] = []

    def fit(self, *, manifest, store, cfg) -> None:
        from .profiles import make_config

        params = manifest.meta["params"]
        data = TrainData.from_manifest(manifest, store)
        overrides = {"input_size": tuple(cfg.input_size), "pretrained": cfg.pretrained,
                     "seed": training_seed(cfg.seed, params["trial"])}
        if cfg.lr_method != "bilinear" or self.preset != "authors-code":
            overrides["lr_method"] = cfg.lr_method
        config = make_config(cfg.profile, self.preset, num_classes=data.num_classes, **overrides)
        folder = (Path(cfg.out) / "cache" / "models" / params["dataset"] / params["protocol"]
                  / cfg.profile / self.name / f"seed{cfg.seed}-trial{params['trial']}")
        key = {"config": config.to_dict(), "manifest_sha256": manifest.meta["sha256"],
               "model_code_version": MODEL_CODE_VERSION}
        task = CADNetTask(config, cfg.device)
        self.model, self.init = task.model, task.model.init
        final, key_file = folder / "model.pt", folder / "key.json"
        retrain = bool(cfg.extra.get("retrain"))
        if not retrain and final.exists() and key_file.exists() \
                and json.loads(key_file.read_text()) == key:
            self.model.load_state_dict(torch.load(final, map_location=cfg.device, weights_only=True))
            self.history = json.loads((folder / "history.json").read_text())
            self.reused = True
            return
        ckpt = folder / "checkpoint.pt"
        if retrain or (key_file.exists() and json.loads(key_file.read_text()) != key):
            for f in (ckpt, final):
                f.unlink(missing_ok=True)
        atomic_write_json(key_file, key)
        label = f"{params['dataset']} trial {params['trial']} {self.name}"
        self.history = train(
            task, data, epochs=config.epochs, ids_per_batch=config.ids_per_batch,
            instances_per_id=config.instances_per_id,
            lr_batch_ids=(config.lr_batch // config.instances_per_id),
            lr_rates=config.lr_rates, lr_method=config.lr_method, seed=config.seed,
            checkpoint=ckpt, device=cfg.device, on_log=lambda s: log_progress(label, s))
        if is_main_process():
            torch.save(self.model.state_dict(), final.with_suffix(".tmp"))
            final.with_suffix(".tmp").replace(final)
        atomic_write_json(folder / "history.json", self.history)
        self.reused = False

    def features(self, images: torch.Tensor) -> torch.Tensor:
        self.model.eval()
        return self.model.extract_features(images.to(next(self.model.parameters()).device)).cpu()

    def recover(self, images: torch.Tensor) -> torch.Tensor:
        self.model.eval()
        return self.model.recover(images.to(next(self.model.parameters()).device)).cpu()


def log_progress(label: str, s: dict) -> None:
    losses = " ".join(f"{k}={v:.3f}" for k, v in s["losses"].items())
    console.print(f"[dim]{label}[/] epoch {s['epoch']}/{s['epochs']} step {s['step']}/{s['steps']}"
                  f" {s['images_per_s']:.0f} img/s {losses}")
