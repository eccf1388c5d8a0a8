"""Shared pieces of the super-resolution baselines ``sing``, ``csrgan`` and ``cyclegan``.

Conventions common to the three methods
---------------------------------------
* **Images.** Every image entering or leaving a network here is RGB in [0, 1], at the
  network input size H x W. The engine hands LR images over *already bilinearly up-sampled
  back to H x W* (the harness's convention, paper section 4.4), so every SR network here is
  a full-size *restoration* network, as in the pre-upsampled SR family (SRCNN, VDSR): it
  receives the interpolated image and returns a sharper one of the same size. No method is
  told the down-sampling rate of an image, at training or at test time.
* **No query / gallery flag.** The harness calls ``model.extract_features(x)`` on LR
  queries and HR gallery images alike. Each method therefore sends *every* image through
  the same path (its SR network(s), then its re-ID network), as a deployed system that
  cannot tell LR from HR images would; and each one is trained so that this is sensible for
  HR images too (how, is in each module's docstring).
* **Re-ID network.** :class:`baselines.reid.ReIDNet`, the network of ``hr-only`` /
  ``lr-aug``: the profile's trunk (``config.backbone``, ``backbone_width``, ``last_stride``,
  ``pixel_mean`` / ``pixel_std``, ImageNet init through ``benchmark.weights`` when
  ``config.pretrained == "imagenet"``) + GAP + FC, ID + batch-hard triplet loss (margin
  ``config.triplet_margin``, weights ``lambda_id`` / ``lambda_tri``). Test feature: GAP of
  the last map (L2-normalised iff ``config.l2_test_features``), Euclidean distance.
* **Optimisers.** ``config.model_optim`` (SGD lr 1e-3, momentum 0.9, wd 5e-4 in every
  profile) for SR networks, generators and the re-ID network; ``config.disc_optim`` for the
  discriminators (SGD lr 1e-4 in the paper profile, Adam lr 1e-4 in cpu/smoke, as CAD-Net's
  D_F). Not the original papers' optimisers (Adam for SRGAN): the same settings as
  CAD-Net, so that differences come from the method. The exception is ``cyclegan``, whose
  preset sets ``gen_optim`` and ``disc_optim`` to CycleGAN's Adam (why: its module
  docstring); a preset's ``gen_optim`` updates the model's ``sr_parameters()`` and
  ``model_optim`` the rest (the re-ID network).
* **Joint SR + re-ID training** (sing, csrgan): the re-ID loss reaches the SR networks
  with weight :data:`REID_GRAD_TO_SR` = 0.01 (:func:`scale_grad`; the re-ID network gets
  it in full), the pixel loss with ``lambda_rec`` (1, the profile's value); why: see
  :func:`scale_grad`. SR outputs are clamped to [0, 1] with a straight-through
  gradient (:func:`clamp01`).
* **Update order** (:meth:`SRTask.forward_backward`): one forward; generator-side
  adversarial terms run the discriminators frozen (no gradient reaches them); the
  discriminator terms use detached fakes; step the model optimiser, then the discriminator
  optimiser (CAD-Net's order). Seeding, autocast, channels-last, gradient averaging across
  ``torchrun`` processes and detached loss tensors come from :class:`benchmark.tasks.Task`.

Widths scale with ``config.decoder_width`` (``w``: 8 smoke, 16 cpu, 32 paper), the width
knob CAD-Net's own generator G uses, so every profile keeps the SR part in proportion.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from benchmark.losses import identity_loss, triplet_loss
from benchmark.models import make_optimizer, make_split_optimizers
from benchmark.models.decoder import clamp01, scale_grad
from benchmark.tasks import Task
from datasets.loader import make_lr

# ---------------------------------------------------------------------------------------
# networks


#: weight of the re-ID loss's gradient where it enters an SR network (sing, csrgan); the
#: re-ID network itself gets the full gradient (:func:`scale_grad`). The SR parameters so
#: minimise ``lambda_rec * L_pixel + scale * L_reid`` while the re-ID network minimises
#: ``L_reid``. Why not 1: the input gradients of a randomly initialised re-ID network are
#: large and not yet meaningful, and at full weight they wreck the SR outputs (measured for
#: 1, 0.1 and 0.01: ``results/reference/cpu-viper-scratch/NOTES.md``).
REID_GRAD_TO_SR = 0.01


class SRCNN(nn.Module):
    """SRCNN (Dong et al., ECCV 2014 / TPAMI 2016), the 9-1-5 network, on the interpolated
    image: conv9x9 (3 -> n1) - ReLU - conv1x1 (n1 -> n2) - ReLU - conv5x5 (n2 -> 3).

    ``n1 = width``, ``n2 = width // 2`` (SRCNN's 64 / 32 at ``width = 64``). Differences
    from SRCNN: size-preserving (replicate) padding instead of valid convolutions, and a
    global residual output ``clamp01(x + net(x))`` (VDSR's residual learning; straight-
    through clamp, :func:`clamp01`) with the last layer initialised to zero, so a branch
    starts as the identity and the jointly trained re-ID network is never fed noise.
    """

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        n1, n2 = width, max(width // 2, 1)
        self.conv1 = nn.Conv2d(3, n1, 9, padding=4, padding_mode="replicate")
        self.conv2 = nn.Conv2d(n1, n2, 1)
        self.conv3 = nn.Conv2d(n2, 3, 5, padding=2, padding_mode="replicate")
        nn.init.zeros_(self.conv3.weight)
        nn.init.zeros_(self.conv3.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.conv3(F.relu(self.conv2(F.relu(self.conv1(x)))))
        return clamp01(x + r)


class _SRResBlock(nn.Module):
    """SRResNet residual block: conv3x3 - BN - PReLU - conv3x3 - BN, plus the input."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch), nn.PReLU(ch),
            nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRResNetStage(nn.Module):
    """One x2 SR-GAN generator (SRResNet, Ledig et al. CVPR 2017) on a full-size image.

    The stage works on the image's 2x-coarser grid, losslessly: ``pixel_unshuffle(2)``
    (space-to-depth, 3 -> 12 channels at H/2 x W/2), conv3x3 + PReLU, ``blocks`` residual
    blocks with a long skip (conv + BN), then SRGAN's sub-pixel x2 up-sampling (conv to 4w,
    ``pixel_shuffle(2)``, PReLU) and a conv3x3 to RGB, added to the input (global residual,
    zero-initialised so the stage starts as the identity) and clamped to [0, 1] (straight
    through, :func:`clamp01`). So it is
    SRGAN's x2 generator fed with the 2x-coarser grid of the image, plus a residual path that
    keeps whatever detail the input already has. Differences from SRGAN: 3x3 (not 9x9) first
    and last convolutions, ``blocks`` (not 16) residual blocks, global residual output.
    """

    def __init__(self, width: int = 64, blocks: int = 4) -> None:
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(12, width, 3, padding=1), nn.PReLU(width))
        self.body = nn.Sequential(*[_SRResBlock(width) for _ in range(blocks)])
        self.body_tail = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=False),
                                       nn.BatchNorm2d(width))
        self.up = nn.Sequential(nn.Conv2d(width, 4 * width, 3, padding=1), nn.PixelShuffle(2),
                                nn.PReLU(width))
        self.tail = nn.Conv2d(width, 3, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % 2 or x.shape[-1] % 2:
            raise ValueError(f"an x2 stage needs even image sides, got {tuple(x.shape[-2:])}")
        h = self.head(F.pixel_unshuffle(x, 2))
        h = h + self.body_tail(self.body(h))
        return clamp01(x + self.tail(self.up(h)))


class _ResnetBlock(nn.Module):
    """CycleGAN's residual block: reflect-pad, conv3x3, IN, ReLU, reflect-pad, conv3x3, IN."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """CycleGAN's ResNet generator (Zhu et al. 2017, after Johnson et al. 2016):
    c7s1-w, d2w, d4w, ``blocks`` x R4w, u2w, uw, c7s1-3 (InstanceNorm, ReLU, reflection
    padding, tanh). CycleGAN uses w = 64 and 6 blocks (128 px) or 9 (256 px). Takes and
    returns images in [0, 1] (internally [-1, 1], as CycleGAN's data pipeline). H and W must
    be divisible by 4. ``residual=True`` (not in CycleGAN): the output is ``clamp01(x + t)``
    with t the tanh output, whose last convolution starts at zero, so the generator starts
    as the identity mapping and learns a correction (as the SR stages here do)."""

    def __init__(self, width: int = 64, blocks: int = 6, residual: bool = False) -> None:
        super().__init__()
        self.residual = residual
        w = width
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(3, w, 7),
                                   nn.InstanceNorm2d(w), nn.ReLU(True)]
        for m in (1, 2):
            layers += [nn.Conv2d(w * m, w * m * 2, 3, stride=2, padding=1),
                       nn.InstanceNorm2d(w * m * 2), nn.ReLU(True)]
        layers += [_ResnetBlock(4 * w) for _ in range(blocks)]
        for m in (4, 2):
            layers += [nn.ConvTranspose2d(w * m, w * m // 2, 3, stride=2, padding=1,
                                          output_padding=1),
                       nn.InstanceNorm2d(w * m // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(w, 3, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        if residual:
            nn.init.zeros_(layers[-2].weight)
            nn.init.zeros_(layers[-2].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % 4 or x.shape[-1] % 4:
            raise ValueError(f"image sides must be divisible by 4, got {tuple(x.shape[-2:])}")
        if self.residual:
            return clamp01(x + self.net(x * 2 - 1))
        return (self.net(x * 2 - 1) + 1) / 2


class PatchDiscriminator(nn.Module):
    """CycleGAN's PatchGAN discriminator (pix2pix, Isola et al. 2017): C(w) - C(2w) - C(4w)
    with 4x4 stride-2 convs, then C(8w) stride 1 and a 1-channel stride-1 conv; InstanceNorm
    (not on the first layer), LeakyReLU(0.2). ``layers = 3`` is the 70 x 70 PatchGAN. Input
    images in [0, 1]; output a logit map (B, 1, h, w) (raw scores, LSGAN)."""

    def __init__(self, width: int = 64, layers: int = 3) -> None:
        super().__init__()
        mods: list[nn.Module] = [nn.Conv2d(3, width, 4, stride=2, padding=1),
                                 nn.LeakyReLU(0.2, True)]
        ch = width
        for n in range(1, layers + 1):
            out = width * min(2**n, 8)
            stride = 2 if n < layers else 1
            mods += [nn.Conv2d(ch, out, 4, stride=stride, padding=1), nn.InstanceNorm2d(out),
                     nn.LeakyReLU(0.2, True)]
            ch = out
        mods.append(nn.Conv2d(ch, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1)


# ---------------------------------------------------------------------------------------
# losses and helpers


class Rows(NamedTuple):
    """Rows ``start:stop`` of a ReIDNet output (what :func:`reid_losses` reads)."""

    logits: torch.Tensor
    embedding: torch.Tensor


def rows(out, start: int, stop: int | None) -> Rows:
    return Rows(out.logits[start:stop], out.embedding[start:stop])


def reid_losses(out, pids: torch.Tensor, config) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_id, L_tri) of one batch from a ReIDNet output (logits, GAP embedding)."""
    return (identity_loss(out.logits, pids),
            triplet_loss(out.embedding, pids, config.triplet_margin, config.triplet_normalize))


def lsgan_loss(pred: torch.Tensor, real: bool) -> torch.Tensor:
    """Least-squares GAN loss (Mao et al. 2017), as CycleGAN: mean (D(x) - 1)^2 for
    ``real``, mean D(x)^2 otherwise."""
    pred = pred.float()
    return ((pred - 1) ** 2).mean() if real else (pred**2).mean()


def lr_at(images: torch.Tensor, rate: float, method: str) -> torch.Tensor:
    """``images`` down-sampled by ``rate`` and up-sampled back (the engine's make_lr), one
    rate for the whole batch; no host synchronisation (the rates live on the CPU)."""
    if rate == 1:
        return images
    return make_lr(images, [float(rate)] * len(images), method)


def scale_key(s: float) -> str:
    """Module-name key of a scale: 2 -> "x2", 2.5 -> "x2_5"."""
    return "x" + f"{s:g}".replace(".", "_")


def count_parameters(modules: dict[str, nn.Module | Iterable[nn.Module]]) -> dict[str, int]:
    """Parameters per named component (a module or a list of modules) and in total."""
    out = {}
    for name, m in modules.items():
        mods = [m] if isinstance(m, nn.Module) else list(m)
        out[name] = sum(p.numel() for mod in mods for p in mod.parameters())
    out["total"] = sum(out.values())
    return out


# ---------------------------------------------------------------------------------------
# the task base class


class SRTask(Task):
    """Base of the SR baselines' engine tasks.

    Subclasses implement ``build_model(config)`` (an ``nn.Module`` with ``init``,
    ``descriptor_dim``, ``extract_features``, ``recover``, ``generator_parameters()`` and
    ``discriminator_parameters()``, and ``sr_parameters()`` where the method's preset sets
    ``gen_optim``: the part of ``generator_parameters()`` that optimiser updates) and
    ``losses(batch) -> (generator_losses, discriminator_losses)``, where
    ``generator_losses["total"]`` reaches only the generator parameters and
    ``discriminator_losses["total"]`` (absent if there is no discriminator) only the
    discriminator parameters.
    """

    produces_images = True
    #: see :data:`REID_GRAD_TO_SR` (used by the tasks whose re-ID loss reaches an SR network)
    reid_grad_to_sr: float = REID_GRAD_TO_SR

    def build_optimizers(self, model, config) -> dict:
        # the SR/translation nets get their own optimiser where the preset sets gen_optim
        sr = model.sr_parameters() if config.gen_optim is not None else ()
        main, own = make_split_optimizers(model.generator_parameters(), sr,
                                          config.gen_optim, config.model_optim)
        opts = {"model": main} if own is None else {"sr": own, "model": main}
        disc = list(model.discriminator_parameters())
        if disc:
            opts["disc"] = make_optimizer(disc, config.disc_optim)
        return opts

    def losses(self, batch) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        raise NotImplementedError

    def forward_backward(self, batch) -> dict[str, torch.Tensor]:
        """Model (and SR) optimisers on ``gen["total"]``, then the discriminators'."""
        gen, disc = self.losses(batch)
        self.step(gen["total"], *(k for k in self.optimizers if k != "disc"))
        if disc:
            self.step(disc["total"], "disc")
        return {**gen, **{("d" if k == "total" else k): v for k, v in disc.items()}}


def check_scales(scales: Sequence[float]) -> tuple[float, ...]:
    out = tuple(float(s) for s in scales)
    if not out or min(out) < 1:
        raise ValueError(f"seen LR rates must be >= 1, got {tuple(scales)}")
    return out


__all__ = [
    "PatchDiscriminator",
    "Rows",
    "ResnetGenerator",
    "SRCNN",
    "SRResNetStage",
    "REID_GRAD_TO_SR",
    "SRTask",
    "check_scales",
    "clamp01",
    "count_parameters",
    "lr_at",
    "lsgan_loss",
    "reid_losses",
    "rows",
    "scale_grad",
    "scale_key",
]
