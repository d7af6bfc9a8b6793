"""Generator workers on the thread pool (superqt style) and the newest-wins request runner."""

from __future__ import annotations

import threading
import time

from restorer.errors import MediaError
from restorer.gui.workers import LatestRunner, create_worker

WAIT_MS = 20000  # generous: CI machines are loaded 2-core boxes


def test_generator_worker_signals(qtbot):
    got: list[object] = []
    main = threading.get_ident()

    def gen(k):
        yield from range(k)
        return "done"

    w = create_worker(gen, 3, start=False, on_yielded=got.append,
                      on_returned=lambda v: got.append(("ret", v, threading.get_ident() == main)))
    with qtbot.waitSignal(w.finished, timeout=WAIT_MS):
        w.start()
    assert got == [0, 1, 2, ("ret", "done", True)]


def test_worker_error_and_quit(qtbot):
    errors: list[BaseException] = []

    def bad():
        raise MediaError("cannot decode")

    w = create_worker(bad, start=False, on_errored=errors.append)
    with qtbot.waitSignal(w.finished, timeout=WAIT_MS):
        w.start()
    assert isinstance(errors[0], MediaError)

    closed = threading.Event()

    def endless():
        try:
            while True:
                yield 1
                time.sleep(0.005)
        finally:
            closed.set()

    w = create_worker(endless, start=False)
    with qtbot.waitSignal(w.finished, timeout=WAIT_MS):
        w.start()
        qtbot.waitSignal(w.yielded, timeout=WAIT_MS).wait()
        w.quit()
    assert closed.is_set()


def test_latest_runner_delivers_only_newest(qtbot):
    runner = LatestRunner()
    delivered: list[int] = []
    runner.result.connect(lambda gen, value: delivered.append(value))
    gate = threading.Event()

    def slow(v):
        gate.wait(WAIT_MS / 1000)
        return v

    for v in range(10):
        runner.submit(slow, v)
    gate.set()
    qtbot.waitUntil(lambda: not runner.busy, timeout=WAIT_MS)
    assert delivered == [9]
    assert runner.dropped == 1  # the first request ran, but was stale by the time it ended
