"""Tables of the paper, regenerated: aggregate per-trial results, write CSV, Markdown, JSON."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from .provenance import atomic_write_json, atomic_write_text, base_provenance
from .runner import RunConfig, run_methods

METRICS = ["rank1", "rank5", "rank10", "mAP"]
KEYS = ["dataset", "method", "testset"]


def aggregate(per_trial: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation (ddof=1; 0 for one trial) over trials, in percent."""
    g = per_trial.groupby(KEYS, sort=False)
    mean = g[METRICS].mean()
    std = g[METRICS].std(ddof=1).fillna(0.0).add_suffix("_std")
    extra = g.agg(trials=("trial", "nunique"), init=("init", "first"),
                  num_queries=("num_queries", "first"))
    table = pd.concat([mean, std, extra], axis=1).reset_index()
    cols = KEYS + METRICS + [f"{m}_std" for m in METRICS] + ["trials", "num_queries", "init"]
    return table[cols].round(4)


def to_markdown(table: pd.DataFrame, title: str, cfg: RunConfig) -> str:
    lines = [f"# {title}", "",
             f"protocol `{cfg.protocol}`, profile `{cfg.profile}`, seed {cfg.seed}; "
             "mean ± std over trials, percent.", "",
             "| dataset | method | queries | rank-1 | rank-5 | rank-10 | mAP | trials | init |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples(index=False):
        cells = [f"{getattr(r, m):.1f} ± {getattr(r, m + '_std'):.1f}" for m in METRICS]
        lines.append(f"| {r.dataset} | {r.method} | {r.testset} | " + " | ".join(cells)
                     + f" | {r.trials} | {r.init} |")
    return "\n".join(lines) + "\n"


def print_table(table: pd.DataFrame, title: str) -> None:
    t = Table(title=title)
    for c in ["dataset", "method", "queries", "R1", "R5", "R10", "mAP", "trials"]:
        t.add_column(c, justify="right" if c not in ("dataset", "method") else "left")
    for r in table.itertuples(index=False):
        t.add_row(r.dataset, r.method, r.testset,
                  *[f"{getattr(r, m):.1f}±{getattr(r, m + '_std'):.1f}" for m in METRICS],
                  str(r.trials))
    console = Console()
    if not console.is_terminal:
        console = Console(width=120)
    console.print(t)


def write_table(table: pd.DataFrame, name: str, title: str, cfg: RunConfig, wall_s: float,
                dataset_info: dict | None = None) -> dict[str, Path]:
    out = Path(cfg.out)
    paths = {"csv": out / f"{name}.csv", "md": out / f"{name}.md",
             "provenance": out / f"{name}.provenance.json"}
    atomic_write_text(paths["csv"], table.to_csv(index=False, lineterminator="\n"))
    atomic_write_text(paths["md"], to_markdown(table, title, cfg))
    atomic_write_json(paths["provenance"], {
        **base_provenance(cfg.device), "table": name, "datasets": cfg.datasets,
        "methods": cfg.methods, "protocol": cfg.protocol, "profile": cfg.profile,
        "seed": cfg.seed, "trials": {d: cfg.num_trials(d) for d in cfg.datasets},
        "backbone_init": sorted(set(table["init"])), "lr_method": cfg.lr_method,
        "input_size": list(cfg.input_size), "wall_time_s": round(wall_s, 2),
        "eval": "single-shot CMC, 10 gallery draws, same id+camera removed"
                if cfg.protocol == "paper" else "multi-shot CMC, same id+camera removed",
        "dataset_info": dataset_info or {}, "config": asdict(cfg)})
    return paths


def table1(cfg: RunConfig) -> dict[str, Path]:
    """Table 1: CMC rank-1/5/10 (+ mAP) of every method on every dataset."""
    t0 = time.perf_counter()
    per_trial = run_methods(cfg)
    table = aggregate(per_trial)
    title = "Table 1: cross-resolution re-ID"
    print_table(table, title)
    return write_table(table, "table1", title, cfg, time.perf_counter() - t0,
                       per_trial.attrs.get("datasets"))
