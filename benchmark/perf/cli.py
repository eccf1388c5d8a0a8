"""The command line of :mod:`benchmark.perf`: one sub-command per benchmark module, each
declaring its own arguments (``add_arguments``) and entry point (``run``)."""

from __future__ import annotations

import argparse
import sys

from . import all as all_bench
from . import eval as eval_bench
from . import loader, optim, table1, train
from .common import write_csv

#: the benchmark modules, in the order of the help text
BENCHMARKS = (eval_bench, train, loader, optim, table1, all_bench)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmark.perf",
                                description="Performance reports (benchmarks, not tests).")
    sub = p.add_subparsers(dest="command", required=True)
    for bench in BENCHMARKS:
        sp = sub.add_parser(bench.NAME, help=bench.HELP)
        bench.add_arguments(sp)
        sp.set_defaults(func=bench.run)
    return p


def main(argv: list[str] | None = None) -> int:
    from datasets import DatasetError

    args = build_parser().parse_args(argv)
    try:
        rows = args.func(args)
    except (DatasetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if getattr(args, "out", None) is not None:
        print(f"wrote {write_csv(rows, args.out)}")
    return 0
