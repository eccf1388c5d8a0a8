"""Market-1501 (Zheng et al., ICCV 2015): 1,501 ids, 6 cameras, fixed 751/750 split.

Layout under the data root (as torchreid)::

    market1501/[Market-1501-v15.09.15/]bounding_box_train/0002_c1s1_000451_03.jpg
                                       bounding_box_test/...
                                       query/...

File names are ``PPPP_cCsS_FFFFFF_BB.jpg``. Junk images (pid -1) and distractors (pid 0)
are handled the standard way: both are dropped from training; in the gallery the
distractors (pid 0) stay (they are real images of no query identity) and junk (-1) is
dropped; the counts are kept in ``excluded``.
"""

from __future__ import annotations

import re
from pathlib import Path

from .base import DatasetError, DatasetInfo, Record, ReidDataset, find_first_dir
from .images import list_images

# fixed released split: one trial; LR queries from camera 1 (camid 0), recorded in manifests
INFO = DatasetInfo(name="market1501", folder="market1501", default_trials=1, lr_camera=0,
                   authors_list_folder="Market-1501", genuine_lr=False,
                   authors_image_name=None)
LAYOUT = (
    "  <data-root>/market1501/[Market-1501-v15.09.15/]bounding_box_train/*.jpg\n"
    "  <data-root>/market1501/[Market-1501-v15.09.15/]bounding_box_test/*.jpg\n"
    "  <data-root>/market1501/[Market-1501-v15.09.15/]query/*.jpg"
)
_NAME = re.compile(r"^(-?\d+)_c(\d+)")


def parse_name(path: Path, pattern: re.Pattern = _NAME) -> tuple[int, int]:
    """(pid, camid 0-based) from a Market/Duke file name; error names the file otherwise."""
    m = pattern.match(path.name)
    if not m:
        raise DatasetError(f"unexpected image name {path}: expected 'PPPP_cC...' (pid, camera)")
    return int(m.group(1)), int(m.group(2)) - 1


#: image files per folder of the released Market-1501 (junk and distractors included)
RELEASED = {"train": 12936, "query": 3368, "gallery": 19732}


def read_fixed_split(name: str, base: Path, subdirs: dict[str, str], num_cams: int,
                     pattern: re.Pattern = _NAME, released: dict[str, int] | None = None
                     ) -> ReidDataset:
    """Shared by Market-1501 and DukeMTMC-reID: a released train/query/gallery split.

    ``released``: the image-file count of each role in the released dataset; other counts
    (a subset, a re-split) make the dataset not ``comparable`` with the paper, with a note
    giving both counts."""
    split: dict[str, list[Record]] = {}
    files: dict[str, int] = {}
    excluded = {"junk (pid -1)": 0, "distractor in train (pid 0)": 0}
    for role, sub in subdirs.items():
        folder = base / sub
        if not folder.is_dir():
            raise DatasetError(f"{name}: folder not found: {folder} (expected {sub}/ inside {base})")
        recs = []
        paths = list_images(folder)
        files[role] = len(paths)
        for p in paths:
            pid, camid = parse_name(p, pattern)
            if not 0 <= camid < num_cams:
                raise DatasetError(f"{name}: camera {camid + 1} out of range 1..{num_cams} in {p}")
            if pid == -1:
                excluded["junk (pid -1)"] += 1
                continue
            if pid == 0 and role == "train":
                excluded["distractor in train (pid 0)"] += 1
                continue
            recs.append(Record(str(p), pid, camid))
        if not recs:
            raise DatasetError(f"{name}: no images found in {folder}")
        split[role] = recs
    images = [r for recs in split.values() for r in recs]
    ds = ReidDataset(name=name, root=base, images=images, split=split, excluded=excluded)
    if released is not None and files != released:
        ds.comparable = False
        ds.notes.append(
            f"{name}: not the released split (image files " + ", ".join(
                f"{role} {files[role]:,}" for role in subdirs) + "; released: " + ", ".join(
                f"{role} {released[role]:,}" for role in subdirs) + "): its numbers are not "
            "comparable with the paper's, and tables show no paper value for it")
    return ds


def load(data_root: Path, *, cache_dir: Path | None = None) -> ReidDataset:
    top = Path(data_root) / INFO.folder
    base = find_first_dir([top / "Market-1501-v15.09.15", top], "market1501", LAYOUT)
    subdirs = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
    return read_fixed_split(INFO.name, base, subdirs, num_cams=6, released=RELEASED)
