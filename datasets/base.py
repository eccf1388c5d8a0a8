"""Common record type and dataset container shared by every reader (torchreid style)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from .errors import MLRBenchError


class DatasetError(MLRBenchError):
    """Bad or missing input data; the message names the file or folder and what was expected."""


class Record(NamedTuple):
    """One image: absolute path, identity label, camera index (0-based)."""

    path: str
    pid: int
    camid: int


@dataclass
class ReidDataset:
    """What a reader returns.

    ``images`` holds every usable image. Datasets released with a fixed split (Market-1501,
    DukeMTMC-reID) also fill ``split`` with ``train``/``query``/``gallery`` record lists;
    CUHK03 fills ``test_sets`` with the 20 classic lists of test identities. ``excluded``
    counts what the reader left out and why (junk ids, single-camera ids, ...), so nothing
    is dropped silently. ``root`` is the folder the image paths live under.
    """

    name: str
    root: Path
    images: list[Record]
    split: dict[str, list[Record]] | None = None
    test_sets: list[list[int]] | None = None
    excluded: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def num_ids(self) -> int:
        return len({r.pid for r in self.images})

    @property
    def num_cams(self) -> int:
        return len({r.camid for r in self.images})

    def summary(self) -> dict:
        """Counts per split (or for all images) for ``--list-datasets``."""
        parts = self.split or {"all": self.images}
        out = {
            role: {
                "ids": len({r.pid for r in recs}),
                "images": len(recs),
                "cameras": len({r.camid for r in recs}),
            }
            for role, recs in parts.items()
        }
        out["total"] = {"ids": self.num_ids, "images": len(self.images), "cameras": self.num_cams}
        return out


def require_dir(path: Path, what: str, layout: str) -> Path:
    """Return ``path`` if it is a folder, else raise a DatasetError naming it and the layout."""
    if not path.is_dir():
        raise DatasetError(f"{what}: folder not found: {path}\nexpected layout:\n{layout}")
    return path


def find_first_dir(candidates: list[Path], what: str, layout: str) -> Path:
    """The first existing folder among ``candidates``; else an error listing all of them."""
    for c in candidates:
        if c.is_dir():
            return c
    looked = "\n  ".join(str(c) for c in candidates)
    raise DatasetError(f"{what}: none of these folders exists:\n  {looked}\nexpected layout:\n{layout}")
