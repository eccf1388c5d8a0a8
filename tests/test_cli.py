"""run_all.py end to end: Table 1 with ``hist`` on real VIPeR, listing, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from benchmark.cli import main
from tests.conftest import REPO


def run(*args, cwd=REPO):
    return subprocess.run([sys.executable, "run_all.py", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_table1_hist_on_real_viper_writes_csv_md_and_provenance(viper_root, tmp_path):
    out = tmp_path / "results"
    args = ["--table", "1", "--datasets", "viper", "--methods", "hist", "--data-root", viper_root,
            "--trials", "2", "--out", out]
    p = run(*args)
    assert p.returncode == 0, p.stderr
    table = pd.read_csv(out / "table1.csv")
    assert {"dataset", "method", "rank1", "rank5", "rank10", "mAP"} <= set(table.columns)
    assert list(table.testset) == ["seen", "unseen"] and (table.trials == 2).all()
    seen = table[table.testset == "seen"].iloc[0]
    # percentages, ordered, and well above chance (1/316 = 0.3 %) for colour histograms
    assert 2 < seen.rank1 <= seen.rank5 <= seen.rank10 <= 100 and 0 < seen.mAP < 100
    assert seen.num_queries == 316
    prov = json.loads((out / "table1.provenance.json").read_text())
    for key in ("git_commit", "device", "protocol", "seed", "trials", "profile", "backbone_init"):
        assert key in prov
    assert prov["datasets"] == ["viper"] and prov["trials"] == {"viper": 2}
    assert "| viper | hist | seen |" in (out / "table1.md").read_text()
    # a second run reuses every finished trial and writes the same CSV, byte for byte
    first = (out / "table1.csv").read_bytes()
    p2 = run(*args)
    assert p2.returncode == 0 and "trial 0 hist" not in p2.stderr
    assert (out / "table1.csv").read_bytes() == first


def test_per_query_results_on_real_viper_average_to_the_table(viper_root, tmp_path):
    # hist (colour histograms) and bicubic (its recovered image is the up-sampled query;
    # its re-ID model trained for seconds: smoke profile)
    out = tmp_path / "results"
    assert main(["--table", "2", "--datasets", "viper", "--methods", "hist,bicubic",
                 "--data-root", str(viper_root), "--trials", "1", "--per-query",
                 "--profile", "smoke", "--out", str(out)]) == 0
    runs = out / "runs" / "viper" / "paper" / "smoke"
    columns = {}
    for method in ("hist", "bicubic"):
        table = json.loads((runs / method / "seed0-trial0.json").read_text())["rows"]
        per_query = pd.DataFrame(json.loads(
            (runs / method / "seed0-trial0.queries.json").read_text())["rows"])
        for row in table:
            q = per_query[per_query.testset == row["testset"]]
            assert len(q) == row["num_queries"] == 316 and q.path.is_unique
            assert q.rank1.notna().sum() == row["num_valid_queries"] == 316
            assert q.rank1.between(0, 100).all() and q.ap.between(0, 100).all()
            assert q.rank1.mean() == pytest.approx(row["rank1"], abs=1e-9)
            assert q.ap.mean() == pytest.approx(row["mAP"], abs=1e-9)
            assert set(q.rate) == ({8.0} if row["testset"] == "unseen" else {2.0, 3.0, 4.0})
            if method == "bicubic":  # per-image SSIM / PSNR of the recovered queries
                assert q.ssim.mean() == pytest.approx(row["ssim"], abs=1e-9)
                assert q.psnr.mean() == pytest.approx(row["psnr"], abs=1e-9)
                assert 0 < q.ssim.min() and q.ssim.max() < 1
        columns[method] = set(per_query.columns)
    assert "ssim" not in columns["hist"] and "ssim" in columns["bicubic"]


def test_list_datasets_reports_viper(viper_root):
    p = run("--list-datasets", "--data-root", viper_root)
    assert p.returncode == 0, p.stderr
    line = next(ln for ln in p.stdout.splitlines() if "viper" in ln)
    assert "632" in line and "1,264" in line and "│ 2 " in line


@pytest.mark.parametrize("args, message", [
    (["--table", "1", "--datasets", "msmt17"], "unknown dataset(s) msmt17; known: market1501"),
    (["--table", "1", "--datasets", "viper", "--methods", "nope"], "unknown method(s) nope; known: cadnet"),
    (["--table", "1", "--protocol", "authors"], "--protocol authors needs --authors-lists"),
    (["--table", "1", "--datasets", "market1501"], "expected layout:"),
])
def test_usage_errors_exit_2_with_a_reason(args, message, viper_root, tmp_path, capsys):
    code = main([*args, "--data-root", str(viper_root), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and message in err


def test_unwritable_out_fails_before_any_work(viper_root, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code = main(["--table", "1", "--datasets", "viper", "--methods", "hist", "--data-root",
                 str(viper_root), "--out", str(blocker / "results")])
    err = capsys.readouterr().err
    assert code == 2 and "--out" in err and "cannot write there" in err
    assert not (tmp_path / "manifests").exists()


def test_contradictory_flags_are_refused(viper_root, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--table", "1", "--figure", "3"])
    assert e.value.code == 2
    code = main(["--table", "1", "--authors-lists", str(tmp_path), "--data-root", str(viper_root),
                 "--out", str(tmp_path / "o")])
    assert code == 2 and "only used with --protocol authors" in capsys.readouterr().err


def test_corrupt_image_stops_with_its_name_or_is_skipped_with_the_flag(viper_root, tmp_path, capsys):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(viper_root / "viper", root / "viper")
    bad = root / "viper" / "VIPeR" / "cam_b" / sorted((root / "viper" / "VIPeR" / "cam_b").iterdir())[5].name
    bad.write_bytes(b"")
    args = ["--table", "1", "--datasets", "viper", "--methods", "hist", "--data-root", str(root),
            "--trials", "1", "--out", str(tmp_path / "o")]
    assert main(args) == 2
    assert f"image file is empty (0 bytes): {bad}" in capsys.readouterr().err
    assert main([*args, "--skip-bad-images"]) == 0
    prov = json.loads((tmp_path / "o" / "table1.provenance.json").read_text())
    assert prov["config"]["skip_bad_images"] is True
    assert prov["dataset_info"]["viper"]["excluded"] == {
        "unreadable images (skipped by --skip-bad-images)": 1}


def test_missing_imagenet_weights_are_a_clear_error_not_random_weights(viper_root, tmp_path,
                                                                       monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file",
                        lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    code = main(["--table", "1", "--datasets", "viper", "--methods", "cadnet", "--profile", "cpu-scratch",
                 "--pretrained", "imagenet", "--trials", "1", "--data-root", str(viper_root),
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "resnet18-" in err and str(tmp_path / "hub" / "checkpoints") in err
    assert not list((tmp_path / "o").rglob("model.pt"))


def test_protocols_write_apart_and_compare_side_by_side(viper_root, authors_lists, tmp_path):
    """The authors' lists never overwrite the paper-protocol table; --compare-protocols joins
    both (real VIPeR, `hist`: no training)."""
    base = ["--table", "1", "--methods", "hist", "--datasets", "viper", "--profile", "smoke",
            "--trials", "1", "--data-root", str(viper_root), "--out", str(tmp_path)]
    assert main(base) == 0
    paper = (tmp_path / "table1.csv").read_bytes()
    assert main([*base, "--protocol", "authors", "--authors-lists", str(authors_lists)]) == 0
    assert (tmp_path / "table1.csv").read_bytes() == paper
    authors = pd.read_csv(tmp_path / "table1-authors.csv")
    assert json.loads((tmp_path / "table1-authors.provenance.json").read_text())["protocol"] == "authors"
    assert main([*base, "--compare-protocols", "--authors-lists", str(authors_lists)]) == 0
    both = pd.read_csv(tmp_path / "table1-protocols.csv").set_index("testset")
    p = pd.read_csv(tmp_path / "table1.csv").set_index("testset")
    a = authors.set_index("testset")
    for t in both.index:
        assert both.loc[t, "rank1@paper"] == p.loc[t, "rank1"]
        assert both.loc[t, "rank1@authors"] == a.loc[t, "rank1"]
        assert both.loc[t, "rank1_delta"] == round(a.loc[t, "rank1"] - p.loc[t, "rank1"], 4)
    assert "paper / authors / delta" in (tmp_path / "table1-protocols.md").read_text()
    code = main(["--figure", "3", "--compare-protocols", "--authors-lists", str(authors_lists),
                 "--data-root", str(viper_root), "--out", str(tmp_path)])
    assert code == 2



def test_stored_only_tables_from_stored_results_and_lists_what_is_missing(viper_root, tmp_path,
                                                                          capsys):
    """--stored-only measures nothing: a method-trial without a stored result is left out
    and named (screen, Markdown, provenance); real VIPeR, `hist` (no training)."""
    base = ["--datasets", "viper", "--profile", "smoke", "--data-root", str(viper_root),
            "--out", str(tmp_path)]
    assert main(["--table", "1", "--methods", "hist", "--trials", "2", *base]) == 0
    two = pd.read_csv(tmp_path / "table1.csv")
    stored = sorted(p.relative_to(tmp_path) for p in (tmp_path / "runs").rglob("*.json"))
    assert len(stored) == 2
    manifests = sorted((tmp_path / "manifests").rglob("*"))
    capsys.readouterr()
    assert main(["--table", "1", "--methods", "hist,lomo-xqda", "--trials", "3", "--stored-only",
                 *base]) == 0
    shown = capsys.readouterr()
    assert "no stored result for dataset viper, method lomo-xqda, trial 0" in shown.out + shown.err
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "runs").rglob("*.json")) == stored
    assert sorted((tmp_path / "manifests").rglob("*")) == manifests  # trial 2's not written
    t = pd.read_csv(tmp_path / "table1.csv")
    assert list(t.method.unique()) == ["hist"] and (t.trials == 2).all()
    pd.testing.assert_frame_equal(t, two)
    md = (tmp_path / "table1.md").read_text()
    assert ("Left out (no stored result; `--stored-only`): viper lomo-xqda trials 0, 1, 2; "
            "viper hist trial 2.") in md
    prov = json.loads((tmp_path / "table1.provenance.json").read_text())
    assert [(m["method"], m["trial"]) for m in prov["missing"]] == [
        ("lomo-xqda", 0), ("lomo-xqda", 1), ("hist", 2), ("lomo-xqda", 2)]
    # nothing stored at all for what is asked, and the contradictory flags: clear errors
    assert main(["--figure", "sweep", "--methods", "hist", "--trials", "1", "--stored-only",
                 *base]) == 2
    assert "none is stored under" in capsys.readouterr().err
    assert main(["--table", "1", "--methods", "hist", "--stored-only", "--retrain", *base]) == 2
    assert "cannot be combined with --retrain" in capsys.readouterr().err
    assert main(["--figure", "3", "--methods", "cadnet", "--stored-only", *base]) == 2
    assert "--figure 3 draws from the models" in capsys.readouterr().err


def test_git_commit_is_dirty_for_code_changes_not_for_rewritten_results(tmp_path):
    """Regenerating a committed table must not mark the next output -dirty; editing code must."""
    import subprocess

    from benchmark.provenance import git_commit

    def git(*a):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *a], cwd=tmp_path,
                       check=True, capture_output=True)

    (tmp_path / "results").mkdir()
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "results" / "table1.csv").write_text("a\n1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "init")
    sha = git_commit(tmp_path)
    assert len(sha) == 40
    (tmp_path / "results" / "table1.csv").write_text("a\n2\n")
    assert git_commit(tmp_path) == sha
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_commit(tmp_path) == sha + "-dirty"
