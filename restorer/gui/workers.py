"""Run plain functions and generators on a QThreadPool (the superqt ``thread_worker`` pattern).

A :class:`Worker` wraps a callable. If it returns a generator, each value it yields is emitted as
``yielded``; its return value as ``returned``; an exception as ``errored``; and ``finished`` always
comes last. ``quit()`` is cooperative: the generator is closed at its next yield, and a callable
that takes a ``cancel`` event (``pass_cancel=True``) sees it set. No QThread subclass is involved
and no business logic lives here.

:class:`LatestRunner` adds the scrubbing discipline (ndv style): every request gets a generation
number; in each of its lanes at most one runs and a newer request replaces any queued one; a
live lane delivers every result newer than the last it delivered (the picture follows a drag),
the default lane only the newest request's; results from before an invalidation never show.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from restorer.gui.state import Generation

log = logging.getLogger(__name__)

# Workers alive anywhere in the app, so the window can stop them all on close.
_ACTIVE: set[Worker] = set()
_ACTIVE_LOCK = threading.Lock()


class WorkerSignals(QObject):
    started = Signal()
    yielded = Signal(object)
    returned = Signal(object)
    errored = Signal(object)
    finished = Signal()


class Worker(QRunnable):
    """A callable or generator function run once on a thread pool."""

    def __init__(self, func: Callable[..., Any], *args: Any, pass_cancel: bool = False,
                 **kwargs: Any) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.func, self.args, self.kwargs = func, args, kwargs
        self.cancel = threading.Event()
        if pass_cancel:
            self.kwargs["cancel"] = self.cancel
        self.signals = WorkerSignals()
        self.started, self.yielded = self.signals.started, self.signals.yielded
        self.returned, self.errored = self.signals.returned, self.signals.errored
        self.finished = self.signals.finished
        self.done = threading.Event()
        self.finished.connect(self._forget)

    # ------------------------------------------------------------------ control
    def quit(self) -> None:
        """Ask the work to stop at its next yield (or when it checks ``cancel``)."""
        self.cancel.set()

    @property
    def abort_requested(self) -> bool:
        return self.cancel.is_set()

    def start(self, pool: QThreadPool | None = None) -> Worker:
        with _ACTIVE_LOCK:
            _ACTIVE.add(self)
        (pool or QThreadPool.globalInstance()).start(self)
        return self

    def _forget(self) -> None:
        with _ACTIVE_LOCK:
            _ACTIVE.discard(self)

    # ------------------------------------------------------------------ thread side
    def run(self) -> None:
        try:
            self.signals.started.emit()
            result = self.func(*self.args, **self.kwargs)
            if inspect.isgenerator(result):
                result = self._drive(result)
            if not self.cancel.is_set() or result is not None:
                self.signals.returned.emit(result)
        except Exception as exc:  # delivered to the UI thread, which shows it
            if not self.cancel.is_set() or not _is_cancellation(exc):
                log.debug("worker %s failed", getattr(self.func, "__name__", self.func),
                          exc_info=True)
            self.signals.errored.emit(exc)
        finally:
            self.done.set()
            self.signals.finished.emit()

    def _drive(self, gen: Any) -> Any:
        try:
            while True:
                if self.cancel.is_set():
                    gen.close()
                    return None
                try:
                    value = next(gen)
                except StopIteration as stop:
                    return stop.value
                self.signals.yielded.emit(value)
        finally:
            gen.close()


def _is_cancellation(exc: BaseException) -> bool:
    from restorer.errors import Cancelled

    return isinstance(exc, Cancelled)


def create_worker(func: Callable[..., Any], *args: Any, start: bool = True,
                  pool: QThreadPool | None = None, pass_cancel: bool = False,
                  **connections_and_kwargs: Any) -> Worker:
    """Build a :class:`Worker`; ``on_yielded=...`` style keywords connect its signals."""
    conns = {k[3:]: connections_and_kwargs.pop(k) for k in list(connections_and_kwargs)
             if k.startswith("on_")}
    worker = Worker(func, *args, pass_cancel=pass_cancel, **connections_and_kwargs)
    for name, slot in conns.items():
        getattr(worker, name).connect(slot)
    if start:
        worker.start(pool)
    return worker


def active_workers() -> list[Worker]:
    with _ACTIVE_LOCK:
        return list(_ACTIVE)


def quit_all() -> None:
    """Ask every running worker to stop."""
    for w in active_workers():
        w.quit()


@dataclass(frozen=True)
class Lane:
    """One queue of a :class:`LatestRunner`: a single request runs and the newest one waits.

    Lanes of one runner run side by side (a cheap decode need not wait for a slow render).
    ``live`` picks what a lane delivers:

    * ``live=False`` (the default lane): only the result of the runner's newest request, as for
      a re-merge, where only the last slider position matters;
    * ``live=True``: every finished result newer than the last one delivered from the lane
      ("show the newest finished"), so a picture keeps moving while requests outpace the work;
      a superseded result is still newer than what is on screen.
    """

    name: str = ""
    live: bool = False


DEFAULT_LANE = Lane()
# The desk's scrub: the original pane's decodes run beside the colour pane's renders, and both
# show their newest finished picture.
SCRUB_ORIGINAL = Lane("original", live=True)
SCRUB_COLOUR = Lane("colour", live=True)


class _Slots:
    """A lane's state: what runs, the one request waiting, and the generations that decide
    whether a finished result may be delivered."""

    def __init__(self, lane: Lane) -> None:
        self.lane = lane
        self.running: Worker | None = None
        self.pending: tuple[int, Callable[..., Any], tuple[Any, ...]] | None = None
        self.latest = 0  # the lane's newest request
        self.delivered = 0  # the newest result delivered from the lane
        self.floor = 0  # results of requests at or below this one are stale
        self.key: object = None


class LatestRunner(QObject):
    """Coalescing request runner for scrubbing (ndv's generation numbers).

    ``submit(func, *args, lane=..., key=...)`` returns the request's generation number. In each
    :class:`Lane` one request runs at a time and newer ones wait in a single slot, each
    replacing the last (they are *coalesced*), so rapid scrubbing never queues a backlog; when
    the running one ends, the newest waiting request starts, so the last request is always run.

    A result is never delivered once :meth:`invalidate` (or :meth:`quit`) has been called after
    its request, nor after a request to the same lane with a different ``key`` (a replaced
    model: its frames must not show). Within that, a lane delivers what its ``live`` flag says.
    Results of all lanes arrive on :attr:`result`; a failure is reported on :attr:`failed` only
    for the runner's newest request (older ones are logged), so one bad frame shows one error.
    """

    result = Signal(int, object)  # generation, value
    failed = Signal(int, object)  # generation, exception
    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None, pool: QThreadPool | None = None) -> None:
        super().__init__(parent)
        self.generation = Generation()
        self.pool = pool
        self._lanes: dict[Lane, _Slots] = {}
        self.dropped = 0  # finished, but stale when they finished
        self.coalesced = 0  # replaced while waiting: never run

    @property
    def busy(self) -> bool:
        return any(s.running is not None or s.pending is not None for s in self._lanes.values())

    def lane_busy(self, lane: Lane = DEFAULT_LANE) -> bool:
        """Whether ``lane`` has a request running or waiting."""
        s = self._lanes.get(lane)
        return s is not None and (s.running is not None or s.pending is not None)

    def latest(self, lane: Lane = DEFAULT_LANE) -> int:
        """The generation of ``lane``'s newest request (0: none yet)."""
        s = self._lanes.get(lane)
        return s.latest if s is not None else 0

    def submit(self, func: Callable[..., Any], *args: Any, lane: Lane = DEFAULT_LANE,
               key: object = None) -> int:
        gen = self.generation.next()
        was_busy = self.busy
        s = self._lanes.get(lane)
        if s is None:
            s = self._lanes[lane] = _Slots(lane)
        if key != s.key:
            s.floor, s.key = gen - 1, key
        if s.pending is not None:
            self.coalesced += 1
        s.pending = (gen, func, args)
        s.latest = gen
        if s.running is None:
            self._start_pending(s)
        if not was_busy:
            self.busy_changed.emit(True)
        return gen

    def invalidate(self) -> None:
        """Drop whatever is queued or running in every lane: its result will not be delivered."""
        gen = self.generation.next()
        for s in self._lanes.values():
            s.floor = gen
            if s.pending is not None:
                self.coalesced += 1
                s.pending = None

    def _start_pending(self, s: _Slots) -> None:
        assert s.pending is not None
        gen, func, args = s.pending
        s.pending = None
        worker = Worker(func, *args)
        worker.returned.connect(lambda value, g=gen: self._deliver(s, g, value))
        worker.errored.connect(lambda exc, g=gen: self._fail(s, g, exc))
        worker.finished.connect(lambda w=worker: self._done(s, w))
        s.running = worker
        worker.start(self.pool)

    def _deliverable(self, s: _Slots, gen: int) -> bool:
        if gen <= s.floor or gen <= s.delivered:
            return False
        return s.lane.live or self.generation.is_current(gen)

    def _deliver(self, s: _Slots, gen: int, value: Any) -> None:
        if self._deliverable(s, gen):
            s.delivered = gen
            self.result.emit(gen, value)
        else:
            self.dropped += 1

    def _fail(self, s: _Slots, gen: int, exc: BaseException) -> None:
        if gen > s.floor and self.generation.is_current(gen):
            self.failed.emit(gen, exc)
        elif not _is_cancellation(exc):
            log.warning("superseded request %d (%s lane) failed: %s", gen,
                        s.lane.name or "default", exc)

    def _done(self, s: _Slots, worker: Worker) -> None:
        if s.running is worker:
            s.running = None
        if s.pending is not None:
            self._start_pending(s)
        elif not self.busy:
            self.busy_changed.emit(False)

    def quit(self) -> None:
        self.invalidate()
        for s in self._lanes.values():
            if s.running is not None:
                s.running.quit()
