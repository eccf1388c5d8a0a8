"""Performance reports (benchmarks, not tests): ``python -m benchmark.perf <command>``.

Commands:

* ``eval``: times :func:`benchmark.metrics.evaluate_ranking` at Market-1501 scale
  (3,368 queries x 15,913 gallery images, 750 test identities, 6 cameras, 2,048-d random
  Gaussian features, all seeded) against the plain per-query reference
  (:mod:`benchmark.metrics.reference`) in the same run. Feature-to-distance time
  (:func:`benchmark.metrics.pairwise_distance`) is reported separately from ranking time.
  Memory: peak resident-set growth during each phase, sampled from ``/proc/self/status``
  (VmRSS) every 5 ms by a background thread (it sees numpy and torch allocations alike),
  plus the process high-water mark ``resource.getrusage(RUSAGE_SELF).ru_maxrss``.
  ``--out DIR`` writes ``DIR/perf.csv`` (columns name, value, unit).

Other commands (training, loader throughput ...) are added as further subparsers.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

Row = tuple[str, float, str]


# --------------------------------------------------------------------------------------------
# measuring


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _maxrss_bytes() -> int:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024  # Linux reports KiB


class _PeakRSS:
    """Peak VmRSS above the starting value while the ``with`` block runs (None if unknown)."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.peak_delta: int | None = None

    def __enter__(self):
        self._start = _rss_bytes()
        self._peak = self._start
        self._stop = threading.Event()
        if self._start is not None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            v = _rss_bytes()
            if v is not None and v > self._peak:
                self._peak = v
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        if self._start is not None:
            self._thread.join()
            v = _rss_bytes()
            if v is not None:
                self._peak = max(self._peak, v)
            self.peak_delta = self._peak - self._start
        return False


def _timed(fn: Callable, *args, **kwargs):
    """(result, wall seconds, peak RSS growth in bytes or None)."""
    with _PeakRSS() as mem:
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        wall = time.perf_counter() - t0
    return out, wall, mem.peak_delta


def _mib(b: int | None) -> float:
    return float("nan") if b is None else b / 2**20


# --------------------------------------------------------------------------------------------
# eval


def market_scale_problem(n_query: int = 3368, n_gallery: int = 15913, n_ids: int = 750,
                         n_cams: int = 6, dim: int = 2048, seed: int = 0):
    """Seeded random features and labels shaped like the Market-1501 test split."""
    rng = np.random.default_rng(seed)
    q_pids = rng.integers(0, n_ids, n_query)
    g_pids = rng.integers(0, n_ids, n_gallery)
    q_cams = rng.integers(0, n_cams, n_query)
    g_cams = rng.integers(0, n_cams, n_gallery)
    gen = torch.Generator().manual_seed(seed)
    qf = torch.randn(n_query, dim, generator=gen)
    gf = torch.randn(n_gallery, dim, generator=gen)
    return qf, gf, q_pids, g_pids, q_cams, g_cams


