"""Defects an operator reproduced on the desk, each pinned by a test (offscreen, tiny model)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
import torch
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QCloseEvent, QKeySequence
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox, QWidget

from restorer import __version__
from restorer.errors import MediaError, ModelError, OutputError
from restorer.gui import dialogs
from restorer.media import probe
from restorer.record import record_path
from restorer.render import Progress

WAIT_MS = 20000


class _Gated(torch.nn.Module):
    """The tiny net, held at each batch until the test opens the gate: an export that is
    reliably still running while the test acts on the window."""

    def __init__(self, net: torch.nn.Module, gate: threading.Event) -> None:
        super().__init__()
        self.net, self.gate = net, gate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.gate.wait(timeout=WAIT_MS / 1000)
        return self.net(x)


@pytest.fixture
def gate():
    ev = threading.Event()
    yield ev
    ev.set()  # never leave an export blocked behind a failed assertion


def gated_export(window, gate, tiny_net_meta):
    """Make the open export dialog run on a gated copy of the tiny net."""
    from restorer.engine import Colouriser

    net, meta = tiny_net_meta
    col = Colouriser.from_net(_Gated(net, gate), meta, device="cpu", batch_size=4)
    window.export_dialog.colouriser_factory = lambda: col


class _TitleBarClose(QCloseEvent):
    """What the window system sends for the title bar's close button (spontaneous)."""

    def spontaneous(self) -> bool:
        return True


@pytest.fixture
def answers(monkeypatch):
    """Patch :func:`dialogs.confirm`: ``answers.queue`` holds the replies (True: the action),
    ``answers.asked`` records ``(title, text, action, keep)``."""

    class Answers:
        queue: list[bool] = []
        asked: list[tuple[str, str, str, str]] = []
        before_reply: list = []

    a = Answers()
    a.queue, a.asked, a.before_reply = [], [], []

    def confirm(parent, title, text, action, keep="Cancel"):
        a.asked.append((title, text, action, keep))
        for fn in a.before_reply:
            fn()
        return a.queue.pop(0)

    monkeypatch.setattr(dialogs, "confirm", confirm)
    return a


