"""Frames of a probed video as numpy arrays, decoded in process (PyAV), with exact random access.

Frames come as ``gray`` (uint8 ``(H, W)``, the luma plane a black-and-white master holds) or
``rgb`` (uint8 ``(H, W, 3)``). Memory holds a frame or two at a time. Numbering, seeking and
orientation are :mod:`restorer.media.decode`'s: frames are upright, of the video's
:attr:`~restorer.media.probe.VideoInfo.display_size`, and frame ``n`` is the one the desk's
seeker shows as ``n``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Literal

import av
import numpy as np

from restorer.errors import MediaError
from restorer.media.decode import Decoder, gray_array
from restorer.media.probe import VideoInfo

Mode = Literal["gray", "rgb"]



def deinterlaced(info: VideoInfo, order: str) -> tuple[VideoInfo, list[str]]:
    """What a reader of ``info`` yields through bwdif at field rate: each field of a woven
    ``order`` ("tt"/"bb") source becomes a progressive frame, so rate and count double. Returns
    the description to read with and the ``filters`` that make it."""
    parity = {"tt": "tff", "bb": "bff"}[order]
    doubled = replace(info, fps=info.fps * 2, frame_count=info.frame_count * 2,
                      declared_frames=None if info.declared_frames is None
                      else info.declared_frames * 2, field_order="progressive")
    return doubled, [f"bwdif=mode=send_field:parity={parity}:deint=all"]


class FrameReader:
    """Iterate ``(frame_number, frame)`` over ``[start, end)`` of a probed video.

    ``mode="gray"`` yields the luma plane (what a black-and-white master holds); ``mode="rgb"``
    yields colour frames, for building training data and for evaluation. ``size=(w, h)`` scales
    while decoding (after turning the picture upright); ``filters`` are ffmpeg video filters run
    first (see :func:`deinterlaced`). ``width``/``height`` are the frames' size: ``size``, else
    the video's ``display_size``. After iterating, ``shortfall`` is how many frames of the range
    did not decode and ``errors`` says why. Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, info: VideoInfo, start: int = 0, end: int | None = None,
                 mode: Mode = "gray", size: tuple[int, int] | None = None,
                 threads: int = 0, filters: Sequence[str] = ()) -> None:
        end = info.frame_count if end is None else end
        if not 0 <= start < end <= info.frame_count:
            raise MediaError(
                f"frame range {start}..{end} is outside the video's 0..{info.frame_count}"
            )
        self.info, self.start, self.end, self.mode = info, start, end, mode
        self.width, self.height = size if size is not None else info.display_size
        self.shortfall = 0
        # Filters that change what a frame is (a deinterlacer doubling the rate) come first;
        # ``info`` must then describe their output (rate, count), which numbering follows.
        self._format = "rgb24" if mode == "rgb" else "gray"
        self._decoder = Decoder(info.path, info.fps, threads=threads, filters=filters,
                                size=size, pix_fmt=self._format)

    @property
    def errors(self) -> str:
        return "\n".join(self._decoder.errors)

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        n = self.start
        try:
            for n, frame in self._decoder.frames(self.start, self.end):
                yield n, self._array(frame)
                n += 1
        finally:
            self.shortfall = self.end - n
            self.close()

    def _array(self, frame: av.VideoFrame) -> np.ndarray:
        return gray_array(frame) if self._format == "gray" else frame.to_ndarray(format="rgb24")

    def close(self) -> None:
        self._decoder.close()

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_frame(info: VideoInfo, n: int, mode: Mode = "gray") -> np.ndarray:
    """Decode exactly frame ``n`` (0-based), as sequential decoding would give it."""
    if not 0 <= n < info.frame_count:
        raise MediaError(f"frame {n} is outside the video's 0..{info.frame_count - 1}")
    reader = FrameReader(info, n, n + 1, mode=mode)
    for _, frame in reader:
        return frame.copy()
    raise MediaError(f"{info.path.name}: frame {n} could not be decoded ({reader.errors or 'eof'})")

