"""Probe a video with ffmpeg alone (the static build ships no ffprobe).

* Exact frame rate: the ``F num:den`` field of a one-frame yuv4mpeg header, so 29.97 stays
  30000/1001 instead of the rounded figure ``ffmpeg -i`` prints.
* Frame count: a stream-copy pass that counts packets (no decoding, so it is fast). A source whose
  packet count disagrees with duration x fps is variable-frame-rate; for it the count is the number
  of frames after resampling to constant rate, which is what the reader yields.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal

from restorer.errors import MediaError


@functools.cache
def ffmpeg_exe() -> str:
    """The ffmpeg binary: bundled beside a frozen app, else imageio-ffmpeg's static build."""
    base = getattr(sys, "_MEIPASS", None)
    if base:
        for name in ("ffmpeg", "ffmpeg.exe"):
            cand = Path(base) / "ffmpeg" / name
            if cand.is_file():
                return str(cand)
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True)
class ColourTags:
    """Colour description of the video stream, as ffmpeg names it (None when untagged)."""

    range: str | None = None  # "tv" (limited) or "pc" (full)
    matrix: str | None = None  # e.g. "bt709", "smpte170m", "bt470bg"
    primaries: str | None = None
    transfer: str | None = None


@dataclass(frozen=True)
class AudioStream:
    index: int  #: the stream's index in the file (what ``-map 0:N`` names)
    codec: str
    description: str
    language: str | None = None  #: ISO 639 tag as stored, e.g. "eng"
    title: str | None = None


@dataclass(frozen=True)
class SubtitleStream:
    index: int  #: the stream's index in the file
    codec: str  #: e.g. "subrip", "ass", "mov_text", "dvd_subtitle"
    language: str | None = None
    title: str | None = None


FieldOrder = Literal["progressive", "tt", "bb", "unknown"]


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int
    height: int
    fps: Fraction
    frame_count: int
    duration: float
    pix_fmt: str
    bit_depth: int
    codec: str
    vfr: bool
    audio: tuple[AudioStream, ...] = ()
    colour: ColourTags = field(default_factory=ColourTags)
    start_time: float = 0.0
    container: str = ""  # ffmpeg's demuxer name, e.g. "mov", "matroska", "mpegts"
    #: Sample (pixel) aspect ratio; 1 for square pixels and for untagged sources.
    sar: Fraction = Fraction(1)
    #: Clockwise degrees (0, 90, 180, 270) the picture must be turned to display upright, from
    #: the stream's display matrix. ``width``/``height`` are the *decoded* frame's, before it.
    rotation: int = 0
    #: Interlacing: "tt" top field first, "bb" bottom field first, "progressive", or "unknown"
    #: (untagged). Comes from the stream flags, or a measurement when they are missing.
    field_order: FieldOrder = "progressive"
    subtitles: tuple[SubtitleStream, ...] = ()
    #: Frames the container declares (duration x fps, or its frame count) when that is known;
    #: more than ``frame_count`` means the file is cut short.
    declared_frames: int | None = None

    def time_of(self, n: int) -> float:
        return float(n / self.fps)

    def frame_at(self, seconds: float) -> int:
        return int(Fraction(seconds).limit_denominator(1_000_000) * self.fps + Fraction(1, 2))

    def timecode(self, n: int) -> str:
        """HH:MM:SS:FF, counting frames at the nominal (rounded) rate, non-drop-frame."""
        nominal = max(1, round(self.fps))
        ff = n % nominal
        secs = n // nominal
        return f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}:{ff:02d}"

    def describe(self) -> str:
        rate = f"{self.fps.numerator}/{self.fps.denominator}" if self.fps.denominator != 1 \
            else str(self.fps.numerator)
        return (f"{self.path.name}: {self.width}x{self.height}, {rate} fps, "
                f"{self.frame_count} frames, "
                f"{self.pix_fmt}, {len(self.audio)} audio stream(s)")


_STREAM_RE = re.compile(r"Stream #0:(\d+)[^:]*: (Video|Audio): (.*)")
_INPUT_RE = re.compile(r"Input #0, ([^,]+)")
_DUR_RE = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)(?:, start: (-?\d+(?:\.\d+)?))?")
_SIZE_RE = re.compile(r"\b(\d{2,5})x(\d{2,5})\b")
_Y4M_RE = re.compile(rb"F(\d+):(\d+)")
_FRAME_RE = re.compile(r"frame=\s*(\d+)")


def _run(args: list[str], timeout: float = 600) -> subprocess.CompletedProcess[bytes]:
    # A session of its own: a terminal Ctrl-C reaches only us, and we stop ffmpeg cleanly.
    return subprocess.run([ffmpeg_exe(), "-hide_banner", *args], capture_output=True,
                          start_new_session=True,
                          timeout=timeout, check=False)


