"""Engine-trained standard re-ID baselines (hr-only, lr-aug, bicubic) and rain, on SynthMLR."""

from __future__ import annotations

import math
from dataclasses import replace
from functools import partial

import pytest
import torch

import benchmark.experiment as experiment
from baselines.rain import RAINTask
from baselines.reid import BicubicTask, HROnlyTask, LRAugTask
from benchmark.config import CacheMode, RunConfig
from benchmark.engine import TrainData, train
from benchmark.evaluation import ResultMeasure, extract_features
from benchmark.losses import CrossResolutionBatch, cadnet_losses
from benchmark.methods import LearnedMethod, create_method
from benchmark.profiles import make_config
from benchmark.store import MissingResult
from datasets import load_dataset
from datasets.loader import make_lr

TASKS = {"hr-only": HROnlyTask, "lr-aug": LRAugTask, "bicubic": BicubicTask, "rain": RAINTask}
SIZE = (64, 32)  # the smoke profile's input size


def make_task(name: str, num_classes: int, **overrides):
    cls = TASKS[name]
    return cls(make_config("smoke", cls.preset, num_classes=num_classes, **overrides))


def a_batch(data: TrainData, seed: int, lr_seed: int) -> CrossResolutionBatch:
    """A 4 x 4 HR batch (fixed by ``seed``) and a 4 x 4 LR batch (changed by ``lr_seed``)."""
    def pick(g):
        ids = torch.randperm(data.num_classes, generator=g)[:4]
        pos = [torch.nonzero(data.labels == c).flatten()[:4] for c in ids]
        return torch.cat(pos)

    hr_pos = pick(torch.Generator().manual_seed(seed))
    lr_pos = pick(torch.Generator().manual_seed(lr_seed))
    hr, target = data.store.batch(data.index[hr_pos]), data.store.batch(data.index[lr_pos])
    rates = torch.tensor([2.0, 3.0, 4.0, 2.0] * 4)
    return CrossResolutionBatch(hr, data.labels[hr_pos], make_lr(target, rates),
                                data.labels[lr_pos], target)


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", list(TASKS))
def test_task_trains_through_the_engine_with_finite_losses(synth, name):
    _, _, data = synth
    task = make_task(name, data.num_classes)
    hist = train(task, data, epochs=1, ids_per_batch=4, instances_per_id=4, seed=1, log_every=1)
    keys = {"id", "tri", "total"} | ({"adv_df", "d_f"} if name == "rain" else set())
    assert keys <= set(hist[0]), hist[0]
    assert all(math.isfinite(hist[0][k]) for k in keys)
    # the test feature is GAP of the trunk's final map: d = the trunk's channel count
    task.model.eval()
    feats = task.model.extract_features(data.store.batch(data.index[:5]))
    assert feats.shape == (5, task.model.encoder.trunk.out_channels) == (5, 64)
    assert torch.isfinite(feats).all() and task.model.init == "random"
    # no network here recovers images; bicubic reports its interpolated query as "recovered"
    # (Table 2's no-learning reference row), the others report none
    assert not hasattr(task.model, "recover")
    assert TASKS[name].produces_images == (name == "bicubic")
    assert getattr(TASKS[name], "recovered_is_query", False) == (name == "bicubic")


def test_hr_only_ignores_the_lr_half_and_lr_aug_does_not(synth):
    _, _, data = synth
    b1, b2 = a_batch(data, seed=0, lr_seed=1), a_batch(data, seed=0, lr_seed=2)
    assert not torch.equal(b1.lr_images, b2.lr_images)
    for name, depends in (("hr-only", False), ("lr-aug", True)):
        t1, t2 = make_task(name, data.num_classes), make_task(name, data.num_classes)
        assert same(snapshot(t1.model), snapshot(t2.model))  # same seed, same init
        l1, l2 = t1.train_step(b1), t2.train_step(b2)
        s1, s2 = snapshot(t1.model), snapshot(t2.model)
        if depends:
            assert not same(s1, s2) and not torch.equal(l1["total"], l2["total"])
        else:
            assert same(s1, s2) and torch.equal(l1["total"], l2["total"])


def test_rain_steps_touch_only_their_own_parameters(synth):
    _, _, data = synth
    task = make_task("rain", data.num_classes)
    model, opts = task.model, task.optimizers
    d_f = model.feature_discriminator
    ec = torch.nn.ModuleList([model.encoder, model.classifier])
    model.train()
    gen, disc = cadnet_losses(model, a_batch(data, 0, 1), task.config)  # what train_step runs
    assert set(gen) == {"id", "tri", "adv_df", "total"} and set(disc) == {"d_f"}

    ec0, df0 = snapshot(ec), snapshot(d_f)
    opts["model"].zero_grad(set_to_none=True)
    gen["total"].backward()
    assert all(p.grad is None for p in d_f.parameters())  # D_F frozen for the E/C loss
    opts["model"].step()
    assert same(snapshot(d_f), df0) and not same(snapshot(ec), ec0)

    ec1 = snapshot(ec)
    opts["model"].zero_grad(set_to_none=True)
    opts["d_f"].zero_grad(set_to_none=True)
    disc["d_f"].backward()
    assert all(p.grad is None for p in ec.parameters())  # D_F sees detached features
    opts["d_f"].step()
    assert same(snapshot(ec), ec1) and not same(snapshot(d_f), df0)

    # the full step moves both, and the discriminator uses its own optimiser settings
    ec2, df2 = snapshot(ec), snapshot(d_f)
    task.train_step(a_batch(data, 3, 4))
    assert not same(snapshot(ec), ec2) and not same(snapshot(d_f), df2)
    assert opts["d_f"].param_groups[0]["lr"] == task.config.disc_optim.lr


