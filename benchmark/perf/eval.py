"""``eval``: features -> distances -> CMC + mAP at Market-1501 scale.

3,368 queries x 15,913 gallery images, 750 test identities, 6 cameras, 2,048-d random
Gaussian features, all seeded (:func:`market_scale_problem`). Timed, best of ``--repeats``
runs interleaved with the previous implementation (:mod:`benchmark.perf.previous`) in the
same run: feature-to-distance time (:func:`benchmark.metrics.pairwise_distance`) and ranking
time (multi-shot :func:`benchmark.metrics.evaluate_ranking`), their total, the distance's
achieved GFLOP/s as a fraction of the float32 ``torch.mm`` peak measured in the same run
(before and after; the larger is used; 2 FLOPs per multiply-add, as for the peak), and the
ratio previous / current. The two implementations' distance matrices are compared bitwise
and their CMC curves and mAP exactly. Also: single-shot ranking time, and the plain
per-query reference (:mod:`benchmark.metrics.reference`) on the same distances. Memory: peak
resident-set growth during each phase of the first run (VmRSS sampled every 5 ms), plus the
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
    load_check,
    matmul_peak_gflops,
    maxrss_bytes,
    mib,
    print_rows,
    set_threads,
    timed,
)

NAME = "eval"
HELP = "time features -> CMC + mAP at Market-1501 scale vs the previous implementation"


def add_arguments(e: argparse.ArgumentParser) -> None:
    e.add_argument("--queries", type=int, default=3368)
    e.add_argument("--gallery", type=int, default=15913)
    e.add_argument("--ids", type=int, default=750, help="test identities (Market-1501: 750)")
    e.add_argument("--cams", type=int, default=6)
    e.add_argument("--dim", type=int, default=2048)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--repeats", type=int, default=3,
                   help="timed runs of the current and the previous implementation, "
                        "interleaved; the best of each is reported")
    e.add_argument("--matmul-size", type=int, default=4096, help="n of the n x n torch.mm peak")
    e.add_argument("--matmul-repeats", type=int, default=3)
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


def _implementations():
    from benchmark.metrics import evaluate_ranking, pairwise_distance

    from .previous import evaluate_ranking_previous, pairwise_distance_previous

    return {"current": (pairwise_distance, evaluate_ranking),
            "previous": (pairwise_distance_previous, evaluate_ranking_previous)}


def _time_both(qf, gf, labels, repeats: int) -> tuple[dict, dict]:
    """Best distance and ranking seconds of each implementation over ``repeats`` interleaved
    runs, and the first run's outputs and memory growth; plus, per run, the block-wise path
    (:func:`benchmark.metrics.evaluate_features`: features -> result without the full
    matrix) timed as one."""
    from benchmark.metrics import evaluate_features

    best = {k: {"distance": np.inf, "ranking": np.inf, "total": np.inf}
            for k in _implementations()}
    best["blockwise"] = {"total": np.inf}
    first: dict[str, dict] = {}
    for rep in range(max(1, repeats)):
        res, t_b, m_b = timed(evaluate_features, qf, gf, *labels, max_rank=50)
        best["blockwise"]["total"] = min(best["blockwise"]["total"], t_b)
        print(f"  run {rep + 1} blockwise: features -> result {t_b:.3f} s")
        if rep == 0:
            first["blockwise"] = {"result": res, "mem": m_b}
        for name, (distance, ranking) in _implementations().items():
            dist, t_d, m_d = timed(distance, qf, gf, metric="euclidean")
            res, t_r, m_r = timed(ranking, dist, *labels, max_rank=50)
            b = best[name]
            b["distance"], b["ranking"] = min(b["distance"], t_d), min(b["ranking"], t_r)
            b["total"] = min(b["total"], t_d + t_r)
            print(f"  run {rep + 1} {name:9s}: distance {t_d:.3f} s + ranking {t_r:.3f} s "
                  f"= {t_d + t_r:.3f} s")
            if rep == 0:
                first[name] = {"dist": dist, "result": res, "dist_mem": m_d, "rank_mem": m_r}
            del dist, res
    return best, first


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
                  f"ratio reference / fast ranking = {t_ref_full / t_fast:.1f}x")


def _comparison_rows(best, first, peak, gflop) -> list[Row]:
    cur, prev = best["current"], best["previous"]
    a, b = first["current"], first["previous"]
    same_dist = bool(torch.equal(torch.as_tensor(a["dist"]), torch.as_tensor(b["dist"])))
    same_cmc = bool(np.array_equal(a["result"].cmc, b["result"].cmc))
    rows = [("matmul_peak", peak, "GFLOP/s"),
            ("distance_gflop", gflop, "GFLOP"),
            ("distance_time", cur["distance"], "s"),
            ("distance_peak_fraction", gflop / cur["distance"] / peak, "fraction"),
            ("distance_peak_rss_growth", mib(a["dist_mem"]), "MiB"),
            ("ranking_multishot_time", cur["ranking"], "s"),
            ("ranking_multishot_peak_rss_growth", mib(a["rank_mem"]), "MiB"),
            ("total_time", cur["total"], "s"),
            ("total_peak_fraction", gflop / cur["total"] / peak, "fraction"),
            ("ranking_multishot_rank1", a["result"].rank(1), "fraction"),
            ("ranking_multishot_mAP", a["result"].mAP, "fraction"),
            ("previous_distance_time", prev["distance"], "s"),
            ("previous_ranking_multishot_time", prev["ranking"], "s"),
            ("previous_total_time", prev["total"], "s"),
            ("speedup_previous_over_current_distance", prev["distance"] / cur["distance"], "x"),
            ("speedup_previous_over_current_ranking", prev["ranking"] / cur["ranking"], "x"),
            ("speedup_previous_over_current_total", prev["total"] / cur["total"], "x"),
            ("previous_distances_bitwise_equal", float(same_dist), "bool"),
            ("previous_cmc_equal", float(same_cmc), "bool"),
            ("previous_abs_mAP_difference", abs(a["result"].mAP - b["result"].mAP), "fraction")]
    blk, fb = best["blockwise"]["total"], first["blockwise"]
    rows += [("blockwise_total_time", blk, "s"),
             ("blockwise_peak_rss_growth", mib(fb["mem"]), "MiB"),
             ("blockwise_over_matmul_bound", blk / (gflop / peak), "x"),
             ("total_over_matmul_bound", cur["total"] / (gflop / peak), "x"),
             ("speedup_previous_over_blockwise_total", prev["total"] / blk, "x"),
             ("speedup_full_matrix_over_blockwise_total", cur["total"] / blk, "x"),
             ("blockwise_cmc_equal", float(np.array_equal(fb["result"].cmc,
                                                          a["result"].cmc)), "bool"),
             ("blockwise_abs_mAP_difference", abs(fb["result"].mAP - a["result"].mAP),
              "fraction")]
    return rows


def run(args) -> list[Row]:
    set_threads(args.threads)
    nq, ng = args.queries, args.gallery
    print(f"machine: {os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}, "
          f"torch {torch.__version__}, numpy {np.__version__}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")
    print(f"problem: {nq} queries x {ng} gallery, {args.ids} ids, {args.cams} cameras, "
          f"{args.dim}-d random features, seed {args.seed}")
    qf, gf, qp, gp, qc, gc = market_scale_problem(nq, ng, args.ids, args.cams, args.dim,
                                                  args.seed)
    labels = (qp, gp, qc, gc)
    load = load_check("matmul peak")
    peak0 = matmul_peak_gflops(args.matmul_size, args.matmul_repeats)
    load_check(f"{args.repeats} interleaved runs of the current and previous implementation")
    best, first = _time_both(qf, gf, labels, args.repeats)
    peak = max(peak0, matmul_peak_gflops(args.matmul_size, args.matmul_repeats))
    gflop = 2.0 * nq * ng * args.dim / 1e9
    rows: list[Row] = [("load1", load, "load")] + _comparison_rows(best, first, peak, gflop)
    dist = first["current"]["dist"].numpy()
    del first["previous"]
    ss, t_ss, m_ss = timed(_implementations()["current"][1], dist, *labels, single_shot=True,
                           num_repeats=10, seed=0, max_rank=50)
    rows += [("ranking_singleshot10_time", t_ss, "s"),
             ("ranking_singleshot10_peak_rss_growth", mib(m_ss), "MiB")]
    ref_line = None
    if args.reference_queries != 0:
        ref_rows, ref_line = _reference_rows(args, dist, labels, first["current"]["result"],
                                             best["current"]["ranking"])
        rows += ref_rows
    rows += [("process_max_rss", mib(maxrss_bytes()), "MiB")]
    print_rows(rows)
    _print_summary(dict((n, v) for n, v, _ in rows), gflop, peak)
    if ref_line:
        print(ref_line)
    print("memory: *_peak_rss_growth = peak VmRSS above the phase's start, sampled every 5 ms "
          "from /proc/self/status; process_max_rss = getrusage ru_maxrss (whole process)")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (1 min)")
    return rows


def _print_summary(r: dict, gflop: float, peak: float) -> None:
    print(f"float32 torch.mm peak of this run: {peak:.1f} GFLOP/s; the distance's matrix "
          f"product ({gflop:.1f} GFLOP, 2 per multiply-add) needs at least "
          f"{gflop / peak:.3f} s at that peak")
    print(f"features -> CMC + mAP (best of the runs for each): distance "
          f"{r['distance_time']:.3f} s ({r['distance_peak_fraction']:.2f} of peak), ranking "
          f"{r['ranking_multishot_time']:.3f} s, total (best run) {r['total_time']:.3f} s")
    print(f"previous implementation, same run: distance {r['previous_distance_time']:.3f} s, "
          f"ranking {r['previous_ranking_multishot_time']:.3f} s, total (best run) "
          f"{r['previous_total_time']:.3f} s; ratio previous / current: distance "
          f"{r['speedup_previous_over_current_distance']:.2f}x, ranking "
          f"{r['speedup_previous_over_current_ranking']:.2f}x, total "
          f"{r['speedup_previous_over_current_total']:.2f}x")
    print(f"block-wise features -> CMC + mAP (evaluate_features, what the runner uses): "
          f"{r['blockwise_total_time']:.3f} s = {r['blockwise_over_matmul_bound']:.2f}x the "
          f"matrix product's time at peak ({gflop / peak:.3f} s), peak RSS growth "
          f"{r['blockwise_peak_rss_growth']:.0f} MiB vs {r['distance_peak_rss_growth']:.0f} MiB "
          f"for the full matrix; ratio full matrix / block-wise "
          f"{r['speedup_full_matrix_over_blockwise_total']:.2f}x, previous / block-wise "
          f"{r['speedup_previous_over_blockwise_total']:.2f}x; result "
          f"{'identical' if r['blockwise_cmc_equal'] and r['blockwise_abs_mAP_difference'] == 0 else 'DIFFERENT'}")
    same = "bitwise equal" if r["previous_distances_bitwise_equal"] else "NOT bitwise equal"
    print(f"identical results: distance matrices {same}; CMC "
          f"{'equal' if r['previous_cmc_equal'] else 'DIFFERENT'}; |mAP difference| "
          f"{r['previous_abs_mAP_difference']:.3g}")
