"""Decode a video in process (PyAV) and number its frames on one constant-rate grid.

Every frame the product reads comes through here: the export reader, the desk's seeker when it
cannot serve a frame itself, scene and field-order scans, dataset building, and the probe's frame
count for sources whose count needs decoding. One numbering rule holds for all of them:

* A frame's **slot** is its presentation time after the first frame sequential decoding gives,
  times the probed rate, rounded half up (:func:`frame_slot`; ffmpeg's fps filter, round=near).
* Frame ``n`` is what slot ``n`` shows: the last frame whose slot is ``<= n``. A slot with no
  frame of its own (a dropped frame, a variable-rate gap) repeats the previous one; of two
  frames in one slot the later wins. That is ffmpeg's fps filter, which the reader ran when it
  was an ffmpeg child, so frame numbers did not move when decoding came in process (one
  difference: ffmpeg's constant-rate output filled a one-slot gap in a constant-rate file with
  the next frame shown early; here it holds the previous frame, like every other gap).
* Frames come upright: the display matrix is applied with the filters ffmpeg's CLI inserts for
  it (``transpose``, ``hflip``, ``vflip``, ``rotate``).

Random access seeks a little before the wanted frame, starts at a keyframe, drops the leading
frames of an open GOP, and widens the margin while a seek lands past the frame (demuxers without
an index, B-frame reordering); as a last resort it decodes from the top, which is always exact.
A packet that does not decode is skipped, as ffmpeg's CLI skips it, and its error is kept.
"""

from __future__ import annotations

import functools
import itertools
import math
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import av.filter
import numpy as np
from av.sidedata.sidedata import Type as SideDataType
from av.stream import Disposition

from restorer.errors import MediaError

#: Seconds before the wanted frame to seek to, tried in turn while the seek lands after it:
#: a frame (timestamps rounded into a coarse time base), past a B-frame reorder or one GOP, past
#: any broadcast GOP and an unindexed demuxer's landing error, then a long sparse stretch.
SEEK_MARGINS_S = (0.08, 2.0, 10.0, 60.0)
#: Frames to decode past a seek point looking for a keyframe before seeking earlier.
MAX_SKIP = 1000
MAX_ERRORS = 20

Filter = tuple[str, str]  # (libavfilter name, its arguments)


def frame_slot(offset: float | Fraction, frames_per_tick: float) -> int:
    """The frame number of a timestamp ``offset`` ticks after the first frame's: its slot on
    the constant-rate grid, rounding half up as ffmpeg's fps filter (round=near) does.

    The one numbering rule: the probe counts frames with it, and the decoder here and the
    desk's seeker number the frames they decode with it."""
    return math.floor(offset * frames_per_tick + 0.5)


def video_stream(container: Any) -> av.VideoStream:
    """The stream the product reads: the first video stream that is not cover art."""
    for stream in container.streams.video:
        if not stream.disposition & Disposition.attached_pic:
            return stream
    raise MediaError("no video stream (audio-only or data file)")


