"""Probe a video in process with PyAV: one open, one pass over its packets, one frame decoded.

* Exact frame rate: the rate ffmpeg's own reader settles on (``av_guess_frame_rate``, PyAV's
  ``guessed_rate``), so 29.97 stays 30000/1001 and the reader's constant-rate output agrees.
* Frame count: every packet's timestamp gives its frame's slot on that constant-rate grid, so the
  count needs no decoding. Timestamps that leave the grid, share slots or skip slots mean a
  variable-rate source; for it the count is the number of frames after resampling to constant
  rate (what the reader yields), which only a decode pass (restorer.media.decode) can tell.
* Cut short: missing frames only at the very end, with the container declaring more
  (``declared_frames``), is reported as it is, not as variable rate; the count then comes from
  the same decode pass, as the last packets may not decode.
* The first frame is decoded: it proves the stream decodes and carries the display matrix
  (``rotation``) and, for some codecs, the interlacing flags.
"""

from __future__ import annotations

import functools
import os
import re
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import av.error
from av.container import InputContainer

from restorer.errors import MediaError
from restorer.media.decode import Decoder, display_turn, frame_slot, video_stream


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


def missing_frames(declared: int | None, decodable: int) -> int:
    """Frames a container declares beyond those that decode, or 0 when within the slack (two
    frames, or 1%) that rounding of declared durations leaves: the one rule for "cut short"."""
    if declared is None:
        return 0
    missing = declared - decodable
    return missing if missing > max(2, declared // 100) else 0


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
    #: the stream's display matrix. ``width``/``height`` are the *decoded* frame's, before it;
    #: :attr:`display_size` is after it. A matrix that turns by some other angle reads as 0:
    #: ffmpeg applies that one inside the same frame size.
    rotation: int = 0
    #: Interlacing: "tt" top field first, "bb" bottom field first, "progressive", or "unknown"
    #: (untagged). Comes from the stream flags, or a measurement when they are missing.
    field_order: FieldOrder = "progressive"
    subtitles: tuple[SubtitleStream, ...] = ()
    #: Frames the container declares (duration x fps, or its frame count) when that is known;
    #: more than ``frame_count`` means the file is cut short.
    declared_frames: int | None = None

    @property
    def missing_frames(self) -> int:
        """Declared frames that do not decode (0 unless the file is cut short)."""
        return missing_frames(self.declared_frames, self.frame_count)

    @property
    def display_size(self) -> tuple[int, int]:
        """``(width, height)`` of the upright picture, what the reader yields: after rotation."""
        turned = self.rotation in (90, 270)
        return (self.height, self.width) if turned else (self.width, self.height)

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


# Rates a nominal rate snaps to, silent-film speeds included (this tool restores old film).
STANDARD_RATES = tuple(Fraction(r) for r in (
    "15", "16", "18", "20", "24000/1001", "24", "25", "30000/1001", "30", "48", "50",
    "60000/1001", "60", "100", "120000/1001", "120"))
_SNAP = 0.005  # how close (relative) a measured rate must be to a standard one to take its place
# Missing slots this close to the end are frames a cut-short file lost (B-frames whose packets
# came after the cut), not a variable rate: longer than any reorder delay.
_TAIL_SLOTS = 16
# Packets fed to the decoder looking for a first frame; after them, keyframes only.
_FIRST_FRAME_PACKETS = 300

# libavutil's names (av_color_*_name), which is how ffmpeg's CLI and filters spell them.
_RANGES = {1: "tv", 2: "pc"}
_MATRICES = {0: "gbr", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
             8: "ycgco", 9: "bt2020nc", 10: "bt2020c", 11: "smpte2085", 12: "chroma-derived-nc",
             13: "chroma-derived-c", 14: "ictcp", 15: "ipt-c2", 16: "ycgco-re", 17: "ycgco-ro"}
_PRIMARIES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film",
              9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "ebu3213",
              256: "vgamut"}
_TRANSFERS = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
              8: "linear", 9: "log100", 10: "log316", 11: "iec61966-2-4", 12: "bt1361e",
              13: "iec61966-2-1", 14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084",
              17: "smpte428", 18: "arib-std-b67", 256: "vlog"}

