"""Run plain functions and generators on a QThreadPool (the superqt ``thread_worker`` pattern).

A :class:`Worker` wraps a callable. If it returns a generator, each value it yields is emitted as
``yielded``; its return value as ``returned``; an exception as ``errored``; and ``finished`` always
comes last. ``quit()`` is cooperative: the generator is closed at its next yield, and a callable
that takes a ``cancel`` event (``pass_cancel=True``) sees it set. No QThread subclass is involved
and no business logic lives here.

:class:`LatestRunner` adds the scrubbing discipline (ndv style): every request gets a generation
number, at most one runs at a time, a newer request replaces any queued one, and results from a
request that is no longer current are dropped.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable
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


class LatestRunner(QObject):
    """Coalescing request runner: only the newest request's result is ever delivered.

    ``submit(func, *args)`` returns the request's generation number. While one request runs,
    newer ones wait in a single slot (each replacing the last), so rapid scrubbing never queues
    a backlog; when the running one ends, the newest waiting request starts.
    """

    result = Signal(int, object)  # generation, value
    failed = Signal(int, object)  # generation, exception
    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None, pool: QThreadPool | None = None) -> None:
        super().__init__(parent)
        self.generation = Generation()
        self.pool = pool
        self._running: Worker | None = None
        self._pending: tuple[int, Callable[..., Any], tuple[Any, ...]] | None = None
        self.dropped = 0

    @property
    def busy(self) -> bool:
        return self._running is not None or self._pending is not None

    def submit(self, func: Callable[..., Any], *args: Any) -> int:
        gen = self.generation.next()
        was_busy = self.busy
        self._pending = (gen, func, args)
        if self._running is None:
            self._start_pending()
        if not was_busy:
            self.busy_changed.emit(True)
        return gen

    def invalidate(self) -> None:
        """Drop whatever is queued or running: its result will not be delivered."""
        self.generation.next()
        self._pending = None

    def _start_pending(self) -> None:
        assert self._pending is not None
        gen, func, args = self._pending
        self._pending = None
        worker = Worker(func, *args)
        worker.returned.connect(lambda value, g=gen: self._deliver(g, value))
        worker.errored.connect(lambda exc, g=gen: self._fail(g, exc))
        worker.finished.connect(lambda w=worker: self._done(w))
        self._running = worker
        worker.start(self.pool)

    def _deliver(self, gen: int, value: Any) -> None:
        if self.generation.is_current(gen):
            self.result.emit(gen, value)
        else:
            self.dropped += 1

    def _fail(self, gen: int, exc: BaseException) -> None:
        if self.generation.is_current(gen):
            self.failed.emit(gen, exc)

    def _done(self, worker: Worker) -> None:
        if self._running is worker:
            self._running = None
        if self._pending is not None:
            self._start_pending()
        elif self._running is None:
            self.busy_changed.emit(False)

    def quit(self) -> None:
        self.invalidate()
        if self._running is not None:
            self._running.quit()