def run_eval(args) -> list[Row]:
    from benchmark.metrics import evaluate_ranking, pairwise_distance
    from benchmark.metrics.reference import evaluate_ranking_reference

    if args.threads:
        torch.set_num_threads(args.threads)
    nq, ng = args.queries, args.gallery
    print(f"machine: {os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}, "
          f"torch {torch.__version__}, numpy {np.__version__}, "
          f"load average {os.getloadavg()[0]:.2f} (1 min)")
    print(f"problem: {nq} queries x {ng} gallery, {args.ids} ids, {args.cams} cameras, "
          f"{args.dim}-d random features, seed {args.seed}")
    qf, gf, qp, gp, qc, gc = market_scale_problem(nq, ng, args.ids, args.cams, args.dim,
                                                  args.seed)
    rows: list[Row] = []

    dist, t_dist, m_dist = _timed(pairwise_distance, qf, gf, metric="euclidean")
    dist = dist.numpy()
    rows += [("distance_time", t_dist, "s"), ("distance_peak_rss_growth", _mib(m_dist), "MiB")]

    kw = {"max_rank": 50}
    fast, t_fast, m_fast = _timed(evaluate_ranking, dist, qp, gp, qc, gc, **kw)
    rows += [("ranking_multishot_time", t_fast, "s"),
             ("ranking_multishot_peak_rss_growth", _mib(m_fast), "MiB"),
             ("ranking_multishot_rank1", fast.rank(1), "fraction"),
             ("ranking_multishot_mAP", fast.mAP, "fraction")]
    ss, t_ss, m_ss = _timed(evaluate_ranking, dist, qp, gp, qc, gc, single_shot=True,
                            num_repeats=10, seed=0, **kw)
    rows += [("ranking_singleshot10_time", t_ss, "s"),
             ("ranking_singleshot10_peak_rss_growth", _mib(m_ss), "MiB")]

    if args.reference_queries != 0:
        n_ref = nq if args.reference_queries < 0 else min(args.reference_queries, nq)
        sub = slice(0, n_ref)
        ref, t_ref, m_ref = _timed(evaluate_ranking_reference, dist[sub], qp[sub], gp, qc[sub],
                                   gc, **kw)
        mine = fast if n_ref == nq else evaluate_ranking(dist[sub], qp[sub], gp, qc[sub], gc, **kw)
        t_ref_full = t_ref * nq / n_ref
        extrapolated = n_ref < nq
        rows += [("reference_multishot_queries_run", n_ref, "queries"),
                 ("reference_multishot_time_measured", t_ref, "s"),
                 ("reference_multishot_time_full" + ("_extrapolated" if extrapolated else ""),
                  t_ref_full, "s"),
                 ("reference_multishot_peak_rss_growth", _mib(m_ref), "MiB"),
                 ("speedup_reference_over_fast", t_ref_full / t_fast, "x"),
                 ("max_abs_cmc_difference", float(np.abs(mine.cmc - ref.cmc).max()), "fraction"),
                 ("abs_mAP_difference", abs(mine.mAP - ref.mAP), "fraction")]
    rows += [("process_max_rss", _mib(_maxrss_bytes()), "MiB")]

    width = max(len(r[0]) for r in rows)
    print(f"{'name':<{width}}  {'value':>14}  unit")
    for name, value, unit in rows:
        print(f"{name:<{width}}  {value:>14.6g}  {unit}")
    print(f"ranking (multi-shot CMC + mAP): {t_fast:.3f} s; distance computation (separate): "
          f"{t_dist:.3f} s")
    if args.reference_queries != 0:
        how = (f"measured on the first {n_ref} queries and EXTRAPOLATED x{nq / n_ref:.2f} to "
               f"all {nq}" if extrapolated else f"run in full on all {nq} queries")
        print(f"reference per-query loop: {t_ref_full:.3f} s ({how}); "
              f"ratio reference / fast = {t_ref_full / t_fast:.1f}x")
    print("memory: *_peak_rss_growth = peak VmRSS above the phase's start, sampled every 5 ms "
          "from /proc/self/status; process_max_rss = getrusage ru_maxrss (whole process)")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (1 min)")
    return rows


def _write_csv(rows: list[Row], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "perf.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "value", "unit"])
        for name, value, unit in rows:
            w.writerow([name, f"{value:.6g}", unit])
    return path


# --------------------------------------------------------------------------------------------
# CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmark.perf", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("eval", help="time evaluate_ranking at Market-1501 scale vs the reference")
    e.add_argument("--queries", type=int, default=3368)
    e.add_argument("--gallery", type=int, default=15913)
    e.add_argument("--ids", type=int, default=750, help="test identities (Market-1501: 750)")
    e.add_argument("--cams", type=int, default=6)
    e.add_argument("--dim", type=int, default=2048)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    e.add_argument("--reference-queries", type=int, default=-1,
                   help="queries for the slow reference: -1 all (default), 0 skip, N the first "
                        "N with the full time extrapolated (printed as such)")
    e.add_argument("--out", type=Path, default=None, help="write DIR/perf.csv")
    e.set_defaults(func=run_eval)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    rows = args.func(args)
    if getattr(args, "out", None) is not None:
        print(f"wrote {_write_csv(rows, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
