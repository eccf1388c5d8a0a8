"""Faults a user meets, each a clear one-line error or a safe recovery, never stale data:
changed data under the same --out, a mistyped --data-root, a full disk, damaged cache
files, empty or out-of-range flags, Ctrl-C."""

from __future__ import annotations

import errno
import json
import logging
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.cli import main

HIST = ["--table", "1", "--methods", "hist", "--datasets", "viper", "--profile", "smoke",
        "--trials", "1"]


def viper_copy(viper_root, dest, ids: int):
    """A data root with the first ``ids`` VIPeR persons (both cameras)."""
    for cam in ("cam_a", "cam_b"):
        src = viper_root / "viper" / "VIPeR" / cam
        (dest / "viper" / "VIPeR" / cam).mkdir(parents=True)
        for p in sorted(src.iterdir())[:ids]:
            shutil.copy(p, dest / "viper" / "VIPeR" / cam / p.name)
    return dest


def test_changed_data_under_the_same_out_is_never_served_stale(viper_root, tmp_path):
    small = viper_copy(viper_root, tmp_path / "small", 40)
    big = viper_copy(viper_root, tmp_path / "big", 80)
    out = tmp_path / "o"
    assert main([*HIST, "--data-root", str(small), "--out", str(out)]) == 0
    assert set(pd.read_csv(out / "table1.csv").num_queries) == {20}
    assert main([*HIST, "--data-root", str(big), "--out", str(out)]) == 0
    again = pd.read_csv(out / "table1.csv")
    assert main([*HIST, "--data-root", str(big), "--out", str(tmp_path / "fresh")]) == 0
    pd.testing.assert_frame_equal(again, pd.read_csv(tmp_path / "fresh" / "table1.csv"))
    assert set(again.num_queries) == {40}
    # the same data in another folder is the same data: its results are reused
    moved = shutil.copytree(big, tmp_path / "moved")
    runs = sorted((out / "runs").rglob("*.json"))
    assert main([*HIST, "--data-root", str(moved), "--out", str(out)]) == 0
    assert sorted((out / "runs").rglob("*.json")) == runs


def test_a_mistyped_data_root_is_an_error_and_keeps_the_old_table(viper_root, tmp_path, capsys):
    out = tmp_path / "o"
    assert main([*HIST, "--data-root", str(viper_root), "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.glob("table1.*")}
    assert main(["--table", "1", "--methods", "hist", "--data-root", str(tmp_path / "dtaa"),
                 "--out", str(out)]) == 2
    assert f"--data-root {tmp_path / 'dtaa'}: no such folder" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.glob("table1.*")} == before
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["--table", "1", "--methods", "hist", "--data-root", str(empty),
                 "--out", str(out)]) == 2
    assert "no dataset folder in it" in capsys.readouterr().err
    assert main(["--list-datasets", "--data-root", str(tmp_path / "dtaa")]) == 2


def test_a_full_disk_leaves_no_temporary_file(tmp_path, monkeypatch, viper_root):
    from datasets.atomic import atomic_path, atomic_write_text
    from datasets.loader import ImageStore

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    paths = [str(p) for p in sorted((viper_root / "viper" / "VIPeR" / "cam_a").iterdir())[:3]]
    monkeypatch.setattr(np, "save", full)
    with pytest.raises(OSError, match="No space"):
        ImageStore(paths, (64, 32), cache_dir=tmp_path / "images")
    assert list((tmp_path / "images").iterdir()) == []
    monkeypatch.undo()
    store = ImageStore(paths, (64, 32), cache_dir=tmp_path / "images")  # space freed: works
    assert [p.name.startswith("images-") for p in (tmp_path / "images").iterdir()] == [True]
    target = tmp_path / "t.txt"
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert list(tmp_path.glob(".t.txt*")) == [] and not target.exists()
    atomic_write_text(target, "whole")
    assert target.read_text() == "whole" and len(store) == 3


def test_damaged_cache_files(tmp_path, viper_root, caplog):
    from benchmark.engine import CorruptFile, load_checkpoint, save_checkpoint
    from benchmark.store import read_json
    from datasets.errors import MLRBenchError
    from datasets.loader import ImageStore

    ckpt = tmp_path / "model.pt"
    save_checkpoint(ckpt, {"w": torch.ones(3)})
    assert torch.equal(load_checkpoint(ckpt)["w"], torch.ones(3))
    ckpt.write_bytes(ckpt.read_bytes()[:50])  # truncated
    with pytest.raises(CorruptFile, match=f"{ckpt}: cannot read this checkpoint") as e:
        load_checkpoint(ckpt)
    assert isinstance(e.value, MLRBenchError) and "--retrain" in str(e.value)
    torch.save({"obj": logging.getLogger("x")}, ckpt)  # a pickle weights_only refuses
    with pytest.raises(CorruptFile) as e:
        load_checkpoint(ckpt)
    assert "weights_only" not in str(e.value) and "\n" not in str(e.value)

    result = tmp_path / "seed0-trial0.json"
    result.write_text('{"key": {"a": 1}, "rows": [')
    with pytest.raises(MLRBenchError, match="cannot read a stored result.*delete the file"):
        read_json(result, "a stored result")

    paths = [str(p) for p in sorted((viper_root / "viper" / "VIPeR" / "cam_a").iterdir())[:3]]
    first = ImageStore(paths, (64, 32), cache_dir=tmp_path / "images")
    (npy,) = (tmp_path / "images").iterdir()
    npy.write_bytes(b"\x93NUMPY garbage")  # only a cache: decoded again, with a warning
    with caplog.at_level(logging.WARNING):
        again = ImageStore(paths, (64, 32), cache_dir=tmp_path / "images")
    assert torch.equal(first.data, again.data) and "unreadable" in caplog.text


