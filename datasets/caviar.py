"""CAVIAR4REID (Cheng et al., BMVC 2011): genuine multi-resolution, 72 ids, 2 cameras.

Layout under the data root::

    caviar4reid/CAVIAR4REID/0001001.jpg ... (also accepted: caviar4reid/*.jpg)

Names are ``PPPPIII.jpg``: person PPPP, image III. Images 1-10 of a person come from one
camera and 11-20 from the other. 50 people have images in both cameras; the other 22 have
only 10 images, all from the close (higher-resolution) camera. So camera 0 (images 1-10) is
the close camera and camera 1 (images 11-20) the far, low-resolution one. The protocol (SING,
Jiao et al. 2018) discards the 22 single-camera people: they are dropped here and counted in
``excluded``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from .base import DatasetError, DatasetInfo, Record, ReidDataset, find_first_dir
from .images import list_images

LAYOUT = "  <data-root>/caviar4reid/CAVIAR4REID/0001001.jpg ...  (or <data-root>/caviar4reid/*.jpg)"
_NAME = re.compile(r"^(\d{4})(\d{3})\.jpe?g$", re.IGNORECASE)
CLOSE_CAMERA, FAR_CAMERA = 0, 1
# 10 random halves; queries from the far camera, genuinely LR (used at r = 1)
INFO = DatasetInfo(name="caviar", folder="caviar4reid", default_trials=10,
                   lr_camera=FAR_CAMERA, authors_list_folder="CAVIAR", genuine_lr=True,
                   authors_image_name=None)


def load(data_root: Path, *, cache_dir: Path | None = None, keep_single_camera: bool = False
         ) -> ReidDataset:
    top = Path(data_root) / INFO.folder
    base = find_first_dir([top / "CAVIAR4REID", top], "caviar", LAYOUT)
    files = list_images(base)
    if not files:
        raise DatasetError(f"caviar: no .jpg images in {base}\nexpected layout:\n{LAYOUT}")
    by_pid: dict[int, list[Record]] = defaultdict(list)
    for p in files:
        m = _NAME.match(p.name)
        if not m:
            raise DatasetError(f"caviar: unexpected image name {p}: expected PPPPIII.jpg")
        pid, idx = int(m.group(1)), int(m.group(2))
        if not 1 <= idx <= 20:
            raise DatasetError(f"caviar: image index {idx} out of range 1..20 in {p}")
        by_pid[pid].append(Record(str(p), pid, CLOSE_CAMERA if idx <= 10 else FAR_CAMERA))
    images, single = [], 0
    for _pid, recs in sorted(by_pid.items()):
        if len({r.camid for r in recs}) < 2 and not keep_single_camera:
            single += 1
            continue
        images += recs
    excluded = {"single-camera ids": single}
    notes = [f"{single} ids seen by one camera only were dropped (SING protocol)"] if single else []
    return ReidDataset(name=INFO.name, root=base, images=images, excluded=excluded, notes=notes)
