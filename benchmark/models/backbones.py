"""ResNet trunks for E, F and D_I, with the skip-connection taps CAD-Net's decoder needs.

``ResNetTrunk`` mirrors torchvision's ResNet module names (``conv1``, ``bn1``, ``layer1`` ...
``layer4``; no ``fc``), so torchvision ImageNet state dicts load into it unchanged. Widths
are configurable so that the ``smoke`` profile can use a narrow network.

Architectures (``arch`` argument of :func:`build_trunk`):

- ``resnet50``: torchvision ResNet-50 (Bottleneck [3, 4, 6, 3], 64/256/512/1024/2048 ch)
- ``resnet18``: torchvision ResNet-18 (BasicBlock [2, 2, 2, 2], 64/64/128/256/512 ch)
- ``tiny``: BasicBlock [1, 1, 1, 1] with stem width ``w`` and widths w, 2w, 4w, 8w
  (smoke tests only; there are no pretrained weights for it)

A ``width`` other than 64 for resnet18/resnet50 scales every stage by width / 64 (the
result is no longer torchvision's network and cannot load ImageNet weights).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

_ARCHS: dict[str, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "tiny": (BasicBlock, (1, 1, 1, 1)),
}
ARCHS = tuple(_ARCHS)
#: archs whose torchvision ImageNet weights fit ``ResNetTrunk`` at width 64
PRETRAINABLE = ("resnet18", "resnet34", "resnet50")


class ResNetTrunk(nn.Module):
    """ResNet without the pooling/fc head; ``forward`` returns the last feature map.

    ``forward_with_taps`` also returns the intermediate maps after conv1/bn1/relu (stride 2),
    layer1 (stride 4), layer2 (stride 8) and layer3 (stride 16), keyed by their stride.
    ``last_stride`` is layer4's stride (2 as in torchvision and the authors' code, so the
    final map is H/32 x W/32; 1 gives H/16 x W/16).
    """

    def __init__(
        self,
        block: type[nn.Module],
        layers: tuple[int, int, int, int],
        width: int = 64,
        last_stride: int = 2,
    ) -> None:
        super().__init__()
        if last_stride not in (1, 2):
            raise ValueError(f"last_stride must be 1 or 2, got {last_stride}")
        self.block = block
        self.last_stride = last_stride
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], stride=last_stride)
        exp = block.expansion  # type: ignore[attr-defined]
        #: channels of the taps, keyed by stride (input size / tap size)
        self.tap_channels: dict[int, int] = {2: width, 4: width * exp, 8: width * 2 * exp,
                                             16: width * 4 * exp}
        self.out_channels = width * 8 * exp
        self.out_stride = 16 * last_stride
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        exp = block.expansion
        downsample = None
        if stride != 1 or self.inplanes != planes * exp:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * exp, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * exp),
            )
        mods = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * exp
        mods += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*mods)

    def forward_with_taps(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """Return (final map, {2: conv1/relu, 4: layer1, 8: layer2, 16: layer3})."""
        s2 = self.relu(self.bn1(self.conv1(x)))
        s4 = self.layer1(self.maxpool(s2))
        s8 = self.layer2(s4)
        s16 = self.layer3(s8)
        return self.layer4(s16), {2: s2, 4: s4, 8: s8, 16: s16}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def build_trunk(arch: str, width: int = 64, last_stride: int = 2) -> ResNetTrunk:
    """A randomly initialised trunk; ``arch`` in :data:`ARCHS`."""
    if arch not in _ARCHS:
        raise ValueError(f"unknown backbone {arch!r}; known: {', '.join(ARCHS)}")
    block, layers = _ARCHS[arch]
    return ResNetTrunk(block, layers, width=width, last_stride=last_stride)


def load_imagenet(trunk: ResNetTrunk, arch: str, width: int = 64) -> None:
    """Load torchvision's ImageNet weights for ``arch`` into ``trunk`` (fc dropped).

    Uses ``benchmark.weights.load_torchvision_state_dict``, which raises
    ``benchmark.weights.WeightsUnavailable`` when the checkpoint file is missing; that error
    propagates (never replaced by random weights).
    """
    if arch not in PRETRAINABLE or width != 64:
        raise ValueError(
            f"no ImageNet weights for backbone {arch!r} at width {width}; "
            f"ImageNet init needs one of {', '.join(PRETRAINABLE)} at width 64 "
            "(use pretrained='none' for this profile)"
        )
    from benchmark.weights import load_torchvision_state_dict  # lazy: optional dependency

    state = load_torchvision_state_dict(arch)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    trunk.load_state_dict(state, strict=True)
