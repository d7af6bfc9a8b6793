"""Build networks from ``{"arch": name, **kwargs}``: a plain mapping of names to classes.

The networks know nothing of this module; adding one is an import and an entry in
:data:`ARCHS`. Model files store the name, so a name, once shipped, must keep meaning the same
network.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from restorer.errors import ModelError
from restorer.nets.discriminator import PatchDiscriminator
from restorer.nets.unet import UNet

ARCHS: Mapping[str, Callable[..., nn.Module]] = {"unet": UNet, "patchgan": PatchDiscriminator}


def available() -> list[str]:
    """The architecture names :func:`build_net` knows, sorted."""
    return sorted(ARCHS)


def build_net(spec: dict[str, Any]) -> nn.Module:
    """Build a network from a spec such as ``{"arch": "unet", "base": 16, "depth": 3}``."""
    if not isinstance(spec, dict) or "arch" not in spec:
        raise ModelError(f"network spec needs an 'arch' key; got {spec!r}")
    kwargs = dict(spec)
    arch = kwargs.pop("arch")
    if arch not in ARCHS:
        raise ModelError(f"unknown architecture {arch!r}; known: {', '.join(available())}")
    try:
        return ARCHS[arch](**kwargs)
    except TypeError as exc:
        raise ModelError(f"bad arguments for architecture {arch!r}: {exc}") from exc
