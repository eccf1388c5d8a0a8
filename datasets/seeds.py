"""Every seed a run derives from ``--seed`` (and the trial), in one place.

A run has one user seed ``S``; each random choice draws from its own stream, derived here,
so that two choices never share a stream and a change in one never moves another:

==========================  ===============================================================
stream                      derived from
==========================  ===============================================================
split, query rates          :func:`trial_rng` ``(S, dataset, trial, purpose)``
network init, sampler       :func:`training_seed` ``S * 1000 + trial``
one training epoch          :func:`epoch_seed` ``training_seed * 1_000_003 + epoch``
single-shot gallery draws   :func:`evaluation_seed` ``S + trial``
validation hold-out         :func:`validation_rng` ``(S, 7919)``
validation rate draws       :func:`validation_draw_seed` ``draw``
LOMO+XQDA row subsample     :func:`lomo_rows_seed` ``S``
figure identity picks, t-SNE  :func:`figure_seed` ``S``
==========================  ===============================================================

SynthMLR's image generator has its own seed (the dataset's content, not an experiment
choice): see ``datasets/synthetic.py``.
"""

from __future__ import annotations

import zlib

import numpy as np


def trial_rng(seed: int, dataset: str, trial: int, purpose: str) -> np.random.Generator:
    """A generator fixed by (seed, dataset, trial, purpose); purposes never share streams."""
    key = [seed, trial, zlib.crc32(dataset.encode()), zlib.crc32(purpose.encode())]
    return np.random.default_rng(np.random.SeedSequence(key))


def training_seed(seed: int, trial: int) -> int:
    """Seed of a trial's training: network initialisation and the engine's sampler."""
    return seed * 1000 + trial


def epoch_seed(training: int, epoch: int) -> int:
    """Seed of all randomness of one epoch (batches, flips, LR rates): a resumed run replays
    epoch ``epoch`` exactly."""
    return training * 1_000_003 + epoch


def evaluation_seed(seed: int, trial: int) -> int:
    """Seed of the single-shot CMC's gallery draws of a trial."""
    return seed + trial


def validation_rng(seed: int) -> np.random.Generator:
    """Generator of the identities a validation split holds out of the training set."""
    return np.random.default_rng([seed, 7919])


def validation_draw_seed(draw: int) -> int:
    """Seed of the ``draw``-th draw of one rate per validation query."""
    return draw


def lomo_rows_seed(seed: int) -> int:
    """Seed of the order in which LOMO+XQDA subsamples its training rows."""
    return seed


def figure_seed(seed: int) -> int:
    """Seed of a figure's random choices (Figure 4's identities and t-SNE)."""
    return seed


__all__ = ["epoch_seed", "evaluation_seed", "figure_seed", "lomo_rows_seed", "training_seed",
           "trial_rng", "validation_draw_seed", "validation_rng"]
