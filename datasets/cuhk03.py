"""CUHK03 reader (Li et al., DeepReID, CVPR 2014), for MLR-CUHK03.

Two layouts are accepted under ``<data_root>/cuhk03`` (the folder name torchreid uses):

1. The official release, ``cuhk03/cuhk03_release/cuhk-03.mat`` (MATLAB v7.3, i.e. HDF5; read
   with h5py). It holds ``labeled`` and ``detected`` (5x1 cells, one per camera pair, each an
   ``n_ids x 10`` cell of ``H x W x 3`` uint8 images; images 1-5 are view 1 of the pair, 6-10
   view 2; an empty entry means no image) and ``testsets`` (20x1 cell of ``100 x 2`` double
   matrices of 1-based ``[camera pair, person]``: the 20 classic 1,367/100 splits). h5py
   shows every MATLAB array transposed (an image as ``(3, W, H)``, a pair as ``(10, n_ids)``);
   the reader transposes back. The images of the chosen kind are extracted once, as PNG, into
   ``<cache_dir>/cuhk03-<key>/images_<kind>/`` (``key``: a short hash of the .mat file's size
   and mtime). Nothing is ever written under ``data_root``.
2. torchreid's extracted layout: ``cuhk03/images_labeled/``, ``cuhk03/images_detected/`` with
   ``splits_classic_labeled.json`` / ``splits_classic_detected.json`` (a list of 20 dicts with
   ``train``/``query``/``gallery`` lists of ``[path, pid, camid]``; query = gallery = the 100
   test ids). The paths in those files are absolute paths of the machine that wrote them; the
   reader re-bases them onto the folder found here by their file name. torchreid's pids in
   the json are relabelled per split, so identities are always taken from the file names.

File names follow torchreid: ``{pair+1}_{person+1:03d}_{view+1}_{slot+1:02d}.png`` (pair,
person, view, slot 0-based; slot 0-4 is view 0, slot 5-9 view 1).

Identities and cameras (both layouts give the same numbers):

* ``pid = 1000 * pair + person`` (0-based pair 0-4 and person index within the pair), so
  ``3_043_*.png`` is pid 2042. Stable across layouts and image kinds, and not dependent on how
  many persons each pair has (the real pairs have 843, 440, 77, 58, 49 persons).
* ``camid = 2 * pair + view`` (view 0 or 1), 10 camera ids in all. torchreid's classic splits
  use ``camid = view`` only (0/1), which merges the cameras of different pairs.

``test_sets``: one sorted list of 100 pids per classic split (20 in the release).
``excluded["empty_cells"]``: empty image entries (for torchreid's layout inferred as
``10 * persons - images``). Expected on the real data: 1,467 identities in both kinds; the
CUHK03-NP file lists count 14,096 labeled and 14,097 detected images (torchreid's docstring
says 13,164 images / 1,360 ids, the original paper's figure for pairs 1-3). Not checked here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import shutil
from pathlib import Path

import numpy as np

from .base import DatasetError, DatasetInfo, Record, ReidDataset

log = logging.getLogger(__name__)

IMAGE_KINDS = ("labeled", "detected")
SPLIT_SOURCES = ("auto", "mat", "torchreid")
SLOTS = 10  # images per person and pair: slots 0-4 view 0, slots 5-9 view 1
PID_STRIDE = 1000  # pid = PID_STRIDE * pair + person
NUM_CLASSIC_SPLITS = 20
EXTRACT_VERSION = 1
MARKER = ".mlr_extracted.json"
# one trial per classic test set (the first 10 of 20); LR queries from view 2 (camid % 2 == 1)
INFO = DatasetInfo(name="cuhk03", folder="cuhk03", default_trials=10, lr_camera=1,
                   authors_list_folder="CUHK03", genuine_lr=False, authors_image_name=None)

LAYOUT = """\
  <data_root>/cuhk03/cuhk03_release/cuhk-03.mat        (official release, MATLAB v7.3)