def _leftovers(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


@pytest.fixture
def reopen(qtbot):
    """``reopen(window, path, frame=0)``: open an episode while another is on screen and wait
    for the new one's preview (``open_and_wait`` would see the old one's frame at once)."""

    def run(window, path: Path, frame: int = 0) -> None:
        window.open_episode(path)
        qtbot.waitUntil(lambda: window.info is not None and window.info.path == path
                        and window.current is not None and window.viewer.frame == frame,
                        timeout=WAIT_MS)

    return run


# ---------------------------------------------------------------------- 1. stale export dialog
def test_export_dialog_closes_when_another_episode_opens(qtbot, window, grey_clip, clip_factory,
                                                         tmp_path, open_and_wait, reopen):
    """Marks on A, dialog open, File > Open B: the dialog must not export A's file with B's
    range (or anything it did not show)."""
    b = clip_factory("b.mp4", colour=False, seconds=2.0)
    open_and_wait(window, grey_clip)
    window.state.mark_in(5)
    window.state.mark_out(14)
    window.show_export()
    dlg = window.export_dialog
    assert "In to out: 10 frames" in dlg.marked.text() and dlg.marked.isChecked()
    out = tmp_path / "stale.mp4"
    dlg.path.setText(str(out))
    reopen(window, b)
    assert dlg.stale and not dlg.isVisible()
    dlg.start_button.click()  # what the operator clicked
    assert not dlg.running and not out.exists()
    # Export again: a dialog for B, as it stands now.
    window.show_export()
    fresh = window.export_dialog
    assert fresh is not dlg and fresh.info.path == b
    assert "Whole episode: 50 frames" in fresh.whole.text() and fresh.whole.isChecked()
    assert not fresh.marked.isEnabled()
    job = fresh.job()
    assert (job.src, job.start, job.end) == (b, 0, 50)


def test_export_dialog_follows_marks_and_look_while_open(qtbot, window, grey_clip, open_and_wait):
    open_and_wait(window, grey_clip)
    window.show_export()
    dlg = window.export_dialog
    assert dlg.whole.isChecked() and not dlg.marked.isEnabled()
    window.state.mark_in(3)
    window.state.mark_out(9)
    assert "In to out: 7 frames" in dlg.marked.text() and dlg.marked.isChecked()
    assert (dlg.job().start, dlg.job().end) == (3, 10)
    window.state.mark_out(12)
    assert "In to out: 10 frames" in dlg.marked.text()
    assert (dlg.job().start, dlg.job().end) == (3, 13)
    dlg.whole.setChecked(True)
    window.state.mark_in(4)  # moving a mark keeps the operator's choice of range
    assert dlg.whole.isChecked() and (dlg.job().start, dlg.job().end) == (0, 25)
    window.state.set_chroma(0.6)
    assert "Chroma 60 %" in dlg.look_label.text()
    assert dlg.job().look is window.state.look
    assert "tiny-test" in dlg.model_label.text()


def test_running_export_keeps_its_episode_and_range(qtbot, window, grey_clip, clip_factory,
                                                    tmp_path, open_and_wait, gate,
                                                    tiny_net_meta, reopen):
    b = clip_factory("b.mp4", colour=False, seconds=2.0)
    open_and_wait(window, grey_clip)
    window.state.mark_in(5)
    window.state.mark_out(14)
    window.show_export()
    dlg = window.export_dialog
    gated_export(window, gate, tiny_net_meta)
    out = tmp_path / "a_range.mp4"
    dlg.path.setText(str(out))
    dlg.start_button.click()
    assert dlg.running
    reopen(window, b)
    assert dlg.isVisible() and dlg.running and "continues" in dlg.status.text()
    with qtbot.waitSignal(dlg.completed, timeout=60000):
        gate.set()
    assert probe(out).frame_count == 10  # A's marks, not B's whole length
    assert not dlg.start_button.isEnabled(), "a stale dialog offered a second export"
    window.show_export()
    assert window.export_dialog is not dlg and window.export_dialog.info.path == b


# ---------------------------------------------------------------------- 2. close during export
@pytest.mark.parametrize("how", ["title bar", "ctrl+q"])
def test_closing_during_export_asks_and_keep_exporting_keeps_it(qtbot, window, grey_clip,
                                                                tmp_path, open_and_wait, gate,
                                                                tiny_net_meta, answers, how):
    open_and_wait(window, grey_clip)
    window.show_export()
    dlg = window.export_dialog
    gated_export(window, gate, tiny_net_meta)
    out = tmp_path / "kept.mp4"
    dlg.path.setText(str(out))
    dlg.start_button.click()
    assert dlg.running
    dlg.last_progress = Progress(42, 100)  # as if 42% done
    answers.queue.append(False)  # Keep exporting
    if how == "title bar":
        ev = _TitleBarClose()
        window.closeEvent(ev)
        assert not ev.isAccepted()
    else:
        assert window.act_quit.shortcut() == QKeySequence(QKeySequence.StandardKey.Quit)
        window.act_quit.trigger()
    title, text, action, keep = answers.asked[-1]
    assert text == "An export is running (42%). Stop it and quit?"
    assert (action, keep) == ("Stop and quit", "Keep exporting")
    assert window.isVisible() and dlg.running and not window._closing
    with qtbot.waitSignal(dlg.completed, timeout=60000):
        gate.set()
    assert probe(out).frame_count == 25


@pytest.mark.parametrize("how", ["title bar", "ctrl+q"])
def test_closing_during_export_stop_and_quit(qtbot, window, grey_clip, tmp_path, open_and_wait,
                                             gate, tiny_net_meta, answers, how):
    open_and_wait(window, grey_clip)
    window.show_export()
    dlg = window.export_dialog
    gated_export(window, gate, tiny_net_meta)
    folder = tmp_path / "stop"
    folder.mkdir()
    dlg.path.setText(str(folder / "stopped.mp4"))
    dlg.start_button.click()
    assert dlg.running
    answers.queue.append(True)  # Stop and quit
    answers.before_reply.append(gate.set)  # let the blocked batch end so the cancel can land
    if how == "title bar":
        ev = _TitleBarClose()
        window.closeEvent(ev)
        assert ev.isAccepted()
    else:
        window.act_quit.trigger()
        assert not window.isVisible()
    assert window._closing and dlg.worker is not None and dlg.worker.done.is_set()
    assert "Stop it and quit?" in answers.asked[-1][1]
    assert _leftovers(folder) == []  # nothing partial


def test_close_without_export_does_not_ask(qtbot, window, grey_clip, open_and_wait, answers):
    open_and_wait(window, grey_clip)
    window.act_quit.trigger()
    assert not window.isVisible() and answers.asked == []


def test_confirm_is_a_real_box_with_the_safe_default(qtbot):
    parent = QWidget()
    qtbot.addWidget(parent)
    seen: dict = {}

    def answer() -> None:
        box = QApplication.activeModalWidget()
        assert isinstance(box, QMessageBox)
        seen["text"] = box.text()
        seen["buttons"] = sorted(b.text() for b in box.buttons())
        seen["default"] = box.defaultButton().text()
        next(b for b in box.buttons() if b.text() == "Stop and quit").click()

    def safety() -> None:  # never leave the test blocked in exec()
        for w in QApplication.topLevelWidgets():
            if isinstance(w, QMessageBox) and w.isVisible():
                w.reject()

    QTimer.singleShot(0, answer)
    QTimer.singleShot(5000, safety)
    assert dialogs.confirm(parent, "Export running", "An export is running (42%). Stop it "
                           "and quit?", "Stop and quit", "Keep exporting") is True
    assert seen["buttons"] == ["Keep exporting", "Stop and quit"]
    assert seen["default"] == "Keep exporting"


# ---------------------------------------------------------------------- 3. bad --model
def _loading_window(make_window, **kwargs):
    from restorer.engine import Colouriser

    return make_window(colouriser_factory=lambda p: Colouriser.load(p, device="cpu"),
                       load_model=True, **kwargs)


def test_bad_command_line_model_falls_back_and_is_not_remembered(
        qtbot, make_window, settings, tmp_path, tiny_model_file, monkeypatch):
    monkeypatch.setenv("RESTORER_MODEL", str(tiny_model_file))  # the shipped default
    bad = tmp_path / "typo.safetensors"
    window = _loading_window(make_window, model=bad)
    assert window.controls.model_title.text() == "Loading model…"  # not "No model"
    assert window.device_label.text() == "Loading model…"
    with qtbot.waitSignal(window.model_changed, timeout=WAIT_MS):
        pass
    assert window.colouriser.meta.name == "tiny-test"
    assert window.model_path == tiny_model_file
    notice = window.controls.model_notice.text()
    assert window.controls.model_notice.isVisibleTo(window)
    assert str(bad) in notice and "model file not found" in notice
    assert "using the shipped default model" in notice and "\n" not in notice
    assert not [b for b in window.findChildren(QMessageBox) if b.isVisible()]
    window.close()
    settings.sync()
    assert not settings.value("model/path"), "the failed --model was remembered"
    # The next start (no --model) uses the default quietly.
    again = _loading_window(make_window)
    with qtbot.waitSignal(again.model_changed, timeout=WAIT_MS):
        pass
    assert again.model_path == tiny_model_file and not again.controls.model_notice.text()


def test_remembered_model_that_fails_falls_back_and_is_forgotten(
        qtbot, make_window, settings, tmp_path, tiny_model_file, monkeypatch):
    monkeypatch.setenv("RESTORER_MODEL", str(tiny_model_file))
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(os.urandom(1000))
    settings.setValue("model/path", str(broken))
    window = _loading_window(make_window)
    with qtbot.waitSignal(window.model_changed, timeout=WAIT_MS):
        pass
    assert window.model_path == tiny_model_file
    notice = window.controls.model_notice.text()
    assert "broken.safetensors" in notice and "not a valid safetensors" in notice
    assert "shipped default" in notice
    assert not settings.value("model/path")


def test_good_command_line_model_is_remembered(qtbot, make_window, settings, tiny_model_file,
                                               tmp_path, monkeypatch):
    monkeypatch.setenv("RESTORER_MODEL", str(tmp_path / "no-default.safetensors"))
    window = _loading_window(make_window, model=tiny_model_file)
    with qtbot.waitSignal(window.model_changed, timeout=WAIT_MS):
        pass
    assert settings.value("model/path") == str(tiny_model_file)
    assert not window.controls.model_notice.text()


def test_missing_default_says_to_open_a_model_or_reinstall(qtbot, make_window, tmp_path,
                                                           monkeypatch):
    monkeypatch.setenv("RESTORER_MODEL", str(tmp_path / "gone.safetensors"))
    window = _loading_window(make_window)
    qtbot.waitUntil(lambda: bool(window.controls.model_notice.text()), timeout=WAIT_MS)
    notice = window.controls.model_notice.text()
    assert "shipped default model could not be loaded" in notice and "reinstall" in notice
    assert window.controls.model_title.text() == "No model"
    assert window.device_label.text() == "No model"


def test_model_error_advice_is_right():
    title, text = dialogs.user_message(ModelError("typo.safetensors: model file not found"))
    assert "Open another model file (File > Open model" in text
    assert "reinstall" not in text.lower()


# ---------------------------------------------------------------------- 4. keys after a field
def test_enter_in_chroma_field_gives_the_keys_back(qtbot, window, grey_clip, open_and_wait):
    open_and_wait(window, grey_clip)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=WAIT_MS)
    spin = window.controls.chroma_spin
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus, timeout=WAIT_MS)
    spin.selectAll()
    qtbot.keyClicks(spin, "70")
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    assert window.state.chroma == 0.7
    focus = QApplication.focusWidget()
    assert focus is window.viewer
    frame = window.state.frame
    qtbot.keyClick(focus, Qt.Key.Key_Right)  # the "Next frame" key, wherever the focus is now
    assert window.state.frame == frame + 1


