"""The restoration desk's main window: a thin view over :class:`ViewState` and the workers.

Nothing here decodes or infers on the UI thread: previews go through a :class:`LatestRunner`
(generation numbers, newest request wins), playback is a generator worker that reads
sequentially and drops frames, and the export dialog runs the library's render iterator.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, cast

import numpy as np
from PySide6.QtCore import QByteArray, QSettings, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from restorer import __version__, scenes
from restorer.engine import Colouriser
from restorer.gui import theme
from restorer.gui.controls import ControlsPanel
from restorer.gui.dialogs import log_path, show_error
from restorer.gui.export_dialog import ExportDialog
from restorer.gui.preview import FrameResult, PreviewEngine, merge
from restorer.gui.state import MODE_LABELS, VIEW_MODES, ViewState
from restorer.gui.timeline import Timeline
from restorer.gui.viewer import Viewer
from restorer.gui.workers import LatestRunner, Worker, active_workers, create_worker, quit_all
from restorer.media import VideoInfo, probe

log = logging.getLogger(__name__)

MODEL_SUFFIXES = (".safetensors",)
MAX_RECENT = 8
ColouriserFactory = Callable[[Path | None], Colouriser]


def _load_colouriser(path: Path | None) -> Colouriser:
    return Colouriser.load(path, device="auto")


def _timed_merge(grey: np.ndarray, ab: np.ndarray, chroma: float) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    rgb = merge(grey, ab, chroma)
    return rgb, (time.perf_counter() - t0) * 1000


def _scan_cuts(info: VideoInfo, cancel: Any = None) -> Iterator[list[int]]:
    """Cuts found so far, as :func:`restorer.scenes.scan` reports them."""
    for ev in scenes.scan(info, cancel=cancel):
        yield [int(c) for c in ev.cuts]


class MainWindow(QMainWindow):
    """The desk. ``colouriser`` (or ``colouriser_factory``) makes it testable without model files.

    Parameters
    ----------
    colouriser : Colouriser, optional
        Use this colouriser; no model file is loaded.
    colouriser_factory : callable, optional
        ``factory(path_or_None) -> Colouriser`` used by File > Open model and at start-up
        (default: :meth:`Colouriser.load`).
    settings : QSettings, optional
        Where preferences persist (default: the user's Restorer settings).
    load_model : bool
        Load the remembered (or shipped default) model at start-up when no colouriser is given.
    """

    preview_shown = Signal(int)  # frame number now on screen
    episode_opened = Signal(object)  # VideoInfo
    model_changed = Signal(object)  # Colouriser

    def __init__(self, colouriser: Colouriser | None = None, *,
                 colouriser_factory: ColouriserFactory | None = None,
                 settings: QSettings | None = None, load_model: bool = True,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings if settings is not None else QSettings()
        self.colouriser_factory = colouriser_factory or _load_colouriser
        self.colouriser: Colouriser | None = colouriser
        self.model_path: Path | None = None
        self.info: VideoInfo | None = None
        self.engine: PreviewEngine | None = None
        self.current: FrameResult | None = None
        self.state = ViewState()
        self.export_dialog: ExportDialog | None = None
        self._closing = False
        self._play_worker: Worker | None = None
        self._play_gen = 0
        self._from_play = False
        self._dropped = 0
        self.last_merge_ms = 0.0
        self.last_preview_ms = 0.0
        self._request_t0: dict[int, float] = {}
        self._open_worker: Worker | None = None
        self._cuts_worker: Worker | None = None

        self.setWindowTitle("Restorer — restoration desk")
        self.setWindowIcon(theme.icon("restorer"))
        self.setAcceptDrops(True)
        self.resize(1440, 860)
        self.setMinimumSize(900, 560)

        self.previews = LatestRunner(self)
        self.previews.result.connect(self._on_preview)
        self.previews.failed.connect(self._on_preview_failed)
        self.previews.busy_changed.connect(lambda _b: self._update_status())
        self.merges = LatestRunner(self)
        self.merges.result.connect(self._on_merged)
        self.merges.failed.connect(lambda _g, e: show_error(self, e, "re-merging colour"))

        self._build_ui()
        self._build_actions()
        self.state.changed.connect(self._on_state)
        self._restore_settings()
        if colouriser is not None:
            self.state.set_model_size(colouriser.meta.working_size)
        self._show_model()
        if colouriser is None and load_model:
            QTimer.singleShot(0, self._load_initial_model)
        self._update_status()

    # ================================================================== UI
    def _build_ui(self) -> None:
        self.viewer = Viewer()
        self.timeline = Timeline(self.state)
        self.timeline.scrubbed.connect(self.scrub_to)
        self.controls = ControlsPanel(self.state)

        self.transport = QWidget()
        self.transport.setObjectName("transport")
        tl = QHBoxLayout(self.transport)
        tl.setContentsMargins(8, 2, 8, 6)
        tl.setSpacing(4)
        self._transport_layout = tl
        self.timecode = QLabel("00:00:00:00")
        self.timecode.setObjectName("timecode")
        self.timecode.setToolTip("Timecode of the frame under the playhead (HH:MM:SS:FF)")
        self.frame_label = QLabel("frame –")
        self.frame_label.setMinimumWidth(150)
        self.range_label = QLabel("")
        self.range_label.setProperty("dim", True)
        self.speed_label = QLabel("")
        self.speed_label.setProperty("dim", True)

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.setSpacing(0)
        ll.addWidget(self.viewer, 1)
        ll.addWidget(self.timeline)
        ll.addWidget(self.transport)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.controls)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 0)
        self.splitter.setSizes([1130, 310])
        self.splitter.setChildrenCollapsible(False)
        self.setCentralWidget(self.splitter)

        sb = self.statusBar()
        sb.setSizeGripEnabled(False)
        self.device_label = QLabel()
        self.infer_label = QLabel()
        self.cache_label = QLabel()
        self.job_label = QLabel()
        for w in (self.job_label, self.infer_label, self.cache_label, self.device_label):
            sb.addPermanentWidget(w)

    def _action(self, text: str, slot: Callable[[], Any],
                shortcut: str | QKeySequence | QKeySequence.StandardKey = "",
                icon: str = "", tip: str = "", checkable: bool = False) -> QAction:
        act = QAction(text, self)
        if shortcut:
            act.setShortcut(QKeySequence(shortcut))
        if icon:
            act.setIcon(theme.icon(icon))
        tip = tip or text.replace("&", "").replace("…", "")
        act.setToolTip(f"{tip} ({act.shortcut().toString()})" if shortcut else tip)
        act.setStatusTip(tip)
        act.setCheckable(checkable)
        act.triggered.connect(lambda _checked=False: slot())
        self.addAction(act)  # shortcuts work wherever the focus is in the window
        return act

    def _build_actions(self) -> None:
        s = self.state
        a = self._action
        self.act_open = a("&Open episode…", self.open_episode_dialog, QKeySequence.StandardKey.Open,
                          "open", "Open a black-and-white episode")
        self.act_model = a("Open &model…", self.open_model_dialog, "Ctrl+M", "model",
                           "Open a colourisation model (.safetensors)")
        self.act_export = a("&Export…", self.show_export, "Ctrl+E", "export",
                            "Export the colourised episode or the in/out range")
        self.act_quit = a("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.act_play = a("Play / pause", lambda: s.toggle_play(), "Space", "play")
        self.act_next = a("Next frame", lambda: self._step(1), "Right", "step-forward")
        self.act_prev = a("Previous frame", lambda: self._step(-1), "Left", "step-back")
        self.act_next_s = a("Forward 1 second", lambda: self._step_seconds(1.0), "Shift+Right")
        self.act_prev_s = a("Back 1 second", lambda: self._step_seconds(-1.0), "Shift+Left")
        self.act_home = a("First frame", lambda: self._go(s.home), "Home", "to-start")
        self.act_end = a("Last frame", lambda: self._go(s.end), "End", "to-end")
        self.act_j = a("Shuttle backward", lambda: s.shuttle("J"), "J")
        self.act_k = a("Shuttle stop", lambda: s.shuttle("K"), "K")
        self.act_l = a("Shuttle forward", lambda: s.shuttle("L"), "L")
        self.act_in = a("Mark in", lambda: s.mark_in(), "I", "mark-in",
                        "Set the export in point here")
        self.act_out = a("Mark out", lambda: s.mark_out(), "O", "mark-out",
                         "Set the export out point here")
        self.act_clear = a("Clear in/out", s.clear_marks, "Alt+X")
        self.act_fit = a("Fit", self.viewer.fit, "F", "zoom-fit", "Fit the frame in the view")
        self.act_1to1 = a("1:1", self.viewer.one_to_one, "1", "zoom-100",
                          "One image pixel per screen pixel")
        self.mode_actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        icons = {"side": "view-side", "wipe": "view-wipe", "original": "view-original",
                 "colour": "view-colour"}
        for k, mode in enumerate(VIEW_MODES, 1):
            act = a(MODE_LABELS[mode], partial(s.set_mode, mode), f"Ctrl+{k}", icons[mode],
                    checkable=True)
            group.addAction(act)
            self.mode_actions[mode] = act

        mb = self.menuBar()
        file_menu = mb.addMenu("&File")
        file_menu.addAction(self.act_open)
        file_menu.addAction(self.act_model)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        file_menu.addSeparator()
        file_menu.addAction(self.act_export)
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)
        view = mb.addMenu("&View")
        for act in self.mode_actions.values():
            view.addAction(act)
        view.addSeparator()
        view.addAction(self.act_fit)
        view.addAction(self.act_1to1)
        play = mb.addMenu("&Playback")
        for act in (self.act_play, self.act_prev, self.act_next, self.act_prev_s, self.act_next_s,
                    self.act_home, self.act_end):
            play.addAction(act)
        play.addSeparator()
        for act in (self.act_j, self.act_k, self.act_l):
            play.addAction(act)
        play.addSeparator()
        for act in (self.act_in, self.act_out, self.act_clear):
            play.addAction(act)
        help_menu = mb.addMenu("&Help")
        for text, slot in (("&Keyboard shortcuts", self._show_keys),
                           ("Show &log file", self._show_log),
                           ("&About Restorer", self._show_about)):
            act = QAction(text, self)
            act.triggered.connect(slot)
            help_menu.addAction(act)

        tb = QToolBar("Main")
        tb.setObjectName("mainToolbar")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tb.setIconSize(tb.iconSize().scaled(20, 20, Qt.AspectRatioMode.KeepAspectRatio))
        tb.addAction(self.act_open)
        tb.addAction(self.act_model)
        tb.addAction(self.act_export)
        tb.addSeparator()
        for act in self.mode_actions.values():
            tb.addAction(act)
            btn = tb.widgetForAction(act)
            if isinstance(btn, QToolButton):
                btn.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        tb.addSeparator()
        tb.addAction(self.act_fit)
        tb.addAction(self.act_1to1)
        for act in (self.act_fit, self.act_1to1):
            btn = tb.widgetForAction(act)
            if isinstance(btn, QToolButton):
                btn.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        self.addToolBar(tb)

        tl = self._transport_layout
        for act in (self.act_home, self.act_prev, self.act_play, self.act_next, self.act_end):
            tl.addWidget(self._tool_button(act))
        tl.addSpacing(10)
        tl.addWidget(self.timecode)
        tl.addWidget(self.frame_label)
        tl.addWidget(self.speed_label)
        tl.addStretch(1)
        tl.addWidget(self.range_label)
        tl.addSpacing(6)
        tl.addWidget(self._tool_button(self.act_in))
        tl.addWidget(self._tool_button(self.act_out))

    def _tool_button(self, act: QAction) -> QToolButton:
        btn = QToolButton()
        btn.setDefaultAction(act)
        btn.setAutoRaise(True)
        btn.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        btn.setIconSize(btn.iconSize().scaled(20, 20, Qt.AspectRatioMode.KeepAspectRatio))
        return btn

    # ================================================================== settings
    def _restore_settings(self) -> None:
        st = self.settings
        geo = st.value("window/geometry")
        if isinstance(geo, QByteArray) and not geo.isEmpty():
            self.restoreGeometry(geo)
        split = st.value("window/splitter")
        if isinstance(split, QByteArray) and not split.isEmpty():
            self.splitter.restoreState(split)
        chroma: Any = st.value("view/chroma", 1.0)  # a float, or a str from an INI file
        try:
            self.state.set_chroma(float(chroma))
        except (TypeError, ValueError):
            pass
        mode = str(st.value("view/mode", "side"))
        self.state.set_mode(mode if mode in VIEW_MODES else "side")
        preset = str(st.value("view/preset", "balanced"))
        if preset in ("fast", "balanced", "best"):
            self.state.set_preset(preset)
        self.mode_actions[self.state.mode].setChecked(True)
        self.viewer.set_mode(self.state.mode)
        model = st.value("model/path", "")
        self.model_path = Path(str(model)) if model and self.colouriser is None else None

    def save_settings(self) -> None:
        st = self.settings
        st.setValue("window/geometry", self.saveGeometry())
        st.setValue("window/splitter", self.splitter.saveState())
        st.setValue("view/chroma", self.state.chroma)
        st.setValue("view/mode", self.state.mode)
        st.setValue("view/preset", self.state.preset)
        if self.model_path is not None:
            st.setValue("model/path", str(self.model_path))
        st.sync()

    def last_folder(self) -> str:
        return str(self.settings.value("paths/last_folder", str(Path.home())))

    def recent_files(self) -> list[str]:
        value = self.settings.value("paths/recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in cast("Iterable[object]", value or [])]

    def _remember(self, path: Path) -> None:
        recent = [str(path)] + [p for p in self.recent_files() if p != str(path)]
        self.settings.setValue("paths/recent", recent[:MAX_RECENT])
        self.settings.setValue("paths/last_folder", str(path.parent))

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        files = self.recent_files()
        if not files:
            act = self.recent_menu.addAction("(none)")
            act.setEnabled(False)
            return
        for p in files:
            act = self.recent_menu.addAction(Path(p).name)
            act.setToolTip(p)
            act.triggered.connect(lambda _c=False, p=p: self.open_path(p))
        self.recent_menu.addSeparator()
        self.recent_menu.addAction("Clear list",
                                   lambda: self.settings.setValue("paths/recent", []))

    # ================================================================== models
    def _load_initial_model(self) -> None:
        self.open_model(self.model_path, remember=False, quiet_missing=self.model_path is None)

    def open_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open model", self.last_folder(),
                                              "Restorer model (*.safetensors)")
        if path:
            self.open_model(Path(path))

    def open_model(self, path: Path | None, remember: bool = True,
                   quiet_missing: bool = False) -> None:
        """Load a model in the background; on success it replaces the one in use."""
        if self._closing:
            return
        self.job_label.setText("Loading model…")

        def done(col: Colouriser) -> None:
            self.job_label.setText("")
            if self._closing:
                return
            self.set_colouriser(col, path)
            if remember and path is not None:
                self.settings.setValue("model/path", str(path))

        def failed(exc: BaseException) -> None:
            self.job_label.setText("")
            if quiet_missing and not (path and Path(path).exists()):
                log.warning("no model loaded: %s", exc)
                self.controls.model_card.setText(f"{exc}. Open a model from the File menu.")
                return
            show_error(self, exc, "opening the model")

        create_worker(self.colouriser_factory, path, on_returned=done, on_errored=failed)

    def set_colouriser(self, col: Colouriser, path: Path | None = None) -> None:
        self.colouriser = col
        self.model_path = Path(path) if path is not None else self.model_path
        self.state.set_model_size(col.meta.working_size)
        if self.engine is not None:
            self.engine.set_colouriser(col)
        self._show_model()
        self.model_changed.emit(col)
        self.request_preview()

    def _show_model(self) -> None:
        col = self.colouriser
        self.controls.show_model(col.meta if col else None,
                                 str(self.model_path) if self.model_path else "",
                                 str(col.device) if col else "")
        self._update_status()

    def export_colouriser(self) -> Colouriser | None:
        """A private copy of the colouriser for an export, so preview and export never share it."""
        col = self.colouriser
        if col is None:
            if self.model_path is None:
                from restorer.errors import ModelError

                raise ModelError("no model is loaded; open one with File > Open model")
            return None  # render() loads the model file itself
        return Colouriser(copy.deepcopy(col.net), col.meta, device=col.device,
                          batch_size=col.batch_size,
                          backend="auto" if col.backend == "onnxruntime" else "torch")

    # ================================================================== episodes
    def open_episode_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open episode", self.last_folder(),
            "Video (*.mp4 *.mov *.mkv *.avi *.m4v *.mxf *.mpg *.mpeg *.ts *.webm);;All files (*)")
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path) -> None:
        """Open a dropped or chosen file: a model if it looks like one, else an episode."""
        path = Path(path)
        if path.suffix.lower() in MODEL_SUFFIXES:
            self.open_model(path)
        else:
            self.open_episode(path)

    def open_episode(self, path: str | Path) -> None:
        """Probe in the background; the episode replaces the current one when it is readable."""
        if self._closing:
            return
        path = Path(path)
        self.job_label.setText(f"Opening {path.name}…")

        def done(info: VideoInfo) -> None:
            self.job_label.setText("")
            if not self._closing:
                self._set_episode(info)

        def failed(exc: BaseException) -> None:
            self.job_label.setText("")
            show_error(self, exc, f"opening {path.name}")

        self._open_worker = create_worker(probe, path, on_returned=done, on_errored=failed)

    def _set_episode(self, info: VideoInfo) -> None:
        self._stop_play()
        self.previews.invalidate()
        self.merges.invalidate()
        self.info = info
        old = self.engine
        self.engine = PreviewEngine(info, self.colouriser)
        if old is not None:  # a preview still decoding holds the seeker lock: close off the UI
            create_worker(old.close)
        self.current = None
        self.viewer.clear()
        self._remember(info.path)
        self.setWindowTitle(f"{info.path.name} — Restorer")
        self.controls.show_episode(
            f"<b>{info.path.name}</b><br>{info.width}×{info.height}, {float(info.fps):.3f} fps, "
            f"{info.frame_count} frames ({info.timecode(max(0, info.frame_count - 1))})<br>"
            f"<span style='color:#8c8c8c'>{info.codec}, {info.pix_fmt}, "
            f"{len(info.audio)} audio stream{'s' if len(info.audio) != 1 else ''}</span>")
        self.state.reset(info.frame_count, float(info.fps))
        self._update_transport()
        self.episode_opened.emit(info)
        if self._cuts_worker is not None:
            self._cuts_worker.quit()
        self._cuts_worker = create_worker(_scan_cuts, info, pass_cancel=True,
                                          on_yielded=lambda c, i=info: self._on_cuts(i, c),
                                          on_errored=lambda e: log.warning(
                                              "cut detection failed: %s", e))

    def _on_cuts(self, info: VideoInfo, cuts: list[int]) -> None:
        if info is self.info and not self._closing:
            self.state.set_cuts(cuts)

    # ================================================================== preview
    def request_preview(self) -> int | None:
        """Ask for the frame under the playhead; returns the request's generation number."""
        if self.engine is None or self._closing:
            return None
        gen = self.previews.submit(self.engine.render, self.state.frame, self.state.look)
        self._request_t0 = {gen: time.perf_counter()}
        self.merges.invalidate()
        return gen

    def _on_preview(self, gen: int, res: FrameResult) -> None:
        t0 = self._request_t0.pop(gen, None)
        if t0 is not None:
            self.last_preview_ms = (time.perf_counter() - t0) * 1000
        self._show_result(res)

    def _show_result(self, res: FrameResult) -> None:
        if self._closing:
            return
        self.current = res
        self.viewer.set_frames(res.n, res.grey, res.rgb)
        if res.chroma != self.state.chroma:
            self._request_merge()
        self._update_status()
        self.preview_shown.emit(res.n)

    def _on_preview_failed(self, gen: int, exc: BaseException) -> None:
        self._stop_play()
        show_error(self, exc, "decoding the preview")

    def _request_merge(self) -> None:
        cur = self.current
        if cur is None or self._closing:
            return
        self.merges.submit(self._merge_task, cur.n, cur.grey, cur.ab, self.state.chroma)

    @staticmethod
    def _merge_task(n: int, grey: np.ndarray, ab: np.ndarray, chroma: float
                    ) -> tuple[int, np.ndarray, float, np.ndarray, float]:
        rgb, ms = _timed_merge(grey, ab, chroma)
        return n, ab, chroma, rgb, ms

    def _on_merged(self, gen: int, value: tuple[int, np.ndarray, float, np.ndarray, float]
                   ) -> None:
        n, ab, chroma, rgb, ms = value
        cur = self.current
        if cur is None or cur.n != n or cur.ab is not ab or self._closing:
            return  # a newer frame is already on screen
        cur.rgb, cur.look = rgb, cur.look.replace(chroma=chroma)
        self.last_merge_ms = ms
        self.viewer.set_colour(rgb)
        if chroma != self.state.chroma:
            self._request_merge()
        self._update_status()

    # ================================================================== state
    def _on_state(self, name: str, value: Any) -> None:
        if name == "frame":
            self._update_transport()
            if not self._from_play:
                self.request_preview()
        elif name == "chroma":
            self._request_merge()  # playback reads the new look from the next frame on
        elif name in ("preset", "model_size", "stabilise"):
            if self.engine is not None and not self.state.playing:
                self.request_preview()
        elif name == "mode":
            self.viewer.set_mode(str(value))
            self.mode_actions[str(value)].setChecked(True)
        elif name == "speed":
            self._restart_play()
        elif name == "marks":
            self._update_transport()

    def scrub_to(self, n: int) -> None:
        """The timeline was clicked or dragged (stops playback)."""
        self.state.set_speed(0.0)
        self.state.set_frame(n)

    def _step(self, k: int) -> None:
        self.state.set_speed(0.0)
        self.state.step(k)

    def _step_seconds(self, seconds: float) -> None:
        self.state.set_speed(0.0)
        self.state.jump_seconds(seconds)

    def _go(self, fn: Callable[[], Any]) -> None:
        self.state.set_speed(0.0)
        fn()

    # ================================================================== playback
    def _restart_play(self) -> None:
        self._stop_play()
        speed = self.state.speed
        self.act_play.setIcon(theme.icon("pause" if speed else "play"))
        self.speed_label.setText(f"{speed:+g}×" if speed not in (0.0, 1.0) else "")
        if not speed or self.engine is None or self._closing:
            if self.engine is not None and not self._closing:
                self.request_preview()  # settle on the exact frame under the playhead
            return
        self.previews.invalidate()
        self._play_gen += 1
        gen = self._play_gen
        self._dropped = 0
        self._play_worker = create_worker(
            self.engine.play, self.state.frame, speed, pass_cancel=True,
            look=lambda: self.state.look,  # read per frame: sliders apply during playback
            on_yielded=lambda r, g=gen: self._on_play_frame(g, r),
            on_errored=lambda e, g=gen: self._on_play_error(g, e),
            on_finished=lambda g=gen: self._on_play_end(g))

    def _stop_play(self) -> None:
        self._play_gen += 1
        if self._play_worker is not None:
            self._play_worker.quit()
            self._play_worker = None

    def _on_play_frame(self, gen: int, res: FrameResult) -> None:
        if gen != self._play_gen or self._closing:
            return
        self._dropped += res.dropped
        self._from_play = True
        try:
            self.state.set_frame(res.n)
        finally:
            self._from_play = False
        self._show_result(res)

    def _on_play_error(self, gen: int, exc: BaseException) -> None:
        if gen == self._play_gen:
            self.state.set_speed(0.0)
            show_error(self, exc, "playing")

    def _on_play_end(self, gen: int) -> None:
        if gen == self._play_gen and self.state.playing:
            self._play_worker = None
            self.state.set_speed(0.0)

    # ================================================================== export
    def show_export(self) -> None:
        if self.info is None:
            QMessageBox.information(self, "Export", "Open an episode first (File > Open).") \
                if not self._closing else None
            return
        if self.export_dialog is not None and self.export_dialog.running:
            self.export_dialog.show()
            self.export_dialog.raise_()
            return
        dlg = ExportDialog(self.info, self.state, self.export_colouriser, self.model_path,
                           str(self.settings.value("paths/export_folder", "")), self)
        dlg.completed.connect(self._on_export_done)
        self.export_dialog = dlg
        dlg.show()

    def _on_export_done(self, path: Path) -> None:
        self.settings.setValue("paths/export_folder", str(Path(path).parent))
        self.statusBar().showMessage(f"Exported {path}", 10000)

    # ================================================================== status
    def _update_transport(self) -> None:
        s, info = self.state, self.info
        if info is None:
            self.timecode.setText("00:00:00:00")
            self.frame_label.setText("frame –")
            self.range_label.setText("")
            return
        self.timecode.setText(info.timecode(s.frame))
        self.frame_label.setText(f"frame {s.frame} / {s.last_frame}")
        if s.has_marks:
            a, b = s.export_range()
            self.range_label.setText(f"in {info.timecode(a)}  out {info.timecode(b - 1)}  "
                                     f"({b - a} frames)")
        else:
            self.range_label.setText("")

    def _update_status(self) -> None:
        col = self.colouriser
        self.device_label.setText(f"Device: {col.device}" if col else "No model")
        e = self.engine
        if e is not None:
            ms = e.last_infer_ms
            cur = self.current
            extra = " (cached)" if cur is not None and cur.cached else ""
            drop = f" · dropped {self._dropped}" if self._dropped else ""
            merge_ms = f" · re-merge {self.last_merge_ms:.0f} ms" if self.last_merge_ms else ""
            where = "in process" if e.decoder == "pyav" else "ffmpeg"
            dec = f"Decode {e.last_decode_ms:.0f} ms ({where}) · " if e.decoder else ""
            self.infer_label.setText(f"{dec}Inference {ms:.0f} ms/frame{extra}{merge_ms}{drop}")
            self.cache_label.setText(f"Cache: {e.frames.describe()} frames, "
                                     f"{e.abs.describe()} colour")
        else:
            self.infer_label.setText("")
            self.cache_label.setText("")

    # ================================================================== help
    def _show_keys(self) -> None:
        text = ("Space play/pause · ←/→ frame step · Shift+←/→ 1 second · Home/End\n"
                "J/K/L shuttle · I/O in and out points · Alt+X clear marks\n"
                "F fit · 1 one-to-one · Ctrl+1…4 viewer modes · wheel zoom · drag pan")
        QMessageBox.information(self, "Keyboard shortcuts", text)

    def _show_log(self) -> None:
        QMessageBox.information(self, "Log file", str(log_path() or "logging to stderr only"))

    def _show_about(self) -> None:
        QMessageBox.about(self, "About Restorer",
                          f"Restorer {__version__}\nColourisation desk for film and TV "
                          "restoration.\nThe original luminance is never altered.")

    # ================================================================== drops and close
    def dragEnterEvent(self, e: QDragEnterEvent) -> None:  # noqa: N802
        if e.mimeData().hasUrls() and any(u.isLocalFile() for u in e.mimeData().urls()):
            e.acceptProposedAction()

    def dropEvent(self, e: QDropEvent) -> None:  # noqa: N802
        for url in e.mimeData().urls():
            if url.isLocalFile():
                self.open_path(url.toLocalFile())
                e.acceptProposedAction()
                return

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Stop playback, previews and any export, and wait for the thread pool to drain."""
        self._closing = True
        self._stop_play()
        self.previews.quit()
        self.merges.quit()
        if self.export_dialog is not None:
            self.export_dialog.shutdown()
        quit_all()
        deadline = time.monotonic() + timeout_ms / 1000
        for w in active_workers():
            w.done.wait(max(0.0, deadline - time.monotonic()))
        drained = QThreadPool.globalInstance().waitForDone(
            max(0, int((deadline - time.monotonic()) * 1000)))
        if drained and self.engine is not None:
            self.engine.close()
        return drained

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.save_settings()
        self.shutdown()
        super().closeEvent(event)
