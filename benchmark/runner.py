"""Run methods over datasets and trials, resumable: one result file per (method, trial).

The loop reads top to bottom: for each dataset, for each trial, build (or reuse) the
manifest, decode its images once, and for each method either reuse the finished result
file or fit the method and evaluate it. Every finished (dataset, method, trial) is written
atomically before the next starts, so an interrupted run loses nothing already finished.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from functools import cache, partial
from pathlib import Path

import pandas as pd
from rich.console import Console

from datasets import load_dataset
from datasets.loader import ImageStore, check_images
from datasets.protocol import DEFAULT_TRIALS, Manifest, ProtocolOptions, get_manifest

from .evaluation import evaluate_method
from .methods import get_method_factory
from .provenance import atomic_write_json, base_provenance

console = Console(stderr=True)


@dataclass
class RunConfig:
    """Everything a table run depends on; recorded in every result file."""

    datasets: list[str]
    methods: list[str]
    data_root: Path
    out: Path
    protocol: str = "paper"
    authors_lists: Path | None = None
    profile: str = "cpu"
    input_size: tuple[int, int] = (128, 64)
    seed: int = 0
    trials: int | None = None  # None: the dataset's default (10 random splits, 1 fixed)
    lr_method: str = "bilinear"
    pretrained: str = "none"
    skip_bad_images: bool = False
    device: str = "cpu"
    dataset_options: dict = field(default_factory=dict)  # e.g. {"synthetic": {"num_ids": 24}}
    extra: dict = field(default_factory=dict)

    @property
    def cache_dir(self) -> Path:
        return Path(self.out) / "cache"

    def num_trials(self, dataset: str) -> int:
        if self.protocol == "authors":
            return 1
        return self.trials if self.trials is not None else DEFAULT_TRIALS.get(dataset, 1)


def result_path(cfg: RunConfig, dataset: str, method: str, trial: int) -> Path:
    return (Path(cfg.out) / "runs" / dataset / cfg.protocol / cfg.profile / method
            / f"seed{cfg.seed}-trial{trial}.json")


def output_path(cfg: RunConfig, name: str) -> Path:
    """``OUT/name`` for the paper's protocol, ``OUT/<stem>-<protocol>.<ext>`` for another, so
    a run under the authors' lists never overwrites the paper-protocol outputs."""
    if cfg.protocol == "paper":
        return Path(cfg.out) / name
    stem, _, ext = name.partition(".")
    return Path(cfg.out) / f"{stem}-{cfg.protocol}.{ext}"


EVAL_VERSION = 3  # bump when evaluation changes what a stored result holds


def result_key(cfg: RunConfig, dataset: str, method: str, trial: int, manifest: Manifest) -> dict:
    """What a stored result must match to be reused."""
    from .learned import MODEL_CODE_VERSION

    method_cls = get_method_factory(method)()
    config = method_cls.config_key(cfg) if hasattr(method_cls, "config_key") else None
    return {"eval_version": EVAL_VERSION, "model_code_version": MODEL_CODE_VERSION,
            "method_config": config, "dataset": dataset, "method": method, "trial": trial, "seed": cfg.seed,
            "protocol": cfg.protocol, "profile": cfg.profile, "input_size": list(cfg.input_size),
            "lr_method": cfg.lr_method, "pretrained": cfg.pretrained,
            "dataset_options": cfg.dataset_options.get(dataset, {}),
            "manifest_sha256": manifest.meta["sha256"]}


def open_manifest(cfg: RunConfig, ds, trial: int) -> Manifest:
    return get_manifest(ds, trial=trial, seed=cfg.seed, manifest_dir=Path(cfg.out) / "manifests",
                        options=ProtocolOptions(protocol=cfg.protocol),
                        authors_lists=cfg.authors_lists,
                        write=not cfg.extra.get("stored_only"))


def image_store(cfg: RunConfig, manifest: Manifest) -> ImageStore:
    paths = manifest.abspaths(manifest.frame.drop_duplicates("path"))
    return ImageStore(paths, cfg.input_size, cache_dir=cfg.cache_dir / "images")


def drop_bad_images(cfg: RunConfig, ds):
    """Verify every image decodes; with --skip-bad-images drop and count the bad ones."""
    _, bad = check_images([r.path for r in ds.images], skip_bad=cfg.skip_bad_images)
    if bad:
        drop = set(bad)
        ds.images = [r for r in ds.images if r.path not in drop]
        if ds.split:
            ds.split = {k: [r for r in v if r.path not in drop] for k, v in ds.split.items()}
        ds.excluded["unreadable images (skipped by --skip-bad-images)"] = len(bad)
        console.print(f"[yellow]{ds.name}: skipped {len(bad)} unreadable image(s), e.g. {bad[0]}")
    return ds


def fit_method(name: str, manifest: Manifest, store: ImageStore, cfg: RunConfig):
    """A method fitted on the manifest's training rows (a cached model is reused)."""
    method = get_method_factory(name)()
    method.fit(manifest=manifest, store=store, cfg=cfg)
    return method


