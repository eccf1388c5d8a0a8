"""What a run of ``run_all.py`` depends on: :class:`RunConfig`, resolved once by the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from datasets import get_dataset_info


class CacheMode(str, Enum):
    """How stored results and cached models are used.

    ``use``: reuse what is stored under the same key, compute the rest; ``retrain``: train
    and measure again even where something is stored; ``stored-only``: compute nothing, a
    missing result is reported (``--stored-only``, ``--paired``)."""

    USE = "use"
    RETRAIN = "retrain"
    STORED_ONLY = "stored-only"


@dataclass
class RunConfig:
    """Everything a table or figure run depends on; recorded in every result file."""

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
    cache: CacheMode = CacheMode.USE
    compile: bool = False  # torch.compile each network before training
    sync_bn: bool = False  # SyncBatchNorm across torchrun processes
    per_query: bool = False  # tables also store per-query results (paired tests over queries)

    @property
    def cache_dir(self) -> Path:
        return Path(self.out) / "cache"

    def num_trials(self, dataset: str) -> int:
        if self.protocol == "authors":
            return 1
        return self.trials if self.trials is not None else get_dataset_info(dataset).default_trials


__all__ = ["CacheMode", "RunConfig"]