or torchreid's extracted layout:
  <data_root>/cuhk03/images_labeled/1_001_1_01.png ...
  <data_root>/cuhk03/images_detected/1_001_1_01.png ...
  <data_root>/cuhk03/splits_classic_labeled.json
  <data_root>/cuhk03/splits_classic_detected.json"""

_NAME_RE = re.compile(r"^(\d+)_(\d{3,})_([12])_(\d{2})\.png$")


# ---------------------------------------------------------------- identities and file names


def global_pid(pair: int, person: int) -> int:
    """Global identity of person ``person`` of camera pair ``pair`` (both 0-based)."""
    if not 0 <= person < PID_STRIDE:
        raise DatasetError(f"CUHK03: person index {person} out of range 0..{PID_STRIDE - 1}")
    return PID_STRIDE * pair + person


def camera_id(pair: int, view: int) -> int:
    """Camera index of view ``view`` (0/1) of camera pair ``pair`` (0-based)."""
    return 2 * pair + view


def image_name(pair: int, person: int, slot: int) -> str:
    """torchreid's file name for slot ``slot`` (0-9) of a person (all indices 0-based)."""
    return f"{pair + 1}_{person + 1:03d}_{slot // 5 + 1}_{slot + 1:02d}.png"


def parse_image_name(name: str) -> tuple[int, int, int, int] | None:
    """``(pair, person, view, slot)``, 0-based, from a torchreid-style name; else None."""
    m = _NAME_RE.match(name)
    if not m:
        return None
    pair, person, view, slot = (int(g) - 1 for g in m.groups())
    if pair < 0 or person < 0 or not 0 <= slot < SLOTS or view != slot // 5:
        return None
    return pair, person, view, slot


def _record(folder: Path, name: str) -> Record:
    pair, person, view, _ = parse_image_name(name)  # type: ignore[misc]
    return Record(str(folder / name), global_pid(pair, person), camera_id(pair, view))


# ---------------------------------------------------------------- entry point


def load(data_root: Path, *, cache_dir: Path, images: str = "labeled",
         split_source: str = "auto") -> ReidDataset:
    """Read CUHK03 (``images``: ``"labeled"`` or ``"detected"``).

    ``split_source`` picks the layout the images and the 20 classic test sets come from:
    ``"mat"`` (the official ``cuhk-03.mat``), ``"torchreid"`` (torchreid's extracted images
    and ``splits_classic_<kind>.json``) or ``"auto"`` (the .mat when present, else
    torchreid's layout). ``cache_dir`` receives the images extracted from the .mat.
    """
    if images not in IMAGE_KINDS:
        raise DatasetError(f"CUHK03: images must be one of {IMAGE_KINDS}, got {images!r}")
    if split_source not in SPLIT_SOURCES:
        raise DatasetError(
            f"CUHK03: split_source must be one of {SPLIT_SOURCES}, got {split_source!r}")
    ds_dir = Path(data_root) / INFO.folder
    mat_path = ds_dir / "cuhk03_release" / "cuhk-03.mat"
    img_dir = ds_dir / f"images_{images}"
    json_path = ds_dir / f"splits_classic_{images}.json"

    if split_source in ("auto", "mat") and mat_path.is_file():
        return _load_mat(mat_path, Path(cache_dir), images)
    if split_source in ("auto", "torchreid") and img_dir.is_dir():
        return _load_torchreid(img_dir, json_path, images)

    if split_source == "mat":
        looked = f"  {mat_path}"
    elif split_source == "torchreid":
        looked = f"  {img_dir}/  (with {json_path.name})"
    else:
        looked = f"  {mat_path}\n  {img_dir}/  (with {json_path.name})"
    raise DatasetError(
        f"CUHK03 ({images} images, split_source={split_source!r}): not found; looked for:\n"
        f"{looked}\nexpected layout:\n{LAYOUT}")


# ---------------------------------------------------------------- torchreid's layout


