"""Methods: :func:`create_method` and :func:`list_methods` over the registry, and
:class:`LearnedMethod`, the method object of every engine-trained task.

A method object is what the harness evaluates: ``fit(manifest=, store=, run=)`` then
``features(images)`` (and ``recover(images)`` if ``produces_images``), with ``name``,
``init`` and ``feature_dim``. Hand-crafted methods (``hist``, ``lomo-xqda``) are registered
as such objects; engine tasks (``benchmark.tasks.Task`` subclasses) are wrapped in a
:class:`LearnedMethod`, which builds the task's config from the run's profile and the task's
preset, and caches the trained model in the result store.
"""

from __future__ import annotations

from pathlib import Path

import torch
from rich.console import Console

import baselines  # noqa: F401  (registers the baselines)

from . import tasks  # noqa: F401  (registers CAD-Net's presets)
from .config import CacheMode, RunConfig
from .engine import TrainData, load_checkpoint, save_checkpoint
from .provenance import atomic_write_json, is_main_process
from .registry import UnknownMethod, entry, registered
from .store import MODEL_CODE_VERSION, MissingResult, ResultStore, read_json
from .tasks import Task

console = Console(stderr=True)


def list_methods() -> tuple[str, ...]:
    """Every registered method name, in registration order."""
    return tuple(registered())


def create_method(name: str):
    """A fresh method object for ``name``; :class:`benchmark.registry.UnknownMethod`
    (listing the known names) otherwise."""
    e = entry(name)
    if isinstance(e.cls, type) and issubclass(e.cls, Task):
        return LearnedMethod(name, e.cls, **e.options)
    return e.cls(**e.options)


def create_task(name: str, profile: str, num_classes: int, *, seed: int = 0, trial: int = 0,
                pretrained: str = "none", device: str = "cpu", **overrides):
    """Method ``name`` (an engine method) and its task as a run of ``profile`` builds it
    (the run's training seed for ``seed`` / ``trial``), with config ``overrides`` on top of
    the method's own. Returns ``(method object, task)``; the method's ``model`` is the
    task's, untrained."""
    from dataclasses import replace

    method = create_method(name)
    if not isinstance(method, LearnedMethod):
        raise UnknownMethod(f"{name!r} is not an engine-trained method; engine methods: "
                            + ", ".join(n for n in list_methods()
                                        if issubclass(entry(n).cls, Task)))
    from .profiles import get_profile

    run = RunConfig(datasets=[], methods=[name], data_root=Path("."), out=Path("."),
                    profile=profile, input_size=tuple(get_profile(profile).input_size),
                    pretrained=pretrained, seed=seed)
    config = replace(method.make_config(run, num_classes, trial), **overrides)
    task = method.make_task(config, device)
    method.model, method.init = task.model, task.model.init
    return method, task


