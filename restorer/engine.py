"""The Colouriser: grey frames in, colour frames out.

The network runs at a reduced working size (short side ``working_size``), because chroma carries
far less detail than luminance and the cost of a U-Net scales with pixels. Its ab is brought back to
full resolution with a fast guided filter steered by the full-resolution L, so colour edges snap
to the luminance edges, then merged with the original L, which is never altered.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from restorer.checkpoint import ModelMeta, default_model_path, load_model
from restorer.color import AB_SCALE, GREY_TO_L, L_SCALE, merge_L_ab
from restorer.errors import ModelError

log = logging.getLogger(__name__)

# Above this many working pixels per frame, the network runs on overlapping tiles.
MAX_TILE_PIXELS = 1024 * 1024
TILE_OVERLAP = 32


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


def working_shape(height: int, width: int, short_side: int, multiple: int = 8) -> tuple[int, int]:
    """(h, w) with the short side near ``short_side``, aspect kept, rounded to ``multiple``."""
    scale = min(1.0, short_side / min(height, width))
    h = max(multiple, int(round(height * scale / multiple)) * multiple)
    w = max(multiple, int(round(width * scale / multiple)) * multiple)
    return h, w


def guided_upsample(L_full: np.ndarray, L_small: np.ndarray, ab_small: np.ndarray,
                    radius: int = 2, eps: float = 1e-3) -> np.ndarray:
    """Fast guided filter (He & Sun 2015): fit ab ~ a*L + b locally at low resolution,
    upsample the coefficients, apply them to the full-resolution L.

    ``L_*`` are float32 in [0, 100]; ``ab_small`` is ``(h, w, 2)``; returns ``(H, W, 2)``.
    """
    H, W = L_full.shape
    ksize = (2 * radius + 1, 2 * radius + 1)
    box = lambda x: cv2.blur(x, ksize, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    I_ = L_small * np.float32(1 / 100)
    mean_I = box(I_)
    var_I = box(I_ * I_) - mean_I * mean_I
    mean_p = box(ab_small)
    cov = box(ab_small * I_[..., None]) - mean_I[..., None] * mean_p
    A = cov / (var_I[..., None] + np.float32(eps))
    B = mean_p - A * mean_I[..., None]
    A = cv2.resize(box(A), (W, H), interpolation=cv2.INTER_LINEAR)
    B = cv2.resize(box(B), (W, H), interpolation=cv2.INTER_LINEAR)
    return A * (L_full * np.float32(1 / 100))[..., None] + B


class Colouriser:
    """Runs a colourisation network on grey frames; thread-safe for one caller at a time."""

    def __init__(self, net: nn.Module, meta: ModelMeta, device: str | torch.device = "auto",
                 batch_size: int = 8, working_size: int | None = None,
                 on_warning: Callable[[str], None] | None = None,
                 backend: str = "torch") -> None:
        self.device = pick_device(device) if isinstance(device, str) else device
        self.net = net.to(self.device).eval()
        self.meta = meta
        self.batch_size = max(1, batch_size)
        self.working_size = int(working_size or meta.working_size)
        self.on_warning = on_warning or (lambda msg: log.warning(msg))
        self.last_infer_ms = 0.0
        self._half = self.device.type == "cuda"
        # The U-Net halves the size ``depth`` times, so working sizes are multiples of 2**depth.
        self.multiple = max(8, 2 ** int(meta.arch.get("depth", 3)))
        self.backend = "torch"
        self._onnx = None
        if backend not in ("auto", "torch", "onnx"):
            raise ModelError(f"unknown backend {backend!r}; choose auto, torch or onnx")
        if backend != "torch" and self.device.type == "cpu":
            self._try_onnx(required=backend == "onnx")

    def _try_onnx(self, required: bool) -> None:
        from restorer import onnx_backend

        if not onnx_backend.available():
            if required:
                raise ModelError("the onnx backend needs the onnx and onnxruntime packages")
            return
        try:
            self._onnx = onnx_backend.OnnxRunner(self.net, self.multiple)
            self.backend = "onnxruntime"
        except Exception as exc:  # any export failure: torch still works, so say and go on
            if required:
                raise ModelError(f"cannot run this model with ONNX Runtime: {exc}") from exc
            self.on_warning(f"ONNX Runtime unavailable for this model ({exc}); using torch")

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, device: str = "auto",
             **kwargs: object) -> Colouriser:
        """Load a model file (the shipped default when ``path`` is None)."""
        path = Path(path) if path is not None else default_model_path()
        if not path.exists():
            raise ModelError(f"model file not found: {path} (pass --model or set RESTORER_MODEL)")
        net, meta = load_model(path, "cpu")
        kwargs.setdefault("backend", "auto")
        return cls(net, meta, device=device, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def from_net(cls, net: nn.Module, meta: ModelMeta, device: str = "cpu",
                 **kwargs: object) -> Colouriser:
        return cls(net, meta, device=device, **kwargs)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ stages
    def working_shape(self, height: int, width: int) -> tuple[int, int]:
        return working_shape(height, width, self.working_size, self.multiple)

    def to_working(self, grey: np.ndarray) -> np.ndarray:
        """Full-resolution uint8 grey to uint8 grey at the working size."""
        h, w = self.working_shape(*grey.shape[:2])
        if (h, w) == grey.shape[:2]:
            return grey
        return cv2.resize(grey, (w, h), interpolation=cv2.INTER_AREA)

    @torch.inference_mode()
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h * w <= MAX_TILE_PIXELS:
            return self.net(x)
        return self._forward_tiled(x)

    def _forward_tiled(self, x: torch.Tensor) -> torch.Tensor:
        """Overlapping tiles with linear feathering, so seams do not show."""
        n, _, h, w = x.shape
        side = int(MAX_TILE_PIXELS**0.5)
        step = side - 2 * TILE_OVERLAP
        out = torch.zeros((n, 2, h, w), device=x.device, dtype=x.dtype)
        weight = torch.zeros((1, 1, h, w), device=x.device, dtype=x.dtype)
        ramp = torch.ones(side, device=x.device, dtype=x.dtype)
        edge = torch.linspace(0.05, 1.0, TILE_OVERLAP, device=x.device, dtype=x.dtype)
        ramp[:TILE_OVERLAP] = edge
        ramp[-TILE_OVERLAP:] = edge.flip(0)
        for y0 in range(0, max(1, h - 2 * TILE_OVERLAP), step):
            for x0 in range(0, max(1, w - 2 * TILE_OVERLAP), step):
                y1, x1 = min(h, y0 + side), min(w, x0 + side)
                ya, xa = max(0, y1 - side), max(0, x1 - side)
                tile = self.net(x[..., ya:y1, xa:x1])
                wy = ramp[: y1 - ya][:, None]
                wx = ramp[: x1 - xa][None, :]
                wt = (wy * wx)[None, None]
                out[..., ya:y1, xa:x1] += tile * wt
                weight[..., ya:y1, xa:x1] += wt
        return out / weight.clamp(min=1e-6)

    def predict_ab_small(self, grey_small: Sequence[np.ndarray]) -> list[np.ndarray]:
        """ab ``(h, w, 2)`` float32 at working size for a list of working-size grey frames.

        On GPU out-of-memory the batch is halved (and the user told) until it fits; at batch 1 it
        raises rather than returning anything uncoloured.
        """
        out: list[np.ndarray] = []
        i = 0
        t0 = time.perf_counter()
        while i < len(grey_small):
            chunk = grey_small[i: i + self.batch_size]
            try:
                out.extend(self._predict_chunk(chunk))
            except torch.OutOfMemoryError as exc:
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if self.batch_size == 1:
                    raise ModelError(
                        "GPU out of memory even at batch size 1; lower --size or use --device cpu"
                    ) from exc
                self.batch_size = max(1, self.batch_size // 2)
                self.on_warning(f"GPU out of memory; batch size lowered to {self.batch_size}")
                continue
            i += len(chunk)
        self.last_infer_ms = (time.perf_counter() - t0) * 1000 / max(1, len(grey_small))
        return out

    def _predict_chunk(self, chunk: Sequence[np.ndarray]) -> list[np.ndarray]:
        shapes = {g.shape for g in chunk}
        if len(shapes) != 1:
            return [a for g in chunk for a in self._predict_chunk([g])]
        L = GREY_TO_L[np.stack(chunk)]
        xn = (L / np.float32(L_SCALE) - np.float32(1.0))[:, None]
        h, w = xn.shape[-2:]
        if self._onnx is not None and self._onnx.accepts(h, w) and h * w <= MAX_TILE_PIXELS:
            ab = np.ascontiguousarray(self._onnx(xn).transpose(0, 2, 3, 1)) * np.float32(AB_SCALE)
            if not np.isfinite(ab).all():
                raise ModelError(f"model {self.meta.name!r} produced non-finite colour; "
                                 "it is corrupt")
            return list(ab)
        x = torch.from_numpy(xn)
        x = x.to(self.device, non_blocking=True)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self._half):
            y = self._forward(x)
        ab = (y.float() * AB_SCALE).permute(0, 2, 3, 1).contiguous().cpu().numpy()
        if not np.isfinite(ab).all():
            raise ModelError(f"model {self.meta.name!r} produced non-finite colour; it is corrupt")
        return list(ab)

    def upsample(self, grey: np.ndarray, grey_small: np.ndarray, ab_small: np.ndarray
                 ) -> np.ndarray:
        """ab at working size to full resolution, edge-aware."""
        L_full = GREY_TO_L[grey]
        if grey_small.shape == grey.shape:
            return ab_small
        return guided_upsample(L_full, GREY_TO_L[grey_small], ab_small)

    @staticmethod
    def merge(grey: np.ndarray, ab_full: np.ndarray, chroma: float = 1.0) -> np.ndarray:
        """Original L plus predicted ab to uint8 RGB."""
        return merge_L_ab(GREY_TO_L[grey], ab_full, chroma)

    # ------------------------------------------------------------------ one call
    def predict_ab(self, grey: np.ndarray) -> np.ndarray:
        """Full-resolution ab for one grey frame (what the GUI caches for re-merging)."""
        small = self.to_working(grey)
        return self.upsample(grey, small, self.predict_ab_small([small])[0])

    def colourise(self, frames: Sequence[np.ndarray], chroma: float = 1.0) -> list[np.ndarray]:
        """uint8 grey frames ``(H, W)`` to uint8 RGB frames ``(H, W, 3)``."""
        for f in frames:
            if f.ndim != 2 or f.dtype != np.uint8:
                raise ValueError(f"expected uint8 grey frames (H, W); got {f.dtype} {f.shape}")
        smalls = [self.to_working(f) for f in frames]
        abs_ = self.predict_ab_small(smalls)
        return [self.merge(f, self.upsample(f, s, a), chroma)
                for f, s, a in zip(frames, smalls, abs_, strict=True)]