# AVFieldOrder. ffmpeg's own encoders store top-field-first video (other than MJPEG) as TB and
# bottom-field-first as BT, so the first letter is the field shown first in practice.
_FIELD_ORDERS: dict[int, FieldOrder] = {1: "progressive", 2: "tt", 3: "bb", 4: "tt", 5: "bb"}
# Codecs whose bitstream says whether a picture is interlaced: for them an untagged stream whose
# first frame is not interlaced is progressive. Others (PNG, FFV1, raw) cannot say either way.
_SIGNALS_INTERLACE = frozenset({"h264", "hevc", "mpeg1video", "mpeg2video", "mpeg4", "vc1",
                                "wmv3", "dvvideo", "prores", "dnxhd", "mjpeg"})


def _bit_depth(pix_fmt: str) -> int:
    try:
        return max(c.bits for c in av.VideoFormat(pix_fmt).components)
    except (ValueError, av.error.FFmpegError):  # a format this libav does not know by name
        m = re.search(r"p(\d{2})(le|be)?$", pix_fmt) or re.search(r"(\d{2})(le|be)$", pix_fmt)
        return int(m.group(1)) if m else 8


def colour_tags(colour_range: int, matrix: int, primaries: int, transfer: int,
                pix_fmt: str) -> ColourTags:
    """ColourTags from libav's enum values, named as ffmpeg names them; None when unspecified.

    RGB sources (FFV1 ``gbrp``, PNG) carry matrix 0, which ffmpeg names ``"gbr"``: kept as it
    is, as ffmpeg's own ``-i`` listing reported it, so a caller checks ``matrix == "gbr"``.
    """
    rng = _RANGES.get(colour_range)
    if rng is None and pix_fmt.startswith("yuvj"):  # the JPEG formats are full range by name
        rng = "pc"
    return ColourTags(rng, _MATRICES.get(matrix), _PRIMARIES.get(primaries),
                      _TRANSFERS.get(transfer))


def nominal_rate(guessed: Fraction | None, frame_seconds: float | None) -> Fraction | None:
    """The rate to number frames at: ffmpeg's guess when it is a clean rate, else a standard one.

    A source whose timestamps jitter can leave ffmpeg guessing frames/duration (642083/25771);
    its median frame duration, when within 0.5% of a standard rate, names the rate it was
    meant to have.
    """
    if guessed is not None and guessed > 0 and (guessed.denominator in (1, 2, 1001)
                                                or guessed in STANDARD_RATES):
        return guessed
    if frame_seconds and frame_seconds > 0:
        measured = 1 / frame_seconds
        best = min(STANDARD_RATES, key=lambda r: abs(float(r) - measured))
        if abs(float(best) - measured) <= _SNAP * float(best):
            return best
    return guessed if guessed is not None and guessed > 0 else None


@dataclass(frozen=True)
class Timeline:
    """Where a stream's frames fall on the constant-rate grid that starts at its first frame."""

    slots: int  #: slots from the first frame to the last: what a constant-rate read yields
    frames: int  #: frames (timestamps) placed
    on_grid: bool  #: every timestamp sits on its slot (within timestamp rounding)
    shared: bool  #: two frames fall in one slot
    gaps: int  #: empty slots before the last ``_TAIL_SLOTS``
    tail_gaps: int  #: empty slots among the last ``_TAIL_SLOTS``

    @property
    def constant(self) -> bool:
        """Constant rate: one frame per slot (a cut-short end may miss a few)."""
        return self.on_grid and not self.shared and not self.gaps


def timeline(offsets: Sequence[int], frames_per_tick: Fraction) -> Timeline:
    """Place frames by their timestamp ``offsets`` (ticks after the first frame, >= 0)."""
    r = float(frames_per_tick)
    # Each timestamp, and the first frame's, is rounded to a tick: allow one tick, plus a hair.
    tol = r + 0.01
    seen: set[int] = set()
    on_grid, shared = True, False
    for off in offsets:
        x = off * r
        slot = frame_slot(off, r)
        if abs(x - slot) > tol:
            on_grid = False
        if slot in seen:
            shared = True
        seen.add(slot)
    if not seen:
        return Timeline(0, 0, True, False, 0, 0)
    last = max(seen)
    tail_from = last - _TAIL_SLOTS
    missing = [s for s in range(last + 1) if s not in seen] if len(seen) < last + 1 else []
    tail = sum(1 for s in missing if s > tail_from)
    return Timeline(last + 1, len(offsets), on_grid, shared, len(missing) - tail, tail)


