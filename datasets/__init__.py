"""mlr-bench dataset readers: one file per dataset, all returning ``Record(path, pid, camid)``.

This package is named ``datasets`` (as in torchreid). It shadows Hugging Face ``datasets`` if
both are importable; ``MLR_BENCH`` marks this one so the CLI can tell them apart.

Each reader file declares its dataset's facts (``INFO = DatasetInfo(...)``: folder, default
trials, LR camera, authors' list folder, ...) beside ``load(data_root, *, cache_dir,
**options)``. Adding a dataset is that one file plus one line in ``_BUILTIN`` below; a reader
defined elsewhere (a test, a plugin) joins with ``register_dataset(info, load)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from .base import DatasetError, DatasetInfo, Record, ReidDataset

MLR_BENCH = True

# The registry of built-in datasets: one line each, the reader module's name in datasets/.
# The order is the listing order (--list-datasets, datasets found under --data-root). A module
# is imported on first use of its dataset (loading VIPeR imports viper.py alone).
_BUILTIN = (
    "market1501",
    "dukemtmcreid",
    "cuhk03",
    "viper",
    "caviar",
    "synthetic",
)
Reader = Callable[..., ReidDataset]
# name -> (info, load); None until the built-in reader module is imported
_registry: dict[str, tuple[DatasetInfo, Reader] | None] = dict.fromkeys(_BUILTIN)


def register_dataset(info: DatasetInfo, load: Reader | None = None):
    """Register ``load`` (``load(data_root, *, cache_dir, **options) -> ReidDataset``) under
    ``info.name``; with ``load`` omitted, a decorator. Returns ``load``."""
    if not isinstance(info, DatasetInfo):
        raise TypeError(f"register_dataset needs a DatasetInfo, got {type(info).__name__}")

    def add(fn: Reader) -> Reader:
        if info.name in _registry:
            raise DatasetError(f"dataset {info.name!r} is already registered; known datasets: "
                               f"{', '.join(_registry)}")
        _registry[info.name] = (info, fn)
        return fn

    return add if load is None else add(load)


def unregister_dataset(name: str) -> None:
    """Remove a dataset added with ``register_dataset`` (built-in ones stay)."""
    if name in _BUILTIN:
        raise DatasetError(f"{name!r} is a built-in dataset and cannot be unregistered")
    if _registry.pop(name, None) is None:
        raise DatasetError(f"dataset {name!r} is not registered")


def list_datasets() -> list[str]:
    """Names of every registered dataset, in listing order."""
    return list(_registry)


def _entry(name: str) -> tuple[DatasetInfo, Reader]:
    if name not in _registry:
        raise DatasetError(f"unknown dataset {name!r}; known datasets: {', '.join(_registry)}")
    entry = _registry[name]
    if entry is None:
        module = importlib.import_module(f"{__name__}.{name}")
        info = getattr(module, "INFO", None)
        if not isinstance(info, DatasetInfo) or info.name != name:
            raise DatasetError(f"{module.__file__}: expected INFO = DatasetInfo(name={name!r}, "
                               f"...) beside load(); found {info!r}")
        entry = _registry[name] = (info, module.load)
    return entry


def get_dataset_info(name: str) -> DatasetInfo:
    """The ``DatasetInfo`` of dataset ``name``."""
    return _entry(name)[0]


def get_reader(name: str) -> Reader:
    """The ``load(data_root, cache_dir=...)`` function of dataset ``name``."""
    return _entry(name)[1]


def data_folders() -> dict[str, str]:
    """name -> top-level folder under the data root, for every dataset read from disk."""
    infos = (get_dataset_info(n) for n in list_datasets())
    return {i.name: i.folder for i in infos if i.folder is not None}


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
    "DatasetError", "DatasetInfo", "Record", "ReidDataset", "MLR_BENCH", "data_folders",
    "get_dataset_info", "get_reader", "list_datasets", "load_dataset",
    "register_dataset", "unregister_dataset",
]
