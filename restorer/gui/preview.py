"""Preview pipeline (no Qt): decode one frame, predict its ab, merge at a chroma strength.

The desk's workers run these functions on the thread pool. Decoded frames and predicted ab are
kept in LRU caches, so stepping back and forth and moving the chroma slider never re-run the
network: a chroma change only re-merges the cached ab with the original L.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from restorer.engine import Colouriser
from restorer.gui.cache import LRUCache
from restorer.media import FrameReader, VideoInfo
from restorer.media.seeker import FrameSeeker

log = logging.getLogger(__name__)

try:  # temporal stabilisation is optional: the control is hidden when the module is absent
    from restorer.temporal import ChromaStabiliser
except ImportError:  # pragma: no cover - depends on what has been built
    ChromaStabiliser = None  # type: ignore[assignment,misc]

HAVE_STABILISER = ChromaStabiliser is not None
# Frames at most this far past the last stabilised one still count as a continuous sequence
# (playback drops frames when inference cannot keep up).
_SEQUENTIAL_GAP = 4


@dataclass
class FrameResult:
    """One previewed frame: the original grey, its full-resolution ab, and the merged RGB."""

    n: int
    grey: np.ndarray
    ab: np.ndarray
    rgb: np.ndarray
    chroma: float
    infer_ms: float = 0.0
    cached: bool = False
    dropped: int = 0
    gen: int = 0


def merge(grey: np.ndarray, ab: np.ndarray, chroma: float) -> np.ndarray:
    """Re-merge cached ab with the original L at ``chroma`` (0..2); never touches the network."""
    return Colouriser.merge(grey, ab, chroma)


class PreviewEngine:
    """Everything the preview needs for one episode and one model, safe to call from workers.

    The colouriser is used by one thread at a time (a lock); the caches are thread-safe.
    """

    def __init__(self, info: VideoInfo, colouriser: Colouriser | None, *,
                 frame_cache_bytes: int = 256 * 2**20, ab_cache_bytes: int = 512 * 2**20) -> None:
        self.info = info
        self.colouriser = colouriser
        self.frames = LRUCache(frame_cache_bytes)
        self.abs = LRUCache(ab_cache_bytes)
        self.chroma = 1.0
        self.working_size = colouriser.working_size if colouriser is not None else 160
        self.stabilise = 0.0
        self.predictions = 0
        self.last_infer_ms = 0.0
        self.last_decode_ms = 0.0
        self._seeker: FrameSeeker | None = None  # opened by the first worker that needs it
        self._seeker_lock = threading.Lock()
        self._lock = threading.Lock()
        self._stab: object | None = None
        self._stab_strength = 0.0
        self._stab_last: int | None = None

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
        """Which path decoded the last scrubbed frame: "pyav" (in process) or "ffmpeg"."""
        return self._seeker.backend if self._seeker is not None else ""

    def close(self) -> None:
        """Release the open episode file (call once no worker uses this engine)."""
        with self._seeker_lock:
            if self._seeker is not None:
                self._seeker.close()
                self._seeker = None

    # ------------------------------------------------------------------ stages
    def grey(self, n: int) -> np.ndarray:
        """The decoded grey frame ``n`` (from the cache, or an exact seek)."""
        frame = self.frames.get(n)
        if frame is None:
            t0 = time.perf_counter()
            with self._seeker_lock:
                if self._seeker is None:
                    self._seeker = FrameSeeker(self.info)
                seeker = self._seeker
            # Frames decoded on the way to n go to the cache: stepping back is then free.
            frame = seeker.frame(n, keep=self._keep)
            frame.setflags(write=False)
            self.frames.put(n, frame)
            self.last_decode_ms = (time.perf_counter() - t0) * 1000
        return frame

    def _keep(self, n: int, frame: np.ndarray) -> None:
        frame.setflags(write=False)
        self.frames.put(n, frame)

    def _ab_key(self, n: int, size: int) -> tuple[int, int, int]:
        return (n, size, id(self.colouriser))

    def ab(self, n: int, grey: np.ndarray) -> tuple[np.ndarray, float, bool]:
        """Full-resolution ab for frame ``n``: ``(ab, infer_ms, from_cache)``."""
        size = self.working_size
        stabilise = self.stabilise if HAVE_STABILISER else 0.0
        with self._lock:
            col = self.colouriser
            if col is None:  # no model yet: show the original in both panes
                return np.zeros((*grey.shape, 2), np.float32), 0.0, True
            key = self._ab_key(n, size)
            if stabilise <= 0:
                hit = self.abs.get(key)
                if hit is not None:
                    return hit, 0.0, True
            col.working_size = size
            small = col.to_working(grey)
            skey = ("small", *key)
            ab_small = self.abs.get(skey)
            infer_ms = 0.0
            if ab_small is None:
                ab_small = col.predict_ab_small([small])[0]
                self.predictions += 1
                infer_ms = self.last_infer_ms = col.last_infer_ms
                if stabilise > 0:
                    self.abs.put(skey, ab_small)
            if stabilise > 0:
                ab_small = self._stabilised(n, small, ab_small, stabilise)
            ab = col.upsample(grey, small, ab_small)
            ab.setflags(write=False)
            if stabilise <= 0:
                self.abs.put(key, ab)
            return ab, infer_ms, False

    def _stabilised(self, n: int, small: np.ndarray, ab_small: np.ndarray,
                    strength: float) -> np.ndarray:
        if self._stab is None or self._stab_strength != strength:
            self._stab = ChromaStabiliser(strength=strength)  # type: ignore[misc]
            self._stab_strength = strength
            self._stab_last = None
        last = self._stab_last
        if last is None or not 0 < n - last <= _SEQUENTIAL_GAP:
            self._stab.reset()  # type: ignore[attr-defined]
        self._stab_last = n
        return self._stab.process(small, ab_small)  # type: ignore[attr-defined]

    def render(self, n: int, chroma: float | None = None,
               grey: np.ndarray | None = None) -> FrameResult:
        """Decode (or take ``grey``), predict (or hit the cache) and merge frame ``n``."""
        chroma = self.chroma if chroma is None else chroma
        if grey is None:
            grey = self.grey(n)
        ab, ms, cached = self.ab(n, grey)
        return FrameResult(n, grey, ab, merge(grey, ab, chroma), chroma, ms, cached)

    # ------------------------------------------------------------------ playback
    def play(self, start: int, speed: float, cancel: threading.Event) -> Iterator[FrameResult]:
        """Frames from ``start`` at ``speed`` times real time (negative: backwards).

        Forward play decodes sequentially (far cheaper than seeking) and skips the frames whose
        time has already passed when inference cannot keep up; each result says how many frames
        were dropped since the previous one.
        """
        fps = float(self.info.fps) * abs(speed) if speed else float(self.info.fps)
        t0 = time.monotonic()
        dropped = 0
        last: int | None = None

        def wait_for(n: int) -> bool:
            delay = abs(n - start) / fps - (time.monotonic() - t0)
            return delay > 0 and cancel.wait(delay)

        if speed > 0:
            if start >= self.info.frame_count - 1:
                return
            reader = FrameReader(self.info, start, self.info.frame_count)
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
                    res = self.render(n, grey=grey)
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
                if n < 0:
                    return
                if wait_for(n):
                    return
                res = self.render(n)
                res.dropped, dropped, last = dropped, 0, n
                yield res
