"""MLR protocol manifests on real VIPeR, the authors' lists, and the LR image maker."""

from __future__ import annotations

import hashlib

import pytest
import torch
import torch.nn.functional as F

from datasets import DatasetError, load_dataset
from datasets.loader import ImageStore, make_lr
from datasets.protocol import ProtocolOptions, get_manifest


@pytest.fixture(scope="module")
def viper(viper_root):
    return load_dataset("viper", viper_root)


def _manifest(ds, tmp, seed=0, trial=0, **kw):
    return get_manifest(ds, trial=trial, seed=seed, manifest_dir=tmp, **kw)


def test_mlr_viper_manifest_follows_the_protocol(viper, tmp_path):
    for trial in range(3):
        f = _manifest(viper, tmp_path, trial=trial).frame
        train, q, g = (f[f.role == r] for r in ("train", "query", "gallery"))
        train_ids, test_ids = set(train.pid), set(g.pid)
        assert len(train_ids) == 316 and len(test_ids) == 316 and not train_ids & test_ids
        # training: every image at r = 1 and at each seen rate
        assert sorted(train.rate.unique()) == [1, 2, 3, 4]
        assert (train.groupby("rate").size() == 632).all()
        seen, unseen = q[q.subset == "seen"], q[q.subset == "unseen"]
        # queries: every test id once, from the LR camera (cam_a), r per image in {2,3,4}
        assert len(seen) == 316 and set(seen.pid) == test_ids and (seen.camid == 0).all()
        assert set(seen.rate) == {2, 3, 4}
        assert len(unseen) == 316 and (unseen.rate == 8).all() and (unseen.camid == 0).all()
        assert list(unseen.path) == list(seen.path)
        # gallery: one full-resolution image per test id, from the other camera
        assert len(g) == 316 and g.pid.is_unique and (g.camid == 1).all() and (g.rate == 1).all()
        assert (f.trial == trial).all()


def test_manifests_are_byte_identical_and_seeded(viper, tmp_path):
    a = _manifest(viper, tmp_path / "a", seed=3)
    b = _manifest(viper, tmp_path / "b", seed=3)
    assert not a.meta["reused"] and not b.meta["reused"]
    (file_a,) = (tmp_path / "a" / "viper" / "paper" / "seed3").glob("trial0-*.csv")
    (file_b,) = (tmp_path / "b" / "viper" / "paper" / "seed3").glob("trial0-*.csv")
    assert file_a.name == file_b.name
    bytes_a, bytes_b = file_a.read_bytes(), file_b.read_bytes()
    assert bytes_a == bytes_b and hashlib.sha256(bytes_a).hexdigest() == a.meta["sha256"]
    again = _manifest(viper, tmp_path / "a", seed=3)
    assert again.meta["reused"] and again.frame.equals(a.frame)
    other_seed = _manifest(viper, tmp_path / "a", seed=4).frame
    other_trial = _manifest(viper, tmp_path / "a", seed=3, trial=1).frame
    test_ids = set(a.frame[a.frame.role == "gallery"].pid)
    assert set(other_seed[other_seed.role == "gallery"].pid) != test_ids
    assert set(other_trial[other_trial.role == "gallery"].pid) != test_ids


def test_changed_options_rebuild_and_tampering_is_caught(viper, tmp_path):
    m = _manifest(viper, tmp_path)
    alt = _manifest(viper, tmp_path, options=ProtocolOptions(lr_camera=1))
    assert not alt.meta["reused"] and (alt.rows("query").camid == 1).all()
    csv = tmp_path / m.meta["file"]
    csv.write_bytes(csv.read_bytes().replace(b",2,0,seen", b",3,0,seen", 1))
    with pytest.raises(DatasetError, match="does not match the sha256"):
        _manifest(viper, tmp_path)
    assert m.meta["sha256"] != alt.meta["sha256"]


