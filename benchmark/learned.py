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

from .engine import GradientAveraging, TrainData, save_checkpoint, train, world
from .evaluation import query_upsampling
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


def compile_networks(model: torch.nn.Module) -> None:
    """``--compile``: torch.compile each top-level network of ``model`` in place (the
    parameters and state_dict keys stay the same, so checkpoints and the cache are shared
    with eager runs)."""
    for module in model.children():
        module.compile()


def training_seed(seed: int, trial: int) -> int:
    return seed * 1000 + trial


class LearnedMethod:
    """A method trained by the engine; subclasses say which task (model + update) to build.

    ``make_task(config, device)`` returns an object with ``model`` (an ``nn.Module`` with
    ``extract_features(x)``, and ``recover(x)`` if the method recovers HR images, and an
    ``init`` attribute), ``train_step(batch)``, ``state_dict()`` and ``load_state_dict()``.
    The config is :func:`benchmark.profiles.make_config` of the run's profile and the
    method's ``preset`` (so every method shares the profile's backbone, input size, batch,
    epochs and optimiser), plus the method's ``config_overrides``.
    """

    trainable = True
    produces_images = False
    preset = "cadnet"
    config_overrides: dict = {}
    #: version of the method's own model code, in its cache and result keys when set: bump
    #: it when the method's networks change in a way its config does not record
    code_version: int | None = None

    def __init__(self, name: str | None = None):
        self.name = name or self.name
        self.model = None
        self.init = None
        self.init_weights = None  # {"file", "sha256"} of the backbone init, None if random
        self.history: list[dict] = []
        self.reused = False

    @property
    def cache_name(self) -> str:
        """Models are cached under this name; methods sharing a model share it."""
        return self.name

    def make_task(self, config, device):
        raise NotImplementedError

    def make_config(self, cfg, num_classes: int, trial: int):
        from .profiles import make_config

        overrides = {"input_size": tuple(cfg.input_size), "pretrained": cfg.pretrained,
                     "seed": training_seed(cfg.seed, trial), **self.config_overrides}
        if cfg.lr_method != "bilinear" or self.preset != "authors-code":
            overrides["lr_method"] = cfg.lr_method  # authors-code keeps max-pool unless asked
        return make_config(cfg.profile, self.preset, num_classes=num_classes, **overrides)

    def config_key(self, cfg) -> dict:
        """The training config as the run's result files record it (identity count and
        per-trial seed left out: the result key has the trial and the manifest hash), so a
        changed profile or preset invalidates stored results as well as cached models."""
        d = self.make_config(cfg, 0, 0).to_dict()
        for k in ("num_classes", "seed"):
            d.pop(k)
        return {"model_cache": self.cache_name, **d, **self._code_version()}

    def _code_version(self) -> dict:
        return {} if self.code_version is None else {"method_code_version": self.code_version}

    def fit(self, *, manifest, store, cfg) -> None:
        params = manifest.meta["params"]
        data = TrainData.from_manifest(manifest, store)
        config = self.make_config(cfg, data.num_classes, params["trial"])
        folder = (Path(cfg.out) / "cache" / "models" / params["dataset"] / params["protocol"]
                  / cfg.profile / self.cache_name / f"seed{cfg.seed}-trial{params['trial']}")
        key = {"method": self.cache_name, "config": config.to_dict(),
               "manifest_sha256": manifest.meta["sha256"],
               "model_code_version": MODEL_CODE_VERSION, **self._code_version()}
        task = self.make_task(config, cfg.device)
        self.model, self.init = task.model, task.model.init
        self.init_weights = getattr(task.model, "init_weights", None)
        if cfg.extra.get("compile"):
            compile_networks(task.model)
        final, key_file, ckpt = folder / "model.pt", folder / "key.json", folder / "checkpoint.pt"
        same_key = key_file.exists() and json.loads(key_file.read_text()) == key
        if same_key and final.exists() and not cfg.extra.get("retrain"):
            self.model.load_state_dict(torch.load(final, map_location=cfg.device,
                                                  weights_only=True))
            self.history = json.loads((folder / "history.json").read_text())
            self.reused = True
            return
        if cfg.extra.get("stored_only"):  # trains nothing: no usable cached model
            from .runner import MissingResult

            raise MissingResult(final)
        if not same_key or cfg.extra.get("retrain"):
            for f in (ckpt, final):  # another key's (or a forced) run: start from scratch
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
            save_checkpoint(final, self.model.state_dict())
        atomic_write_json(folder / "history.json", self.history)

    def _device(self):
        return next(self.model.parameters()).device

    def features(self, images: torch.Tensor) -> torch.Tensor:
        self.model.eval()
        return self.model.extract_features(images.to(self._device())).float().cpu()

    def recover(self, images: torch.Tensor) -> torch.Tensor:
        self.model.eval()
        return self.model.recover(images.to(self._device())).float().cpu()


class CADNetMethod(LearnedMethod):
    """Registered as ``cadnet``, ``cadnet-f``, ``cadnet-g``, the ablations and ``authors-code``."""

    produces_images = True

    def __init__(self, preset: str = "cadnet"):
        super().__init__(preset)
        self.preset = preset

    def make_task(self, config, device):
        return CADNetTask(config, device)


def log_progress(label: str, s: dict) -> None:
    losses = " ".join(f"{k}={v:.3f}" for k, v in s["losses"].items())
    console.print(f"[dim]{label}[/] epoch {s['epoch']}/{s['epochs']} step {s['step']}/{s['steps']}"
                  f" {s['images_per_s']:.0f} img/s {losses}")


class TaskMethod(LearnedMethod):
    """A baseline given as a task class (``baselines/``): the class's attributes
    ``produces_images``, ``query_upsampling`` and ``config_overrides`` describe the method,
    and ``task_cls(config, device)`` builds its model and update."""

    def __init__(self, name: str, task_cls):
        super().__init__(name)
        self.task_cls = task_cls
        self.produces_images = getattr(task_cls, "produces_images", False)
        self.query_upsampling = query_upsampling(task_cls)
        self.recovered_is_query = getattr(task_cls, "recovered_is_query", False)
        self.config_overrides = dict(getattr(task_cls, "config_overrides", {}))
        self.code_version = getattr(task_cls, "code_version", None)
        self.preset = getattr(task_cls, "preset", "cadnet")
        self.shares_model_with = getattr(task_cls, "shares_model_with", None)

    @property
    def cache_name(self) -> str:
        return self.shares_model_with or self.name

    def make_task(self, config, device):
        return self.task_cls(config, device)

    def recover(self, images: torch.Tensor) -> torch.Tensor:
        """The network's recovered image, or, for an interpolation-only method (``bicubic``),
        the up-sampled query itself: Table 2's no-learning reference row."""
        if self.recovered_is_query:
            return images.float().cpu()
        return super().recover(images)
