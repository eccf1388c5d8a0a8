"""CUHK03 reader: the official MATLAB v7.3 .mat and torchreid's extracted layout.

The fake ``cuhk-03.mat`` below is written the way MATLAB writes v7.3 files: an HDF5 file with
a 512-byte user block holding the MAT-file header; every cell array is a dataset of object
references (``MATLAB_class = "cell"``) whose elements live in the ``#refs#`` group; every array
is stored with its dimensions reversed (a MATLAB ``H x W x 3`` uint8 image is an HDF5
``(3, W, H)`` dataset, a MATLAB ``n x 10`` cell a ``(10, n)`` one, a ``5 x 1`` cell ``(1, 5)``);
an empty cell entry points to an empty array: a ``(2,)`` uint64 dataset holding its
dimensions ``[0, 0]`` with the attribute ``MATLAB_empty = 1`` (``#refs#/a``, MATLAB's
"canonical empty", or a per-entry empty ``double``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from datasets import DatasetError, cuhk03, load_dataset

# (pair, person) -> slots (0-9) that hold an image; every other slot is an empty cell.
# 2 camera pairs with 3 + 2 persons. Person (0, 2) has images of one view only.
LABELED = {
    (0, 0): [0, 1, 2, 5, 6],
    (0, 1): [0, 5, 6, 7, 8, 9],
    (0, 2): [0, 1],
    (1, 0): [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    (1, 1): [3, 8],
}
DETECTED = {
    (0, 0): [0, 5],
    (0, 1): [1, 2, 6],
    (0, 2): [0, 4, 9],
    (1, 0): [0, 5],
    (1, 1): [2, 7],
}
IDS_PER_PAIR = [3, 2]
# 20 classic test sets of 1-based [pair, person] rows (MATLAB k x 2 double)
TESTSETS = [np.array([[1, 1 + i % 3], [2, 1 + i % 2]], dtype=np.float64) for i in range(20)]
EXPECTED_TEST_SETS = [sorted([i % 3, 1000 + i % 2]) for i in range(20)]
ORIENT = (0, 1, 0)  # (pair, person, slot) of the labeled image used for the orientation check
IMAGE_KINDS_SEED = {"labeled": 1, "detected": 2}


def _image(kind: str, pair: int, person: int, slot: int) -> np.ndarray:
    """The MATLAB-side H x W x 3 uint8 image of one cell entry (random, reproducible)."""
    seed = [IMAGE_KINDS_SEED[kind], pair, person, slot]
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(6, 12)), int(rng.integers(3, 6))  # always H > W
    img = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    if kind == "labeled" and (pair, person, slot) == ORIENT:
        img[:] = 0
        img[0, 0] = (255, 0, 0)  # top-left: red
        img[h - 1, 0] = (0, 255, 0)  # bottom-left: green
        img[0, w - 1] = (0, 0, 255)  # top-right: blue
    return img


# ---------------------------------------------------------------- a MATLAB v7.3 writer


class _MatV73:
    """Just enough of MATLAB's v7.3 writer for cuhk-03.mat."""

    def __init__(self, path: Path):
        self.path = path
        self.f = h5py.File(path, "w", userblock_size=512)
        self.refs = self.f.create_group("#refs#")
        self.n = 0
        empty = self.refs.create_dataset("a", data=np.zeros(2, dtype=np.uint64))
        empty.attrs["MATLAB_class"] = np.bytes_(b"canonical empty")
        empty.attrs["MATLAB_empty"] = np.uint8(1)
        self.canonical_empty = empty.ref

    def _name(self) -> str:
        self.n += 1
        return f"b{self.n}"

    def array(self, a: np.ndarray, matlab_class: str):
        """Store MATLAB array ``a`` (numpy in MATLAB index order); return its reference."""
        ds = self.refs.create_dataset(self._name(), data=a.T)  # dimensions reversed
        ds.attrs["MATLAB_class"] = np.bytes_(matlab_class.encode())
        return ds.ref

    def empty(self):
        ds = self.refs.create_dataset(self._name(), data=np.zeros(2, dtype=np.uint64))
        ds.attrs["MATLAB_class"] = np.bytes_(b"double")
        ds.attrs["MATLAB_empty"] = np.uint8(1)
        return ds.ref

    def cell(self, refs: np.ndarray, name: str | None = None):
        """A cell array of references (MATLAB index order); top-level when ``name`` is given."""
        data = np.empty(refs.shape[::-1], dtype=h5py.ref_dtype)
        data[...] = refs.T
        if name is None:
            ds = self.refs.create_dataset(self._name(), data=data, dtype=h5py.ref_dtype)
        else:
            ds = self.f.create_dataset(name, data=data, dtype=h5py.ref_dtype)
        ds.attrs["MATLAB_class"] = np.bytes_(b"cell")
        return ds.ref

    def close(self):
        self.f.close()
        text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  6 10:00:00 2014 " \
               b"HDF5 schema 1.00 ."
        header = text.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"
        with open(self.path, "r+b") as fh:
            fh.write(header)


