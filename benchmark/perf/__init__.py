"""Performance reports (benchmarks, not tests): ``python -m benchmark.perf <command>``.

One module per command, each with its own arguments and description:

* ``eval`` (:mod:`.eval`): features -> distances -> CMC + mAP at Market-1501 scale, against
  the previous implementation (:mod:`.previous`) in the same run.
* ``train`` (:mod:`.train`): training speed, FLOPs, memory and matmul-peak fraction of one
  engine step per (profile, method); ``--profile-ops`` (:mod:`.profiling`).
* ``loader`` (:mod:`.loader`): images/s of the data path alone on the real VIPeR images.
* ``optim`` (:mod:`.optim`): SGD step with the for-loop, foreach and fused implementations.
* ``table1`` (:mod:`.table1`): wall time and peak RSS of ``run_all.py --table 1`` with no data.
* ``all`` (:mod:`.all`): all of the above in one run, one perf.csv.

:mod:`.common` holds the shared measuring (peak RSS meter, matmul peak, load check) and
output (row table, ``perf.csv``); :mod:`.tasks` builds a method's engine task from its name.
Every timed command prints the 1-minute load average before each measurement (and a row
``*_load1``): on a shared machine other jobs make timings noisy (slower) and the output says
so when the load exceeds the torch thread count. ``--out DIR`` writes ``DIR/perf.csv``
(columns name, value, unit).
"""

from .cli import build_parser, main
from .common import matmul_peak_gflops
from .eval import market_scale_problem
from .tasks import make_task

__all__ = ["build_parser", "main", "make_task", "market_scale_problem",
           "matmul_peak_gflops"]
