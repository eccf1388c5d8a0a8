"""Tables of the paper, regenerated: aggregate per-trial results, write CSV, Markdown, JSON.

Each table is a :class:`TableSpec` (data, not code): which methods it runs by default, which
metrics it reports, on which query sets. The paper's reported values
(``results/paper/tableN.csv``) are shown next to the reproduced ones, with the difference.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from .config import RunConfig
from .evaluation import QueryMeasure, ResultMeasure
from .experiment import collect
from .provenance import atomic_write_json, atomic_write_text, base_provenance
from .store import output_path

KEYS = ["dataset", "method", "testset"]
PAPER_DIR = Path(__file__).resolve().parents[1] / "results" / "paper"


@dataclass(frozen=True)
class TableSpec:
    name: str
    title: str
    default_methods: tuple[str, ...]
    metrics: tuple[str, ...]
    testsets: tuple[str, ...] = ("seen", "unseen")


TABLE1_METHODS = ("hist", "lomo-xqda", "hr-only", "lr-aug", "bicubic", "rain", "sing",
                  "csrgan", "cyclegan", "cadnet-f", "cadnet-g", "cadnet")
TABLES = {
    1: TableSpec("table1", "Table 1: cross-resolution re-ID (CMC %, mAP %)", TABLE1_METHODS,
                 ("rank1", "rank5", "rank10", "mAP")),
    2: TableSpec("table2", "Table 2: recovered HR images (SSIM, PSNR dB, LPIPS) and rank-1 %",
                 ("bicubic", "bilinear", "cyclegan", "sing", "csrgan", "cadnet"),
                 ("ssim", "psnr", "lpips", "rank1")),
    3: TableSpec("table3", "Table 3: ablations of CAD-Net's losses",
                 ("cadnet", "cadnet-no-adv-di", "cadnet-no-adv-df", "cadnet-no-rec",
                  "cadnet-no-cls"), ("ssim", "psnr", "lpips", "rank1"), ("seen",)),
}


def aggregate(per_trial: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    """Mean and standard deviation (ddof=1; 0 for one trial) over trials."""
    frame = per_trial[per_trial["testset"].isin(spec.testsets)].copy()
    for m in spec.metrics:  # non-image methods have no SSIM/PSNR/LPIPS
        if m not in frame:
            frame[m] = math.nan
    g = frame.groupby(KEYS, sort=False)
    mean = g[list(spec.metrics)].mean()
    # one trial: std 0; a metric that could not be measured (NaN mean, e.g. LPIPS offline): NaN
    std = g[list(spec.metrics)].std(ddof=1).fillna(0.0).where(mean.notna()).add_suffix("_std")
    extra = g.agg(trials=("trial", "nunique"), init=("init", "first"),
                  num_queries=("num_queries", "first"))
    table = pd.concat([mean, std, extra], axis=1).reset_index()
    cols = KEYS + list(spec.metrics) + [f"{m}_std" for m in spec.metrics] + [
        "trials", "num_queries", "init"]
    return table[cols].round(4)


def reported(spec: TableSpec) -> pd.DataFrame:
    """The paper's values for this table, keyed by (method, dataset, testset, metric)."""
    path = PAPER_DIR / f"{spec.name}.csv"
    if not path.exists():
        return pd.DataFrame(columns=["method", "dataset", "testset", "metric", "value"])
    paper = pd.read_csv(path)
    paper = paper[paper["method_key"].notna()].drop(columns="method")
    if "testset" not in paper:
        paper["testset"] = "seen"  # Table 1 reports the seen rates {2,3,4}
    return paper.rename(columns={"method_key": "method"})[
        ["method", "dataset", "testset", "metric", "value"]]


def with_reported(table: pd.DataFrame, spec: TableSpec,
                  incomparable: frozenset[str] = frozenset()) -> pd.DataFrame:
    """Add ``<metric>_paper`` columns (NaN where the paper has no value, and for the
    ``incomparable`` datasets: data other than the paper's, e.g. a re-split)."""
    paper = reported(spec)
    paper = paper[~paper["dataset"].isin(incomparable)]
    out = table.copy()
    for m in spec.metrics:
        sel = paper[paper["metric"] == m]
        vals = dict(zip(zip(sel["method"], sel["dataset"], sel["testset"]), sel["value"]))
        out[f"{m}_paper"] = [vals.get((r.method, r.dataset, r.testset), math.nan)
                             for r in table.itertuples(index=False)]
    return out


