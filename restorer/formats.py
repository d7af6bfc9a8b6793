"""File kinds by name: which inputs are still images (read with OpenCV) rather than videos."""

from __future__ import annotations

# Suffixes (lower case) of the still images OpenCV reads; anything else is handed to ffmpeg.
IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
