"""Paired per-trial differences (``run_all.py --paired``): the statistic by hand, and end to
end from results stored by a real run (SynthMLR, smoke profile, hist vs hr-only)."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.paired import paired


def frame(values: dict[str, list[float]], queries="seen") -> pd.DataFrame:
    return pd.DataFrame([{"dataset": "d", "method": m, "trial": t, "queries": queries,
                          "metric": "rank1", "value": v}
                         for m, vs in values.items() for t, v in enumerate(vs)])


def test_paired_differences_by_hand():
    # differences a - ref = 1, 2, 3: mean 2, std 1, t = 2 / (1 / sqrt 3) = sqrt 12, df 2;
    # the two-sided p of Student's t with 2 df is 1 - t / sqrt(t^2 + 2) = 1 - sqrt(12 / 14)
    t = paired(frame({"ref": [10.0, 20.0, 30.0], "a": [11.0, 22.0, 33.0],
                      "b": [10.0, 19.0, 31.0]}), "ref").set_index("method")
    a = t.loc["a"]
    assert (a.trials, a.diff_mean, a.diff_std, a.diff_min, a.diff_max) == (3, 2.0, 1.0, 1.0, 3.0)
    assert (a.wins, a.losses, a.method_mean, a.reference_mean) == (3, 0, 22.0, 20.0)
    assert a.p_value == pytest.approx(1 - math.sqrt(12 / 14), abs=1e-4)
    b = t.loc["b"]  # differences 0, -1, +1: one win, one loss, one tie
    assert (b.diff_mean, b.wins, b.losses) == (0.0, 1, 1)
    # only the trials both have are paired; one trial: no spread, no test
    one = paired(frame({"ref": [10.0], "a": [12.0, 99.0]}), "ref").iloc[0]
    assert one.trials == 1 and one.diff_mean == 2.0
    assert math.isnan(one.diff_std) and math.isnan(one.p_value)


SMOKE = ["--datasets", "synthetic", "--synthetic-ids", "16", "--profile", "smoke"]


def test_paired_from_stored_results_end_to_end(tmp_path, capsys):
    base = [*SMOKE, "--data-root", str(tmp_path / "no-data"), "--out", str(tmp_path)]
    assert main(["--table", "1", "--methods", "hist,hr-only", "--trials", "2", *base]) == 0
    assert main(["--figure", "sweep", "--methods", "hist,hr-only", "--trials", "2", *base]) == 0
    stored = sorted((tmp_path / "runs").rglob("*.json"))
    capsys.readouterr()
    assert main(["--paired", "hist", "--methods", "hr-only", "--trials", "3", *base]) == 0
    assert sorted((tmp_path / "runs").rglob("*.json")) == stored  # nothing measured
    assert "Paired differences against `hist`" in capsys.readouterr().out
    t = pd.read_csv(tmp_path / "paired-hist.csv")
    # the per-trial values, read from the stored result files themselves
    runs = tmp_path / "runs" / "synthetic" / "paper" / "smoke"

    def rank1(method, trial, testset):
        rows = json.loads((runs / method / f"seed0-trial{trial}.json").read_text())["rows"]
        return next(r["rank1"] for r in rows if r["testset"] == testset)

    for testset in ("seen", "unseen"):
        d = [rank1("hr-only", k, testset) - rank1("hist", k, testset) for k in (0, 1)]
        row = t[(t.queries == testset) & (t.metric == "rank1")].iloc[0]
        assert row.trials == 2 and row.diff_mean == pytest.approx(sum(d) / 2, abs=1e-4)
        assert row.diff_min == pytest.approx(min(d), abs=1e-4)
        tstat = (sum(d) / 2) / (abs(d[0] - d[1]) / math.sqrt(2) / math.sqrt(2))
        # Student's t with 1 df: two-sided p = 1 - 2 atan(|t|) / pi
        assert row.p_value == pytest.approx(1 - 2 * math.atan(abs(tstat)) / math.pi, abs=1e-3)
    assert {f"r={r}" for r in (1, 2, 4, 8)} <= set(t.queries)  # the sweep's single rates
    prov = json.loads((tmp_path / "paired-hist.provenance.json").read_text())
    assert [(m["method"], m["trial"]) for m in prov["missing"] if "kind" not in m] == [
        ("hist", 2), ("hr-only", 2)]
    assert "Not stored (left out): hist trial 2; hr-only trial 2;" in (
        tmp_path / "paired-hist.md").read_text()
    assert main(["--paired", "hist", "--methods", "hist", "--trials", "1", *base]) == 2
    assert "no method besides" in capsys.readouterr().err
    assert main(["--paired", "hist", "--methods", "hr-only", "--retrain", *base]) == 2
    assert "cannot be combined with --retrain" in capsys.readouterr().err
