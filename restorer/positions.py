"""Positions in a video as users type them (``--start``/``--end``): frame numbers or times.

Shared by ``restorer colourize`` and ``restorer evaluate``; the frame rate comes from the probed
source, so parsing and conversion to a frame number are two steps.
"""

from __future__ import annotations

import re

from restorer.errors import RestorerError


def parse_position(text: str | None) -> tuple[str, float] | None:
    """``"250"`` is frame 250; ``"10s"``, ``"1:02.5"``, ``"00:01:02:12"`` (HH:MM:SS:FF) are times.

    Returns ``("frame", n)`` or ``("time", seconds)``; for HH:MM:SS:FF the frames part is kept as
    ``("tc", seconds, frames)`` encoded as seconds plus a fractional marker by the caller.
    """
    if text is None:
        return None
    t = text.strip()
    if re.fullmatch(r"\d+", t):
        return ("frame", float(int(t)))
    if re.fullmatch(r"\d+(\.\d+)?s", t):
        return ("time", float(t[:-1]))
    parts = t.split(":")
    try:
        if len(parts) == 4:  # timecode: the caller converts FF with the source's rate
            h, m, s, f = (int(p) for p in parts)
            return ("tc", h * 3600 + m * 60 + s + f / 1000.0)
        if len(parts) in (2, 3):
            secs = 0.0
            for p in parts:
                secs = secs * 60 + float(p)
            return ("time", secs)
        return ("time", float(t))
    except ValueError:
        raise RestorerError(f"cannot read position {text!r}; use a frame number, 12.5s, "
                            "MM:SS(.s), HH:MM:SS(.s) or HH:MM:SS:FF") from None


def to_frame(pos: tuple[str, float] | None, fps: float) -> int | None:
    """The frame number of a :func:`parse_position` result at ``fps`` (None stays None).

    Timecode frames count at the nominal rate (``round(fps)``: 30 for 29.97), as on a VTR.
    """
    if pos is None:
        return None
    kind, value = pos
    if kind == "frame":
        return int(value)
    if kind == "tc":
        whole = int(value)
        frames = round((value - whole) * 1000)
        return int(whole * round(fps) + frames)
    return int(round(value * fps))
