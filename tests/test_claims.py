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
