"""The SR baselines sing, csrgan, cyclegan: training, shapes, update separation, unpaired
CycleGAN, SING's fusion, exact resume. Smoke profile, a couple of steps each."""

from __future__ import annotations

import dataclasses
import io
import math
from pathlib import Path

import pytest
import torch

from baselines.csrgan import CSRGANTask, estimate_rates, stage_levels
from baselines.cyclegan import CycleGANTask
from baselines.sing import SINGTask
from baselines.sr import REID_GRAD_TO_SR, SRCNN, clamp01, scale_grad
from benchmark.config import RunConfig
from benchmark.engine import train
from benchmark.losses import CrossResolutionBatch
from benchmark.methods import create_method
from benchmark.models import Classifier
from benchmark.profiles import make_config
from datasets.loader import make_lr

TASKS = {"sing": SINGTask, "csrgan": CSRGANTask, "cyclegan": CycleGANTask}
ADVERSARIAL = ("csrgan", "cyclegan")


def make_task(cls, num_classes: int = 8, **kw):
    cfg = make_config("smoke", cls.preset, num_classes=num_classes,
                      **{**cls.config_overrides, **kw})
    return cls(cfg)


def random_batch(seed: int = 0, p: int = 4, k: int = 4, hw=(64, 32), rates=(2, 3, 4)
                 ) -> CrossResolutionBatch:
    """A smoke-size batch of smooth random images (LR made the engine's way)."""
    g = torch.Generator().manual_seed(seed)

    def images(n):
        small = torch.rand(n, 3, hw[0] // 4, hw[1] // 4, generator=g)
        return torch.nn.functional.interpolate(small, size=hw, mode="bilinear").clamp(0, 1)

    hr, target = images(p * k), images(p * k)
    pids = torch.arange(p).repeat_interleave(k)
    r = torch.tensor(rates, dtype=torch.float64)[torch.randint(len(rates), (p * k,), generator=g)]
    return CrossResolutionBatch(hr, pids, make_lr(target, r), pids.clone(), target)


@pytest.mark.parametrize("name", list(TASKS))
def test_trains_on_real_data_with_finite_losses_and_declared_outputs(name, small_viper):
    method = create_method(name)  # through the registry, as run_all does
    assert method.produces_images and method.query_upsampling == "bilinear"
    cfg = make_config("smoke", method.preset, num_classes=small_viper.num_classes,
                      **method.task_cls.config_overrides)
    assert cfg.method == name
    task = method.make_task(cfg, "cpu")
    hist = train(task, small_viper, epochs=2, ids_per_batch=4, instances_per_id=4, seed=3,
                 log_every=1)
    assert [h["epoch"] for h in hist] == [1, 2]
    for h in hist:
        losses = {k: v for k, v in h.items() if k not in ("epoch", "images_per_s", "seconds")}
        assert {"id", "tri", "total"} <= set(losses)
        assert all(math.isfinite(v) for v in losses.values()), losses
    model = task.model
    assert model.init == "random"
    model.eval()
    x = small_viper.store.batch(small_viper.index[:5])
    lr = make_lr(x, [2, 3, 4, 8, 1])
    feats = model.extract_features(lr)
    assert feats.shape == (5, model.feature_dim) and torch.isfinite(feats).all()
    rec = model.recover(lr)
    assert rec.shape == x.shape and rec.min() >= 0 and rec.max() <= 1


@pytest.mark.parametrize("name", ["sing", "csrgan", "cyclegan"])
def test_residual_sr_networks_start_as_the_identity(name):
    task = make_task(TASKS[name])
    task.model.eval()
    x = random_batch().lr_images
    assert torch.allclose(task.model.recover(x), x, atol=1e-6)
    if name == "cyclegan":  # F (HR -> LR) too; after one step G is no longer exactly x
        assert torch.allclose(task.model.g_hr2lr(x), x, atol=1e-6)
        task.train_step(random_batch())
        assert not torch.allclose(task.model.recover(x), x, atol=1e-6)


def test_gradient_helpers():
    x = torch.tensor([-0.5, 0.3, 1.5], requires_grad=True)
    y = clamp01(x)
    assert torch.equal(y, torch.tensor([0.0, 0.3, 1.0]))
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones(3))  # straight through: no dead pixels
    x.grad = None
    z = scale_grad(x * 2, 0.01)
    assert torch.equal(z, x * 2)
    z.sum().backward()
    assert torch.allclose(x.grad, torch.full((3,), 0.02))


