"""MLR protocol manifests (paper section 4.4, following SING, Jiao et al. AAAI 2018).

A manifest is a table with one row per image use::

    path, pid, camid, role (train|query|gallery), rate, trial, subset

``path`` is relative to the dataset root (so a manifest does not depend on where the data
lives), ``rate`` is the down-sampling factor r (1 = original), ``subset`` names the test set
a query row belongs to (``seen``: r drawn per image from the seen rates; ``unseen``: r = 8)
and is ``train``/``gallery`` otherwise. A manifest is built deterministically from
(dataset, protocol, options, seed, trial), written as CSV with a JSON sidecar holding the
options and the CSV's sha256, and reused when the options match and the hash verifies.

Two protocols:

* ``paper`` (default): the text of the paper / SING. Random identity halves (VIPeR,
  CAVIAR, SynthMLR), the classic CUHK03 test sets, the released Market/Duke splits; queries
  from the LR camera only, one r per query image; gallery at full resolution.
* ``authors``: the authors' own split lists (see ``load_authors_lists``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import get_dataset_info
from .atomic import atomic_write_bytes
from .base import DatasetError, Record, ReidDataset
from .seeds import trial_rng

COLUMNS = ["path", "pid", "camid", "role", "rate", "trial", "subset"]
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class ProtocolOptions:
    """Everything besides (dataset, seed, trial) that changes a manifest."""

    protocol: str = "paper"
    seen_rates: tuple[int, ...] = (2, 3, 4)
    unseen_rate: int = 8
    lr_camera: int | None = None  # None: the dataset's DatasetInfo.lr_camera (recorded)
    test_fraction: float = 0.5  # random-split datasets (VIPeR, CAVIAR, SynthMLR)

    def resolved(self, dataset: str) -> ProtocolOptions:
        if self.protocol not in ("paper", "authors"):
            raise DatasetError(f"unknown protocol {self.protocol!r}; known: paper, authors")
        if any(r < 1 for r in self.seen_rates) or self.unseen_rate < 1:
            raise DatasetError(f"down-sampling rates must be >= 1, got {self.seen_rates} "
                               f"and {self.unseen_rate}")
        if self.unseen_rate in self.seen_rates:
            raise DatasetError(f"unseen rate {self.unseen_rate} is also a seen rate "
                               f"{self.seen_rates}: it would not be unseen")
        lr = (self.lr_camera if self.lr_camera is not None
              else get_dataset_info(dataset).lr_camera)
        return ProtocolOptions(self.protocol, tuple(self.seen_rates), self.unseen_rate, lr,
                               self.test_fraction)


@dataclass
class Manifest:
    """A manifest table plus how it was made. ``root`` resolves the relative paths."""

    frame: pd.DataFrame
    root: Path
    meta: dict = field(default_factory=dict)

    def rows(self, role: str, subset: str | None = None) -> pd.DataFrame:
        sel = self.frame["role"] == role
        if subset is not None:
            sel &= self.frame["subset"] == subset
        return self.frame[sel].reset_index(drop=True)

    def abspaths(self, frame: pd.DataFrame) -> list[str]:
        return [str(self.root / p) for p in frame["path"]]


def _rows(recs: Sequence[Record], root: Path, role: str, rates, trial: int, subset: str):
    rates = list(rates) if not np.isscalar(rates) else [rates] * len(recs)
    out = []
    for rec, r in zip(recs, rates, strict=True):
        rel = Path(rec.path).resolve().relative_to(root.resolve()).as_posix()
        out.append((rel, rec.pid, rec.camid, role, int(r), trial, subset))
    return out


def _split_ids(pids: Sequence[int], rng: np.random.Generator, test_fraction: float):
    ids = np.array(sorted(set(pids)))
    perm = rng.permutation(len(ids))
    n_test = int(round(len(ids) * test_fraction))
    return set(ids[perm[n_test:]].tolist()), set(ids[perm[:n_test]].tolist())


def paper_split(ds: ReidDataset, trial: int, seed: int, opt: ProtocolOptions):
    """(train, query, gallery) records of one trial under the paper protocol."""
    lr = opt.lr_camera
    if ds.split is not None:  # Market-1501, DukeMTMC-reID: the released split
        train = ds.split["train"]
        query = [r for r in ds.split["query"] if r.camid == lr]
        gallery = [r for r in ds.split["gallery"] if r.camid != lr]
        if not query:
            raise DatasetError(f"{ds.name}: no query image from LR camera {lr}")
        return train, query, gallery
    if ds.test_sets is not None:  # CUHK03: the classic test sets, one per trial
        if trial >= len(ds.test_sets):
            raise DatasetError(f"{ds.name}: trial {trial} asked for but only "
                               f"{len(ds.test_sets)} classic test sets exist")
        test_ids = set(ds.test_sets[trial])
        train = [r for r in ds.images if r.pid not in test_ids]
        test = [r for r in ds.images if r.pid in test_ids]
        query = [r for r in test if r.camid % 2 == lr]
        gallery = [r for r in test if r.camid % 2 != lr]
        return train, query, gallery
    # VIPeR, CAVIAR, SynthMLR: random identity halves, queries from the LR camera
    train_ids, test_ids = _split_ids([r.pid for r in ds.images],
                                     trial_rng(seed, ds.name, trial, "split"), opt.test_fraction)
    train = [r for r in ds.images if r.pid in train_ids]
    query = [r for r in ds.images if r.pid in test_ids and r.camid == lr]
    gallery = [r for r in ds.images if r.pid in test_ids and r.camid != lr]
    return train, query, gallery


def build_paper_manifest(ds: ReidDataset, trial: int, seed: int, opt: ProtocolOptions
                         ) -> pd.DataFrame:
    train, query, gallery = paper_split(ds, trial, seed, opt)
    rows = []
    for r in (1, *opt.seen_rates):  # every training image at r = 1 plus its LR versions
        rows += _rows(train, ds.root, "train", r, trial, "train")
    if get_dataset_info(ds.name).genuine_lr:
        # genuine LR (CAVIAR4REID): the far camera's images are used as they are (r = 1)
        rows += _rows(query, ds.root, "query", 1, trial, "seen")
    else:
        rates = trial_rng(seed, ds.name, trial, "query-rates").choice(opt.seen_rates, len(query))
        rows += _rows(query, ds.root, "query", rates, trial, "seen")
    rows += _rows(query, ds.root, "query", opt.unseen_rate, trial, "unseen")
    rows += _rows(gallery, ds.root, "gallery", 1, trial, "gallery")
    return pd.DataFrame(rows, columns=COLUMNS)


def manifest_bytes(frame: pd.DataFrame) -> bytes:
    buf = io.StringIO()
    frame[COLUMNS].to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue().encode()


def data_fingerprint(ds: ReidDataset) -> str:
    """Short sha256 of what a manifest is drawn from: every image's path (relative to the
    dataset root), identity, camera and file size, the released split and the test sets.
    Another copy of the same data has the same fingerprint; changed data does not, so a
    manifest (and every result keyed by it) is never reused across data that differ."""
    root = Path(ds.root)

    def recs(records) -> list:
        return [(os.path.relpath(r.path, root), int(r.pid), int(r.camid),
                 os.stat(r.path).st_size) for r in records]

    blob = {"images": sorted(recs(ds.images)),
            "split": {k: sorted(recs(v)) for k, v in (ds.split or {}).items()},
            "test_sets": [[int(p) for p in t] for t in ds.test_sets or []]}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


def manifest_path(manifest_dir: Path, params: dict) -> Path:
    """``<dir>/<dataset>/<protocol>/seed<S>/trial<T>-<hash of the options>.csv``."""
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    return (Path(manifest_dir) / params["dataset"] / params["protocol"] / f"seed{params['seed']}"
            / f"trial{params['trial']}-{key}.csv")


def get_manifest(ds: ReidDataset, *, trial: int, seed: int, manifest_dir: Path,
                 options: ProtocolOptions = ProtocolOptions(),
                 authors_lists: Path | None = None, write: bool = True) -> Manifest:
    """Build, or reuse from ``manifest_dir``, the manifest of one (dataset, seed, trial).
    ``write=False`` builds a missing one without saving it (read-only runs)."""
    opt = options.resolved(ds.name)
    params = {"version": MANIFEST_VERSION, "dataset": ds.name, "seed": seed, "trial": trial,
              **asdict(opt), "seen_rates": list(opt.seen_rates), "data": data_fingerprint(ds)}
    if opt.protocol == "authors":
        if authors_lists is None:
            raise DatasetError("--protocol authors needs --authors-lists DIR (a folder like "
                               "shared/protocols/authors-lists with one subfolder per dataset)")
        if trial != 0:
            raise DatasetError("the authors' lists hold one fixed split: use --trials 1")
        params["authors_lists"] = Path(authors_lists).name
    csv_path = manifest_path(manifest_dir, params)
    meta_path = csv_path.with_suffix(".json")
    if csv_path.exists() and meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DatasetError(f"manifest record {meta_path} is unreadable ({type(e).__name__}): "
                               f"delete it and {csv_path.name} to rebuild them") from None
        if meta.get("params") == params:
            data = csv_path.read_bytes()
            if hashlib.sha256(data).hexdigest() != meta["sha256"]:
                raise DatasetError(f"manifest {csv_path} does not match the sha256 recorded in "
                                   f"{meta_path}: it was modified; delete both to rebuild")
            frame = pd.read_csv(io.BytesIO(data), keep_default_na=False)
            return Manifest(frame, ds.root, {**meta, "reused": True, "file": str(csv_path)})
    if opt.protocol == "authors":
        from .authors import build_authors_manifest

        frame = build_authors_manifest(ds, Path(authors_lists), opt)
    else:
        frame = build_paper_manifest(ds, trial, seed, opt)
    data = manifest_bytes(frame)
    meta = {"params": params, "sha256": hashlib.sha256(data).hexdigest(),
            "counts": frame.groupby(["role", "subset"]).size().rename("n").reset_index()
            .to_dict("records")}
    if not write:
        return Manifest(frame, ds.root, {**meta, "reused": False, "file": None})
    atomic_write_bytes(csv_path, data)
    atomic_write_bytes(meta_path, (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode())
    return Manifest(frame, ds.root, {**meta, "reused": False, "file": str(csv_path)})
