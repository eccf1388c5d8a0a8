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

A dataset with one fixed split (Market-1501, DukeMTMC-reID: one trial) has no trial spread.
Where both methods' per-query results are stored (``--table N --per-query``), its rows are
paired over the queries instead (column ``over``), as ``--claims`` does: the per-query
differences of the rank-1 hit, AP and, where both recover images, SSIM / PSNR / LPIPS,
paired by query image, for ``seen``, ``unseen`` and each seen rate alone (``seen r=2``
...), with the same test over queries. That test speaks to this split's test identities
only. Every row gives the 95 % t interval of the mean difference (``ci_low``, ``ci_high``).

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

import numpy as np
import pandas as pd
from scipy import stats

from .provenance import atomic_write_json, atomic_write_text, base_provenance

COLUMNS = ["dataset", "method", "reference", "queries", "metric", "trials", "over", "pairs",
           "method_mean", "reference_mean", "diff_mean", "diff_std", "diff_min", "diff_max",
           "ci_low", "ci_high", "wins", "losses", "p_value"]
PER_QUERY = {"rank1": "rank1", "mAP": "ap", "ssim": "ssim", "psnr": "psnr", "lpips": "lpips"}


def t_interval(d) -> tuple[float, float]:
    """95 % Student-t interval of the mean of the paired differences ``d`` (NaN for fewer
    than 2; the mean itself when they do not vary)."""
    d = np.asarray(d, dtype=float)
    n = len(d)
    if n < 2:
        return math.nan, math.nan
    half = stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n)
    return d.mean() - half, d.mean() + half


def _summary(a: pd.Series, b: pd.Series) -> dict:
    """Paired differences ``a - b``: mean, spread, range, wins, 95 % t interval, t-test."""
    d = (a - b).to_numpy()
    n = len(d)
    p = float(stats.ttest_rel(a, b).pvalue) if n > 1 and d.std() > 0 else math.nan
    lo, hi = t_interval(d)
    return {"pairs": n, "method_mean": a.mean(), "reference_mean": b.mean(),
            "diff_mean": d.mean(), "diff_std": d.std(ddof=1) if n > 1 else math.nan,
            "diff_min": d.min(), "diff_max": d.max(), "ci_low": lo, "ci_high": hi,
            "wins": int((d > 0).sum()), "losses": int((d < 0).sum()), "p_value": p}


def paired(per_trial: pd.DataFrame, reference: str, per_query: pd.DataFrame | None = None
           ) -> pd.DataFrame:
    """Per-trial differences (method - reference) summarised per (dataset, method, queries,
    metric), over the trials both have. ``per_trial``: dataset, method, trial, queries,
    metric, value. Where a (dataset, method) has one trial and ``per_query`` (the same, with
    each query's ``path`` and ``rate``) holds both methods, its rows are paired over the
    queries instead, and each seen rate gets its own rows."""
    key = ["dataset", "queries", "metric", "trial"]
    ref = per_trial[per_trial["method"] == reference][[*key, "value"]]
    out = []
    for method, part in per_trial[per_trial["method"] != reference].groupby("method", sort=False):
        both = part.merge(ref, on=key, suffixes=("", "_ref"))
        for dataset, in_dataset in both.groupby("dataset", sort=False):
            over_queries = (_over_queries(per_query, dataset, method, reference)
                            if in_dataset["trial"].nunique() == 1 and per_query is not None
                            else [])
            done = {(r["queries"], r["metric"]) for r in over_queries}
            out += over_queries
            for (queries, metric), g in in_dataset.groupby(["queries", "metric"], sort=False):
                if (queries, metric) not in done:
                    out.append({"dataset": dataset, "method": method, "reference": reference,
                                "queries": queries, "metric": metric, "trials": len(g),
                                "over": "trials", **_summary(g["value"], g["value_ref"])})
    return pd.DataFrame(out, columns=COLUMNS).round(4)


def _over_queries(per_query: pd.DataFrame, dataset: str, method: str, reference: str
                  ) -> list[dict]:
    """Rows of ``method - reference`` paired over the query images of one trial: per query
    set, and per seen rate where the set mixes several."""
    sel = per_query[per_query["dataset"] == dataset]
    a = sel[sel["method"] == method]
    b = sel[sel["method"] == reference][["queries", "path", "metric", "value"]]
    both = a.merge(b, on=["queries", "path", "metric"], suffixes=("", "_ref")).dropna(
        subset=["value", "value_ref"])
    out = []
    for queries, in_set in both.groupby("queries", sort=False):
        parts = [(queries, in_set)]
        if in_set["rate"].nunique() > 1:
            parts += [(f"{queries} r={r:g}", g) for r, g in in_set.groupby("rate")]
        for name, part in parts:
            for metric, g in part.groupby("metric", sort=False):
                if len(g) > 1:
                    out.append({"dataset": dataset, "method": method, "reference": reference,
                                "queries": name, "metric": metric, "trials": 1,
                                "over": "queries", **_summary(g["value"], g["value_ref"])})
    return out


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


