"""``csrgan``: cascaded x2 SR-GAN stages followed by re-ID, trained jointly (after CSR-GAN).

CSR-GAN ("Cascaded SR-GAN for Scale-Adaptive Low Resolution Person Re-identification",
Wang, Ye, Wang, Li, Ma, Zhang, IJCAI 2018) cascades 2x SR-GANs (SRGAN, Ledig et al. 2017)
so that an LR image is super-resolved progressively, and trains the cascade together with a
re-ID network. Conventions shared by the SR baselines (LR images arrive up-sampled to
H x W; no method is told whether an image is a query): ``baselines/sr.py``.

* **Cascade.** ``n = ceil(log2(max seen rate))`` stages (2 for rates 2, 3, 4), each a
  :class:`baselines.sr.SRResNetStage`: SRGAN's x2 generator (SRResNet blocks, sub-pixel
  up-sampling) on the 2x-coarser grid of its full-size input, plus a residual path; width
  2 * ``decoder_width``, 4 residual blocks per stage.
* **Intermediate targets.** Images stay at H x W, so stage k is told its resolution level
  t_k = 2^(n-k) by its target: the HR original down-sampled by t_k and up-sampled back
  (``lr_method``); for n = 2 stage 1 produces the r = 2 version and stage 2 the HR image. An
  LR image already finer than t_k is its own stage-k target (its rate is read off the
  training pair, at training time only). HR images go through the cascade too, with
  themselves as every stage's target, because at test time the gallery does.
* **Losses** (one optimiser for the stages and the re-ID network): ``lambda_rec * sum_k
  MSE(stage_k, target_k)`` over the HR and LR halves ``+ lambda_adv_di * sum_k
  BCE(D_k(stage_k(x_L)), real)`` (non-saturating; ``lambda_adv_di`` = 1e-3, SRGAN's weight,
  set by :data:`CSRGAN`) ``+ lambda_id * [CE(HR) + CE(LR)] + lambda_tri * [tri(HR) +
  tri(LR)]`` on the last stage's images, back-propagated into every stage with its gradient
  scaled by ``REID_GRAD_TO_SR`` (:func:`baselines.sr.scale_grad`). One discriminator per
  stage, :class:`benchmark.models.ImageDiscriminator` (CAD-Net's D_I at width ``di_width``),
  BCE: real = stage k's targets of the LR half, fake = its detached outputs; stepped after
  the generators with ``config.disc_optim``.
* **Test time.** Every image, query or gallery, goes through the whole cascade and then the
  re-ID network; the feature is GAP of its last map. ``recover(x)`` is the last stage's
  output. No rate is needed: each stage leaves an image already at its level unchanged.

Differences from CSR-GAN (from our reading of the paper): no perceptual (VGG) loss, which
needs ImageNet VGG weights (the content loss is the pixel MSE only), and none of its other
re-ID-driven terms beyond ID + triplet; stages run at full size on the interpolated image
with down-sampled-and-re-up-sampled HR targets; HR gallery images go through the cascade
(trained on HR -> HR pairs for that); no separate SR-GAN pre-training, the re-ID gradient
into the cascade weighted 0.01 (ours); smaller generators (4 residual blocks, 3x3 end
convolutions), CAD-Net's D_I as the discriminator, CAD-Net's optimisers (SGD for the
generators and re-ID, the profile's ``disc_optim`` for the discriminators) and the profile's
trunk with ID + batch-hard triplet as the re-ID network.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from baselines.reid import ReIDNet
from baselines.sr import (
    SRResNetStage,
    SRTask,
    check_scales,
    count_parameters,
    lr_at,
    reid_losses,
    rows,
    scale_grad,
)
from benchmark.losses import frozen, image_adversarial_loss
from benchmark.models import ImageDiscriminator
from benchmark.profiles import Method
from benchmark.registry import register_method

#: residual blocks per stage (SRGAN uses 16)
STAGE_BLOCKS = 4


CSRGAN = Method("csrgan", feature_mode="f", use_adv_df=False, use_adv_di=True, use_rec=True,
                lambda_adv_di=1e-3,
                description="CSR-GAN (Wang et al. IJCAI 2018): cascaded x2 SRResNet stages with "
                "per-stage pixel MSE (lambda_rec) and BCE adversarial loss (one D per stage, "
                "lambda_adv_di = 1e-3 as SRGAN), re-ID (ID + triplet) on the last stage, joint; "
                "no perceptual loss")


def stage_levels(scales) -> list[int]:
    """Resolution level (down-sampling rate) each stage is trained to reach: 2^(n-k)."""
    n = max(1, math.ceil(math.log2(max(scales)) - 1e-9))
    return [2 ** (n - k) for k in range(1, n + 1)]


def estimate_rates(lr: torch.Tensor, hr: torch.Tensor, scales, method: str) -> torch.Tensor:
    """Which of ``scales`` reproduces each LR image from its HR original (training only);
    (B,) tensor on the images' device, no host synchronisation."""
    err = torch.stack([(lr_at(hr, s, method) - lr).abs().flatten(1).mean(1) for s in scales], 1)
    return torch.tensor(scales, device=lr.device, dtype=torch.float32)[err.argmin(1)]


