"""``train``: training speed of one engine step (``task.train_step``) per (profile, method).

Random images in [0, 1] at the profile's input size, batch P x K HR + LR as the profile says
(32 + 32 for ``paper`` and ``cpu``), built exactly as the runner does
(:func:`benchmark.perf.tasks.make_task`). One warm-up step, then N timed steps (default 3 for
``paper``, 5 otherwise). Reported: training images/s (HR + LR images fed per step / mean
seconds per step; ``hr-only`` ignores the LR half, so it *processes* half of them), seconds
per step (mean and best), peak VmRSS (sampled as in ``eval``) over the warm-up and timed
steps, both absolute and above the VmRSS before the task was built (model, gradients,
optimiser state and activations at this batch: the training memory estimate on CPU), FLOPs
of one whole step (forward + backward of every network, all optimisers) counted by
``torch.utils.flop_counter.FlopCounterMode`` around the warm-up step and divided by the
images fed, the forward FLOPs per image of the test feature extraction
(``model.extract_features`` in eval mode), the float32 ``torch.mm`` peak of this machine
measured in the same run with the same thread count (best of several n x n products,
measured before and after the training measurements; the larger is used), and the achieved
fraction (step FLOPs / mean step seconds) / peak. FlopCounterMode counts convolutions and
matrix products (2 FLOPs per multiply-add) and nothing else (batch norm, activations,
pooling, losses and optimiser updates are not counted), so the fraction is that of the
counted work. ``--profile-ops`` adds a ``torch.profiler`` pass over 2 steps: share of self
CPU time in convolution ops vs matrix products vs everything else. ``--compile`` also times
the step with torch.compile'd networks next to eager.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import time

import torch

from .common import (
    PeakRSS,
    Row,
    add_out_argument,
    add_threads_argument,
    load_check,
    matmul_peak_gflops,
    mib,
    print_rows,
    rss_bytes,
    set_threads,
)
from .profiling import profile_ops
from .tasks import engine_methods, make_task, random_batch

NAME = "train"
HELP = "training speed, FLOPs, memory and matmul-peak fraction"


def add_arguments(t: argparse.ArgumentParser) -> None:
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
    add_threads_argument(t)
    add_out_argument(t)


# --------------------------------------------------------------------------------------------
# measuring one (profile, method)


def _timed_steps(task, batch, steps: int, count_flops: bool, budget_s: float):
    """Warm-up step (FLOP-counted when asked) + timed steps, under a peak-RSS meter:
    (warm-up seconds, step seconds, step FLOPs or None, meter)."""
    from torch.utils.flop_counter import FlopCounterMode

    flops, times = None, []
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        if count_flops:
            with FlopCounterMode(display=False) as fc:
                task.train_step(batch)  # the warm-up step, counted
            flops = float(fc.get_total_flops())
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
    return t_warm, times, flops, mem


def measure_train(profile: str, method: str, steps: int, *, num_classes: int = 316,
                  count_flops: bool = True, ops: bool = False, threads: int = 0,
                  budget_s: float = 0.0, compiled: bool = False) -> dict[str, float]:
    """Warm-up step (FLOP-counted when ``count_flops``) + ``steps`` timed train steps.

    ``budget_s`` > 0 caps the timed steps at what fits in that many seconds at the warm-up
    step's speed (at least 1; said when it happens). ``compiled``: the networks are
    torch.compiled as ``run_all.py --compile`` does (the warm-up step then includes the
    compilation; FLOPs are not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    set_threads(threads)
    gc.collect()
    rss_before = rss_bytes()
    task = make_task(profile, method, num_classes)
    if compiled:
        task.compile()
        count_flops = ops = False
    batch = random_batch(task.config)
    images = len(batch.hr_images) + len(batch.lr_images)
    res: dict[str, float] = {"images_per_step": images}
    load = load_check(f"{profile}/{method}")
    t_warm, times, flops, mem = _timed_steps(task, batch, steps, count_flops, budget_s)
    if flops is not None:
        res["flops_per_step"] = flops
    print(f"  warm-up {t_warm:.2f} s; timed steps (s): {', '.join(f'{t:.2f}' for t in times)}")
    res.update(load1=load, seconds_per_step=sum(times) / len(times), warmup_seconds=t_warm,
               seconds_per_step_best=min(times), timed_steps=len(times),
               threads=torch.get_num_threads())
    res["images_per_s"] = images / res["seconds_per_step"]
    if mem.peak is not None and rss_before is not None:
        res["rss_before_task"] = mib(rss_before)
        res["peak_rss"] = mib(mem.peak)
        res["peak_rss_above_pre_task"] = mib(mem.peak - rss_before)
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


# --------------------------------------------------------------------------------------------
# the command


def _matmul_peak(args, what: str) -> float:
    load_check(what)
    return matmul_peak_gflops(args.matmul_size, args.matmul_repeats)


def _measure_one(args, prof: str, method: str, threads: int) -> dict:
    """Eager (and with ``--compile`` also compiled) measurement of one (profile, method)."""
    steps = args.steps or (3 if prof == "paper" else 5)
    print(f"[{prof} / {method}] warm-up 1 step (FLOP-counted) + {steps} timed steps")
    measure = measure_train if args.in_process else _measure_isolated
    r = measure(profile=prof, method=method, steps=steps, num_classes=args.num_classes,
                ops=args.profile_ops, threads=threads, budget_s=args.step_budget)
    if args.compile:
        print(f"[{prof} / {method}] torch.compile: 1 step (compiles) + {steps} timed")
        rc = measure(profile=prof, method=method, steps=steps, num_classes=args.num_classes,
                     threads=threads, budget_s=args.step_budget, compiled=True)
        r.update(compiled_images_per_s=rc["images_per_s"],
                 compile_warmup_seconds=rc["warmup_seconds"],
                 compile_speedup=rc["images_per_s"] / r["images_per_s"])
        print(f"  compiled: {rc['images_per_s']:.1f} images/s "
              f"({r['compile_speedup']:.2f}x eager), first step "
              f"{rc['warmup_seconds']:.0f} s (compilation)")
    print(f"  {r['images_per_s']:.1f} images/s, {r['seconds_per_step']:.3f} s/step "
          f"(best {r['seconds_per_step_best']:.3f}), "
          f"{r['flops_per_step'] / r['images_per_step'] / 1e9:.2f} GFLOP/image, "
          f"peak RSS {r.get('peak_rss', math.nan):.0f} MiB")
    return r


def _method_rows(prof: str, method: str, r: dict, peak: float) -> list[Row]:
    n = f"train_{prof}_{method}_"
    achieved = r["flops_per_step"] / r["seconds_per_step"] / 1e9
    rows = [(n + "load1", r["load1"], "load"),
            (n + "timed_steps", r["timed_steps"], "steps"),
            (n + "images_per_step", r["images_per_step"], "images"),
            (n + "images_per_s", r["images_per_s"], "images/s"),
            (n + "seconds_per_step", r["seconds_per_step"], "s"),
            (n + "seconds_per_step_best", r["seconds_per_step_best"], "s"),
            (n + "warmup_seconds", r["warmup_seconds"], "s"),
            (n + "rss_before_task", r.get("rss_before_task", math.nan), "MiB"),
            (n + "peak_rss", r.get("peak_rss", math.nan), "MiB"),
            (n + "peak_rss_above_pre_task", r.get("peak_rss_above_pre_task", math.nan), "MiB"),
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
    return rows


def _print_notes(in_process: bool) -> None:
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
                                 "be reused: the growth can be understated)" if in_process
                                 else "in a fresh process per (profile, method)"))