def load_checked(cfg: RunConfig, name: str):
    """Dataset ``name`` with unreadable images handled as the flags say."""
    return drop_bad_images(cfg, load_dataset(name, cfg.data_root, cache_dir=cfg.cache_dir,
                                             **cfg.dataset_options.get(name, {})))


class MissingResult(Exception):
    """--stored-only: no result stored at ``path`` under the run's key."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path


def stored_rows(cfg: RunConfig, path: Path, key: dict, compute) -> list[dict]:
    """The rows stored at ``path`` under ``key``; otherwise (or with --retrain) ``compute()``
    them and store them atomically with the key, the wall time and the provenance.
    With --stored-only nothing is computed: a missing result raises :class:`MissingResult`."""
    if (path.exists() and not cfg.extra.get("retrain")
            and (old := json.loads(path.read_text())).get("key") == key):
        return old["rows"]
    if cfg.extra.get("stored_only"):
        raise MissingResult(path)
    t0 = time.perf_counter()
    rows = compute()
    atomic_write_json(path, {"key": key, "rows": rows, "wall_s": time.perf_counter() - t0,
                             "provenance": {**base_provenance(cfg.device), "config": asdict(cfg)}})
    return rows


def cached_rows(cfg: RunConfig, dataset: str, method: str, trial: int, manifest: Manifest,
                kind: str, settings: dict, compute) -> list[dict]:
    """Rows of a per-(method, trial) measurement other than the tables' (``kind``: the rate
    sweep, the invariance probe), stored beside the result file under its key + ``settings``."""
    path = result_path(cfg, dataset, method, trial).with_suffix(f".{kind}.json")
    key = {**result_key(cfg, dataset, method, trial, manifest), "kind": kind, **settings}
    return stored_rows(cfg, path, key, compute)


def rows_or_missing(missing: list[dict], what: dict, rows) -> list[dict]:
    """``rows()``; a :class:`MissingResult` (--stored-only) is printed, appended to
    ``missing`` (``what`` + the path it looked for) and gives no rows."""
    try:
        return rows()
    except MissingResult as e:
        console.print("[yellow]--stored-only: no stored result for "
                      + ", ".join(f"{k} {v}" for k, v in what.items()) + f" ({e.path})")
        missing.append({**what, "path": str(e.path)})
        return []


def rows_frame(rows: list[dict], cfg: RunConfig) -> pd.DataFrame:
    """The rows as a frame; none at all (--stored-only, nothing stored) is an error."""
    if not rows:
        raise MissingResult(Path(cfg.out) / "runs")
    return pd.DataFrame(rows)


def lazy_store(cfg: RunConfig, manifest: Manifest):
    """``image_store(cfg, manifest)``, built on the first call only (stored rows need none)."""
    return cache(partial(image_store, cfg, manifest))


def _evaluate(cfg: RunConfig, dataset: str, method_name: str, trial: int, manifest: Manifest,
              get_store) -> list[dict]:
    """Fit (or load) one method and evaluate it on one trial: the rows of its result file."""
    store = get_store()
    t0 = time.perf_counter()
    method = fit_method(method_name, manifest, store, cfg)
    res = evaluate_method(method, manifest, store, lr_method=cfg.lr_method,
                          single_shot=cfg.protocol == "paper", seed=cfg.seed + trial)
    weights = getattr(method, "init_weights", None) or {}
    rows = [{"dataset": dataset, "method": method_name, "trial": trial,
             "init": getattr(method, "init", cfg.pretrained), "init_file": weights.get("file"),
             "init_sha256": weights.get("sha256"), **r} for r in res]
    console.print(f"{dataset} trial {trial} {method_name}: "
                  + ", ".join(f"{r['testset']} R1 {r['rank1']:.1f}" for r in rows)
                  + f" ({time.perf_counter() - t0:.1f}s)")
    return rows


def run_methods(cfg: RunConfig) -> pd.DataFrame:
    """Every (dataset, trial, method) result as one row each (testset rows per query set)."""
    rows, info, missing = [], {}, []
    for name in cfg.datasets:
        ds = load_checked(cfg, name)
        info[name] = {"root": str(ds.root), "excluded": ds.excluded, "notes": ds.notes}
        for trial in range(cfg.num_trials(name)):
            manifest = open_manifest(cfg, ds, trial)
            get_store = lazy_store(cfg, manifest)
            for method_name in cfg.methods:
                rows += rows_or_missing(missing, {"dataset": name, "method": method_name,
                                                  "trial": trial}, partial(
                    stored_rows, cfg, result_path(cfg, name, method_name, trial),
                    result_key(cfg, name, method_name, trial, manifest),
                    partial(_evaluate, cfg, name, method_name, trial, manifest, get_store)))
    frame = rows_frame(rows, cfg)
    frame.attrs["datasets"] = info
    frame.attrs["missing"] = missing
    return frame
