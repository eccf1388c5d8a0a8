"""The paper's claims as data, checked against stored per-trial results.

``python run_all.py --claims --datasets viper --profile cpu --trials 3 --data-root DATA --out DIR``

Each claim is an ordering of two methods (or settings) on one metric and query set, taken
from a table or section of the paper: "``better`` is above ``worse`` by more than
``margin``" (for LPIPS, lower is better, and the difference is taken the other way round).
It is checked on every dataset of the run from the stored per-trial results (nothing is
trained or measured; missing results are named, as ``--stored-only``), on the per-trial
differences ``better - worse - margin`` of the trials both methods have (two methods
scored on one trial share its split):

* **holds**: the 95 % t confidence interval of the mean difference lies above 0 (with no
  spread at all: every difference > 0);
* **does not hold**: the interval lies below 0 (no spread: every difference <= 0);
* **undecided**: the interval contains 0 (the trial spread is too wide for the trials
  run), or there is one trial only and no per-query results (no spread to judge by);
* **not run**: a method has no stored result on that dataset.

A dataset with one fixed split (Market-1501, DukeMTMC-reID: one trial) has no trial spread.
Where both methods' per-query results are stored (``--table N --per-query``), its claims
are tested over the queries instead (column ``over``): the per-query differences of the
rank-1 hit (the fraction of the single-shot draws), AP, or the recovered image's SSIM /
PSNR / LPIPS, paired by query image, with the same 95 % t interval. That interval speaks
to this split's test identities only: another split's would differ by more.

The paper reports Tables 2 and 3 on MLR-CUHK03 and Table 1 on five datasets; each claim is
checked on whatever datasets the run names, so a claim checked elsewhere than its source
says so in the ``dataset`` column. Rows where a project stand-in replaces a paper method
(``hr-only`` for the standard re-ID methods) say so in ``note``. Written as
``claims.csv`` / ``claims.md`` / ``claims.provenance.json`` in ``--out``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
from rich.console import Console

from .paired import t_interval
from .provenance import atomic_write_json, atomic_write_text, base_provenance


@dataclass(frozen=True)
class Claim:
    """``better`` above ``worse`` on ``metric`` for ``queries`` by more than ``margin``."""

    id: str
    source: str
    better: str
    worse: str
    metric: str  # rank1 | mAP | ssim | psnr | lpips (lower is better)
    queries: str  # seen (r in {2,3,4}) | unseen (r = 8)
    margin: float = 0.0
    note: str = ""


_T1 = "Table 1 (all five datasets)"
_T2S = "Table 2, seen r (MLR-CUHK03)"
_T2U = "Table 2, unseen r = 8 (MLR-CUHK03)"
_T3 = "Table 3 (MLR-CUHK03)"
_S45 = "section 4.5: recovery adds detail to the LR input"
_INPUT = "bicubic: the up-sampled query itself (no learning)"
_OWN_INPUT = "bilinear: the up-sampled query G itself receives (section 3)"
_CONTROL = "not in the paper: the LR-augmentation control"
_CONTROL_NOTE = "does CAD-Net add anything beyond training on LR images?"
_STAND_IN = "hr-only stands in for the standard re-ID methods (CamStyle, FD-GAN)"

CLAIMS: tuple[Claim, ...] = (
    Claim("T1-sing", _T1, "cadnet", "sing", "rank1", "seen"),
    Claim("T1-csrgan", _T1, "cadnet", "csrgan", "rank1", "seen"),
    Claim("T1-standard", _T1, "cadnet", "hr-only", "rank1", "seen", note=_STAND_IN),
    Claim("T1-gap-csrgan", "section 4.4: 4-8 points over the best competitors at rank 1",
          "cadnet", "csrgan", "rank1", "seen", margin=4.0),
    Claim("T1-f-only", _T1, "cadnet", "cadnet-f", "rank1", "seen"),
    Claim("T1-g-only", _T1, "cadnet", "cadnet-g", "rank1", "seen"),
    Claim("T2-seen-ssim-sing", _T2S, "cadnet", "sing", "ssim", "seen"),
    Claim("T2-seen-psnr-sing", _T2S, "cadnet", "sing", "psnr", "seen"),
    Claim("T2-seen-ssim-cyclegan", _T2S, "cadnet", "cyclegan", "ssim", "seen"),
    Claim("T2-seen-ssim-csrgan-above", _T2S, "csrgan", "cadnet", "ssim", "seen",
          note="the paper: CAD-Net slightly below CSR-GAN in SSIM / PSNR at seen r"),
    Claim("T2-seen-lpips-csrgan", _T2S, "cadnet", "csrgan", "lpips", "seen"),
    Claim("T2-seen-rank1-csrgan", _T2S, "cadnet", "csrgan", "rank1", "seen"),
    Claim("T2-unseen-ssim-csrgan", _T2U, "cadnet", "csrgan", "ssim", "unseen"),
    Claim("T2-unseen-psnr-csrgan", _T2U, "cadnet", "csrgan", "psnr", "unseen"),
    Claim("T2-unseen-lpips-csrgan", _T2U, "cadnet", "csrgan", "lpips", "unseen"),
    Claim("T2-unseen-rank1-csrgan", _T2U, "cadnet", "csrgan", "rank1", "unseen"),
    Claim("T2-unseen-rank1-sing", _T2U, "cadnet", "sing", "rank1", "unseen"),
    Claim("T2-unseen-ssim-sing", _T2U, "cadnet", "sing", "ssim", "unseen"),
    Claim("T2-seen-ssim-input", _S45, "cadnet", "bicubic", "ssim", "seen", note=_INPUT),
    Claim("T2-seen-psnr-input", _S45, "cadnet", "bicubic", "psnr", "seen", note=_INPUT),
    Claim("T2-unseen-ssim-input", _S45, "cadnet", "bicubic", "ssim", "unseen", note=_INPUT),
    Claim("T2-seen-ssim-own-input", _S45, "cadnet", "bilinear", "ssim", "seen", note=_OWN_INPUT),
    Claim("T2-seen-psnr-own-input", _S45, "cadnet", "bilinear", "psnr", "seen", note=_OWN_INPUT),
    Claim("T3-no-adv-di", _T3, "cadnet", "cadnet-no-adv-di", "rank1", "seen"),
    Claim("T3-no-adv-df", _T3, "cadnet", "cadnet-no-adv-df", "rank1", "seen"),
    Claim("T3-no-rec", _T3, "cadnet", "cadnet-no-rec", "rank1", "seen"),
    Claim("T3-no-cls", _T3, "cadnet", "cadnet-no-cls", "rank1", "seen"),
    Claim("T3-order-di-df", _T3 + ": w/o L_adv^DI closest to the full model",
          "cadnet-no-adv-di", "cadnet-no-adv-df", "rank1", "seen"),
    Claim("T3-order-rec-cls", _T3 + ": w/o L_cls far below the rest",
          "cadnet-no-rec", "cadnet-no-cls", "rank1", "seen"),
    Claim("T3-ssim-no-adv-df", _T3, "cadnet", "cadnet-no-adv-df", "ssim", "seen"),
    Claim("T3-ssim-no-rec", _T3, "cadnet", "cadnet-no-rec", "ssim", "seen"),
    Claim("control-lr-aug", _CONTROL, "cadnet", "lr-aug", "rank1", "seen", note=_CONTROL_NOTE),
    Claim("control-lr-aug-unseen", _CONTROL, "cadnet", "lr-aug", "rank1", "unseen", note=_CONTROL_NOTE),
)

LOWER_IS_BETTER = {"lpips"}
METRICS = ("rank1", "mAP", "ssim", "psnr", "lpips")
COLUMNS = ["claim", "source", "dataset", "better", "worse", "metric", "queries", "margin",
           "trials", "over", "pairs", "better_mean", "worse_mean", "diff_mean", "diff_std", "ci_low",
           "ci_high", "wins", "verdict", "note"]


def claim_methods(claims=CLAIMS) -> list[str]:
    """Every method the claims name, in first-mention order."""
    return list(dict.fromkeys(m for c in claims for m in (c.better, c.worse)))


def verdict(diffs) -> tuple[str, float, float]:
    """``(verdict, ci_low, ci_high)`` of per-trial differences (already minus the margin;
    positive = the claim's direction): the 95 % t interval of their mean (see the module
    docstring)."""
    d = pd.Series(diffs, dtype=float).to_numpy()
    n = len(d)
    if n == 0:
        return "not run", math.nan, math.nan
    if n == 1:
        return "undecided", math.nan, math.nan
    lo, hi = t_interval(d)
    if lo == hi:  # no spread: the sign of the differences decides
        return ("holds" if lo > 0 else "does not hold"), lo, hi
    return ("holds" if lo > 0 else "does not hold" if hi < 0 else "undecided"), lo, hi


def _differences(frame: pd.DataFrame, c: Claim, key: list[str]) -> tuple[pd.DataFrame, pd.Series]:
    """The rows of ``c.better`` and ``c.worse`` in ``frame`` paired on ``key``, and their
    differences in the claim's direction, minus its margin."""
    sel = frame[(frame["queries"] == c.queries) & (frame["metric"] == c.metric)]
    a = sel[sel["method"] == c.better][key + ["value"]]
    b = sel[sel["method"] == c.worse][key + ["value"]]
    both = a.merge(b, on=key, suffixes=("_a", "_b")).dropna()
    sign = -1.0 if c.metric in LOWER_IS_BETTER else 1.0
    return both, sign * (both["value_a"] - both["value_b"]) - c.margin


