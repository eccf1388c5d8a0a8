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

* ``train``: training speed of one engine step (``task.train_step``) per (profile,
  method) on random images in [0, 1] at the profile's input size, batch P x K HR + LR as
  the profile says (32 + 32 for ``paper`` and ``cpu``), built exactly as the runner does
  (``make_config(profile, preset, num_classes=316, pretrained="none")``; CADNetTask for the
  CAD-Net presets and the engine baselines alike: ``benchmark.methods.create_task``). One warm-up step, then N timed steps (default 3 for
  ``paper``, 5 otherwise). Reported: training images/s (HR + LR images fed per step / mean
  seconds per step; ``hr-only`` ignores the LR half, so it *processes* half of them),
  seconds per step (mean and best), peak VmRSS (sampled as in ``eval``) over the warm-up
  and timed steps, both absolute and above the VmRSS before the task was built (model,
  gradients, optimiser state and activations at this batch: the training memory estimate
  on CPU), FLOPs of one whole step (forward + backward of every network, all optimisers)
  counted by ``torch.utils.flop_counter.FlopCounterMode`` around the warm-up step and
  divided by the images fed, the forward FLOPs per image of the test feature extraction
  (``model.extract_features`` in eval mode), the float32 ``torch.mm`` peak of this machine
  measured in the same run with the same thread count (best of several n x n products,
  measured before and after the training measurements; the larger is used), and the
  achieved fraction (step FLOPs / mean step seconds) / peak. FlopCounterMode counts
  convolutions and matrix products (2 FLOPs per multiply-add) and nothing else (batch norm,
  activations, pooling, losses and optimiser updates are not counted), so the fraction
  is that of the counted work. ``--profile-ops`` adds a ``torch.profiler`` pass over 2
  steps: share of self CPU time in convolution ops vs matrix products vs everything else.
* ``loader``: the data path alone on the real VIPeR images (``--data-root``): manifest
  (``get_manifest`` into a temp dir), ``ImageStore`` built twice (first decode, which also
  writes the .npy cache, then from that cache), then ``--batches`` steps of batch assembly
  exactly as the engine does it (``TrainData`` + ``IdentitySampler`` per epoch +
  ``make_batch`` with LR synthesis and flips). ``--compare-train`` also measures a few
  CAD-Net training steps of the same profile in the same run and reports the ratio.
  ``train --compile`` also times the step with torch.compile'd networks next to eager.
* ``optim``: one SGD step of E/G/F/C's parameters (cpu and paper profiles) with PyTorch's
  for-loop, foreach and fused implementations.
* ``table1``: wall time and peak RSS of ``python run_all.py --table 1`` with no data
  (SynthMLR, the no-data default) in a subprocess.
* ``all``: ``eval``, ``train`` (``cpu`` and ``paper``; ``--skip-paper``), ``loader``,
  ``optim`` and ``table1`` (``--skip-table1``) in one run, one perf.csv; eval rows are
  prefixed ``eval_`` there and the loader's ratio uses the cpu CAD-Net training speed
  measured by ``train`` in the run.

