"""Small filesystem helpers shared by everything that writes files atomically."""

from __future__ import annotations

import os
from pathlib import Path


def set_default_mode(path: Path) -> None:
    """mkstemp makes files private (0600); a finished file gets the usual umask mode instead."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