def check(per_trial: pd.DataFrame, claims=CLAIMS, per_query: pd.DataFrame | None = None
          ) -> pd.DataFrame:
    """One row per (claim, dataset) of ``per_trial`` (long: dataset, method, trial, queries,
    metric, value); a claim with one trial is tested over the queries of ``per_query`` (long,
    with the query's ``path``) where both methods have them."""
    key = ["dataset", "queries", "metric", "trial"]
    out = []
    for dataset in dict.fromkeys(per_trial["dataset"]):
        part = per_trial[per_trial["dataset"] == dataset]
        queries = (per_query[per_query["dataset"] == dataset] if per_query is not None
                   else None)
        for c in claims:
            both, d = _differences(part, c, key)
            n, over, pairs = len(d), "trials", len(d)
            if n == 1 and queries is not None:
                _, dq = _differences(queries, c, key + ["path"])
                if len(dq) > 1:
                    over, pairs, d = "queries", len(dq), dq
            v, lo, hi = verdict(d)
            out.append({
                "claim": c.id, "source": c.source, "dataset": dataset, "better": c.better,
                "worse": c.worse, "metric": c.metric, "queries": c.queries, "margin": c.margin,
                "trials": n, "over": over, "pairs": pairs,
                "better_mean": both["value_a"].mean() if n else math.nan,
                "worse_mean": both["value_b"].mean() if n else math.nan,
                "diff_mean": d.mean() if n else math.nan,
                "diff_std": d.std(ddof=1) if pairs > 1 else math.nan, "ci_low": lo,
                "ci_high": hi, "wins": int((d > 0).sum()), "verdict": v, "note": c.note})
    return pd.DataFrame(out, columns=COLUMNS).round(4)


