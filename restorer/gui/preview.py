"""Preview pipeline (no Qt): decode one frame, colourise it with the engine, re-merge at a new
chroma strength.

The desk's workers run these functions on the thread pool. Each request carries the desk's
:class:`~restorer.look.Look`, and the frame goes through the same engine stages as an export
(:meth:`Colouriser.predict` and :meth:`Colouriser.finish`), so what the desk shows is what an
export of that frame writes. Decoded frames and predicted ab are kept in LRU caches, so stepping
back and forth and moving the chroma slider never re-run the network: a chroma change only
re-merges the cached ab with the original L.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from restorer.engine import Colouriser
from restorer.gui.cache import LRUCache
from restorer.interlace import FieldOrder, field_order_for, finish_fields, predict_fields
from restorer.look import Look
from restorer.media import FrameReader, VideoInfo
from restorer.media.seeker import FrameSeeker
from restorer.memory import reuse_freed_memory

if TYPE_CHECKING:
    from restorer.temporal import ChromaStabiliser

log = logging.getLogger(__name__)

# A scrub hops a few frames ahead at a time. Decoding on through the frames in between beats a
# seek when (frames between) x (cost of one frame) < (cost of a seek); both are measured per
# episode, as they differ by codec: an SD ProRes frame decodes in ~5 ms and seeks in ~18, an SD
# H.264 one decodes in ~2 and seeks in ~30 (from its keyframe; a long GOP: ~250).
_WALK_MAX = 48
_EWMA = 0.3

# Frames at most this far past the last stabilised one still count as a continuous sequence
# (playback drops frames when inference cannot keep up).
_SEQUENTIAL_GAP = 4


@dataclass
class FrameResult:
    """One previewed frame: the original grey, its full-resolution ab, the merged RGB, and the
    look ``rgb`` was merged with (a chroma-only re-merge replaces ``rgb`` and ``look``)."""

    n: int
    grey: np.ndarray
    ab: np.ndarray
    rgb: np.ndarray
    look: Look
    infer_ms: float = 0.0
    cached: bool = False
    dropped: int = 0
    gen: int = 0

    @property
    def chroma(self) -> float:
        """The chroma strength ``rgb`` was merged at."""
        return self.look.chroma


@dataclass(frozen=True)
class DecodedFrame:
    """One decoded original, without colour: what the original pane shows while scrubbing."""

    n: int
    grey: np.ndarray
    decode_ms: float = 0.0


def merge(grey: np.ndarray, ab: np.ndarray, chroma: float) -> np.ndarray:
    """Re-merge cached ab with the original L at ``chroma`` (0..2); never touches the network."""
    return Colouriser.merge(grey, ab, chroma)


class PreviewEngine:
    """Everything the preview needs for one episode and one model, safe to call from workers.

    The colouriser is used by one thread at a time (a lock); the caches are thread-safe. The
    look comes with each request; this object holds no copy of it.
    """

    def __init__(self, info: VideoInfo, colouriser: Colouriser | None, *,
                 frame_cache_bytes: int = 256 * 2**20, ab_cache_bytes: int = 512 * 2**20) -> None:
        reuse_freed_memory()  # each scrubbed frame's merge allocates as an export's does
        self.info = info
        self.colouriser = colouriser
        self.frames = LRUCache(frame_cache_bytes)
        self.abs = LRUCache(ab_cache_bytes)
        self.predictions = 0
        self.last_infer_ms = 0.0
        self.last_decode_ms = 0.0
        self._seeker: FrameSeeker | None = None  # opened by the first worker that needs it
        self._seeker_lock = threading.Lock()
        self._decode_lock = threading.Lock()
        self._at: int | None = None  # the frame the seeker decoded last, so where it stands
        self._step_ms = 5.0  # measured: decoding the next frame
        self._seek_ms = 20.0  # measured: any other jump
        self._lock = threading.Lock()
        self._stab: ChromaStabiliser | None = None
        self._stab_last: int | None = None
        self._fields: FieldOrder | None | bool = False  # False: not measured yet

    # ------------------------------------------------------------------ configuration
    def set_colouriser(self, colouriser: Colouriser | None) -> None:
        with self._lock:
            self.colouriser = colouriser
            self.abs.clear()
            self._stab_last = None

    def cache_text(self) -> str:
        return f"frames {self.frames.describe()}; ab {self.abs.describe()}"

    @property
    def decoder(self) -> str:
        """Which path decoded the last scrubbed frame: "pyav" (the kept-open file) or "reader"
        (opened afresh)."""
        return self._seeker.backend if self._seeker is not None else ""

    def close(self) -> None:
        """Release the open episode file (call once no worker uses this engine)."""
        with self._seeker_lock:
            if self._seeker is not None:
                self._seeker.close()
                self._seeker = None
            self._at = None

    # ------------------------------------------------------------------ stages
    def grey(self, n: int) -> np.ndarray:
        """The decoded grey frame ``n`` (from the cache, or an exact seek)."""
        frame = self.frames.get(n)
        if frame is not None:
            return frame
        # A scrub asks for the same frame twice at once (the original pane's decode and the
        # colour pane's render): the second waits here and takes the first one's frame, rather
        # than seeking back for it, which costs a whole GOP on long-GOP sources.
        with self._decode_lock:
            frame = self.frames.get(n)
            if frame is not None:
                return frame
            t0 = time.perf_counter()
            with self._seeker_lock:
                if self._seeker is None:
                    self._seeker = FrameSeeker(self.info)
                seeker = self._seeker
            at = self._at
            if (at is not None and 1 < n - at <= _WALK_MAX
                    and (n - at - 1) * self._step_ms < self._seek_ms):
                for k in range(at + 1, n):
                    self._seek_to(seeker, k)
            frame = self._seek_to(seeker, n)
            self.last_decode_ms = (time.perf_counter() - t0) * 1000
        return frame

    def _seek_to(self, seeker: FrameSeeker, n: int) -> np.ndarray:
        """Decode ``n`` with the seeker (decode lock held), learning what a step and a jump
        cost."""
        t0 = time.perf_counter()
        # Frames decoded on the way to n go to the cache: stepping back is then free.
        frame = seeker.frame(n, keep=self._keep)
        ms = (time.perf_counter() - t0) * 1000
        if self._at is not None and n == self._at + 1:
            self._step_ms += _EWMA * (ms - self._step_ms)
        else:
            self._seek_ms += _EWMA * (ms - self._seek_ms)
        self._at = n
        frame.setflags(write=False)
        self.frames.put(n, frame)
        return frame

    def decoded(self, n: int) -> DecodedFrame:
        """Frame ``n``'s original only (no network): cheap enough to follow a drag."""
        t0 = time.perf_counter()
        grey = self.grey(n)
        return DecodedFrame(n, grey, (time.perf_counter() - t0) * 1000)

    def _keep(self, n: int, frame: np.ndarray) -> None:
        frame.setflags(write=False)
        self.frames.put(n, frame)

    def _ab_key(self, n: int, size: int, col: Colouriser) -> tuple[int, int, int]:
        return (n, size, id(col))

    def fields(self) -> FieldOrder | None:
        """The field order an export of this episode colourises with ("tt"/"bb"), or None for
        progressive frames: the same decision as the export's, made once (it reads a few
        frames), so the preview shows what the export writes."""
        if self._fields is False:
            order, _ = field_order_for(self.info)
            self._fields = "tt" if order == "tt" else "bb" if order == "bb" else None
        assert self._fields is not True
        return self._fields

    def render(self, n: int, look: Look | None = None,
               grey: np.ndarray | None = None) -> FrameResult:
        """Decode (or take ``grey``), colourise (or hit the cache) and merge frame ``n``."""
        look = look if look is not None else Look()
        if grey is None:
            grey = self.grey(n)
        woven = self.fields()
        if woven is not None and self.colouriser is not None:
            return self._render_fields(n, grey, look, woven)
        with self._lock:
            col = self.colouriser
            if col is None:  # no model yet: show the original in both panes
                ab = np.zeros((*grey.shape, 2), np.float32)
                return FrameResult(n, grey, ab, merge(grey, ab, look.chroma), look, 0.0, True)
            key = self._ab_key(n, look.size_for(col.meta), col)
            hit = self.abs.get(key) if look.stabilise <= 0 else None
            if hit is None:
                # Stabilised ab depends on the frames before, so only the network's raw ab is
                # cached then, and the stabiliser runs again on it.
                skey = ("small", *key)
                raw = self.abs.get(skey) if look.stabilise > 0 else None
                frame = col.predict([grey], look, self._stabiliser(n, look), raw=[raw])[0]
                infer_ms = 0.0
                if raw is None:
                    self.predictions += 1
                    infer_ms = self.last_infer_ms = col.last_infer_ms
                    if look.stabilise > 0:
                        self.abs.put(skey, frame.raw)
        if hit is not None:  # seen before with this working size: only the merge
            return FrameResult(n, grey, hit, merge(grey, hit, look.chroma), look, 0.0, True)
        out = col.finish(frame, look)  # stateless: outside the lock, as the merge always was
        out.ab.setflags(write=False)
        if look.stabilise <= 0:
            with self._lock:
                if self.colouriser is col:  # not for a model replaced meanwhile
                    self.abs.put(key, out.ab)
        return FrameResult(n, grey, out.ab, out.rgb, look, infer_ms, False)

    def _render_fields(self, n: int, grey: np.ndarray, look: Look,
                       woven: FieldOrder) -> FrameResult:
        """:meth:`render` for an interlaced episode: field by field, as the export does. Only
        the finished ab is cached (the stabilised path recomputes both fields)."""
        with self._lock:
            col = self.colouriser
            assert col is not None
            key = ("fields", *self._ab_key(n, look.size_for(col.meta), col))
            hit = self.abs.get(key) if look.stabilise <= 0 else None
            if hit is None:
                frame = predict_fields(col, [grey], look, self._stabiliser(n, look), woven)[0]
                self.predictions += 1
                infer_ms = self.last_infer_ms = col.last_infer_ms * 2
        if hit is not None:
            return FrameResult(n, grey, hit, merge(grey, hit, look.chroma), look, 0.0, True)
        out = finish_fields(frame, look)
        out.ab.setflags(write=False)
        if look.stabilise <= 0:
            with self._lock:
                if self.colouriser is col:
                    self.abs.put(key, out.ab)
        return FrameResult(n, grey, out.ab, out.rgb, look, infer_ms, False)

    def _stabiliser(self, n: int, look: Look) -> ChromaStabiliser | None:
        """The stabiliser state for frame ``n``: kept along a run of (nearly) consecutive
        frames, reset after a jump, made anew when the strength changes."""
        if look.stabilise <= 0:
            return None
        if self._stab is None or self._stab.strength != look.stabilise:
            self._stab = Colouriser.new_stabiliser(look)
            self._stab_last = None
        assert self._stab is not None
        last = self._stab_last
        if last is None or not 0 < n - last <= _SEQUENTIAL_GAP:
            self._stab.reset()
        self._stab_last = n
        return self._stab

    # ------------------------------------------------------------------ playback
    def play(self, start: int, speed: float, cancel: threading.Event,
             look: Look | Callable[[int], Look] | None = None, stop: int | None = None
             ) -> Iterator[FrameResult]:
        """Frames from ``start`` at ``speed`` times real time (negative: backwards).

        Forward play decodes sequentially (far cheaper than seeking) and skips the frames whose
        time has already passed when inference cannot keep up; each result says how many frames
        were dropped since the previous one. ``look`` may be a callable giving the current look
        of frame ``n``, read for every frame, so a slider moved during playback shows on the next
        frame and each shot plays with its own chroma. Forward play ends after frame ``stop``
        (default: the last), backward play at frame ``stop`` (default: 0): the loop's bounds.
        """
        fps = float(self.info.fps) * abs(speed) if speed else float(self.info.fps)
        t0 = time.monotonic()
        dropped = 0
        last: int | None = None

        def wait_for(n: int) -> bool:
            delay = abs(n - start) / fps - (time.monotonic() - t0)
            return delay > 0 and cancel.wait(delay)

        def look_now(n: int) -> Look | None:
            return look(n) if callable(look) else look

        if speed > 0:
            last_frame = self.info.frame_count - 1 if stop is None else \
                min(stop, self.info.frame_count - 1)
            if start >= last_frame:
                return
            reader = FrameReader(self.info, start, last_frame + 1)
            try:
                for n, grey in reader:
                    if cancel.is_set():
                        return
                    due = start + int((time.monotonic() - t0) * fps)
                    if last is not None and n < due:
                        dropped += 1
                        continue
                    if wait_for(n):
                        return
                    grey = grey.copy()
                    grey.setflags(write=False)
                    self.frames.put(n, grey)
                    res = self.render(n, look_now(n), grey=grey)
                    res.dropped, dropped, last = dropped, 0, n
                    yield res
            finally:
                reader.close()
        else:
            n = start
            while not cancel.is_set():
                due = start - int((time.monotonic() - t0) * fps)
                if last is not None:
                    target = min(due, last - 1)
                    dropped += max(0, last - 1 - target)
                    n = target
                if n < (stop or 0):
                    return
                if wait_for(n):
                    return
                res = self.render(n, look_now(n))
                res.dropped, dropped, last = dropped, 0, n
                yield res
