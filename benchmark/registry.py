"""The method registry (timm style): every name ``--methods`` accepts, and what builds it.

A method registers itself where it is defined, with a decorator::

    @register_method("hr-only")
    class HROnlyTask(ReIDTask): ...          # an engine task: trained by benchmark.engine

    @register_method("hist")
    class HistMethod: ...                    # a method object with fit / features

One task class may be registered under several names, each with its own config preset
(CAD-Net's variants: :data:`benchmark.profiles.CADNET_PRESETS`). This module holds only the
table; :func:`benchmark.methods.create_method` builds a method from it and
:func:`benchmark.methods.list_methods` lists it once every built-in method is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from datasets.errors import MLRBenchError


class UnknownMethod(MLRBenchError):
    """A method name that is not registered."""


@dataclass(frozen=True)
class MethodEntry:
    """A registered name: the class and the keyword arguments its method is made with."""

    name: str
    cls: type
    options: dict = field(default_factory=dict)


_REGISTRY: dict[str, MethodEntry] = {}


def register_method(name: str, **options) -> Callable[[type], type]:
    """Decorator: register ``cls`` under ``name`` (``options``, e.g. ``preset=``, are passed
    on when the method is created). A name is registered once."""

    def deco(cls: type) -> type:
        if name in _REGISTRY and _REGISTRY[name].cls is not cls:
            raise ValueError(f"method {name!r} is already registered "
                             f"({_REGISTRY[name].cls.__qualname__})")
        _REGISTRY[name] = MethodEntry(name, cls, dict(options))
        return cls

    return deco


def unregister_method(name: str) -> None:
    """Remove ``name`` (tests registering a method of their own)."""
    _REGISTRY.pop(name, None)


def registered() -> dict[str, MethodEntry]:
    """The registry as it stands (names in registration order)."""
    return dict(_REGISTRY)


def entry(name: str) -> MethodEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownMethod(f"unknown method {name!r}; known methods: "
                            f"{', '.join(_REGISTRY)}") from None


__all__ = ["MethodEntry", "UnknownMethod", "entry", "register_method", "registered",
           "unregister_method"]