def _blank_nan(x, fmt: str = "{:.2f}") -> str:
    return "" if isinstance(x, float) and math.isnan(x) else fmt.format(x)


def to_markdown(table: pd.DataFrame, missing: list[dict]) -> str:
    counts = table["verdict"].value_counts()
    lines = ["# The paper's claims against the stored per-trial results", "",
             "Each row: `better` above `worse` by more than the margin, on the per-trial "
             "differences (one split per trial, both methods scored on it); 95 % t interval "
             "of their mean. With one trial (a fixed split), on the per-query differences "
             "where both methods' per-query results are stored (`over`: queries; the "
             "interval then speaks to this split's test identities only). holds: interval "
             "above 0; does not hold: below 0; undecided: it contains 0, or one trial and no "
             "per-query results; not run: a method has no stored result.", "",
             "Verdicts: " + ", ".join(f"{k} {counts.get(k, 0)}" for k in
                                      ("holds", "does not hold", "undecided", "not run")), ""]
    if missing:
        lines += ["Not stored (left out): " + "; ".join(
            f"{m['dataset']} {m['method']} trial {m['trial']}" for m in missing) + ".", ""]
    lines += ["| claim | source | dataset | better | worse | metric | queries | trials | "
              "over | better | worse | difference (- margin) | 95 % interval | verdict |",
              "|---" * 14 + "|"]
    for r in table.itertuples(index=False):
        f = _blank_nan
        spread = f(r.diff_std, " ± {:.2f}")
        ci = "" if math.isnan(r.ci_low) else f"{r.ci_low:+.2f} .. {r.ci_high:+.2f}"
        margin = f" - {r.margin:g}" if r.margin else ""
        lines.append(f"| {r.claim} | {r.source} | {r.dataset} | {r.better} | {r.worse} | "
                     f"{r.metric} | {r.queries} | {r.trials} | {r.pairs} {r.over} | "
                     f"{f(r.better_mean)} | "
                     f"{f(r.worse_mean)} | {f(r.diff_mean, '{:+.2f}')}{spread}{margin} | {ci} | "
                     f"**{r.verdict}** |")
    return "\n".join(lines) + "\n"


def claims_report(cfg) -> list[Path]:
    """Check :data:`CLAIMS` on ``cfg``'s datasets from stored results: CSV, Markdown and
    provenance in ``cfg.out``."""
    from .paired import stored_per_query, stored_per_trial
    from .store import output_path

    t0 = time.perf_counter()
    per_trial, missing = stored_per_trial(cfg, METRICS, sweep=False)
    per_query, with_queries = stored_per_query(cfg)
    table = check(per_trial, per_query=per_query)
    for d in sorted(set(table.dataset[(table.trials == 1) & (table.over == "trials")])):
        Console(stderr=True).print(
            f"[yellow]note: {d} has one trial and its claims have no per-query results: "
            "they stay undecided; `--table N --per-query` with the same flags stores them "
            "(reusing the trained models)")
    paths = [output_path(cfg, f"claims.{ext}") for ext in ("csv", "md", "provenance.json")]
    atomic_write_text(paths[0], table.to_csv(index=False, lineterminator="\n"))
    atomic_write_text(paths[1], to_markdown(table, missing))
    atomic_write_json(paths[2], {
        **base_provenance(cfg.device), "methods": cfg.methods, "datasets": cfg.datasets,
        "protocol": cfg.protocol, "profile": cfg.profile, "seed": cfg.seed,
        "trials": {d: cfg.num_trials(d) for d in cfg.datasets}, "missing": missing,
        "test": "95% t interval of the mean per-trial difference (scipy.stats.t); with one "
                "trial, of the mean per-query difference where per-query results are stored",
        "per_query_results": with_queries,
        "claims": [asdict(c) for c in CLAIMS],
        "wall_time_s": round(time.perf_counter() - t0, 2), "config": asdict(cfg)})
    return paths


__all__ = ["CLAIMS", "Claim", "check", "claim_methods", "claims_report", "verdict"]
