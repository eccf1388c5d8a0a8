"""DukeMTMC-reID (Zheng et al., ICCV 2017): 1,404 ids + distractors, 8 cameras, 702/702 split.

Layout under the data root (as torchreid)::

    dukemtmc-reid/DukeMTMC-reID/bounding_box_train/0001_c2_f0046182.jpg
                               bounding_box_test/...
                               query/...
"""

from __future__ import annotations

from pathlib import Path

from .base import DatasetInfo, ReidDataset, find_first_dir
from .market1501 import read_fixed_split

# fixed released split: one trial; LR queries from camera 1 (camid 0), recorded in manifests
INFO = DatasetInfo(name="dukemtmcreid", folder="dukemtmc-reid", default_trials=1,
                   lr_camera=0, authors_list_folder="DukeMTMC-reID", genuine_lr=False,
                   authors_image_name=None)
#: image files per folder of the released DukeMTMC-reID
RELEASED = {"train": 16522, "query": 2228, "gallery": 17661}
LAYOUT = (
    "  <data-root>/dukemtmc-reid/DukeMTMC-reID/bounding_box_train/*.jpg\n"
    "  <data-root>/dukemtmc-reid/DukeMTMC-reID/bounding_box_test/*.jpg\n"
    "  <data-root>/dukemtmc-reid/DukeMTMC-reID/query/*.jpg"
)


def load(data_root: Path, *, cache_dir: Path | None = None) -> ReidDataset:
    top = Path(data_root) / INFO.folder
    base = find_first_dir([top / "DukeMTMC-reID", top], "dukemtmcreid", LAYOUT)
    subdirs = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
    return read_fixed_split(INFO.name, base, subdirs, num_cams=8, released=RELEASED)