def _decoded_count(path: Path, fps: Fraction) -> int:
    """Frames the reader yields from the top: decodes them all, as it does (none converted)."""
    with Decoder(path, fps) as decoder:
        return decoder.count()


def _seconds(tag: str | None) -> float | None:
    """Matroska's per-track ``DURATION`` tag, ``HH:MM:SS.nnnnnnnnn``, in seconds."""
    m = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d*)?)", (tag or "").strip())
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) if m else None


def _declared_frames(container: InputContainer, stream: av.VideoStream,
                     fps: Fraction) -> int | None:
    if stream.frames > 0:
        return stream.frames
    # mkvmerge's statistics tags; ffmpeg's Matroska muxer writes DURATION only.
    counted = stream.metadata.get("NUMBER_OF_FRAMES", "")
    if counted.isdigit() and int(counted) > 0:
        return int(counted)
    if stream.duration and stream.time_base:
        return round(stream.duration * stream.time_base * fps)
    secs = _seconds(stream.metadata.get("DURATION") or stream.metadata.get("duration"))
    if secs is not None and stream.start_time and stream.time_base:
        secs -= float(stream.start_time * stream.time_base)  # the tag is where the track ends
    if secs is None and container.duration and len(container.streams) == 1:
        # The container's duration is its longest stream's: only this one's when it is alone.
        secs = container.duration / av.time_base
    return round(Fraction(secs).limit_denominator(1_000_000) * fps) if secs else None


def _guessed_rate(stream: av.VideoStream) -> Fraction | None:
    """The rate ffmpeg's CLI reads the stream at (``av_guess_frame_rate``), else its average."""
    return stream.guessed_rate or stream.average_rate or stream.base_rate


def _audio_description(stream: av.AudioStream) -> str:
    cc: Any = getattr(stream, "codec_context", None)
    if cc is None:
        return _codec_name(stream)
    parts = [_codec_name(stream) + (f" ({cc.profile})" if cc.profile else "")]
    if cc.sample_rate:
        parts.append(f"{cc.sample_rate} Hz")
    if cc.layout is not None:
        parts.append(cc.layout.name)
    return ", ".join(parts)


def _tag(stream: Any, key: str) -> str | None:
    value = stream.metadata.get(key)
    return (value.strip() or None) if isinstance(value, str) else None


def _codec_name(stream: Any) -> str:
    """ffmpeg's name for the stream's codec (``avcodec_get_name``), as its CLI lists it."""
    cc = getattr(stream, "codec_context", None)  # None when this libav has no decoder for it
    return cc.codec.canonical_name if cc is not None else "unknown"


