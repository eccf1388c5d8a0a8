"""Read-outs of trained reference models: questions the tables do not answer.

Each module is run from the repository root as ``python -m benchmark.diagnostics.<name>``
(``--help`` lists its options) and prints its result; the committed outputs are in
``results/reference/cpu-viper-scratch/diagnostics/`` and what they found is in
``results/reference/cpu-viper-scratch/NOTES.md``. They read the cached models and manifests under
``--out`` (default: the reference folder) and the images under ``--data-root``; none of them
changes a model or a setting.

* :mod:`benchmark.diagnostics.cadnet_fg_parts`: rank-1 of the f half, the g half and
  [f, g] of trained CAD-Net models.
* :mod:`benchmark.diagnostics.cyclegan_translation`: where ``cyclegan`` loses rank-1
  (translated vs raw queries and gallery, same trained re-ID network).
* :mod:`benchmark.diagnostics.cyclegan_g_identity_optim`: how fast CycleGAN's generator
  learns the identity mapping under SGD vs Adam.
* :mod:`benchmark.diagnostics.cadnet_recovery_gradients`: the colour error of CAD-Net's
  recovered images at strong edges, and which loss term's gradient moves them toward the
  original (outputs in ``results/reference/cpu-viper/diagnostics/`` and
  ``results/reference/cpu-market-resplit/diagnostics/``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

#: the reference results folder whose cached models the diagnostics read
REFERENCE_OUT = Path("results/reference/cpu-viper-scratch")


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    """``--data-root`` and ``--out``, as for ``run_all.py``."""
    p.add_argument("--data-root", type=Path, default=Path("data"),
                   help="folder holding viper/VIPeR (default ./data; the reference used "
                        "../shared/data)")
    p.add_argument("--out", type=Path, default=REFERENCE_OUT,
                   help=f"output folder of the reference run whose cached models are read "
                        f"(default {REFERENCE_OUT})")


def reference_config(data_root: Path, out: Path, methods: list[str], trials: int,
                     stored_only: bool, dataset: str = "viper"):
    """The ``RunConfig`` of the reference run (``dataset``, cpu profile) for ``methods``."""
    from benchmark.cli import build_parser, make_config

    argv = ["--table", "1", "--datasets", dataset, "--profile", "cpu", "--trials", str(trials),
            "--data-root", str(data_root), "--out", str(out), "--methods", ",".join(methods)]
    if stored_only:
        argv.append("--stored-only")
    return make_config(build_parser().parse_args(argv), methods)