def test_bicubic_shares_the_hr_only_model_and_upsamples_queries_bicubically(synth, tmp_path):
    manifest, store, data = synth
    bicubic, hr_only = create_method("bicubic"), create_method("hr-only")
    assert LearnedMethod("bicubic", BicubicTask).cache_name == "hr-only" == bicubic.cache_name
    assert (bicubic.query_upsampling, hr_only.query_upsampling) == ("bicubic", "bilinear")
    cfg = RunConfig(datasets=["synthetic"], methods=["hr-only", "bicubic"], data_root=tmp_path,
                    out=tmp_path, profile="smoke", input_size=SIZE)
    # identical configs -> identical model cache keys -> the hr-only model is reused
    assert bicubic.make_config(cfg, 8, 0) == hr_only.make_config(cfg, 8, 0)
    assert bicubic.make_config(cfg, 8, 0).method == "hr-only"

    # evaluation's query path: LR queries are up-sampled with the method's interpolation
    seen = []

    class Recorder:
        query_upsampling = bicubic.query_upsampling

        def features(self, x):
            seen.append(x)
            return x.flatten(1)[:, :4]

    rows = manifest.rows("query", "seen").head(6)
    extract_features(Recorder(), store, manifest, rows, "bilinear")
    hr = store.batch(store.indices(manifest.abspaths(rows)))
    rates = torch.tensor(rows["rate"].tolist(), dtype=torch.float64)
    assert torch.equal(seen[0], make_lr(hr, rates, "bilinear", "bicubic"))
    assert not torch.equal(seen[0], make_lr(hr, rates, "bilinear", "bilinear"))


def test_run_methods_trains_hr_only_once_and_bicubic_reuses_it(tmp_path, monkeypatch):
    monkeypatch.setattr(experiment, "load_dataset", partial(load_dataset, num_ids=16))
    made = []

    def factory(name):
        made.append(create_method(name))
        return made[-1]

    monkeypatch.setattr(experiment, "create_method", factory)
    cfg = RunConfig(datasets=["synthetic"], methods=["hr-only", "bicubic"], data_root=tmp_path,
                    out=tmp_path / "out", profile="smoke", input_size=SIZE, trials=1)
    (results,) = experiment.collect(cfg, ResultMeasure())
    frame = results.frame(cfg)
    fitted = [m for m in made if m.model is not None]  # (others only built result keys)
    assert [m.name for m in fitted] == ["hr-only", "bicubic"]
    assert [m.reused for m in fitted] == [False, True]  # bicubic trained nothing
    models = tmp_path / "out" / "cache" / "models" / "synthetic" / "paper" / "smoke"
    assert sorted(p.name for p in models.iterdir()) == ["hr-only"]
    assert set(frame["method"]) == {"hr-only", "bicubic"}
    assert frame[["rank1", "mAP"]].notna().all().all()
    assert set(frame["init"]) == {"random"}
    assert frame["init_file"].isna().all() and frame["init_sha256"].isna().all()


def test_stored_only_fit_trains_nothing_and_loads_a_cached_model(tmp_path, monkeypatch):
    """Under --stored-only a learned method without a usable cached model raises
    MissingResult before writing anything; once trained, the model is loaded."""
    monkeypatch.setattr(experiment, "load_dataset", partial(load_dataset, num_ids=16))
    cfg = RunConfig(datasets=["synthetic"], methods=["hr-only"], data_root=tmp_path,
                    out=tmp_path / "out", profile="smoke", input_size=SIZE, trials=1)
    read_only = replace(cfg, cache=CacheMode.STORED_ONLY)
    manifest = experiment.open_manifest(cfg, experiment.load_checked(cfg, "synthetic"), 0)
    store = experiment.image_store(cfg, manifest)
    with pytest.raises(MissingResult):
        experiment.fit_method("hr-only", manifest, store, read_only)
    assert not (tmp_path / "out" / "cache" / "models").exists()
    trained = experiment.fit_method("hr-only", manifest, store, cfg)
    loaded = experiment.fit_method("hr-only", manifest, store, read_only)
    assert not trained.reused and loaded.reused
    for a, b in zip(trained.model.state_dict().values(), loaded.model.state_dict().values()):
        assert torch.equal(a, b)
