"""The dataset registry, and the contract every registered reader keeps (one test per dataset,
in the spirit of timm's tests/test_models.py): a reader returns well-typed records of files
that exist, and each fact in its ``DatasetInfo`` holds on its data."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from datasets import (
    DatasetError,
    DatasetInfo,
    Record,
    data_folders,
    get_dataset_info,
    get_reader,
    list_datasets,
    load_dataset,
    register_dataset,
    unregister_dataset,
)
from datasets.protocol import ProtocolOptions, get_manifest

REPO = Path(__file__).resolve().parents[1]


# ---- data for each registered dataset: name -> (data root, reader options) -------------------

def _viper(request, tmp_path):
    return request.getfixturevalue("viper_root"), {}


def _market(request, tmp_path):
    return request.getfixturevalue("market_root"), {}


def _duke(request, tmp_path):
    """The real Market-1501 sample renamed to DukeMTMC-reID's layout and names (c1..c6)."""
    src = request.getfixturevalue("market_root") / "market1501" / "Market-1501-v15.09.15"
    root = tmp_path / "duke"
    for sub in ("bounding_box_train", "bounding_box_test", "query"):
        dst = root / "dukemtmc-reid" / "DukeMTMC-reID" / sub
        dst.mkdir(parents=True)
        for i, f in enumerate(sorted((src / sub).iterdir())):
            shutil.copy(f, dst / f"{f.name[:4]}_c{f.name[6]}_f{i:07d}.jpg")
    return root, {}


def _cuhk03(request, tmp_path):
    from tests.test_cuhk03 import write_cuhk03_mat  # a MATLAB v7.3 cuhk-03.mat, 5 ids

    root = tmp_path / "cuhk"
    write_cuhk03_mat(root / "cuhk03" / "cuhk03_release" / "cuhk-03.mat")
    return root, {}


def _caviar(request, tmp_path):
    """The real CAVIAR4REID samples (persons 1 and 2, close camera) plus far-camera copies."""
    root = request.getfixturevalue("caviar_root")
    folder = root / "caviar4reid" / "CAVIAR4REID"
    for src, dst in (("0001007", "0001011"), ("0001008", "0001015"),
                     ("0002001", "0002012"), ("0002002", "0002020")):
        shutil.copy(folder / f"{src}.jpg", folder / f"{dst}.jpg")
    return root, {}


def _synthetic(request, tmp_path):
    return tmp_path / "no-data-here", {"num_ids": 8}


CONTRACT_DATA = {"viper": _viper, "market1501": _market, "dukemtmcreid": _duke,
                 "cuhk03": _cuhk03, "caviar": _caviar, "synthetic": _synthetic}