def test_while_typing_the_field_keeps_its_keys(qtbot, window, grey_clip, open_and_wait):
    """Until Enter, the arrows edit the number (the transport must not steal them)."""
    open_and_wait(window, grey_clip)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=WAIT_MS)
    spin = window.controls.chroma_spin
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus, timeout=WAIT_MS)
    qtbot.keyClick(spin, Qt.Key.Key_Right)
    assert window.state.frame == 0 and QApplication.focusWidget() is spin


# ---------------------------------------------------------------------- 5. source in colour
def test_colour_source_warning_stays(qtbot, window, clip_factory, tmp_path, open_and_wait):
    colour = clip_factory("in_colour.mp4", colour=True)
    open_and_wait(window, colour)
    notes = window.controls.episode_notes
    qtbot.waitUntil(lambda: "in colour" in notes.text(), timeout=WAIT_MS)
    assert notes.isVisibleTo(window)
    window.show_export()
    dlg = window.export_dialog
    assert "in colour" in dlg.notes_label.text() and dlg.notes_label.isVisibleTo(dlg)
    dlg.path.setText(str(tmp_path / "from_colour.mp4"))
    with qtbot.waitSignal(dlg.completed, timeout=60000):
        dlg.start_button.click()
    assert "in colour" in dlg.notes_label.text() and dlg.notes_label.isVisibleTo(dlg)
    assert dlg.notes_label.text().count("in colour") == 1
    assert "in colour" in notes.text()  # still in the main window too


