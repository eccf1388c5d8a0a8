"""The authors' own split lists (pre-release code) as a second protocol, ``--protocol authors``.

A lists folder holds one subfolder per dataset (``VIPeR``, ``CAVIAR``, ``CUHK03``,
``Market-1501``, ``DukeMTMC-reID``) of CSV files with columns
``image_path,id[,camera],downsample``. They differ from the paper's text: queries come from
both cameras, every seen r is used for every query, the gallery is every test image
(multi-shot), and the default training list holds r in {1, 2, 4}. Files used:

* train: ``train_list.csv`` (every row as listed);
* seen queries: ``query_list_2_3_4.csv``; where absent (Market, Duke) ``query_list.csv`` with
  each query repeated at every seen rate (recorded in the notes);
* unseen queries: ``query_list_8.csv``; where absent, ``query_list.csv`` at r = 8;
* gallery: ``test_list.csv`` at r = 1.

Image paths in the lists follow the authors' converted layout (open-reid style names such as
``images/00000316_00_0000.jpg``). They are resolved against the dataset found under the data
root: first as a path relative to the dataset's root, then through the open-reid naming of
the reader's records (VIPeR: ``{pid:08d}_{cam:02d}_0000.jpg``), then by file name. A path
that none of these finds is an error naming the list file and the path.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import get_dataset_info, list_datasets
from .base import DatasetError, ReidDataset

COLUMNS = ["path", "pid", "camid", "role", "rate", "trial", "subset"]


def _read_list(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DatasetError(f"authors' list not found: {path}")
    df = pd.read_csv(path)
    missing = {"image_path", "id"} - set(df.columns)
    if missing:
        raise DatasetError(f"authors' list {path}: missing column(s) {sorted(missing)}; expected "
                           "image_path,id[,camera],downsample")
    if "downsample" not in df.columns:
        df["downsample"] = 1
    return df


class _Resolver:
    def __init__(self, ds: ReidDataset):
        self.ds = ds
        root = ds.root.resolve()
        self.by_rel, self.by_openreid, self.by_name = {}, {}, {}
        renamed = get_dataset_info(ds.name).authors_image_name
        for rec in ds.images:
            p = Path(rec.path).resolve()
            self.by_rel[p.relative_to(root).as_posix()] = rec
            if renamed:
                self.by_openreid[renamed.format(pid=rec.pid, camid=rec.camid)] = rec
            self.by_name.setdefault(p.name, rec)

    def __call__(self, image_path: str, list_file: Path):
        rel = image_path.lstrip("/")
        rec = (self.by_rel.get(rel) or self.by_openreid.get(Path(rel).name)
               or self.by_name.get(Path(rel).name))
        if rec is None:
            raise DatasetError(
                f"{list_file}: image {image_path!r} not found under {self.ds.root} (tried it as a "
                "relative path, as an open-reid name and by file name)")
        return rec


def build_authors_manifest(ds: ReidDataset, lists_dir: Path, opt) -> pd.DataFrame:
    sub = get_dataset_info(ds.name).authors_list_folder
    if sub is None:
        covered = [n for n in list_datasets() if get_dataset_info(n).authors_list_folder]
        raise DatasetError(f"no authors' lists exist for dataset {ds.name!r}; they cover "
                           f"{', '.join(covered)}")
    folder = Path(lists_dir) / sub
    if not folder.is_dir():
        raise DatasetError(f"authors' lists: folder not found: {folder} (expected "
                           f"{sub}/train_list.csv, query_list*.csv, test_list.csv)")
    resolve = _Resolver(ds)
    root = ds.root.resolve()
    rows = []

    def add(list_name: str, role: str, subset: str, rates=None):
        f = folder / list_name
        for row in _read_list(f).itertuples(index=False):
            rec = resolve(row.image_path, f)
            if Path(rec.path).name.startswith("-1_"):
                continue  # Market/Duke junk images stay out, as in the standard protocol
            camid = int(row.camera) if hasattr(row, "camera") else rec.camid
            rel = Path(rec.path).resolve().relative_to(root).as_posix()
            for r in rates or [int(row.downsample)]:
                rows.append((rel, int(row.id), camid, role, int(r), 0, subset))

    add("train_list.csv", "train", "train")
    if (folder / "query_list_2_3_4.csv").is_file():
        add("query_list_2_3_4.csv", "query", "seen")
    else:
        add("query_list.csv", "query", "seen", rates=list(opt.seen_rates))
    if (folder / f"query_list_{opt.unseen_rate}.csv").is_file():
        add(f"query_list_{opt.unseen_rate}.csv", "query", "unseen")
    else:
        add("query_list.csv", "query", "unseen", rates=[opt.unseen_rate])
    add("test_list.csv", "gallery", "gallery", rates=[1])
    return pd.DataFrame(rows, columns=COLUMNS)