def _split_top(s: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in s:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    parts.append(cur.strip())
    return parts


def _bit_depth(pix_fmt: str) -> int:
    m = re.search(r"p(\d{2})(le|be)?$", pix_fmt) or re.search(r"(\d{2})(le|be)$", pix_fmt)
    return int(m.group(1)) if m else 8


def _colour_tags(detail: str) -> ColourTags:
    # "yuv420p(tv, bt709)" or "yuvj422p(pc, bt470bg/unknown/unknown)" or "yuv420p(progressive)"
    inside = [p.strip() for p in detail.split(",")]
    rng = next((p for p in inside if p in ("tv", "pc")), None)
    if rng is None and "yuvj" in detail:
        rng = "pc"
    matrix = primaries = transfer = None
    for p in inside:
        if p in ("tv", "pc", "progressive", "top first", "bottom first",
                 "top coded first (swapped)"):
            continue
        trio = p.split("/")
        if re.match(r"^(bt|smpte|fcc|ycgco|gbr|unknown|chroma)", trio[0]):
            matrix = trio[0] if trio[0] != "unknown" else None
            if len(trio) == 3:
                primaries = trio[1] if trio[1] != "unknown" else None
                transfer = trio[2] if trio[2] != "unknown" else None
            else:
                primaries = transfer = matrix
    return ColourTags(rng, matrix, primaries, transfer)


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Describe a video file, or raise :class:`MediaError` with a one-line reason."""
    path = Path(path)
    if not path.exists():
        raise MediaError(f"file not found: {path}")
    if path.is_dir():
        raise MediaError(f"{path} is a folder, not a video file")
    if not os.access(path, os.R_OK):
        raise MediaError(f"cannot read {path}: permission denied")
    info = _run(["-i", str(path)]).stderr.decode("utf-8", "replace")
    with open(path, "rb") as fh:
        head = fh.read(16)
    if "moov atom not found" in info and b"ftyp" in head:
        raise MediaError(f"{path.name} is truncated or incomplete (its index is missing)")
    if "Invalid data found" in info or "Stream #0" not in info:
        raise MediaError(f"{path.name} is not a video ffmpeg can read")
    video_line = None
    audio: list[AudioStream] = []
    for m in _STREAM_RE.finditer(info):
        idx, kind, rest = int(m.group(1)), m.group(2), m.group(3)
        if kind == "Video" and video_line is None and "attached pic" not in rest:
            video_line = rest
        elif kind == "Audio":
            audio.append(AudioStream(idx, rest.split()[0].rstrip(","), rest.strip()))
    if video_line is None:
        raise MediaError(f"{path.name} has no video stream (audio-only or data file)")
    parts = _split_top(video_line)
    codec = parts[0].split()[0]
    pix_detail = parts[1] if len(parts) > 1 else ""
    pix_fmt = pix_detail.split("(")[0].strip()
    size = _SIZE_RE.search(video_line)
    if not size:
        raise MediaError(f"{path.name}: cannot find the frame size of its video stream")
    width, height = int(size.group(1)), int(size.group(2))
    dur_m = _DUR_RE.search(info)
    duration = 0.0
    start = 0.0
    if dur_m:
        hh, mm, ss = dur_m.group(1), dur_m.group(2), dur_m.group(3)
        duration = int(hh) * 3600 + int(mm) * 60 + float(ss)
        start = float(dur_m.group(4) or 0.0)

    y4m = _run(["-v", "error", "-i", str(path), "-map", "0:v:0", "-frames:v", "1",
                "-pix_fmt", "gray", "-f", "yuv4mpegpipe", "-"])
    header = y4m.stdout[:200]
    rate = _Y4M_RE.search(header)
    if not header.startswith(b"YUV4MPEG2") or not rate:
        first = y4m.stderr.decode("utf-8", "replace").strip().splitlines()
        why = first[-1] if first else "no frame decoded"
        raise MediaError(f"{path.name} has no decodable video frames ({why})")
    fps = Fraction(int(rate.group(1)), int(rate.group(2)))
    if fps <= 0:
        raise MediaError(f"{path.name}: invalid frame rate {fps}")

    counted = _run(["-nostats", "-stats", "-v", "error", "-i", str(path), "-map", "0:v:0",
                    "-c", "copy", "-f", "null", "-"]).stderr.decode("utf-8", "replace")
    counts = _FRAME_RE.findall(counted)
    packets = int(counts[-1]) if counts else 0
    expected = duration * float(fps)
    vfr = duration > 0 and abs(packets - expected) > max(2.0, 0.02 * expected)
    frame_count = packets
    if vfr or packets == 0:
        # Decode for real: the reader resamples variable rate to constant, so count that.
        decoded = _run(["-nostats", "-stats", "-v", "error", "-i", str(path), "-map", "0:v:0",
                        "-vf", f"fps={fps.numerator}/{fps.denominator}", "-f", "null", "-"])
        counts = _FRAME_RE.findall(decoded.stderr.decode("utf-8", "replace"))
        frame_count = int(counts[-1]) if counts else 0
        vfr = vfr and frame_count > 0
    if frame_count <= 0:
        raise MediaError(f"{path.name} contains no video frames")
    if duration <= 0:
        duration = float(frame_count / fps)
    return VideoInfo(
        path=path, width=width, height=height, fps=fps, frame_count=frame_count,
        duration=duration, pix_fmt=pix_fmt, bit_depth=_bit_depth(pix_fmt), codec=codec, vfr=vfr,
        audio=tuple(audio), colour=_colour_tags(pix_detail[len(pix_fmt):].strip("() ")),
        start_time=start, container=inp.group(1) if (inp := _INPUT_RE.search(info)) else "",
    )