def _fmt(v: float, digits: int) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _digits(metric: str) -> int:
    return 3 if metric in ("ssim", "lpips") else 1


def cell(row, m: str, paper: bool = True) -> str:
    d = _digits(m)
    if math.isnan(getattr(row, m)):
        return "n/a"
    s = _fmt(getattr(row, m), d)
    if row.trials > 1:  # one trial has no spread to show
        s += f" ± {_fmt(getattr(row, m + '_std'), d)}"
    ref = getattr(row, m + "_paper", math.nan)
    if paper and not math.isnan(ref):
        s += f" (paper {_fmt(ref, d)}, Δ {getattr(row, m) - ref:+.{d}f})"
    return s


def missing_note(missing: list[dict]) -> str:
    """One line naming the (dataset, method, trial) results a --stored-only run left out."""
    trials: dict[tuple[str, str], list[int]] = {}
    for m in missing:
        trials.setdefault((m["dataset"], m["method"]), []).append(m["trial"])
    return ("Left out (no stored result; `--stored-only`): " + "; ".join(
        f"{d} {name} trial{'s' if len(t) > 1 else ''} {', '.join(map(str, t))}"
        for (d, name), t in trials.items()) + ".")


def to_markdown(table: pd.DataFrame, spec: TableSpec, cfg: RunConfig,
                missing: list[dict] | None = None, dataset_info: dict | None = None) -> str:
    lines = [f"# {spec.title}", "",
             f"protocol `{cfg.protocol}`, profile `{cfg.profile}`, seed {cfg.seed}; mean ± std "
             "over trials (the mean alone for one trial); the paper's value and the difference "
             "in brackets where it has one.", ""]
    for name, info in (dataset_info or {}).items():
        if not info.get("comparable", True):
            lines += ["**" + "; ".join(info.get("notes") or [f"{name}: not comparable"])
                      + ".**", ""]
    if missing:
        lines += [missing_note(missing), ""]
    lines += ["| dataset | method | queries | " + " | ".join(spec.metrics)
             + " | trials | init |", "|---" * (len(spec.metrics) + 5) + "|"]
    for r in table.itertuples(index=False):
        lines.append(f"| {r.dataset} | {r.method} | {r.testset} | "
                     + " | ".join(cell(r, m) for m in spec.metrics) + f" | {r.trials} | {r.init} |")
    return "\n".join(lines) + "\n"


def print_table(table: pd.DataFrame, spec: TableSpec) -> None:
    t = Table(title=spec.title)
    for c in ["dataset", "method", "queries", *spec.metrics, "trials"]:
        t.add_column(c, justify="left" if c in ("dataset", "method") else "right")
    for r in table.itertuples(index=False):
        t.add_row(r.dataset, r.method, r.testset,
                  *[cell(r, m).replace(" ± ", "±").replace(" (paper ", "\n(paper ")
                    for m in spec.metrics], str(r.trials))
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    console.print(t)


def table_paths(cfg: RunConfig, name: str) -> dict[str, Path]:
    """Where table ``name`` goes: CSV, Markdown, provenance (``-authors`` for that protocol)."""
    return {k: output_path(cfg, f"{name}.{ext}")
            for k, ext in (("csv", "csv"), ("md", "md"), ("provenance", "provenance.json"))}


def backbone_weights(per_trial: pd.DataFrame) -> dict[str, dict]:
    """{method: {"file", "sha256"}} of the weights each method's backbone started from
    (methods from random weights, or rows stored before this was recorded: absent)."""
    if "init_file" not in per_trial:
        return {}
    rows = per_trial.dropna(subset=["init_file"]).drop_duplicates("method")
    return {r.method: {"file": r.init_file, "sha256": r.init_sha256}
            for r in rows.itertuples(index=False)}


