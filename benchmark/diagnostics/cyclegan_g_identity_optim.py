"""How fast CycleGAN's generator G learns the identity mapping: SGD vs CycleGAN's Adam.

Builds a fresh ``cyclegan`` task (cpu profile, random init, seed 0) and trains two copies of
its G for 100 steps of L1(G(x), x) on random batches of 32 HR training images of trial 0's
MLR-VIPeR split: one with the profile's SGD (lr 1e-3, momentum 0.9, wd 5e-4), one with
CycleGAN's Adam (lr 2e-4, betas 0.5 / 0.999); prints the L1 every 25 steps. Only the
copies are trained; no cached model or setting changes.

    python -m benchmark.diagnostics.cyclegan_g_identity_optim --data-root ../shared/data \\
        > results/reference/cpu-viper-scratch/diagnostics/cyclegan_g_identity_optim.txt
"""

from __future__ import annotations

import argparse
import copy
import sys

import torch
from torch.nn import functional as F

from benchmark.diagnostics import add_common_arguments, reference_config

OPTIMISERS = (
    ("sgd 1e-3 m0.9",
     lambda p: torch.optim.SGD(p, lr=1e-3, momentum=0.9, weight_decay=5e-4)),
    ("adam 2e-4 b0.5", lambda p: torch.optim.Adam(p, lr=2e-4, betas=(0.5, 0.999))),
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmark.diagnostics.cyclegan_g_identity_optim",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=100, help="steps per optimiser (default 100)")
    add_common_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    from benchmark.experiment import image_store, load_checked, open_manifest
    from benchmark.validate import make_task

    cfg = reference_config(args.data_root, args.out, ["cyclegan"], 1, stored_only=False)
    man = open_manifest(cfg, load_checked(cfg, "viper"), 0)
    store = image_store(cfg, man)
    train = man.rows("train")
    train = train[train.rate == 1]
    x_all = store.batch(store.indices(man.abspaths(train)))
    torch.manual_seed(0)
    _, task = make_task("cyclegan", "cpu", 316, 0, None)
    g0 = task.model.g_lr2hr
    print("profile model_optim:", task.config.model_optim)
    for name, make in OPTIMISERS:
        g = copy.deepcopy(g0).train()
        opt = make(g.parameters())
        gen = torch.Generator().manual_seed(1)
        for step in range(args.steps + 1):
            x = x_all[torch.randint(len(x_all), (32,), generator=gen)]
            loss = F.l1_loss(g(x), x)
            if step % 25 == 0:
                print(name, "step", step, f"L1 {loss.item():.4f}", flush=True)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return 0


if __name__ == "__main__":
    sys.exit(main())
