"""Method registry: every name ``--methods`` accepts, mapped to a factory (timm style)."""

from __future__ import annotations

import importlib
from collections.abc import Callable

# name -> "module:attribute"; imported lazily so a method's heavy deps load only when used.
_REGISTRY: dict[str, str] = {
    "hist": "baselines.hist:HistMethod",
    "lomo-xqda": "baselines.lomo_xqda:LomoXqdaMethod",
}
# CAD-Net and its variants: one class, the preset picks the variant (benchmark/profiles.py)
CADNET_PRESETS = ("cadnet", "cadnet-f", "cadnet-g", "cadnet-no-adv-di", "cadnet-no-adv-df",
                  "cadnet-no-rec", "cadnet-no-cls", "authors-code")


def register(name: str, target: str) -> None:
    _REGISTRY[name] = target


def known_methods() -> tuple[str, ...]:
    return (*_REGISTRY, *CADNET_PRESETS)


class UnknownMethod(ValueError):
    pass


def get_method_factory(name: str) -> Callable:
    if name in CADNET_PRESETS:
        from functools import partial

        from .learned import CADNetMethod

        return partial(CADNetMethod, name)
    if name not in _REGISTRY:
        raise UnknownMethod(f"unknown method {name!r}; known methods: {', '.join(known_methods())}")
    module, attr = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), attr)