def write_table(table: pd.DataFrame, spec: TableSpec, cfg: RunConfig, wall_s: float,
                dataset_info: dict | None = None, notes: list[str] | None = None,
                missing: list[dict] | None = None,
                weights: dict | None = None) -> dict[str, Path]:
    paths = table_paths(cfg, spec.name)
    atomic_write_text(paths["csv"], table.to_csv(index=False, lineterminator="\n"))
    atomic_write_text(paths["md"], to_markdown(table, spec, cfg, missing, dataset_info))
    atomic_write_json(paths["provenance"], {
        **base_provenance(cfg.device), "table": spec.name, "datasets": cfg.datasets,
        "methods": cfg.methods, "protocol": cfg.protocol, "profile": cfg.profile,
        "seed": cfg.seed, "trials": {d: cfg.num_trials(d) for d in cfg.datasets},
        "backbone_init": sorted(set(table["init"])), "backbone_weights": weights or {},
        "lr_method": cfg.lr_method,
        "input_size": list(cfg.input_size), "wall_time_s": round(wall_s, 2),
        "eval": "single-shot CMC, 10 gallery draws, same id+camera removed"
                if cfg.protocol == "paper" else "multi-shot CMC, same id+camera removed",
        "notes": notes or [], "missing": missing or [],
        "reported_values": f"results/paper/{spec.name}.csv",
        "dataset_info": dataset_info or {}, "config": asdict(cfg)})
    return paths


def make_table(number: int, cfg: RunConfig) -> dict[str, Path]:
    """Run (or reuse) every method of table ``number`` and write its files."""
    spec = TABLES[number]
    t0 = time.perf_counter()
    (results, *_) = collect(cfg, ResultMeasure(), *([QueryMeasure()] if cfg.per_query else []))
    per_trial = results.frame(cfg)
    info = per_trial.attrs.get("datasets") or {}
    table = with_reported(aggregate(per_trial, spec), spec, frozenset(
        d for d, i in info.items() if not i.get("comparable", True)))
    notes = sorted({n for n in per_trial.get("lpips_note", pd.Series(dtype=str)).dropna()})
    print_table(table, spec)
    for n in notes:
        Console(stderr=True).print(f"[yellow]note: LPIPS unavailable: {n}")
    return write_table(table, spec, cfg, time.perf_counter() - t0,
                       per_trial.attrs.get("datasets"), [f"LPIPS: {n}" for n in notes],
                       per_trial.attrs.get("missing"), backbone_weights(per_trial))


def compare_protocols(number: int, paper_cfg: RunConfig, authors_cfg: RunConfig) -> dict[str, Path]:
    """Table ``number`` under the paper's text and under the authors' lists, side by side:
    ``<metric>@paper``, ``<metric>@authors`` and their difference (authors - paper)."""
    spec = TABLES[number]
    t0 = time.perf_counter()
    frames = {c.protocol: pd.read_csv(make_table(number, c)["csv"]) for c in (paper_cfg, authors_cfg)}
    cols = {p: f[KEYS + list(spec.metrics) + ["trials"]].rename(
        columns={m: f"{m}@{p}" for m in [*spec.metrics, "trials"]}) for p, f in frames.items()}
    both = cols["paper"].merge(cols["authors"], on=KEYS, how="outer", sort=False)
    for m in spec.metrics:
        both[f"{m}_delta"] = (both[f"{m}@authors"] - both[f"{m}@paper"]).round(4)
    paths = table_paths(paper_cfg, f"{spec.name}-protocols")
    atomic_write_text(paths["csv"], both.to_csv(index=False, lineterminator="\n"))
    d = {m: _digits(m) for m in spec.metrics}
    lines = [f"# {spec.title}: the paper's protocol vs the authors' lists", "",
             "mean over trials (the CSV's `trials@paper` / `trials@authors` say how many); "
             "delta = authors - paper.", "",
             "| dataset | method | queries | " + " | ".join(
                 f"{m} paper / authors / delta" for m in spec.metrics) + " |",
             "|---" * (len(spec.metrics) + 3) + "|"]
    for r in both.to_dict("records"):
        lines.append(f"| {r['dataset']} | {r['method']} | {r['testset']} | " + " | ".join(
            f"{_fmt(r[m + '@paper'], d[m])} / {_fmt(r[m + '@authors'], d[m])} / "
            f"{_fmt(r[m + '_delta'], d[m])}" for m in spec.metrics) + " |")
    atomic_write_text(paths["md"], "\n".join(lines) + "\n")
    atomic_write_json(paths["provenance"], {
        **base_provenance(paper_cfg.device), "table": f"{spec.name}-protocols",
        "sources": {c.protocol: str(table_paths(c, spec.name)["csv"])
                    for c in (paper_cfg, authors_cfg)},
        "datasets": paper_cfg.datasets, "methods": paper_cfg.methods,
        "profile": paper_cfg.profile, "seed": paper_cfg.seed,
        "wall_time_s": round(time.perf_counter() - t0, 2)})
    return paths

