"""Scrubbing shows a live picture: the original pane follows a drag, the colour pane shows its
newest finished frame and never beside another frame's original, and the drag ends on the
frame under the playhead. The clip's frames carry their number as black and white blocks, so
the test reads what each pane really shows."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from clips import FFMPEG
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from restorer.gui.workers import Lane, LatestRunner

WAIT_MS = 20000  # generous: CI machines are loaded 2-core boxes

BITS = 10  # frame numbers 0..1023
BLOCK_W, BLOCK_H = 16, 16
W, H = BITS * BLOCK_W, 96  # row 0: the bits, row 1: their complement (a check), below: texture
INFER_S = 0.06  # an SD inference on a laptop CPU: slower than the mouse moves
DECODE_S = 0.012  # an SD decode (8-13 ms), so the original pane has real work to keep up with


def burn(n: int, rng: np.random.Generator) -> np.ndarray:
    frame = rng.integers(60, 196, (H, W), dtype=np.uint8)  # texture the encoder must code
    for b in range(BITS):
        on = (n >> b) & 1
        x = slice(b * BLOCK_W, (b + 1) * BLOCK_W)
        frame[0:BLOCK_H, x] = 255 if on else 0
        frame[BLOCK_H:2 * BLOCK_H, x] = 0 if on else 255
    return frame


def read_number(picture: np.ndarray) -> int | None:
    """The number burned into a displayed frame (grey, or RGB read by its luminance), or None
    when the blocks do not read as a number and its complement (a torn or mixed picture)."""
    if picture.ndim == 3:
        picture = picture.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    n = 0
    for b in range(BITS):
        x = slice(b * BLOCK_W + 4, (b + 1) * BLOCK_W - 4)
        bit = picture[4:BLOCK_H - 4, x].mean() > 128
        check = picture[BLOCK_H + 4:2 * BLOCK_H - 4, x].mean() > 128
        if bit == check:
            return None
        n |= int(bit) << b
    return n


def numbered_clip(path: Path, frames: int) -> Path:
    """H.264 with a broadcast GOP (-g 12), so scrubbing seeks and decodes within GOPs."""
    rng = np.random.default_rng(0)
    cmd = [FFMPEG, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "gray",
           "-s", f"{W}x{H}", "-r", "25", "-i", "-", "-c:v", "libx264", "-preset", "ultrafast",
           "-g", "12", "-crf", "12", "-pix_fmt", "yuv420p", str(path)]
    data = b"".join(burn(n, rng).tobytes() for n in range(frames))
    subprocess.run(cmd, input=data, check=True)
    return path


def slow_down(window) -> None:
    """Give the desk SD costs: inference slower than the mouse, decode not free."""
    col = window.colouriser
    infer = col._infer

    def slow_infer(frames):
        time.sleep(INFER_S)
        return infer(frames)

    col._infer = slow_infer
    engine = window.engine
    grey = engine.grey

    def slow_grey(n: int) -> np.ndarray:
        if engine.frames.get(n) is None:
            time.sleep(DECODE_S)
        return grey(n)

    engine.grey = slow_grey


def mouse(widget, kind: QEvent.Type, x: float) -> None:
    pos = QPointF(x, widget.height() / 2)
    button = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove else Qt.MouseButton.LeftButton
    held = (Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease
            else Qt.MouseButton.LeftButton)
    ev = QMouseEvent(kind, pos, widget.mapToGlobal(pos), button, held,
                     Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, ev)


def test_drag_shows_a_live_consistent_picture(qtbot, window, tmp_path, open_and_wait):
    clip = numbered_clip(tmp_path / "numbered.mp4", 160)
    open_and_wait(window, clip)
    qtbot.waitUntil(lambda: window._cuts_worker is None or window._cuts_worker.done.is_set(),
                    timeout=WAIT_MS)
    slow_down(window)
    v, tl = window.viewer, window.timeline
    events: list[dict[str, Any]] = []
    last_colour: list[Any] = [v.colour]
    dragging = [True]

    def seen() -> None:
        if v.original is None:
            return
        colour_changed = v.colour is not None and v.colour is not last_colour[0]
        last_colour[0] = v.colour
        events.append({
            "during": dragging[0], "frame": v.frame, "original": read_number(v.original),
            "colour": read_number(v.colour) if colour_changed else None,
            "colour_changed": colour_changed, "playhead": window.state.frame,
        })

    v.content_changed.connect(seen)
    last = 120
    mouse(tl, QEvent.Type.MouseButtonPress, tl.x_of(0))
    for n in range(1, last + 1):  # about 67 frames a second of playhead motion
        mouse(tl, QEvent.Type.MouseMove, tl.x_of(n))
        qtbot.wait(15)
    dragging[0] = False
    mouse(tl, QEvent.Type.MouseButtonRelease, tl.x_of(last))
    assert window.state.frame == last
    qtbot.waitUntil(lambda: not window.previews.busy and v.frame == last
                    and v.colour_frame == last, timeout=WAIT_MS)
    QApplication.processEvents()

    during = [e for e in events if e["during"]]
    # What each pane shows is the frame it says it shows (the seek is exact).
    assert all(e["original"] == e["frame"] for e in events), events
    # (1) The original pane follows the drag.
    originals = [e["original"] for e in during]
    assert len(set(originals)) >= 8, f"original pane hardly moved during the drag: {originals}"
    assert max(originals) >= last // 2
    # (2) Every colour picture is the frame of the original beside it, and it moves too.
    colours = [e for e in events if e["colour_changed"]]
    assert all(e["colour"] == e["original"] for e in colours), colours
    assert len({e["colour"] for e in colours if e["during"]}) >= 2, \
        f"colour pane frozen during the drag: {colours}"
    # (3) After the release both panes show the frame under the playhead.
    assert read_number(v.original) == last and read_number(v.colour) == last
    assert window.current is not None and window.current.n == last


def test_short_hops_decode_on_exactly(tmp_path):
    """A drag asks for every few frames: the engine decodes on through the frames between
    (cheaper than a seek on GOP sources) and every frame it hands out is the right one."""
    from restorer.gui.preview import PreviewEngine
    from restorer.media import probe

    engine = PreviewEngine(probe(numbered_clip(tmp_path / "hops.mp4", 60)), None)
    seeks: list[int] = []
    engine.grey(0)
    seeker = engine._seeker
    assert seeker is not None
    restart = seeker._restart

    def counted(pts):
        seeks.append(pts)
        return restart(pts)

    seeker._restart = counted  # type: ignore[method-assign]
    for n in range(3, 40, 3):
        assert read_number(engine.grey(n)) == n
    assert not seeks, "a short hop ahead seeked instead of decoding on"
    for n in range(1, 40):  # the frames between are cached, and exact
        frame = engine.frames.get(n)
        assert frame is not None and read_number(frame) == n
    assert read_number(engine.grey(55)) == 55  # a long jump still seeks, exactly
    engine.close()


# ---------------------------------------------------------------------- the runner itself
class Gates:
    """Work whose end the test decides: ``run(v)`` blocks until ``open(v)``."""

    def __init__(self) -> None:
        self._gates: dict[Any, threading.Event] = {}
        self._lock = threading.Lock()
        self.started: list[Any] = []
        self.running = 0
        self.most_at_once = 0

    def _gate(self, v: Any) -> threading.Event:
        with self._lock:
            return self._gates.setdefault(v, threading.Event())

    def run(self, v: Any) -> Any:
        with self._lock:
            self.started.append(v)
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            if not self._gate(v).wait(WAIT_MS / 1000):
                raise TimeoutError(v)
            return v
        finally:
            with self._lock:
                self.running -= 1

    def open(self, v: Any) -> None:
        self._gate(v).set()


LIVE = Lane("test", live=True)


def test_live_lane_coalesces_and_shows_newest_finished(qtbot):
    runner = LatestRunner()
    got: list[Any] = []
    runner.result.connect(lambda gen, value: got.append(value))
    work = Gates()
    for v in range(10):
        runner.submit(work.run, v, lane=LIVE)
    assert work.started == [0] or not work.started  # one in flight, the rest wait in one slot
    qtbot.waitUntil(lambda: work.started == [0], timeout=WAIT_MS)
    assert runner.coalesced == 8  # 1..8 were replaced by the newest (9) while waiting
    work.open(0)
    qtbot.waitUntil(lambda: got == [0], timeout=WAIT_MS)  # superseded, but newer than nothing
    qtbot.waitUntil(lambda: work.started == [0, 9], timeout=WAIT_MS)  # the newest runs next
    assert runner.busy
    work.open(9)
    qtbot.waitUntil(lambda: not runner.busy, timeout=WAIT_MS)
    assert got == [0, 9] and runner.dropped == 0 and work.most_at_once == 1
    assert runner.latest(LIVE) > 0 and not runner.lane_busy(LIVE)


def test_lanes_run_side_by_side_and_stale_results_never_show(qtbot):
    runner = LatestRunner()
    got: list[Any] = []
    runner.result.connect(lambda gen, value: got.append(value))
    slow, fast = Gates(), Gates()
    colour, original = Lane("colour", live=True), Lane("original", live=True)
    runner.submit(slow.run, "old model", lane=colour, key="model A")
    qtbot.waitUntil(lambda: slow.started == ["old model"], timeout=WAIT_MS)
    # The cheap lane is served while the slow one is busy.
    fast.open("o1")
    runner.submit(fast.run, "o1", lane=original)
    qtbot.waitUntil(lambda: got == ["o1"], timeout=WAIT_MS)
    # A request with a new key (a replaced model) makes the running one's result stale.
    runner.submit(slow.run, "new model", lane=colour, key="model B")
    slow.open("old model")
    qtbot.waitUntil(lambda: slow.started == ["old model", "new model"], timeout=WAIT_MS)
    slow.open("new model")
    qtbot.waitUntil(lambda: not runner.busy, timeout=WAIT_MS)
    assert got == ["o1", "new model"] and runner.dropped == 1
    # Invalidation (a new episode, playback) drops what runs and what waits.
    runner.submit(slow.run, "before", lane=colour, key="model B")
    runner.submit(slow.run, "queued", lane=colour, key="model B")
    qtbot.waitUntil(lambda: "before" in slow.started, timeout=WAIT_MS)
    runner.invalidate()
    slow.open("before")
    qtbot.waitUntil(lambda: not runner.busy, timeout=WAIT_MS)
    assert got == ["o1", "new model"] and "queued" not in slow.started
    assert runner.dropped == 2


def test_only_the_newest_request_reports_a_failure(qtbot):
    runner = LatestRunner()
    failures: list[BaseException] = []
    runner.failed.connect(lambda gen, exc: failures.append(exc))
    work = Gates()

    def bad(v: str) -> None:
        work.run(v)
        raise ValueError(v)

    runner.submit(bad, "superseded", lane=LIVE)
    runner.submit(bad, "newest", lane=LIVE)
    work.open("superseded")
    work.open("newest")
    qtbot.waitUntil(lambda: not runner.busy, timeout=WAIT_MS)
    assert [str(e) for e in failures] == ["newest"]


@pytest.mark.parametrize("order", ["in order", "out of order"])
def test_viewer_keeps_the_newest_original(qtbot, order):
    from restorer.gui.viewer import Viewer

    v = Viewer()
    qtbot.addWidget(v)
    a, b = np.zeros((8, 8), np.uint8), np.full((8, 8), 255, np.uint8)
    stamps = [(1, a), (2, b)] if order == "in order" else [(2, b), (1, a)]
    shown = [v.set_original(s, img, stamp=s) for s, img in stamps]
    assert v.frame == 2 and v.original is b
    assert shown == ([True, True] if order == "in order" else [True, False])
    # A colour frame always arrives with its own original, whatever the stamps say.
    v.set_frames(1, a, np.zeros((8, 8, 3), np.uint8), stamp=1)
    assert v.frame == v.colour_frame == 1 and v.original is a
    assert not v.set_original(2, b, stamp=2)  # the pair did not lower the stamp
    assert v.set_original(3, b, stamp=3) and v.frame == 3 and v.colour_frame == 1
