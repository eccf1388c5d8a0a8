"""The method contract, over every registered method (in the spirit of timm's test_models).

Each method in ``list_methods()``, built through the one factory as ``run_all.py`` builds it:
an engine method takes one smoke-profile training step on real SynthMLR images (its
parameters move, every loss is finite) and then yields test features of the size it
declares (``feature_dim``); a hand-crafted method fits on the training rows and does the
same. A method that recovers images returns them at the input size, in [0, 1].
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmark.config import RunConfig
from benchmark.engine import IdentitySampler, epoch_generator, make_batch
from benchmark.methods import LearnedMethod, create_method, create_task, list_methods
from benchmark.registry import UnknownMethod, register_method, unregister_method
from benchmark.tasks import Task
from datasets.loader import make_lr

SIZE = (64, 32)  # the smoke profile's input size


def _queries(manifest, store) -> torch.Tensor:
    rows = manifest.rows("query", "seen").head(5)
    hr = store.batch(store.indices(manifest.abspaths(rows)))
    return make_lr(hr, torch.tensor(rows["rate"].tolist(), dtype=torch.float64))


def test_every_table_method_is_registered():
    from benchmark.figures import FIGURE3_METHODS
    from benchmark.tables import TABLES

    named = {m for spec in TABLES.values() for m in spec.default_methods} | set(FIGURE3_METHODS)
    assert named <= set(list_methods())
    assert len(set(list_methods())) == len(list_methods())


@pytest.mark.parametrize("name", list_methods())
def test_method_trains_one_step_and_yields_declared_features(name, synth):
    manifest, store, data = synth
    method = create_method(name)
    assert method.name == name
    if isinstance(method, LearnedMethod):
        method, task = create_task(name, "smoke", data.num_classes)
        c = task.config
        g = epoch_generator(c.seed, 0)
        hr = IdentitySampler(data.labels, c.ids_per_batch, c.instances_per_id).batches(g)[0]
        lr = IdentitySampler(data.labels, c.lr_batch // c.instances_per_id,
                             c.instances_per_id).batches(g)[0]
        batch = make_batch(data, hr, lr, c.lr_rates, c.lr_method, g, "cpu")
        before = [p.detach().clone() for p in task.model.parameters()]
        losses = task.train_step(batch)
        assert losses and all(torch.isfinite(v).all() for v in losses.values()), losses
        assert any(not torch.equal(b, p) for b, p in zip(before, task.model.parameters()))
        assert all(not v.requires_grad for v in losses.values())
    else:
        run = RunConfig(datasets=["synthetic"], methods=[name], data_root=Path("."),
                        out=Path("."), profile="smoke", input_size=SIZE)
        method.fit(manifest=manifest, store=store, run=run)
    x = _queries(manifest, store)
    feats = method.features(x)
    assert feats.shape == (len(x), method.feature_dim) and feats.dtype == torch.float32
    assert torch.isfinite(feats).all()
    if method.produces_images:
        rec = method.recover(x)
        assert rec.shape == x.shape and rec.min() >= 0 and rec.max() <= 1


def test_a_new_method_is_one_class_and_one_decorator(synth):
    """Registering a task class makes it a method everywhere (factory, CLI names)."""
    from baselines.reid import HR_ONLY, ReIDNet, ReIDTask
    from benchmark.cli import resolve_methods

    @register_method("tiny-reid", preset=HR_ONLY)
    class TinyTask(ReIDTask):
        def build_model(self, config):
            return ReIDNet(config)

    try:
        assert "tiny-reid" in list_methods() and resolve_methods("tiny-reid", []) == ["tiny-reid"]
        method, task = create_task("tiny-reid", "smoke", synth[2].num_classes)
        assert isinstance(task, Task) and method.cache_name == "tiny-reid"
        assert task.config.method == "hr-only"  # the preset named at registration
    finally:
        unregister_method("tiny-reid")
    with pytest.raises(UnknownMethod, match="unknown method 'tiny-reid'"):
        create_method("tiny-reid")


def test_registering_a_taken_name_is_an_error():
    from baselines.hist import HistMethod

    class Other:
        pass

    register_method("hist")(HistMethod)  # the same class again: no change
    with pytest.raises(ValueError, match="already registered"):
        register_method("hist")(Other)
    assert isinstance(create_method("hist"), HistMethod)
