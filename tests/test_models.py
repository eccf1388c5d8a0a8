"""CAD-Net components: shapes per profile, variants, presets, initialisation, profiles."""

from __future__ import annotations

import sys
import types
from dataclasses import replace

import pytest
import torch

from benchmark.models import (
    AuthorsFeatureDiscriminator,
    CADNet,
    TsaiFeatureDiscriminator,
    build_model,
    build_optimizers,
    build_trunk,
)
from benchmark.profiles import (
    CADNET_PRESETS,
    HALF,
    IMAGENET_MEAN,
    PROFILES,
    get_preset,
    get_profile,
    make_config,
)


def _model(profile="smoke", method="cadnet", num_classes=6, **kw) -> CADNet:
    torch.manual_seed(0)
    cfg = make_config(profile, method, num_classes=num_classes, pretrained="none", **kw)
    return build_model(cfg)


def _check_shapes(model: CADNet, d: int, hw: tuple[int, int], batch: int = 2) -> None:
    H, W = model.config.input_size
    x = torch.rand(batch, 3, H, W)
    out = model(x)
    assert out.f.shape == (batch, d, *hw)
    assert out.recovered.shape == (batch, 3, H, W)
    assert 0.0 <= out.recovered.min() and out.recovered.max() <= 1.0
    assert out.g.shape == out.f.shape
    assert out.embedding.shape == (batch, 2 * d)
    assert out.logits.shape == (batch, model.num_classes)
    model.eval()
    u = model.extract_features(x)
    assert u.shape == (batch, 2 * d) and not u.requires_grad
    assert model.recover(x).shape == (batch, 3, H, W)
    assert model.feature_discriminator(out.f.detach()).shape[:2] == (batch, 1)
    assert model.image_discriminator(out.recovered.detach()).shape == (batch, 1)


def test_paper_profile_shapes():
    model = _model("paper", num_classes=10)
    assert model.config.backbone == "resnet50" and model.config.input_size == (256, 128)
    assert model.feature_dim == 2048 and model.feature_hw == (8, 4)
    _check_shapes(model, 2048, (8, 4))
    # Tsai D_F: one stride-2 layer on the 8 x 4 map, then size-preserving layers -> 4 x 2
    assert isinstance(model.feature_discriminator.body, TsaiFeatureDiscriminator)
    assert model.feature_discriminator(torch.zeros(2, 2048, 8, 4)).shape == (2, 1, 4, 2)


def test_cpu_profile_shapes():
    model = _model("cpu", num_classes=10)
    assert model.config.backbone == "mobilenetv2" and model.config.input_size == (128, 64)
    _check_shapes(model, 1280, (4, 2))
    scratch = _model("cpu-scratch", num_classes=10)
    assert scratch.config.backbone == "resnet18" and scratch.config.input_size == (128, 64)
    _check_shapes(scratch, 512, (4, 2))


def test_smoke_profile_shapes_and_last_stride_one():
    _check_shapes(_model("smoke"), 64, (2, 1), batch=3)
    model = _model("smoke", last_stride=1)
    assert model.feature_hw == (4, 2)
    _check_shapes(model, 64, (4, 2))


@pytest.mark.parametrize("profile,d", [("smoke", 64), ("cpu-scratch", 512), ("cpu", 1280)])
def test_feature_mode_sizes(profile, d):
    H, W = get_profile(profile).input_size
    x = torch.rand(2, 3, H, W)
    for method, dim in (("cadnet", 2 * d), ("cadnet-f", d), ("cadnet-g", d)):
        model = _model(profile, method).eval()
        assert model.embedding_dim == dim
        assert model.extract_features(x).shape == (2, dim)
        out = model(x)
        assert out.embedding.shape == (2, dim)
        assert out.recovered.shape == (2, 3, H, W)  # G exists in every variant
        assert (model.hr_encoder is None) == (method == "cadnet-f")


def test_cadnet_f_forward_without_recovery_skips_decoder():
    model = _model("smoke", "cadnet-f")
    out = model(torch.rand(2, 3, 64, 32), recover=False)
    assert out.recovered is None and out.g is None and out.embedding.shape == (2, 64)


