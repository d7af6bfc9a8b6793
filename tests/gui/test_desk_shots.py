"""The desk's shot tools: per-shot chroma (shown, exported, undone), shot keys, loop, go to,
and the project file reopened exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import WAIT_MS
from PySide6.QtCore import Qt
from skimage import color as skcolor

from restorer.errors import RestorerError
from restorer.media import FrameReader, probe
from restorer.record import record_path
from restorer.shots import ShotChroma


def _chroma(rgb: np.ndarray) -> float:
    return float(np.abs(skcolor.rgb2lab(rgb)[..., 1:]).mean())


@pytest.fixture
def with_cuts(qtbot, window, clip_factory, open_and_wait):
    """A 2 s grey clip open in the desk, its scan finished, with cuts at 10 and 20."""
    clip = clip_factory("shots.mp4", seconds=2.0, colour=False)  # 50 frames
    open_and_wait(window, clip)
    qtbot.waitUntil(lambda: window._cuts_complete, timeout=WAIT_MS)
    window.state.set_cuts([10, 20])
    return clip


def _shown(qtbot, window, n):
    window.state.set_frame(n)
    qtbot.waitUntil(lambda: window.viewer.colour_frame == n and window.current is not None
                    and window.current.n == n
                    and window.current.chroma == window.state.chroma_at(n), timeout=WAIT_MS)
    return window.viewer.colour


def test_shot_chroma_is_shown_exported_and_recorded(qtbot, window, with_cuts, tmp_path):
    s, panel = window.state, window.shots_panel
    assert panel.table.rowCount() == 3
    _shown(qtbot, window, 12)
    assert "Shot 2 of 3" in panel.where.text()
    panel.own.setChecked(True)
    panel.chroma.setValue(0)  # this shot grey
    assert s.shots == (ShotChroma(10, 20, 0.0),)
    assert panel.table.item(1, 3).text() == "0 %" and panel.table.item(0, 3).text() == "episode"
    assert _chroma(_shown(qtbot, window, 12)) < 1.0
    assert _chroma(_shown(qtbot, window, 5)) > 3.0  # another shot keeps the episode's chroma
    window.show_export()
    dlg = window.export_dialog
    assert "1 shot with its own chroma" in dlg.look_label.text()
    out = tmp_path / "shots_out.mp4"
    dlg.path.setText(str(out))
    assert dlg.job().shots == (ShotChroma(10, 20, 0.0),)
    with qtbot.waitSignal(dlg.completed, timeout=60000):
        dlg.start_button.click()
    for n, rgb in FrameReader(probe(out), mode="rgb"):
        if n in (3, 12, 15, 25):
            assert (_chroma(rgb) < 1.5) == (10 <= n < 20), n
    assert json.loads(record_path(out).read_text())["shots"] == \
        [{"start": 10, "end": 20, "chroma": 0.0}]


def test_undo_redo_marks_and_shot_settings(qtbot, window, with_cuts):
    s = window.state
    s.set_frame(12)
    s.mark_in(3)
    s.set_shot_chroma(0.5)
    s.set_shot_chroma(0.6)  # one drag: one undo step
    s.history._last_t -= 5  # a later, separate change
    s.set_shot_chroma(0.9)
    assert window.act_undo.isEnabled() and not window.act_redo.isEnabled()
    window.act_undo.trigger()
    assert s.shots == (ShotChroma(10, 20, 0.6),)
    window.act_undo.trigger()
    assert s.shots == () and s.in_point == 3
    window.act_undo.trigger()
    assert s.in_point is None and not window.act_undo.isEnabled()
    window.act_redo.trigger()
    window.act_redo.trigger()
    assert s.in_point == 3 and s.shots == (ShotChroma(10, 20, 0.6),)
    assert window.shots_panel.own.isChecked() and window.shots_panel.chroma.value() == 60


def test_shot_keys_go_to_cuts(qtbot, window, with_cuts):
    s = window.state
    s.set_frame(4)
    for key, frame in ((Qt.Key.Key_Down, 10), (Qt.Key.Key_Down, 20), (Qt.Key.Key_Down, 49),
                       (Qt.Key.Key_Up, 20), (Qt.Key.Key_Up, 10), (Qt.Key.Key_Up, 0)):
        qtbot.keyClick(window.viewer, key)
        assert s.frame == frame
    window.shots_panel.table.cellClicked.emit(2, 0)
    assert s.frame == 20


def test_go_to_timecode_frame_or_time(qtbot, window, with_cuts):
    assert window.go_to("00:00:01:03") and window.state.frame == 28
    assert window.go_to("7") and window.state.frame == 7
    assert window.go_to("1.5s") and window.state.frame == 38
    with pytest.raises(RestorerError, match="cannot read position"):
        window.go_to("soon")


def test_loop_plays_in_to_out_again(qtbot, window, with_cuts):
    s = window.state
    s.mark_in(30)
    s.mark_out(36)
    s.set_frame(2)
    seen: list[int] = []
    window.preview_shown.connect(seen.append)
    window.act_loop.trigger()
    assert s.loop
    s.toggle_play()
    qtbot.waitUntil(lambda: 36 in seen and seen.index(36) < len(seen) - 1
                    and seen[-1] < 36, timeout=WAIT_MS)
    s.toggle_play()
    played = seen[seen.index(30):]
    assert min(played) >= 30 and max(played) <= 36


def test_project_reopens_exactly(qtbot, window, with_cuts, make_window, tmp_path):
    s = window.state
    s.set_frame(14)
    s.mark_in(4)
    s.mark_out(33)
    s.set_shot_chroma(1.4)
    s.set_chroma(0.7)
    s.set_stabilise(0.25)
    s.set_mode("wipe")
    window.viewer.divider = 0.3
    path = window.save_project(tmp_path / "episode")
    assert path == tmp_path / "episode.restorer"
    w2 = make_window()
    w2.open_path(path)
    qtbot.waitUntil(lambda: w2.info is not None and w2.viewer.frame == 14, timeout=WAIT_MS)
    t = w2.state
    assert (t.frame, t.in_point, t.out_point, t.cuts, t.shots) == \
        (14, 4, 33, [10, 20], (ShotChroma(10, 20, 1.4),))
    assert (t.chroma, t.stabilise, t.mode) == (0.7, 0.25, "wipe")
    assert w2.viewer.divider == pytest.approx(0.3)
    assert w2.project_path == path
    w2.state.mark_out(40)
    assert w2.save_project() == path  # Ctrl+S saves back to it
    assert json.loads(path.read_text())["marks"] == {"in": 4, "out": 40}


def test_scopes_show_the_frame_on_screen(qtbot, window, with_cuts):
    assert not window.scopes_dock.isVisible()
    _shown(qtbot, window, 6)
    window.act_scopes.trigger()
    qtbot.waitUntil(lambda: window.scopes.colour is not None, timeout=WAIT_MS)
    assert window.scopes.frame == 6
    assert window.scopes.original.mean_chroma < 0.5  # the grey original: a dot
    assert window.scopes.colour.mean_chroma > 3.0  # what the model invented
    window.state.set_frame(12)
    window.state.set_shot_chroma(0.0)
    qtbot.waitUntil(lambda: window.scopes.frame == 12 and window.scopes.colour.mean_chroma < 1,
                    timeout=WAIT_MS)
    window.scopes_dock.grab()  # paints without error


def test_still_export_from_the_desk(qtbot, window, with_cuts, tmp_path):
    import cv2

    _shown(qtbot, window, 8)
    out = tmp_path / "still.png"
    worker = window.export_still(out)
    worker.done.wait(WAIT_MS / 1000)
    qtbot.waitUntil(lambda: out.exists(), timeout=WAIT_MS)
    img = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert img.dtype == np.uint16 and img.shape[:2] == window.current.grey.shape


def _drag(qtbot, tl, x0, x1):
    from PySide6.QtCore import QPoint
    y = int(tl._track().center().y())
    qtbot.mousePress(tl, Qt.MouseButton.LeftButton, pos=QPoint(int(x0), y))
    for k in range(1, 6):
        qtbot.mouseMove(tl, QPoint(int(x0 + (x1 - x0) * k / 5), y))
    qtbot.mouseRelease(tl, Qt.MouseButton.LeftButton, pos=QPoint(int(x1), y))


def test_timeline_handles_zoom_and_ruler(qtbot, window, with_cuts):
    s, tl = window.state, window.timeline
    s.set_frame(25)
    s.mark_in(10)
    s.mark_out(30)
    _drag(qtbot, tl, tl.x_of(10), tl.x_of(16))  # the in handle
    assert (s.in_point, s.out_point, s.frame) == (16, 30, 25)  # the playhead stayed
    _drag(qtbot, tl, tl.x_of(30), tl.x_of(5))  # out dragged past in stops at in
    assert (s.in_point, s.out_point) == (16, 16)
    s.undo()
    assert (s.in_point, s.out_point) == (16, 30)
    _drag(qtbot, tl, tl.x_of(40), tl.x_of(44))  # elsewhere: scrubs
    assert s.frame == 44
    whole_px = tl.x_of(1) - tl.x_of(0)
    window.act_zoom_in.trigger()
    assert tl.zoomed and tl.x_of(1) - tl.x_of(0) == pytest.approx(2 * whole_px)
    assert tl.view_start <= 44 <= tl.view_start + tl.span
    assert tl.frame_at(tl.x_of(44)) == 44
    s.set_frame(0)  # off screen: the view follows
    assert tl.view_start == 0
    assert tl._label(75, 25, 25) == "00:00:03" and tl._label(77, 5, 25) == "00:00:03:02"
    window.act_zoom_all.trigger()
    assert not tl.zoomed
    tl.grab()  # paints


def test_render_queue_runs_jobs_and_survives_a_restart(qtbot, window, with_cuts, make_window,
                                                       tmp_path):
    s = window.state
    s.mark_in(5)
    s.mark_out(14)
    s.set_frame(12)
    s.set_shot_chroma(0.0)
    window.show_export()
    dlg = window.export_dialog
    first, second = tmp_path / "q1.mp4", tmp_path / "q2.mp4"
    dlg.path.setText(str(first))
    assert dlg.add_to_queue()
    dlg.whole.setChecked(True)
    dlg.path.setText(str(second))
    assert dlg.add_to_queue()
    panel = window.queue_panel
    assert window.queue_dock.isVisible() and panel.table.rowCount() == 2
    assert panel.queue.jobs[0].job.shots == (ShotChroma(10, 20, 0.0),)
    w2 = make_window()  # a restart before the queue ran: the jobs are still there
    assert [j.job.dst for j in w2.render_queue.jobs] == [first, second]
    w2.close()
    panel.start()
    qtbot.waitUntil(lambda: not panel.running and all(j.status == "done"
                                                      for j in panel.queue.jobs),
                    timeout=60000)
    assert probe(first).frame_count == 10 and probe(second).frame_count == 50
    assert json.loads(record_path(first).read_text())["shots"] == \
        [{"start": 10, "end": 20, "chroma": 0.0}]
    assert "done" in panel.table.item(0, 2).text()
