"""Self-describing model files: safetensors weights plus JSON metadata, never pickle.

The metadata (under the ``"restorer"`` key of the safetensors header) holds the network spec,
so :func:`load_model` rebuilds the network from the file alone.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from restorer import __version__
from restorer.errors import ModelError
from restorer.fsutil import atomic_path
from restorer.look import DEFAULT_WORKING_SIZE
from restorer.nets import build_net

META_KEY = "restorer"


@dataclass
class ModelMeta:
    """What a model file says about itself."""

    arch: dict[str, Any]
    working_size: int = DEFAULT_WORKING_SIZE
    normalisation: dict[str, Any] = field(
        default_factory=lambda: {"L": [50.0, -1.0], "ab": 110.0}
    )
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    name: str = "unnamed"
    description: str = ""
    restorer_version: str = __version__

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelMeta:
        data = json.loads(text)
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        if "arch" not in known:
            raise ModelError("model metadata has no 'arch' entry")
        return cls(**known)


def save_tensors(path: str | os.PathLike[str], tensors: dict[str, torch.Tensor],
                 metadata: dict[str, str]) -> Path:
    """Write tensors atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp),
                  metadata=metadata)
    return path


def save_model(path: str | os.PathLike[str], net: nn.Module, meta: ModelMeta) -> Path:
    """Save weights and metadata; the spec in ``meta.arch`` must rebuild ``net``."""
    spec = getattr(net, "spec", None)
    if spec is not None:
        meta.arch = spec()
    return save_tensors(path, net.state_dict(), {META_KEY: meta.to_json()})


def read_meta(path: str | os.PathLike[str]) -> ModelMeta:
    """Read only the metadata of a model file (cheap: the header)."""
    from safetensors import safe_open

    path = Path(path)
    if path.is_dir():
        raise ModelError(f"{path} is a folder, not a model file; give a .safetensors file")
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            md = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{path.name} is not a valid safetensors model file ({exc})") from exc
    if META_KEY not in md:
        raise ModelError(f"{path.name} has no Restorer metadata; it is not a Restorer model")
    try:
        return ModelMeta.from_json(md[META_KEY])
    except (json.JSONDecodeError, TypeError) as exc:
        raise ModelError(f"{path.name} has corrupt metadata ({exc})") from exc


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu"
               ) -> tuple[nn.Module, ModelMeta]:
    """Rebuild the network described in the file and load its weights, in eval mode."""
    path = Path(path)
    meta = read_meta(path)
    net = build_net(meta.arch)
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{path.name} is corrupt: its weights cannot be read ({exc})") from exc
    wrong = _mismatch(net.state_dict(), state)
    if wrong:
        raise ModelError(f"{path.name} does not match its declared architecture {meta.arch}: "
                         f"{wrong}")
    net.load_state_dict(state, strict=True)
    return net.to(device).eval(), meta


def _mismatch(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> str:
    """What keeps ``state`` from loading into a network whose state is ``own``, in one line
    (torch's own message spans many lines and its first ends at a colon)."""
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and own[k].shape != state[k].shape]
    parts = []
    if missing:
        parts.append(f"{len(missing)} weight(s) missing, such as {missing[0]}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected weight(s), such as {unexpected[0]}")
    if shapes:
        k = shapes[0]
        parts.append(f"{len(shapes)} weight(s) of the wrong shape, such as {k} "
                     f"({tuple(state[k].shape)} where {tuple(own[k].shape)} is expected)")
    return "; ".join(parts)


def default_model_path() -> Path:
    """``$RESTORER_MODEL``, else the model bundled in a frozen app, else ``<repo>/models``."""
    env = os.environ.get("RESTORER_MODEL")
    if env:
        return Path(env)
    base = getattr(sys, "_MEIPASS", None)
    if base:
        return Path(base) / "models" / "default.safetensors"
    return Path(__file__).resolve().parent.parent / "models" / "default.safetensors"