def test_bad_protocol_options_are_refused(viper, tmp_path):
    with pytest.raises(DatasetError, match="unseen rate 4 is also a seen rate"):
        _manifest(viper, tmp_path, options=ProtocolOptions(unseen_rate=4))
    with pytest.raises(DatasetError, match="unknown protocol 'sing'"):
        _manifest(viper, tmp_path, options=ProtocolOptions(protocol="sing"))
    with pytest.raises(DatasetError, match="--authors-lists"):
        _manifest(viper, tmp_path, options=ProtocolOptions(protocol="authors"))


def test_authors_lists_load_into_the_same_manifest_form(viper, tmp_path, authors_lists):
    m = _manifest(viper, tmp_path, options=ProtocolOptions(protocol="authors"),
                  authors_lists=authors_lists)
    f = m.frame
    train, q, g = (f[f.role == r] for r in ("train", "query", "gallery"))
    # the authors' default training list: 316 ids x 2 cameras at r in {1, 2, 4}
    assert train.groupby("rate").size().to_dict() == {1: 632, 2: 632, 4: 632}
    seen = q[q.subset == "seen"]
    # queries from both cameras, every one at r = 2, 3 and 4; gallery: every test image
    assert seen.groupby("rate").size().to_dict() == {2: 632, 3: 632, 4: 632}
    assert set(seen.camid) == {0, 1} and len(g) == 632 and set(g.pid) == set(seen.pid)
    assert not set(train.pid) & set(g.pid)
    # the open-reid names resolve to the real files: images/00000001_00_0000.jpg is the
    # second file of cam_a, labelled id 316 by the authors
    row = g[(g.pid == 316) & (g.camid == 0)].iloc[0]
    assert row.path == "cam_a/" + sorted(p.name for p in (viper.root / "cam_a").iterdir())[1]
    with pytest.raises(DatasetError, match="one fixed split"):
        _manifest(viper, tmp_path, trial=1, options=ProtocolOptions(protocol="authors"),
                  authors_lists=authors_lists)


def test_authors_list_with_unknown_image_names_the_file(viper, tmp_path):
    lists = tmp_path / "lists" / "VIPeR"
    lists.mkdir(parents=True)
    (lists / "train_list.csv").write_text("image_path,id,camera,downsample\nimages/nope.jpg,0,0,1\n")
    with pytest.raises(DatasetError, match=r"train_list.csv: image 'images/nope.jpg' not found"):
        _manifest(viper, tmp_path / "m", options=ProtocolOptions(protocol="authors"),
                  authors_lists=tmp_path / "lists")


def test_make_lr_downsamples_then_upsamples(viper):
    store = ImageStore([r.path for r in viper.images[:8]], (128, 64))
    x = store.batch(torch.arange(8))
    rates = torch.tensor([1, 2, 3, 4, 8, 1, 2, 8])
    y = make_lr(x, rates, "bilinear")
    assert y.shape == x.shape and torch.equal(y[0], x[0]) and torch.equal(y[5], x[5])
    ref = F.interpolate(F.interpolate(x[3:4], size=(32, 16), mode="bilinear", antialias=True),
                        size=(128, 64), mode="bilinear").clamp(0, 1)
    assert torch.allclose(y[3:4], ref, atol=1e-6)
    pooled = F.interpolate(F.max_pool2d(x[3:4], 4), size=(128, 64), mode="bilinear")
    assert torch.allclose(make_lr(x[3:4], [4], "maxpool"), pooled.clamp(0, 1), atol=1e-6)
    # LR loses detail, more so at r = 8 than at r = 2
    err = lambda i: (y[i] - x[i]).abs().mean().item()  # noqa: E731
    assert 0 < err(1) < err(4) and 0 < err(6) < err(7)
    with pytest.raises(DatasetError, match="at least 2 px"):
        make_lr(x[:1, :, :8, :8], [8])
    with pytest.raises(ValueError, match="unknown LR method"):
        make_lr(x, rates, "nearest")