def _load_torchreid(img_dir: Path, json_path: Path, kind: str) -> ReidDataset:
    folder = Path(os.path.abspath(img_dir))
    names, unrecognised = [], 0
    for entry in os.scandir(folder):
        if not entry.is_file() or entry.name.startswith("."):
            continue
        if parse_image_name(entry.name) is None:
            unrecognised += 1
        else:
            names.append(entry.name)
    if not names:
        raise DatasetError(
            f"CUHK03: no images named like 1_001_1_01.png in {folder}\n"
            f"expected layout:\n{LAYOUT}")
    names.sort()
    recs = [_record(folder, n) for n in names]
    per_person: dict[int, int] = {}
    for r in recs:
        per_person[r.pid] = per_person.get(r.pid, 0) + 1

    if not json_path.is_file():
        raise DatasetError(
            f"CUHK03: {folder} found but its split file is missing: {json_path}\n"
            f"(torchreid writes it next to the images; or give the official cuhk-03.mat)\n"
            f"expected layout:\n{LAYOUT}")
    test_sets = _torchreid_test_sets(json_path, set(names))

    excluded = {"empty_cells": SLOTS * len(per_person) - len(recs)}
    if unrecognised:
        excluded["unrecognised_files"] = unrecognised
    notes = [
        f"layout: torchreid extracted images {folder} with {json_path.name}",
        f"images: {kind}",
        "empty_cells inferred as 10 * persons - images (persons with no image are not seen)",
    ]
    return _finish(folder, recs, test_sets, excluded, notes, source=str(json_path))


def _torchreid_test_sets(json_path: Path, names: set[str]) -> list[list[int]]:
    try:
        splits = json.loads(json_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"CUHK03: cannot read split file {json_path}: {exc}") from exc
    if not isinstance(splits, list) or not splits:
        raise DatasetError(
            f"CUHK03: {json_path} must hold a non-empty list of splits (torchreid's format)")
    test_sets = []
    for i, split in enumerate(splits):
        if not isinstance(split, dict) or not isinstance(split.get("query"), list):
            raise DatasetError(f"CUHK03: {json_path}: split {i} has no 'query' list")
        pids = set()
        for role in ("train", "query", "gallery"):
            for item in split.get(role) or []:
                if not isinstance(item, (list, tuple)) or not item or not isinstance(item[0], str):
                    raise DatasetError(
                        f"CUHK03: {json_path}: split {i} {role}: entry {item!r} is not "
                        "[path, pid, camid]")
                # absolute path of another machine: keep the file name only
                base = re.split(r"[\\/]", item[0])[-1]
                parsed = parse_image_name(base)
                if parsed is None or base not in names:
                    raise DatasetError(
                        f"CUHK03: {json_path}: split {i} {role} names {item[0]!r}, which is "
                        "not among the images found next to it")
                if role != "train":
                    pids.add(global_pid(parsed[0], parsed[1]))
        test_sets.append(sorted(pids))
    return test_sets


# ---------------------------------------------------------------- official .mat


