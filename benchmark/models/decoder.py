"""HR decoder G (paper section 3.2): residual up-sampling blocks with skip connections from E.

Blocks (``block="resblock"``, the default, after Miyato & Koyama 2018, the paper's [36]):
``BN - ReLU - 2x nearest upsample - conv3x3 - BN - ReLU - conv3x3`` plus a shortcut
``2x nearest upsample - conv1x1``. ``block="deconv"`` is the authors'-code style stage
(``ConvTranspose2d(4, 2, 1) - BN - ReLU - conv3x3 - BN - ReLU``).

Skip connections (Ledig et al. 2017, the paper's [28]): before every up-sampling stage the
encoder tap with the same spatial size as the current map (strides 16, 8, 4, 2 of E: after
layer3, layer2, layer1 and conv1/relu) is *concatenated* on the channel axis (not added, so
tap and decoder widths need not match). A tap wider than the decoder map it joins (e.g.
ResNet-50's 1024/512/256-channel taps) first goes through a 1x1 convolution down to the
map's width, so the concatenation is at most twice the decoder width.

Output: ``tanh`` in [-1, 1], mapped to images in [0, 1] by ``(tanh + 1) / 2``, the value
range of the model's inputs and of the HR ground truth used by L_rec.

Stage widths, coarse to fine, for ``n`` up-samplings and base width ``w``:
``w * 2**max(n - 2 - k, 0)`` for stage ``k``, e.g. 256, 128, 64, 32, 32 for ResNet-50 at
256 x 128 with ``w = 32`` (the paper profile).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class ResUpBlock(nn.Module):
    """Miyato & Koyama (2018) generator block: residual 2x up-sampling."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class DeconvUpBlock(nn.Module):
    """Authors'-code style stage: transposed conv 2x up-sampling, then a 3x3 conv."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ConvTranspose2d(in_ch, out_ch, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def clamp01(y: torch.Tensor) -> torch.Tensor:
    """``y`` clamped to [0, 1] in the forward pass, with the identity's gradient (straight
    through): a pixel pushed out of range still gets its loss's gradient back."""
    return y + (y.clamp(0, 1) - y).detach()


def scale_grad(x: torch.Tensor, scale: float) -> torch.Tensor:
    """``x`` in the forward pass; its gradient multiplied by ``scale`` in the backward pass."""
    if scale == 1:
        return x
    d = x.detach()
    return d + scale * (x - d)


_BLOCKS = {"resblock": ResUpBlock, "deconv": DeconvUpBlock}


class HRDecoder(nn.Module):
    """G: f (+ E's skip taps) -> recovered HR image in [0, 1].

    Args:
        in_channels: channels of f.
        in_stride: input size / size of f (32 for a ResNet with last stride 2).
        tap_channels: {stride: channels} of E's skip taps (empty dict: no skips).
        width: base width ``w`` (see module docstring).
        block: "resblock" (paper, Miyato-style) or "deconv" (authors'-code style).
        residual: the output is ``clamp01(x + tanh(head))`` with ``x`` the input image and
            the head's last convolution starting at zero, so G starts as the identity on
            its (bilinearly up-sampled) input and learns a correction; otherwise
            ``(tanh(head) + 1) / 2`` (the paper).
    """

    def __init__(
        self,
        in_channels: int,
        in_stride: int,
        tap_channels: dict[int, int],
        width: int = 64,
        block: str = "resblock",
        residual: bool = False,
    ) -> None:
        super().__init__()
        if block not in _BLOCKS:
            raise ValueError(f"unknown decoder block {block!r}; known: {', '.join(_BLOCKS)}")
        n = int(round(math.log2(in_stride)))
        if 2**n != in_stride or n < 1:
            raise ValueError(f"in_stride must be a power of two >= 2, got {in_stride}")
        widths = [width * 2 ** max(n - 2 - k, 0) for k in range(n)]
        self.skip_strides: list[int | None] = []
        stages, projections = [], []
        ch, stride = in_channels, in_stride
        for k in range(n):
            skip = stride if stride in tap_channels else None
            self.skip_strides.append(skip)
            proj: nn.Module = nn.Identity()
            if skip is not None:
                tap_ch = tap_channels[skip]
                if tap_ch > ch:  # 1x1 projection of a wide tap to the decoder's width
                    proj, tap_ch = nn.Conv2d(tap_ch, ch, 1, bias=False), ch
                ch += tap_ch
            projections.append(proj)
            stages.append(_BLOCKS[block](ch, widths[k]))
            ch, stride = widths[k], stride // 2
        self.stages = nn.ModuleList(stages)
        self.skip_projections = nn.ModuleList(projections)
        self.head = nn.Sequential(nn.BatchNorm2d(ch), nn.ReLU(), nn.Conv2d(ch, 3, 3, padding=1))
        self.residual = residual
        if residual:
            nn.init.zeros_(self.head[-1].weight)
            nn.init.zeros_(self.head[-1].bias)

    def forward(self, f: torch.Tensor, taps: dict[int, torch.Tensor] | None = None,
                image: torch.Tensor | None = None) -> torch.Tensor:
        """The recovered image from f and the taps; ``image`` (the input, [0, 1]) is needed
        by a residual decoder only."""
        x = f
        for skip, proj, stage in zip(self.skip_strides, self.skip_projections, self.stages):
            if skip is not None:
                if taps is None:
                    raise ValueError("this decoder was built with skip connections; pass taps")
                x = torch.cat([x, proj(taps[skip])], dim=1)
            x = stage(x)
        if self.residual:
            if image is None:
                raise ValueError("a residual decoder adds its output to the input: pass image")
            return clamp01(image + torch.tanh(self.head(x)))
        return (torch.tanh(self.head(x)) + 1) / 2
