"""Paired comparison of methods across trials: is a difference larger than the split spread?

``python run_all.py --paired lr-aug --methods cadnet,hr-only --datasets viper --profile cpu
--trials 3 --data-root DATA --out DIR``

Every trial draws its own split (identities, cameras, query rates), and the split alone moves
a method by several rank-1 points; two methods evaluated on the same trial share that draw.
So the question "does A beat B beyond the trial spread?" is asked of the per-trial
differences A - B: their mean, standard deviation, range, how many trials A wins, and a
two-sided paired t-test (``scipy.stats.ttest_rel``; NaN with fewer than 2 trials or no
spread). Query sets: Table 1's ``seen`` (r in {2,3,4} mixed) and ``unseen`` (r = 8), rank-1
and mAP, and, where the rate sweep has been stored (``--figure sweep``), rank-1 at each
single rate ``r=1`` ... ``r=8``.

Nothing is trained or measured: only results stored under ``--out`` by ``run_all.py`` are
read (as ``--stored-only``, with the same settings flags); a (method, trial) without one is
left out and named. Writes ``paired-<reference>.csv`` / ``.md`` / ``.provenance.json`` in
``--out`` (``-authors`` suffix under that protocol).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from scipy import stats

from .provenance import atomic_write_json, atomic_write_text, base_provenance

COLUMNS = ["dataset", "method", "reference", "queries", "metric", "trials", "method_mean",
           "reference_mean", "diff_mean", "diff_std", "diff_min", "diff_max", "wins", "losses",
           "p_value"]


def paired(per_trial: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Per-trial differences (method - reference) summarised per (dataset, method, queries,
    metric), over the trials both have. ``per_trial``: dataset, method, trial, queries,
    metric, value."""
    key = ["dataset", "queries", "metric", "trial"]
    ref = per_trial[per_trial["method"] == reference][[*key, "value"]]
    out = []
    for method, part in per_trial[per_trial["method"] != reference].groupby("method", sort=False):
        both = part.merge(ref, on=key, suffixes=("", "_ref"))
        for (dataset, queries, metric), g in both.groupby(key[:3], sort=False):
            d = (g["value"] - g["value_ref"]).to_numpy()
            n = len(d)
            p = (float(stats.ttest_rel(g["value"], g["value_ref"]).pvalue)
                 if n > 1 and d.std() > 0 else math.nan)
            out.append({"dataset": dataset, "method": method, "reference": reference,
                        "queries": queries, "metric": metric, "trials": n,
                        "method_mean": g["value"].mean(), "reference_mean": g["value_ref"].mean(),
                        "diff_mean": d.mean(), "diff_std": d.std(ddof=1) if n > 1 else math.nan,
                        "diff_min": d.min(), "diff_max": d.max(), "wins": int((d > 0).sum()),
                        "losses": int((d < 0).sum()), "p_value": p})
    return pd.DataFrame(out, columns=COLUMNS).round(4)


def stored_per_trial(cfg, metrics=("rank1", "mAP"), sweep: bool = True
                     ) -> tuple[pd.DataFrame, list[dict]]:
    """Long frame (dataset, method, trial, queries, metric, value) of every stored Table 1-3
    result of ``cfg`` (``metrics`` that the rows have, NaN dropped) and, with ``sweep``,
    rate-sweep row; plus the (method, trial) results missing."""
    from .evaluation import ResultMeasure
    from .experiment import collect
    from .figures import SweepMeasure

    measures = (ResultMeasure(), SweepMeasure()) if sweep else (ResultMeasure(),)
    results, *swept = collect(cfg, *measures)
    frame = results.frame(cfg)
    long = frame.melt(id_vars=["dataset", "method", "trial", "testset"],
                      value_vars=[m for m in metrics if m in frame.columns],
                      var_name="metric").dropna(subset=["value"])
    long = long.rename(columns={"testset": "queries"})
    if not swept:
        return long, results.missing
    rates = pd.DataFrame([{"dataset": r["dataset"], "method": r["method"], "trial": r["trial"],
                           "queries": f"r={r['rate']}", "metric": "rank1", "value": r["rank1"]}
                          for r in swept[0].rows])
    return (pd.concat([long, rates], ignore_index=True),
            results.missing + [{**m, "kind": "sweep"} for m in swept[0].missing])


def to_markdown(table: pd.DataFrame, reference: str, missing: list[dict]) -> str:
    lines = [f"# Paired differences against `{reference}` (method - reference, per trial)", "",
             "Each trial is one split; both methods are scored on it. mean ± std of the "
             "per-trial differences, their range, trials won / lost, two-sided paired t-test.",
             ""]
    if missing:
        lines += ["Not stored (left out): " + "; ".join(
            f"{m['method']} trial {m['trial']}" + (" (sweep)" if m.get("kind") else "")
            for m in missing) + ".", ""]
    lines += ["| dataset | method | queries | metric | trials | method | reference | "
              "difference | range | won / lost | p |", "|---" * 11 + "|"]
    for r in table.itertuples(index=False):
        spread = "" if math.isnan(r.diff_std) else f" ± {r.diff_std:.1f}"
        p = "n/a" if math.isnan(r.p_value) else f"{r.p_value:.3f}"
        lines.append(f"| {r.dataset} | {r.method} | {r.queries} | {r.metric} | {r.trials} | "
                     f"{r.method_mean:.1f} | {r.reference_mean:.1f} | {r.diff_mean:+.1f}{spread} "
                     f"| {r.diff_min:+.1f} .. {r.diff_max:+.1f} | {r.wins} / {r.losses} | {p} |")
    return "\n".join(lines) + "\n"


def paired_report(cfg, reference: str) -> list[Path]:
    """``cfg.methods`` against ``reference`` from stored results: CSV, Markdown, provenance."""
    from .store import output_path

    t0 = time.perf_counter()
    per_trial, missing = stored_per_trial(cfg)
    table = paired(per_trial, reference)
    paths = [output_path(cfg, f"paired-{reference}.{ext}") for ext in ("csv", "md",
                                                                       "provenance.json")]
    atomic_write_text(paths[0], table.to_csv(index=False, lineterminator="\n"))
    atomic_write_text(paths[1], to_markdown(table, reference, missing))
    atomic_write_json(paths[2], {
        **base_provenance(cfg.device), "reference": reference, "methods": cfg.methods,
        "datasets": cfg.datasets, "protocol": cfg.protocol, "profile": cfg.profile,
        "seed": cfg.seed, "trials": {d: cfg.num_trials(d) for d in cfg.datasets},
        "missing": missing, "test": "scipy.stats.ttest_rel (two-sided)",
        "wall_time_s": round(time.perf_counter() - t0, 2), "config": asdict(cfg)})
    return paths
