"""``table1``: wall time and peak RSS of ``python run_all.py --table 1`` with no data
(SynthMLR, the no-data default) in a subprocess from a temporary output folder."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import REPO, Row, add_out_argument, load_check, mib

NAME = "table1"
HELP = "wall time of `run_all.py --table 1` with no data"

# the child reports its own peak RSS (RUSAGE_CHILDREN would also hold every earlier child of
# this process, e.g. the spawned training measurements of ``all``)
_WRAPPER = ("import resource, runpy, sys\n"
            "rss_file, sys.argv = sys.argv[1], sys.argv[2:]\n"
            "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
            "finally:\n    open(rss_file, 'w').write("
            "str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n")


def add_arguments(t1: argparse.ArgumentParser) -> None:
    add_out_argument(t1)


def run(args) -> list[Row]:
    """Wall time and peak RSS of ``python run_all.py --table 1`` with no data (SynthMLR, the
    no-data default), in a subprocess from a temporary output folder."""
    with tempfile.TemporaryDirectory(prefix="mlr-perf-table1-") as tmp:
        rss_file = Path(tmp) / "maxrss_kib"
        cmd = [sys.executable, "-c", _WRAPPER, str(rss_file), str(REPO / "run_all.py"),
               "--table", "1", "--data-root", str(Path(tmp) / "no-data"),
               "--out", str(Path(tmp) / "out")]
        load = load_check("run_all.py --table 1 (SynthMLR)")
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"run_all.py --table 1 failed ({proc.returncode}):\n"
                               f"{proc.stderr[-2000:]}")
        rows_written = len((Path(tmp) / "out" / "table1.csv").read_text().splitlines()) - 1
        peak = int(rss_file.read_text()) * 1024  # ru_maxrss is in KiB on Linux
    rows = [("table1_synthetic_load1", load, "load"),
            ("table1_synthetic_wall_s", wall, "s"),
            ("table1_synthetic_peak_rss", mib(peak), "MiB"),
            ("table1_synthetic_rows", rows_written, "rows")]
    print(f"python run_all.py --table 1 (no data: SynthMLR, smoke profile, 1 trial): "
          f"{wall:.0f} s wall, peak RSS {mib(peak):.0f} MiB, {rows_written} table rows")
    return rows