def test_grey_source_has_no_colour_warning(qtbot, window, grey_clip, open_and_wait):
    open_and_wait(window, grey_clip)
    qtbot.waitUntil(lambda: window._notes_worker is None or window._notes_worker.done.is_set(),
                    timeout=WAIT_MS)
    qtbot.wait(50)
    assert "in colour" not in window.controls.episode_notes.text()


def test_export_dialog_opened_early_gets_the_warning(qtbot, window, clip_factory,
                                                     open_and_wait):
    colour = clip_factory("in_colour.mp4", colour=True)
    open_and_wait(window, colour)
    window.show_export()  # possibly before the source was measured
    dlg = window.export_dialog
    qtbot.waitUntil(lambda: "in colour" in dlg.notes_label.text(), timeout=WAIT_MS)


# ---------------------------------------------------------------------- 6. smaller
def test_dropped_count_clears_on_stop_and_on_open(qtbot, window, clip_factory, grey_clip,
                                                  open_and_wait, reopen):
    clip = clip_factory("play.mp4", colour=False, seconds=2.0)
    open_and_wait(window, clip)
    window.act_play.trigger()
    qtbot.waitUntil(lambda: (window.viewer.frame or 0) >= 2, timeout=WAIT_MS)
    window._dropped = 5  # as a loaded machine would report
    window._update_status()
    assert "dropped 5" in window.infer_label.text()
    window.act_play.trigger()
    assert not window.state.playing
    assert "dropped" not in window.infer_label.text()
    qtbot.waitUntil(lambda: not window.previews.busy, timeout=WAIT_MS)
    assert "dropped" not in window.infer_label.text()
    window._dropped = 3
    window._update_status()
    reopen(window, grey_clip)
    assert "dropped" not in window.infer_label.text()