def _load_mat(mat_path: Path, cache_dir: Path, kind: str) -> ReidDataset:
    st = mat_path.stat()
    key = hashlib.sha1(f"{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]
    base = Path(os.path.abspath(cache_dir)) / f"cuhk03-{key}"
    final = base / f"images_{kind}"
    stamp = {"version": EXTRACT_VERSION, "kind": kind, "size": st.st_size,
             "mtime_ns": st.st_mtime_ns}

    meta = _read_marker(final, stamp)
    if meta is not None:
        how = "reused"
    else:
        meta = _extract(mat_path, kind, base, final, stamp)
        how = "extracted now"

    recs = [_record(final, n) for n in meta["files"]]
    excluded = {"empty_cells": int(meta["empty_cells"])}
    if meta["ids_without_images"]:
        excluded["ids_without_images"] = len(meta["ids_without_images"])
    notes = [
        f"layout: official release {mat_path} (MATLAB v7.3); {kind} images in {final} ({how})",
        f"images: {kind}",
    ]
    if meta["ids_without_images"]:
        notes.append(f"pids with no {kind} image: {meta['ids_without_images']}")
    return _finish(final, recs, meta["test_sets"], excluded, notes, source=str(mat_path))


def _read_marker(final: Path, stamp: dict) -> dict | None:
    """The marker of a complete extraction in ``final`` matching ``stamp``; else None."""
    try:
        meta = json.loads((final / MARKER).read_text())
        if any(meta.get(k) != v for k, v in stamp.items()):
            return None
        if not all(k in meta for k in ("files", "test_sets", "empty_cells",
                                        "ids_without_images")):
            return None
        if not set(meta["files"]) <= set(os.listdir(final)):
            return None
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    return meta


def _open_mat(mat_path: Path):
    import h5py

    try:
        with open(mat_path, "rb") as fh:
            head = fh.read(128)
    except OSError as exc:
        raise DatasetError(f"CUHK03: cannot read {mat_path}: {exc}") from exc
    if not h5py.is_hdf5(str(mat_path)):
        what = ("a MATLAB v5/v7 MAT-file" if head.startswith(b"MATLAB 5.0")
                else "not an HDF5 file")
        raise DatasetError(
            f"CUHK03: {mat_path} is {what}; the official cuhk-03.mat is MATLAB v7.3 (HDF5) "
            "with 'labeled', 'detected' and 'testsets'")
    try:
        return h5py.File(mat_path, "r")
    except OSError as exc:
        raise DatasetError(f"CUHK03: cannot open {mat_path} as HDF5: {exc}") from exc


def _cell_vector(f, key: str, mat_path: Path) -> list:
    """The object references of the 1-D MATLAB cell ``key`` (stored 1xN or Nx1)."""
    import h5py

    if key not in f:
        raise DatasetError(
            f"CUHK03: {mat_path} has no '{key}' (found: {', '.join(sorted(f.keys()))}); "
            "expected the official cuhk-03.mat with 'labeled', 'detected' and 'testsets'")
    ds = f[key]
    if not isinstance(ds, h5py.Dataset) or h5py.check_dtype(ref=ds.dtype) is not h5py.Reference:
        raise DatasetError(f"CUHK03: {mat_path}: '{key}' is not a MATLAB cell array")
    arr = ds[()]
    if arr.ndim > 2 or (arr.ndim == 2 and min(arr.shape) != 1):
        raise DatasetError(
            f"CUHK03: {mat_path}: '{key}' should be a 1-D cell, has shape {arr.shape[::-1]}")
    return list(arr.ravel())


def _deref(f, ref, where: str):
    import h5py

    if not ref:
        return None
    obj = f[ref]
    if not isinstance(obj, h5py.Dataset):
        raise DatasetError(f"CUHK03: {where} does not point to an array")
    return obj


def _read_image(f, ref, where: str) -> np.ndarray | None:
    """An H x W x 3 uint8 image, or None for an empty cell entry."""
    obj = _deref(f, ref, where)
    if obj is None or obj.attrs.get("MATLAB_empty", 0):
        return None
    data = obj[()]
    if data.size == 0 or data.ndim < 3:  # the rule torchreid uses for empty cells
        return None
    img = data.T  # h5py shows MATLAB's H x W x 3 as 3 x W x H
    if img.ndim != 3 or img.shape[2] != 3:
        raise DatasetError(f"CUHK03: {where}: expected an H x W x 3 image, got {img.shape}")
    if img.dtype != np.uint8:
        if not (np.issubdtype(img.dtype, np.number) and img.min() >= 0 and img.max() <= 255):
            raise DatasetError(f"CUHK03: {where}: image of type {img.dtype} is not 8-bit")
        img = img.astype(np.uint8)
    return np.ascontiguousarray(img)


def _read_test_sets(f, mat_path: Path, ids_per_pair: list[int]) -> list[list[int]]:
    test_sets = []
    for k, ref in enumerate(_cell_vector(f, "testsets", mat_path)):
        where = f"{mat_path}: testsets{{{k + 1}}}"
        obj = _deref(f, ref, where)
        arr = None if obj is None else np.asarray(obj[()]).T  # MATLAB n x 2
        if arr is None or arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] == 0:
            raise DatasetError(f"CUHK03: {where}: expected an n x 2 [pair, person] matrix")
        if not np.all(arr == np.round(arr)):
            raise DatasetError(f"CUHK03: {where}: non-integer indices")
        pids = set()
        for pair1, person1 in arr.astype(np.int64).tolist():
            if not (1 <= pair1 <= len(ids_per_pair) and 1 <= person1 <= ids_per_pair[pair1 - 1]):
                raise DatasetError(
                    f"CUHK03: {where}: [pair {pair1}, person {person1}] does not exist")
            pids.add(global_pid(pair1 - 1, person1 - 1))
        test_sets.append(sorted(pids))
    return test_sets


