"""The state the restoration desk shows, as plain Python (no Qt), so it is testable on its own.

Views subscribe to :attr:`ViewState.changed` (napari style) and forward user input to its methods;
they never keep their own copy of the frame number, marks, chroma, working size or viewer mode.
Chroma, working size and stabilisation live in one frozen :class:`~restorer.look.Look`
(:attr:`ViewState.look`), which the previews and the export job take as it is.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from restorer.look import CHROMA_MAX, DEFAULT_WORKING_SIZE, STABILISE_MAX, Look
from restorer.shots import ShotChromas, chroma_at, shot_bounds, shot_number, shot_starts, with_shot

VIEW_MODES = ("side", "wipe", "original", "colour")
MODE_LABELS = {"side": "Side by side", "wipe": "Split wipe", "original": "Original only",
               "colour": "Colour only"}
PRESETS = ("fast", "balanced", "best")
PRESET_LABELS = {"fast": "Fast", "balanced": "Balanced", "best": "Best"}
# Relative to the model's own working size (what it was trained at).
_PRESET_SCALE = {"fast": 0.5, "balanced": 1.0, "best": 2.0}
SHUTTLE_SPEEDS = (1.0, 2.0, 4.0, 8.0)
#: Undo steps kept; and how close together (seconds) changes of one thing (a slider drag)
#: must be to count as one step.
UNDO_DEPTH = 200
UNDO_MERGE_S = 1.0


def preset_size(preset: str, model_size: int) -> int:
    """Working short side for a preset: half, equal to, or twice the model's, a multiple of 8.

    >>> preset_size("fast", 256), preset_size("balanced", 256), preset_size("best", 256)
    (128, 256, 512)
    """
    if preset not in _PRESET_SCALE:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    size = int(round(model_size * _PRESET_SCALE[preset] / 8)) * 8
    return max(32, min(4096, size))


class Emitter:
    """A minimal callback list: ``connect(cb)``, ``disconnect(cb)``, ``emit(*args)``."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., Any]] = []

    def connect(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callable[..., Any]) -> None:
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def emit(self, *args: Any) -> None:
        for cb in list(self._callbacks):
            cb(*args)


class Generation:
    """Monotonic request numbers (ndv style): a result is shown only if its number is current."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self.current = 0

    def next(self) -> int:
        with self._lock:
            self.current = next(self._counter)
            return self.current

    def is_current(self, gen: int) -> bool:
        return gen == self.current


@dataclass(frozen=True)
class Edit:
    """What undo restores: the marks and the per-shot settings."""

    in_point: int | None
    out_point: int | None
    shots: ShotChromas


class History:
    """Undo and redo of :class:`Edit` snapshots. A change of the same thing (``tag``) soon after
    the last one joins its step, so one slider drag is undone in one go."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.undo_stack: list[Edit] = []
        self.redo_stack: list[Edit] = []
        self._last_tag: object = None
        self._last_t = 0.0
        self._clock = clock

    def record(self, before: Edit, tag: object) -> None:
        """Call before a change, with the state before it."""
        now = self._clock()
        if not (tag is not None and tag == self._last_tag and now - self._last_t < UNDO_MERGE_S
                and self.undo_stack):
            self.undo_stack.append(before)
            del self.undo_stack[:-UNDO_DEPTH]
        self.redo_stack.clear()
        self._last_tag, self._last_t = tag, now

    def undo(self, now: Edit) -> Edit | None:
        if not self.undo_stack:
            return None
        self.redo_stack.append(now)
        self._last_tag = None
        return self.undo_stack.pop()

    def redo(self, now: Edit) -> Edit | None:
        if not self.redo_stack:
            return None
        self.undo_stack.append(now)
        self._last_tag = None
        return self.redo_stack.pop()

    def clear(self) -> None:
        self.undo_stack.clear()
        self.redo_stack.clear()
        self._last_tag = None


