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


def test_run_smoke_writes_a_row(viper_root, tmp_path, capsys):
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
    assert (t.protocol == "paper").all() and (t.pretrained == "none").all()
    assert t.git_commit.notna().all() and t.device.str.startswith("cpu").all()
    old = out / "validation.csv"  # a file with other columns is not appended to
    old.write_text(old.read_text().replace(",protocol,pretrained,backbone,git_commit,device", ""))
    assert validate.main(["--data-root", str(viper_root), "--profile", "smoke", "--epochs", "1",
                          "--threads", "1", "--cache", str(tmp_path / "c"),
                          "--out", str(out)]) == 2
    assert "has the columns" in capsys.readouterr().err


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
    _, task = validate.make_task("cadnet", "smoke", 6, 0, None, o)
    assert task.config.lambda_adv_di == 0.1 and task.config.disc_optim.name == "sgd"

    for bad in ("lambda_nope=1", "lambda_adv_di", "lambda_adv_di=x", "disc_optim=1"):
        with pytest.raises(ValueError, match="--set"):
            validate.parse_overrides([bad])


def test_epochs_list_is_parsed_and_checked():
    assert validate.parse_epochs("0", 36) == [36]
    assert validate.parse_epochs("0,72", 36) == [36, 72]
    assert validate.parse_epochs("10,20,40", 36) == [10, 20, 40]
    for bad in ("72,36", "36,36", "-1", "x", "", "0,20"):
        with pytest.raises(ValueError, match="--epochs"):
            validate.parse_epochs(bad, 36)


def test_scoring_one_run_at_two_lengths_equals_a_plain_run_of_that_length(viper_root, tmp_path):
    """``--epochs 1,2`` continues one run: its 2-epoch row equals a plain 2-epoch run."""
    common = ["--data-root", str(viper_root), "--profile", "smoke", "--methods", "lr-aug",
              "--threads", "1", "--cache", str(tmp_path / "c")]
    for name, epochs in (("both", "1,2"), ("two", "2")):
        assert validate.main([*common, "--epochs", epochs, "--out", str(tmp_path / name)]) == 0
    both, two = (pd.read_csv(tmp_path / n / "validation.csv") for n in ("both", "two"))
    assert both.epochs.tolist() == [1, 2] and both.steps.tolist() == [27, 54]
    cols = ["val_rank1_seen", "val_rank1_unseen", "val_rank1_hr", "final_id", "final_tri"]
    assert both.iloc[1][cols].tolist() == two.iloc[0][cols].tolist()
    assert both.iloc[0].final_id != both.iloc[1].final_id  # the second row trained on


def test_recovery_scores_recovered_images_against_their_bilinear_input(viper_root, tmp_path):
    """A 'recovery' that returns its input scores exactly the input's PSNR / SSIM and colour;
    one that returns the HR original scores infinite PSNR; a method without images: NaN."""
    import math

    import torch

    from datasets import load_dataset
    from datasets.loader import ImageStore
    from datasets.protocol import get_manifest

    ds = load_dataset("viper", viper_root)
    ds.images = [r for r in ds.images if r.pid < 12]
    m = get_manifest(ds, trial=0, seed=0, manifest_dir=tmp_path)
    query = m.rows("train")
    query = query[(query.rate == 1) & (query.camid == 0)]
    store = ImageStore(m.abspaths(query), (64, 32))

    class Identity:
        produces_images, query_upsampling = True, "bilinear"

        def recover(self, x):
            return x

    r = validate.recovery(Identity(), store, m, query, (2, 3, 4))
    assert r["val_psnr_recovered"] == r["val_psnr_input"] and 15 < r["val_psnr_input"] < 40
    assert r["val_ssim_recovered"] == r["val_ssim_input"] < 1
    hr = store.batch(store.indices(m.abspaths(query)))
    assert r["val_rgb_hr"] == "/".join(f"{v:.3f}" for v in hr.mean((0, 2, 3)).tolist())

    class Oracle(Identity):
        def recover(self, x):
            return hr

    assert math.isinf(validate.recovery(Oracle(), store, m, query, (2,))["val_psnr_recovered"])

    class NoImages:
        produces_images = False

    assert math.isnan(validate.recovery(NoImages(), store, m, query, (2,))["val_psnr_input"])
    assert torch.isfinite(hr).all()
