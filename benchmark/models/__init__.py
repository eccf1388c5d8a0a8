"""Models: CAD-Net components and a small factory.

    from benchmark.profiles import make_config
    from benchmark.models import build_model, build_optimizers
    cfg = make_config("cpu", "cadnet", num_classes=316)
    model = build_model(cfg)            # CADNet; model.init is "random" or "imagenet"
    opts = build_optimizers(model)      # {"model": ..., "d_f": ..., "d_i": ...}

Every CAD-Net method preset (cadnet, cadnet-f, cadnet-g, the Table 3 ablations,
authors-code) builds the same :class:`CADNet` class; the config selects the variant.
Other model families can be added with :func:`register_model`.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from .backbones import ARCHS, MobileNetV2Trunk, ResNetTrunk, build_trunk, load_imagenet
from .cadnet import (
    CADNet,
    CADNetOutput,
    Classifier,
    CrossResolutionEncoder,
    HREncoder,
    build_optimizers,
    make_optimizer,
    make_split_optimizers,
)
from .decoder import HRDecoder
from .discriminators import (
    AuthorsFeatureDiscriminator,
    FeatureDiscriminator,
    ImageDiscriminator,
    TsaiFeatureDiscriminator,
    build_feature_discriminator,
)

_MODELS: dict[str, Callable[..., nn.Module]] = {"cadnet": CADNet}


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator adding a model constructor ``ctor(config, num_classes)`` under ``name``."""

    def deco(ctor: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _MODELS[name] = ctor
        return ctor

    return deco


def build_model(config, num_classes: int | None = None, name: str = "cadnet") -> nn.Module:
    """Build model ``name`` (default CAD-Net) from a :class:`~benchmark.profiles.CADNetConfig`.

    ``num_classes`` defaults to ``config.num_classes``. With ``config.pretrained ==
    "imagenet"`` the trunks load ImageNet weights through ``benchmark.weights`` (torchvision's
    for the ResNets, the pinned file for ``mobilenetv2``); a missing file raises
    ``benchmark.weights.WeightsUnavailable``.
    """
    try:
        ctor = _MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(_MODELS)}") from None
    return ctor(config, num_classes)


__all__ = [
    "ARCHS",
    "AuthorsFeatureDiscriminator",
    "CADNet",
    "CADNetOutput",
    "Classifier",
    "CrossResolutionEncoder",
    "FeatureDiscriminator",
    "HRDecoder",
    "HREncoder",
    "ImageDiscriminator",
    "MobileNetV2Trunk",
    "ResNetTrunk",
    "TsaiFeatureDiscriminator",
    "build_feature_discriminator",
    "build_model",
    "build_optimizers",
    "build_trunk",
    "load_imagenet",
    "make_optimizer",
    "make_split_optimizers",
    "register_model",
]