Every timed command prints the 1-minute load average before each measurement (and a
row ``*_load1``): on a shared machine other jobs make timings noisy (slower) and the
output says so when the load exceeds the torch thread count.
"""

from __future__ import annotations

import argparse
import csv
import gc
import math
import os
import resource
import sys
import tempfile
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
        self.peak: int | None = None  # absolute peak VmRSS in bytes

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
            self.peak = self._peak
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


# --------------------------------------------------------------------------------------------
# helpers shared by the timed commands


def _load_check(what: str) -> float:
    """Print the 1-minute load average before a measurement; warn when the machine is busy."""
    load, cores, threads = os.getloadavg()[0], os.cpu_count() or 1, torch.get_num_threads()
    print(f"  load average before {what}: {load:.2f} (1 min; {cores} cores, torch threads "
          f"{threads})")
    if load > max(1.0, 0.5 * cores):
        print(f"  NOTE: load {load:.2f} on {cores} cores: other jobs are running (the 1-min "
              "average also holds this run's own previous measurement); the timings below "
              "are noisy and likely slower than on an idle machine")
        if threads > 1 and not os.environ.get("OMP_WAIT_POLICY"):
            print("  NOTE: OMP_WAIT_POLICY is unset: with other multi-threaded jobs on these "
                  "cores, OpenMP spin-waiting can make multi-threaded torch many times slower "
                  "(measured here: batch assembly 170 vs 3,200 images/s with "
                  "OMP_WAIT_POLICY=PASSIVE); compare --threads 1 or OMP_WAIT_POLICY=PASSIVE")
    return load


def _print_rows(rows: list[Row]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"{'name':<{width}}  {'value':>14}  unit")
    for name, value, unit in rows:
        print(f"{name:<{width}}  {value:>14.6g}  {unit}")


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Float32 ``torch.mm`` throughput of an n x n product (GFLOP/s, 2 n^3 FLOPs), best of
    ``repeats`` after one warm-up, with torch's current thread count: this machine's
    practical matmul peak."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)
    out = torch.empty(n, n)
    torch.mm(a, b, out=out)
    best = math.inf
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9


# --------------------------------------------------------------------------------------------
# train


def make_task(profile: str, method: str, num_classes: int = 316):
    """The engine task of ``method`` as a run builds it, random init, on the CPU."""
    from .methods import create_task

    return create_task(method, profile, num_classes)[1]


def random_batch(config, seed: int = 0):
    """One step's batch as the engine makes it, from random images in [0, 1]: P x K HR
    images, lr_batch LR images (synthetic LR of random targets at the profile's rates)."""
    from datasets.loader import make_lr

    from .losses.cadnet import CrossResolutionBatch

    g = torch.Generator().manual_seed(seed)
    H, W = config.input_size
    k = config.instances_per_id

    def pids(n):
        return torch.randperm(config.num_classes, generator=g)[:n // k].repeat_interleave(k)

    hr = torch.rand(config.batch_size, 3, H, W, generator=g)
    target = torch.rand(config.lr_batch, 3, H, W, generator=g)
    rates = torch.tensor(config.lr_rates, dtype=torch.float64)[
        torch.randint(len(config.lr_rates), (config.lr_batch,), generator=g)]
    lr = make_lr(target, rates, config.lr_method)
    return CrossResolutionBatch(hr, pids(config.batch_size), lr, pids(config.lr_batch), target)


def _op_kind(name: str) -> str:
    n = name.lower()
    if "conv" in n:  # aten::convolution, aten::_convolution, aten::mkldnn_convolution,
        return "conv"  # aten::convolution_backward, ConvolutionBackward0, slow_conv ...
    if n.split("::")[-1] in ("mm", "addmm", "bmm", "baddbmm", "matmul", "linear", "addmv",
                             "mv", "dot") or "mmbackward" in n or "addmmbackward" in n:
        return "matmul"
    return "other"


def profile_ops(task, batch, steps: int = 2, top: int = 8) -> dict[str, float]:
    """Shares of self CPU time by op kind over ``steps`` train steps (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            task.train_step(batch)
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    shares = {"conv": 0.0, "matmul": 0.0, "other": 0.0}
    for e in events:
        shares[_op_kind(e.key)] += e.self_cpu_time_total / total
    print(f"  torch.profiler over {steps} steps, self CPU time: convolution ops "
          f"{shares['conv']:.1%}, matmul {shares['matmul']:.1%}, everything else "
          f"{shares['other']:.1%}; top ops:")
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:top]:
        print(f"    {e.self_cpu_time_total / total:6.1%}  {e.key}  ({_op_kind(e.key)})")
    return shares


def measure_train(profile: str, method: str, steps: int, *, num_classes: int = 316,
                  count_flops: bool = True, ops: bool = False, threads: int = 0,
                  budget_s: float = 0.0, compiled: bool = False) -> dict[str, float]:
    """Warm-up step (FLOP-counted when ``count_flops``) + ``steps`` timed train steps.

    ``budget_s`` > 0 caps the timed steps at what fits in that many seconds at the warm-up
    step's speed (at least 1; said when it happens). ``compiled``: the networks are
    torch.compiled as ``run_all.py --compile`` does (the warm-up step then includes the
    compilation; FLOPs are not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    if threads:
        torch.set_num_threads(threads)
    gc.collect()
    rss_before = _rss_bytes()
    task = make_task(profile, method, num_classes)
    if compiled:
        task.compile()
        count_flops = ops = False
    batch = random_batch(task.config)
    images = len(batch.hr_images) + len(batch.lr_images)
    res: dict[str, float] = {"images_per_step": images}
    load = _load_check(f"{profile}/{method}")
    times = []
    with _PeakRSS() as mem:
        t0 = time.perf_counter()
        if count_flops:
            with FlopCounterMode(display=False) as fc:
                task.train_step(batch)  # the warm-up step, counted
            res["flops_per_step"] = float(fc.get_total_flops())
        else:
            task.train_step(batch)
        t_warm = time.perf_counter() - t0
        if budget_s > 0 and steps * t_warm > budget_s:
            fit = max(1, int(budget_s // t_warm))
            if fit < steps:
                print(f"  warm-up step took {t_warm:.1f} s: timing {fit} step(s) instead of "
                      f"{steps} to stay within the {budget_s:.0f} s budget (--step-budget)")
                steps = fit
        for _ in range(steps):
            t0 = time.perf_counter()
            task.train_step(batch)
            times.append(time.perf_counter() - t0)
    print(f"  warm-up {t_warm:.2f} s; timed steps (s): {', '.join(f'{t:.2f}' for t in times)}")
    res.update(load1=load, seconds_per_step=sum(times) / len(times), warmup_seconds=t_warm,
               seconds_per_step_best=min(times), timed_steps=len(times),
               threads=torch.get_num_threads())
    res["images_per_s"] = images / res["seconds_per_step"]
    if mem.peak is not None and rss_before is not None:
        res["rss_before_task"] = _mib(rss_before)
        res["peak_rss"] = _mib(mem.peak)
        res["peak_rss_above_pre_task"] = _mib(mem.peak - rss_before)
    if count_flops:
        model = task.model
        model.eval()
        x = batch.hr_images[:2]
        with FlopCounterMode(display=False) as fc:
            model.extract_features(x)
        model.train()
        res["test_feature_flops_per_image"] = fc.get_total_flops() / len(x)
    if ops:
        res.update({f"{k}_share": v for k, v in profile_ops(task, batch).items()})
    del task, batch
    gc.collect()
    return res


def _measure_isolated(**kwargs) -> dict[str, float]:
    """:func:`measure_train` in a fresh (spawned) process, so that its VmRSS holds only this
    task (memory freed by an earlier task is not reused and hidden) and no state carries
    over from one measurement to the next."""
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(measure_train, kwds=kwargs)


def run_train(args) -> list[Row]:
    if args.threads:
        torch.set_num_threads(args.threads)
    profiles = [p for p in args.profiles.split(",") if p]
    methods = [m for m in args.methods.split(",") if m]
    from .methods import LearnedMethod, create_method, list_methods
    from .profiles import get_profile

    for prof in profiles:
        get_profile(prof)  # unknown names fail now, before any measurement
    engine = [m for m in list_methods() if isinstance(create_method(m), LearnedMethod)]
    bad = [m for m in methods if m not in engine]
    if bad:
        raise ValueError(f"not engine-trained method(s) {bad}; known: {', '.join(engine)}")
    threads = torch.get_num_threads()
    print(f"machine: {os.cpu_count()} CPU cores, torch threads {threads}, torch "
          f"{torch.__version__}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; "
          f"batches of random images in [0, 1], num_classes "
          f"{args.num_classes}, pretrained=none")
    _load_check("matmul peak")
    peak0 = matmul_peak_gflops(args.matmul_size, args.matmul_repeats)
    print(f"  float32 torch.mm {args.matmul_size}x{args.matmul_size}, best of "
          f"{args.matmul_repeats}: {peak0:.1f} GFLOP/s")
    results: dict[tuple[str, str], dict] = {}
    for prof in profiles:
        for method in methods:
            steps = args.steps or (3 if prof == "paper" else 5)
            print(f"[{prof} / {method}] warm-up 1 step (FLOP-counted) + {steps} timed steps")
            measure = measure_train if args.in_process else _measure_isolated
            r = measure(profile=prof, method=method, steps=steps,
                        num_classes=args.num_classes, ops=args.profile_ops,
                        threads=threads, budget_s=args.step_budget)
            if args.compile:
                print(f"[{prof} / {method}] torch.compile: 1 step (compiles) + {steps} timed")
                rc = measure(profile=prof, method=method, steps=steps,
                             num_classes=args.num_classes, threads=threads,
                             budget_s=args.step_budget, compiled=True)
                r.update(compiled_images_per_s=rc["images_per_s"],
                         compile_warmup_seconds=rc["warmup_seconds"],
                         compile_speedup=rc["images_per_s"] / r["images_per_s"])
                print(f"  compiled: {rc['images_per_s']:.1f} images/s "
                      f"({r['compile_speedup']:.2f}x eager), first step "
                      f"{rc['warmup_seconds']:.0f} s (compilation)")
            results[prof, method] = r
            print(f"  {r['images_per_s']:.1f} images/s, {r['seconds_per_step']:.3f} s/step "
                  f"(best {r['seconds_per_step_best']:.3f}), "
                  f"{r['flops_per_step'] / r['images_per_step'] / 1e9:.2f} GFLOP/image, "
                  f"peak RSS {r.get('peak_rss', math.nan):.0f} MiB")
    _load_check("matmul peak (again)")
    peak1 = matmul_peak_gflops(args.matmul_size, args.matmul_repeats)
    peak = max(peak0, peak1)
    print(f"  float32 torch.mm again: {peak1:.1f} GFLOP/s; peak used: {peak:.1f} GFLOP/s")

    rows: list[Row] = [("train_torch_threads", threads, "threads"),
                       ("train_matmul_size", args.matmul_size, "n"),
                       ("train_matmul_peak_before", peak0, "GFLOP/s"),
                       ("train_matmul_peak_after", peak1, "GFLOP/s"),
                       ("train_matmul_peak", peak, "GFLOP/s")]
    for (prof, method), r in results.items():
        n = f"train_{prof}_{method}_"
        achieved = r["flops_per_step"] / r["seconds_per_step"] / 1e9
        rows += [(n + "load1", r["load1"], "load"),
                 (n + "timed_steps", r["timed_steps"], "steps"),
                 (n + "images_per_step", r["images_per_step"], "images"),
                 (n + "images_per_s", r["images_per_s"], "images/s"),
                 (n + "seconds_per_step", r["seconds_per_step"], "s"),
                 (n + "seconds_per_step_best", r["seconds_per_step_best"], "s"),
                 (n + "warmup_seconds", r["warmup_seconds"], "s"),
                 (n + "rss_before_task", r.get("rss_before_task", math.nan), "MiB"),
                 (n + "peak_rss", r.get("peak_rss", math.nan), "MiB"),
                 (n + "peak_rss_above_pre_task", r.get("peak_rss_above_pre_task", math.nan),
                  "MiB"),
                 (n + "gflop_per_step", r["flops_per_step"] / 1e9, "GFLOP"),
                 (n + "gflop_per_image", r["flops_per_step"] / r["images_per_step"] / 1e9,
                  "GFLOP/image"),
                 (n + "test_feature_gflop_per_image", r["test_feature_flops_per_image"] / 1e9,
                  "GFLOP/image"),
                 (n + "achieved_gflops", achieved, "GFLOP/s"),
                 (n + "peak_fraction", achieved / peak, "fraction")]
        rows += [(n + k, r[k], "fraction") for k in ("conv_share", "matmul_share", "other_share")
                 if k in r]
        if "compile_speedup" in r:
            rows += [(n + "compiled_images_per_s", r["compiled_images_per_s"], "images/s"),
                     (n + "compile_first_step_seconds", r["compile_warmup_seconds"], "s"),
                     (n + "compile_speedup", r["compile_speedup"], "x")]
    if rows:
        _print_rows(rows)
    print("images/s = (HR + LR images fed per step) / mean seconds per step (hr-only ignores "
          "the LR half: it processes half of them). GFLOP = convolutions + matrix products of "
          "the whole step (forward + backward of every network) counted by FlopCounterMode, "
          "2 FLOPs per multiply-add; batch norm, activations, pooling, losses and optimiser "
          "updates are not counted. peak_fraction = (GFLOP per step / mean s per step) / "
          "float32 torch.mm peak of this run.")
    print("memory: peak_rss = peak VmRSS (sampled every 5 ms from /proc/self/status) over the "
          "warm-up and timed steps; peak_rss_above_pre_task = that minus VmRSS before the "
          "task was built (model + gradients + optimiser state + activations at this batch, "
          "on CPU, float32) " + ("in this process (a previous measurement's freed heap may "
                                 "be reused: the growth can be understated)" if args.in_process
                                 else "in a fresh process per (profile, method)"))
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (1 min)")
    return rows


# --------------------------------------------------------------------------------------------
# loader


def _default_data_root() -> Path:
    shared = os.environ.get("MLR_SHARED")
    return Path(shared) / "data" if shared else Path(__file__).resolve().parents[1].parent / "shared" / "data"


def run_loader(args, train_images_per_s: float | None = None) -> list[Row]:
    """Data-path throughput; the ratio to training uses ``train_images_per_s`` if given, else
    a measurement of this run when ``args.compare_train``."""
    from datasets import load_dataset
    from datasets.loader import ImageStore
    from datasets.protocol import ProtocolOptions, get_manifest

    from .engine import IdentitySampler, TrainData, epoch_generator, make_batch
    from .profiles import make_config

    if args.threads:
        torch.set_num_threads(args.threads)
    config = make_config(args.profile, "cadnet", num_classes=316, pretrained="none")
    size, k = tuple(config.input_size), config.instances_per_id
    print(f"machine: {os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; profile {args.profile}: {size[0]}x{size[1]}, batch {config.batch_size} HR + "
          f"{config.lr_batch} LR, rates {config.lr_rates}, {config.lr_method}")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="mlr-perf-") as tmp:
        tmp = Path(tmp)
        ds = load_dataset("viper", args.data_root, cache_dir=tmp / "cache")
        if args.ids:
            ds.images = [r for r in ds.images if r.pid < args.ids]
        manifest = get_manifest(ds, trial=0, seed=args.seed, manifest_dir=tmp / "manifests",
                                options=ProtocolOptions())
        paths = manifest.abspaths(manifest.frame.drop_duplicates("path"))
        n_img = len(paths)
        shown = os.path.relpath(args.data_root, Path(__file__).resolve().parents[1])
        print(f"VIPeR under {shown}: {n_img} distinct images in the manifest")
        load = _load_check("decoding")
        _, t_decode, _ = _timed(ImageStore, paths, size, cache_dir=tmp / "images")
        cache_file = next((tmp / "images").glob("*.npy"))
        cache_mib = _mib(cache_file.stat().st_size)
        arr = np.load(cache_file)
        t0 = time.perf_counter()
        np.save(tmp / "write-test.npy", arr)  # what the first construction's cache write costs
        t_write = time.perf_counter() - t0
        del arr
        store, t_cache, _ = _timed(ImageStore, paths, size, cache_dir=tmp / "images")
        rows += [("loader_load1", load, "load"),
                 ("loader_store_images", n_img, "images"),
                 ("loader_decode_time", t_decode, "s"),
                 ("loader_decode_images_per_s", n_img / t_decode, "images/s"),
                 ("loader_cache_write_time", t_write, "s"),
                 ("loader_cache_size", cache_mib, "MiB"),
                 ("loader_store_from_cache_time", t_cache, "s")]

        data = TrainData.from_manifest(manifest, store)
        hr_s = IdentitySampler(data.labels, config.ids_per_batch, k)
        lr_s = IdentitySampler(data.labels, config.lr_batch // k, k)
        print(f"training split: {len(data.labels)} HR images, {data.num_classes} identities, "
              f"{hr_s.steps} steps per epoch")

        def assemble(n_batches: int) -> int:
            done = images = epoch = 0
            while done < n_batches:
                g = epoch_generator(args.seed, epoch)
                for hp, lp in zip(hr_s.batches(g), lr_s.batches(g)):
                    b = make_batch(data, hp, lp, config.lr_rates, config.lr_method, g, "cpu")
                    images += len(b.hr_images) + len(b.lr_images)
                    done += 1
                    if done == n_batches:
                        break
                epoch += 1
            return images

        assemble(1)  # warm-up
        load = _load_check(f"{args.batches} batches of assembly")
        images, t_batches, _ = _timed(assemble, args.batches)
        loader_ips = images / t_batches
        rows += [("loader_batches_load1", load, "load"),
                 ("loader_batches", args.batches, "batches"),
                 ("loader_seconds_per_batch", t_batches / args.batches, "s"),
                 ("loader_images_per_s", loader_ips, "images/s")]
    if train_images_per_s is None and args.compare_train:
        print(f"[{args.profile} / cadnet] training for comparison: warm-up 1 + "
              f"{args.train_steps} timed steps")
        r = measure_train(args.profile, "cadnet", args.train_steps, count_flops=False,
                          budget_s=60.0)
        train_images_per_s = r["images_per_s"]
        rows += [("loader_compare_train_load1", r["load1"], "load"),
                 ("loader_compare_train_images_per_s", train_images_per_s, "images/s")]
    if train_images_per_s is not None:
        rows += [("loader_over_train_images_per_s", loader_ips / train_images_per_s, "x"),
                 ("loader_time_share_of_train_step", train_images_per_s / loader_ips,
                  "fraction")]
    _print_rows(rows)
    print(f"decode (first ImageStore construction, incl. writing the {cache_mib:.0f} MiB .npy "
          f"cache, ~{t_write:.2f} s of it): {t_decode:.2f} s; from the .npy cache (second "
          f"construction): {t_cache:.3f} s")
    print(f"batch assembly as the engine does it (IdentitySampler per epoch + make_batch: "
          f"uint8 -> float, flips, LR synthesis): {loader_ips:.0f} images/s")
    if train_images_per_s is not None:
        print(f"{args.profile} CAD-Net training: {train_images_per_s:.1f} images/s -> the data "
              f"path is {loader_ips / train_images_per_s:.0f}x faster, i.e. "
              f"{train_images_per_s / loader_ips:.1%} of a training step if run serially")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (1 min)")
    return rows


# --------------------------------------------------------------------------------------------
# optimiser step


def run_optim(args) -> list[Row]:
    """Seconds of one E/G/F/C optimiser step (SGD, momentum, weight decay) per profile with
    PyTorch's three implementations: for-loop, foreach and fused; random gradients."""
    if args.threads:
        torch.set_num_threads(args.threads)
    rows: list[Row] = []
    for prof in [p for p in args.profiles.split(",") if p]:
        task = make_task(prof, "cadnet")
        params = [p for p in task.model.generator_parameters() if p.requires_grad]
        for p in params:
            p.grad = torch.randn_like(p)
        n = sum(p.numel() for p in params)
        best = {}
        for impl in ("forloop", "foreach", "fused"):
            kw = {"foreach": False} if impl == "forloop" else {impl: True}
            opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9, weight_decay=5e-4, **kw)
            opt.step()  # creates the momentum buffers
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                opt.step()
                times.append(time.perf_counter() - t0)
            best[impl] = min(times)
            rows.append((f"optim_{prof}_{impl}_ms", best[impl] * 1e3, "ms"))
        print(f"[{prof}] SGD step over {n / 1e6:.1f} M parameters: " + ", ".join(
            f"{k} {v * 1e3:.1f} ms" for k, v in best.items()))
        del task, params
        gc.collect()
    return rows


# --------------------------------------------------------------------------------------------
# run_all.py --table 1 on SynthMLR


def run_table1(args) -> list[Row]:
    """Wall time and peak RSS of ``python run_all.py --table 1`` with no data (SynthMLR, the
    no-data default), in a subprocess from a temporary output folder."""
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    # the child reports its own peak RSS (RUSAGE_CHILDREN would also hold every earlier
    # child of this process, e.g. the spawned training measurements of ``all``)
    wrapper = ("import resource, runpy, sys\n"
               "rss_file, sys.argv = sys.argv[1], sys.argv[2:]\n"
               "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
               "finally:\n    open(rss_file, 'w').write("
               "str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n")
    with tempfile.TemporaryDirectory(prefix="mlr-perf-table1-") as tmp:
        rss_file = Path(tmp) / "maxrss_kib"
        cmd = [sys.executable, "-c", wrapper, str(rss_file), str(repo / "run_all.py"),
               "--table", "1", "--data-root", str(Path(tmp) / "no-data"),
               "--out", str(Path(tmp) / "out")]
        load = _load_check("run_all.py --table 1 (SynthMLR)")
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"run_all.py --table 1 failed ({proc.returncode}):\n"
                               f"{proc.stderr[-2000:]}")
        rows_written = len((Path(tmp) / "out" / "table1.csv").read_text().splitlines()) - 1
        peak = int(rss_file.read_text()) * 1024  # ru_maxrss is in KiB on Linux
    rows = [("table1_synthetic_load1", load, "load"),
            ("table1_synthetic_wall_s", wall, "s"),
            ("table1_synthetic_peak_rss", _mib(peak), "MiB"),
            ("table1_synthetic_rows", rows_written, "rows")]
    print(f"python run_all.py --table 1 (no data: SynthMLR, smoke profile, 1 trial): "
          f"{wall:.0f} s wall, peak RSS {_mib(peak):.0f} MiB, {rows_written} table rows")
    return rows


# --------------------------------------------------------------------------------------------
# all


def run_all(args) -> list[Row]:
    parser = build_parser()
    common = ["--threads", str(args.threads)]
    print("=== eval ===")
    rows = [("eval_" + n, v, u) for n, v, u in run_eval(parser.parse_args(
        ["eval", "--reference-queries", str(args.reference_queries), *common]))]
    print("=== train ===")
    profiles = "cpu" if args.skip_paper else "cpu,paper"
    train_rows = run_train(parser.parse_args(
        ["train", "--profiles", profiles, "--methods", args.methods, *common]
        + (["--profile-ops"] if args.profile_ops else [])
        + (["--compile"] if args.compile else [])))
    rows += train_rows
    print("=== loader ===")
    cpu_ips = dict((n, v) for n, v, _ in train_rows).get("train_cpu_cadnet_images_per_s")
    rows += run_loader(parser.parse_args(
        ["loader", "--profile", "cpu", "--data-root", str(args.data_root), *common]),
        train_images_per_s=cpu_ips)
    print("=== optimiser step ===")
    rows += run_optim(parser.parse_args(["optim", "--profiles", profiles, *common]))
    if not args.skip_table1:
        print("=== run_all.py --table 1 (SynthMLR) ===")
        rows += run_table1(parser.parse_args(["table1"]))
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

    t = sub.add_parser("train", help="training speed, FLOPs, memory and matmul-peak fraction")
    t.add_argument("--profiles", default="paper,cpu", help="comma-separated (paper, cpu, smoke)")
    t.add_argument("--methods", default="cadnet,hr-only",
                   help="comma-separated CAD-Net presets or engine baselines")
    t.add_argument("--steps", type=int, default=0,
                   help="timed steps after 1 warm-up (0: 3 for paper, 5 otherwise)")
    t.add_argument("--num-classes", type=int, default=316, help="classifier size (VIPeR: 316)")
    t.add_argument("--matmul-size", type=int, default=4096, help="n of the n x n torch.mm peak")
    t.add_argument("--matmul-repeats", type=int, default=3)
    t.add_argument("--compile", action="store_true",
                   help="also time the step with torch.compile'd networks (run_all.py --compile); "
                   "compilation takes minutes on 2 cores")
    t.add_argument("--profile-ops", action="store_true",
                   help="torch.profiler over 2 more steps: conv / matmul / other CPU time")
    t.add_argument("--step-budget", type=float, default=90.0,
                   help="seconds of timed steps per (profile, method) at most, judged from the "
                        "warm-up step (at least 1 step is timed; 0: no cap)")
    t.add_argument("--in-process", action="store_true",
                   help="measure in this process instead of one fresh process per (profile, "
                        "method) (faster start; memory figures then include reused heap)")
    t.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    t.add_argument("--out", type=Path, default=None, help="write DIR/perf.csv")
    t.set_defaults(func=run_train)

    ld = sub.add_parser("loader", help="images/s of the data path (real VIPeR) alone")
    ld.add_argument("--profile", default="cpu", help="input size and batch of this profile")
    ld.add_argument("--batches", type=int, default=100, help="batches to assemble (timed)")
    ld.add_argument("--data-root", type=Path, default=_default_data_root(),
                    help="data root holding viper/VIPeR (default: ../shared/data beside the "
                         "repository, or $MLR_SHARED/data)")
    ld.add_argument("--ids", type=int, default=0,
                    help="keep VIPeR identities with pid < N only (0: all; for quick checks)")
    ld.add_argument("--seed", type=int, default=0)
    ld.add_argument("--compare-train", action="store_true",
                    help="also time CAD-Net training steps of the profile; report the ratio")
    ld.add_argument("--train-steps", type=int, default=3, help="timed steps for --compare-train")
    ld.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    ld.add_argument("--out", type=Path, default=None, help="write DIR/perf.csv")
    ld.set_defaults(func=run_loader)

    o = sub.add_parser("optim", help="optimiser step: for-loop vs foreach vs fused SGD")
    o.add_argument("--profiles", default="cpu,paper")
    o.add_argument("--repeats", type=int, default=5)
    o.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    o.add_argument("--out", type=Path, default=None, help="write DIR/perf.csv")
    o.set_defaults(func=run_optim)

    t1 = sub.add_parser("table1", help="wall time of `run_all.py --table 1` with no data")
    t1.add_argument("--out", type=Path, default=None, help="write DIR/perf.csv")
    t1.set_defaults(func=run_table1)

    a = sub.add_parser("all", help="eval + train (cpu and paper) + loader + optim + table1")
    a.add_argument("--skip-paper", action="store_true",
                   help="leave out the paper profile (its steps take minutes on 2 cores)")
    a.add_argument("--skip-table1", action="store_true",
                   help="leave out timing run_all.py --table 1 on SynthMLR (~2.5 min)")
    a.add_argument("--compile", action="store_true", help="as for train")
    a.add_argument("--methods", default="cadnet,hr-only")
    a.add_argument("--profile-ops", action="store_true")
    a.add_argument("--reference-queries", type=int, default=-1, help="as for eval")
    a.add_argument("--data-root", type=Path, default=_default_data_root())
    a.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    a.add_argument("--out", type=Path, default=None, help="write DIR/perf.csv")
    a.set_defaults(func=run_all)
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
        print(f"wrote {_write_csv(rows, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