def stored_per_query(cfg) -> tuple[pd.DataFrame | None, list[str]]:
    """Long frame (dataset, method, trial, queries, path, rate, metric, value) of the stored
    per-query results (``--per-query``) of ``cfg``'s one-trial datasets, and the
    "dataset method" pairs that have them; a missing one is no error (those rows stay on
    the per-trial results)."""
    from dataclasses import replace

    from .evaluation import QueryMeasure
    from .experiment import collect
    from .store import ResultStore

    store = ResultStore(cfg)
    stored = [(d, m) for d in cfg.datasets if cfg.num_trials(d) == 1 for m in cfg.methods
              if store.result_path(d, m, 0, QueryMeasure.kind).exists()]
    if not stored:
        return None, []
    # only what is there: the methods without per-query results stay on the per-trial test
    (found,) = collect(replace(cfg, datasets=list(dict.fromkeys(d for d, _ in stored)),
                               methods=list(dict.fromkeys(m for _, m in stored))),
                       QueryMeasure())
    frame = pd.DataFrame(found.rows).rename(columns={"testset": "queries"})
    long = frame.melt(id_vars=["dataset", "method", "trial", "queries", "path", "rate"],
                      value_vars=[v for v in PER_QUERY.values() if v in frame.columns],
                      var_name="metric").dropna(subset=["value"])
    long["metric"] = long["metric"].map({v: k for k, v in PER_QUERY.items()})
    return long, sorted({f"{r['dataset']} {r['method']}" for r in found.rows})


def _fmt(metric: str) -> str:
    return {"ssim": "{:.3f}", "lpips": "{:.3f}", "psnr": "{:.2f}"}.get(metric, "{:.1f}")


def to_markdown(table: pd.DataFrame, reference: str, missing: list[dict]) -> str:
    lines = [f"# Paired differences against `{reference}` (method - reference)", "",
             "Each trial is one split; both methods are scored on it. mean ± std of the "
             "per-trial differences, their range, the 95 % t interval of their mean, trials "
             "won / lost, two-sided paired t-test. With one trial (a fixed split) and both "
             "methods' per-query results stored, the same over the query images (`over`: "
             "queries; also per seen rate): the interval then speaks to this split's test "
             "identities only.", ""]
    if missing:
        lines += ["Not stored (left out): " + "; ".join(
            f"{m['method']} trial {m['trial']}" + (" (sweep)" if m.get("kind") else "")
            for m in missing) + ".", ""]
    lines += ["| dataset | method | queries | metric | over | method | reference | "
              "difference | range | 95 % interval | won / lost | p |", "|---" * 12 + "|"]
    for r in table.itertuples(index=False):
        f = _fmt(r.metric)
        sf = f.replace("{:", "{:+")
        spread = "" if math.isnan(r.diff_std) else " ± " + f.format(r.diff_std)
        ci = "" if math.isnan(r.ci_low) else f"{sf.format(r.ci_low)} .. {sf.format(r.ci_high)}"
        p = "n/a" if math.isnan(r.p_value) else f"{r.p_value:.3f}"
        lines.append(f"| {r.dataset} | {r.method} | {r.queries} | {r.metric} | {r.pairs} "
                     f"{r.over} | {f.format(r.method_mean)} | {f.format(r.reference_mean)} | "
                     f"{sf.format(r.diff_mean)}{spread} | {sf.format(r.diff_min)} .. "
                     f"{sf.format(r.diff_max)} | {ci} | {r.wins} / {r.losses} | {p} |")
    return "\n".join(lines) + "\n"


def paired_report(cfg, reference: str) -> list[Path]:
    """``cfg.methods`` against ``reference`` from stored results: CSV, Markdown, provenance."""
    from .store import output_path

    t0 = time.perf_counter()
    per_trial, missing = stored_per_trial(cfg)
    per_query, with_queries = stored_per_query(cfg)
    table = paired(per_trial, reference, per_query)
    paths = [output_path(cfg, f"paired-{reference}.{ext}") for ext in ("csv", "md",
                                                                       "provenance.json")]
    atomic_write_text(paths[0], table.to_csv(index=False, lineterminator="\n"))
    atomic_write_text(paths[1], to_markdown(table, reference, missing))
    atomic_write_json(paths[2], {
        **base_provenance(cfg.device), "reference": reference, "methods": cfg.methods,
        "datasets": cfg.datasets, "protocol": cfg.protocol, "profile": cfg.profile,
        "seed": cfg.seed, "trials": {d: cfg.num_trials(d) for d in cfg.datasets},
        "missing": missing, "per_query_results": with_queries,
        "test": "scipy.stats.ttest_rel (two-sided) and the 95% t interval of the mean "
                "difference, over trials; with one trial, over queries where per-query "
                "results are stored",
        "wall_time_s": round(time.perf_counter() - t0, 2), "config": asdict(cfg)})
    return paths
