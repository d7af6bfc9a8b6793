"""Shots and per-shot chroma strength: which shot a frame is in, and the chroma it is merged at.

A shot runs from one scene cut to the next (the first from frame 0). An operator can give a shot
its own chroma strength (a faded outdoor scene needs more, a face in close-up less); frames
outside every such shot take the episode's strength. Each setting names its frame range, not a
shot number, so a cut list that grows while the desk is still scanning never moves a setting to
another shot.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from restorer.errors import RestorerError
from restorer.look import CHROMA_MAX, Look


@dataclass(frozen=True, order=True)
class ShotChroma:
    """Chroma strength ``chroma`` (0..2) for frames ``start`` to ``end`` (exclusive)."""

    start: int
    end: int
    chroma: float

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise RestorerError(f"a shot must cover at least one frame; got {self.start}.."
                                f"{self.end}")
        Look(chroma=self.chroma)  # the one range check for chroma, with its message

    def covers(self, n: int) -> bool:
        return self.start <= n < self.end

    def to_dict(self) -> dict[str, float | int]:
        return {"start": self.start, "end": self.end, "chroma": self.chroma}

    @classmethod
    def from_dict(cls, d: object) -> ShotChroma:
        if not isinstance(d, dict):
            raise RestorerError(f"a shot setting must be an object with start, end and chroma; "
                                f"got {d!r}")
        try:
            return cls(int(d["start"]), int(d["end"]), float(d["chroma"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise RestorerError(f"a shot setting needs whole-number start and end and a "
                                f"chroma: {exc}") from None


ShotChromas = tuple[ShotChroma, ...]


def shot_bounds(cuts: Sequence[int], frame_count: int, n: int) -> tuple[int, int]:
    """``(start, end)`` of the shot holding frame ``n``; ``cuts`` sorted, each a shot's first
    frame (0 need not be listed)."""
    i = bisect.bisect_right(cuts, n)
    start = cuts[i - 1] if i > 0 else 0
    end = cuts[i] if i < len(cuts) else frame_count
    return start, max(start + 1, end)


def shot_number(cuts: Sequence[int], n: int) -> int:
    """1-based number of the shot holding frame ``n``."""
    return bisect.bisect_right([c for c in cuts if c > 0], n) + 1


def shot_starts(cuts: Sequence[int]) -> list[int]:
    """Every shot's first frame, 0 first."""
    return [0] + [c for c in cuts if c > 0]


def chroma_at(shots: Iterable[ShotChroma], n: int, default: float) -> float:
    """The chroma strength frame ``n`` is merged at."""
    for s in shots:
        if s.covers(n):
            return s.chroma
    return default


def with_shot(shots: ShotChromas, start: int, end: int, chroma: float | None) -> ShotChromas:
    """``shots`` with frames ``start..end`` set to ``chroma`` (None: back to the episode's).

    Settings overlapping the range are trimmed around it, so each frame has at most one.
    """
    if chroma is not None:
        chroma = round(max(0.0, min(CHROMA_MAX, float(chroma))), 4)
    out: list[ShotChroma] = []
    for s in shots:
        if s.end <= start or s.start >= end:
            out.append(s)
            continue
        if s.start < start:
            out.append(ShotChroma(s.start, start, s.chroma))
        if s.end > end:
            out.append(ShotChroma(end, s.end, s.chroma))
    if chroma is not None:
        out.append(ShotChroma(start, end, chroma))
    return tuple(sorted(out))


def check_shots(shots: Iterable[ShotChroma], frame_count: int | None = None) -> ShotChromas:
    """Sorted, and checked not to overlap (nor, given ``frame_count``, to run past the end)."""
    out = tuple(sorted(shots))
    for a, b in zip(out, out[1:], strict=False):
        if b.start < a.end:
            raise RestorerError(f"shot settings overlap: frames {a.start}..{a.end - 1} and "
                                f"{b.start}..{b.end - 1}")
    if frame_count is not None and out and out[-1].end > frame_count:
        raise RestorerError(f"a shot setting runs to frame {out[-1].end - 1}, past the "
                            f"episode's last frame {frame_count - 1}")
    return out