class ViewState:
    """Current frame, in/out marks, the look (chroma, working-size preset, stabilisation),
    viewer mode and playback.

    Every change emits ``changed(name, value)`` once, and only when the value really changed;
    a change to the look is named after what changed (``chroma``, ``stabilise``, ``preset``,
    ``model_size``) and has already replaced :attr:`look` when it is emitted.
    The out point is inclusive (the last frame exported), as on an edit suite.
    """

    def __init__(self) -> None:
        self.changed = Emitter()
        self.frame_count = 0
        self.fps = 25.0
        self.frame = 0
        self.in_point: int | None = None
        self.out_point: int | None = None
        self.preset = "balanced"
        self.model_size = DEFAULT_WORKING_SIZE
        self.look = Look(working_size=preset_size(self.preset, self.model_size))
        self.mode = "side"
        self.speed = 0.0
        self.cuts: list[int] = []
        self.shots: ShotChromas = ()
        self.loop = False
        self.history = History()

    # ------------------------------------------------------------------ plumbing
    def _set(self, name: str, value: Any) -> bool:
        if getattr(self, name) == value:
            return False
        setattr(self, name, value)
        self.changed.emit(name, value)
        return True

    # ------------------------------------------------------------------ episode
    def reset(self, frame_count: int, fps: float, *, frame: int = 0,
              in_point: int | None = None, out_point: int | None = None,
              shots: ShotChromas = ()) -> None:
        """A new episode: playback stopped, at ``frame`` (0) with the given marks (none).

        A reopened episode passes where it was left; values out of range are clamped, and
        marks in the wrong order are dropped, so a stale record never breaks the desk.
        """
        self.speed = 0.0
        self.frame_count = max(0, int(frame_count))
        self.fps = float(fps) if fps > 0 else 25.0
        self.in_point = self.clamp(in_point) if in_point is not None else None
        self.out_point = self.clamp(out_point) if out_point is not None else None
        if (self.in_point is not None and self.out_point is not None
                and self.out_point < self.in_point):
            self.in_point = self.out_point = None
        self.cuts = []
        self.shots = tuple(sh for sh in shots if sh.end <= self.frame_count)
        self.history.clear()
        self.frame = -1  # so the next line always notifies
        self.changed.emit("episode", self.frame_count)
        self.set_frame(frame)
        self.changed.emit("marks", (self.in_point, self.out_point))
        self.changed.emit("shots", self.shots)

    @property
    def loaded(self) -> bool:
        return self.frame_count > 0

    @property
    def last_frame(self) -> int:
        return max(0, self.frame_count - 1)

    # ------------------------------------------------------------------ navigation
    def clamp(self, n: int) -> int:
        return max(0, min(self.last_frame, int(n)))

    def set_frame(self, n: int) -> bool:
        return self._set("frame", self.clamp(n))

    def step(self, k: int = 1) -> bool:
        return self.set_frame(self.frame + k)

    def jump_seconds(self, seconds: float) -> bool:
        return self.step(int(round(seconds * self.fps)))

    def home(self) -> bool:
        return self.set_frame(0)

    def end(self) -> bool:
        return self.set_frame(self.last_frame)

    # ------------------------------------------------------------------ playback
    @property
    def playing(self) -> bool:
        return self.speed != 0.0

    def set_speed(self, speed: float) -> bool:
        return self._set("speed", float(speed))

    def toggle_play(self) -> bool:
        if self.playing:
            return self.set_speed(0.0)
        if self.frame >= self.last_frame:
            self.set_frame(0)
        return self.set_speed(1.0)

    def shuttle(self, key: str) -> bool:
        """J/K/L: L plays forward (again: faster), J backward (again: faster), K stops."""
        key = key.upper()
        if key == "K":
            return self.set_speed(0.0)
        sign = 1.0 if key == "L" else -1.0
        if key not in ("J", "L"):
            raise ValueError(f"shuttle key must be J, K or L; got {key!r}")
        if self.speed * sign <= 0:
            return self.set_speed(sign * SHUTTLE_SPEEDS[0])
        i = SHUTTLE_SPEEDS.index(abs(self.speed)) if abs(self.speed) in SHUTTLE_SPEEDS else 0
        return self.set_speed(sign * SHUTTLE_SPEEDS[min(i + 1, len(SHUTTLE_SPEEDS) - 1)])

    # ------------------------------------------------------------------ marks
    def mark_in(self, n: int | None = None) -> None:
        n = self.frame if n is None else self.clamp(n)
        self._record("in")
        self.in_point = n
        if self.out_point is not None and self.out_point < n:
            self.out_point = None
        self.changed.emit("marks", (self.in_point, self.out_point))

    def mark_out(self, n: int | None = None) -> None:
        n = self.frame if n is None else self.clamp(n)
        self._record("out")
        self.out_point = n
        if self.in_point is not None and self.in_point > n:
            self.in_point = None
        self.changed.emit("marks", (self.in_point, self.out_point))

    def clear_marks(self) -> None:
        if not self.has_marks:
            return
        self._record(None)
        self.in_point = self.out_point = None
        self.changed.emit("marks", (None, None))

    @property
    def has_marks(self) -> bool:
        return self.in_point is not None or self.out_point is not None

    def export_range(self, use_marks: bool = True) -> tuple[int, int]:
        """``(start, end)`` with ``end`` exclusive, as :class:`restorer.render.RenderJob` takes."""
        if not use_marks:
            return 0, self.frame_count
        start = self.in_point if self.in_point is not None else 0
        end = self.out_point + 1 if self.out_point is not None else self.frame_count
        return start, max(start + 1, end)

    # ------------------------------------------------------------------ look
    def _set_look(self, name: str, **changes: Any) -> bool:
        look = self.look.replace(**changes)
        if look == self.look:
            return False
        self.look = look
        self.changed.emit(name, getattr(look, name))
        return True

    def _set_sizing(self, name: str, value: Any) -> bool:
        """Preset or model size: either changes the look's working size."""
        if getattr(self, name) == value:
            return False
        setattr(self, name, value)
        self.look = self.look.replace(working_size=preset_size(self.preset, self.model_size))
        self.changed.emit(name, value)
        return True

    @property
    def chroma(self) -> float:
        return self.look.chroma

    @property
    def stabilise(self) -> float:
        return self.look.stabilise

    @property
    def working_size(self) -> int:
        size = self.look.working_size
        assert size is not None  # the desk always names it, from the preset
        return size

    def set_chroma(self, chroma: float) -> bool:
        """Clamped to the look's range: a slider or a stored setting never raises."""
        return self._set_look("chroma", chroma=round(max(0.0, min(CHROMA_MAX, float(chroma))), 4))

    def set_preset(self, preset: str) -> bool:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        return self._set_sizing("preset", preset)

    def set_model_size(self, size: int) -> bool:
        return self._set_sizing("model_size", int(size))

    def set_mode(self, mode: str) -> bool:
        if mode not in VIEW_MODES:
            raise ValueError(f"unknown viewer mode {mode!r}; choose one of {', '.join(VIEW_MODES)}")
        return self._set("mode", mode)

    def set_stabilise(self, strength: float) -> bool:
        return self._set_look("stabilise",
                              stabilise=round(max(0.0, min(STABILISE_MAX, float(strength))), 4))

    def set_cuts(self, cuts: list[int]) -> None:
        self.cuts = sorted(int(c) for c in cuts if 0 < int(c) < self.frame_count)
        self.changed.emit("cuts", self.cuts)

    # ------------------------------------------------------------------ shots
    def shot(self, n: int | None = None) -> tuple[int, int]:
        """``(start, end)`` (end exclusive) of the shot holding frame ``n`` (the playhead's)."""
        return shot_bounds(self.cuts, self.frame_count, self.frame if n is None else n)

    def shot_number(self, n: int | None = None) -> int:
        return shot_number(self.cuts, self.frame if n is None else n)

    @property
    def shot_count(self) -> int:
        return len(shot_starts(self.cuts))

    def shot_setting(self, n: int | None = None) -> float | None:
        """The shot's own chroma strength at frame ``n``, or None where it takes the episode's."""
        n = self.frame if n is None else n
        return next((s.chroma for s in self.shots if s.covers(n)), None)

    def chroma_at(self, n: int) -> float:
        """The chroma strength frame ``n`` is shown and exported at."""
        return chroma_at(self.shots, n, self.look.chroma)

    def look_at(self, n: int) -> Look:
        """The look frame ``n`` is shown and exported with (its shot's chroma, if it has one)."""
        chroma = self.chroma_at(n)
        return self.look if chroma == self.look.chroma else self.look.replace(chroma=chroma)

    def set_shot_chroma(self, chroma: float | None, n: int | None = None) -> bool:
        """Give the shot at frame ``n`` (the playhead's) its own chroma; None: the episode's."""
        if not self.loaded:
            return False
        start, end = self.shot(n)
        shots = with_shot(self.shots, start, end, chroma)
        if shots == self.shots:
            return False
        self._record(("shot", start, end))
        self.shots = shots
        self.changed.emit("shots", self.shots)
        return True

    def next_cut(self) -> bool:
        """To the first frame of the next shot."""
        later = [c for c in self.cuts if c > self.frame]
        return self.set_frame(later[0]) if later else self.end()

    def previous_cut(self) -> bool:
        """To the first frame of this shot, or of the one before when already there."""
        earlier = [c for c in shot_starts(self.cuts) if c < self.frame]
        return self.set_frame(earlier[-1]) if earlier else self.home()

    # ------------------------------------------------------------------ loop
    def set_loop(self, on: bool) -> bool:
        return self._set("loop", bool(on))

    def loop_range(self) -> tuple[int, int]:
        """``(first, last)`` frames playback loops over: in to out, or the whole episode."""
        a, b = self.export_range()
        return a, b - 1

    # ------------------------------------------------------------------ undo
    def edit(self) -> Edit:
        return Edit(self.in_point, self.out_point, self.shots)

    def _record(self, tag: object) -> None:
        self.history.record(self.edit(), tag)

    def _restore(self, e: Edit) -> None:
        marks = (e.in_point, e.out_point) != (self.in_point, self.out_point)
        shots = e.shots != self.shots
        self.in_point, self.out_point, self.shots = e.in_point, e.out_point, e.shots
        if marks:
            self.changed.emit("marks", (self.in_point, self.out_point))
        if shots:
            self.changed.emit("shots", self.shots)

    @property
    def can_undo(self) -> bool:
        return bool(self.history.undo_stack)

    @property
    def can_redo(self) -> bool:
        return bool(self.history.redo_stack)

    def undo(self) -> bool:
        """Take back the last change of the marks or of a shot's setting."""
        e = self.history.undo(self.edit())
        if e is None:
            return False
        self._restore(e)
        return True

    def redo(self) -> bool:
        e = self.history.redo(self.edit())
        if e is None:
            return False
        self._restore(e)
        return True
