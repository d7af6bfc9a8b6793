"""Join an episode's finished chunks into its master, with the source's audio and subtitles, and
prove it matches the source before it is renamed into place. No Ray here.

The chunks are joined by ffmpeg's concat demuxer with the video copied, not re-encoded: every
chunk is a whole encode of its own (H.264 chunks start with an IDR frame and reference nothing
before it, so they are closed-GOP segments; ProRes and FFV1 are intra-only). The audio and
subtitles come from the source once, for the whole episode, exactly as ``restorer colourize``
carries them (:func:`restorer.media.writer.source_streams`).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from restorer.errors import FarmError, RestorerError
from restorer.fsutil import fsync_file, set_default_mode, temp_file_beside
from restorer.media import VideoInfo, ffmpeg_exe, probe
from restorer.media.writer import source_streams

_FORMATS = {".mkv": "matroska", ".mov": "mov", ".avi": "avi"}


def _concat_line(path: Path) -> str:
    # The concat demuxer's quoting: a single-quoted string, with ' written as '\''.
    quoted = str(path.resolve()).replace("'", "'\\''")
    return f"file '{quoted}'\n"


def verify(path: Path, frames: int, fps: Fraction, audio_streams: int) -> dict[str, Any]:
    """Check a master against what its source says it must be; return what was measured.

    Raises :class:`FarmError` naming the first mismatch.
    """
    try:
        got = probe(path)
    except RestorerError as exc:
        raise FarmError(f"the assembled {path.name} does not read back: {exc}") from exc
    if got.frame_count != frames:
        raise FarmError(f"the assembled master has {got.frame_count} frames, the source range "
                        f"{frames}; it was not kept")
    if got.fps != fps or got.vfr:
        raise FarmError(f"the assembled master runs at {got.fps} fps"
                        f"{' (irregular)' if got.vfr else ''}, the source at {fps}; it was "
                        "not kept")
    if len(got.audio) != audio_streams:
        raise FarmError(f"the assembled master has {len(got.audio)} audio streams, the source "
                        f"{audio_streams}; it was not kept")
    want = float(frames / fps)
    if abs(got.duration - want) > 1.5 / float(fps):
        raise FarmError(f"the assembled master lasts {got.duration:.3f} s, the source range "
                        f"{want:.3f} s; it was not kept")
    return {"frames": got.frame_count, "fps": str(got.fps), "duration": round(got.duration, 6),
            "audio_streams": len(got.audio)}


def assemble(chunks: Sequence[Path], source: VideoInfo, dst: Path, frames: int, fps: Fraction
             ) -> tuple[dict[str, Any], list[str]]:
    """Write ``dst`` from ``chunks`` (in order) and the streams of ``source``, verified.

    Returns what :func:`verify` measured and the notes on converted or dropped streams. ``dst``
    is replaced only by a master that passed; on any failure it is left as it was.
    """
    suffix = dst.suffix.lower()
    plan = source_streams(source, suffix, fps)
    listing = temp_file_beside(dst, ".txt")
    tmp = temp_file_beside(dst)
    try:
        listing.write_text("".join(_concat_line(c) for c in chunks), encoding="utf-8")
        cmd = [ffmpeg_exe(), "-hide_banner", "-v", "error", "-y",
               "-f", "concat", "-safe", "0", "-i", str(listing), *plan.input_args,
               "-map", "0:v:0", *plan.maps, "-c:v", "copy", *plan.codec_args]
        if suffix in (".mp4", ".m4v", ".mov"):
            cmd += ["-movflags", "+faststart"]
        cmd += ["-f", _FORMATS.get(suffix, "mp4"), str(tmp)]
        done = subprocess.run(cmd, capture_output=True, start_new_session=True, check=False)
        if done.returncode != 0:
            text = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise FarmError(f"joining the chunks of {dst.name} failed: "
                            f"{text[-1] if text else f'ffmpeg exited with {done.returncode}'}")
        measured = verify(tmp, frames, fps, len(source.audio))
        set_default_mode(tmp)
        fsync_file(tmp)
        os.replace(tmp, dst)
    finally:
        listing.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    return measured, list(plan.audio_notes + plan.stream_notes)
