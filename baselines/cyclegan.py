"""``cyclegan``: unpaired LR -> HR translation (CycleGAN) + a standard HR re-ID network.

Table 2's CycleGAN row (Zhu, Park, Isola, Efros, "Unpaired Image-to-Image Translation
using Cycle-Consistent Adversarial Networks", ICCV 2017): the CAD-Net paper trains CycleGAN
"to learn a mapping between LR and HR images" and reports the quality of the translated LR
queries and the re-ID accuracy obtained from them. Conventions shared by the SR baselines
(LR images arrive up-sampled to H x W; no method is told whether an image is a query):
``baselines/sr.py``.

* **Translation.** Domain A = LR images (the engine's LR batch), domain B = HR images (the
  engine's HR batch: a different, independently drawn set). The pairing of an LR image with
  its HR original (``lr_targets``) is never read. Two :class:`baselines.sr.ResnetGenerator`
  (G: LR -> HR, F: HR -> LR; width ``decoder_width``, ``GENERATOR_BLOCKS`` residual blocks)
  and two 70 x 70 :class:`baselines.sr.PatchDiscriminator` (D_HR, D_LR; width
  ``di_width``); LSGAN losses, cycle-consistency L1 with lambda_cyc = 10 and the identity
  loss L1(G(x_B), x_B) + L1(F(x_A), x_A) with weight 0.5 * lambda_cyc (CycleGAN's
  defaults). The discriminators minimise 0.5 * [(D(real) - 1)^2 + D(fake)^2] on detached
  fakes, after the generator step.
* **Residual generators** (``GENERATOR_RESIDUAL``): the LR image arrives pixel-aligned with
  its HR counterpart, so G and F output ``clamp01(x + correction)`` with the correction's
  last convolution initialised to zero: both start as the identity mapping, as the SR
  stages of ``sing`` and ``csrgan`` do.
* **Re-ID.** A standard re-ID network (:class:`baselines.reid.ReIDNet`, as ``hr-only``)
  trained on the HR batch only with ID + batch-hard triplet loss, independently of the
  translation (no gradient flows between the two; each has its own optimiser).
* **Test time.** Every image, query or gallery, gives ``R(G(x))``: the harness cannot say
  which images are LR, so every image is translated; the identity loss trains G to leave
  images that already look like domain B unchanged. ``recover(x) = G(x)``.
* **Optimisers.** CycleGAN's own, in every profile: Adam(lr 2e-4, betas 0.5 / 0.999, no
  weight decay) for G and F (``gen_optim``) and for D_HR and D_LR (``disc_optim``); the
  re-ID network keeps the profile's ``model_optim`` (SGD, as ``hr-only``).

Differences from CycleGAN: residual generators (above; CycleGAN's map unaligned domains and
are not residual); narrower generators (base width ``decoder_width``; CycleGAN 64) with 3
residual blocks (CycleGAN: 6 at 128 px, 9 at 256 px); a constant learning rate (CycleGAN
decays it linearly to zero over the second half); no history pool of 50 generated images
(it would draw random numbers outside the engine's seeded, resumable stream); the profile's
epochs; the identity loss, optional in CycleGAN, is always used. The measurements that led
to CycleGAN's optimiser and the residual generators: ``results/reference/cpu-viper-scratch/NOTES.md``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from baselines.reid import ReIDNet
from baselines.sr import (
    PatchDiscriminator,
    ResnetGenerator,
    SRTask,
    count_parameters,
    lsgan_loss,
    reid_losses,
)
from benchmark.losses import frozen
from benchmark.profiles import Method, OptimSpec
from benchmark.registry import register_method

#: residual blocks of each generator (CycleGAN: 6 at 128 x 128, 9 at 256 x 256)
GENERATOR_BLOCKS = 3
#: generators output input + correction and start as the identity (not in CycleGAN; see above)
GENERATOR_RESIDUAL = True
#: CycleGAN's loss weights: cycle consistency, and identity relative to it
LAMBDA_CYCLE = 10.0
LAMBDA_IDENTITY = 0.5
#: CycleGAN's optimiser, for G, F and both discriminators
CYCLEGAN_ADAM = OptimSpec("adam", lr=2e-4, momentum=0.0, weight_decay=0.0, betas=(0.5, 0.999))


CYCLEGAN = Method("cyclegan", feature_mode="f", use_adv_df=False, use_adv_di=False,
                  use_rec=False, gen_optim=CYCLEGAN_ADAM, disc_optim=CYCLEGAN_ADAM,
                  description="CycleGAN (Zhu et al. ICCV 2017) LR <-> HR, unpaired: ResNet "
                  "generators, PatchGAN LSGAN, cycle 10, identity 5; + hr-only re-ID net; "
                  "feature = R(G(x)) for every image")


class CycleGANModel(nn.Module):
    """``g_lr2hr`` (G), ``g_hr2lr`` (F), ``d_hr``, ``d_lr`` and ``reid``."""

    def __init__(self, config, num_classes: int | None = None) -> None:
        super().__init__()
        self.config = config
        w = config.decoder_width
        self.g_lr2hr = ResnetGenerator(w, GENERATOR_BLOCKS, residual=GENERATOR_RESIDUAL)
        self.g_hr2lr = ResnetGenerator(w, GENERATOR_BLOCKS, residual=GENERATOR_RESIDUAL)
        self.d_hr = PatchDiscriminator(config.di_width)
        self.d_lr = PatchDiscriminator(config.di_width)
        self.reid = ReIDNet(config, num_classes)
        self.init = self.reid.init
        self.init_weights = self.reid.init_weights
        self.feature_dim = self.descriptor_dim = self.reid.feature_dim

    def sr_parameters(self):
        """G and F: what ``gen_optim`` (CycleGAN's Adam) updates."""
        yield from self.g_lr2hr.parameters()
        yield from self.g_hr2lr.parameters()

    def generator_parameters(self):
        yield from self.sr_parameters()
        yield from self.reid.generator_parameters()

    def discriminator_parameters(self):
        yield from self.d_hr.parameters()
        yield from self.d_lr.parameters()

    @torch.no_grad()
    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        """R(G(x)) for every image (query or gallery), (B, d)."""
        return self.reid.extract_features(self.g_lr2hr(x))

    @torch.no_grad()
    def recover(self, x: torch.Tensor) -> torch.Tensor:
        """G(x): the LR -> HR translation, in [0, 1]."""
        return self.g_lr2hr(x)

    def parameter_counts(self) -> dict[str, int]:
        return count_parameters({"G": self.g_lr2hr, "F": self.g_hr2lr,
                                 "D": [self.d_hr, self.d_lr], "reid": self.reid})


@register_method("cyclegan")
class CycleGANTask(SRTask):
    """Engine task of ``cyclegan`` (see the module docstring). ``lr_targets`` is never read."""

    preset = CYCLEGAN
    #: 2: residual generators (since commit 91d0653); 1 (unset): CycleGAN's plain generators
    code_version = 2

    def build_model(self, config) -> nn.Module:
        return CycleGANModel(config)

    def losses(self, b):
        cfg, m = self.config, self.model
        a, bb = b.lr_images, b.hr_images  # domain A = LR, domain B = HR (unpaired)
        na, nb = len(a), len(bb)
        # one pass per generator and input set (InstanceNorm: per image, batching is exact)
        g_out = m.g_lr2hr(torch.cat([a, bb]))
        fake_hr, idt_hr = g_out[:na], g_out[na:]
        f_out = m.g_hr2lr(torch.cat([bb, a, fake_hr]))
        fake_lr, idt_lr, rec_lr = f_out[:nb], f_out[nb:nb + na], f_out[nb + na:]
        rec_hr = m.g_lr2hr(fake_lr)
        with frozen(m.d_hr), frozen(m.d_lr):
            adv = lsgan_loss(m.d_hr(fake_hr), True) + lsgan_loss(m.d_lr(fake_lr), True)
        cyc = F.l1_loss(rec_lr.float(), a) + F.l1_loss(rec_hr.float(), bb)
        idt = F.l1_loss(idt_hr.float(), bb) + F.l1_loss(idt_lr.float(), a)
        l_id, l_tri = reid_losses(m.reid(bb), b.hr_pids, cfg)
        gen = {"id": l_id, "tri": l_tri, "adv": adv, "cyc": cyc, "idt": idt}
        gen["total"] = (cfg.lambda_id * l_id + cfg.lambda_tri * l_tri + adv
                        + LAMBDA_CYCLE * cyc + LAMBDA_CYCLE * LAMBDA_IDENTITY * idt)
        disc = {
            "d_hr": 0.5 * (lsgan_loss(m.d_hr(bb), True)
                           + lsgan_loss(m.d_hr(fake_hr.detach()), False)),
            "d_lr": 0.5 * (lsgan_loss(m.d_lr(a), True)
                           + lsgan_loss(m.d_lr(fake_lr.detach()), False)),
        }
        disc["total"] = disc["d_hr"] + disc["d_lr"]
        return gen, disc


__all__ = ["CYCLEGAN", "CYCLEGAN_ADAM", "CycleGANModel", "CycleGANTask", "GENERATOR_BLOCKS",
           "GENERATOR_RESIDUAL", "LAMBDA_CYCLE",
           "LAMBDA_IDENTITY"]