@dataclass(frozen=True)
class Turn:
    """How ffmpeg's reader turns a decoded frame upright (its autorotation)."""

    degrees: int = 0  #: clockwise: 0, 90, 180 or 270 (0 also for angles that keep the size)
    #: False when the matrix also mirrors, or turns by an angle that is not a right one: numpy's
    #: ``rot90`` by ``degrees`` alone does not give what ffmpeg shows.
    exact: bool = True

    def apply(self, image: np.ndarray) -> np.ndarray:
        """``image`` (``(H, W, ...)``) turned clockwise by ``degrees``, contiguous."""
        if not self.degrees:
            return image
        # rot90 turns counter-clockwise for positive k.
        return np.ascontiguousarray(np.rot90(image, k=-self.degrees // 90))


def _display_matrix(frame: av.VideoFrame) -> tuple[int, ...] | None:
    side: Any = frame.side_data  # a Mapping; its stub is too narrow
    sd = side.get(SideDataType.DISPLAYMATRIX)
    return None if sd is None else struct.unpack("=9i", bytes(sd)[:36])


def _theta(m: tuple[int, ...]) -> int | None:
    """Clockwise degrees in [0, 360), as ffmpeg's ``get_rotation`` rounds them; None: degenerate."""
    s0, s1 = math.hypot(m[0], m[3]), math.hypot(m[1], m[4])
    if not s0 or not s1:
        return None
    # av_display_rotation_get() is counter-clockwise; ffmpeg negates it and rounds.
    return round(math.degrees(math.atan2(m[1] / s1, m[0] / s0))) % 360


def display_turn(frame: av.VideoFrame) -> Turn:
    """The turn ffmpeg's CLI applies to ``frame`` from its display matrix (side data)."""
    m = _display_matrix(frame)
    if m is None:
        return Turn()
    theta = _theta(m)
    if theta is None:
        return Turn(0, False)
    if theta == 90:
        return Turn(90, m[3] < 0)
    if theta == 180:
        # One axis negated is a mirror (ffmpeg's hflip), not a turn: the size stays either way.
        return Turn(180, True) if m[0] < 0 and m[4] < 0 else Turn(0, False)
    if theta == 270:
        return Turn(270, m[3] > 0)
    if theta == 0:
        return Turn(0, m[4] >= 0)
    return Turn(0, False)


def orientation_filters(frame: av.VideoFrame) -> list[Filter]:
    """The filters ffmpeg's CLI inserts to show ``frame`` upright (``ffmpeg_filter.c``)."""
    m = _display_matrix(frame)
    theta = None if m is None else _theta(m)
    if m is None or theta is None:
        return []
    if theta == 90:
        return [("transpose", "cclock_flip" if m[3] > 0 else "clock")]
    if theta == 180:
        return ([("hflip", "")] if m[0] < 0 else []) + ([("vflip", "")] if m[4] < 0 else [])
    if theta == 270:
        return [("transpose", "clock_flip" if m[3] < 0 else "cclock")]
    if theta:
        return [("rotate", f"{theta}*PI/180")]
    return [("vflip", "")] if m[4] < 0 else []


#: 8-bit planar formats with luma in the first plane, where a grey picture may be a lookup of it.
_LUMA_FIRST = frozenset({"gray", "yuv420p", "yuv422p", "yuv444p", "yuv440p", "yuv411p",
                         "yuv410p", "yuvj420p", "yuvj422p", "yuvj444p", "yuvj440p", "yuvj411p",
                         "nv12", "nv21"})


@functools.cache
def _luma_lut(fmt: str, colorspace: int, color_range: int) -> np.ndarray | None:
    """swscale's grey for every luma value of ``fmt`` frames so tagged, when its grey depends
    on luma alone (None when chroma moves it too: BT.709 limited range does)."""
    probe = av.VideoFrame(256, 4, fmt)
    lut: np.ndarray | None = None
    for chroma in (128, 0, 255, 64):
        for i, plane in enumerate(probe.planes):
            if i == 0:
                rows = np.tile(np.arange(256, dtype=np.uint8), (plane.height, 1))
                buf = np.zeros((plane.height, plane.line_size), np.uint8)
                buf[:, :256] = rows
            else:
                buf = np.full((plane.height, plane.line_size), chroma, np.uint8)
            plane.update(buf.tobytes())
        probe.colorspace, probe.color_range = colorspace, color_range
        grey = probe.to_ndarray(format="gray")
        if not (grey == grey[0]).all() or (lut is not None and not np.array_equal(lut, grey[0])):
            return None
        lut = grey[0].copy()
    return lut


def gray_array(frame: av.VideoFrame) -> np.ndarray:
    """The grey picture of ``frame`` (uint8 ``(H, W)``), exactly as swscale converts it.

    The conversion costs more than decoding an SD frame; where it is a function of luma alone
    (checked per format and tag), a 256-entry lookup on the luma plane gives the same bytes."""
    name = frame.format.name
    lut = (_luma_lut(name, int(frame.colorspace), int(frame.color_range))
           if name in _LUMA_FIRST else None)
    if lut is None:
        return frame.to_ndarray(format="gray")
    plane = frame.planes[0]
    rows = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)
    return lut[rows[:frame.height, :frame.width]]


def parse_filters(chain: Sequence[str]) -> list[Filter]:
    """``["bwdif=mode=send_field:parity=tff"]`` (ffmpeg's ``-vf`` spelling) as (name, args)."""
    out: list[Filter] = []
    for item in chain:
        name, _, args = item.partition("=")
        out.append((name, args))
    return out


def close_quietly(container: Any) -> None:
    """Close a PyAV container (None: nothing); closing a broken one must not raise."""
    if container is not None:
        try:
            container.close()
        except Exception:  # noqa: BLE001 - any libav failure on close is moot
            pass


def _error_text(exc: BaseException) -> str:
    strerror = getattr(exc, "strerror", None)
    return str(strerror or exc)


class _Graph:
    """A linear libavfilter chain, built for the frames it will be fed."""

    def __init__(self, filters: Sequence[Filter], like: av.VideoFrame, time_base: Fraction) -> None:
        self.graph = av.filter.Graph()
        src = self.graph.add_buffer(width=like.width, height=like.height,
                                    format=like.format, time_base=time_base)
        last = src
        for name, args in filters:
            node = self.graph.add(name, args) if args else self.graph.add(name)
            last.link_to(node)
            last = node
        sink = self.graph.add("buffersink")
        last.link_to(sink)
        self.graph.configure()

    def feed(self, frame: av.VideoFrame | None) -> list[av.VideoFrame]:
        """Push one frame (None: end of stream) and take what comes out."""
        self.graph.vpush(frame)
        out = []
        while True:
            try:
                out.append(self.graph.vpull())
            except (av.error.BlockingIOError, av.error.EOFError):
                return out


class Decoder:
    """An open video, decoding its frames in process, numbered on the constant-rate grid ``fps``.

    ``filters`` (ffmpeg ``-vf`` items) run after the frames are turned upright; ``fps`` must then
    be their output's rate (a deinterlacer sending each field doubles it). ``size`` scales last,
    with ffmpeg's area filter; a filtered frame comes out in ``pix_fmt``, else the decoder's
    format. ``errors`` collects what did not decode. Not thread-safe: use one
    decoder from one thread.
    """

    def __init__(self, path: str | Path, fps: Fraction, *, threads: int = 0,
                 filters: Sequence[str] = (), size: tuple[int, int] | None = None,
                 pix_fmt: str | None = None) -> None:
        self.path = Path(path)
        self.fps = Fraction(fps)
        self.errors: list[str] = []
        self._user_filters = parse_filters(filters)
        self._size = size
        self._pix_fmt = pix_fmt
        try:
            self._container: Any = av.open(str(self.path), metadata_errors="replace")
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise MediaError(f"cannot open {self.path.name}: {_error_text(exc)}") from exc
        try:
            self.stream = video_stream(self._container)
        except MediaError as exc:
            self._container.close()
            raise MediaError(f"{self.path.name}: {exc}") from None
        self.stream.thread_type = "AUTO"
        self.stream.thread_count = threads
        self._tb0: Fraction = self.stream.time_base or Fraction(1, 90000)
        self._pts0: int | None = None
        self._first: av.VideoFrame | None = None
        self._top: Iterator[av.VideoFrame] | None = None  # the decode that gave the first frame
        self._filters: list[Filter] = []
        self._started = False

    # ------------------------------------------------------------------ public
    def frames(self, start: int = 0, end: int | None = None
               ) -> Iterator[tuple[int, av.VideoFrame]]:
        """``(n, frame)`` for every slot ``start <= n < end`` (``end=None``: to the end)."""
        first = self._open_stream()
        if first is None:
            return
        raw: Iterator[av.VideoFrame] | None = None
        if start > 0 and self._pts0 is not None:
            raw = self._seek_before(start)
        if raw is None:
            raw = self._from_top()
        yield from self._numbered(self._filtered(raw), start, end)

    def count(self) -> int:
        """Frames a read from the top yields: decodes every frame, converts none."""
        last = max((n for n, _frame in self.frames()), default=-1)
        return last + 1

    def close(self) -> None:
        close_quietly(self._container)
        self._container = None

    def __enter__(self) -> Decoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    def _open_stream(self) -> av.VideoFrame | None:
        """Decode the first frame (once): it anchors the grid and carries the display matrix."""
        if not self._started:
            self._started = True
            self._top = self._raw()
            self._first = next(self._top, None)
            if self._first is not None:
                self._pts0 = self._first.pts
                self._filters = orientation_filters(self._first) + self._user_filters
                if self._size is not None:
                    w, h = self._size
                    self._filters.append(("scale", f"{w}:{h}:flags=area"))
                if self._filters and self._pix_fmt:
                    # Convert inside the graph, as ffmpeg's CLI does: a filtered frame handed
                    # to swscale afterwards has lost the range its colours were coded in.
                    self._filters.append(("format", self._pix_fmt))
        return self._first

    def _raw(self) -> Iterator[av.VideoFrame]:
        """Decoded frames in presentation order from where the container stands."""
        container, stream = self._container, self.stream
        try:
            for packet in container.demux(stream):
                try:
                    # The last packet is empty: decoding it flushes the decoder's held frames.
                    decoded = stream.decode(packet)
                except av.error.FFmpegError as exc:
                    self._error(exc)
                    continue
                yield from decoded
        except av.error.FFmpegError as exc:  # damaged or cut short: keep what decoded
            self._error(exc)
            try:
                yield from stream.decode(None)
            except av.error.FFmpegError:
                pass

    def _error(self, exc: BaseException) -> None:
        # A badly damaged file fails on every packet: keep the first few, and the last.
        if len(self.errors) >= MAX_ERRORS:
            self.errors[-1] = _error_text(exc)
        else:
            self.errors.append(_error_text(exc))

    def _from_top(self) -> Iterator[av.VideoFrame]:
        if self._top is not None and self._first is not None:
            # Nothing has moved the container since the first frame: go on from it.
            top, self._top = self._top, None
            return itertools.chain((self._first,), top)
        # Frame 0 is whatever decoding from the top gives first, as in the first read.
        self._container.seek(0, backward=True)
        return self._raw()

    def _seek_before(self, n: int) -> Iterator[av.VideoFrame] | None:
        """Frames from a keyframe at or before slot ``n``, or None: decode from the top."""
        assert self._pts0 is not None
        wanted = Fraction(n) / self.fps
        for margin in SEEK_MARGINS_S:
            at = wanted - Fraction(margin)
            if at <= 0:
                return None
            self._top = None  # the seek moves the container: that decode is gone
            self._container.seek(self._pts0 + int(at / self._tb0), stream=self.stream,
                                 backward=True)
            clean = self._clean(self._raw())
            head = next(clean, None)
            if head is not None and self._slot(head) <= n:
                return itertools.chain((head,), clean)
        return None

    def _clean(self, raw: Iterator[av.VideoFrame]) -> Iterator[av.VideoFrame]:
        """Frames from the first keyframe on, without an open GOP's leading frames, which
        decode without their references."""
        clean_from: int | None = None
        for skipped, frame in enumerate(raw):
            if frame.pts is None:
                continue  # cannot be placed on the grid after a seek
            if clean_from is None:
                if not frame.key_frame:
                    if skipped > MAX_SKIP:
                        return
                    continue
                clean_from = self._slot(frame)
            elif self._slot(frame) < clean_from:
                continue
            yield frame

    def _filtered(self, raw: Iterator[av.VideoFrame]) -> Iterator[av.VideoFrame]:
        if not self._filters:
            yield from raw
            return
        graph: _Graph | None = None
        for frame in raw:
            if graph is None:
                graph = _Graph(self._filters, frame, self._tb0)
            yield from graph.feed(frame)
        if graph is not None:
            yield from graph.feed(None)

    def _slot(self, frame: av.VideoFrame) -> int:
        assert self._pts0 is not None and frame.pts is not None
        tb = frame.time_base or self._tb0
        if tb == self._tb0:
            return frame_slot(frame.pts - self._pts0, float(self._tb0 * self.fps))
        # A filter's own time base (a field-rate deinterlacer halves it).
        return frame_slot(Fraction(frame.pts) - self._pts0 * self._tb0 / tb, float(tb * self.fps))

    def _numbered(self, frames: Iterator[av.VideoFrame], start: int,
                  end: int | None) -> Iterator[tuple[int, av.VideoFrame]]:
        """Slot ``k`` shows the last frame whose slot is ``<= k``; the last frame shows once."""
        stop = math.inf if end is None else end
        n = start
        held: av.VideoFrame | None = None
        held_slot = -1
        counted = self._pts0 is None  # no timestamps: number frames as they come
        for frame in frames:
            if counted or frame.pts is None:
                s = held_slot + 1
            else:
                s = self._slot(frame)
            if held is not None and s > held_slot:
                for k in range(max(n, held_slot), int(min(s, stop))):
                    yield k, held
                n = max(n, int(min(s, stop)))
                if n >= stop:
                    return
            if held is None or s >= held_slot:
                held, held_slot = frame, s
            # else: a frame stamped before the one shown: dropped, as the fps filter drops it
        if held is not None:
            for k in range(max(n, held_slot), int(min(held_slot + 1, stop))):
                yield k, held