@pytest.mark.parametrize("name", ["sing", "csrgan"])
def test_reid_loss_reaches_the_sr_networks_scaled(name):
    """Joint learning: with the pixel loss off, the SR part still gets the re-ID gradient,
    REID_GRAD_TO_SR times what it would get unscaled."""
    grads = []
    for scale in (1.0, REID_GRAD_TO_SR):
        task = make_task(TASKS[name], lambda_rec=0.0, lambda_adv_di=0.0)
        task.reid_grad_to_sr = scale
        task.model.train()
        gen, _ = task.losses(random_batch())
        gen["total"].backward()
        sr = task.model.sr if name == "sing" else task.model.stages
        grads.append(torch.cat([p.grad.flatten() for p in sr.parameters() if p.grad is not None]))
    assert grads[0].abs().sum() > 0
    expected = grads[0] * REID_GRAD_TO_SR
    assert (grads[1] - expected).abs().max() <= 1e-4 * expected.abs().max()


def _params(task, which):
    return list(getattr(task.model, f"{which}_parameters")())


def _some_grad(params) -> bool:
    return any(p.grad is not None and p.grad.abs().sum() > 0 for p in params)


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_generator_and_discriminator_updates_are_separate(name):
    cls, b = TASKS[name], random_batch()
    # gradients: the discriminator loss reaches only D, the generator loss never reaches D
    task = make_task(cls)
    task.model.train()
    gen, disc = task.losses(b)
    disc["total"].backward(retain_graph=True)
    assert all(p.grad is None for p in _params(task, "generator"))
    assert _some_grad(_params(task, "discriminator"))
    for p in _params(task, "discriminator"):
        p.grad = None
    gen["total"].backward()
    assert all(p.grad is None for p in _params(task, "discriminator"))
    assert _some_grad(_params(task, "generator"))
    gen_ids = {id(p) for p in _params(task, "generator")}
    assert not gen_ids & {id(p) for p in _params(task, "discriminator")}
    assert gen_ids | {id(p) for p in _params(task, "discriminator")} == {
        id(p) for p in task.model.parameters()}
    # steps: a discriminator step changes only D, a model step only the generators / re-ID
    for opt_name, moved in (("disc", "discriminator"), ("model", "generator")):
        task = make_task(cls)
        task.model.train()
        before = {n: p.detach().clone() for n, p in task.model.named_parameters()}
        gen, disc = task.losses(b)
        opt = task.optimizers[opt_name]
        opt.zero_grad(set_to_none=True)
        (disc if opt_name == "disc" else gen)["total"].backward()
        opt.step()
        moved_ids = {id(p) for p in _params(task, moved)}
        changed = [p for n, p in task.model.named_parameters() if not torch.equal(p, before[n])]
        assert changed and all(id(p) in moved_ids for p in changed), opt_name


def test_cyclegan_never_uses_the_paired_target():
    b = random_batch()
    noisy = dataclasses.replace(b, lr_targets=torch.rand_like(b.lr_targets))
    t1, t2 = make_task(CycleGANTask), make_task(CycleGANTask)
    for _ in range(2):
        o1, o2 = t1.train_step(b), t2.train_step(noisy)
        assert o1.keys() == o2.keys()
        assert all(torch.equal(o1[k], o2[k]) for k in o1)
    for (n, p), q in zip(t1.model.named_parameters(), t2.model.parameters()):
        assert torch.equal(p, q), n


def test_cyclegan_uses_cyclegans_adam_for_generators_and_discriminators():
    """G, F (gen_optim) and D_HR, D_LR (disc_optim): Adam(2e-4, betas 0.5/0.999), in every
    profile; the re-ID network keeps the profile's SGD; one train_step moves all four parts."""
    for profile in ("smoke", "cpu", "paper"):
        method = create_method("cyclegan")
        key = method.config_key(RunConfig(datasets=["viper"], methods=["cyclegan"],
                                          data_root=Path("."), out=Path("."), profile=profile))
        for name in ("gen_optim", "disc_optim"):
            assert key[name]["name"] == "adam" and key[name]["lr"] == 2e-4, (profile, name)
            assert key[name]["betas"] == [0.5, 0.999] and key[name]["weight_decay"] == 0.0
        assert key["model_optim"]["name"] == "sgd"
        assert key["method_code_version"] == 2  # residual generators: old models not reused
    assert "method_code_version" not in create_method("sing").config_key(
        RunConfig(datasets=["viper"], methods=["sing"], data_root=Path("."), out=Path(".")))
    task = make_task(CycleGANTask)
    m, opts = task.model, task.optimizers
    assert set(opts) == {"sr", "model", "disc"}
    assert isinstance(opts["sr"], torch.optim.Adam) and isinstance(opts["model"], torch.optim.SGD)
    assert opts["sr"].defaults["betas"] == (0.5, 0.999) and opts["sr"].defaults["lr"] == 2e-4
    assert isinstance(opts["disc"], torch.optim.Adam) and opts["disc"].defaults["betas"] == (0.5, 0.999)

    def ids(o):
        return {id(p) for g in o.param_groups for p in g["params"]}

    assert ids(opts["sr"]) == {id(p) for p in [*m.g_lr2hr.parameters(), *m.g_hr2lr.parameters()]}
    assert ids(opts["model"]) == {id(p) for p in m.reid.generator_parameters()}
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    task.train_step(random_batch())
    for part in ("g_lr2hr", "g_hr2lr", "reid", "d_hr", "d_lr"):
        assert any(not torch.equal(p, before[n]) for n, p in m.named_parameters()
                   if n.startswith(part + ".")), part
    # the other SR baselines keep one model optimiser (no gen_optim in their config key)
    assert set(make_task(SINGTask).optimizers) == {"model"}
    assert "gen_optim" not in make_task(CSRGANTask).config.to_dict()


