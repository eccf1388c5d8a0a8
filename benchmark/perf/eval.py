"""``eval``: :func:`benchmark.metrics.evaluate_ranking` at Market-1501 scale.

3,368 queries x 15,913 gallery images, 750 test identities, 6 cameras, 2,048-d random
Gaussian features, all seeded (:func:`market_scale_problem`), against the plain per-query
reference (:mod:`benchmark.metrics.reference`) in the same run. Feature-to-distance time
(:func:`benchmark.metrics.pairwise_distance`) is reported separately from ranking time.
Memory: peak resident-set growth during each phase (VmRSS sampled every 5 ms), plus the
process high-water mark ``resource.getrusage(RUSAGE_SELF).ru_maxrss``.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch

from .common import (
    Row,
    add_out_argument,
    add_threads_argument,
    maxrss_bytes,
    mib,
    print_rows,
    set_threads,
    timed,
)

NAME = "eval"
HELP = "time evaluate_ranking at Market-1501 scale vs the reference"


def add_arguments(e: argparse.ArgumentParser) -> None:
    e.add_argument("--queries", type=int, default=3368)
    e.add_argument("--gallery", type=int, default=15913)
    e.add_argument("--ids", type=int, default=750, help="test identities (Market-1501: 750)")
    e.add_argument("--cams", type=int, default=6)
    e.add_argument("--dim", type=int, default=2048)
    e.add_argument("--seed", type=int, default=0)
    add_threads_argument(e)
    e.add_argument("--reference-queries", type=int, default=-1,
                   help="queries for the slow reference: -1 all (default), 0 skip, N the first "
                        "N with the full time extrapolated (printed as such)")
    add_out_argument(e)


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


def _reference_rows(args, dist, labels, fast, t_fast) -> tuple[list[Row], str]:
    """The per-query reference on all (or the first N) queries: rows and a summary line."""
    from benchmark.metrics import evaluate_ranking
    from benchmark.metrics.reference import evaluate_ranking_reference

    qp, gp, qc, gc = labels
    nq, kw = len(qp), {"max_rank": 50}
    n_ref = nq if args.reference_queries < 0 else min(args.reference_queries, nq)
    sub = slice(0, n_ref)
    ref, t_ref, m_ref = timed(evaluate_ranking_reference, dist[sub], qp[sub], gp, qc[sub],
                              gc, **kw)
    mine = fast if n_ref == nq else evaluate_ranking(dist[sub], qp[sub], gp, qc[sub], gc, **kw)
    t_ref_full = t_ref * nq / n_ref
    extrapolated = n_ref < nq
    rows = [("reference_multishot_queries_run", n_ref, "queries"),
            ("reference_multishot_time_measured", t_ref, "s"),
            ("reference_multishot_time_full" + ("_extrapolated" if extrapolated else ""),
             t_ref_full, "s"),
            ("reference_multishot_peak_rss_growth", mib(m_ref), "MiB"),
            ("speedup_reference_over_fast", t_ref_full / t_fast, "x"),
            ("max_abs_cmc_difference", float(np.abs(mine.cmc - ref.cmc).max()), "fraction"),
            ("abs_mAP_difference", abs(mine.mAP - ref.mAP), "fraction")]
    how = (f"measured on the first {n_ref} queries and EXTRAPOLATED x{nq / n_ref:.2f} to "
           f"all {nq}" if extrapolated else f"run in full on all {nq} queries")
    return rows, (f"reference per-query loop: {t_ref_full:.3f} s ({how}); "
                  f"ratio reference / fast = {t_ref_full / t_fast:.1f}x")


def run(args) -> list[Row]:
    from benchmark.metrics import evaluate_ranking, pairwise_distance

    set_threads(args.threads)
    nq, ng = args.queries, args.gallery
    print(f"machine: {os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}, "
          f"torch {torch.__version__}, numpy {np.__version__}, "
          f"load average {os.getloadavg()[0]:.2f} (1 min)")
    print(f"problem: {nq} queries x {ng} gallery, {args.ids} ids, {args.cams} cameras, "
          f"{args.dim}-d random features, seed {args.seed}")
    qf, gf, qp, gp, qc, gc = market_scale_problem(nq, ng, args.ids, args.cams, args.dim,
                                                  args.seed)
    rows: list[Row] = []

    dist, t_dist, m_dist = timed(pairwise_distance, qf, gf, metric="euclidean")
    dist = dist.numpy()
    rows += [("distance_time", t_dist, "s"), ("distance_peak_rss_growth", mib(m_dist), "MiB")]

    kw = {"max_rank": 50}
    fast, t_fast, m_fast = timed(evaluate_ranking, dist, qp, gp, qc, gc, **kw)
    rows += [("ranking_multishot_time", t_fast, "s"),
             ("ranking_multishot_peak_rss_growth", mib(m_fast), "MiB"),
             ("ranking_multishot_rank1", fast.rank(1), "fraction"),
             ("ranking_multishot_mAP", fast.mAP, "fraction")]
    ss, t_ss, m_ss = timed(evaluate_ranking, dist, qp, gp, qc, gc, single_shot=True,
                           num_repeats=10, seed=0, **kw)
    rows += [("ranking_singleshot10_time", t_ss, "s"),
             ("ranking_singleshot10_peak_rss_growth", mib(m_ss), "MiB")]
    ref_line = None
    if args.reference_queries != 0:
        ref_rows, ref_line = _reference_rows(args, dist, (qp, gp, qc, gc), fast, t_fast)
        rows += ref_rows
    rows += [("process_max_rss", mib(maxrss_bytes()), "MiB")]

    print_rows(rows)
    print(f"ranking (multi-shot CMC + mAP): {t_fast:.3f} s; distance computation (separate): "
          f"{t_dist:.3f} s")
    if ref_line:
        print(ref_line)
    print("memory: *_peak_rss_growth = peak VmRSS above the phase's start, sampled every 5 ms "
          "from /proc/self/status; process_max_rss = getrusage ru_maxrss (whole process)")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (1 min)")
    return rows
