"""Measuring and reporting helpers shared by the benchmarks of :mod:`benchmark.perf`.

Peak resident set (:class:`PeakRSS`: VmRSS sampled from ``/proc/self/status`` every 5 ms by a
background thread, so numpy and torch allocations alike are seen), the float32 ``torch.mm``
peak of this machine (:func:`matmul_peak_gflops`), the load-average check printed before
each timed measurement, and the rows (name, value, unit) every benchmark returns: printed as
a table (:func:`print_rows`) and written as ``perf.csv`` (:func:`write_csv`).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import resource
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch

Row = tuple[str, float, str]

#: the repository root (holds run_all.py)
REPO = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------------------------
# memory


def rss_bytes() -> int | None:
    """Current VmRSS of this process in bytes (None where /proc is unavailable)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def maxrss_bytes() -> int:
    """High-water mark of this process's resident set (``getrusage`` ru_maxrss) in bytes."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024  # Linux reports KiB


class PeakRSS:
    """Peak VmRSS above the starting value while the ``with`` block runs (None if unknown)."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.peak_delta: int | None = None
        self.peak: int | None = None  # absolute peak VmRSS in bytes

    def __enter__(self):
        self._start = rss_bytes()
        self._peak = self._start
        self._stop = threading.Event()
        if self._start is not None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            v = rss_bytes()
            if v is not None and v > self._peak:
                self._peak = v
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        if self._start is not None:
            self._thread.join()
            v = rss_bytes()
            if v is not None:
                self._peak = max(self._peak, v)
            self.peak_delta = self._peak - self._start
            self.peak = self._peak
        return False


def timed(fn: Callable, *args, **kwargs):
    """(result, wall seconds, peak RSS growth in bytes or None)."""
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        wall = time.perf_counter() - t0
    return out, wall, mem.peak_delta


def mib(b: int | None) -> float:
    return float("nan") if b is None else b / 2**20


# --------------------------------------------------------------------------------------------
# machine


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


def load_check(what: str) -> float:
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


def set_threads(n: int) -> None:
    """``--threads``: 0 leaves torch's thread count as it is."""
    if n:
        torch.set_num_threads(n)


# --------------------------------------------------------------------------------------------
# arguments and output


def add_threads_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")


def add_out_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=None, help="write DIR/perf.csv")


def print_rows(rows: list[Row]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"{'name':<{width}}  {'value':>14}  unit")
    for name, value, unit in rows:
        print(f"{name:<{width}}  {value:>14.6g}  {unit}")


def write_csv(rows: list[Row], out: Path) -> Path:
    """``out/perf.csv`` with columns name, value, unit (values to 6 significant digits)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "perf.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "value", "unit"])
        for name, value, unit in rows:
            w.writerow([name, f"{value:.6g}", unit])
    return path
