"""benchmark.validate: the validation split is carved from training identities only."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmark import validate
from datasets import load_dataset
from datasets.protocol import get_manifest


def test_validation_split_holds_out_training_ids_only(viper_root, tmp_path):
    ds = load_dataset("viper", viper_root, cache_dir=tmp_path)
    man = get_manifest(ds, trial=0, seed=0, manifest_dir=tmp_path / "m")
    train = man.rows("train")
    train = train[train.rate == 1]
    test_ids = set(man.rows("query").pid) | set(man.rows("gallery").pid)
    split = validate.validation_split(train, 100, 0, 0)
    fit, query, gallery = split
    val_ids = set(query.pid)
    assert len(val_ids) == 100 and val_ids == set(gallery.pid)
    assert val_ids <= set(train.pid) and not val_ids & test_ids
    assert not val_ids & set(fit.pid) and len(set(fit.pid)) == 316 - 100
    assert (query.camid == 0).all() and (gallery.camid == 1).all()
    again = validate.validation_split(train, 100, 0, 0)
    assert all(a.equals(b) for a, b in zip(split, again))
    assert set(validate.validation_split(train, 100, 1, 0)[1].pid) != val_ids


def test_run_smoke_writes_a_row(viper_root, tmp_path):
    out = tmp_path / "out"
    assert validate.main(["--data-root", str(viper_root), "--profile", "smoke",
                          "--methods", "hr-only", "--lr", "1e-3,1e-2", "--epochs", "1",
                          "--threads", "1", "--cache", str(tmp_path / "c"),
                          "--out", str(out)]) == 0
    t = pd.read_csv(out / "validation.csv")
    assert list(t.columns) == validate.COLUMNS
    assert list(t.model_lr) == [1e-3, 1e-2] and (t.train_ids == 216).all()
    assert t.steps.tolist() == [27, 27]  # 432 images of 216 ids / smoke batch 16, 1 epoch
    for c in ("val_rank1_seen", "val_rank1_unseen", "val_rank1_hr"):
        assert t[c].between(0, 100).all()


def test_too_many_validation_ids_is_an_error(viper_root, tmp_path, capsys):
    assert validate.main(["--data-root", str(viper_root), "--val-ids", "316",
                          "--epochs", "1", "--cache", str(tmp_path / "c")]) == 2
    assert "--val-ids 316" in capsys.readouterr().err


def test_set_overrides_are_parsed_and_checked():
    from benchmark.profiles import OptimSpec

    o = validate.parse_overrides(['lambda_adv_di=0.1', 'disc_optim={"name": "sgd", "lr": 1e-4}',
                                  "lr_rates=[2, 3]"])
    assert o == {"lambda_adv_di": 0.1, "disc_optim": OptimSpec("sgd", lr=1e-4),
                 "lr_rates": (2, 3)}
    task = validate.make_task("cadnet", "smoke", 6, 0, None, o)
    assert task.config.lambda_adv_di == 0.1 and task.config.disc_optim.name == "sgd"

    for bad in ("lambda_nope=1", "lambda_adv_di", "lambda_adv_di=x", "disc_optim=1"):
        with pytest.raises(ValueError, match="--set"):
            validate.parse_overrides([bad])
