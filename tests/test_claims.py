"""The claims report (``run_all.py --claims``): the verdict rule by hand, the direction of
lower-is-better metrics and margins, and end to end from results stored by a real run
(SynthMLR, smoke profile)."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from benchmark.claims import CLAIMS, Claim, check, claim_methods, verdict
from benchmark.cli import main
from benchmark.methods import list_methods


def test_verdict_by_hand():
    # [5, 6, 7]: mean 6, sd 1, t(0.975, 2) = 4.3027 -> half-width 4.3027 / sqrt 3 = 2.4842
    v, lo, hi = verdict([5.0, 6.0, 7.0])
    assert v == "holds" and lo == pytest.approx(6 - 2.4842, abs=1e-4)
    assert hi == pytest.approx(6 + 2.4842, abs=1e-4)
    assert verdict([1.0, 2.0, 3.0])[0] == "undecided"  # interval -0.48 .. 4.48
    assert verdict([-5.0, -6.0, -7.0])[0] == "does not hold"
    assert verdict([2.0, 2.0])[0] == "holds"  # no spread: the sign decides
    assert verdict([0.0, 0.0])[0] == "does not hold"  # equal is not above
    assert verdict([9.0])[0] == "undecided"  # one trial: no spread to judge by
    assert verdict([])[0] == "not run"


def long(rows):
    return pd.DataFrame([{"dataset": "d", "method": m, "trial": t, "queries": q,
                          "metric": k, "value": v} for m, t, q, k, v in rows])


def test_check_directions_margins_and_missing():
    claims = (Claim("a", "s", "x", "y", "rank1", "seen", margin=4.0),
              Claim("b", "s", "x", "y", "lpips", "seen"),
              Claim("c", "s", "x", "z", "rank1", "seen"))
    per_trial = long([("x", t, "seen", "rank1", 50.0 + t) for t in range(3)]
                     + [("y", t, "seen", "rank1", 40.0 + 2 * t) for t in range(3)]
                     + [("x", t, "seen", "lpips", 0.10) for t in range(3)]
                     + [("y", t, "seen", "lpips", 0.20 + 0.01 * t) for t in range(3)]
                     + [("y", 3, "seen", "rank1", 0.0)])  # trial 3 only for y: not paired
    t = check(per_trial, claims).set_index("claim")
    # x - y = 10, 9, 8; minus the margin 4: 6, 5, 4 -> mean 5, sd 1
    a = t.loc["a"]
    assert (a.trials, a.diff_mean, a.diff_std, a.wins, a.verdict) == (3, 5.0, 1.0, 3, "holds")
    assert (a.better_mean, a.worse_mean) == (51.0, 42.0)
    b = t.loc["b"]  # lower LPIPS is better: y - x = 0.10, 0.11, 0.12 > 0
    assert b.diff_mean == pytest.approx(0.11) and b.verdict == "holds"
    c = t.loc["c"]
    assert (c.trials, c.verdict) == (0, "not run") and math.isnan(c.diff_mean)


def test_one_trial_is_tested_over_the_queries():
    claims = (Claim("a", "s", "x", "y", "rank1", "seen", margin=10.0),
              Claim("b", "s", "x", "y", "ssim", "seen"),
              Claim("c", "s", "x", "z", "rank1", "seen"))
    per_trial = long([("x", 0, "seen", "rank1", 60.0), ("y", 0, "seen", "rank1", 40.0),
                      ("x", 0, "seen", "ssim", 0.5), ("y", 0, "seen", "ssim", 0.5),
                      ("z", 0, "seen", "rank1", 10.0)])
    # 5 queries: x hits q0..q2, y hits q0 and q3 (rank-1 60 vs 40); SSIM equal on average
    hits = {"x": [100, 100, 100, 0, 0], "y": [100, 0, 0, 100, 0]}
    ssim = {"x": [0.6, 0.4, 0.5, 0.5, 0.5], "y": [0.5, 0.5, 0.5, 0.5, 0.5]}
    per_query = pd.DataFrame(
        [{"dataset": "d", "method": m, "trial": 0, "queries": "seen", "path": f"q{i}",
          "metric": "rank1", "value": float(v)} for m, vs in hits.items() for i, v in enumerate(vs)]
        + [{"dataset": "d", "method": m, "trial": 0, "queries": "seen", "path": f"q{i}",
            "metric": "ssim", "value": v} for m, vs in ssim.items() for i, v in enumerate(vs)])
    t = check(per_trial, claims, per_query=per_query).set_index("claim")
    a = t.loc["a"]  # x - y - 10 per query: -10, 90, 90, -110, -10 -> mean 10, sd ~83.7
    assert (a.trials, a.over, a.pairs, a.wins) == (1, "queries", 5, 2)
    assert a.diff_mean == pytest.approx(10.0) and a.diff_std == pytest.approx(83.666, abs=1e-3)
    assert a.verdict == verdict([-10, 90, 90, -110, -10])[0] == "undecided"
    assert (a.better_mean, a.worse_mean) == (60.0, 40.0)  # the stored trial result
    b = t.loc["b"]
    assert b.over == "queries" and b.diff_mean == pytest.approx(0.0, abs=1e-12)
    c = t.loc["c"]  # z has no per-query results: one trial, undecided
    assert (c.over, c.pairs, c.verdict) == ("trials", 1, "undecided")
    # a strong per-query difference decides even on one trial
    strong = per_query.assign(value=per_query.value.where(
        ~((per_query.method == "y") & (per_query.metric == "rank1")), 0.0))
    strong = strong[~((strong.method == "x") & (strong.metric == "rank1"))]
    strong = pd.concat([strong, pd.DataFrame(
        [{"dataset": "d", "method": "x", "trial": 0, "queries": "seen", "path": f"q{i}",
          "metric": "rank1", "value": 100.0} for i in range(5)])])
    assert check(per_trial, claims[:1], per_query=strong).verdict.iloc[0] == "holds"
    # without per-query results the one-trial verdict stays undecided
    assert check(per_trial, claims[:1]).loc[0, ["over", "verdict"]].tolist() == [
        "trials", "undecided"]


def test_claims_name_registered_methods_and_known_metrics():
    assert set(claim_methods()) <= set(list_methods())
    assert {c.metric for c in CLAIMS} <= {"rank1", "mAP", "ssim", "psnr", "lpips"}
    assert {c.queries for c in CLAIMS} == {"seen", "unseen"}
    assert len({c.id for c in CLAIMS}) == len(CLAIMS)


SMOKE = ["--datasets", "synthetic", "--synthetic-ids", "16", "--profile", "smoke"]


def test_claims_from_stored_results_end_to_end(tmp_path, capsys):
    base = [*SMOKE, "--data-root", str(tmp_path / "no-data"), "--out", str(tmp_path)]
    assert main(["--table", "1", "--methods", "cadnet,lr-aug,bicubic", "--trials", "2",
                 *base]) == 0
    stored = sorted((tmp_path / "runs").rglob("*.json"))
    capsys.readouterr()
    assert main(["--claims", "--trials", "3", *base]) == 0
    assert sorted((tmp_path / "runs").rglob("*.json")) == stored  # nothing measured
    assert "The paper's claims against the stored per-trial results" in capsys.readouterr().out
    t = pd.read_csv(tmp_path / "claims.csv").set_index("claim")
    assert len(t) == len(CLAIMS) and set(t.dataset) == {"synthetic"}
    runs = tmp_path / "runs" / "synthetic" / "paper" / "smoke"

    def value(method, trial, testset, metric):
        rows = json.loads((runs / method / f"seed0-trial{trial}.json").read_text())["rows"]
        return next(r[metric] for r in rows if r["testset"] == testset)

    # the per-trial differences come from the stored result files themselves
    for claim, worse, testset, metric in [("control-lr-aug", "lr-aug", "seen", "rank1"),
                                          ("control-lr-aug-unseen", "lr-aug", "unseen", "rank1"),
                                          ("T2-seen-ssim-input", "bicubic", "seen", "ssim"),
                                          ("T2-unseen-ssim-input", "bicubic", "unseen", "ssim")]:
        d = [value("cadnet", k, testset, metric) - value(worse, k, testset, metric)
             for k in (0, 1)]
        row = t.loc[claim]
        assert row.trials == 2 and row.diff_mean == pytest.approx(sum(d) / 2, abs=1e-4)
        assert row.verdict == verdict(d)[0]
    assert t.loc["T1-sing", "verdict"] == "not run" and t.loc["T1-sing", "trials"] == 0
    prov = json.loads((tmp_path / "claims.provenance.json").read_text())
    assert ("cadnet", 2) in {(m["method"], m["trial"]) for m in prov["missing"]}
    assert prov["profile"] == "smoke" and len(prov["claims"]) == len(CLAIMS)
    assert "synthetic cadnet trial 2" in (tmp_path / "claims.md").read_text()
    assert main(["--claims", "--retrain", *base]) == 2
    assert "cannot be combined with --retrain" in capsys.readouterr().err

    # one trial: with --per-query (the trained models are reused) the claims are tested
    # over the queries, and their mean difference is the per-trial one
    one = [*base, "--trials", "1"]
    assert main(["--claims", *one]) == 0
    assert "synthetic has one trial and its claims have no per-query results" in \
        capsys.readouterr().err
    assert main(["--table", "1", "--methods", "cadnet,lr-aug", "--per-query", *one]) == 0
    assert (runs / "cadnet" / "seed0-trial0.queries.json").exists()
    assert main(["--claims", *one]) == 0
    t1 = pd.read_csv(tmp_path / "claims.csv").set_index("claim")
    row = t1.loc["control-lr-aug"]
    rows = json.loads((runs / "cadnet" / "seed0-trial0.queries.json").read_text())["rows"]
    n_seen = sum(r["testset"] == "seen" and r["rank1"] == r["rank1"] for r in rows)  # valid
    assert (row.trials, row.over, row.pairs) == (1, "queries", n_seen)
    assert row.diff_mean == pytest.approx(value("cadnet", 0, "seen", "rank1")
                                          - value("lr-aug", 0, "seen", "rank1"), abs=1e-3)
    assert t1.loc["T1-sing", "verdict"] == "not run"
    assert "cadnet" in " ".join(json.loads(
        (tmp_path / "claims.provenance.json").read_text())["per_query_results"])
    for bad in (["--claims", "--per-query"], ["--table", "1", "--per-query", "--stored-only"]):
        assert main([*bad, *one]) == 2
        assert "--per-query measures per-query results in a --table run" in capsys.readouterr().err
