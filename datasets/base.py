"""Common record type and dataset container shared by every reader (torchreid style)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from .errors import MLRBenchError


class DatasetError(MLRBenchError):
    """Bad or missing input data; the message names the file or folder and what was expected."""


@dataclass(frozen=True)
class DatasetInfo:
    """The facts about a dataset that code outside its reader needs.

    Each reader file declares its own as ``INFO = DatasetInfo(...)`` beside ``load``; the
    registry in ``datasets/__init__.py`` hands them to the CLI, the protocol builder and the
    authors' lists. Every field is required, so a new reader states each fact:

    * ``name``: registry key; also ``ReidDataset.name`` and the manifests' ``dataset``.
    * ``folder``: its top-level folder under ``--data-root`` (torchreid's name); None for a
      generated dataset that reads nothing (SynthMLR).
    * ``default_trials``: trials run when ``--trials`` is not given (10 random splits or
      classic test sets; 1 for a fixed released split).
    * ``lr_camera``: the camera whose test images become the LR queries under the paper's
      protocol (CUHK03: the view, ``camid % 2``); ``ProtocolOptions.lr_camera`` overrides it.
    * ``authors_list_folder``: its subfolder of the authors' split lists; None: they have none.
    * ``genuine_lr``: the LR camera is genuinely low-resolution (CAVIAR4REID): seen queries
      are used as they are (r = 1), not down-sampled.
    * ``authors_image_name``: the name the authors' lists give an image where they renamed
      them, a format of ``{pid}`` and ``{camid}`` (open-reid style); None: the file's own name.
    """

    name: str
    folder: str | None
    default_trials: int
    lr_camera: int
    authors_list_folder: str | None
    genuine_lr: bool
    authors_image_name: str | None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"DatasetInfo.name must be a short identifier, got {self.name!r}")
        for key in ("folder", "authors_list_folder", "authors_image_name"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"DatasetInfo({self.name}).{key} must be a non-empty string "
                                 f"or None, got {value!r}")
        for key, low in (("default_trials", 1), ("lr_camera", 0)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"DatasetInfo({self.name}).{key} must be an integer >= {low}, "
                                 f"got {value!r}")
        if not isinstance(self.genuine_lr, bool):
            raise ValueError(f"DatasetInfo({self.name}).genuine_lr must be True or False, "
                             f"got {self.genuine_lr!r}")


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
    #: False when the images are not the split the paper evaluated on (e.g. a re-split of a
    #: fixed-split dataset): tables then show no paper value for this dataset
    comparable: bool = True

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
