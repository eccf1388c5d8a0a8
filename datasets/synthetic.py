"""SynthMLR: the embedded synthetic cross-resolution re-ID dataset (generated, never shipped).

Every image is drawn by code from a seed, so the benchmark runs end to end without any real
data. This module is the reader: the generator's configuration (``DEFAULT_CONFIG``,
``make_config``), the image set on disk (``generate``, with caching) and ``load``. The
images are drawn by a small "paper-doll" renderer: ``datasets/synthmlr_identity.py`` gives
each identity its appearance (coarse cues shared by a group of identities, fine cues of its
own) and ``datasets/synthmlr_render.py`` paints one image of it (per-image nuisance, the
camera's background and imaging transform); their docstrings describe the generative
model.

Determinism
-----------
Randomness comes only from ``numpy.random.default_rng(SeedSequence(...))`` with keys
``[seed, group, 1]`` (group appearance), ``[seed, pid, 2]`` (identity appearance) and
``[seed, pid, camid, k, 3]`` (image nuisance). So the same seed gives byte-identical PNGs, and
changing ``num_ids`` (or ``images_per_camera``) adds or removes identities (images) without
changing the pixels of the ones they share. The image set is cached under
``cache_dir / "synthmlr-<hash>"`` where the hash covers the generator version, the seed and
every config value; ``meta.json`` is written last and the folder is renamed into place only
when complete, so an interrupted generation is never mistaken for a complete set.

The images are 128 x 64 (H x W) RGB. Down-scaling them for the network input (e.g. to
64 x 32) already removes the finest cues: use an input of at least 128 x 64 (up-sampling,
e.g. to the paper's 256 x 128, keeps them).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from .base import DatasetError, DatasetInfo, Record, ReidDataset
from .synthmlr_identity import PATTERNS, identity_attributes
from .synthmlr_render import render

GENERATOR_VERSION = 1
NAME = "synthetic"
# generated under cache_dir (no folder under the data root); no authors' lists
INFO = DatasetInfo(name=NAME, folder=None, default_trials=10, lr_camera=0,
                   authors_list_folder=None, genuine_lr=False, authors_image_name=None)

_STALE_TMP_S = 3600  # temp folders older than this are leftovers of killed runs

DEFAULT_CONFIG: dict = {
    # size of the set
    "num_ids": 200,
    "images_per_camera": 4,
    "height": 128,
    "width": 64,
    # identities pid // group_size share every coarse cue (keep <= 16, the number of shirt
    # patterns, so that group mates always differ in their shirt texture)
    "group_size": 6,
    # coarse palettes (reflectance, RGB in [0, 1]); kept away from 0/1 so textures fit
    "upper_palette": [
        [0.75, 0.18, 0.16], [0.16, 0.28, 0.70], [0.20, 0.58, 0.25], [0.82, 0.78, 0.25],
        [0.50, 0.50, 0.52], [0.82, 0.82, 0.80], [0.25, 0.23, 0.26], [0.55, 0.25, 0.60],
        [0.88, 0.52, 0.18], [0.30, 0.62, 0.70],
    ],
    "lower_palette": [
        [0.14, 0.18, 0.35], [0.22, 0.22, 0.24], [0.55, 0.48, 0.35], [0.45, 0.45, 0.47],
        [0.30, 0.22, 0.15], [0.75, 0.72, 0.62], [0.25, 0.35, 0.22],
    ],
    "hair_palette": [[0.10, 0.08, 0.07], [0.35, 0.22, 0.12], [0.75, 0.62, 0.35],
                     [0.50, 0.48, 0.46]],
    "skin_palette": [[0.92, 0.74, 0.62], [0.78, 0.57, 0.42], [0.55, 0.38, 0.26],
                     [0.36, 0.24, 0.17]],
    "bag_palette": [[0.12, 0.10, 0.10], [0.45, 0.28, 0.14], [0.70, 0.12, 0.12],
                    [0.80, 0.80, 0.78]],
    "height_factors": [0.88, 0.94, 1.0],  # of the 112 px full body height
    "torso_fractions": [0.30, 0.33, 0.36],  # torso length / body height
    "shoulder_halfwidths": [9.0, 11.0, 13.0],  # px at scale 1
    "long_sleeve_prob": 0.6,
    "long_hair_prob": 0.3,
    "bag_prob": 0.35,
    # fine, per-identity cues
    "shirt_patterns": list(PATTERNS),
    "shirt_amplitude": [0.28, 0.45],
    "trouser_patterns": ["plain", "vstripe2", "vpin4", "check1", "hstripe2", "vstripe3"],
    "trouser_amplitude": [0.12, 0.22],
    "logo_prob": 0.75,
    "logo_shapes": ["square3", "square4", "cross5", "bar"],
    "logo_palette": [[0.95, 0.95, 0.20], [0.95, 0.10, 0.55], [0.10, 0.85, 0.90],
                     [0.98, 0.98, 0.98], [0.05, 0.05, 0.05], [0.95, 0.45, 0.05]],
    "shoe_palette": [[0.08, 0.08, 0.08], [0.92, 0.92, 0.90], [0.65, 0.12, 0.10],
                     [0.45, 0.30, 0.18], [0.15, 0.30, 0.65]],
    # per-image nuisance
    "shift_x": 3.0,
    "shift_y": 2.0,
    "scale_jitter": 0.06,
    "leg_spread": 6.0,
    "arm_swing": 3.0,
    "gain_jitter": 0.12,
    "shading_jitter": 0.15,
    # motion/defocus blur: with this probability an image is smoothed (binomial [1, 2, 1] / 4
    # filter, this many passes in x and y; 2 passes ~ Gaussian sigma 1 px), which removes
    # the 2-3 px textures of that image even at full resolution
    "blur_prob": 0.25,
    "blur_passes": 2,
    # cameras: colour cast (per-channel gain), overall gain, black level, gamma (tone curve
    # out = in ** gamma), saturation (1 = unchanged), noise std, and the background
    "cameras": [
        {
            "name": "cam0-indoor-warm",
            "gain": 1.05, "cast": [1.08, 1.0, 0.84], "black": 0.02, "gamma": 0.92,
            "saturation": 1.0, "noise": 0.012,
            "wall": [0.72, 0.67, 0.58], "floor": [0.42, 0.40, 0.38], "floor_start": 0.80,
            "clutter": 0.07, "posts_period": 0, "posts_amplitude": 0.0,
        },
        {
            "name": "cam1-outdoor-cool",
            "gain": 0.80, "cast": [0.84, 0.98, 1.18], "black": 0.05, "gamma": 1.12,
            "saturation": 0.75, "noise": 0.02,
            "wall": [0.38, 0.48, 0.40], "floor": [0.32, 0.32, 0.30], "floor_start": 0.76,
            "clutter": 0.12, "posts_period": 22, "posts_amplitude": 0.18,
        },
    ],
}

FIELDS = tuple(DEFAULT_CONFIG)


# ----------------------------------------------------------------------------- config

def make_config(**overrides) -> dict:
    """DEFAULT_CONFIG with ``overrides`` applied (top-level keys only; unknown keys are errors)."""
    unknown = sorted(set(overrides) - set(DEFAULT_CONFIG))
    if unknown:
        raise DatasetError(f"synthetic: unknown option(s) {', '.join(unknown)}; "
                           f"known: {', '.join(FIELDS)}")
    cfg = copy.deepcopy(DEFAULT_CONFIG)
    cfg.update(copy.deepcopy(overrides))
    # JSON round trip: tuples -> lists, numpy scalars rejected early, hash is well defined
    cfg = json.loads(json.dumps(cfg))
    for key in ("num_ids", "images_per_camera", "group_size", "height", "width"):
        cfg[key] = int(cfg[key])
    if int(cfg["num_ids"]) < 1 or int(cfg["images_per_camera"]) < 1:
        raise DatasetError("synthetic: num_ids and images_per_camera must be >= 1")
    if len(cfg["cameras"]) < 2:
        raise DatasetError("synthetic: need at least 2 cameras")
    if int(cfg["group_size"]) < 1:
        raise DatasetError("synthetic: group_size must be >= 1")
    bad = sorted(set(cfg["shirt_patterns"] + cfg["trouser_patterns"]) - set(PATTERNS))
    if bad:
        raise DatasetError(f"synthetic: unknown pattern(s) {bad}; known: {list(PATTERNS)}")
    return cfg


def config_hash(cfg: dict, seed: int) -> str:
    """Short sha256 of generator version + seed + every config value."""
    blob = json.dumps({"version": GENERATOR_VERSION, "seed": int(seed), "config": cfg},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def file_name(pid: int, camid: int, k: int) -> str:
    return f"{pid:05d}_c{camid}_{k:02d}.png"



# ----------------------------------------------------------------------------- set on disk

def _expected(cfg: dict) -> list[tuple[int, int, int]]:
    n_cam = len(cfg["cameras"])
    return [(p, c, k) for p in range(int(cfg["num_ids"])) for c in range(n_cam)
            for k in range(int(cfg["images_per_camera"]))]


def _is_complete(folder: Path, cfg: dict, seed: int, keys) -> bool:
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return False
    if (meta.get("generator_version") != GENERATOR_VERSION or meta.get("seed") != int(seed)
            or meta.get("config") != cfg or meta.get("num_files") != len(keys)):
        return False
    present = {p.name for p in folder.glob("*.png")}
    return len(present) == len(keys) and all(file_name(*key) in present for key in keys)


def generate(folder: Path, cfg: dict, seed: int) -> None:
    """Render every image of ``cfg`` into ``folder`` (which must exist), then meta.json."""
    keys = _expected(cfg)
    attrs = None

    def save(arr: np.ndarray, path: Path) -> None:
        Image.fromarray(arr, "RGB").save(path, format="PNG", compress_level=1)

    # PNG encoding and file writes release the GIL: overlap them with rendering
    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs = []
        for pid, camid, k in keys:
            if attrs is None or attrs["pid"] != pid:
                attrs = identity_attributes(cfg, seed, pid)
            arr = render(cfg, seed, pid, camid, k, attrs=attrs)
            jobs.append(pool.submit(save, arr, folder / file_name(pid, camid, k)))
        for job in jobs:
            job.result()  # re-raise any write error
    meta = {
        "dataset": "SynthMLR", "generator_version": GENERATOR_VERSION, "seed": int(seed),
        "config": cfg, "num_files": len(keys), "num_ids": int(cfg["num_ids"]),
        "num_cameras": len(cfg["cameras"]), "images_per_camera": int(cfg["images_per_camera"]),
    }
    tmp = folder / "meta.json.tmp"
    tmp.write_text(json.dumps(meta, indent=1, sort_keys=True))
    os.replace(tmp, folder / "meta.json")


def load(data_root: Path | None = None, *, cache_dir: Path, seed: int = 0,
         num_ids: int = DEFAULT_CONFIG["num_ids"], **options) -> ReidDataset:
    """SynthMLR as a ReidDataset (generating it under ``cache_dir`` on first use).

    ``data_root`` is ignored (nothing is read). ``options`` override other DEFAULT_CONFIG
    keys (``images_per_camera``, ``group_size``, ``cameras``, ...). No fixed split: the
    protocol builder splits by identity.
    """
    if int(seed) != seed or seed < 0:
        raise DatasetError(f"synthetic: seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    cfg = make_config(num_ids=int(num_ids), **options)
    cache_dir = Path(cache_dir)
    folder = (cache_dir / f"synthmlr-{config_hash(cfg, seed)}").resolve()
    keys = _expected(cfg)
    if not _is_complete(folder, cfg, seed, keys):
        cache_dir.mkdir(parents=True, exist_ok=True)
        for stale in folder.parent.glob(f".{folder.name}.tmp-*"):  # from killed runs
            if time.time() - stale.stat().st_mtime > _STALE_TMP_S:
                shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
        try:
            generate(tmp, cfg, seed)
            if folder.exists() and not _is_complete(folder, cfg, seed, keys):
                shutil.rmtree(folder)  # partial/stale set left by an interrupted older run
            try:
                os.rename(tmp, folder)
            except OSError:
                # another process finished the same set first; keep theirs if it is complete
                if not _is_complete(folder, cfg, seed, keys):
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    images = [Record(str(folder / file_name(p, c, k)), p, c) for p, c, k in keys]
    images.sort(key=lambda r: (r.pid, r.camid, r.path))
    notes = [
        f"SynthMLR v{GENERATOR_VERSION}: generated by code (seed {seed}, config {folder.name}); "
        f"{cfg['num_ids']} ids x {len(cfg['cameras'])} cameras x {cfg['images_per_camera']} "
        f"images, {cfg['height']}x{cfg['width']} px",
        f"coarse cues (colours, proportions, bag) shared by groups of {cfg['group_size']} ids; "
        "fine cues (2-6 px textures, logos, shoes) per id, mostly lost at r >= 4",
        "no fixed split: identities are split at random by the protocol builder",
    ]
    return ReidDataset(name=NAME, root=folder, images=images, notes=notes)