def run(args) -> list[Row]:
    from ..profiles import get_profile

    set_threads(args.threads)
    profiles = [p for p in args.profiles.split(",") if p]
    methods = [m for m in args.methods.split(",") if m]
    for prof in profiles:
        get_profile(prof)  # unknown names fail now, before any measurement
    known = engine_methods()
    bad = [m for m in methods if m not in known]
    if bad:
        raise ValueError(f"not engine-trained method(s) {bad}; known: {', '.join(known)}")
    threads = torch.get_num_threads()
    print(f"machine: {os.cpu_count()} CPU cores, torch threads {threads}, torch "
          f"{torch.__version__}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; "
          f"batches of random images in [0, 1], num_classes "
          f"{args.num_classes}, pretrained=none")
    peak0 = _matmul_peak(args, "matmul peak")
    print(f"  float32 torch.mm {args.matmul_size}x{args.matmul_size}, best of "
          f"{args.matmul_repeats}: {peak0:.1f} GFLOP/s")
    results: dict[tuple[str, str], dict] = {}
    for prof in profiles:
        for method in methods:
            results[prof, method] = _measure_one(args, prof, method, threads)
    peak1 = _matmul_peak(args, "matmul peak (again)")
    peak = max(peak0, peak1)
    print(f"  float32 torch.mm again: {peak1:.1f} GFLOP/s; peak used: {peak:.1f} GFLOP/s")

    rows: list[Row] = [("train_torch_threads", threads, "threads"),
                       ("train_matmul_size", args.matmul_size, "n"),
                       ("train_matmul_peak_before", peak0, "GFLOP/s"),
                       ("train_matmul_peak_after", peak1, "GFLOP/s"),
                       ("train_matmul_peak", peak, "GFLOP/s")]
    for (prof, method), r in results.items():
        rows += _method_rows(prof, method, r, peak)
    print_rows(rows)
    _print_notes(args.in_process)
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (1 min)")
    return rows
