"""The read-outs in benchmark.diagnostics import and show their usage; the recovery-gradient
read-out's measures on a hand-made case and a small random CAD-Net."""

import importlib

import pytest

MODULES = ["cadnet_fg_parts", "cyclegan_translation", "cyclegan_g_identity_optim",
           "cadnet_recovery_gradients"]


@pytest.mark.parametrize("name", MODULES)
def test_diagnostic_shows_help(name, capsys):
    mod = importlib.import_module(f"benchmark.diagnostics.{name}")
    with pytest.raises(SystemExit) as e:
        mod.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert f"python -m benchmark.diagnostics.{name}" in out
    assert "--data-root" in out and "--out" in out


def test_recovery_colour_error_and_gradient_alignment_by_hand():
    import torch
    import torch.nn.functional as F

    from benchmark.diagnostics.cadnet_recovery_gradients import (
        colour_error,
        gradient_alignment,
        strong_edges,
    )
    from benchmark.models import build_model
    from benchmark.profiles import make_config

    g = torch.Generator().manual_seed(0)
    hr = torch.rand(8, 3, 64, 32, generator=g)
    # a pure green error of 0.1: green excess 0.1; off the grey axis |(-1, 2, -1)| / 30 -> 0.4/9
    shifted = hr + torch.tensor([0.0, 0.1, 0.0]).view(1, 3, 1, 1)
    mask = strong_edges(hr)
    assert mask.float().mean() == pytest.approx(0.1, abs=0.01)
    c = colour_error(shifted, hr, mask)
    assert c["green_excess"] == pytest.approx(0.1, abs=1e-6)
    assert c["off_grey"] == pytest.approx(0.4 / 9, abs=1e-6)

    torch.manual_seed(0)
    model = build_model(make_config("smoke", "cadnet", num_classes=4, pretrained="none")).eval()
    x = F.interpolate(F.avg_pool2d(hr, 2), scale_factor=2, mode="bilinear")
    with torch.no_grad():
        f, taps = model.encoder(x)
        rec = model.decoder(f, taps, x)
    out = gradient_alignment(model, f, rec, hr, torch.arange(4).repeat_interleave(2), mask)
    assert set(out) == {"L_rec", "L_adv^DI", "L_id", "L_tri"}
    # L1: every pixel's gradient is lambda_rec / N in size, and its descent points toward
    # the original: cos = mean|t| / rms(t) > 0
    lam = model.config.lambdas["rec"]
    assert out["L_rec"]["per_pixel"] == pytest.approx(lam / hr.numel(), rel=1e-5)
    t = hr - rec
    assert out["L_rec"]["cos"] == pytest.approx(
        float(t.abs().mean() / t.pow(2).mean().sqrt()), abs=1e-4)
    assert all(-1 <= v["cos"] <= 1 and v["per_pixel"] > 0 for v in out.values())
