"""Readers on real data: VIPeR (complete), Market-1501 and CAVIAR4REID samples."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from datasets import DatasetError, get_reader, list_datasets, load_dataset
from datasets.loader import ImageStore, check_images, decode_image
from tests.conftest import shared_path


def test_viper_reader_finds_632_ids_in_2_cameras(viper_root):
    ds = load_dataset("viper", viper_root)
    assert ds.num_ids == 632 and len(ds.images) == 1264 and ds.num_cams == 2
    for cam in (0, 1):
        pids = [r.pid for r in ds.images if r.camid == cam]
        assert sorted(pids) == list(range(632))
    first_a = next(r for r in ds.images if r.pid == 0 and r.camid == 0)
    first_b = next(r for r in ds.images if r.pid == 0 and r.camid == 1)
    assert Path(first_a.path).parent.name == "cam_a" and Path(first_b.path).parent.name == "cam_b"
    assert Path(first_a.path).name.split("_")[0] == Path(first_b.path).name.split("_")[0]


def test_market_reader_parses_the_real_sample(market_root):
    ds = load_dataset("market1501", market_root)
    assert set(ds.split) == {"train", "query", "gallery"}
    for role in ("train", "query", "gallery"):
        recs = ds.split[role]
        assert len(recs) == 32 and len({r.pid for r in recs}) == 16
        assert {r.camid for r in recs} == set(range(6))
    rec = next(r for r in ds.split["gallery"] if Path(r.path).name == "0005_c5s1_083773_02.jpg")
    assert (rec.pid, rec.camid) == (5, 4)
    # train and test identities are disjoint in the released split
    assert not {r.pid for r in ds.split["train"]} & {r.pid for r in ds.split["gallery"]}


def test_market_junk_and_distractors_handled_the_standard_way(market_root):
    base = market_root / "market1501" / "Market-1501-v15.09.15"
    src = next((base / "bounding_box_test").iterdir())
    shutil.copy(src, base / "bounding_box_test" / "-1_c1s1_000401_03.jpg")
    shutil.copy(src, base / "bounding_box_test" / "0000_c1s1_000151_01.jpg")
    shutil.copy(src, base / "bounding_box_train" / "0000_c2s1_000151_01.jpg")
    ds = load_dataset("market1501", market_root)
    assert ds.excluded == {"junk (pid -1)": 1, "distractor in train (pid 0)": 1}
    assert sum(r.pid == 0 for r in ds.split["gallery"]) == 1  # distractor stays in the gallery
    assert all(r.pid != -1 for r in ds.images)


def test_market_without_version_folder_and_duke_layout(tmp_path, market_root):
    src = market_root / "market1501" / "Market-1501-v15.09.15"
    flat = tmp_path / "flat"
    shutil.copytree(src, flat / "market1501")
    assert len(load_dataset("market1501", flat).images) == 96
    duke = tmp_path / "duke" / "dukemtmc-reid" / "DukeMTMC-reID"
    for sub in ("bounding_box_train", "bounding_box_test", "query"):
        (duke / sub).mkdir(parents=True)
        for i, f in enumerate(sorted((src / sub).iterdir())):
            pid, cam = f.name[:4], int(f.name[6])
            shutil.copy(f, duke / sub / f"{pid}_c{cam + 2}_f{i:07d}.jpg")
    ds = load_dataset("dukemtmcreid", tmp_path / "duke")
    assert len(ds.images) == 96 and {r.camid for r in ds.images} == set(range(2, 8))  # c3..c8


def test_caviar_reader_cameras_and_single_camera_ids(caviar_root):
    # the real samples are images 1-10 of persons 1 and 2: all from the close camera
    ds = load_dataset("caviar", caviar_root, keep_single_camera=True)
    assert len(ds.images) == 8 and {r.camid for r in ds.images} == {0}
    assert sorted({r.pid for r in ds.images}) == [1, 2]
    ds = load_dataset("caviar", caviar_root)
    assert ds.images == [] and ds.excluded == {"single-camera ids": 2}
    # give person 1 far-camera images (indices 11-20): it is kept, person 2 is dropped
    folder = caviar_root / "caviar4reid" / "CAVIAR4REID"
    shutil.copy(folder / "0001007.jpg", folder / "0001011.jpg")
    shutil.copy(folder / "0001008.jpg", folder / "0001015.jpg")
    ds = load_dataset("caviar", caviar_root)
    assert {r.pid for r in ds.images} == {1} and ds.excluded == {"single-camera ids": 1}
    far = sorted(Path(r.path).name for r in ds.images if r.camid == 1)
    assert far == ["0001011.jpg", "0001015.jpg"]


def test_caviar_flat_folder_accepted(tmp_path, caviar_samples):
    shutil.copytree(caviar_samples, tmp_path / "caviar4reid")
    assert len(load_dataset("caviar", tmp_path, keep_single_camera=True).images) == 8


# ---- bad input -------------------------------------------------------------------------------

def test_missing_dataset_folder_names_what_was_looked_for(tmp_path):
    with pytest.raises(DatasetError) as e:
        load_dataset("viper", tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "viper" / "VIPeR") in msg and "cam_a/*.bmp" in msg


def test_wrong_layout_names_the_missing_folder(tmp_path):
    (tmp_path / "viper" / "VIPeR" / "cam_a").mkdir(parents=True)
    with pytest.raises(DatasetError, match="cam_b"):
        load_dataset("viper", tmp_path)


def test_viper_unpaired_cameras_is_an_error(tmp_path, viper_root):
    src = viper_root / "viper" / "VIPeR"
    for cam, names in (("cam_a", ["000_45.bmp", "001_45.bmp"]), ("cam_b", ["000_90.bmp"])):
        (tmp_path / "viper" / "VIPeR" / cam).mkdir(parents=True)
        for n in names:
            shutil.copy(next((src / cam).iterdir()), tmp_path / "viper" / "VIPeR" / cam / n)
    with pytest.raises(DatasetError, match="cam_a has 2 images and cam_b 1"):
        load_dataset("viper", tmp_path)


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DatasetError) as e:
        get_reader("msmt17")
    assert "msmt17" in str(e.value) and all(n in str(e.value) for n in list_datasets())


def test_market_bad_file_name_is_named(market_root):
    base = market_root / "market1501" / "Market-1501-v15.09.15" / "query"
    shutil.copy(next(base.iterdir()), base / "snapshot.jpg")
    with pytest.raises(DatasetError, match="snapshot.jpg"):
        load_dataset("market1501", market_root)


def test_zero_byte_and_corrupt_images_are_named(tmp_path, market_root):
    empty = tmp_path / "0001_c1s1_000001_01.jpg"
    empty.write_bytes(b"")
    with pytest.raises(DatasetError, match=r"empty \(0 bytes\).*0001_c1s1_000001_01.jpg"):
        decode_image(empty, (16, 8))
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg at all" * 4)
    with pytest.raises(DatasetError, match="cannot decode image .*garbage.jpg"):
        decode_image(garbage, (16, 8))
    real = next((market_root / "market1501" / "Market-1501-v15.09.15" / "query").iterdir())
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(real.read_bytes()[:300])
    with pytest.raises(DatasetError, match="truncated.jpg"):
        decode_image(truncated, (16, 8))
    good, bad = check_images([str(real), str(garbage), str(empty)], skip_bad=True)
    assert good == [str(real)] and bad == [str(garbage), str(empty)]
    with pytest.raises(DatasetError):
        check_images([str(real), str(garbage)])


def test_tiny_image_is_an_error(tmp_path):
    p = tmp_path / "tiny.png"
    Image.new("RGB", (1, 5)).save(p)
    with pytest.raises(DatasetError, match="tiny.png is only 1x5 px"):
        decode_image(p, (16, 8))


def test_grayscale_rgba_and_palette_images_are_converted_to_rgb(tmp_path):
    rgb = np.zeros((8, 4, 3), np.uint8)
    rgb[..., 0] = 200
    rgb[..., 2] = 50
    Image.fromarray(rgb[..., 0]).save(tmp_path / "gray.png")
    Image.fromarray(np.dstack([rgb, np.full((8, 4), 255, np.uint8)])).save(tmp_path / "rgba.png")
    Image.fromarray(rgb).convert("P").save(tmp_path / "pal.png")
    g = decode_image(tmp_path / "gray.png", (8, 4))
    assert g.shape == (3, 8, 4) and (g == 200).all()
    a = decode_image(tmp_path / "rgba.png", (8, 4))
    assert tuple(a[:, 0, 0]) == (200, 0, 50)
    p = decode_image(tmp_path / "pal.png", (8, 4))
    assert p.shape == (3, 8, 4) and abs(int(p[0, 0, 0]) - 200) <= 8


def test_image_store_decodes_once_and_reuses_the_disk_cache(tmp_path, viper_root):
    paths = [r.path for r in load_dataset("viper", viper_root).images[:10]]
    s1 = ImageStore(paths + paths[:3], (32, 16), cache_dir=tmp_path)
    assert len(s1) == 10 and s1.data.shape == (10, 3, 32, 16) and s1.data.dtype.is_floating_point is False
    cached = list(tmp_path.glob("images-32x16-*.npy"))
    assert len(cached) == 1
    s2 = ImageStore(paths, (32, 16), cache_dir=tmp_path)
    assert (s1.data == s2.data).all()
    x = s1.batch(s1.indices([paths[4]]))
    ref = decode_image(paths[4], (32, 16))
    assert np.allclose(x[0].numpy() * 255, ref, atol=1e-3)


def test_market_subset_or_resplit_is_not_comparable_with_the_paper(market_root, monkeypatch):
    """Image counts other than the released ones (the sample here; a re-split) mark the
    dataset as not comparable, with both counts in the note; the released counts do not."""
    import datasets.market1501 as market

    ds = load_dataset("market1501", market_root)
    assert ds.comparable is False and len(ds.notes) == 1
    assert "not the released split" in ds.notes[0] and "query 3,368" in ds.notes[0]
    n = {role: len(recs) for role, recs in ds.split.items()}
    monkeypatch.setattr(market, "RELEASED", {"train": n["train"], "query": n["query"],
                                             "gallery": n["gallery"]})
    ds = load_dataset("market1501", market_root)  # no junk in the sample: files == records
    assert ds.comparable is True and ds.notes == []


def test_market_resplit_data_root_is_labelled():
    root = shared_path("data-market-resplit")
    ds = load_dataset("market1501", root)
    assert not ds.comparable
    assert "query 1,635, gallery 4,963" in ds.notes[0]
