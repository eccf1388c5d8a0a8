"""lomo-xqda: LOMO descriptor structure and invariances, XQDA algebra, a fit on real VIPeR."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from baselines.lomo import LomoParams, _window_starts, lomo, lomo_dim, siltp
from baselines.lomo_xqda import LomoXqdaMethod, select_training_rows, xqda

HSV_DIM = 40 * 512  # 128 x 48: 24 + 11 + 5 window rows, 8 x 8 x 8 joint bins
SILTP_DIM = 40 * 81  # per radius


def _images(n, h=128, w=48, seed=0):
    return np.random.default_rng(seed).random((n, 3, h, w))


def _swap_left_right_digits(code: np.ndarray) -> np.ndarray:
    """SILTP digit order is (right, up, left, down): a mirror swaps digits 0 and 2."""
    d = [(code // 3 ** k) % 3 for k in range(4)]
    return d[2] + 3 * d[1] + 9 * d[0] + 27 * d[3]


def test_lomo_dimension_is_the_papers_26960():
    p = LomoParams()
    assert [len(_window_starts(h, p)) for h in (128, 64, 32)] == [24, 11, 5]
    assert [len(_window_starts(w, p)) for w in (48, 24, 12)] == [8, 3, 1]
    assert lomo_dim(128, 48) == 26960 == HSV_DIM + 2 * SILTP_DIM
    f = lomo(_images(3))
    assert f.shape == (3, 26960) and f.dtype == np.float32 and np.isfinite(f).all()
    assert (f >= 0).all()
    # log-histograms, L2-normalised per block: HSV, SILTP R=3, SILTP R=5
    for a, b in ((0, HSV_DIM), (HSV_DIM, HSV_DIM + SILTP_DIM), (HSV_DIM + SILTP_DIM, 26960)):
        np.testing.assert_allclose(np.linalg.norm(f[:, a:b], axis=1), 1.0, rtol=1e-5)
    # other sizes: the documented formula matches what is computed
    for h, w in ((64, 32), (160, 60)):
        assert lomo(_images(1, h, w)).shape[1] == lomo_dim(h, w)


def test_lomo_is_deterministic_and_per_image():
    x = _images(4, seed=1)
    a, b = lomo(x), lomo(x)
    assert np.array_equal(a, b)
    # an image's descriptor does not depend on the rest of the batch
    np.testing.assert_array_equal(lomo(x[2:3]), a[2:3])


def test_siltp_codes_mirror_and_are_scale_invariant():
    g = np.random.default_rng(2).random((2, 20, 16)) + 0.05
    for r in (3, 5):
        c = siltp(g, 0.3, r)
        assert c.min() >= 0 and c.max() < 81
        # mirroring the image mirrors the code map with left/right digits swapped
        np.testing.assert_array_equal(siltp(g[..., ::-1], 0.3, r),
                                      _swap_left_right_digits(c)[..., ::-1])
        # scale invariance: multiplying the intensities by a constant changes nothing
        np.testing.assert_array_equal(siltp(0.5 * g, 0.3, r), c)


def test_lomo_siltp_blocks_ignore_global_intensity_scaling():
    x = _images(2, seed=3)
    a, b = lomo(x), lomo(0.5 * x)
    np.testing.assert_array_equal(a[:, HSV_DIM:], b[:, HSV_DIM:])
    assert not np.array_equal(a[:, :HSV_DIM], b[:, :HSV_DIM])  # Retinex/HSV are not


def test_lomo_is_mirror_invariant_with_a_symmetric_window_grid():
    # maximal occurrence over each row of windows: with a left-right symmetric grid of
    # windows (width 45: starts 0..35 step 5) the HSV part is unchanged by a horizontal
    # flip and the SILTP part only has its left/right digits swapped (a bin permutation)
    p = LomoParams(num_scales=1)
    x = _images(2, 128, 45, seed=4)
    a, b = lomo(x, p), lomo(x[..., ::-1].copy(), p)
    rows = len(_window_starts(128, p))
    hsv = rows * 512
    assert a.shape[1] == hsv + 2 * rows * 81
    np.testing.assert_allclose(a[:, :hsv], b[:, :hsv], atol=1e-6)
    perm = _swap_left_right_digits(np.arange(81))
    for k in range(2):
        blk = slice(hsv + k * rows * 81, hsv + (k + 1) * rows * 81)
        ha, hb = a[:, blk].reshape(2, rows, 81), b[:, blk].reshape(2, rows, 81)
        np.testing.assert_allclose(hb, ha[..., perm], atol=1e-6)
    # a left-right symmetric image therefore has identical features to its flip
    sym = np.concatenate([x[..., :24], x[..., :23][..., ::-1]], -1)
    assert sym.shape[-1] == 47
    np.testing.assert_array_equal(sym, sym[..., ::-1])
    np.testing.assert_array_equal(lomo(sym), lomo(sym[..., ::-1].copy()))


def _explicit_covariances(xg, yg, xp, yp):
    """Intra/extra covariances by enumerating every (gallery, probe) pair."""
    d = xg[:, None, :] - xp[None, :, :]
    same = yg[:, None] == yp[None, :]
    di, de = d[same], d[~same]
    return di.T @ di / len(di), de.T @ de / len(de)


@pytest.mark.parametrize("d", [12, 150])  # d < N (direct) and d > N (span-of-samples basis)
def test_xqda_matches_explicit_pairs_and_euclidean_equals_xqda_distance(d):
    rng = np.random.default_rng(5)
    yg, yp = np.repeat(np.arange(15), 2), np.repeat(np.arange(15), 3)
    centres = rng.normal(size=(15, d))
    xg = centres[yg] + 0.5 * rng.normal(size=(len(yg), d))
    xp = centres[yp] + 0.5 * rng.normal(size=(len(yp), d))
    model = xqda(xg, yg, xp, yp, lam=1e-3)
    assert model.num_intra == 15 * 2 * 3 and model.num_extra == 30 * 45 - 90
    sig_i, sig_e = _explicit_covariances(xg, yg, xp, yp)
    w = model.W
    r = w.shape[1]
    assert 1 <= r == model.num_above_one and (model.eigenvalues > 1).all()
    # lambda * I is added in the full space (d < N) or in the orthonormal basis of the samples'
    # span (d > N, as the authors' QR); both give W' Sigma_I W + lambda W'W in the subspace
    np.testing.assert_allclose(w.T @ sig_i @ w + 1e-3 * w.T @ w, model.in_cov,
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(w.T @ sig_e @ w, model.ex_cov, rtol=1e-6, atol=1e-8)
    # generalised eigenvectors: W' Sigma_I' W = I, W' Sigma_E W = diag(eigenvalues)
    np.testing.assert_allclose(model.in_cov, np.eye(r), atol=1e-8)
    np.testing.assert_allclose(model.ex_cov, np.diag(model.eigenvalues), rtol=1e-6, atol=1e-8)
    m = np.linalg.inv(model.in_cov) - np.linalg.inv(model.ex_cov)
    np.testing.assert_allclose(model.M, m, atol=1e-8)
    assert np.linalg.eigvalsh(model.M).min() > -1e-10  # PSD: only eigenvalues > 1 kept
    # Euclidean distance of the features == the XQDA distance, also for unseen vectors
    a, b = rng.normal(size=(20, d)), rng.normal(size=(20, d))
    euc = ((model.transform(a) - model.transform(b)) ** 2).sum(1)
    quad = np.einsum("ij,jk,ik->i", (a - b) @ w, model.M, (a - b) @ w)
    np.testing.assert_allclose(euc, quad, rtol=1e-8)
    np.testing.assert_allclose(model.distance(a, b), quad, rtol=1e-12)


def test_xqda_single_view_matches_explicit_pairs_without_self_pairs():
    rng = np.random.default_rng(6)
    y = np.repeat(np.arange(8), 3)
    x = rng.normal(size=(8, 5))[y] + 0.3 * rng.normal(size=(24, 5))
    model = xqda(x, y, lam=0.0)
    same = (y[:, None] == y[None, :]) & ~np.eye(24, dtype=bool)
    diff = y[:, None] != y[None, :]
    dd = x[:, None] - x[None]
    sig_i = dd[same].T @ dd[same] / same.sum()
    sig_e = dd[diff].T @ dd[diff] / diff.sum()
    assert model.num_intra == same.sum() and model.num_extra == diff.sum()
    np.testing.assert_allclose(model.W.T @ sig_i @ model.W, model.in_cov, atol=1e-8)
    np.testing.assert_allclose(model.W.T @ sig_e @ model.W, model.ex_cov, atol=1e-8)


def _rank1(q, yq, g, yg):
    dist = ((q[:, None] - g[None]) ** 2).sum(-1)
    return float((yg[dist.argmin(1)] == yq).mean())


def test_xqda_separates_classes_that_euclidean_distance_cannot():
    # identity lives in 2 low-variance dimensions, hidden under 20 high-variance nuisance ones
    rng = np.random.default_rng(7)

    def sample(ids, n):
        y = np.repeat(ids, n)
        disc = centres[y] + 0.05 * rng.normal(size=(len(y), 2))
        return np.concatenate([disc, 3.0 * rng.normal(size=(len(y), 20))], 1), y

    centres = rng.uniform(-1, 1, size=(60, 2))
    xg, yg = sample(np.arange(40), 2)
    xp, yp = sample(np.arange(40), 2)
    model = xqda(xg, yg, xp, yp)
    tg, ytg = sample(np.arange(40, 60), 1)
    tq, ytq = sample(np.arange(40, 60), 1)
    euclid, learned = _rank1(tq, ytq, tg, ytg), _rank1(model.transform(tq), ytq,
                                                         model.transform(tg), ytg)
    assert euclid < 0.3 and learned > 0.8, (euclid, learned)
    # the learned directions are the discriminative ones
    assert np.abs(model.W[:2]).sum() > np.abs(model.W[2:]).sum()


def test_training_rows_are_capped_per_image_and_cover_identities():
    rows = [(f"{pid}_{cam}_{k}.jpg", pid, cam, "train", rate)
            for pid in range(30) for cam in range(2) for k in range(3) for rate in (1, 2, 3, 4)]
    train = pd.DataFrame(rows, columns=["path", "pid", "camid", "role", "rate"])
    assert select_training_rows(train, None) is train
    sel = select_training_rows(train, 240, seed=0)
    assert len(sel) == 240 and (sel.groupby("path").size() == 4).all()
    # 60 images: two per identity, one from each camera
    per_id = sel.drop_duplicates("path").groupby("pid")
    assert per_id.ngroups == 30 and (per_id.size() == 2).all()
    assert (per_id["camid"].nunique() == 2).all()
    assert sel.equals(select_training_rows(train, 240, seed=0))


@pytest.fixture(scope="module")
def viper_small(viper_root, tmp_path_factory):
    from datasets import load_dataset
    from datasets.loader import ImageStore
    from datasets.protocol import get_manifest

    ds = load_dataset("viper", viper_root)
    ds.images = [r for r in ds.images if r.pid < 60]  # 30 train / 30 test ids
    tmp = tmp_path_factory.mktemp("lomo")
    manifest = get_manifest(ds, trial=0, seed=0, manifest_dir=tmp / "manifests")
    store = ImageStore(manifest.abspaths(manifest.frame.drop_duplicates("path")), (128, 64))
    return manifest, store


def test_fit_on_real_viper_ids(viper_small):
    from datasets.loader import make_lr

    manifest, store = viper_small
    run = SimpleNamespace(lr_method="bilinear", input_size=(128, 64), seed=0)
    method = LomoXqdaMethod()
    assert method.name == "lomo-xqda" and method.trainable and not method.produces_images
    with pytest.raises(RuntimeError):
        method.features(torch.zeros(1, 3, 128, 64))
    method.fit(manifest=manifest, store=store, run=run)
    info = method.info
    assert info["lomo_dim"] == 26960 and info["train_ids_used"] == 30
    assert info["train_rows_used"] == info["train_rows"] == 30 * 2 * 4
    assert info["xqda_pairs"]["intra"] == 30 * 2 * 6  # (HR, LR) pairs per id: 2 x (2 x 3)
    q, g = manifest.rows("query", "seen"), manifest.rows("gallery")
    fq = method.features(make_lr(store.batch(store.indices(manifest.abspaths(q))),
                                 torch.tensor(q["rate"].tolist()), "bilinear"))
    fg = method.features(store.batch(store.indices(manifest.abspaths(g))))
    assert fq.shape == (30, method.feature_dim) and fg.shape == (30, method.feature_dim)
    assert fq.dtype == torch.float32 and torch.isfinite(fq).all()
    assert 1 <= method.feature_dim <= info["train_rows_used"]
    again = method.features(store.batch(store.indices(manifest.abspaths(g))))
    assert torch.equal(fg, again)
    # learned on 30 ids only, but far above chance (1/30) on the 30 unseen test ids
    r1 = _rank1(fq.numpy(), q["pid"].to_numpy(), fg.numpy(), g["pid"].to_numpy())
    assert r1 >= 0.15, r1
