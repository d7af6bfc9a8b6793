"""Frame-accurate random access for scrubbing: one container kept open (PyAV), with a fresh
read through :mod:`restorer.media.decode` as the fallback.

Opening the file and seeking anew for every scrub position costs milliseconds before the first
frame; the seeker keeps the container open and decodes on from where it is, so a frame of an
intra or short-GOP master (ProRes, DNxHD, FFV1, broadcast MPEG-2/H.264) arrives in a few
milliseconds. Frames are numbered
exactly as sequential decode (:class:`~restorer.media.reader.FrameReader`) numbers them: by
presentation time relative to the first decoded frame, at the probed constant rate.

Variable-frame-rate sources are numbered as the reader's fps filter resamples them. Frames come
upright, turned by the stream's display matrix as the reader turns them (PyAV does not).
Any frame this cannot serve exactly (a mirroring display matrix, a timestamp gap) takes
the fallback, :func:`~restorer.media.reader.read_frame`, which numbers frames the same way.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

import numpy as np

from restorer.errors import MediaError
from restorer.media.decode import (
    Turn,
    close_quietly,
    display_turn,
    frame_slot,
    gray_array,
    video_stream,
)
from restorer.media.probe import VideoInfo
from restorer.media.reader import read_frame

log = logging.getLogger(__name__)

try:
    import av
except ImportError:  # pragma: no cover - av is a declared dependency; degrade, don't crash
    av = None  # type: ignore[assignment]

KeepFn = Callable[[int, np.ndarray], None]
# Frames to decode past a seek point looking for a keyframe before giving up on PyAV.
_MAX_SKIP = 1000


class _Fallback(Exception):
    """This file (or this seek) cannot be served from the open container: read afresh."""


class FrameSeeker:
    """Grey frame ``n`` of a probed video, fast and exact; thread-safe (one decode at a time).

    Stepping forward, or hopping a short way ahead within a GOP, decodes on from the last frame
    instead of seeking. ``frame(n, keep=fn)`` also hands ``fn`` the frames decoded on the way
    (at most ``keep_last`` before ``n``), so a cache makes stepping backwards cheap on long-GOP
    sources. ``backend`` says which path served the last frame: ``"pyav"`` (the open
    container) or ``"reader"`` (a fresh read).
    """

    def __init__(self, info: VideoInfo, *, keep_last: int = 48) -> None:
        self.info = info
        self.keep_last = keep_last
        self.backend = "reader"
        self._lock = threading.Lock()
        self._container: Any = None
        self._stream: Any = None
        self._decoder: Iterator[Any] | None = None
        self._pos = -1          # index of the last frame the decoder produced
        self._gop = 1           # longest keyframe interval seen so far (frames)
        self._last_key = -1
        self._pts0: int | None = None
        self._clean_from: int | None = None  # frames before this keyframe are not decodable
        self._turn = Turn()
        self._usable = av is not None
        if self._usable:
            try:
                self._open()
            except Exception as exc:  # noqa: BLE001 - any PyAV failure means "read afresh"
                log.info("kept-open decoding unavailable for %s (%s); reading afresh",
                         info.path.name, exc)
                self._usable = False
                self._close_container()

    # ------------------------------------------------------------------ public
    def frame(self, n: int, keep: KeepFn | None = None) -> np.ndarray:
        """Decode exactly frame ``n`` (0-based) as sequential decoding gives it, as uint8 (H, W).

        The frame is upright: ``(H, W)`` is the video's :attr:`~VideoInfo.display_size`.
        """
        if not 0 <= n < self.info.frame_count:
            raise MediaError(f"frame {n} is outside the video's 0..{self.info.frame_count - 1}")
        with self._lock:
            if self._usable:
                try:
                    out = self._frame(n, keep)
                    self.backend = "pyav"
                    return out
                except _Fallback as exc:
                    log.debug("frame %d of %s read afresh: %s", n, self.info.path.name, exc)
                except Exception as exc:  # noqa: BLE001 - PyAV errors are not our MediaError
                    log.info("kept-open decoding failed on %s frame %d (%s); reading afresh",
                             self.info.path.name, n, exc)
                    self._usable = False
                    self._close_container()
            self.backend = "reader"
            return read_frame(self.info, n)

    def close(self) -> None:
        with self._lock:
            self._close_container()
            self._usable = False

    def __enter__(self) -> FrameSeeker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    def _open(self) -> None:
        self._container = av.open(str(self.info.path))
        self._stream = video_stream(self._container)
        # Frame threading halves a long-GOP seek (decoding up to the frame dominates) and costs
        # an intra master a few ms of pipeline delay: measured in benchmarks/throughput.py.
        self._stream.thread_type = "AUTO"
        # Frame 0 is whatever sequential decoding gives first, keyframe or not.
        self._decoder = self._container.decode(self._stream)
        first = next(self._decoder, None)
        if first is None or first.pts is None:
            raise _Fallback("no presentation timestamps")
        self._pts0 = first.pts
        if (first.width, first.height) != (self.info.width, self.info.height):
            raise _Fallback(f"decoded size {first.width}x{first.height} differs from the probe")
        self._turn = display_turn(first)
        if not self._turn.exact or self._turn.degrees != self.info.rotation:
            # A mirroring or odd-angle display matrix: the reader's filters apply it; numpy can't.
            raise _Fallback("display matrix other than a right-angle turn")
        self._pos = 0
        self._note_key(0, first)

    def _close_container(self) -> None:
        self._decoder = None
        close_quietly(self._container)
        self._container = None
        self._pos = -1

    def _restart(self, seek_pts: int | None) -> Any:
        """Seek and return the first cleanly decoded frame after it (None: rewind to frame 0).

        Demuxers without an index (MPEG-TS/PS) land on any packet, and a decoder may hand out
        the broken frames that precede the next keyframe (open GOPs do too): start at a
        keyframe and skip any frame that lies before it in presentation order.
        """
        self._last_key = -1  # keyframe spacing is only measured along one continuous decode
        self._clean_from = None
        if seek_pts is None:
            # From the top, frame 0 is whatever decoding gives first, as in sequential reads.
            self._container.seek(0, backward=True)
            self._decoder = self._container.decode(self._stream)
            return next(self._decoder, None)
        self._container.seek(seek_pts, stream=self._stream, backward=True)
        self._decoder = self._container.decode(self._stream)
        for skipped, frame in enumerate(self._decoder):
            if frame.key_frame:
                self._clean_from = self._index(frame)
                return frame
            if skipped > _MAX_SKIP:
                break
        return None  # no keyframe after the seek point: the caller seeks earlier

    def _index(self, frame: Any) -> int:
        """Frame number of ``frame``: its slot on the constant-rate grid from the first frame.

        Rounds half up, as ffmpeg's fps filter (round=near) does for variable-rate sources.
        """
        if frame.pts is None or self._pts0 is None:
            raise _Fallback("frame without a timestamp")
        return frame_slot(frame.pts - self._pts0,
                          float(self._stream.time_base * self.info.fps))

    def _note_key(self, idx: int, frame: Any) -> None:
        if frame.key_frame:
            if self._last_key >= 0 and idx > self._last_key:
                self._gop = max(self._gop, idx - self._last_key)
            self._last_key = idx

    def _pts_of(self, n: int) -> int:
        assert self._pts0 is not None
        return self._pts0 + int(Fraction(n) / self.info.fps / self._stream.time_base)

    def _frame(self, n: int, keep: KeepFn | None) -> np.ndarray:
        ahead = n - self._pos
        if self._decoder is not None and not self.info.vfr and 0 < ahead <= max(1, self._gop):
            return self._decode_to(n, keep, None)
        # Seek a little before n: a demuxer indexed by decode time can land one keyframe late
        # when B-frames reorder timestamps, and a sparse variable-rate stream may hold frame n
        # from long before. Widen the margin while the seek still overshoots.
        for margin in (0, 1, self._gop + 1, 4 * self._gop + 25, n):
            start = n - margin
            first = self._restart(self._pts_of(start) if start > 0 else None)
            if first is not None and self._index(first) <= n:
                return self._decode_to(n, keep, first)
        raise _Fallback("no keyframe at or before the frame")

    def _decode_to(self, n: int, keep: KeepFn | None, first: Any) -> np.ndarray:
        """Decode on to frame ``n``.

        Constant rate: frame ``n`` is the one whose slot is ``n``; a gap means the file's
        numbering is not what sequential decoding gives, so the reader answers instead. Variable
        rate: as the fps filter does, slot ``n`` shows the last frame whose slot is <= ``n``.
        """
        assert self._decoder is not None
        head = () if first is None else (first,)
        held: Any = None
        for frame in itertools.chain(head, self._decoder):
            idx = self._index(frame)
            if self._clean_from is not None and idx < self._clean_from:
                continue  # a leading frame of an open GOP, decoded without its references
            self._pos = idx
            self._note_key(idx, frame)
            if self.info.vfr:
                if idx > n:
                    break
                held = frame
                continue
            if idx == n:
                return self._gray(frame)
            if idx > n:
                raise _Fallback(f"frame {n} has no timestamp of its own (next is {idx})")
            if keep is not None and n - idx <= self.keep_last:
                keep(idx, self._gray(frame))
        # The stream ended, or (variable rate) one frame past n was consumed: the next call seeks.
        self._decoder = None
        if held is None:
            raise _Fallback("end of stream before the frame")
        return self._gray(held)

    def _gray(self, frame: Any) -> np.ndarray:
        """The luma plane, turned upright as the reader (ffmpeg's autorotation filters) turns it."""
        return self._turn.apply(gray_array(frame))