def test_test_feature_is_gap_of_v():
    model = _model("smoke").eval()
    x = torch.rand(2, 3, 64, 32)
    with torch.no_grad():
        f, taps = model.encoder(x)
        g = model.hr_encoder(model.decoder(f, taps, x))
    v = torch.cat([f, g], dim=1)
    torch.testing.assert_close(model.extract_features(x), v.mean(dim=(2, 3)))


def test_authors_code_preset_model():
    model = _model("smoke", "authors-code")
    assert isinstance(model.feature_discriminator.body, AuthorsFeatureDiscriminator)
    assert isinstance(model.classifier.neck, torch.nn.BatchNorm1d)
    assert not model.classifier.neck.bias.requires_grad
    assert model.encoder.normalize.mean.flatten().tolist() == list(HALF)
    x = torch.rand(4, 3, 64, 32)
    out = model(x)
    assert out.recovered.shape == x.shape
    assert model.feature_discriminator(out.f.detach()).shape == (4, 1)
    model.eval()
    norms = model.extract_features(x).norm(dim=1)
    torch.testing.assert_close(norms, torch.ones(4))
    # paper preset: unnormalised test features, ImageNet statistics, no neck
    plain = _model("smoke", "cadnet-paper-balance").eval()
    assert plain.encoder.normalize.mean.flatten().tolist() == pytest.approx(IMAGENET_MEAN)
    assert isinstance(plain.classifier.neck, torch.nn.Identity)
    assert not torch.allclose(plain.extract_features(x).norm(dim=1), torch.ones(4))


def test_channels_last_forward_backward():
    model = _model("smoke").to(memory_format=torch.channels_last)
    x = torch.rand(4, 3, 64, 32).contiguous(memory_format=torch.channels_last)
    out = model(x)
    (out.logits.sum() + out.recovered.mean()).backward()
    assert model.encoder.trunk.conv1.weight.grad is not None


def test_init_random_recorded():
    model = _model("smoke")
    assert model.init == "random" and model.init_weights is None
    assert model.init_record["E"] == "random" and model.init_record["D_I"] == "random"


def _fake_weights_module(monkeypatch, loader):
    mod = types.ModuleType("benchmark.weights")

    class WeightsUnavailable(RuntimeError):
        pass

    mod.WeightsUnavailable = WeightsUnavailable
    mod.load_torchvision_checkpoint = lambda arch: (loader(arch), types.SimpleNamespace(
        filename=f"{arch}-fake.pth", sha256=f"sha256 of {arch}"))
    monkeypatch.setitem(sys.modules, "benchmark.weights", mod)
    return mod


def test_imagenet_init_loads_torchvision_state(monkeypatch):
    import torchvision

    torch.manual_seed(1)
    ref = {"resnet18": torchvision.models.resnet18().state_dict()}
    calls = []

    def loader(arch):
        calls.append(arch)
        return ref[arch]

    _fake_weights_module(monkeypatch, loader)
    cfg = make_config("cpu-scratch", "cadnet", num_classes=5, pretrained="imagenet")
    model = build_model(cfg)
    assert model.init == "imagenet" and model.init_record["F"] == "imagenet"
    assert model.init_record["D_I"] == "random"  # paper: D_I randomly initialised
    assert model.init_weights == {"file": "resnet18-fake.pth", "sha256": "sha256 of resnet18"}
    assert model.image_discriminator.init_weights is None
    assert calls == ["resnet18", "resnet18"]
    for trunk in (model.encoder.trunk, model.hr_encoder.trunk):
        torch.testing.assert_close(trunk.layer3[0].conv1.weight, ref["resnet18"]["layer3.0.conv1.weight"])
    assert model.encoder.trunk is not model.hr_encoder.trunk  # no weight sharing


def test_authors_code_image_discriminator_from_imagenet(monkeypatch):
    import torchvision

    ref = torchvision.models.resnet18().state_dict()
    _fake_weights_module(monkeypatch, lambda arch: ref)
    cfg = make_config("cpu-scratch", "authors-code", num_classes=5, pretrained="imagenet", di_width=64)
    model = build_model(cfg)
    assert model.init_record["D_I"] == "imagenet"
    assert model.image_discriminator.init_weights["file"] == "resnet18-fake.pth"
    torch.testing.assert_close(model.image_discriminator.trunk.conv1.weight, ref["conv1.weight"])
    with pytest.raises(ValueError, match="di_width=64"):
        build_model(make_config("cpu-scratch", "authors-code", num_classes=5, pretrained="imagenet"))