class LearnedMethod:
    """An engine task class as a method: config, model cache, features, recovery."""

    trainable = True

    def __init__(self, name: str, task_cls: type[Task], preset=None) -> None:
        self.name, self.task_cls = name, task_cls
        self.preset = preset if preset is not None else task_cls.preset
        self.model = None
        self.init = None
        self.init_weights = None  # {"file", "sha256"} of the backbone init, None if random
        self.history: list[dict] = []
        self.reused = False

    # what the task class declares
    @property
    def produces_images(self) -> bool:
        return self.task_cls.produces_images

    @property
    def query_upsampling(self) -> str:
        return self.task_cls.query_upsampling

    @property
    def cache_name(self) -> str:
        """Models are cached under this name; methods sharing a model share it."""
        return self.task_cls.shares_model_with or self.name

    @property
    def feature_dim(self) -> int | None:
        return None if self.model is None else self.model.descriptor_dim

    def make_config(self, run: RunConfig, num_classes: int, trial: int):
        """The task's config: the run's profile merged with the task's preset and overrides."""
        from datasets.seeds import training_seed

        from .profiles import make_config

        overrides = {"input_size": tuple(run.input_size), "pretrained": run.pretrained,
                     "seed": training_seed(run.seed, trial), **self.task_cls.config_overrides}
        if run.lr_method != "bilinear" or self.preset != "authors-code":
            overrides["lr_method"] = run.lr_method  # authors-code keeps max-pool unless asked
        return make_config(run.profile, self.preset, num_classes=num_classes, **overrides)

    def config_key(self, run: RunConfig) -> dict:
        """The training config as result files record it (identity count and per-trial seed
        left out: the result key has the trial and the manifest hash)."""
        d = self.make_config(run, 0, 0).to_dict()
        for k in ("num_classes", "seed"):
            d.pop(k)
        return {"model_cache": self.cache_name, **d, **self._code_version()}

    def _code_version(self) -> dict:
        v = self.task_cls.code_version
        return {} if v is None else {"method_code_version": v}

    def make_task(self, config, device="cpu", sync_bn: bool = False) -> Task:
        return self.task_cls(config, device, sync_bn=sync_bn)

    def fit(self, *, manifest, store, run: RunConfig) -> None:
        """Train on the manifest's training rows, or load the cached model of the same key;
        an interrupted training resumes from its last finished epoch."""
        params = manifest.meta["params"]
        data = TrainData.from_manifest(manifest, store)
        config = self.make_config(run, data.num_classes, params["trial"])
        folder = ResultStore(run).model_folder(params["dataset"], self.cache_name,
                                               params["trial"])
        key = {"method": self.cache_name, "config": config.to_dict(),
               "manifest_sha256": manifest.meta["sha256"],
               "model_code_version": MODEL_CODE_VERSION, **self._code_version()}
        task = self.make_task(config, run.device, run.sync_bn)
        self.model, self.init = task.model, task.model.init
        self.init_weights = getattr(task.model, "init_weights", None)
        if run.compile:
            task.compile()
        final, key_file, ckpt = folder / "model.pt", folder / "key.json", folder / "checkpoint.pt"
        same_key = key_file.exists() and read_json(key_file, "a model key") == key
        if same_key and final.exists() and run.cache is not CacheMode.RETRAIN:
            self.model.load_state_dict(load_checkpoint(
                final, "delete it (and key.json) to train the model again, or pass --retrain"))
            self.history = read_json(folder / "history.json", "a training history")
            self.reused = True
            return
        if run.cache is CacheMode.STORED_ONLY:  # trains nothing: no usable cached model
            raise MissingResult(final)
        if not same_key or run.cache is CacheMode.RETRAIN:
            for f in (ckpt, final):  # another key's (or a forced) run: start from scratch
                f.unlink(missing_ok=True)
        atomic_write_json(key_file, key)
        label = f"{params['dataset']} trial {params['trial']} {self.name}"
        self.history = task.fit(data, checkpoint=ckpt, on_log=lambda s: log_progress(label, s))
        if is_main_process():
            save_checkpoint(final, self.model.state_dict())
        atomic_write_json(folder / "history.json", self.history)

    def _device(self):
        return next(self.model.parameters()).device

    def features(self, images: torch.Tensor) -> torch.Tensor:
        self.model.eval()
        return self.model.extract_features(images.to(self._device())).float().cpu()

    def recover(self, images: torch.Tensor) -> torch.Tensor:
        """The network's recovered image; for an interpolation-only method (``bicubic``)
        the up-sampled query itself (Table 2's no-learning reference row)."""
        if self.task_cls.recovered_is_query:
            return images.float().cpu()
        self.model.eval()
        return self.model.recover(images.to(self._device())).float().cpu()


def log_progress(label: str, s: dict) -> None:
    losses = " ".join(f"{k}={v:.3f}" for k, v in s["losses"].items())
    console.print(f"[dim]{label}[/] epoch {s['epoch']}/{s['epochs']} step {s['step']}/{s['steps']}"
                  f" {s['images_per_s']:.0f} img/s {losses}")


__all__ = ["LearnedMethod", "create_method", "create_task", "list_methods"]