def test_a_damaged_manifest_record_is_named(viper_root, tmp_path, capsys):
    out = tmp_path / "o"
    assert main([*HIST, "--data-root", str(viper_root), "--out", str(out)]) == 0
    (meta,) = (out / "manifests").rglob("*.json")
    meta.write_text("{")
    assert main([*HIST, "--data-root", str(viper_root), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"manifest record {meta} is unreadable" in err and "to rebuild" in err


@pytest.mark.parametrize("flags, message", [
    (["--methods", ""], "--methods '' names nothing"),
    (["--methods", ","], "--methods ',' names nothing"),
    (["--datasets", ","], "--datasets ',' names nothing"),
])
def test_empty_names_are_errors(flags, message, viper_root, tmp_path, capsys):
    args = ["--table", "1", "--datasets", "viper", *flags, "--data-root", str(viper_root),
            "--out", str(tmp_path)]
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("flags, message", [
    (["--seed", "-1"], "--seed must be between 0 and 4294967295, got -1"),
    (["--seed", "12345678901234567890"], "--seed must be between 0 and"),
    (["--seed", "x"], "--seed takes an integer"),
    (["--trials", "0"], "--trials must be between 1 and 100, got 0"),
    (["--trials", "100000"], "--trials must be between 1 and 100"),
])
def test_out_of_range_numbers_are_refused_before_any_work(flags, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--table", "1", *flags, "--out", str(tmp_path)])
    assert e.value.code == 2 and message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_missing_dataset_folder_prints_its_layout(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    assert main(["--table", "1", "--datasets", "viper", "--data-root", str(tmp_path / "data"),
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "expected layout:" in err and "<data-root>/viper/VIPeR/cam_a/*.bmp" in err


def test_hidden_files_are_named_not_counted(viper_root, tmp_path, caplog):
    from datasets import load_dataset

    root = viper_copy(viper_root, tmp_path / "d", 10)
    (root / "viper" / "VIPeR" / "cam_a" / "._000_45.bmp").write_bytes(b"\0" * 10)
    with caplog.at_level(logging.WARNING):
        ds = load_dataset("viper", root)
    assert len(ds.images) == 20 and "._000_45.bmp" in caplog.text
    (root / "viper" / "VIPeR" / "cam_b" / sorted(
        (root / "viper" / "VIPeR" / "cam_b").iterdir())[0].name).unlink()
    with pytest.raises(Exception, match="without a partner: 000_45.bmp"):
        load_dataset("viper", root)


def test_trials_on_a_fixed_split_get_a_note(tmp_path, capsys):
    from benchmark.cli import plan_notes
    from benchmark.config import RunConfig

    plan_notes(RunConfig(datasets=["market1501"], methods=["hist"], data_root=tmp_path,
                         out=tmp_path, trials=3))
    assert "market1501 has one fixed split; its 3 trials share it" in capsys.readouterr().err
    plan_notes(RunConfig(datasets=["viper"], methods=["cadnet", "lr-aug", "bicubic", "hist"],
                         data_root=tmp_path, out=tmp_path, trials=10))
    # cadnet, lr-aug and bicubic (which trains hr-only's model): 3 models x 10 trials
    assert "trains up to 30 models" in capsys.readouterr().err


def test_ctrl_c_is_one_line_saying_what_is_kept(tmp_path, monkeypatch, capsys):
    import benchmark.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "dispatch", interrupted)
    assert main(["--table", "1", "--out", str(tmp_path)]) == 130
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("run_all.py: interrupted.")
    assert "run the same command again" in err and str(tmp_path) in err


def test_read_json_roundtrip(tmp_path):
    from benchmark.store import read_json

    p = tmp_path / "a.json"
    p.write_text(json.dumps({"rows": [1]}))
    assert read_json(p, "x") == {"rows": [1]}


def test_result_with_tuple_parameters_is_reused(tmp_path):
    """A method whose parameters hold tuples (lomo-xqda's LOMO settings) gets its stored
    result back: the key is compared in its JSON form, as it was stored."""
    from benchmark.config import CacheMode, RunConfig
    from benchmark.methods import create_method
    from benchmark.store import ResultStore

    run = RunConfig(["viper"], ["lomo-xqda"], tmp_path, tmp_path)
    store = ResultStore(run)
    method = create_method("lomo-xqda")
    assert isinstance(method.config_key(run)["lomo"]["hsv_bins"], tuple)
    key = store.result_key("viper", method, 0, "abc")
    path = store.result_path("viper", "lomo-xqda", 0)
    calls = []
    rows = store.rows(path, key, lambda: calls.append(1) or [{"rank1": 1.0}])
    again = ResultStore(RunConfig(["viper"], ["lomo-xqda"], tmp_path, tmp_path,
                                  cache=CacheMode.STORED_ONLY))
    assert again.rows(path, again.result_key("viper", method, 0, "abc"), None) == rows
    assert calls == [1]
