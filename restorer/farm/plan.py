"""Where an episode is cut into chunks: about the asked length, at scene cuts where there is one.

A chunk that starts at a cut loses nothing by starting fresh: the temporal stabiliser resets at a
cut anyway. A chunk that must start mid-shot (a shot longer than the chunk allows) is given warm-up
frames: the frames of its shot before it, up to :data:`WARMUP_SECONDS`, which the export feeds to
the stabiliser without writing them, so its colour continues across the seam. No Ray here.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

#: Longest warm-up: the stabiliser's memory of a frame decays as strength**k (0.7**25 < 1e-3).
WARMUP_SECONDS = 1.0


@dataclass(frozen=True)
class Chunk:
    """Source frames ``[start, end)``, rendered after ``warmup`` frames read before ``start``."""

    start: int
    end: int
    warmup: int = 0

    @property
    def name(self) -> str:
        return f"{self.start:07d}-{self.end:07d}"


def plan_chunks(frame_count: int, chunk_frames: int, cuts: Sequence[int] = (),
                warmup_frames: int = 0) -> list[Chunk]:
    """Cut ``[0, frame_count)`` into chunks of about ``chunk_frames``.

    Each boundary is the scene cut nearest to the ideal one within half a chunk either side;
    where there is none it falls mid-shot at the ideal place, and the chunk after it gets up to
    ``warmup_frames`` frames of warm-up (never reaching back past its shot's first frame).
    A remainder shorter than half a chunk joins the last chunk.
    """
    if frame_count <= 0:
        raise ValueError(f"nothing to cut: {frame_count} frames")
    if chunk_frames <= 0:
        raise ValueError(f"chunk length must be at least one frame; got {chunk_frames}")
    cuts = sorted({c for c in cuts if 0 < c < frame_count})
    half = max(1, chunk_frames // 2)
    chunks: list[Chunk] = []
    start, warm = 0, 0
    while start < frame_count:
        if frame_count - start < chunk_frames + half:
            chunks.append(Chunk(start, frame_count, warm))
            break
        ideal = start + chunk_frames
        lo = bisect.bisect_left(cuts, ideal - half)
        hi = bisect.bisect_right(cuts, ideal + half)
        near = [c for c in cuts[lo:hi] if c > start]
        if near:
            end = min(near, key=lambda c: (abs(c - ideal), c))
            chunks.append(Chunk(start, end, warm))
            start, warm = end, 0
            continue
        end = ideal
        chunks.append(Chunk(start, end, warm))
        k = bisect.bisect_right(cuts, end)
        shot_start = cuts[k - 1] if k else 0
        start, warm = end, min(warmup_frames, end - shot_start)
    return chunks


def balanced_chunk(frame_count: int, chunk_frames: int, slots: int) -> int:
    """A chunk length near ``chunk_frames`` (never longer) that makes the episode's chunk count a
    multiple of ``slots`` when it has few chunks: 5 chunks on 2 workers leave one worker idle
    for the last fifth of the episode, 6 shorter ones do not. With many chunks the tail is
    small, and the asked length is kept; so it is for an episode of about one chunk."""
    n = max(1, round(frame_count / chunk_frames))
    if slots > 1 and 2 <= n < 4 * slots and n % slots:
        n = -(-n // slots) * slots
    return max(1, min(chunk_frames, -(-frame_count // n)))