def test_message_box_text_uses_the_box_width(qtbot, tmp_path):
    from restorer.gui import theme

    parent = QWidget()
    parent.setStyleSheet(theme.QSS)  # the app's style sheet, without changing the whole app's
    qtbot.addWidget(parent)
    box = dialogs.show_error(parent, OutputError("/x/out.mp4 already exists; pass --overwrite "
                                                 "to replace it"), "export")
    qtbot.waitExposed(box)
    icon = box.findChild(QLabel, "qt_msgboxex_icon_label")
    text = box.findChild(QLabel, "qt_msgbox_label")
    box.grab().save(str(tmp_path / "box.png"))
    assert icon.width() < 100, "the icon took the text's room"
    assert text.x() < 0.25 * box.width() and text.width() >= 0.6 * box.width()
    assert "--overwrite" not in box.text() and "Replace" in box.text()
    box.close()


@pytest.mark.parametrize("error, unwanted", [
    (OutputError("/x/o.mp4 already exists; pass --overwrite to replace it"), "--overwrite"),
    (MediaError("a.mp4 is truncated: ...; pass --allow-truncated to render what decodes"),
     "--allow-truncated"),
    (MediaError("a.mp4 ended at frame 40 of 90: the file is truncated or damaged (eof); render "
                "a shorter range with --end 40"), "--end"),
    (ModelError("GPU out of memory even at batch size 1; lower --size or use --device cpu"),
     "--size"),
    (ModelError("the default model is missing: /m/default.safetensors; give a model file, or "
                "set RESTORER_MODEL to one"), "RESTORER_MODEL"),
])
def test_desk_messages_speak_the_desks_language(error, unwanted):
    title, text = dialogs.user_message(error)
    assert unwanted not in text and "--" not in text


def test_existing_output_asks_replace(qtbot, window, grey_clip, tmp_path, open_and_wait,
                                      answers):
    open_and_wait(window, grey_clip)
    window.state.mark_in(0)
    window.state.mark_out(4)
    out = tmp_path / "exists.mp4"
    out.write_bytes(b"an older export")
    window.show_export()
    dlg = window.export_dialog
    dlg.path.setText(str(out))
    answers.queue.append(False)  # Cancel
    dlg.start_button.click()
    title, text, action, keep = answers.asked[-1]
    assert "exists.mp4 already exists" in text and "Replace it?" in text
    assert (action, keep) == ("Replace", "Cancel")
    assert not dlg.running and out.read_bytes() == b"an older export"
    answers.queue.append(True)  # Replace
    with qtbot.waitSignal(dlg.completed, timeout=60000):
        dlg.start_button.click()
    assert probe(out).frame_count == 5
    assert not [b for b in window.findChildren(QMessageBox, "errorDialog") if b.isVisible()]


