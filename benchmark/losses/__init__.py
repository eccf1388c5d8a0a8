"""CAD-Net losses (paper Eqs. 1-6) and the one-step training update.

- :mod:`benchmark.losses.terms`: one function per equation (which parameters each updates
  is tabulated there).
- :mod:`benchmark.losses.cadnet`: :func:`cadnet_losses` (all losses of one step, with the
  Table 3 ablation switches) and :func:`cadnet_train_step` (the whole update, in the order
  E/G/F/C, D_F, D_I).
"""

from .cadnet import CrossResolutionBatch, as_batch, cadnet_losses, cadnet_train_step, frozen
from .terms import (
    classification_loss,
    feature_adversarial_loss,
    identity_loss,
    image_adversarial_loss,
    pairwise_distances,
    reconstruction_loss,
    total_generator_loss,
    triplet_loss,
)

__all__ = [
    "CrossResolutionBatch",
    "as_batch",
    "cadnet_losses",
    "cadnet_train_step",
    "classification_loss",
    "feature_adversarial_loss",
    "frozen",
    "identity_loss",
    "image_adversarial_loss",
    "pairwise_distances",
    "reconstruction_loss",
    "total_generator_loss",
    "triplet_loss",
]
