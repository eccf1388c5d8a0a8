"""Paired per-trial differences (``run_all.py --paired``): the statistic by hand, over trials
and (one trial) over queries and seen rates, and end to end from results stored by a real
run (SynthMLR, smoke profile, hist vs hr-only)."""

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


def test_one_trial_is_paired_over_queries_and_rates():
    # one trial; 4 seen queries at r = 2, 2, 4, 4; rank-1 hits a - ref: +100, 0, +100, -100
    per_trial = frame({"ref": [40.0], "a": [65.0]})
    hits = {"a": [100, 0, 100, 0], "ref": [0, 0, 0, 100]}
    per_query = pd.DataFrame(
        [{"dataset": "d", "method": m, "trial": 0, "queries": "seen", "path": f"q{i}",
          "rate": [2.0, 2.0, 4.0, 4.0][i], "metric": "rank1", "value": float(v)}
         for m, vs in hits.items() for i, v in enumerate(vs)]
        + [{"dataset": "d", "method": m, "trial": 0, "queries": "seen", "path": f"q{i}",
            "rate": [2.0, 2.0, 4.0, 4.0][i], "metric": "psnr", "value": v + (i if m == "a" else 0)}
           for m in hits for i, v in enumerate([20.0, 21.0, 22.0, 23.0])])
    t = paired(per_trial, "ref", per_query).set_index(["queries", "metric"])
    r = t.loc[("seen", "rank1")]
    sd = math.sqrt((75 ** 2 * 2 + 25 ** 2 + 125 ** 2) / 3)
    assert (r.trials, r.over, r.pairs, r.wins, r.losses) == (1, "queries", 4, 2, 1)
    assert (r.diff_mean, r.method_mean, r.reference_mean) == (25.0, 50.0, 25.0)
    assert r.diff_std == pytest.approx(sd, abs=1e-3)
    half = 3.182446 * sd / 2  # t(0.975, 3 df) * sd / sqrt(4); deviations 75, 25, 75, 125
    assert (r.ci_low, r.ci_high) == (pytest.approx(25 - half, abs=1e-3),
                                     pytest.approx(25 + half, abs=1e-3))
    # each seen rate alone: r = 2 differences +100, 0; r = 4: +100, -100
    assert t.loc[("seen r=2", "rank1"), "diff_mean"] == 50.0
    assert t.loc[("seen r=4", "rank1"), ["diff_mean", "pairs"]].tolist() == [0.0, 2]
    # an image score is paired too: differences 0, 1, 2, 3 dB
    assert t.loc[("seen", "psnr"), "diff_mean"] == 1.5
    assert t.loc[("seen r=4", "psnr"), ["diff_min", "diff_max"]].tolist() == [2.0, 3.0]
    # the per-trial row (one trial: no spread) is replaced, not repeated
    assert len(t.loc[[("seen", "rank1")]]) == 1
    # without per-query results of the reference, the per-trial row stays
    alone = paired(per_trial, "ref", per_query[per_query.method == "a"]).iloc[0]
    assert (alone.over, alone.trials, alone.diff_mean) == ("trials", 1, 25.0)


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
    # one trial with per-query results (models reused): paired over the queries, whose
    # mean difference is the per-trial one, and per seen rate
    one = [*base, "--trials", "1"]
    assert main(["--table", "1", "--methods", "hist,hr-only", "--per-query", *one]) == 0
    assert main(["--paired", "hist", "--methods", "hr-only", *one]) == 0
    t1 = pd.read_csv(tmp_path / "paired-hist.csv")
    rows = json.loads((runs / "hr-only" / "seed0-trial0.queries.json").read_text())["rows"]
    for testset in ("seen", "unseen"):
        row = t1[(t1.queries == testset) & (t1.metric == "rank1")].iloc[0]
        n_valid = sum(r["testset"] == testset and r["rank1"] == r["rank1"] for r in rows)
        assert (row.over, row.pairs) == ("queries", n_valid)
        assert row.diff_mean == pytest.approx(rank1("hr-only", 0, testset)
                                              - rank1("hist", 0, testset), abs=1e-3)
        assert row.ci_low < row.diff_mean < row.ci_high
    seen_rates = {r["rate"] for r in rows if r["testset"] == "seen"}
    assert len(seen_rates) > 1 and {f"seen r={r:g}" for r in seen_rates} <= set(t1.queries)
    assert set(t1[t1.queries.str.startswith("r=")].over) == {"trials"}  # the sweep's
    assert "hr-only" in " ".join(json.loads(
        (tmp_path / "paired-hist.provenance.json").read_text())["per_query_results"])
    assert main(["--paired", "hist", "--methods", "hist", "--trials", "1", *base]) == 2
    assert "no method besides" in capsys.readouterr().err
    assert main(["--paired", "hist", "--methods", "hr-only", "--retrain", *base]) == 2
    assert "cannot be combined with --retrain" in capsys.readouterr().err