def write_cuhk03_mat(path: Path, kinds=("labeled", "detected"), testsets=True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    m = _MatV73(path)
    specs = {"labeled": LABELED, "detected": DETECTED}
    for kind in kinds:
        pair_refs = np.empty((len(IDS_PER_PAIR), 1), dtype=object)  # MATLAB 5 x 1 cell
        for pair, n_ids in enumerate(IDS_PER_PAIR):
            cells = np.empty((n_ids, 10), dtype=object)  # MATLAB n_ids x 10 cell
            for person in range(n_ids):
                for slot in range(10):
                    if slot in specs[kind][(pair, person)]:
                        cells[person, slot] = m.array(_image(kind, pair, person, slot), "uint8")
                    else:  # alternate MATLAB's two kinds of empty entries
                        cells[person, slot] = m.canonical_empty if slot % 2 else m.empty()
            pair_refs[pair, 0] = m.cell(cells)
        m.cell(pair_refs, name=kind)
    if testsets:
        ts = np.empty((len(TESTSETS), 1), dtype=object)  # MATLAB 20 x 1 cell
        for k, t in enumerate(TESTSETS):
            ts[k, 0] = m.array(t, "double")
        m.cell(ts, name="testsets")
    m.close()
    return path


def _expected(spec: dict) -> list[tuple[str, int, int]]:
    out = []
    for (pair, person), slots in spec.items():
        for slot in slots:
            out.append((f"{pair + 1}_{person + 1:03d}_{slot // 5 + 1}_{slot + 1:02d}.png",
                        1000 * pair + person, 2 * pair + slot // 5))
    return sorted(out)


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


@pytest.fixture
def mat_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_cuhk03_mat(root / "cuhk03" / "cuhk03_release" / "cuhk-03.mat")
    return root


# ---------------------------------------------------------------- official .mat


@pytest.mark.parametrize("kind", ["labeled", "detected"])
def test_mat_records_images_and_test_sets(mat_root: Path, tmp_path: Path, kind: str):
    before = _tree(mat_root)
    cache = tmp_path / "cache"
    ds = cuhk03.load(mat_root, cache_dir=cache, images=kind)
    spec = LABELED if kind == "labeled" else DETECTED

    got = sorted((Path(r.path).name, r.pid, r.camid) for r in ds.images)
    assert got == _expected(spec)
    assert ds.name == "cuhk03" and ds.split is None
    assert ds.num_ids == 5 and ds.num_cams == 4
    assert ds.excluded["empty_cells"] == 10 * 5 - sum(len(s) for s in spec.values())
    assert ds.test_sets == EXPECTED_TEST_SETS
    assert any("official release" in n for n in ds.notes)
    assert any(n == f"images: {kind}" for n in ds.notes)

    # extracted once into the cache, never into data_root
    assert _tree(mat_root) == before
    assert Path(ds.root).parent.parent == cache.absolute()
    assert Path(ds.root).name == f"images_{kind}"
    assert Path(ds.root).parent.name.startswith("cuhk03-")
    for r in ds.images:
        assert Path(r.path).is_absolute() and Path(r.path).parent == Path(ds.root)
        pair, person, _, slot = cuhk03.parse_image_name(Path(r.path).name)
        with Image.open(r.path) as im:
            assert im.format == "PNG" and im.mode == "RGB"
            np.testing.assert_array_equal(np.asarray(im), _image(kind, pair, person, slot))


def test_mat_image_orientation(mat_root: Path, tmp_path: Path):
    ds = cuhk03.load(mat_root, cache_dir=tmp_path / "cache")
    pair, person, slot = ORIENT
    name = cuhk03.image_name(pair, person, slot)
    [rec] = [r for r in ds.images if Path(r.path).name == name]
    h, w = _image("labeled", pair, person, slot).shape[:2]
    with Image.open(rec.path) as im:
        assert im.size == (w, h)  # PIL: (width, height); a person image is tall
        a = np.asarray(im)
    assert a.shape == (h, w, 3) and h > w
    assert tuple(a[0, 0]) == (255, 0, 0)
    assert tuple(a[h - 1, 0]) == (0, 255, 0)
    assert tuple(a[0, w - 1]) == (0, 0, 255)


def test_load_dataset_registry(mat_root: Path, tmp_path: Path):
    ds = load_dataset("cuhk03", mat_root, cache_dir=tmp_path / "cache", images="detected")
    assert len(ds.images) == sum(len(s) for s in DETECTED.values())


def test_extraction_reused_without_rewrite(mat_root: Path, tmp_path: Path, monkeypatch):
    cache = tmp_path / "cache"
    first = cuhk03.load(mat_root, cache_dir=cache)
    snapshot = _tree(cache)

    def boom(*a, **k):
        raise AssertionError("images written again")

    monkeypatch.setattr(cuhk03, "_write_images", boom)
    monkeypatch.setattr(cuhk03, "_open_mat", boom)  # the .mat is not even opened
    second = cuhk03.load(mat_root, cache_dir=cache)
    assert _tree(cache) == snapshot
    assert second.images == first.images and second.test_sets == first.test_sets
    assert second.excluded == first.excluded
    assert any("(reused)" in n for n in second.notes)
    assert any("(extracted now)" in n for n in first.notes)


def test_each_kind_has_its_own_folder(mat_root: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    lab = cuhk03.load(mat_root, cache_dir=cache, images="labeled")
    det = cuhk03.load(mat_root, cache_dir=cache, images="detected")
    assert lab.root != det.root and lab.root.parent == det.root.parent
    assert {r.pid for r in lab.images} == {r.pid for r in det.images}


def test_interrupted_extraction_is_redone(mat_root: Path, tmp_path: Path, monkeypatch):
    cache = tmp_path / "cache"
    real = cuhk03._write_images

    def interrupted(f, pairs, out):
        real(f, pairs[:1], out)  # some images written, then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(cuhk03, "_write_images", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cuhk03.load(mat_root, cache_dir=cache)
    [base] = list(cache.iterdir())
    assert list(base.iterdir()) == []  # no final folder, the partial one removed
    monkeypatch.setattr(cuhk03, "_write_images", real)

    # a partial folder of a killed process (no cleanup ran) is removed by the next run
    stale = base / ".images_labeled.partial-999999999-dead"
    stale.mkdir()
    (stale / "1_001_1_01.png").write_bytes(b"half")
    ds = cuhk03.load(mat_root, cache_dir=cache)
    assert len(ds.images) == sum(len(s) for s in LABELED.values())
    assert sorted(p.name for p in base.iterdir()) == ["images_labeled"]


@pytest.mark.parametrize("damage", ["no_marker", "missing_file", "bad_marker"])
def test_incomplete_extraction_folder_is_redone(mat_root: Path, tmp_path: Path, damage: str):
    cache = tmp_path / "cache"
    ds = cuhk03.load(mat_root, cache_dir=cache)
    marker = Path(ds.root) / cuhk03.MARKER
    if damage == "no_marker":
        marker.unlink()
    elif damage == "missing_file":
        Path(ds.images[0].path).unlink()
    else:
        marker.write_text("{not json")
    again = cuhk03.load(mat_root, cache_dir=cache)
    assert any("(extracted now)" in n for n in again.notes)
    assert again.images == ds.images
    assert all(Path(r.path).is_file() for r in again.images) and marker.is_file()


def test_changed_mat_gets_a_new_cache_folder(mat_root: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    a = cuhk03.load(mat_root, cache_dir=cache)
    mat = mat_root / "cuhk03" / "cuhk03_release" / "cuhk-03.mat"
    st = mat.stat()
    os.utime(mat, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    b = cuhk03.load(mat_root, cache_dir=cache)
    assert a.root.parent != b.root.parent
    assert any("(extracted now)" in n for n in b.notes)


def test_hdf5storage_written_mat(tmp_path: Path):
    """An independent MATLAB v7.3 writer (hdf5storage), when installed, gives the same result."""
    hdf5storage = pytest.importorskip(
        "hdf5storage", reason="hdf5storage (in the [test] extra) is not installed: the "
        "independent MATLAB v7.3 writer check needs it")
    data = {}
    for kind, spec in (("labeled", LABELED), ("detected", DETECTED)):
        pairs = np.empty((len(IDS_PER_PAIR), 1), dtype=object)
        for pair, n_ids in enumerate(IDS_PER_PAIR):
            cells = np.empty((n_ids, 10), dtype=object)
            for person in range(n_ids):
                for slot in range(10):
                    cells[person, slot] = (_image(kind, pair, person, slot)
                                           if slot in spec[(pair, person)]
                                           else np.zeros((0, 0)))
            pairs[pair, 0] = cells
        data[kind] = pairs
    ts = np.empty((len(TESTSETS), 1), dtype=object)
    for k, t in enumerate(TESTSETS):
        ts[k, 0] = t
    data["testsets"] = ts
    root = tmp_path / "data"
    mat = root / "cuhk03" / "cuhk03_release" / "cuhk-03.mat"
    mat.parent.mkdir(parents=True)
    hdf5storage.savemat(str(mat), data, format="7.3", matlab_compatible=True)
    ds = cuhk03.load(root, cache_dir=tmp_path / "cache")
    assert sorted((Path(r.path).name, r.pid, r.camid) for r in ds.images) == _expected(LABELED)
    assert ds.test_sets == EXPECTED_TEST_SETS
    for r in ds.images:
        pair, person, _, slot = cuhk03.parse_image_name(Path(r.path).name)
        with Image.open(r.path) as im:
            np.testing.assert_array_equal(np.asarray(im), _image("labeled", pair, person, slot))


# ---------------------------------------------------------------- torchreid's layout


def write_torchreid_layout(root: Path, kind: str, foreign: str = "/home/someone/reid-data"):
    """torchreid's images_<kind>/ and splits_classic_<kind>.json, paths of another machine."""
    spec = LABELED if kind == "labeled" else DETECTED
    d = root / "cuhk03" / f"images_{kind}"
    d.mkdir(parents=True, exist_ok=True)
    meta = []  # (pair1, person1, [paths]) in torchreid's order
    for (pair, person), slots in sorted(spec.items()):
        paths = []
        for slot in slots:
            name = cuhk03.image_name(pair, person, slot)
            Image.fromarray(_image(kind, pair, person, slot)).save(d / name)
            paths.append(f"{foreign}/cuhk03/images_{kind}/{name}")
        meta.append((pair + 1, person + 1, paths))
    splits = []
    for t in TESTSETS:
        test_rows = t.astype(int).tolist()
        train, test, n_train, n_test = [], [], 0, 0
        for pair1, person1, paths in meta:
            view = [int(Path(p).name.split("_")[2]) - 1 for p in paths]
            if [pair1, person1] in test_rows:
                test += [[p, n_test, v] for p, v in zip(paths, view)]
                n_test += 1
            else:
                train += [[p, n_train, v] for p, v in zip(paths, view)]
                n_train += 1
        splits.append({"train": train, "query": test, "gallery": test,
                       "num_train_pids": n_train, "num_train_imgs": len(train),
                       "num_query_pids": n_test, "num_query_imgs": len(test),
                       "num_gallery_pids": n_test, "num_gallery_imgs": len(test)})
    (root / "cuhk03" / f"splits_classic_{kind}.json").write_text(json.dumps(splits))
    return d


@pytest.mark.parametrize("kind", ["labeled", "detected"])
def test_torchreid_layout_matches_mat(mat_root: Path, tmp_path: Path, kind: str):
    tr_root = tmp_path / "tr"
    folder = write_torchreid_layout(tr_root, kind)
    (folder / "Thumbs.db").write_bytes(b"x")
    ds = cuhk03.load(tr_root, cache_dir=tmp_path / "unused", images=kind)
    ref = cuhk03.load(mat_root, cache_dir=tmp_path / "cache", images=kind)

    assert not (tmp_path / "unused").exists()
    assert Path(ds.root) == folder.absolute()
    assert [(Path(r.path).name, r.pid, r.camid) for r in ds.images] == \
        [(Path(r.path).name, r.pid, r.camid) for r in ref.images]
    assert all(Path(r.path).parent == folder.absolute() for r in ds.images)
    assert ds.test_sets == ref.test_sets == EXPECTED_TEST_SETS
    assert ds.excluded["empty_cells"] == ref.excluded["empty_cells"]
    assert ds.excluded["unrecognised_files"] == 1
    assert any("torchreid" in n for n in ds.notes)


def test_split_source_choice(mat_root: Path, tmp_path: Path):
    write_torchreid_layout(mat_root, "labeled")  # both layouts in one folder
    cache = tmp_path / "cache"
    auto = cuhk03.load(mat_root, cache_dir=cache)
    assert any("official release" in n for n in auto.notes)
    tr = cuhk03.load(mat_root, cache_dir=cache, split_source="torchreid")
    assert any("torchreid" in n for n in tr.notes)
    assert tr.test_sets == auto.test_sets


# ---------------------------------------------------------------- bad input


def test_error_neither_layout(tmp_path: Path):
    with pytest.raises(DatasetError) as e:
        cuhk03.load(tmp_path, cache_dir=tmp_path / "c")
    msg = str(e.value)
    assert str(tmp_path / "cuhk03" / "cuhk03_release" / "cuhk-03.mat") in msg
    assert str(tmp_path / "cuhk03" / "images_labeled") in msg
    assert "expected layout" in msg and "splits_classic_labeled.json" in msg


def test_error_split_source_mat_without_mat(tmp_path: Path):
    write_torchreid_layout(tmp_path, "labeled")
    with pytest.raises(DatasetError, match="cuhk-03.mat"):
        cuhk03.load(tmp_path, cache_dir=tmp_path / "c", split_source="mat")


@pytest.mark.parametrize("arg,value", [("images", "both"), ("split_source", "new")])
def test_error_bad_options(tmp_path: Path, arg: str, value: str):
    with pytest.raises(DatasetError, match=repr(value)):
        cuhk03.load(tmp_path, cache_dir=tmp_path / "c", **{arg: value})


@pytest.mark.parametrize("content,what", [
    (b"MATLAB 5.0 MAT-file, Platform: GLNXA64".ljust(128, b" ") + b"\0" * 64, "v5"),
    (b"garbage" * 20, "not an HDF5 file"),
])
def test_error_mat_not_hdf5(tmp_path: Path, content: bytes, what: str):
    mat = tmp_path / "cuhk03" / "cuhk03_release" / "cuhk-03.mat"
    mat.parent.mkdir(parents=True)
    mat.write_bytes(content)
    with pytest.raises(DatasetError) as e:
        cuhk03.load(tmp_path, cache_dir=tmp_path / "c")
    assert str(mat) in str(e.value) and what in str(e.value)
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("kinds,testsets,missing", [
    (("labeled", "detected"), False, "testsets"),
    (("detected",), True, "labeled"),
])
def test_error_mat_missing_key(tmp_path: Path, kinds, testsets, missing):
    mat = write_cuhk03_mat(tmp_path / "cuhk03" / "cuhk03_release" / "cuhk-03.mat",
                           kinds=kinds, testsets=testsets)
    with pytest.raises(DatasetError) as e:
        cuhk03.load(tmp_path, cache_dir=tmp_path / "c")
    assert str(mat) in str(e.value) and f"'{missing}'" in str(e.value)
    assert not (tmp_path / "c").exists()


def test_error_torchreid_json_missing(tmp_path: Path):
    write_torchreid_layout(tmp_path, "labeled")
    (tmp_path / "cuhk03" / "splits_classic_labeled.json").unlink()
    with pytest.raises(DatasetError, match="splits_classic_labeled.json"):
        cuhk03.load(tmp_path, cache_dir=tmp_path / "c")


def test_error_torchreid_json_names_missing_image(tmp_path: Path):
    folder = write_torchreid_layout(tmp_path, "labeled")
    (folder / cuhk03.image_name(1, 1, 8)).unlink()
    with pytest.raises(DatasetError, match="2_002_2_09.png"):
        cuhk03.load(tmp_path, cache_dir=tmp_path / "c")


def test_names_and_formulas():
    assert cuhk03.image_name(2, 42, 7) == "3_043_2_08.png"
    assert cuhk03.parse_image_name("3_043_2_08.png") == (2, 42, 1, 7)
    assert cuhk03.parse_image_name("3_043_1_08.png") is None  # slot 8 is view 2
    assert cuhk03.global_pid(2, 42) == 2042 and cuhk03.camera_id(4, 1) == 9