@pytest.mark.parametrize("name", list_datasets())
def test_reader_contract(name, request, tmp_path, authors_lists):
    assert name in CONTRACT_DATA, f"dataset {name!r} is registered but has no test data here"
    info = get_dataset_info(name)

    # every fact is stated, with the declared type
    assert info.name == name
    for f in dataclasses.fields(DatasetInfo):
        value = getattr(info, f.name)
        types = {"str": str, "int": int, "bool": bool, "str | None": (str, type(None))}[f.type]
        assert isinstance(value, types), f"{name}: {f.name} = {value!r} is not {f.type}"

    # records: (str path of an existing file under the root, int pid, int camid)
    root, options = CONTRACT_DATA[name](request, tmp_path)
    ds = load_dataset(name, root, cache_dir=tmp_path / "cache", **options)
    assert ds.name == name and ds.images
    for rec in ds.images:
        assert type(rec) is Record
        assert (type(rec.path), type(rec.pid), type(rec.camid)) == (str, int, int), rec
        assert rec.camid >= 0 and Path(rec.path).is_absolute() and Path(rec.path).is_file()
        assert Path(rec.path).resolve().is_relative_to(Path(ds.root).resolve())

    # folder: the reader looks for exactly that folder under the data root (None: reads nothing)
    empty = tmp_path / "empty-root"
    empty.mkdir()
    if info.folder is None:
        assert name not in data_folders()
        assert len(load_dataset(name, empty, cache_dir=tmp_path / "cache", **options).images) \
            == len(ds.images)
    else:
        assert data_folders()[name] == info.folder and (root / info.folder).is_dir()
        with pytest.raises(DatasetError) as e:
            load_dataset(name, empty, cache_dir=tmp_path / "cache2")
        assert str(empty / info.folder) in str(e.value)

    # lr_camera / genuine_lr: the default manifest takes its queries from that camera
    m = get_manifest(ds, trial=0, seed=0, manifest_dir=tmp_path / "m", write=False)
    assert m.meta["params"]["lr_camera"] == info.lr_camera
    seen = m.rows("query", "seen")
    assert len(seen) > 0
    view = seen["camid"] % 2 if ds.test_sets is not None else seen["camid"]  # CUHK03: the view
    assert set(view) == {info.lr_camera}
    if info.genuine_lr:  # used as they are
        assert set(seen["rate"]) == {1}
    else:  # down-sampled by a seen rate drawn per image
        assert set(seen["rate"]) <= {2, 3, 4}

    # default_trials: one for a fixed released split; else the last default trial can be built
    # (CUHK03: one classic test set per trial)
    if ds.split is not None:
        assert info.default_trials == 1
    else:
        assert info.default_trials > 1
        last = get_manifest(ds, trial=info.default_trials - 1, seed=0,
                            manifest_dir=tmp_path / "m", write=False)
        assert set(last.frame["trial"]) == {info.default_trials - 1}

    # authors_list_folder / authors_image_name: the authors' lists as they are in shared/
    authors = ProtocolOptions(protocol="authors")
    if info.authors_list_folder is None:
        with pytest.raises(DatasetError, match=f"no authors' lists exist for dataset '{name}'"):
            get_manifest(ds, trial=0, seed=0, manifest_dir=tmp_path / "m", options=authors,
                         authors_lists=authors_lists, write=False)
    else:
        assert (authors_lists / info.authors_list_folder / "train_list.csv").is_file()
    if info.authors_image_name is not None:
        names = {info.authors_image_name.format(pid=r.pid, camid=r.camid) for r in ds.images}
        assert len(names) == len(ds.images)  # one name per image
        listed = pd.read_csv(authors_lists / info.authors_list_folder / "train_list.csv")
        assert {Path(p).name for p in listed["image_path"]} <= names


@pytest.mark.parametrize("name, lr_camera, genuine_lr, default_trials, authors_list_folder", [
    ("viper", 0, False, 10, "VIPeR"),  # cam_a LR, 10 random halves
    ("caviar", 1, True, 10, "CAVIAR"),  # the far camera, genuinely LR: no down-sampling
    ("cuhk03", 1, False, 10, "CUHK03"),  # view 2 LR, classic test sets
    ("market1501", 0, False, 1, "Market-1501"),  # camera 1 LR, the released split
    ("dukemtmcreid", 0, False, 1, "DukeMTMC-reID"),
])
def test_paper_datasets_keep_the_protocol_of_the_design_notes(
        name, lr_camera, genuine_lr, default_trials, authors_list_folder):
    info = get_dataset_info(name)
    assert (info.lr_camera, info.genuine_lr, info.default_trials, info.authors_list_folder) == \
        (lr_camera, genuine_lr, default_trials, authors_list_folder)


# ---- the registry ----------------------------------------------------------------------------

TINY = DatasetInfo(name="tinyreid", folder="tiny-reid", default_trials=3, lr_camera=1,
                   authors_list_folder=None, genuine_lr=False, authors_image_name=None)


def _tiny_root(tmp_path: Path, viper_root: Path) -> Path:
    """6 real VIPeR persons as <root>/tiny-reid/cam<c>/<pid>.bmp."""
    root = tmp_path / "data"
    for cam, sub in enumerate(("cam_a", "cam_b")):
        (root / "tiny-reid" / f"cam{cam}").mkdir(parents=True)
        for pid, f in enumerate(sorted((viper_root / "viper" / "VIPeR" / sub).iterdir())[:6]):
            shutil.copy(f, root / "tiny-reid" / f"cam{cam}" / f"{pid}.bmp")
    return root


