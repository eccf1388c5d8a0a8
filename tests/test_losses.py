"""CAD-Net losses: each equation on hand-made tensors, and which parameters each step moves."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from benchmark.losses import (
    CrossResolutionBatch,
    cadnet_losses,
    cadnet_train_step,
    classification_loss,
    feature_adversarial_loss,
    identity_loss,
    image_adversarial_loss,
    reconstruction_loss,
    total_generator_loss,
    triplet_loss,
)
from benchmark.models import build_model, build_optimizers
from benchmark.profiles import make_config


def _sig(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


# ---- the equations on hand-made tensors ----------------------------------------------------


def test_reconstruction_loss_is_hand_l1():
    g = torch.Generator().manual_seed(0)
    rh, th, rl, tl = (torch.rand(2, 3, 4, 2, generator=g) for _ in range(4))
    hand = (rh - th).abs().sum() / rh.numel() + (rl - tl).abs().sum() / rl.numel()
    torch.testing.assert_close(reconstruction_loss(rh, th, rl, tl), hand)


def test_feature_adversarial_loss_hand_values():
    hr = torch.tensor([[2.0], [-1.0]])
    lr = torch.tensor([[0.5], [-0.3]])
    d_side = (-(math.log(_sig(2.0)) + math.log(_sig(-1.0))) / 2
              - (math.log(1 - _sig(0.5)) + math.log(1 - _sig(-0.3))) / 2)
    g_side = -(math.log(_sig(0.5)) + math.log(_sig(-0.3))) / 2
    assert feature_adversarial_loss(hr, lr, "discriminator").item() == pytest.approx(d_side)
    assert feature_adversarial_loss(None, lr, "generator").item() == pytest.approx(g_side)
    # a logit map is averaged over its positions
    lr_map = lr.view(1, 1, 2, 1)
    assert feature_adversarial_loss(None, lr_map, "generator").item() == pytest.approx(g_side)
    with pytest.raises(ValueError):
        feature_adversarial_loss(hr, lr, "encoder")


def test_image_adversarial_loss_hand_values():
    real_l, real_h = torch.tensor([[1.0]]), torch.tensor([[3.0], [0.0]])
    fake_l, fake_h = torch.tensor([[-2.0]]), torch.tensor([[0.25], [1.5]])
    d_side = (-math.log(_sig(1.0))
              - (math.log(_sig(3.0)) + math.log(_sig(0.0))) / 2
              - math.log(1 - _sig(-2.0))
              - (math.log(1 - _sig(0.25)) + math.log(1 - _sig(1.5))) / 2)
    g_side = -math.log(_sig(-2.0)) - (math.log(_sig(0.25)) + math.log(_sig(1.5))) / 2
    got_d = image_adversarial_loss([real_l, real_h], [fake_l, fake_h], "discriminator")
    got_g = image_adversarial_loss([], [fake_l, fake_h], "generator")
    assert got_d.item() == pytest.approx(d_side)
    assert got_g.item() == pytest.approx(g_side)


def _brute_force_batch_hard(emb, labels, margin):
    losses = []
    for a in range(len(labels)):
        pos = [torch.norm(emb[a] - emb[p]) for p in range(len(labels))
               if p != a and labels[p] == labels[a]]
        neg = [torch.norm(emb[a] - emb[n]) for n in range(len(labels)) if labels[n] != labels[a]]
        if not pos or not neg:
            continue
        losses.append(torch.clamp(margin + max(pos) - min(neg), min=0))
    return torch.stack(losses).mean()


def test_triplet_matches_brute_force_batch_hard():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(4).repeat_interleave(3)[torch.randperm(12, generator=g)]  # P=4, K=3
    emb = torch.randn(12, 5, generator=g)
    for margin in (2.0, 0.3):
        torch.testing.assert_close(triplet_loss(emb, labels, margin),
                                   _brute_force_batch_hard(emb, labels, margin))
    torch.testing.assert_close(triplet_loss(emb, labels, 2.0, normalize=True),
                               _brute_force_batch_hard(F.normalize(emb, dim=1), labels, 2.0))
    # an anchor without a positive (label 9) is left out of the mean
    labels2 = torch.cat([labels, torch.tensor([9])])
    emb2 = torch.cat([emb, torch.randn(1, 5, generator=g)])
    torch.testing.assert_close(triplet_loss(emb2, labels2, 2.0),
                               _brute_force_batch_hard(emb2, labels2, 2.0))
    # no valid anchor: zero, still differentiable
    e = torch.randn(3, 5, requires_grad=True)
    loss = triplet_loss(e, torch.tensor([0, 1, 2]), 2.0)
    loss.backward()
    assert loss.item() == 0.0 and e.grad is not None


def test_identity_and_classification_and_total():
    g = torch.Generator().manual_seed(1)
    logits_h, logits_l = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    y = torch.arange(4).repeat_interleave(2)
    emb_h, emb_l = torch.randn(8, 3, generator=g), torch.randn(8, 3, generator=g)
    hand_id = -torch.log_softmax(logits_h, 1)[torch.arange(8), y].mean()
    torch.testing.assert_close(identity_loss(logits_h, y), hand_id)
    cls = classification_loss(logits_h, emb_h, y, logits_l, emb_l, y, margin=2.0)
    expect = (identity_loss(logits_h, y) + identity_loss(logits_l, y)
              + triplet_loss(emb_h, y, 2.0) + triplet_loss(emb_l, y, 2.0))
    torch.testing.assert_close(cls, expect)
    terms = {k: torch.tensor(v) for k, v in
             {"id": 1.0, "tri": 2.0, "rec": 3.0, "adv_df": 4.0, "adv_di": 5.0}.items()}
    lam = make_config("smoke", "authors-code").lambdas
    total = total_generator_loss(terms, lam)
    assert total.item() == pytest.approx(1 + 10 * 2 + 3 + 0.01 * 4 + 5)
    assert total_generator_loss({"rec": torch.tensor(3.0)}, lam).item() == pytest.approx(3.0)
    with pytest.raises(ValueError):
        total_generator_loss({}, lam)


# ---- which parameters each step moves ------------------------------------------------------


def _setup(method="cadnet", **kw):
    torch.manual_seed(0)
    cfg = make_config("smoke", method, num_classes=4, pretrained="none", **kw)
    model = build_model(cfg)
    g = torch.Generator().manual_seed(0)
    pids = torch.arange(4).repeat_interleave(2)  # P=4 ids x K=2
    hr = torch.rand(8, 3, 64, 32, generator=g)
    batch = CrossResolutionBatch(
        hr_images=hr, hr_pids=pids,
        lr_images=F.interpolate(F.avg_pool2d(hr, 2), scale_factor=2, mode="bilinear"),
        lr_pids=pids, lr_targets=hr,
    )
    return model, batch


def _snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


def _unchanged(module, snap):
    return all(torch.equal(p, s) for p, s in zip(module.parameters(), snap))


def _gen_modules(model):
    return [model.encoder, model.decoder, model.hr_encoder, model.classifier]


def test_discriminator_step_leaves_generator_unchanged():
    model, batch = _setup()
    opts = build_optimizers(model)
    snaps = [_snapshot(m) for m in _gen_modules(model)]
    d_snaps = [_snapshot(model.feature_discriminator), _snapshot(model.image_discriminator)]
    _, disc = cadnet_losses(model, batch)
    assert set(disc) == {"d_f", "d_i"}
    disc["d_f"].backward()
    disc["d_i"].backward()
    for m in _gen_modules(model):
        assert all(p.grad is None for p in m.parameters())
    opts["d_f"].step()
    opts["d_i"].step()
    assert all(_unchanged(m, s) for m, s in zip(_gen_modules(model), snaps))
    assert not _unchanged(model.feature_discriminator, d_snaps[0])
    assert not _unchanged(model.image_discriminator, d_snaps[1])


def test_gen_optim_gives_g_its_own_optimiser_and_the_step_uses_both():
    """``gen_optim`` (a deviation): G under Adam as ``"g"``, E/F/C stay on ``"model"``'s SGD,
    and one :func:`cadnet_train_step` moves both groups."""
    from benchmark.profiles import ADAM_G

    model, batch = _setup(gen_optim=ADAM_G)
    opts = build_optimizers(model)
    assert isinstance(opts["g"], torch.optim.Adam) and opts["g"].defaults["lr"] == 2e-4
    assert isinstance(opts["model"], torch.optim.SGD)
    in_g = {id(p) for g in opts["g"].param_groups for p in g["params"]}
    in_model = {id(p) for g in opts["model"].param_groups for p in g["params"]}
    assert in_g == {id(p) for p in model.decoder.parameters() if p.requires_grad}
    assert not in_g & in_model and {id(p) for p in model.encoder.parameters()} <= in_model
    snaps = [_snapshot(m) for m in _gen_modules(model)]
    cadnet_train_step(model, opts, batch)
    assert not any(_unchanged(m, s) for m, s in zip(_gen_modules(model), snaps))
    assert opts["g"].state and opts["model"].state  # both stepped (Adam / momentum state)
    # without it (the paper): one optimiser over E, G, F, C, no "g"
    assert "g" not in build_optimizers(_setup()[0])


def test_generator_step_leaves_discriminators_unchanged():
    model, batch = _setup()
    opts = build_optimizers(model)
    d_snaps = [_snapshot(model.feature_discriminator), _snapshot(model.image_discriminator)]
    snaps = [_snapshot(m) for m in _gen_modules(model)]
    gen, _ = cadnet_losses(model, batch)
    assert set(gen) == {"id", "tri", "rec", "adv_df", "adv_di", "total"}
    gen["total"].backward()
    for d in (model.feature_discriminator, model.image_discriminator):
        assert all(p.grad is None for p in d.parameters())
        assert all(p.requires_grad for p in d.parameters())  # frozen only temporarily
    opts["model"].step()
    assert _unchanged(model.feature_discriminator, d_snaps[0])
    assert _unchanged(model.image_discriminator, d_snaps[1])
    assert not any(_unchanged(m, s) for m, s in zip(_gen_modules(model), snaps))


def _nonzero_grad(module) -> bool:
    return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_identity_loss_reaches_decoder_through_hr_encoder():
    model, batch = _setup()
    gen, _ = cadnet_losses(model, batch)
    gen["id"].backward()
    for m in (model.classifier, model.hr_encoder, model.decoder, model.encoder):
        assert _nonzero_grad(m)


def test_generator_side_adversarial_terms_reach_their_targets():
    # the paper's G (a residual G's zero-initialised head passes no gradient to E at init)
    model, batch = _setup(decoder_residual=False)
    gen, _ = cadnet_losses(model, batch)
    gen["adv_df"].backward(retain_graph=True)
    assert _nonzero_grad(model.encoder) and not _nonzero_grad(model.decoder)
    model.zero_grad(set_to_none=True)
    gen["adv_di"].backward(retain_graph=True)
    assert _nonzero_grad(model.decoder) and _nonzero_grad(model.encoder)
    assert not _nonzero_grad(model.hr_encoder) and not _nonzero_grad(model.classifier)
    model.zero_grad(set_to_none=True)
    gen["rec"].backward()
    assert _nonzero_grad(model.decoder) and _nonzero_grad(model.encoder)
    assert not _nonzero_grad(model.hr_encoder)


def test_cadnet_f_has_no_path_through_hr_encoder():
    model, batch = _setup("cadnet-f")
    assert model.hr_encoder is None
    gen, _ = cadnet_losses(model, batch)
    gen["id"].backward(retain_graph=True)
    assert _nonzero_grad(model.encoder) and not _nonzero_grad(model.decoder)
    model.zero_grad(set_to_none=True)
    gen["total"].backward()
    assert _nonzero_grad(model.decoder)  # G still trained by L_rec and L_adv^{D_I}


def test_cadnet_g_classifier_sees_g_only():
    model, batch = _setup("cadnet-g", decoder_residual=False)
    gen, _ = cadnet_losses(model, batch)
    gen["id"].backward()
    assert model.classifier.fc.in_features == model.feature_dim
    for m in (model.hr_encoder, model.decoder, model.encoder):
        assert _nonzero_grad(m)


@pytest.mark.parametrize(
    "method,missing_gen,stepped_d",
    [
        ("cadnet", set(), {"d_f", "d_i"}),
        ("cadnet-no-adv-di", {"adv_di"}, {"d_f"}),
        ("cadnet-no-adv-df", {"adv_df"}, {"d_i"}),
        ("cadnet-no-rec", {"rec"}, {"d_f", "d_i"}),
        ("cadnet-no-cls", {"id", "tri"}, {"d_f", "d_i"}),
    ],
)
def test_train_step_ablation_switches(method, missing_gen, stepped_d):
    model, batch = _setup(method)
    opts = build_optimizers(model)
    discs = {"d_f": model.feature_discriminator, "d_i": model.image_discriminator}
    snaps = {k: _snapshot(m) for k, m in discs.items()}
    enc = _snapshot(model.encoder)
    out = cadnet_train_step(model, opts, batch)
    all_gen = {"id", "tri", "rec", "adv_df", "adv_di"}
    assert set(out) == (all_gen - missing_gen) | {"total"} | stepped_d
    assert all(not v.requires_grad for v in out.values())
    for k, m in discs.items():
        assert _unchanged(m, snaps[k]) == (k not in stepped_d)
        assert (k in opts) == (k in stepped_d)
    assert not _unchanged(model.encoder, enc)
    if method == "cadnet-no-cls":
        assert all(p.grad is None for p in model.classifier.parameters())


def test_train_step_separate_forward_and_dict_batch():
    model, batch = _setup(joint_forward=False)
    opts = build_optimizers(model)
    as_dict = {k: getattr(batch, k) for k in
               ("hr_images", "hr_pids", "lr_images", "lr_pids", "lr_targets")}
    out = cadnet_train_step(model, opts, as_dict)
    assert torch.isfinite(torch.stack(list(out.values()))).all()
    with pytest.raises(KeyError, match="lr_targets"):
        cadnet_losses(model, {k: v for k, v in as_dict.items() if k != "lr_targets"})


def test_authors_code_train_step_runs():
    model, batch = _setup("authors-code")
    opts = build_optimizers(model)
    out = cadnet_train_step(model, opts, batch)
    torch.testing.assert_close(
        out["total"],
        out["id"] + 10 * out["tri"] + out["rec"] + 0.01 * out["adv_df"] + out["adv_di"])
