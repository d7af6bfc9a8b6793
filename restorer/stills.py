"""Export one frame as a still: 16-bit PNG or TIFF at the source's full resolution.

The still is merged in floating point from the frame's original L and its colour, so its 16
bits carry the merge's precision rather than an 8-bit frame scaled up. It is written atomically
and never over the episode itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from restorer.color import grey_to_L, merge_L_ab_float
from restorer.errors import OutputError
from restorer.fsutil import atomic_path

STILL_SUFFIXES = (".png", ".tif", ".tiff")


def still_rgb16(grey: np.ndarray, ab: np.ndarray, chroma: float = 1.0) -> np.ndarray:
    """uint16 RGB ``(H, W, 3)`` of a frame: its grey original with full-resolution ``ab``."""
    rgb = merge_L_ab_float(grey_to_L(grey), ab, chroma)
    return (np.clip(rgb, 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)


def write_still(path: str | os.PathLike[str], grey: np.ndarray, ab: np.ndarray,
                chroma: float = 1.0, *, sources: tuple[Path, ...] = (),
                overwrite: bool = False) -> Path:
    """Write the frame to ``path`` (.png, .tif or .tiff) as 16-bit RGB; returns the path.

    Raises :class:`OutputError` with a one-line reason: an unknown suffix, a source given as
    the output, an existing file without ``overwrite``, or a failed write (nothing is left).
    """
    path = Path(path).expanduser()
    if path.suffix.lower() not in STILL_SUFFIXES:
        raise OutputError(f"a still is saved as PNG or TIFF (.png, .tif); got {path.name!r}")
    for src in sources:
        if path.exists() and Path(src).exists() and path.resolve() == Path(src).resolve():
            raise OutputError(f"{path.name} is the episode itself; choose another file")
    if path.exists() and not overwrite:
        raise OutputError(f"{path} already exists")
    if not path.parent.is_dir():
        raise OutputError(f"the folder {path.parent} does not exist")
    bgr = cv2.cvtColor(still_rgb16(grey, ab, chroma), cv2.COLOR_RGB2BGR)
    try:
        with atomic_path(path) as tmp:
            if not cv2.imwrite(str(tmp), bgr):
                raise OSError(f"could not encode {path.suffix} to {tmp.name}")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {getattr(exc, 'strerror', None) or exc}") \
            from None
    return path
