"""``sing``: scale-specific SR sub-networks trained jointly with re-ID (after SING).

SING ("Deep Low-Resolution Person Re-Identification", Jiao, Zheng, Li, Guo, Xie, Xu,
AAAI 2018; Super-resolution and Identity joiNt learninG) puts an SRCNN-like super-resolution
sub-network in front of a re-ID network and trains the two jointly (SR reconstruction loss +
re-ID loss), one SR network per scale factor, and handles queries of unknown resolution
(the MLR setting it introduced) by fusing the scale-specific models. What is built here
(conventions shared by the SR baselines, e.g. that the harness gives LR images already
up-sampled to H x W and never says whether an image is a query: ``baselines/sr.py``):

* **SR branches.** One :class:`baselines.sr.SRCNN` (9-1-5, n1 = 2 * ``decoder_width``: 64 /
  32 as SRCNN in the paper profile, 32 / 16 cpu, 16 / 8 smoke) per seen rate s in
  ``config.lr_rates`` (2, 3, 4), working on the interpolated image as SRCNN does.
* **Re-ID network.** One :class:`baselines.reid.ReIDNet` shared by all branches (the
  profile's trunk, GAP, FC), ID + batch-hard triplet loss.
* **Training data per step.** Branch s is trained on its own scale: the HR originals of the
  engine's LR batch (``lr_targets``) down-sampled by s and up-sampled back with the run's
  ``lr_method`` (so each branch sees the whole LR batch at its rate; the engine's
  ``lr_images``, whose per-image rates the method is not told, are not used). Every HR image
  of the step goes through one branch (image i through branch i mod 3, so each identity's K
  images are spread over the branches) with itself as the SR target: the "x1" case.
* **Loss.** ``lambda_rec * [sum_s MSE(SR_s(x_s), x_H) + MSE(SR(x_H), x_H)]`` (each branch
  gets weight 1 on its own scale, MSE in [0, 1] units) ``+ lambda_id * [CE(HR) + mean_s
  CE(LR_s)] + lambda_tri * [tri(HR) + mean_s tri(LR_s)]`` (HR and LR weighted equally, as
  CAD-Net's Eq. 4-5), one joint re-ID forward over the 32 + 3 x 32 SR outputs; the re-ID
  loss also updates the SR branches (SING's joint learning), with its gradient scaled by
  ``REID_GRAD_TO_SR`` = 0.01 where it enters them (``baselines.sr.scale_grad``: at 1, a
  randomly initialised re-ID network's input gradients degrade the SR outputs, measured:
  after 60 smoke steps the branches' outputs were 0.5 dB *below* the bilinear input and the
  SR loss 75 % higher; csrgan's cascade is wrecked outright).
* **Test time (no oracle rate).** Every image x, query or gallery, goes through every
  branch; the feature is the concatenation ``[GAP(R(SR_2(x))), GAP(R(SR_3(x))),
  GAP(R(SR_4(x)))]`` (size 3d), so the Euclidean distance between two images is the root of
  the sum of the three branches' squared distances: SING's multi-scale fusion, done at
  feature level. ``recover(x)`` (Table 2, Figure 3) is the mean of the branches' outputs.
  The alternative, estimating the rate of a query and using one branch, needs an estimator
  SING does not have and fails on unseen rates; fusion needs nothing.

Differences from SING (for the README's deviation list; SING's own design is given here
from our reading of the paper, not re-checked against its text while writing this):

* SING trains a separate SING model for each scale factor and fuses the models at test
  time; here the branches share one re-ID network and are trained together (one model,
  one run); fusion is concatenation of the branches' features.
* SING's HR gallery images go straight into the re-ID network. The harness does not tell a
  method which images are gallery images, so here they go through the SR branches like
  queries; to make that harmless the branches are residual (start as the identity) and are
  also trained on HR images with the HR image as target ("x1" pairs), and the re-ID network
  is trained on those outputs. Not in SING.
* SRCNN with padding, a zero-initialised global residual (VDSR style) and clamping to
  [0, 1]; SING's SRCNN-like sub-network predicts the image directly.
* The re-ID network is the profile's ResNet trunk with ID + batch-hard triplet loss, not
  SING's own re-ID CNN and softmax loss; SGD with CAD-Net's settings (``model_optim``) for
  everything; SR loss weight ``lambda_rec`` = 1 and re-ID-to-SR gradient weight 0.01
  (ours; SING's weighting is not reproduced). No separate SR pre-training stage: everything
  is trained jointly from the start, for the profile's epochs.
* Branches exist for the seen rates only (2, 3, 4): an r = 8 query (the paper's "unseen"
  setting) goes through the same three-branch fusion as any other image.
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
        self.feature_dim = len(self.scales) * self.reid.feature_dim

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
