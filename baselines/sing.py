"""``sing``: scale-specific SR sub-networks trained jointly with re-ID (after SING).

SING ("Deep Low-Resolution Person Re-Identification", Jiao, Zheng, Li, Guo, Xie, Xu,
AAAI 2018) puts an SRCNN-like super-resolution sub-network in front of a re-ID network,
trains the two jointly, one SR network per scale factor, and handles queries of unknown
resolution by fusing the scale-specific models. Conventions shared by the SR baselines
(LR images arrive up-sampled to H x W; no method is told whether an image is a query):
``baselines/sr.py``.

* **SR branches.** One :class:`baselines.sr.SRCNN` (9-1-5, n1 = 2 * ``decoder_width``) per
  seen rate s in ``config.lr_rates`` (2, 3, 4), working on the interpolated image.
* **Re-ID network.** One :class:`baselines.reid.ReIDNet` shared by all branches (the
  profile's trunk, GAP, FC), ID + batch-hard triplet loss.
* **Training data per step.** Branch s gets the HR originals of the engine's LR batch
  (``lr_targets``) down-sampled by s and up-sampled back with ``lr_method``; the engine's
  ``lr_images``, whose rates the method is not told, are not used. HR image i of the step
  goes through branch i mod 3 with itself as the target (the "x1" case).
* **Loss.** ``lambda_rec * [sum_s MSE(SR_s(x_s), x_H) + MSE(SR(x_H), x_H)] + lambda_id *
  [CE(HR) + mean_s CE(LR_s)] + lambda_tri * [tri(HR) + mean_s tri(LR_s)]``, one re-ID
  forward over the 32 + 3 x 32 SR outputs; the re-ID loss reaches the branches with its
  gradient scaled by ``REID_GRAD_TO_SR`` (:func:`baselines.sr.scale_grad`).
* **Test time (no oracle rate).** Every image, query or gallery, goes through every branch;
  the feature is ``[GAP(R(SR_2(x))), GAP(R(SR_3(x))), GAP(R(SR_4(x)))]`` (size 3d): SING's
  multi-scale fusion at feature level. ``recover(x)`` is the mean of the branches' outputs.

Differences from SING (from our reading of the paper): one model whose branches share a
re-ID network and train together, instead of one SING model per scale; gallery images go
through the branches too, so the branches are residual (start as the identity) and are
trained on "x1" pairs; SRCNN with padding, a zero-initialised global residual and clamping
to [0, 1]; the profile's trunk with ID + triplet and CAD-Net's SGD (``model_optim``)
instead of SING's re-ID CNN and softmax; ``lambda_rec`` = 1 and the re-ID-to-SR weight
0.01 are ours; no SR pre-training; branches for the seen rates only (an r = 8 query goes
through the same fusion).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from baselines.reid import ReIDNet
from baselines.sr import (
    SRCNN,
    SRTask,
    check_scales,
    count_parameters,
    lr_at,
    reid_losses,
    rows,
    scale_grad,
    scale_key,
)
from benchmark.profiles import Method
from benchmark.registry import register_method

SING = Method("sing", feature_mode="f", use_adv_df=False, use_adv_di=False, use_rec=True,
              description="SING (Jiao et al. AAAI 2018): one SRCNN per seen rate + shared re-ID "
              "net, joint SR MSE (lambda_rec) + ID + triplet; test feature = concatenated "
              "re-ID features of every branch's output (multi-scale fusion)")


class SINGModel(nn.Module):
    """SR branches (``sr["x2"]`` ...) + one shared re-ID network (``reid``)."""

    def __init__(self, config, num_classes: int | None = None) -> None:
        super().__init__()
        self.config = config
        self.scales = check_scales(config.lr_rates)
        self.sr = nn.ModuleDict({scale_key(s): SRCNN(2 * config.decoder_width)
                                 for s in self.scales})
        self.reid = ReIDNet(config, num_classes)
        self.init = self.reid.init
        self.init_weights = self.reid.init_weights
        self.feature_dim = self.descriptor_dim = len(self.scales) * self.reid.feature_dim

    @property
    def branches(self) -> list[nn.Module]:
        return list(self.sr.values())

    def generator_parameters(self):
        yield from self.sr.parameters()
        yield from self.reid.generator_parameters()

    def discriminator_parameters(self):
        return iter(())

    @torch.no_grad()
    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[R(SR_s(x)) for s in scales]`` concatenated: (B, len(scales) * d)."""
        return torch.cat([self.reid.extract_features(b(x)) for b in self.branches], dim=1)

    @torch.no_grad()
    def recover(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of the branches' outputs, in [0, 1]."""
        return torch.stack([b(x) for b in self.branches]).mean(0)

    def parameter_counts(self) -> dict[str, int]:
        return count_parameters({"SR": self.sr, "reid": self.reid})


@register_method("sing")
class SINGTask(SRTask):
    """Engine task of ``sing`` (see the module docstring)."""

    preset = SING

    def build_model(self, config) -> nn.Module:
        return SINGModel(config)

    def losses(self, b):
        cfg, m = self.config, self.model
        branches, n = m.branches, len(b.hr_images)
        k = len(branches)
        # HR images: image i through branch i mod k, target itself (the x1 pairs)
        hr_in = [b.hr_images[j::k] for j in range(k)]
        hr_pids = torch.cat([b.hr_pids[j::k] for j in range(k)])
        hr_sr = torch.cat([br(x) for br, x in zip(branches, hr_in) if len(x)])
        hr_ref = torch.cat([x for x in hr_in if len(x)])
        # LR images: the LR batch's HR originals at each branch's own rate
        lr_sr = [br(lr_at(b.lr_targets, s, cfg.lr_method)) for br, s in zip(branches, m.scales)]
        pix = F.mse_loss(hr_sr.float(), hr_ref) + torch.stack(
            [F.mse_loss(y.float(), b.lr_targets) for y in lr_sr]).sum()
        out = m.reid(scale_grad(torch.cat([hr_sr, *lr_sr]), self.reid_grad_to_sr))
        nl = len(b.lr_images)
        l_id, l_tri = reid_losses(rows(out, 0, n), hr_pids, cfg)
        lr_terms = [reid_losses(rows(out, n + j * nl, n + (j + 1) * nl), b.lr_pids, cfg)
                    for j in range(k)]
        l_id = l_id + torch.stack([t[0] for t in lr_terms]).mean()
        l_tri = l_tri + torch.stack([t[1] for t in lr_terms]).mean()
        gen = {"id": l_id, "tri": l_tri, "sr": pix}
        gen["total"] = (cfg.lambda_id * l_id + cfg.lambda_tri * l_tri
                        + cfg.lambda_rec * pix)
        return gen, {}


__all__ = ["SING", "SINGModel", "SINGTask"]
