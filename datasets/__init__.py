"""mlr-bench dataset readers: one file per dataset, all returning ``Record(path, pid, camid)``.

This package is named ``datasets`` (as in torchreid). It shadows Hugging Face ``datasets`` if
both are importable; ``MLR_BENCH`` marks this one so the CLI can tell them apart.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .base import DatasetError, Record, ReidDataset

MLR_BENCH = True

# name -> "module:function"; imported lazily so one broken reader never hides the others.
_READERS: dict[str, str] = {
    "market1501": "market1501",
    "dukemtmcreid": "dukemtmcreid",
    "cuhk03": "cuhk03",
    "viper": "viper",
    "caviar": "caviar",
    "synthetic": "synthetic",
}
PAPER_DATASETS = ("cuhk03", "viper", "caviar", "market1501", "dukemtmcreid")
KNOWN_DATASETS = tuple(_READERS)


def get_reader(name: str) -> Callable[..., ReidDataset]:
    """The ``load(data_root, cache_dir=...)`` function of dataset ``name``."""
    if name not in _READERS:
        raise DatasetError(f"unknown dataset {name!r}; known datasets: {', '.join(KNOWN_DATASETS)}")
    import importlib

    return importlib.import_module(f"{__name__}.{_READERS[name]}").load


def default_trials(name: str) -> int:
    """Trials a run of dataset ``name`` has by default (random splits: 10; a fixed split: 1)."""
    from .protocol import DEFAULT_TRIALS

    return DEFAULT_TRIALS.get(name, 1)


def default_cache_dir() -> Path:
    """``$MLR_BENCH_CACHE``, else ``~/.cache/mlr-bench``."""
    import os

    return Path(os.environ.get("MLR_BENCH_CACHE", Path.home() / ".cache" / "mlr-bench"))


def load_dataset(name: str, data_root: str | Path, cache_dir: str | Path | None = None,
                 **options) -> ReidDataset:
    """Read dataset ``name`` from ``data_root``.

    ``cache_dir`` holds generated or extracted files (SynthMLR images, CUHK03 images taken out
    of the .mat); nothing is ever written into ``data_root``. Default: ``default_cache_dir()``.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return get_reader(name)(Path(data_root), cache_dir=cache, **options)


__all__ = [
    "DatasetError", "Record", "ReidDataset", "MLR_BENCH", "PAPER_DATASETS", "KNOWN_DATASETS",
    "default_trials", "get_reader", "load_dataset",
]
