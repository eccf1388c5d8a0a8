"""Method registry: every name ``--methods`` accepts, mapped to a factory (timm style)."""

from __future__ import annotations

import importlib
from collections.abc import Callable

# name -> "module:attribute"; imported lazily so a method's heavy deps load only when used.
_REGISTRY: dict[str, str] = {
    "hist": "baselines.hist:HistMethod",
    "lomo-xqda": "baselines.lomo_xqda:LomoXqdaMethod",
}
# Engine-trained baselines: name -> "module:TaskClass" (benchmark.learned.TaskMethod wraps it)
_TASKS: dict[str, str] = {
    "hr-only": "baselines.reid:HROnlyTask",
    "lr-aug": "baselines.reid:LRAugTask",
    "bicubic": "baselines.reid:BicubicTask",
    "rain": "baselines.rain:RAINTask",
    "sing": "baselines.sing:SINGTask",
    "csrgan": "baselines.csrgan:CSRGANTask",
    "cyclegan": "baselines.cyclegan:CycleGANTask",
}
# CAD-Net and its variants: one class, the preset picks the variant (benchmark/profiles.py)
CADNET_PRESETS = ("cadnet", "cadnet-f", "cadnet-g", "cadnet-no-adv-di", "cadnet-no-adv-df",
                  "cadnet-no-rec", "cadnet-no-cls", "authors-code")


def known_methods() -> tuple[str, ...]:
    return (*_REGISTRY, *_TASKS, *CADNET_PRESETS)


class UnknownMethod(ValueError):
    pass


def get_method_factory(name: str) -> Callable:
    if name in CADNET_PRESETS:
        from functools import partial

        from .learned import CADNetMethod

        return partial(CADNetMethod, name)
    if name in _TASKS:
        from functools import partial

        from .learned import TaskMethod

        module, attr = _TASKS[name].split(":")
        return partial(TaskMethod, name, getattr(importlib.import_module(module), attr))
    if name not in _REGISTRY:
        raise UnknownMethod(f"unknown method {name!r}; known methods: {', '.join(known_methods())}")
    module, attr = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), attr)
