"""VIPeR (Gray & Tao, ECCV 2008): 632 ids, one image in each of 2 cameras, 48 x 128 px.

Layout under the data root (as torchreid)::

    viper/VIPeR/cam_a/000_45.bmp   (camid 0)
    viper/VIPeR/cam_b/000_90.bmp   (camid 1)

The i-th file of ``cam_a`` and the i-th file of ``cam_b`` (sorted by name) are the same
person; the identity label is that index, as torchreid and open-reid assign it. The leading
number of the names must agree; a mismatch is an error, not a silent re-pairing.
"""

from __future__ import annotations

from pathlib import Path

from .base import DatasetError, DatasetInfo, Record, ReidDataset, find_first_dir, require_dir
from .images import list_images

# 10 random identity halves; LR queries from cam_a; the authors' lists use open-reid names
INFO = DatasetInfo(name="viper", folder="viper", default_trials=10, lr_camera=0,
                   authors_list_folder="VIPeR", genuine_lr=False,
                   authors_image_name="{pid:08d}_{camid:02d}_0000.jpg")
LAYOUT = "  <data-root>/viper/VIPeR/cam_a/*.bmp\n  <data-root>/viper/VIPeR/cam_b/*.bmp"


def load(data_root: Path, *, cache_dir: Path | None = None) -> ReidDataset:
    top = Path(data_root) / INFO.folder
    base = find_first_dir([top / "VIPeR", top], "viper", LAYOUT)
    cams = [list_images(require_dir(base / c, "viper", LAYOUT)) for c in ("cam_a", "cam_b")]
    if len(cams[0]) != len(cams[1]) or not cams[0]:
        nums = [{p.name.split("_")[0]: p.name for p in c} for c in cams]
        alone = sorted({*nums[0].values(), *nums[1].values()}
                       - {nums[k][n] for k in (0, 1) for n in nums[0].keys() & nums[1].keys()})
        raise DatasetError(
            f"viper: cam_a has {len(cams[0])} images and cam_b {len(cams[1])} under {base}; "
            "expected one image per person in each camera (632 each in the full dataset)"
            + (f"; without a partner: {', '.join(alone[:5])}" if alone else ""))
    images = []
    for pid, (a, b) in enumerate(zip(*cams)):
        if a.name.split("_")[0] != b.name.split("_")[0]:
            raise DatasetError(f"viper: {a.name} and {b.name} are paired by sort order but "
                               "their person numbers differ")
        images += [Record(str(a), pid, 0), Record(str(b), pid, 1)]
    return ReidDataset(name=INFO.name, root=base, images=images)
