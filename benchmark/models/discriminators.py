"""The two discriminators of CAD-Net: D_F on the feature map f and D_I on images.

Every discriminator returns raw logits (no sigmoid); the losses use BCE-with-logits.
"""

from __future__ import annotations

import torch
from torch import nn

from .backbones import build_trunk, load_imagenet


class TsaiFeatureDiscriminator(nn.Module):
    """D_F, paper default: Tsai et al. (2018) fully convolutional discriminator.

    Tsai et al. use five 4x4 convolutions of stride 2 (widths w, 2w, 4w, 8w, 1) with
    LeakyReLU(0.2) and no normalisation. CAD-Net applies it to f, which is only
    h x w = 8 x 4 at 256 x 128 (ResNet-50), so a layer keeps the 4x4 stride-2 convolution
    (padding 1) only while both sides of its input are >= 4; the remaining layers are 3x3
    stride-1 convolutions with padding 1 (size preserving). Output: a logit *map*
    (B, 1, h', w'), e.g. 4 x 2 for an 8 x 4 input; the losses average BCE over it, as Tsai
    et al. do.
    """

    def __init__(self, in_channels: int, feature_hw: tuple[int, int], width: int = 64) -> None:
        super().__init__()
        chans = [in_channels, width, width * 2, width * 4, width * 8, 1]
        h, w = feature_hw
        layers: list[nn.Module] = []
        for i in range(5):
            if min(h, w) >= 4:
                layers.append(nn.Conv2d(chans[i], chans[i + 1], 4, stride=2, padding=1))
                h, w = h // 2, w // 2
            else:
                layers.append(nn.Conv2d(chans[i], chans[i + 1], 3, stride=1, padding=1))
            if i < 4:
                layers.append(nn.LeakyReLU(0.2))
        self.net = nn.Sequential(*layers)
        self.out_hw = (h, w)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.net(f)


class AuthorsFeatureDiscriminator(nn.Module):
    """D_F, authors'-code preset: six 3x3 stride-1 convs halving the width each time
    (2048 -> 1024 -> ... -> 32 for ResNet-50) with BatchNorm + LeakyReLU(0.2), then flatten
    and one linear logit. Output: (B, 1). Needs the feature map size at construction."""

    def __init__(self, in_channels: int, feature_hw: tuple[int, int], num_convs: int = 6) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        ch = in_channels
        for _ in range(num_convs):
            out = max(ch // 2, 1)
            layers += [nn.Conv2d(ch, out, 3, padding=1, bias=False), nn.BatchNorm2d(out),
                       nn.LeakyReLU(0.2)]
            ch = out
        self.convs = nn.Sequential(*layers)
        self.fc = nn.Linear(ch * feature_hw[0] * feature_hw[1], 1)
        self.out_hw = (1, 1)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.convs(f), 1))


class ImageDiscriminator(nn.Module):
    """D_I: ResNet-18-like classifier of real vs recovered HR images; one logit (B, 1).

    Takes images in [0, 1] and normalises them with the model's mean/std. Random init
    (paper); ``imagenet=True`` loads torchvision ResNet-18 ImageNet weights into the trunk
    (authors'-code preset), which requires ``width == 64``.
    """

    def __init__(
        self,
        width: int = 64,
        mean: tuple[float, float, float] = (0.485, 0.456, 0.406),
        std: tuple[float, float, float] = (0.229, 0.224, 0.225),
        imagenet: bool = False,
    ) -> None:
        super().__init__()
        self.trunk = build_trunk("resnet18", width=width, last_stride=2)
        self.init = "random"
        self.init_weights: dict[str, str] | None = None  # {"file", "sha256"} when ImageNet
        if imagenet:
            if width != 64:
                raise ValueError(
                    f"D_I ImageNet init (di_imagenet, authors-code preset) needs di_width=64, "
                    f"got {width}: set di_width=64 or di_imagenet=False")
            self.init_weights = load_imagenet(self.trunk, "resnet18", width)
            self.init = "imagenet"
        self.fc = nn.Linear(self.trunk.out_channels, 1)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.trunk((images - self.mean) / self.std)
        return self.fc(torch.flatten(x.mean(dim=(2, 3)), 1))


class FeatureDiscriminator(nn.Module):
    """D_F on f (B, d, h, w): ``variant="tsai"`` (paper default, logit map) or
    ``"authors"`` (authors'-code preset, one logit per image). ``body`` is the network."""

    def __init__(self, in_channels: int, feature_hw: tuple[int, int], width: int = 64,
                 variant: str = "tsai") -> None:
        super().__init__()
        self.body: TsaiFeatureDiscriminator | AuthorsFeatureDiscriminator
        if variant == "tsai":
            self.body = TsaiFeatureDiscriminator(in_channels, feature_hw, width)
        elif variant == "authors":
            self.body = AuthorsFeatureDiscriminator(in_channels, feature_hw)
        else:
            raise ValueError(f"unknown feature discriminator {variant!r}; known: tsai, authors")
        self.variant = variant
        self.out_hw = self.body.out_hw

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.body(f)


def build_feature_discriminator(
    variant: str, in_channels: int, feature_hw: tuple[int, int], width: int = 64
) -> FeatureDiscriminator:
    """D_F by name: "tsai" (paper default) or "authors" (authors'-code preset)."""
    return FeatureDiscriminator(in_channels, feature_hw, width, variant)
