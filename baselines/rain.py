"""``rain``: feature-level resolution alignment only (after RAIN, Chen et al., AAAI 2019).

RAIN ("Learning Resolution-Invariant Deep Representations for Person Re-Identification",
Chen, Li, Du, Wang, AAAI 2019) is the authors' precursor of CAD-Net: a re-ID network whose
features are made resolution-invariant by adversarial learning against a resolution
discriminator. CAD-Net's related-work section describes it as aligning the feature
distributions of HR and LR images, and names what CAD-Net adds: recovering the HR details
(G, D_I) and re-identifying from them (F, v = [f, g]).

What this baseline is: CAD-Net without G, F and D_I, i.e. E + C + D_F:

* E + C exactly as ``lr-aug`` (:class:`baselines.reid.ReIDNet`), trained with L_cls (ID +
  batch-hard triplet on the HR and the LR half of each step, CAD-Net's Eqs. 4-5);
* D_F = CAD-Net's feature discriminator on f (``config.df_variant``, ``df_width``; Tsai et
  al.'s fully convolutional discriminator by default) with CAD-Net's Eq. 1 and weight
  ``lambda_adv_df`` (1, as the paper sets every lambda);
* the update is CAD-Net's own code, :func:`benchmark.losses.cadnet_train_step` with L_rec
  and L_adv^{D_I} switched off: E/C step on L_cls + lambda_adv_df * L_adv^{D_F} (generator
  side, non-saturating, only f_L pushed towards HR) with D_F frozen, then a D_F step on the
  detached f_H, f_L with ``config.disc_optim``;
* test feature GAP(f), Euclidean.

Differences from the RAIN paper (from our reading of it; the architectural points are not
verified against its full text):

* RAIN places resolution discriminators on feature maps of *several* layers of the encoder
  (multi-level alignment); we align only the final map f, as CAD-Net's D_F does;
* RAIN also trains an HR decoder with a reconstruction loss as part of its network; we have
  no decoder at all (feature-level alignment is the only resolution-specific ingredient, so
  the gap between ``lr-aug`` and ``rain`` measures feature alignment alone and the gap
  between ``rain`` and ``cadnet-f`` what G / D_I / L_rec add);
* RAIN's loss weights, discriminator architecture and schedule are not used: every setting
  is CAD-Net's (profile backbone, optimisers, margin, lambdas), so the comparison with
  CAD-Net isolates the method, not the tuning;
* RAIN's semi-supervised extension is not reproduced.
"""

from __future__ import annotations

from benchmark.models import build_feature_discriminator, make_optimizer
from benchmark.profiles import Method
from benchmark.registry import register_method

from .reid import ReIDNet, ReIDTask

RAIN = Method("rain", feature_mode="f", use_rec=False, use_adv_di=False, use_adv_df=True,
              description="RAIN-style: E + C (ID + triplet on HR and LR) + D_F on f (Eq. 1)")


class RAINNet(ReIDNet):
    """E + C (:class:`ReIDNet`) plus ``feature_discriminator`` D_F on f (random init)."""

    def __init__(self, config, num_classes: int | None = None) -> None:
        super().__init__(config, num_classes)
        self.feature_discriminator = build_feature_discriminator(
            config.df_variant, self.feature_dim, self.feature_hw, config.df_width)
        self.init_record["D_F"] = "random"


@register_method("rain")
class RAINTask(ReIDTask):
    """Feature-level adversarial alignment only (after RAIN, Chen et al., AAAI 2019): E + C
    with ID + triplet on HR and LR images plus CAD-Net's D_F on f.

    Reproduced: resolution-invariant features learned adversarially, end to end, with LR
    queries matched directly (no super-resolution). Not reproduced: RAIN's multi-level
    discriminators, its HR decoder / reconstruction loss and its own hyper-parameters (see
    the module docstring). Update order as CAD-Net: E/C with D_F frozen, then D_F.
    """

    preset = RAIN

    def build_model(self, config) -> RAINNet:
        if not config.use_adv_df:
            raise ValueError("rain needs use_adv_df=True (its only resolution-specific loss)")
        return RAINNet(config)

    def build_optimizers(self, model, config) -> dict:
        return {"model": make_optimizer(model.generator_parameters(), config.model_optim),
                "d_f": make_optimizer(model.feature_discriminator.parameters(),
                                      config.disc_optim)}


__all__ = ["RAIN", "RAINNet", "RAINTask"]
