"""Image quality: SSIM / PSNR on known images, LPIPS with and without verified weights."""

from __future__ import annotations

import hashlib
import logging
import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

import benchmark.metrics.quality as quality
import benchmark.weights as weights
from benchmark.metrics import LPIPSUnavailable, image_quality, lpips_distance, psnr, ssim


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return rng.random((3, 40, 24, 3)) * 0.9  # [N, H, W, 3] in [0, 0.9]


def test_identical_images(images):
    s, p = ssim(images, images), psnr(images, images)
    np.testing.assert_allclose(s.values, 1.0, atol=1e-12)
    assert s.mean == pytest.approx(1.0) and s.available and len(s) == 3
    assert np.isinf(p.values).all() and math.isinf(p.mean)  # not capped


def test_constant_offset_gives_20db(images):
    # MSE = 0.1^2 = 0.01 -> PSNR = 10 log10(1 / 0.01) = 20 dB
    p = psnr(images, images + 0.1)
    np.testing.assert_allclose(p.values, 20.0, atol=1e-9)


def test_ssim_uses_wang_2004_settings(images):
    noisy = np.clip(images + np.random.default_rng(1).normal(0, 0.05, images.shape), 0, 1)
    got = ssim(images, noisy).values
    want = [structural_similarity(images[i], noisy[i], data_range=1.0, channel_axis=-1,
                                  gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
            for i in range(len(images))]
    np.testing.assert_allclose(got, want, atol=1e-12)
    default_7x7 = structural_similarity(images[0], noisy[0], data_range=1.0, channel_axis=-1)
    assert abs(got[0] - default_7x7) > 1e-4  # the choice matters, so it is pinned
    assert 0 < got.min() < 1


def test_torch_nchw_matches_numpy_nhwc(images):
    other = images[::-1].copy()
    t, o = torch.from_numpy(images).permute(0, 3, 1, 2), torch.from_numpy(other).permute(0, 3, 1, 2)
    np.testing.assert_allclose(ssim(t, o).values, ssim(images, other).values, atol=1e-12)
    np.testing.assert_allclose(psnr(t.float(), o.float()).values, psnr(images, other).values,
                               rtol=1e-5)
    u8 = (images * 255).round().astype(np.uint8)
    assert psnr(u8, u8 / 255.0).values.tolist() == [math.inf] * 3


def test_input_validation(images):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ssim(images * 2, images)
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(images, images[:2])
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\]"):
        psnr(images[..., :2], images[..., :2])
    with pytest.raises(ValueError, match="11 px"):
        ssim(images[:, :8, :8], images[:, :8, :8])


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """Empty torch hub cache in a temp dir; downloads fail as on an offline machine."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)

    def offline(*args, **kwargs):
        raise OSError("network unreachable (test)")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    weights.clear_cache()
    quality._reset_lpips_state()
    yield tmp_path / "torch" / "hub" / "checkpoints"
    weights.clear_cache()
    quality._reset_lpips_state()


def test_lpips_missing_weights_is_unavailable_once(hub, images, caplog):
    with caplog.at_level(logging.WARNING, logger="benchmark.metrics.quality"):
        res = lpips_distance(images, images)
        again = lpips_distance(images, images)
    assert isinstance(res, LPIPSUnavailable) and not res.available
    assert np.isnan(res.values).all() and len(res) == 3 and math.isnan(res.mean)
    assert "download failed" in res.reason
    assert res.expected_path == str(hub / "alexnet-owt-7be5be79.pth")
    assert isinstance(again, LPIPSUnavailable)
    assert sum("LPIPS unavailable" in r.getMessage() for r in caplog.records) == 1
    table = image_quality(images, images)  # the rest of the table still computes
    assert table["SSIM"].mean == pytest.approx(1.0) and math.isinf(table["PSNR"].mean)
    assert isinstance(table["LPIPS"], LPIPSUnavailable)


def test_lpips_wrong_hash_is_rejected(hub, images):
    hub.mkdir(parents=True)
    fake = hub / "alexnet-owt-7be5be79.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, fake)
    res = lpips_distance(images, images)
    assert isinstance(res, LPIPSUnavailable) and np.isnan(res.values).all()
    assert "corrupt or mismatched" in res.reason
    assert fake.exists()


def test_lpips_loads_verified_trunk(hub, images, monkeypatch, tmp_path):
    """Key mapping into lpips' slices, with a stand-in AlexNet file of the right hash.

    The stand-in has random weights, so the values here test plumbing only; the real run
    requires torchvision's file (its hash is checked) and never uses random weights.
    """
    g = torch.Generator().manual_seed(0)
    shapes = {0: (64, 3, 11, 11), 3: (192, 64, 5, 5), 6: (384, 192, 3, 3), 8: (256, 384, 3, 3),
              10: (256, 256, 3, 3)}  # torchvision AlexNet's convolutions in `features`
    state = {}
    for i, shape in shapes.items():
        state[f"features.{i}.weight"] = torch.randn(shape, generator=g) * 0.05
        state[f"features.{i}.bias"] = torch.randn(shape[0], generator=g) * 0.05
    state["classifier.1.bias"] = torch.zeros(4096)  # not part of the trunk: ignored
    raw = tmp_path / "alexnet.pth"
    torch.save(state, raw)
    prefix = hashlib.sha256(raw.read_bytes()).hexdigest()[:8]
    hub.mkdir(parents=True)
    (hub / f"alexnet-test-{prefix}.pth").write_bytes(raw.read_bytes())
    monkeypatch.setattr(quality, "_alexnet_url",
                        lambda: f"https://example.invalid/alexnet-test-{prefix}.pth")
    other = images[[1, 2, 0]]
    res = lpips_distance(images, other)
    assert type(res) is quality.QualityScores and res.available
    assert np.isfinite(res.values).all() and (res.values > 0).all()
    model = next(iter(quality._models.values()))
    for s, i in [(1, 0), (2, 3), (3, 6), (4, 8), (5, 10)]:
        conv = getattr(getattr(model.net, f"slice{s}"), str(i))  # features[i] kept its name
        assert torch.equal(conv.weight, state[f"features.{i}.weight"])
        assert torch.equal(conv.bias, state[f"features.{i}.bias"])
    np.testing.assert_allclose(lpips_distance(images, images).values, 0.0, atol=1e-6)
    small = lpips_distance(images[:, :16, :12], other[:, :16, :12])  # up-sampled to >= 32 px
    assert np.isfinite(small.values).all()
    with pytest.raises(ValueError, match="lacks"):
        quality.load_alexnet_trunk(model.net,
                                   {k: v for k, v in state.items() if k != "features.3.bias"})
