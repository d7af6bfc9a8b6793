"""Tiny generated clips for tests (lavfi sources); importable as ``from clips import make_clip``."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import imageio_ffmpeg

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def make_clip(
    path: Path,
    *,
    size: tuple[int, int] = (64, 48),
    seconds: float = 1.0,
    fps: str = "25",
    audio: bool = True,
    audio_streams: int = 1,
    colour: bool = True,
    codec: str = "libx264",
    pix_fmt: str | None = None,
    extra: Sequence[str] = (),
) -> Path:
    """Generate a small test clip with ffmpeg's lavfi sources.

    ``testsrc2`` moves every frame, so frames are distinguishable; ``colour=False`` makes it grey.
    """
    w, h = size
    vf = [] if colour else ["format=gray"]
    if w % 2 or h % 2:  # testsrc2 rounds odd sizes down to even
        vf.insert(0, f"scale={w}:{h}")
    cmd = [FFMPEG, "-v", "error", "-y", "-f", "lavfi", "-i",
           f"testsrc2=size={w + w % 2}x{h + h % 2}:rate={fps}:duration={seconds}"]
    for k in range(audio_streams if audio else 0):
        cmd += ["-f", "lavfi", "-i", f"sine=frequency={440 * (k + 1)}:duration={seconds}"]
    cmd += ["-map", "0:v"]
    for k in range(audio_streams if audio else 0):
        cmd += ["-map", f"{k + 1}:a"]
    if vf:
        cmd += ["-vf", ",".join(vf)]
    cmd += ["-c:v", codec]
    if codec == "libx264":
        cmd += ["-preset", "ultrafast", "-g", "12"]
    if pix_fmt:
        cmd += ["-pix_fmt", pix_fmt]
    elif codec == "libx264":
        cmd += ["-pix_fmt", "yuv444p" if (w % 2 or h % 2) else "yuv420p"]
    if audio:
        cmd += ["-c:a", "aac" if path.suffix in (".mp4", ".mov") else "pcm_s16le"]
    cmd += [*extra, str(path)]
    subprocess.run(cmd, check=True)
    return path
