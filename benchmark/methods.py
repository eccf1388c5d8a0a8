"""Method registry: every name ``--methods`` accepts, mapped to a factory (timm style)."""

from __future__ import annotations

import importlib
from collections.abc import Callable

# name -> "module:attribute"; imported lazily so a method's heavy deps load only when used.
_REGISTRY: dict[str, str] = {
    "hist": "baselines.hist:HistMethod",
}


def register(name: str, target: str) -> None:
    _REGISTRY[name] = target


def known_methods() -> tuple[str, ...]:
    return tuple(_REGISTRY)


class UnknownMethod(ValueError):
    pass


def get_method_factory(name: str) -> Callable:
    if name not in _REGISTRY:
        raise UnknownMethod(f"unknown method {name!r}; known methods: {', '.join(_REGISTRY)}")
    module, attr = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), attr)
