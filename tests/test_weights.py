"""benchmark.weights: cache lookup, SHA-256 prefix check, download failure handling."""

from __future__ import annotations

import hashlib
import logging

import pytest
import torch

import benchmark.weights as weights
from benchmark.weights import (
    WeightsUnavailable,
    checkpoint_info,
    hash_prefix_of,
    load_torchvision_state_dict,
    torchvision_weights_url,
    verified_checkpoint,
)

PAYLOAD = b"mlr-bench tiny checkpoint payload\n"
PREFIX = hashlib.sha256(PAYLOAD).hexdigest()[:8]


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """torch hub cache in a temp dir (TORCH_HOME), downloads failing as offline."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # forget any torch.hub.set_dir()
    calls = []

    def offline(url, dst, *args, **kwargs):
        calls.append(url)
        raise OSError("network unreachable (test)")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    weights.clear_cache()
    ckpt = tmp_path / "torch" / "hub" / "checkpoints"
    assert weights.checkpoint_dir() == ckpt
    yield ckpt, calls
    weights.clear_cache()


def test_hash_prefix_of():
    assert hash_prefix_of("alexnet-owt-7be5be79.pth") == "7be5be79"
    assert hash_prefix_of("resnet50-0676ba61.pth") == "0676ba61"
    assert hash_prefix_of("osnet_x1_0_imagenet.pth") is None


def test_valid_hash_file_is_found_and_hashed_once(hub, monkeypatch):
    ckpt, calls = hub
    ckpt.mkdir(parents=True)
    (ckpt / f"tiny-{PREFIX}.pth").write_bytes(PAYLOAD)
    n_hash = []
    real = hashlib.sha256

    def counting():
        n_hash.append(1)
        return real()

    monkeypatch.setattr(weights.hashlib, "sha256", counting)
    url = f"https://example.invalid/models/tiny-{PREFIX}.pth"
    path = verified_checkpoint(url)
    assert path == ckpt / f"tiny-{PREFIX}.pth"
    info = checkpoint_info(url)
    assert info.verified and info.hash_prefix == PREFIX and not info.downloaded
    assert info.sha256 == real(PAYLOAD).hexdigest()
    assert len(n_hash) == 1  # cached per process
    assert calls == []  # present: no download attempted


def test_wrong_hash_is_rejected_and_file_kept(hub):
    ckpt, _ = hub
    ckpt.mkdir(parents=True)
    bad = ckpt / "alexnet-owt-7be5be79.pth"
    bad.write_bytes(b"not the real AlexNet")
    with pytest.raises(WeightsUnavailable) as err:
        verified_checkpoint(torchvision_weights_url("alexnet"))
    e = err.value
    assert e.filename == "alexnet-owt-7be5be79.pth"
    assert e.expected_path == bad
    assert "corrupt or mismatched" in e.reason
    assert "alexnet-owt-7be5be79.pth" in str(e) and str(bad) in str(e)
    assert bad.read_bytes() == b"not the real AlexNet"  # never deleted


def test_missing_file_download_failure(hub):
    ckpt, calls = hub
    url = "https://download.pytorch.org/models/resnet18-f37072fd.pth"
    with pytest.raises(WeightsUnavailable) as err:
        verified_checkpoint(url)
    assert "download failed" in err.value.reason and "OSError" in err.value.reason
    assert err.value.expected_path == ckpt / "resnet18-f37072fd.pth"
    with pytest.raises(WeightsUnavailable):
        verified_checkpoint(url)
    assert calls == [url]  # tried once per process
    with pytest.raises(WeightsUnavailable, match="download disabled"):
        verified_checkpoint("https://example.invalid/other-abcdef12.pth", download=False)
    assert calls == [url]


def test_download_success_is_verified(hub, monkeypatch):
    ckpt, _ = hub

    def fake_download(url, dst, hash_prefix=None, progress=True):
        assert hash_prefix == PREFIX
        with open(dst, "wb") as f:
            f.write(PAYLOAD)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    info = checkpoint_info(f"https://example.invalid/tiny-{PREFIX}.pth")
    assert info.downloaded and info.verified and info.path.read_bytes() == PAYLOAD


def test_name_without_prefix_is_accepted_unverified(hub, caplog):
    ckpt, _ = hub
    ckpt.mkdir(parents=True)
    (ckpt / "handmade_weights.pth").write_bytes(PAYLOAD)
    with caplog.at_level(logging.WARNING, logger="benchmark.weights"):
        info = checkpoint_info("https://example.invalid/handmade_weights.pth")
        checkpoint_info("https://example.invalid/handmade_weights.pth")
    assert not info.verified and info.hash_prefix is None
    assert sum("unverified" in r.getMessage() for r in caplog.records) == 1


def test_torchvision_urls():
    for arch in ("alexnet", "resnet18", "resnet34", "resnet50"):
        url = torchvision_weights_url(arch)
        assert url.startswith("https://") and url.endswith(".pth")
        assert hash_prefix_of(url.rsplit("/", 1)[-1]) is not None
    from benchmark.metrics.quality import ALEXNET_URL

    assert torchvision_weights_url("alexnet") == ALEXNET_URL  # the file LPIPS needs
    with pytest.raises(ValueError, match="unknown"):
        torchvision_weights_url("no_such_net")


def test_load_torchvision_state_dict(hub, monkeypatch, tmp_path):
    ckpt, _ = hub
    ckpt.mkdir(parents=True)
    state = {"fc.weight": torch.arange(6.0).reshape(2, 3)}
    raw = tmp_path / "sd.pth"
    torch.save(state, raw)
    prefix = hashlib.sha256(raw.read_bytes()).hexdigest()[:8]
    (ckpt / f"resnet18-{prefix}.pth").write_bytes(raw.read_bytes())
    monkeypatch.setattr(weights, "torchvision_weights_url",
                        lambda arch: f"https://example.invalid/{arch}-{prefix}.pth")
    loaded = load_torchvision_state_dict("resnet18")
    assert torch.equal(loaded["fc.weight"], state["fc.weight"])
    with pytest.raises(WeightsUnavailable):
        load_torchvision_state_dict("resnet34")  # absent; the offline download fails