def test_a_reader_registered_anywhere_is_seen_by_every_consumer(tmp_path, viper_root, capsys):
    from benchmark.cli import UsageError, resolve_datasets
    from benchmark.cli import list_datasets as cli_list_datasets
    from benchmark.config import RunConfig
    from datasets.base import ReidDataset

    root = _tiny_root(tmp_path, viper_root)
    assert "tinyreid" not in list_datasets()

    # the whole new dataset: one reader and one registration
    @register_dataset(TINY)
    def load_tiny(data_root, *, cache_dir=None):
        base = Path(data_root) / TINY.folder
        images = [Record(str(p), int(p.stem), int(p.parent.name[3:]))
                  for p in sorted(base.glob("cam*/*.bmp"))]
        return ReidDataset(name=TINY.name, root=base, images=images)

    try:
        assert list_datasets()[-1] == "tinyreid" and get_dataset_info("tinyreid") is TINY
        assert get_reader("tinyreid") is load_tiny
        ds = load_dataset("tinyreid", root)
        assert len(ds.images) == 12 and ds.num_ids == 6

        # the CLI finds it under --data-root, checks its folder, lists it
        assert resolve_datasets(None, root) == ["tinyreid"]
        assert resolve_datasets("tinyreid,synthetic", root) == ["tinyreid", "synthetic"]
        with pytest.raises(UsageError, match=f"folder {tmp_path / 'tiny-reid'} not found"):
            resolve_datasets("tinyreid", tmp_path)
        assert cli_list_datasets(root) == 0
        out = capsys.readouterr().out
        assert "tinyreid" in out and "not found" in out  # every other dataset is absent here

        # the protocol and the runner take its LR camera and default trials
        m = get_manifest(ds, trial=0, seed=0, manifest_dir=tmp_path / "m", write=False)
        assert m.meta["params"]["lr_camera"] == 1
        assert set(m.rows("query")["camid"]) == {1} and set(m.rows("gallery")["camid"]) == {0}
        cfg = RunConfig(datasets=["tinyreid"], methods=[], data_root=root, out=tmp_path / "out")
        assert cfg.num_trials("tinyreid") == 3
    finally:
        unregister_dataset("tinyreid")

    assert "tinyreid" not in list_datasets()
    with pytest.raises(UsageError, match="no dataset folder in it"):  # an explicit root
        resolve_datasets(None, root)
    with pytest.raises(DatasetError, match="unknown dataset 'tinyreid'; known datasets: market1501"):
        load_dataset("tinyreid", root)


def test_registry_refuses_duplicates_and_bad_facts():
    with pytest.raises(DatasetError, match="'viper' is already registered"):
        register_dataset(dataclasses.replace(TINY, name="viper"), lambda root, **kw: None)
    with pytest.raises(DatasetError, match="built-in"):
        unregister_dataset("viper")
    with pytest.raises(DatasetError, match="'tinyreid' is not registered"):
        unregister_dataset("tinyreid")
    with pytest.raises(TypeError, match="needs a DatasetInfo"):
        register_dataset({"name": "x"}, lambda root, **kw: None)
    with pytest.raises(ValueError, match=r"DatasetInfo\(tinyreid\)\.default_trials .* >= 1, got 0"):
        dataclasses.replace(TINY, default_trials=0)
    with pytest.raises(ValueError, match=r"DatasetInfo\(tinyreid\)\.lr_camera .* got True"):
        dataclasses.replace(TINY, lr_camera=True)
    with pytest.raises(ValueError, match=r"\.folder must be a non-empty string or None"):
        dataclasses.replace(TINY, folder="")
    assert "viper" in list_datasets() and get_dataset_info("viper").folder == "viper"


def test_a_reader_module_is_imported_only_when_its_dataset_is_used():
    code = ("import sys, datasets; datasets.get_reader('viper'); "
            "print(sorted(m for m in sys.modules if m.startswith('datasets.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "['datasets.base', 'datasets.errors', 'datasets.images', 'datasets.viper']"
