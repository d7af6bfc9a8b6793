"""Scrub lag: how far behind the playhead the desk's original and colour panes are during a drag.

An offscreen window with the default model (loaded the normal way, as with no ``--model``)
opens each generated source, and the timeline is dragged programmatically at a constant
playhead speed (default 100 frames per second for 3 s; mouse events at 125 Hz). Every picture
the viewer is given is logged with the time; the lag is then sampled each millisecond of the
drag (after a short run-in):

* in frames: playhead frame minus the frame in the pane;
* in ms: how long ago the playhead was on the frame in the pane.

Sources (720x576, 25 fps, grey frames whose number is burned in as black/white blocks over a
panned texture with grain, so the encoders have real work): ProRes 422 HQ (intra), H.264 with a
broadcast GOP (``-g 12``), H.264 long GOP (``-g 250``). After the release the final frame's
burned-in number is read back from both panes.

Targets (the scrubbing issue): original pane p95 <= 3 frames on the intra and broadcast-GOP
sources; colour pane p95 <= 150 ms.

    python benchmarks/scrub.py
    python benchmarks/scrub.py --rate 50 --seconds 4 --sources gop12

Figures depend on the machine: run it on an otherwise idle one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PySide6.QtCore import QEvent, QPointF, QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtGui import QMouseEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from restorer.gui.main_window import MainWindow  # noqa: E402
from restorer.gui.preview import DecodedFrame, FrameResult  # noqa: E402
from restorer.media.probe import ffmpeg_exe  # noqa: E402

W, H, FPS = 720, 576, 25
BITS, BLOCK = 10, 32  # frame number as 10 blocks of 32x32 (row 0) and their complement (row 1)
RUN_IN_S = 0.25  # the first moments of a drag measure start-up, not following

SOURCES: dict[str, tuple[str, list[str]]] = {
    "prores": ("ProRes 422 HQ (intra)", ["-c:v", "prores_ks", "-profile:v", "3",
                                         "-pix_fmt", "yuv422p10le"]),
    "gop12": ("H.264 -g 12 (broadcast)", ["-c:v", "libx264", "-preset", "veryfast",
                                          "-crf", "18", "-g", "12", "-pix_fmt", "yuv420p"]),
    "gop250": ("H.264 -g 250 (long GOP)", ["-c:v", "libx264", "-preset", "veryfast",
                                           "-crf", "18", "-g", "250", "-pix_fmt", "yuv420p"]),
}
SUFFIX = {"prores": ".mov", "gop12": ".mp4", "gop250": ".mp4"}


# ---------------------------------------------------------------------- sources
def burn(n: int, texture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Frame ``n``: the texture panned by ``n`` pixels, grain, and the number in blocks."""
    frame = np.roll(texture, n * 3, axis=1)[:H, :W].astype(np.int16)
    frame += rng.integers(-6, 7, frame.shape, dtype=np.int16)
    out = np.clip(frame, 0, 255).astype(np.uint8)
    for b in range(BITS):
        on = (n >> b) & 1
        x = slice(b * BLOCK, (b + 1) * BLOCK)
        out[0:BLOCK, x] = 255 if on else 0
        out[BLOCK:2 * BLOCK, x] = 0 if on else 255
    return out


def read_number(picture: np.ndarray) -> int | None:
    """The burned-in number of a displayed grey or RGB frame (None: it does not read)."""
    if picture.ndim == 3:
        picture = picture.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    n = 0
    for b in range(BITS):
        x = slice(b * BLOCK + 8, (b + 1) * BLOCK - 8)
        bit = picture[8:BLOCK - 8, x].mean() > 128
        check = picture[BLOCK + 8:2 * BLOCK - 8, x].mean() > 128
        if bit == check:
            return None
        n |= int(bit) << b
    return n