def test_imagenet_unavailable_propagates(monkeypatch):
    def loader(arch):
        raise mod.WeightsUnavailable(f"missing {arch}")

    mod = _fake_weights_module(monkeypatch, loader)
    cfg = make_config("cpu-scratch", "cadnet", num_classes=5, pretrained="imagenet")
    with pytest.raises(mod.WeightsUnavailable):
        build_model(cfg)


def test_imagenet_refused_for_tiny_backbone():
    cfg = make_config("smoke", "cadnet", num_classes=5, pretrained="imagenet")
    with pytest.raises(ValueError, match="no ImageNet weights"):
        build_model(cfg)


def test_trunk_matches_torchvision_layout():
    import torchvision

    for arch, ctor in (("resnet18", torchvision.models.resnet18),
                       ("resnet50", torchvision.models.resnet50)):
        ours = set(build_trunk(arch).state_dict())
        theirs = {k for k in ctor().state_dict() if not k.startswith("fc.")}
        assert ours == theirs


def test_optimizers_follow_config():
    model = _model("smoke")
    opts = build_optimizers(model)
    assert isinstance(opts["model"], torch.optim.SGD)
    # the validated balance: E/G/F/C at lr 5e-4 (the profile: 1e-3), the rest as the profile
    assert opts["model"].defaults["lr"] == 5e-4 and opts["model"].defaults["momentum"] == 0.9
    assert opts["model"].defaults["weight_decay"] == 5e-4
    assert isinstance(opts["d_f"], torch.optim.Adam) and opts["d_f"].defaults["lr"] == 1e-4
    # D_I keeps the paper's SGD lr 1e-4 in the CAD-Net presets (cpu/smoke D_F: Adam)
    assert isinstance(opts["d_i"], torch.optim.SGD) and opts["d_i"].defaults["lr"] == 1e-4
    assert opts["d_i"].defaults["momentum"] == 0.9
    sgd_d = build_optimizers(model, replace(model.config, disc_optim=get_profile("paper").disc_optim))
    assert isinstance(sgd_d["d_f"], torch.optim.SGD) and sgd_d["d_f"].defaults["lr"] == 1e-4
    d_params = {id(p) for p in model.feature_discriminator.parameters()}
    d_params |= {id(p) for p in model.image_discriminator.parameters()}
    g_params = {id(p) for g in opts["model"].param_groups for p in g["params"]}
    assert not d_params & g_params
    authors = build_optimizers(_model("smoke", "authors-code"))
    assert isinstance(authors["d_i"], torch.optim.Adam)
    assert authors["d_i"].defaults["betas"] == (0.9, 0.99) and authors["d_i"].defaults["lr"] == 1e-4
    no_df = build_optimizers(_model("smoke", "cadnet-no-adv-df"))
    assert "d_f" not in no_df and no_df["d_i"] is not None


# ---- profiles and presets ------------------------------------------------------------------


