"""Which torch device to run on: shared by inference, training and ``restorer doctor``."""

from __future__ import annotations

import torch

from restorer.errors import ModelError


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` prefers CUDA, then Apple's MPS, then the CPU; a named device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ModelError("--device cuda was asked for, but torch sees no CUDA GPU; use auto or cpu")
    if name == "mps" and not (getattr(torch.backends, "mps", None)
                              and torch.backends.mps.is_available()):
        raise ModelError("--device mps was asked for, but this machine has no Apple MPS device")
    if name not in ("cpu", "cuda", "mps") and not name.startswith("cuda:"):
        raise ModelError(f"unknown device {name!r}; choose auto, cpu, cuda or mps")
    return torch.device(name)
