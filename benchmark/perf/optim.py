"""``optim``: one SGD step of E/G/F/C's parameters (cpu and paper profiles) with PyTorch's
for-loop, foreach and fused implementations, on random gradients."""

from __future__ import annotations

import argparse
import gc
import time

import torch

from .common import Row, add_out_argument, add_threads_argument, set_threads
from .tasks import make_task

NAME = "optim"
HELP = "optimiser step: for-loop vs foreach vs fused SGD"


def add_arguments(o: argparse.ArgumentParser) -> None:
    o.add_argument("--profiles", default="cpu,paper")
    o.add_argument("--repeats", type=int, default=5)
    add_threads_argument(o)
    add_out_argument(o)


def run(args) -> list[Row]:
    """Seconds of one E/G/F/C optimiser step (SGD, momentum, weight decay) per profile with
    PyTorch's three implementations: for-loop, foreach and fused; random gradients."""
    set_threads(args.threads)
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
