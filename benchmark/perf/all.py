"""``all``: ``eval``, ``train`` (``cpu`` and ``paper``; ``--skip-paper``), ``loader``,
``optim`` and ``table1`` (``--skip-table1``) in one run, one perf.csv; eval rows are
prefixed ``eval_`` there and the loader's ratio uses the cpu CAD-Net training speed measured
by ``train`` in the run. Each part is run with the defaults of its own command."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import eval as eval_bench
from . import loader, optim, table1, train
from .common import Row, add_out_argument, add_threads_argument

NAME = "all"
HELP = "eval + train (cpu and paper) + loader + optim + table1"


def add_arguments(a: argparse.ArgumentParser) -> None:
    a.add_argument("--skip-paper", action="store_true",
                   help="leave out the paper profile (its steps take minutes on 2 cores)")
    a.add_argument("--skip-table1", action="store_true",
                   help="leave out timing run_all.py --table 1 on SynthMLR (~2.5 min)")
    a.add_argument("--compile", action="store_true", help="as for train")
    a.add_argument("--methods", default="cadnet,hr-only")
    a.add_argument("--profile-ops", action="store_true")
    a.add_argument("--reference-queries", type=int, default=-1, help="as for eval")
    a.add_argument("--data-root", type=Path, default=loader.default_data_root())
    add_threads_argument(a)
    add_out_argument(a)


def _args(bench, argv: list[str]) -> argparse.Namespace:
    """``argv`` parsed by the arguments benchmark module ``bench`` declares."""
    p = argparse.ArgumentParser(prog=f"python -m benchmark.perf {bench.NAME}")
    bench.add_arguments(p)
    return p.parse_args(argv)


def run(args) -> list[Row]:
    common = ["--threads", str(args.threads)]
    print("=== eval ===")
    rows = [("eval_" + n, v, u) for n, v, u in eval_bench.run(_args(
        eval_bench, ["--reference-queries", str(args.reference_queries), *common]))]
    print("=== train ===")
    profiles = "cpu" if args.skip_paper else "cpu,paper"
    train_rows = train.run(_args(
        train, ["--profiles", profiles, "--methods", args.methods, *common]
        + (["--profile-ops"] if args.profile_ops else [])
        + (["--compile"] if args.compile else [])))
    rows += train_rows
    print("=== loader ===")
    cpu_ips = dict((n, v) for n, v, _ in train_rows).get("train_cpu_cadnet_images_per_s")
    rows += loader.run(_args(
        loader, ["--profile", "cpu", "--data-root", str(args.data_root), *common]),
        train_images_per_s=cpu_ips)
    print("=== optimiser step ===")
    rows += optim.run(_args(optim, ["--profiles", profiles, *common]))
    if not args.skip_table1:
        print("=== run_all.py --table 1 (SynthMLR) ===")
        rows += table1.run(_args(table1, []))
    return rows
