"""Chroma scopes for one frame: a vectorscope and histograms of a* and b*.

The vectorscope is the colourist's instrument for exactly what a colouriser invents: it plots
each pixel's chroma (BT.709 Cb against Cr, the axes every grading suite uses), so a frame whose
colour is all one brown cast shows as a short stub towards the skin-tone line, and a grey
original as a dot in the centre. The a*/b* histograms show the same chroma in the CIELAB axes
the network predicts. Frames are scaled to at most :data:`SCOPE_SIDE` pixels first: a scope
needs the distribution, not every pixel, and this keeps one under a few milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SCOPE_SIDE = 360
#: a* and b* range of the histograms.
AB_RANGE = 100.0
# BT.709 chroma of R'G'B' in 0..1: Cb, Cr in -0.5..0.5.
_CB = np.array([-0.1146, -0.3854, 0.5], np.float32)
_CR = np.array([0.5, -0.4542, -0.0458], np.float32)
#: The 75% colour-bar targets and the skin-tone line, as (label, cb, cr) and an angle.
TARGETS = {name: (float(_CB @ rgb), float(_CR @ rgb)) for name, rgb in {
    "R": np.array([0.75, 0, 0], np.float32), "Yl": np.array([0.75, 0.75, 0], np.float32),
    "G": np.array([0, 0.75, 0], np.float32), "Cy": np.array([0, 0.75, 0.75], np.float32),
    "B": np.array([0, 0, 0.75], np.float32), "Mg": np.array([0.75, 0, 0.75], np.float32),
}.items()}
SKIN_LINE_DEG = 123.0  # the I-line of NTSC, where skin of every complexion falls


@dataclass(frozen=True)
class Scopes:
    """Scopes of one frame: ``vector`` a ``(size, size)`` density in 0..1 (row 0 is Cr
    +0.5, column 0 is Cb -0.5), and ``hist_a``/``hist_b`` pixel fractions over ``edges``."""

    vector: np.ndarray
    edges: np.ndarray
    hist_a: np.ndarray
    hist_b: np.ndarray
    mean_chroma: float  # mean C*ab, the figure the sepia failure lowers


def _small(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = SCOPE_SIDE / max(h, w)
    if s >= 1:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))),
                      interpolation=cv2.INTER_AREA)


def measure(frame: np.ndarray, size: int = 192, bins: int = 100) -> Scopes:
    """Scopes of a uint8 RGB ``(H, W, 3)`` or grey ``(H, W)`` frame."""
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, -1)
    rgb = _small(np.ascontiguousarray(frame[..., :3])).astype(np.float32) / 255.0
    flat = rgb.reshape(-1, 3)
    cb, cr = flat @ _CB, flat @ _CR
    # Row 0 at the top is +Cr (red up), as on a hardware vectorscope.
    col = np.clip(((cb + 0.5) * size).astype(np.int32), 0, size - 1)
    row = np.clip(((0.5 - cr) * size).astype(np.int32), 0, size - 1)
    counts = np.bincount(row * size + col, minlength=size * size).reshape(size, size)
    # Log density: a few saturated pixels stay visible beside a large grey background.
    vector = np.log1p(counts.astype(np.float32))
    vector /= max(1e-6, float(vector.max()))
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab).reshape(-1, 3)
    edges = np.linspace(-AB_RANGE, AB_RANGE, bins + 1, dtype=np.float32)
    n = max(1, len(lab))
    hist_a = np.histogram(lab[:, 1], edges)[0].astype(np.float32) / n
    hist_b = np.histogram(lab[:, 2], edges)[0].astype(np.float32) / n
    chroma = float(np.hypot(lab[:, 1], lab[:, 2]).mean())
    return Scopes(vector, edges, hist_a, hist_b, chroma)