class CSRGANModel(nn.Module):
    """``stages`` (the cascade), ``discriminators`` (one per stage), ``reid``."""

    def __init__(self, config, num_classes: int | None = None) -> None:
        super().__init__()
        self.config = config
        self.scales = check_scales(config.lr_rates)
        self.levels = stage_levels(self.scales)
        width = 2 * config.decoder_width
        self.stages = nn.ModuleList(SRResNetStage(width, STAGE_BLOCKS) for _ in self.levels)
        mean, std = tuple(config.pixel_mean), tuple(config.pixel_std)
        self.discriminators = nn.ModuleList(ImageDiscriminator(config.di_width, mean, std)
                                            for _ in self.levels)
        self.reid = ReIDNet(config, num_classes)
        self.init = self.reid.init
        self.init_weights = self.reid.init_weights
        self.feature_dim = self.descriptor_dim = self.reid.feature_dim

    def generator_parameters(self):
        yield from self.stages.parameters()
        yield from self.reid.generator_parameters()

    def discriminator_parameters(self):
        return self.discriminators.parameters()

    def cascade(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every stage's output, coarse to fine (the last one is the recovered image)."""
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs

    @torch.no_grad()
    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.reid.extract_features(self.cascade(x)[-1])

    @torch.no_grad()
    def recover(self, x: torch.Tensor) -> torch.Tensor:
        return self.cascade(x)[-1]

    def parameter_counts(self) -> dict[str, int]:
        return count_parameters({"stages": self.stages, "D": self.discriminators,
                                 "reid": self.reid})


@register_method("csrgan")
class CSRGANTask(SRTask):
    """Engine task of ``csrgan`` (see the module docstring)."""

    preset = CSRGAN

    def build_model(self, config) -> nn.Module:
        return CSRGANModel(config)

    def stage_targets(self, b) -> list[torch.Tensor]:
        """Per stage, the LR half's targets (see the module docstring)."""
        cfg, m = self.config, self.model
        rates = None
        out = []
        for t in m.levels:
            if t == 1:
                out.append(b.lr_targets)
                continue
            down = lr_at(b.lr_targets, t, cfg.lr_method)
            if min(m.scales) >= t:  # every LR image is at level t or coarser
                out.append(down)
                continue
            if rates is None:
                rates = estimate_rates(b.lr_images, b.lr_targets, m.scales, cfg.lr_method)
            out.append(torch.where((rates >= t).view(-1, 1, 1, 1), down, b.lr_images))
        return out

    def losses(self, b):
        cfg, m = self.config, self.model
        nh = len(b.hr_images)
        lr_targets = self.stage_targets(b)
        outs = m.cascade(torch.cat([b.hr_images, b.lr_images]))
        pix = torch.stack([F.mse_loss(o.float(), torch.cat([b.hr_images, t]))
                           for o, t in zip(outs, lr_targets)]).sum()
        with frozen(m.discriminators):
            fake_logits = [d(o[nh:]) for d, o in zip(m.discriminators, outs)]
        adv = image_adversarial_loss([], fake_logits, side="generator")
        out = m.reid(scale_grad(outs[-1], self.reid_grad_to_sr))
        id_h, tri_h = reid_losses(rows(out, 0, nh), b.hr_pids, cfg)
        id_l, tri_l = reid_losses(rows(out, nh, None), b.lr_pids, cfg)
        gen = {"id": id_h + id_l, "tri": tri_h + tri_l, "pix": pix, "adv": adv}
        gen["total"] = (cfg.lambda_id * gen["id"] + cfg.lambda_tri * gen["tri"]
                        + cfg.lambda_rec * pix + cfg.lambda_adv_di * adv)
        disc = {}
        for k, (d, o, t) in enumerate(zip(m.discriminators, outs, lr_targets)):
            disc[f"d_{k + 1}"] = image_adversarial_loss([d(t)], [d(o[nh:].detach())],
                                                        side="discriminator")
        disc["total"] = torch.stack(list(disc.values())).sum()
        return gen, disc


__all__ = ["CSRGAN", "CSRGANModel", "CSRGANTask", "STAGE_BLOCKS", "estimate_rates", "stage_levels"]