def test_profiles_are_named_data():
    assert set(PROFILES) >= {"paper", "cpu", "cpu-scratch", "smoke"}
    for name, prof in PROFILES.items():
        assert prof.name == name
        assert make_config(name).profile == name
    paper = get_profile("paper")
    assert paper.backbone == "resnet50" and paper.input_size == (256, 128)
    assert paper.batch_size == 32 and (paper.ids_per_batch, paper.instances_per_id) == (8, 4)
    assert paper.model_optim.lr == 1e-3 and paper.disc_optim.lr == 1e-4
    assert paper.disc_optim.name == "sgd"  # the paper's text
    # cpu: Adam for D_F / D_I (SGD 1e-4 leaves D_F at chance for the whole cpu budget)
    cpu_d = get_profile("cpu").disc_optim
    assert (cpu_d.name, cpu_d.lr, cpu_d.betas) == ("adam", 1e-4, (0.9, 0.99))
    for name in ("cadnet", "cadnet-f", "cadnet-g", "cadnet-no-adv-df", "cadnet-no-rec"):
        c = make_config("cpu", name)
        assert c.image_disc_optim.name == "sgd" and c.disc_optim.name == "adam"
        assert c.to_dict()["di_optim"]["name"] == "sgd"
    a = make_config("cpu", "authors-code")  # Adam for both discriminators, as their code
    assert a.di_optim is None and a.image_disc_optim.name == "adam"
    assert "di_optim" not in a.to_dict()  # unset: not in the dict (cache keys unchanged)
    assert paper.pretrained == "imagenet" and paper.lr_rates == (2, 3, 4)
    cpu, scratch = get_profile("cpu"), get_profile("cpu-scratch")
    assert (cpu.backbone, cpu.pretrained) == ("mobilenetv2", "imagenet")
    assert (scratch.backbone, scratch.pretrained) == ("resnet18", "none")
    with pytest.raises(ValueError, match="known profiles: paper, cpu, smoke, cpu-scratch"):
        get_profile("huge")
    with pytest.raises(ValueError, match="known: cadnet"):
        get_preset("nope")
    with pytest.raises(ValueError, match="unknown config field"):
        make_config("smoke", "cadnet", learning_rate=3)


def test_paper_lambdas_all_one_and_authors_preset_differs():
    cfg = make_config("paper", "cadnet-paper-balance")
    assert set(cfg.lambdas.values()) == {1.0}
    assert cfg.triplet_margin == 2.0 and not cfg.triplet_normalize
    assert (cfg.reid_grad_to_g, cfg.decoder_residual) == (1.0, False)
    v = make_config("paper", "cadnet")  # the validated balance: only these fields differ
    assert (v.triplet_normalize, v.triplet_margin, v.reid_grad_to_g, v.decoder_residual) == (
        False, 2.0, 0.01, True)
    assert v.lambdas == {**cfg.lambdas, "rec": 10.0} and v.di_optim == cfg.di_optim
    assert v.model_optim == replace(cfg.model_optim, lr=5e-4)  # only the learning rate
    assert (cfg.use_adv_di, cfg.use_adv_df, cfg.use_rec, cfg.use_cls) == (True,) * 4
    assert cfg.lr_method == "bilinear" and not cfg.l2_test_features and not cfg.bn_neck
    a = make_config("paper", "authors-code")
    assert a.lambdas == {"id": 1.0, "tri": 10.0, "rec": 1.0, "adv_df": 0.01, "adv_di": 1.0}
    assert a.lr_method == "maxpool" and a.pixel_mean == HALF and a.pixel_std == HALF
    assert a.l2_test_features and a.bn_neck and a.df_variant == "authors" and a.di_imagenet
    assert a.disc_optim.name == "adam" and a.disc_optim.betas == (0.9, 0.99)
    assert a.model_optim == cfg.model_optim
    # explicit overrides beat the preset
    assert make_config("paper", "authors-code", lr_method="bilinear").lr_method == "bilinear"


def test_ablation_presets_switch_one_loss_each():
    flags = ("use_adv_di", "use_adv_df", "use_rec", "use_cls")
    for name, off in (("cadnet-no-adv-di", "use_adv_di"), ("cadnet-no-adv-df", "use_adv_df"),
                      ("cadnet-no-rec", "use_rec"), ("cadnet-no-cls", "use_cls")):
        cfg = make_config("smoke", name)
        assert [getattr(cfg, f) for f in flags] == [f != off for f in flags]
    assert {"cadnet", "cadnet-f", "cadnet-g", "authors-code"} <= set(CADNET_PRESETS)


def test_adam_g_preset_differs_from_cadnet_only_in_gs_optimiser():
    """``cadnet-adam-g``: CAD-Net's config plus ``gen_optim`` (Adam for G alone)."""
    base = make_config("cpu", "cadnet", num_classes=316).to_dict()
    adam = make_config("cpu", "cadnet-adam-g", num_classes=316).to_dict()
    assert {k for k in adam if adam[k] != base.get(k)} == {"method", "gen_optim"}
    assert adam["gen_optim"]["name"] == "adam" and adam["gen_optim"]["lr"] == 2e-4
    opts = build_optimizers(_model("smoke", "cadnet-adam-g"))
    assert isinstance(opts["g"], torch.optim.Adam) and isinstance(opts["model"], torch.optim.SGD)


