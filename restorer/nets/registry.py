"""Build networks from ``{"arch": name, **kwargs}``; explicit registration, no folder scanning."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from restorer.errors import ModelError

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def deco(cls: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[name] = cls
        return cls

    return deco


def available() -> list[str]:
    _ensure_loaded()
    return sorted(_REGISTRY)


def _ensure_loaded() -> None:
    # Importing the modules runs their @register decorators.
    from restorer.nets import discriminator, unet  # noqa: F401


def build_net(spec: dict[str, Any]) -> nn.Module:
    """Build a network from a spec such as ``{"arch": "unet", "base": 16, "depth": 3}``."""
    _ensure_loaded()
    if not isinstance(spec, dict) or "arch" not in spec:
        raise ModelError(f"network spec needs an 'arch' key; got {spec!r}")
    kwargs = dict(spec)
    arch = kwargs.pop("arch")
    if arch not in _REGISTRY:
        raise ModelError(f"unknown architecture {arch!r}; known: {', '.join(available())}")
    try:
        return _REGISTRY[arch](**kwargs)
    except TypeError as exc:
        raise ModelError(f"bad arguments for architecture {arch!r}: {exc}") from exc