def make_source(path: Path, codec_args: list[str], frames: int) -> Path:
    rng = np.random.default_rng(0)
    smooth = rng.integers(40, 216, (H // 8 + 1, (W + 3 * frames) // 8 + 1), dtype=np.uint8)
    texture = np.kron(smooth, np.ones((8, 8), np.uint8))  # blocks of detail the pan moves
    cmd = [ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "gray",
           "-s", f"{W}x{H}", "-r", str(FPS), "-i", "-", *codec_args, str(path)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    for n in range(frames):
        proc.stdin.write(burn(n, texture, rng).tobytes())
    proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit(f"ffmpeg failed to write {path}")
    return path


# ---------------------------------------------------------------------- the drag
@dataclass
class Log:
    t0: float = 0.0
    playhead: list[tuple[float, int]] = field(default_factory=list)  # (t, frame) on change
    original: list[tuple[float, int]] = field(default_factory=list)
    colour: list[tuple[float, int]] = field(default_factory=list)
    decode_ms: list[float] = field(default_factory=list)
    renders: list[float] = field(default_factory=list)  # when each colour result arrived
    infer_ms: list[float] = field(default_factory=list)


def wait_until(app: QApplication, cond: Callable[[], bool], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the desk")
        app.processEvents()
        time.sleep(0.002)


def send_mouse(widget: Any, kind: QEvent.Type, x: float) -> None:
    pos = QPointF(x, widget.height() / 2)
    button = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove else Qt.MouseButton.LeftButton
    held = (Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease
            else Qt.MouseButton.LeftButton)
    QApplication.sendEvent(widget, QMouseEvent(kind, pos, widget.mapToGlobal(pos), button, held,
                                               Qt.KeyboardModifier.NoModifier))


def drag(app: QApplication, window: MainWindow, rate: float, seconds: float,
         mouse_hz: float = 125.0) -> tuple[Log, float, float, int, tuple[int | None, int | None]]:
    """Drag the playhead from 0 at ``rate`` frames/s; returns the log, the release time, the
    settle time (ms until both panes show the last frame), the last frame and what the panes
    read back after it."""
    v, tl = window.viewer, window.timeline
    log = Log()
    last = int(rate * seconds)

    def on_content() -> None:
        t = time.perf_counter()
        if v.frame is not None and (not log.original or log.original[-1][1] != v.frame):
            log.original.append((t, v.frame))
        if v.colour_frame is not None and (not log.colour or log.colour[-1][1] != v.colour_frame):
            log.colour.append((t, v.colour_frame))

    def on_result(_gen: int, res: object) -> None:
        if isinstance(res, DecodedFrame):
            log.decode_ms.append(res.decode_ms)
        elif isinstance(res, FrameResult):
            log.renders.append(time.perf_counter())
            if res.infer_ms:
                log.infer_ms.append(res.infer_ms)

    def on_state(name: str, value: Any) -> None:
        if name == "frame":
            log.playhead.append((time.perf_counter(), int(value)))

    v.content_changed.connect(on_content)
    window.previews.result.connect(on_result)
    window.state.changed.connect(on_state)
    done = [False]
    released = [0.0]

    def tick() -> None:
        k = min(last, round((time.perf_counter() - log.t0) * rate))
        send_mouse(tl, QEvent.Type.MouseMove, tl.x_of(k))
        if k >= last:
            send_mouse(tl, QEvent.Type.MouseButtonRelease, tl.x_of(last))
            released[0] = time.perf_counter()
            timer.stop()
            done[0] = True

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(round(1000 / mouse_hz))
    timer.timeout.connect(tick)
    log.t0 = time.perf_counter()
    log.playhead.append((log.t0, window.state.frame))
    # What the panes show as the drag starts; an update is a change after it.
    if v.frame is not None:
        log.original.append((log.t0, v.frame))
    if v.colour_frame is not None:
        log.colour.append((log.t0, v.colour_frame))
    send_mouse(tl, QEvent.Type.MouseButtonPress, tl.x_of(0))
    timer.start()
    wait_until(app, lambda: done[0])
    wait_until(app, lambda: v.frame == last and v.colour_frame == last
               and not window.previews.busy)
    settled = (time.perf_counter() - released[0]) * 1000
    app.processEvents()
    read = (read_number(v.original) if v.original is not None else None,
            read_number(v.colour) if v.colour is not None else None)
    v.content_changed.disconnect(on_content)
    window.previews.result.disconnect(on_result)
    window.state.changed.disconnect(on_state)
    return log, released[0], settled, last, read


def step_at(steps: list[tuple[float, int]], t: float) -> int | None:
    """The value of a step function (sorted (time, value) changes) at ``t``."""
    lo, hi, val = 0, len(steps), None
    while lo < hi:
        mid = (lo + hi) // 2
        if steps[mid][0] <= t:
            val, lo = steps[mid][1], mid + 1
        else:
            hi = mid
    return val


def lags(log: Log, pane: list[tuple[float, int]], end: float) -> tuple[list[int], list[float]]:
    """Lag in frames and in ms, sampled every millisecond from the run-in to the release."""
    reached: dict[int, float] = {}
    for t, n in log.playhead:
        reached.setdefault(n, t)
    frames, ms = [], []
    t = log.t0 + RUN_IN_S
    while t < end:
        p, shown = step_at(log.playhead, t), step_at(pane, t)
        if p is not None and shown is not None:
            frames.append(p - shown)
            ms.append((t - reached.get(shown, log.t0)) * 1000)
        t += 0.001
    return frames, ms


def pct(xs: list[float] | list[int], q: float) -> float:
    if not xs:
        return float("nan")
    return float(np.percentile(np.asarray(xs, np.float64), q))


def backsteps(pane: list[tuple[float, int]], end: float) -> int:
    pairs = zip(pane, pane[1:], strict=False)  # each change with the one before it
    return sum(1 for (_, a), (t, b) in pairs if b < a and t < end)


# ---------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=100.0, help="playhead frames per second")
    ap.add_argument("--seconds", type=float, default=3.0, help="length of the drag")
    ap.add_argument("--sources", default="prores,gop12,gop250",
                    help=f"comma-separated, from {', '.join(SOURCES)}")
    ap.add_argument("--keep", type=Path, help="write the sources here and keep them")
    args = ap.parse_args(argv)
    names = [s for s in args.sources.split(",") if s]
    for s in names:
        if s not in SOURCES:
            ap.error(f"unknown source {s!r}; choose from {', '.join(SOURCES)}")
    frames = int(args.rate * args.seconds) + 2 * FPS

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    tmp = tempfile.TemporaryDirectory(prefix="restorer-scrub-")
    folder = args.keep or Path(tmp.name)
    folder.mkdir(parents=True, exist_ok=True)
    settings = QSettings(str(Path(tmp.name) / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings)  # no colouriser given: the shipped default loads
    window.resize(1440, 860)
    window.show()
    wait_until(app, lambda: window.colouriser is not None)
    col = window.colouriser
    assert col is not None
    print(f"model {col.meta.name} (working size {col.meta.working_size}) on {col.device}; "
          f"drag {args.rate:g} frames/s for {args.seconds:g} s; {os.cpu_count()} CPUs",
          flush=True)

    rows = []
    for name in names:
        label, codec = SOURCES[name]
        path = folder / f"scrub_{name}{SUFFIX[name]}"
        t = time.perf_counter()
        if not path.exists():
            make_source(path, codec, frames)
        print(f"{label}: {path.stat().st_size / 2**20:.0f} MiB, made in "
              f"{time.perf_counter() - t:.0f} s", flush=True)
        window.open_episode(path)

        def opened(p: Path = path) -> bool:
            return (window.info is not None and window.info.path == p
                    and window.viewer.colour_frame == 0 and not window.previews.busy)

        wait_until(app, opened)
        cuts = window._cuts_worker  # the cut scan shares the thread pool: let it finish
        if cuts is not None:
            wait_until(app, cuts.done.is_set, timeout_s=600)
        log, end, settled, last, read = drag(app, window, args.rate, args.seconds)
        of, oms = lags(log, log.original, end)
        cf, cms = lags(log, log.colour, end)
        rows.append({
            "source": label, "decode": statistics.median(log.decode_ms or [float("nan")]),
            "infer": statistics.median(log.infer_ms or [float("nan")]),
            "o": (pct(of, 50), pct(of, 95), pct(oms, 50), pct(oms, 95)),
            "c": (pct(cf, 50), pct(cf, 95), pct(cms, 50), pct(cms, 95)),
            "o_updates": sum(1 for t, _ in log.original if log.t0 < t < end),
            "c_updates": sum(1 for t, _ in log.colour if log.t0 < t < end),
            "renders": sum(1 for t in log.renders if t < end),
            "back": backsteps(log.original, end), "settle": settled,
            "read": read, "last": last, "name": name,
        })

    print()
    head = (f"{'source':<24} {'decode':>7} {'infer':>6} | {'original lag':^27} | "
            f"{'colour lag':^27} | {'updates':^9} {'held':>4} {'back':>4} {'settle':>7} "
           f"{'final':>9}")
    sub = (f"{'':<24} {'ms':>7} {'ms':>6} | {'frames p50/p95':>14} {'ms p50/p95':>12} | "
           f"{'frames p50/p95':>14} {'ms p50/p95':>12} | {'orig/col':^9} {'':>4} {'':>4} "
           f"{'ms':>7} {'orig/col':>9}")
    print(head)
    print(sub)
    print("-" * len(head))
    ok = True
    for r in rows:
        o, c = r["o"], r["c"]
        print(f"{r['source']:<24} {r['decode']:7.1f} {r['infer']:6.1f} | "
              f"{o[0]:6.1f} /{o[1]:6.1f} {o[2]:5.0f} /{o[3]:5.0f} | "
              f"{c[0]:6.1f} /{c[1]:6.1f} {c[2]:5.0f} /{c[3]:5.0f} | "
              f"{r['o_updates']:4d}/{r['c_updates']:<4d} {r['renders'] - r['c_updates']:4d} "
              f"{r['back']:4d} {r['settle']:7.0f} "
              f"{str(r['read'][0]):>4}/{str(r['read'][1]):<4}")
        if r["read"] != (r["last"], r["last"]):
            ok = False
            print(f"  !! the panes do not show the final frame {r['last']} after the release")
    print()
    print("held: colour frames finished during the drag but not shown (the playhead had come")
    print("      to rest on a newer original); back: times the original pane stepped back (a")
    print("      late colour frame shown with its own original); settle: release until both")
    print("      panes show the last frame.")
    for r in rows:
        o_ok = r["o"][1] <= 3 if r["name"] in ("prores", "gop12") else None
        c_ok = r["c"][3] <= 150
        verdict = [f"colour p95 {r['c'][3]:.0f} ms {'<=' if c_ok else '>'} 150"]
        if o_ok is not None:
            verdict.insert(0, f"original p95 {r['o'][1]:.1f} frames {'<=' if o_ok else '>'} 3")
        print(f"targets, {r['source']}: " + "; ".join(verdict))
    window.close()
    tmp.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