def test_config_to_dict_is_plain():
    import json

    d = make_config("cpu", "authors-code", num_classes=316).to_dict()
    assert d["profile"] == "cpu" and d["method"] == "authors-code"
    assert d["disc_optim"]["name"] == "adam"
    json.dumps(d)


def test_bad_config_values_rejected():
    with pytest.raises(ValueError, match="feature_mode"):
        make_config("smoke", "cadnet", feature_mode="h")
    with pytest.raises(ValueError, match="pretrained"):
        make_config("smoke", "cadnet", pretrained="yes")
    with pytest.raises(ValueError, match="num_classes"):
        build_model(make_config("smoke", "cadnet"))


def test_residual_decoder_starts_as_the_identity_on_its_input():
    """decoder_residual: G's correction starts at zero, so G(E(x)) is x itself at init (PSNR
    of the bilinear input) and stays in [0, 1]; the paper's G starts elsewhere."""
    x = torch.rand(3, 3, 64, 32)
    res = _model("smoke").eval()  # cadnet: the validated balance has a residual G
    torch.testing.assert_close(res.recover(x), x)
    out = res.train()(x)
    torch.testing.assert_close(out.recovered, x)
    out.recovered.sum().backward()  # the straight-through clamp passes gradient back to G
    assert res.decoder.head[-1].weight.grad.abs().sum() > 0
    plain = _model("smoke", "cadnet-paper-balance").eval()
    assert not torch.allclose(plain.recover(x), x, atol=0.05)
    with pytest.raises(ValueError, match="pass image"):
        res.decoder(*res.encoder(x))


def test_decoder_without_skips_reads_f_alone_and_keeps_the_cache_key_at_default():
    """decoder_skips=False (a diagnostic of G's capacity): G gets no tap of E, so a change
    to a tap does not change the recovered image; the default leaves the config dict (and
    with it every cached model's key) as before the field existed."""
    assert "decoder_skips" not in make_config("smoke", "cadnet").to_dict()
    plain = _model("smoke", decoder_skips=False, decoder_residual=False).eval()
    skips = _model("smoke", decoder_residual=False).eval()
    assert all(s is None for s in plain.decoder.skip_strides)
    assert any(s is not None for s in skips.decoder.skip_strides)
    f, taps = plain.encoder(torch.rand(2, 3, 64, 32))
    noisy = {k: torch.randn_like(v) for k, v in taps.items()}
    torch.testing.assert_close(plain.decoder(f, taps), plain.decoder(f, noisy))
    f, taps = skips.encoder(torch.rand(2, 3, 64, 32))
    noisy = {k: torch.randn_like(v) for k, v in taps.items()}
    assert not torch.allclose(skips.decoder(f, taps), skips.decoder(f, noisy))


def test_reid_grad_to_g_scales_only_the_gradient_through_f():
    """reid_grad_to_g = s: the forward pass is unchanged; L_cls's gradient at G's output
    (through F) is s times the paper's; E's gradient through f is not scaled."""
    from benchmark.losses import cadnet_losses
    from benchmark.losses.cadnet import CrossResolutionBatch

    x = torch.rand(8, 3, 64, 32)
    pids = torch.arange(4).repeat_interleave(2)
    batch = CrossResolutionBatch(x, pids, x.flip(0), pids, x.flip(0))
    grads, losses = {}, {}
    for s in (1.0, 0.01):
        m = _model("smoke", reid_grad_to_g=s, use_rec=False, use_adv_di=False, use_adv_df=False)
        gen, _ = cadnet_losses(m, batch)
        gen["total"].backward()
        grads[s] = torch.cat([p.grad.flatten() for p in m.decoder.parameters()])
        losses[s] = float(gen["total"].detach())
    assert losses[1.0] == losses[0.01]
    scale = float(grads[1.0].abs().max())
    torch.testing.assert_close(grads[0.01], grads[1.0] * 0.01, rtol=1e-3, atol=1e-5 * scale)
    paper = make_config("smoke", "cadnet-paper-balance").to_dict()
    assert "reid_grad_to_g" not in paper and "decoder_residual" not in paper  # old keys
    assert make_config("smoke").to_dict()["reid_grad_to_g"] == 0.01