def _extract(mat_path: Path, kind: str, base: Path, final: Path, stamp: dict) -> dict:
    """Write the ``kind`` images of ``mat_path`` as PNG into ``final``; return its marker.

    The structure (cells, test sets) is checked before anything is written. The images go
    into a fresh temporary folder, the marker is written last, then the folder is renamed to
    ``final``: an interrupted extraction leaves no ``final`` (or one without a valid marker)
    and is simply done again on the next call.
    """
    with _open_mat(mat_path) as f:
        pairs = []
        for pair, pref in enumerate(_cell_vector(f, kind, mat_path)):
            where = f"{mat_path}: {kind}{{{pair + 1}}}"
            obj = _deref(f, pref, where)
            cells = None if obj is None else np.asarray(obj[()]).T  # MATLAB n_ids x 10
            if cells is None or cells.ndim != 2 or cells.shape[1] != SLOTS \
                    or cells.dtype != object:
                raise DatasetError(f"CUHK03: {where}: expected an n x 10 cell of images")
            if cells.shape[0] > PID_STRIDE:
                raise DatasetError(f"CUHK03: {where}: more than {PID_STRIDE} persons")
            pairs.append((where, cells))
        ids_per_pair = [cells.shape[0] for _, cells in pairs]
        test_sets = _read_test_sets(f, mat_path, ids_per_pair)

        try:
            base.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatasetError(f"CUHK03: cannot create the cache folder {base}: {exc}") from exc
        _remove_stale_partials(base, kind)
        tmp = base / f".images_{kind}.partial-{os.getpid()}-{secrets.token_hex(4)}"
        log.info("CUHK03: extracting %s images from %s into %s", kind, mat_path, final)
        try:
            tmp.mkdir()
            files, empty, no_image = _write_images(f, pairs, tmp)
            meta = dict(stamp, source=str(mat_path), files=files, empty_cells=empty,
                        ids_per_pair=ids_per_pair, ids_without_images=no_image,
                        test_sets=test_sets)
            (tmp / MARKER).write_text(json.dumps(meta))  # last file written
            if final.exists():  # an incomplete or outdated earlier extraction
                shutil.rmtree(final)
            try:
                os.rename(tmp, final)
            except OSError:
                # another process finished the same extraction first: use its folder
                other = _read_marker(final, stamp)
                if other is None:
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
                return other
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return meta


def _write_images(f, pairs: list, out: Path) -> tuple[list[str], int, list[int]]:
    """Save every image of ``pairs`` into ``out``: (file names, empty cells, pids w/o image)."""
    from PIL import Image

    files, empty, no_image = [], 0, []
    for pair, (where, cells) in enumerate(pairs):
        for person in range(cells.shape[0]):
            n_before = len(files)
            for slot in range(SLOTS):
                img = _read_image(f, cells[person, slot], f"{where}{{{person + 1},{slot + 1}}}")
                if img is None:
                    empty += 1
                    continue
                name = image_name(pair, person, slot)
                Image.fromarray(img).save(out / name, format="PNG")
                files.append(name)
            if len(files) == n_before:
                no_image.append(global_pid(pair, person))
    return files, empty, no_image


def _remove_stale_partials(base: Path, kind: str) -> None:
    """Delete temporary folders left by extractions whose process no longer runs."""
    for p in base.glob(f".images_{kind}.partial-*"):
        try:
            pid = int(p.name.split("-")[1])
            os.kill(pid, 0)
            alive = pid != os.getpid()
        except (ValueError, IndexError, ProcessLookupError):
            alive = False
        except OSError:  # e.g. PermissionError: the process exists
            alive = True
        if not alive:
            shutil.rmtree(p, ignore_errors=True)


# ---------------------------------------------------------------- common


def _finish(root: Path, recs: list[Record], test_sets: list[list[int]], excluded: dict,
            notes: list[str], source: str) -> ReidDataset:
    notes.append(f"pid = {PID_STRIDE} * pair + person; camid = 2 * pair + view (all 0-based)")
    notes.append(f"test sets: {len(test_sets)} classic splits from {source}, "
                 f"{sorted({len(t) for t in test_sets})} ids each")
    if len(test_sets) != NUM_CLASSIC_SPLITS:
        notes.append(f"expected {NUM_CLASSIC_SPLITS} classic splits, found {len(test_sets)}")
    return ReidDataset(name=INFO.name, root=root, images=recs, split=None,
                       test_sets=test_sets, excluded=excluded, notes=notes)