def test_desk_state_restored_per_episode(qtbot, make_window, grey_clip, clip_factory,
                                         open_and_wait, reopen):
    other = clip_factory("other.mp4", colour=False)
    w1 = make_window()
    open_and_wait(w1, grey_clip)
    w1.state.set_frame(7)
    w1.state.mark_in(3)
    w1.state.mark_out(9)
    w1.state.set_stabilise(0.4)
    w1.viewer.divider = 0.3
    qtbot.waitUntil(lambda: w1.viewer.frame == 7, timeout=WAIT_MS)
    reopen(w1, other)
    assert w1.state.frame == 0 and not w1.state.has_marks
    w1.state.set_stabilise(0.0)
    w1.viewer.divider = 0.5
    reopen(w1, grey_clip, frame=7)  # the same episode again, in the same session
    s = w1.state
    assert (s.frame, s.in_point, s.out_point, s.stabilise) == (7, 3, 9, 0.4)
    assert w1.viewer.divider == pytest.approx(0.3)
    w1.state.set_frame(11)
    w1.close()
    w2 = make_window()  # and in the next session
    open_and_wait(w2, grey_clip, frame=11)
    s = w2.state
    assert (s.frame, s.in_point, s.out_point, s.stabilise) == (11, 3, 9, 0.4)
    assert w2.viewer.divider == pytest.approx(0.3)
    assert "in 00:00:00:03" in w2.range_label.text()


def test_desk_export_writes_a_record(qtbot, window, grey_clip, tmp_path, open_and_wait):
    open_and_wait(window, grey_clip)
    window.state.mark_in(2)
    window.state.mark_out(11)
    window.controls.chroma.setValue(80)
    window.controls.stabilise.setValue(30)
    window.show_export()
    dlg = window.export_dialog
    out = tmp_path / "recorded.mp4"
    dlg.path.setText(str(out))
    with qtbot.waitSignal(dlg.completed, timeout=60000):
        dlg.start_button.click()
    rec = json.loads(record_path(out).read_text())
    assert rec["source"] == str(grey_clip) and rec["output"] == str(out)
    assert rec["model"]["name"] == "tiny-test"
    assert rec["look"] == {"chroma": 0.8, "working_size": 32, "stabilise": 0.3}
    assert rec["range"]["start"] == 2 and rec["range"]["end"] == 12
    assert rec["range"]["frames"] == 10
    assert rec["codec"] == "h264" and rec["restorer_version"] == __version__
    assert rec["date"]
    assert _leftovers(tmp_path).count("recorded.mp4.restorer.json") == 1
    assert not [n for n in _leftovers(tmp_path) if n.startswith(".restorer-tmp-")]


def test_truncated_source_is_asked_about_in_desk_words(qtbot, window, grey_clip, tmp_path,
                                                       open_and_wait, answers):
    import dataclasses

    open_and_wait(window, grey_clip)
    window.show_export()
    dlg = window.export_dialog
    dlg.info = dataclasses.replace(dlg.info, declared_frames=dlg.info.frame_count + 50)
    dlg.path.setText(str(tmp_path / "cut.mp4"))
    answers.queue += [False, True]
    assert dlg._ask_first(dlg.job()) is None
    title, text, action, keep = answers.asked[-1]
    assert "only the first 25 decode" in text and action == "Export what decodes"
    assert "--" not in text
    job = dlg._ask_first(dlg.job())
    assert job is not None and job.allow_truncated


def test_export_dialog_follows_the_model(qtbot, window, grey_clip, tiny_model_file,
                                         open_and_wait):
    from restorer.engine import Colouriser

    open_and_wait(window, grey_clip)
    window.show_export()
    dlg = window.export_dialog
    other = Colouriser.load(tiny_model_file, device="cpu")
    window.set_colouriser(other, tiny_model_file)
    assert "tiny.safetensors" in dlg.model_label.text()
    assert dlg.job().model == tiny_model_file