def _field_order(stored: int, first: av.VideoFrame, codec: str) -> FieldOrder:
    if stored in _FIELD_ORDERS:
        return _FIELD_ORDERS[stored]
    if not first.interlaced_frame and codec in _SIGNALS_INTERLACE:
        return "progressive"
    # An interlaced frame without a stored order: libav does not hand PyAV the frame's
    # top-field-first flag, and guessing would be worse than saying so.
    return "unknown"


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Describe a video file, or raise :class:`MediaError` with a one-line reason."""
    path = Path(path)
    if not path.exists():
        raise MediaError(f"file not found: {path}")
    if path.is_dir():
        raise MediaError(f"{path} is a folder, not a video file")
    if not os.access(path, os.R_OK):
        raise MediaError(f"cannot read {path}: permission denied")
    try:
        container = av.open(str(path), metadata_errors="replace")
    except PermissionError as exc:
        raise MediaError(f"cannot read {path}: permission denied") from exc
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        with open(path, "rb") as fh:
            head = fh.read(16)
        # An MP4/MOV whose index (moov) never got written: libav says only "invalid data".
        if b"ftyp" in head:
            raise MediaError(f"{path.name} is truncated or incomplete (its index is missing)") \
                from exc
        raise MediaError(f"{path.name} is not a video ffmpeg can read") from exc
    with container:
        return _probe_open(path, container)


def _probe_open(path: Path, container: InputContainer) -> VideoInfo:
    try:
        stream = video_stream(container)
    except MediaError:
        raise MediaError(f"{path.name} has no video stream (audio-only or data file)") from None
    if getattr(stream, "codec_context", None) is None:
        raise MediaError(f"{path.name} has no decodable video frames (no decoder for its codec)")
    cc = stream.codec_context
    width, height = cc.width, cc.height
    if width <= 0 or height <= 0:
        raise MediaError(f"{path.name}: cannot find the frame size of its video stream")
    codec = _codec_name(stream)
    pix_fmt = cc.pix_fmt or ""
    # Read before decoding: the decoder rewrites these from the first frame.
    colour = colour_tags(cc.color_range, cc.colorspace, cc.color_primaries, cc.color_trc,
                         pix_fmt)
    audio = tuple(AudioStream(a.index, _codec_name(a), _audio_description(a),
                              _tag(a, "language"), _tag(a, "title"))
                  for a in container.streams.audio)
    subtitles = tuple(SubtitleStream(s.index, _codec_name(s), _tag(s, "language"),
                                      _tag(s, "title"))
                      for s in container.streams.subtitles)

    # The one pass: demux the video packets, decoding only until the first frame comes out.
    pts: list[int] = []
    packets = 0
    first: av.VideoFrame | None = None
    fed = 0
    why = "no frame decoded"
    cut_short = False
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue  # the end-of-stream marker
            # Past the first few hundred packets only keyframes can still start a decode.
            if first is None and (fed < _FIRST_FRAME_PACKETS or packet.is_keyframe):
                fed += 1
                try:
                    frames = stream.decode(packet)
                except av.error.FFmpegError as exc:
                    why, frames = str(exc.strerror or exc), []
                first = frames[0] if frames else None
            if packet.is_discard:
                continue  # outside the edit list: decoded for reference, never shown
            packets += 1
            if packet.pts is not None:
                pts.append(packet.pts)
    except av.error.FFmpegError:
        cut_short = True  # damaged or cut short: what was read before still counts
    if first is None and packets:
        try:  # a decoder that holds frames back (threads, reordering) hands them over now
            flushed = stream.decode(None)
            first = flushed[0] if flushed else None
        except av.error.FFmpegError as exc:
            why = str(exc.strerror or exc)
    if not packets:
        raise MediaError(f"{path.name} contains no video frames")
    if first is None:
        raise MediaError(f"{path.name} has no decodable video frames ({why})")

    guessed = _guessed_rate(stream)
    tb = stream.time_base
    pts0 = first.pts if first.pts is not None else (min(pts) if pts else None)
    offsets = sorted(p - pts0 for p in pts if p >= pts0) if pts0 is not None and tb else []
    if len(offsets) * 10 < packets * 9:
        offsets = []  # too few timestamps to place frames by: count packets, as ffmpeg does
    durations = [b - a for a, b in zip(offsets, offsets[1:], strict=False) if b > a]
    median = float(statistics.median(durations) * tb) if durations and tb else None
    fps = nominal_rate(guessed, median)
    if fps is None or fps <= 0:
        raise MediaError(f"{path.name}: invalid frame rate {guessed}")

    declared = _declared_frames(container, stream, fps)
    if offsets and tb:
        line = timeline(offsets, tb * fps)
        # The reader resamples with ffmpeg's fps filter at our rate when the grid is not ffmpeg's.
        vfr = not line.constant or fps != guessed
        frame_count = line.slots
        gapped = bool(line.tail_gaps)
    else:
        vfr, frame_count, gapped = False, packets, False
    short = missing_frames(declared, frame_count) > 0
    if vfr:
        # Decode for real: the reader resamples variable rate to constant, so count that.
        frame_count = _decoded_count(path, fps)
    elif cut_short or gapped or short:
        # Cut short: the last packets may not decode, and a constant-rate read fills the slots
        # of lost frames with copies. Count what the reader will yield.
        frame_count = _decoded_count(path, fps)
    if frame_count <= 0:
        raise MediaError(f"{path.name} contains no video frames")

    duration = container.duration / av.time_base if container.duration else 0.0
    if duration <= 0:
        duration = float(frame_count / fps)
    start = container.start_time / av.time_base if container.start_time else 0.0
    sar = stream.sample_aspect_ratio or cc.sample_aspect_ratio
    return VideoInfo(
        path=path, width=width, height=height, fps=fps, frame_count=frame_count,
        duration=duration, pix_fmt=pix_fmt, bit_depth=_bit_depth(pix_fmt), codec=codec, vfr=vfr,
        audio=audio, colour=colour, start_time=start,
        container=container.format.name.split(",")[0],
        sar=Fraction(sar) if sar else Fraction(1),
        rotation=display_turn(first).degrees,
        field_order=_field_order(cc.field_order, first, codec),
        subtitles=subtitles, declared_frames=declared,
    )
