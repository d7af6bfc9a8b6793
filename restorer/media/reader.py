"""Stream frames out of ffmpeg as numpy arrays, with frame-accurate random access.

Frames are read from ffmpeg's stdout as raw ``gray`` (uint8 ``(H, W)``) or ``rgb24`` (uint8
``(H, W, 3)``). Nothing touches the disk and memory holds one frame at a time. Frames come upright:
ffmpeg turns them by the stream's display matrix (its autorotation), so they have the video's
:attr:`~restorer.media.probe.VideoInfo.display_size`, not its coded ``width x height``.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Literal

import numpy as np

from restorer.errors import MediaError
from restorer.media.probe import VideoInfo, ffmpeg_exe
from restorer.media.stderr import StderrDrain

Mode = Literal["gray", "rgb"]


# Demuxers without a keyframe index: an input seek lands on any packet, the decoder then drops
# everything up to the next keyframe, and ffmpeg silently starts later than asked.
UNINDEXED = frozenset({"mpegts", "mpeg", "mpegvideo", "h264", "hevc", "m4v", "vc1", "cavsvideo"})
# How far before the wanted frame to seek in those, and in variable-rate sources: longer than any
# broadcast GOP, and than the gaps between frames of a variable-rate recording.
SEEK_MARGIN_S = 10.0
_PTS_TIME_RE = re.compile(r"pts_time:\s*(-?[0-9.]+)")


def _first_frame_time(info: VideoInfo) -> float | None:
    """Presentation time (s, as stored) of the first decoded video frame, or None."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "info", "-copyts", "-i",
           str(info.path), "-map", "0:v:0", "-frames:v", "1", "-vf", "showinfo", "-f", "null",
           "-"]
    out = subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    m = _PTS_TIME_RE.search(out.stderr.decode("utf-8", "replace"))
    return float(m.group(1)) if m else None


def _command_parts(info: VideoInfo, start: int,
                   size: tuple[int, int] | None) -> tuple[list[str], list[str], list[str]]:
    """``(before -i, filters, after the filters)`` that start output exactly at frame ``start``."""
    scale = [f"scale={size[0]}:{size[1]}:flags=area"] if size is not None else []
    fps = f"fps={info.fps.numerator}/{info.fps.denominator}"
    if start <= 0:
        return [], ([fps] if info.vfr else []) + scale, []
    # Half a frame early: accurate seek drops frames before -ss, and timestamps stored in a
    # rounded time base may sit a hair before n/fps. No other frame lies in that half frame.
    t = (start - 0.5) / float(info.fps)
    early = max(0.0, t - SEEK_MARGIN_S)
    if info.vfr:
        # Frame n of a variable-rate source is slot n of the fps filter's grid, anchored at the
        # first frame; a plain input seek would re-anchor it. Keep the stored timestamps, anchor
        # the grid where sequential decoding does, and drop the slots before n.
        anchor = _first_frame_time(info) if early > 0 else None
        if anchor is None:  # near the start, or no anchor: decode from the top (exact, slower)
            return [], [fps, *scale], ["-ss", f"{t:.6f}"]
        return (["-ss", f"{early:.6f}", "-copyts"],
                [f"{fps}:start_time={anchor:.6f}", f"trim=start_frame={start}", *scale], [])
    if info.container in UNINDEXED:
        # Land well before, decode through a keyframe, and drop the rest on the output side.
        before = ["-ss", f"{early:.6f}"] if early > 0 else []
        return before, scale, ["-ss", f"{t - early:.6f}"]
    return ["-ss", f"{t:.6f}"], scale, []


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
    yields colour frames, for building training data and for evaluation. ``size=(w, h)`` lets
    ffmpeg scale while decoding (after turning the picture upright); ``filters`` are ffmpeg video
    filters run first (see :func:`deinterlaced`). ``width``/``height`` are the
    frames' size: ``size``, else the video's ``display_size``. Use as a context manager, or call
    :meth:`close`.
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
        # ffmpeg autorotates by the display matrix: the frames are upright, of the display size.
        self.width, self.height = size if size is not None else info.display_size
        self.channels = 3 if mode == "rgb" else 1
        self.shortfall = 0
        before, vf, after = _command_parts(info, start, size)
        # Filters that change what a frame is (a deinterlacer doubling the rate) come first;
        # ``info`` must then describe their output (rate, count), which numbering follows.
        vf = [*filters, *vf]
        cmd = [ffmpeg_exe(), "-hide_banner", "-v", "error", "-nostdin",
               "-threads", str(threads), *before, "-i", str(info.path), "-map", "0:v:0",
               *(["-vf", ",".join(vf)] if vf else []), *after, "-frames:v", str(end - start),
               "-f", "rawvideo", "-pix_fmt", "rgb24" if mode == "rgb" else "gray", "-"]
        # Own session: a terminal Ctrl-C must reach Python (which cleans up), not kill ffmpeg.
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      start_new_session=True,
                                      stdin=subprocess.DEVNULL)
        self._stderr = StderrDrain(self._proc.stderr)

    @property
    def errors(self) -> str:
        return self._stderr.text

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        assert self._proc.stdout is not None
        shape = (self.height, self.width, 3) if self.channels == 3 else (self.height, self.width)
        nbytes = self.width * self.height * self.channels
        n = self.start
        try:
            while n < self.end:
                buf = self._proc.stdout.read(nbytes)
                if len(buf) < nbytes:
                    break
                yield n, np.frombuffer(buf, np.uint8).reshape(shape)
                n += 1
        finally:
            self.shortfall = self.end - n
            self.close()

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._stderr.join(timeout=1)
        for pipe in (self._proc.stdout, self._proc.stderr):
            if pipe:
                pipe.close()

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

