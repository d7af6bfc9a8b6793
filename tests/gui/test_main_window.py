"""The desk end to end (offscreen): a generated clip and the tiny random network."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QThreadPool, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from restorer.media import probe, read_frame

WAIT_MS = 20000  # generous: CI machines are loaded 2-core boxes


def saturation(rgb: np.ndarray) -> float:
    rgb = rgb.astype(np.float32)
    return float((rgb.max(-1) - rgb.min(-1)).mean())


def error_boxes(window) -> list[QMessageBox]:
    return [b for b in window.findChildren(QMessageBox, "errorDialog") if b.isVisible()]


def count_predictions(col) -> list[int]:
    """Count network runs: every path to the network (the engine's predict stage, and
    predict_ab_small) goes through ``_infer``."""
    calls = [0]
    orig = col._infer

    def counted(frames):
        calls[0] += 1
        return orig(frames)

    col._infer = counted
    return calls


def test_open_shows_original_and_colour(qtbot, window, grey_clip, open_and_wait):
    open_and_wait(window, grey_clip)
    v = window.viewer
    assert v.original.shape == (48, 64) and v.colour.shape == (48, 64, 3)
    np.testing.assert_array_equal(v.original, read_frame(probe(grey_clip), 0))
    assert saturation(v.colour) > 3.0, "the colour pane is grey"
    assert window.timecode.text() == "00:00:00:00"
    assert "frame 0 / 24" in window.frame_label.text()
    assert window.device_label.text() == "Device: cpu"
    assert "ms/frame" in window.infer_label.text() and "Cache" in window.cache_label.text()
    assert "Decode" in window.infer_label.text() and "kept open" in window.infer_label.text()
    assert not window.windowIcon().isNull()  # the same icon as the .desktop launcher
    window.grab()  # paints every mode without error
    for mode in ("wipe", "original", "colour", "side"):
        window.state.set_mode(mode)
        window.viewer.grab()


def test_scrubber_changes_frame_and_pixels(qtbot, window, grey_clip, open_and_wait):
    open_and_wait(window, grey_clip)
    before = window.viewer.original.copy()
    tl = window.timeline
    x = int(tl.x_of(12))
    qtbot.mouseClick(tl, Qt.MouseButton.LeftButton, pos=QPoint(x, tl.height() // 2))
    assert window.state.frame == 12
    qtbot.waitUntil(lambda: window.viewer.frame == 12, timeout=WAIT_MS)
    assert window.timecode.text() == "00:00:00:12"
    assert "frame 12 / 24" in window.frame_label.text()
    assert not np.array_equal(before, window.viewer.original)
    np.testing.assert_array_equal(window.viewer.original, read_frame(probe(grey_clip), 12))


def test_rapid_scrubbing_ends_on_last_request(qtbot, window, grey_clip, open_and_wait):
    open_and_wait(window, grey_clip)
    shown: list[int] = []
    window.preview_shown.connect(shown.append)
    for n in list(range(1, 25)) + [7]:
        window.scrub_to(n)
    qtbot.waitUntil(lambda: window.viewer.frame == 7 and not window.previews.busy,
                    timeout=WAIT_MS)
    QApplication.processEvents()
    assert shown[-1] == 7 and window.viewer.frame == 7
    assert len(shown) < 25, "stale requests were rendered and shown instead of dropped"
    np.testing.assert_array_equal(window.viewer.original, read_frame(probe(grey_clip), 7))
    assert window.state.frame == 7


def test_keyboard_navigation_and_marks(qtbot, window, grey_clip, open_and_wait):
    open_and_wait(window, grey_clip)
    window.activateWindow()
    window.act_next.trigger()
    assert window.state.frame == 1
    window.act_next_s.trigger()
    assert window.state.frame == 24  # one second at 25 fps, clamped to the last frame
    window.act_home.trigger()
    assert window.state.frame == 0
    window.act_end.trigger()
    assert window.state.frame == 24
    window.act_prev_s.trigger()
    assert window.state.frame == 0
    window.state.set_frame(3)
    window.act_in.trigger()
    window.state.set_frame(9)
    window.act_out.trigger()
    assert window.state.export_range() == (3, 10)
    assert "7 frames" in window.range_label.text()
    qtbot.waitUntil(lambda: window.viewer.frame == 9, timeout=WAIT_MS)
    # The real keys, delivered to the window as a user would press them.
    window.viewer.setFocus()
    qtbot.keyClick(window.viewer, Qt.Key.Key_Left)
    assert window.state.frame == 8
    qtbot.keyClick(window.viewer, Qt.Key.Key_Home)
    assert window.state.frame == 0
    qtbot.keyClick(window.viewer, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert window.state.frame == 24
    qtbot.keyClick(window.viewer, Qt.Key.Key_L)
    assert window.state.speed == 1.0
    qtbot.keyClick(window.viewer, Qt.Key.Key_K)
    assert window.state.speed == 0.0
    qtbot.keyClick(window.viewer, Qt.Key.Key_O)
    assert window.state.out_point == window.state.frame


class _Mild(torch.nn.Module):
    """The tiny random net scaled down, so its colour sits inside the sRGB gamut and 200%
    can visibly raise saturation (the raw random net is already at the gamut edge)."""

    def __init__(self, net: torch.nn.Module, k: float = 0.2) -> None:
        super().__init__()
        self.net, self.k = net, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) * self.k


def test_chroma_remerges_without_network(qtbot, make_window, grey_clip, tiny_net_meta,
                                         open_and_wait):
    from restorer.engine import Colouriser

    net, meta = tiny_net_meta
    window = make_window(colouriser=Colouriser.from_net(_Mild(net), meta, device="cpu"))
    open_and_wait(window, grey_clip)
    calls = count_predictions(window.colouriser)
    base = saturation(window.viewer.colour)
    window.controls.chroma.setValue(0)
    assert window.state.chroma == 0.0
    qtbot.waitUntil(lambda: window.current.chroma == 0.0, timeout=WAIT_MS)
    grey = window.viewer.original.astype(int)
    diff = np.abs(window.viewer.colour.astype(int) - grey[..., None])
    assert diff.max() <= 2, "chroma 0 must give back the grey original"
    window.controls.chroma.setValue(200)
    qtbot.waitUntil(lambda: window.current.chroma == 2.0, timeout=WAIT_MS)
    assert saturation(window.viewer.colour) > base * 1.2
    assert calls[0] == 0, "moving the chroma slider re-ran the network"
    assert window.last_merge_ms > 0


def test_play_and_stop(qtbot, window, clip_factory, open_and_wait):
    clip = clip_factory("grey2.mp4", colour=False, seconds=2.0)
    open_and_wait(window, clip)
    window.act_play.trigger()
    assert window.state.playing
    qtbot.waitUntil(lambda: window.viewer.frame is not None and window.viewer.frame >= 3,
                    timeout=WAIT_MS)
    window.act_play.trigger()
    assert not window.state.playing
    n = window.state.frame
    qtbot.waitUntil(lambda: not window.previews.busy and window.viewer.frame == n,
                    timeout=WAIT_MS)
    assert QThreadPool.globalInstance().waitForDone(WAIT_MS)


def test_export_in_out_writes_right_frame_count(qtbot, window, grey_clip, tmp_path, open_and_wait):
    open_and_wait(window, grey_clip)
    window.state.mark_in(5)
    window.state.mark_out(14)
    window.show_export()
    dlg = window.export_dialog
    assert dlg.marked.isChecked()
    out = tmp_path / "out" / "export.mp4"
    out.parent.mkdir()
    dlg.path.setText(str(out))
    with qtbot.waitSignal(dlg.completed, timeout=60000) as blocker:
        dlg.start_button.click()
        assert window.isEnabled()  # the window stays responsive: nothing modal
    assert Path(blocker.args[0]) == out and out.exists()
    assert probe(out).frame_count == 10
    assert sorted(os.listdir(out.parent)) == ["export.mp4", "export.mp4.restorer.json"]


def test_export_job_carries_the_desk_look(qtbot, window, grey_clip, open_and_wait):
    from restorer.look import Look

    open_and_wait(window, grey_clip)
    window.controls.chroma.setValue(70)
    window.controls.stabilise.setValue(40)
    window.state.set_preset("fast")
    window.show_export()
    look = window.export_dialog.job().look
    assert look is window.state.look
    assert look == Look(chroma=0.7, working_size=32, stabilise=0.4)  # half of 32, at least 32


def test_cancel_export_leaves_no_file(qtbot, window, clip_factory, tmp_path, open_and_wait):
    clip = clip_factory("long.mp4", colour=False, seconds=2.0)
    open_and_wait(window, clip)
    window.show_export()
    dlg = window.export_dialog
    out_dir = tmp_path / "cancel"
    out_dir.mkdir()
    out = out_dir / "cancelled.mp4"
    dlg.path.setText(str(out))
    dlg.start_button.click()
    assert dlg.running
    with qtbot.waitSignal(dlg.cancelled, timeout=60000):
        dlg.cancel_button.click()
    assert not out.exists() and os.listdir(out_dir) == []
    assert "Cancelled" in dlg.status.text()
    assert not dlg.running and dlg.start_button.isEnabled()


def test_corrupt_file_shows_error_and_app_stays_usable(qtbot, window, tmp_path, grey_clip,
                                                       open_and_wait):
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(os.urandom(4096))
    window.open_episode(bad)
    qtbot.waitUntil(lambda: bool(error_boxes(window)), timeout=WAIT_MS)
    box = error_boxes(window)[0]
    assert box.text() and "corrupt.mp4" in box.text() + box.informativeText() or box.text()
    box.close()
    open_and_wait(window, grey_clip)
    assert window.info.path == grey_clip


def test_bad_model_shows_error(qtbot, make_window, tmp_path, grey_clip, tiny_colouriser):
    from restorer.engine import Colouriser

    window = make_window(colouriser_factory=lambda p: Colouriser.load(p, device="cpu"))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model at all")
    window.open_model(bad)
    qtbot.waitUntil(lambda: bool(error_boxes(window)), timeout=WAIT_MS)
    assert "model" in error_boxes(window)[0].windowTitle().lower()
    error_boxes(window)[0].close()
    assert window.colouriser is None


def test_open_model_file(qtbot, make_window, tiny_model_file, grey_clip, open_and_wait):
    from restorer.engine import Colouriser

    window = make_window(colouriser_factory=lambda p: Colouriser.load(p, device="cpu"))
    with qtbot.waitSignal(window.model_changed, timeout=WAIT_MS):
        window.open_model(tiny_model_file)
    assert window.colouriser.meta.name == "tiny-test"
    assert window.controls.model_title.text() == "tiny-test"
    open_and_wait(window, grey_clip)
    assert saturation(window.viewer.colour) > 3.0


def test_drop_opens_file(qtbot, window, grey_clip):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(grey_clip))])
    ev = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                    Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(ev)
    qtbot.waitUntil(lambda: window.viewer.frame == 0, timeout=WAIT_MS)
    assert window.info.path == grey_clip


def test_preferences_persist(qtbot, make_window, grey_clip, open_and_wait):
    w1 = make_window()
    open_and_wait(w1, grey_clip)
    w1.state.set_chroma(0.5)
    w1.state.set_mode("wipe")
    w1.state.set_preset("fast")
    w1.close()
    w2 = make_window()
    assert w2.state.chroma == 0.5 and w2.state.mode == "wipe" and w2.state.preset == "fast"
    assert w2.controls.chroma.value() == 50
    assert w2.recent_files()[0] == str(grey_clip)
    assert w2.last_folder() == str(grey_clip.parent)


def test_close_while_working_leaves_no_threads(qtbot, make_window, clip_factory, tmp_path,
                                               open_and_wait):
    clip = clip_factory("busy.mp4", colour=False, seconds=2.0)
    window = make_window()
    open_and_wait(window, clip)
    window.show_export()
    window.export_dialog.path.setText(str(tmp_path / "busy_out.mp4"))
    window.export_dialog.start_button.click()
    window.act_play.trigger()
    for n in range(0, 40, 3):
        window.scrub_to(n)
    window.state.set_speed(2.0)
    window.close()
    pool = QThreadPool.globalInstance()
    assert pool.waitForDone(WAIT_MS) and pool.activeThreadCount() == 0
    assert not (tmp_path / "busy_out.mp4").exists()


@pytest.mark.parametrize("mode", ["side", "wipe"])
def test_viewer_zoom_and_pan_in_step(qtbot, window, grey_clip, mode, open_and_wait):
    open_and_wait(window, grey_clip)
    v = window.viewer
    window.state.set_mode(mode)
    window.act_1to1.trigger()
    assert v.scale() == 1.0
    v.set_zoom(3.0, anchor=QPointF(v.width() / 4, v.height() / 2))
    rects = [v.image_rect(p) for p in v.panes()]
    assert all(abs(r.width() - 64 * 3) < 1e-6 for r in rects)
    if mode == "side":
        a, b = v.panes()
        ra, rb = rects
        assert abs((ra.left() - a.left()) - (rb.left() - b.left())) < 1e-6
    window.act_fit.trigger()
    assert v.scale() != 3.0