def test_csrgan_pixel_loss_uses_the_paired_target():
    b = random_batch()
    noisy = dataclasses.replace(b, lr_targets=torch.rand_like(b.lr_targets))
    t1, t2 = make_task(CSRGANTask), make_task(CSRGANTask)
    assert t1.config.lambda_adv_di == 1e-3 and t1.config.method == "csrgan"
    g1, _ = t1.losses(b)
    g2, _ = t2.losses(noisy)
    assert not torch.allclose(g1["pix"], g2["pix"])
    assert torch.equal(g1["id"], g2["id"])  # the re-ID loss sees the images, not the targets


def test_csrgan_stage_targets():
    assert stage_levels((2, 3, 4)) == [2, 1]
    assert stage_levels((2,)) == [1]
    assert stage_levels((2, 3, 4, 8)) == [4, 2, 1]
    b = random_batch(rates=(2, 3, 4))
    est = estimate_rates(b.lr_images, b.lr_targets, (2.0, 3.0, 4.0), "bilinear")
    for r, x, t in zip(est.tolist(), b.lr_images, b.lr_targets):
        assert torch.allclose(make_lr(t[None], [r])[0], x, atol=1e-6)
    # rates 2..8: the first stage (level 4) leaves the images already finer than 4 alone
    task = make_task(CSRGANTask, lr_rates=(2, 3, 4, 8))
    assert len(task.model.stages) == 3
    b = random_batch(rates=(2, 8))
    first = task.stage_targets(b)[0]
    for x, t, y in zip(b.lr_images, b.lr_targets, first):
        coarse = torch.allclose(make_lr(t[None], [8])[0], x, atol=1e-6)
        assert torch.allclose(y, make_lr(t[None], [4])[0] if coarse else x, atol=1e-6)
    assert torch.equal(task.stage_targets(b)[-1], b.lr_targets)


def test_sing_has_one_branch_per_seen_rate_and_fuses_them_by_concatenation():
    task = make_task(SINGTask)
    m = task.model
    assert list(m.sr) == ["x2", "x3", "x4"] and m.scales == (2.0, 3.0, 4.0)
    assert all(isinstance(br, SRCNN) for br in m.branches)
    assert m.feature_dim == 3 * m.reid.feature_dim
    before = [[p.detach().clone() for p in br.parameters()] for br in m.branches]
    task.train_step(random_batch())
    for br, old in zip(m.branches, before):  # every branch was trained
        assert any(not torch.equal(p, q) for p, q in zip(br.parameters(), old))
    m.eval()
    x = random_batch(seed=1).lr_images
    with torch.no_grad():
        outs = [br(x) for br in m.branches]
        manual = torch.cat([Classifier.pool([m.reid.encoder.features(y)]) for y in outs], 1)
        mean = torch.stack(outs).mean(0)
    assert torch.allclose(m.extract_features(x), manual, atol=1e-6)
    assert torch.allclose(m.recover(x), mean)
    # the branches differ after training, so the fusion is not one branch repeated
    assert not torch.allclose(outs[0], outs[2])


def test_exact_resume_state_dict_round_trip():
    a = make_task(CSRGANTask)
    a.train_step(random_batch(0))
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)  # as the engine's checkpoint: saved, loaded weights_only
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    c = make_task(CSRGANTask, seed=99)  # different initial weights
    c.load_state_dict(state)
    for (n, p), q in zip(a.model.state_dict().items(), c.model.state_dict().values()):
        assert torch.equal(p, q), n
    for k in a.optimizers:
        sa, sc = a.optimizers[k].state_dict(), c.optimizers[k].state_dict()
        assert sa["param_groups"] == sc["param_groups"]
        assert sa["state"].keys() == sc["state"].keys() and sa["state"]
        for i in sa["state"]:  # SGD momentum buffers, Adam moments and step counts
            assert sa["state"][i].keys() == sc["state"][i].keys()
            for name, t in sa["state"][i].items():
                assert torch.equal(t, sc["state"][i][name]), (k, i, name)
    b = random_batch(1)
    oa, oc = a.train_step(b), c.train_step(b)
    assert all(torch.equal(oa[k], oc[k]) for k in oa)
    for (n, p), q in zip(a.model.named_parameters(), c.model.parameters()):
        assert torch.equal(p, q), n


def test_parameter_counts_are_reported():
    for cls in TASKS.values():
        counts = make_task(cls).model.parameter_counts()
        assert counts["total"] == sum(v for k, v in counts.items() if k != "total") > 0
