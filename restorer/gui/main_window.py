"""The restoration desk's main window: a thin view over :class:`ViewState` and the workers.

Nothing here decodes or infers on the UI thread: previews go through a :class:`LatestRunner`
(generation numbers, newest request wins), playback is a generator worker that reads
sequentially and drops frames, and the export dialog runs the library's render iterator.
"""

from __future__ import annotations

import copy
import hashlib
import json
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
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
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
from restorer.checkpoint import default_model_path
from restorer.engine import Colouriser
from restorer.errors import ModelError, RestorerError
from restorer.gui import dialogs, theme
from restorer.gui.controls import ControlsPanel
from restorer.gui.dialogs import log_path, show_error
from restorer.gui.export_dialog import ExportDialog
from restorer.gui.preview import DecodedFrame, FrameResult, PreviewEngine, merge
from restorer.gui.queue_panel import QueuePanel
from restorer.gui.scopes_panel import ScopesPanel
from restorer.gui.shots_panel import ShotsPanel
from restorer.gui.state import MODE_LABELS, VIEW_MODES, ViewState
from restorer.gui.timeline import Timeline
from restorer.gui.viewer import Viewer
from restorer.gui.workers import (
    SCRUB_COLOUR,
    SCRUB_ORIGINAL,
    LatestRunner,
    Worker,
    active_workers,
    create_worker,
    quit_all,
)
from restorer.media import VideoInfo, probe
from restorer.positions import parse_position, to_frame
from restorer.project import PROJECT_SUFFIX, Project
from restorer.project import load as load_project
from restorer.project import save as save_project_file
from restorer.render import RenderJob, source_notes
from restorer.render_queue import RenderQueue
from restorer.shots import ShotChroma, ShotChromas, check_shots
from restorer.stills import write_still

log = logging.getLogger(__name__)

MODEL_SUFFIXES = (".safetensors",)
MAX_RECENT = 8
#: Episodes whose playhead, marks, stabilisation and wipe are remembered (oldest forgotten).
MAX_EPISODE_MEMORY = 50
ColouriserFactory = Callable[[Path | None], Colouriser]


def _load_colouriser(path: Path | None) -> Colouriser:
    return Colouriser.load(path, device="auto")


def _timed_merge(grey: np.ndarray, ab: np.ndarray, chroma: float) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    rgb = merge(grey, ab, chroma)
    return rgb, (time.perf_counter() - t0) * 1000


def _int_or_none(value: object) -> int | None:
    """A stored whole number (an int, or a str from an INI file); None when absent or bad."""
    try:
        return int(str(value)) if value not in (None, "") else None
    except ValueError:
        return None


def _float_or_none(value: object) -> float | None:
    try:
        return float(str(value)) if value not in (None, "") else None
    except ValueError:
        return None


def _shots_or_none(value: object) -> ShotChromas:
    """Stored per-shot settings (JSON); none when absent or damaged."""
    try:
        return check_shots(ShotChroma.from_dict(d) for d in json.loads(str(value)))
    except (ValueError, TypeError, RestorerError):
        return ()


def _episode_group(path: Path) -> str:
    """The settings group for one episode: a digest, since a path's slashes are group
    separators in QSettings."""
    digest = hashlib.sha1(str(path.resolve()).encode("utf-8"), usedforsecurity=False)
    return f"episodes/{digest.hexdigest()[:20]}"


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
        Load a model at start-up when no colouriser is given: ``model``, else the remembered
        one, else the shipped default; one that fails falls back to the shipped default.
    model : Path, optional
        The model asked for on the command line (``--model``); remembered only if it loads.
    """

    preview_shown = Signal(int)  # frame number now on screen
    episode_opened = Signal(object)  # VideoInfo
    model_changed = Signal(object)  # Colouriser

    def __init__(self, colouriser: Colouriser | None = None, *,
                 colouriser_factory: ColouriserFactory | None = None,
                 settings: QSettings | None = None, load_model: bool = True,
                 model: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings if settings is not None else QSettings()
        self.colouriser_factory = colouriser_factory or _load_colouriser
        self.colouriser: Colouriser | None = colouriser
        # The file of the model in use: set only once a model has loaded from it.
        self.model_path: Path | None = None
        self._session_model = Path(model) if model is not None else None
        self._remembered_model: Path | None = None
        self._model_loads = 0  # loads under way
        self._loading_path: Path | None = None
        self._startup_load = colouriser is None and load_model
        self.source_notes: list[str] = []  # for self.info, once measured
        self._notes_worker: Worker | None = None
        self.info: VideoInfo | None = None
        self.engine: PreviewEngine | None = None
        self.current: FrameResult | None = None
        self.state = ViewState()
        self.export_dialog: ExportDialog | None = None
        self._closing = False
        self._quit_confirmed = False
        self._play_worker: Worker | None = None
        self._play_gen = 0
        self._from_play = False
        self._dropped = 0
        self.last_merge_ms = 0.0
        self.last_preview_ms = 0.0
        self._request_t0: dict[int, float] = {}
        self._open_worker: Worker | None = None
        self._cuts_worker: Worker | None = None
        self._cuts_complete = False  # the scan of the open episode has finished
        self.project_path: Path | None = None  # the project file the episode came from

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
        # Enter in a number field hands the keys back to the transport (the field would keep
        # the arrows, Home/End and letters for its own text otherwise).
        self.controls.editing_done.connect(
            lambda: self.viewer.setFocus(Qt.FocusReason.OtherFocusReason))
        self.shots_panel = ShotsPanel(self.state)
        self.shots_panel.editing_done.connect(
            lambda: self.viewer.setFocus(Qt.FocusReason.OtherFocusReason))
        self.shots_panel.timecode = self._timecode
        cast("QVBoxLayout", self.controls.layout()).insertWidget(1, self.shots_panel, 1)

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

        self.scopes = ScopesPanel()
        self.scopes_dock = QDockWidget("Scopes", self)
        self.scopes_dock.setObjectName("scopesDock")
        self.scopes_dock.setWidget(self.scopes)
        self.scopes_dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetClosable |
                                     QDockWidget.DockWidgetFeature.DockWidgetMovable |
                                     QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.scopes_dock)
        self.scopes_dock.hide()
        self.scopes_dock.visibilityChanged.connect(self._on_scopes_shown)

        # The render queue lives beside the settings, so it survives a restart.
        self.render_queue = RenderQueue.open(Path(self.settings.fileName()).parent /
                                             "render-queue.json")
        self.queue_panel = QueuePanel(self.render_queue,
                                      colouriser_factory=self._queue_colouriser)
        self.queue_panel.job_finished.connect(
            lambda j: self.statusBar().showMessage(f"Queue job {j.id}: {j.status} — "
                                                   f"{j.message}", 15000))
        self.queue_dock = QDockWidget("Render queue", self)
        self.queue_dock.setObjectName("queueDock")
        self.queue_dock.setWidget(self.queue_panel)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.queue_dock)
        self.queue_dock.setVisible(bool(self.render_queue.jobs))

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
        self.act_quit = a("&Quit", self.quit_desk, QKeySequence.StandardKey.Quit)
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
        self.act_next_cut = a("Next shot", lambda: self._go(s.next_cut), "Down",
                              tip="Go to the first frame of the next shot")
        self.act_prev_cut = a("Previous shot", lambda: self._go(s.previous_cut), "Up",
                              tip="Go to the first frame of this shot, or of the one before")
        self.act_loop = a("Loop in/out", lambda: s.set_loop(self.act_loop.isChecked()),
                          "Ctrl+L", tip="Playback loops between the in and out points (the "
                          "whole episode without marks)", checkable=True)
        self.act_goto = a("Go to timecode or frame…", self.go_to_dialog, "Ctrl+G")
        self.act_zoom_in = a("Zoom timeline in", lambda: self.timeline.zoom(2.0), "=",
                             tip="Zoom the timeline in around the playhead (also Ctrl+wheel)")
        self.act_zoom_out = a("Zoom timeline out", lambda: self.timeline.zoom(0.5), "-")
        self.act_zoom_all = a("Whole episode on the timeline", lambda: self.timeline.zoom(0.0),
                              "\\")
        self.act_undo = a("&Undo", s.undo, QKeySequence.StandardKey.Undo,
                          tip="Undo the last change of the marks or of a shot's chroma")
        self.act_redo = a("&Redo", s.redo, QKeySequence.StandardKey.Redo)
        self.act_open_project = a("Open &project…", self.open_project_dialog, "Ctrl+Shift+O",
                                  tip="Open a saved desk project (.restorer)")
        self.act_save_project = a("&Save project", self.save_project,
                                  QKeySequence.StandardKey.Save,
                                  tip="Save the episode, model, look, marks and shot settings "
                                      "as one project file")
        self.act_save_project_as = a("Save project &as…", self.save_project_as,
                                     QKeySequence.StandardKey.SaveAs)
        self.act_still = a("Export &frame…", self.export_still_dialog, "Ctrl+Shift+E",
                           tip="Save the frame under the playhead, in colour, as a 16-bit PNG "
                               "or TIFF at full size")
        self.act_scopes = self.scopes_dock.toggleViewAction()
        self.act_scopes.setText("&Scopes")
        self.act_scopes.setShortcut(QKeySequence("Ctrl+Shift+V"))
        self.act_scopes.setToolTip("Vectorscopes and a*/b* histograms of the original and the "
                                   "colour (Ctrl+Shift+V)")
        self.addAction(self.act_scopes)
        self.act_queue = self.queue_dock.toggleViewAction()
        self.act_queue.setText("Render &queue")
        self.act_queue.setShortcut(QKeySequence("Ctrl+Shift+Q"))
        self.addAction(self.act_queue)
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
        file_menu.addAction(self.act_open_project)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        file_menu.addSeparator()
        file_menu.addAction(self.act_save_project)
        file_menu.addAction(self.act_save_project_as)
        file_menu.addSeparator()
        file_menu.addAction(self.act_export)
        file_menu.addAction(self.act_still)
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)
        edit = mb.addMenu("&Edit")
        edit.addAction(self.act_undo)
        edit.addAction(self.act_redo)
        view = mb.addMenu("&View")
        for act in self.mode_actions.values():
            view.addAction(act)
        view.addSeparator()
        for act in (self.act_zoom_in, self.act_zoom_out, self.act_zoom_all):
            view.addAction(act)
        view.addSeparator()
        view.addAction(self.act_scopes)
        view.addAction(self.act_queue)
        view.addSeparator()
        view.addAction(self.act_fit)
        view.addAction(self.act_1to1)
        play = mb.addMenu("&Playback")
        for act in (self.act_play, self.act_prev, self.act_next, self.act_prev_s, self.act_next_s,
                    self.act_home, self.act_end, self.act_prev_cut, self.act_next_cut,
                    self.act_goto):
            play.addAction(act)
        play.addSeparator()
        for act in (self.act_j, self.act_k, self.act_l, self.act_loop):
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
        docks = st.value("window/docks")
        if isinstance(docks, QByteArray) and not docks.isEmpty():
            self.restoreState(docks)
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
        self._remembered_model = Path(str(model)) if model else None

    def save_settings(self) -> None:
        st = self.settings
        st.setValue("window/geometry", self.saveGeometry())
        st.setValue("window/splitter", self.splitter.saveState())
        st.setValue("window/docks", self.saveState())
        st.setValue("view/chroma", self.state.chroma)
        st.setValue("view/mode", self.state.mode)
        st.setValue("view/preset", self.state.preset)
        # model/path is written only when a model chosen by the operator loads (open_model):
        # a path that failed, or the shipped default, is never made the one to start with.
        self._save_episode_state()
        st.sync()

    def _save_episode_state(self) -> None:
        """Where the operator left the open episode, for when it is opened again."""
        info = self.info
        if info is None:
            return
        st, s = self.settings, self.state
        group = _episode_group(info.path)
        st.setValue(f"{group}/path", str(info.path))
        st.setValue(f"{group}/frame", s.frame)
        st.setValue(f"{group}/in", "" if s.in_point is None else s.in_point)
        st.setValue(f"{group}/out", "" if s.out_point is None else s.out_point)
        st.setValue(f"{group}/stabilise", s.stabilise)
        st.setValue(f"{group}/wipe", float(self.viewer.divider))
        st.setValue(f"{group}/shots", json.dumps([sh.to_dict() for sh in s.shots]))
        order = [group] + [g for g in self._episode_order() if g != group]
        for old in order[MAX_EPISODE_MEMORY:]:
            st.remove(old)
        st.setValue("episodes-order", order[:MAX_EPISODE_MEMORY])

    def _episode_order(self) -> list[str]:
        value = self.settings.value("episodes-order", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in cast("Iterable[object]", value or [])]

    def _episode_memory(self, info: VideoInfo) -> dict[str, Any]:
        """What :meth:`_save_episode_state` kept for ``info`` (empty when it is new here)."""
        st = self.settings
        group = _episode_group(info.path)
        if str(st.value(f"{group}/path", "")) != str(info.path):
            return {}
        return {"frame": _int_or_none(st.value(f"{group}/frame")),
                "in": _int_or_none(st.value(f"{group}/in")),
                "out": _int_or_none(st.value(f"{group}/out")),
                "stabilise": _float_or_none(st.value(f"{group}/stabilise")),
                "wipe": _float_or_none(st.value(f"{group}/wipe")),
                "shots": _shots_or_none(st.value(f"{group}/shots"))}

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
        """The command line's model, else the remembered one, else the shipped default; a
        chosen model that fails falls back to the default, with a notice saying so."""
        self._startup_load = False
        default = default_model_path()
        chosen = self._session_model or self._remembered_model
        if chosen is None or chosen == default:
            self.open_model(default, remember=False, on_failed=self._default_failed)
            return
        from_command_line = self._session_model is not None

        def fall_back(exc: BaseException) -> None:
            if not from_command_line:  # it would fail again at every start
                self.settings.remove("model/path")
            notice = (f"Could not load the model {chosen} ({exc}); using the shipped default "
                      f"model instead.")
            log.warning("%s", notice)
            self.controls.show_model_notice(notice)
            self.statusBar().showMessage(notice, 30000)
            self.open_model(default, remember=False,
                            on_failed=lambda e: self._default_failed(e, notice))

        # A model from the command line becomes the one to start with only once it loads.
        self.open_model(chosen, remember=from_command_line, on_failed=fall_back)

    def _default_failed(self, exc: BaseException, before: str = "") -> None:
        """No model at all: the shipped one is missing or damaged, so here (and only here)
        reinstalling is the right advice."""
        log.warning("the shipped default model did not load: %s", exc)
        notice = (f"The shipped default model could not be loaded ({exc}): open a model with "
                  "File > Open model…, or reinstall Restorer to restore it.")
        self.controls.show_model_notice(f"{before}\n{notice}" if before else notice)

    def open_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open model", self.last_folder(),
                                              "Restorer model (*.safetensors)")
        if path:
            self.open_model(Path(path))

    def open_model(self, path: Path | None, remember: bool = True,
                   on_failed: Callable[[BaseException], None] | None = None) -> None:
        """Load a model in the background; on success it replaces the one in use.

        ``remember``: make it the model the next start opens. ``on_failed`` handles a failure
        instead of the error dialog (the start-up fallback).
        """
        if self._closing:
            return
        self.job_label.setText("Loading model…")
        self._model_loads += 1
        self._loading_path = path
        self._show_model()

        def finished() -> None:
            self._model_loads -= 1
            if not self._model_loads:
                self.job_label.setText("")
                self._loading_path = None

        def done(col: Colouriser) -> None:
            finished()
            if self._closing:
                return
            if remember:
                self.controls.show_model_notice("")  # the operator chose again
            self.set_colouriser(col, path)
            if remember and path is not None:
                self.settings.setValue("model/path", str(path))

        def failed(exc: BaseException) -> None:
            finished()
            if self._closing:
                return
            self._show_model()
            if on_failed is not None:
                on_failed(exc)
            else:
                show_error(self, exc, "opening the model")

        create_worker(self.colouriser_factory, path, on_returned=done, on_errored=failed)

    def set_colouriser(self, col: Colouriser, path: Path | None = None) -> None:
        self.colouriser = col
        self.model_path = Path(path) if path is not None else self.model_path
        self.state.set_model_size(col.meta.working_size)
        if self.engine is not None:
            self.engine.set_colouriser(col)
        self._show_model()
        if self.export_dialog is not None:
            self.export_dialog.set_model(self.model_path, col.meta.name)
        self.model_changed.emit(col)
        self.request_preview()

    @property
    def model_loading(self) -> bool:
        """A model is being read (and none is in use yet, or another replaces it)."""
        return self._model_loads > 0 or self._startup_load

    def _show_model(self) -> None:
        col = self.colouriser
        if col is None and self.model_loading:
            path = self._loading_path or self._session_model or self._remembered_model
            self.controls.show_loading(str(path) if path else "")
        else:
            self.controls.show_model(col.meta if col else None,
                                     str(self.model_path) if self.model_path else "",
                                     str(col.device) if col else "")
        self._update_status()

    def export_colouriser(self) -> Colouriser | None:
        """A private copy of the colouriser for an export, so preview and export never share it."""
        col = self.colouriser
        if col is None:
            if self.model_loading:
                raise ModelError("the model is still loading; export once the Model panel "
                                 "shows it")
            if self.model_path is None:
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
        elif path.suffix.lower() == PROJECT_SUFFIX:
            self.open_project(path)
        else:
            self.open_episode(path)

    def open_episode(self, path: str | Path, project: Project | None = None) -> None:
        """Probe in the background; the episode replaces the current one when it is readable.
        With ``project``, it opens as the project left it rather than as this desk last did."""
        if self._closing:
            return
        path = Path(path)
        self.job_label.setText(f"Opening {path.name}…")

        def done(info: VideoInfo) -> None:
            self.job_label.setText("")
            if not self._closing:
                self._set_episode(info, project)

        def failed(exc: BaseException) -> None:
            self.job_label.setText("")
            show_error(self, exc, f"opening {path.name}")

        self._open_worker = create_worker(probe, path, on_returned=done, on_errored=failed)

    def _set_episode(self, info: VideoInfo, project: Project | None = None) -> None:
        self._save_episode_state()  # of the episode being replaced
        if project is None:
            self.project_path = None
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
        self.source_notes = []
        self.controls.show_source_notes([])
        # As the project left it; else where the operator left it here last time, if ever.
        memory: dict[str, Any] = self._episode_memory(info) if project is None else {
            "frame": project.frame, "in": project.in_point, "out": project.out_point,
            "stabilise": project.look.stabilise, "wipe": project.wipe, "shots": project.shots}
        if project is not None:
            self.state.set_chroma(project.look.chroma)
            if project.preset in ("fast", "balanced", "best"):
                self.state.set_preset(project.preset)
            if project.mode in VIEW_MODES:
                self.state.set_mode(project.mode)
        wipe = memory.get("wipe")
        if wipe is not None:
            self.viewer.divider = max(0.0, min(1.0, wipe))
        self.state.reset(info.frame_count, float(info.fps), frame=memory.get("frame") or 0,
                         in_point=memory.get("in"), out_point=memory.get("out"),
                         shots=memory.get("shots") or ())
        stabilise = memory.get("stabilise")
        if stabilise is not None:
            self.state.set_stabilise(stabilise)
        self._update_transport()
        self._update_status()
        self.episode_opened.emit(info)
        if self._cuts_worker is not None:
            self._cuts_worker.quit()
            self._cuts_worker = None
        self._cuts_complete = False
        if project is not None and project.cuts is not None:
            self.state.set_cuts(project.cuts)  # reopened exactly: the cuts it was saved with
            self._cuts_complete = True
        else:
            self._cuts_worker = create_worker(
                _scan_cuts, info, pass_cancel=True,
                on_yielded=lambda c, i=info: self._on_cuts(i, c),
                on_returned=lambda _r, i=info: self._on_cuts_done(i),
                on_errored=lambda e: log.warning("cut detection failed: %s", e))
        # Decodes a few frames, so off the UI thread; the episode is usable meanwhile.
        self._notes_worker = create_worker(
            source_notes, info, on_returned=lambda n, i=info: self._on_source_notes(i, n),
            on_errored=lambda e: log.warning("checking the source failed: %s", e))

    def _on_source_notes(self, info: VideoInfo, notes: list[str]) -> None:
        """Things to know about the source (e.g. that it is in colour already): in the
        Episode panel, and in the export dialog, for as long as the episode is open."""
        if info is not self.info or self._closing:
            return
        self.source_notes = list(notes)
        self.controls.show_source_notes(self.source_notes)
        dlg = self.export_dialog
        if dlg is not None and dlg.info is info and not dlg.stale:
            dlg.add_notes(self.source_notes)

    def _on_cuts(self, info: VideoInfo, cuts: list[int]) -> None:
        if info is self.info and not self._closing:
            self.state.set_cuts(cuts)

    def _on_cuts_done(self, info: VideoInfo) -> None:
        if info is self.info:
            self._cuts_complete = True

    def _on_scopes_shown(self, visible: bool) -> None:
        cur = self.current
        if visible and cur is not None:
            self.scopes.show_frame(cur.n, cur.grey, cur.rgb)

    # ================================================================== stills
    def export_still_dialog(self) -> None:
        cur, info = self.current, self.info
        if info is None or cur is None or cur.n != self.state.frame:
            QMessageBox.information(self, "Export frame", "Wait for the colour of the frame "
                                    "under the playhead, then export it.")
            return
        suggested = info.path.with_name(f"{info.path.stem}_{cur.n:06d}.png")
        folder = self.settings.value("paths/export_folder", "")
        if folder:
            suggested = Path(str(folder)) / suggested.name
        path, _ = QFileDialog.getSaveFileName(self, "Export frame", str(suggested),
                                              "PNG, 16-bit (*.png);;TIFF, 16-bit (*.tif)")
        if path:
            self.export_still(Path(path), overwrite=True)  # the file chooser has asked

    def export_still(self, path: Path, overwrite: bool = False) -> Worker | None:
        """Write the frame on screen to ``path`` off the UI thread (16-bit, full size)."""
        cur, info = self.current, self.info
        if cur is None or info is None:
            return None
        chroma = self.state.chroma_at(cur.n)

        def done(out: Path) -> None:
            self.statusBar().showMessage(f"Saved frame {cur.n} to {out}", 10000)

        return create_worker(write_still, path, cur.grey, cur.ab, chroma, sources=(info.path,),
                             overwrite=overwrite, on_returned=done,
                             on_errored=lambda e: show_error(self, e, "exporting the frame"))

    # ================================================================== projects
    def project(self) -> Project | None:
        """The open episode as a project (None without an episode)."""
        if self.info is None:
            return None
        s = self.state
        return Project(episode=self.info.path, model=self.model_path, look=s.look,
                       preset=s.preset, mode=s.mode, frame=s.frame, in_point=s.in_point,
                       out_point=s.out_point, cuts=list(s.cuts) if self._cuts_complete else None,
                       shots=s.shots, wipe=float(self.viewer.divider))

    def save_project(self, path: str | Path | None = None) -> Path | None:
        """Save to ``path``, else to the project this episode came from, else ask where."""
        project = self.project()
        if project is None:
            QMessageBox.information(self, "Save project", "Open an episode first (File > Open).")
            return None
        target = Path(path) if path is not None else self.project_path
        if target is None:
            return self.save_project_as()
        try:
            saved = save_project_file(project, target)
        except RestorerError as exc:
            show_error(self, exc, "saving the project")
            return None
        self.project_path = saved
        self._remember(saved)
        self.statusBar().showMessage(f"Saved {saved}", 8000)
        return saved

    def save_project_as(self) -> Path | None:
        if self.info is None:
            return self.save_project()
        suggested = self.project_path or self.info.path.with_suffix(PROJECT_SUFFIX)
        path, _ = QFileDialog.getSaveFileName(self, "Save project", str(suggested),
                                              f"Restorer project (*{PROJECT_SUFFIX})")
        return self.save_project(path) if path else None

    def open_project_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open project", self.last_folder(),
                                              f"Restorer project (*{PROJECT_SUFFIX})")
        if path:
            self.open_project(Path(path))

    def open_project(self, path: str | Path) -> None:
        """Open a project: its model (when another), then its episode as it was saved."""
        path = Path(path)
        try:
            project = load_project(path)
        except RestorerError as exc:
            show_error(self, exc, f"opening {path.name}")
            return
        if project.model is not None and project.model != self.model_path:
            self.open_model(project.model, remember=False)
        self.project_path = path
        self.open_episode(project.episode, project)

    # ================================================================== preview
    def request_preview(self) -> int | None:
        """Ask for the frame under the playhead: its original alone (a decode: cheap enough for
        the original pane to follow a drag) and its colour (with its own original); returns the
        colour request's generation number."""
        engine = self.engine
        if engine is None or self._closing:
            return None
        n = self.state.frame
        look = self.state.look_at(n)
        self.previews.submit(engine.decoded, n, lane=SCRUB_ORIGINAL)
        # A new key drops colour still being made by a replaced model or at another working
        # size; chroma is left out, as a re-merge brings any result to the slider's strength.
        key = (engine, engine.colouriser, look.replace(chroma=1.0))
        gen = self.previews.submit(engine.render, n, look, lane=SCRUB_COLOUR, key=key)
        self._request_t0[gen] = time.perf_counter()
        self.merges.invalidate()
        return gen

    def _on_preview(self, gen: int, res: FrameResult | DecodedFrame) -> None:
        if isinstance(res, DecodedFrame):
            if not self._closing and self.viewer.set_original(res.n, res.grey, gen):
                self.preview_shown.emit(res.n)
            return
        t0 = self._request_t0.pop(gen, None)
        for older in [g for g in self._request_t0 if g < gen]:  # coalesced: never delivered
            del self._request_t0[older]
        if t0 is not None:
            self.last_preview_ms = (time.perf_counter() - t0) * 1000
        if not self._colour_waits(gen, res):
            self._show_result(res, gen)

    def _colour_waits(self, gen: int, res: FrameResult) -> bool:
        """Whether the colour pane keeps its picture rather than show ``res``.

        A colour frame is only ever shown with its own original, so one that finishes after
        the original pane has moved on steps that pane back to its frame. While the drag goes
        on, a newer original is being decoded and replaces it within one decode; once the
        playhead rests (nothing left to decode) the step back would stay on screen until the
        playhead's own colour, already asked for, arrives: so the colour pane waits for it.
        With the original alone on screen, a step back would be all the operator sees.
        """
        v = self.viewer
        if v.frame == res.n or gen > v.stamp:
            return False  # same frame, or newer than the original on screen: no step back
        if self.state.mode == "original":
            return True
        return (not self.previews.lane_busy(SCRUB_ORIGINAL)
                and self.previews.latest(SCRUB_COLOUR) > gen)

    def _show_result(self, res: FrameResult, stamp: int | None = None) -> None:
        """Show ``res`` in both panes: the colour frame with its own original."""
        if self._closing:
            return
        self.current = res
        if stamp is None:  # a playback frame: no scrub picture asked for earlier may replace it
            stamp = self.previews.generation.current
        self.viewer.set_frames(res.n, res.grey, res.rgb, stamp)
        self.scopes.show_frame(res.n, res.grey, res.rgb)
        if res.chroma != self.state.chroma_at(res.n):
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
        self.merges.submit(self._merge_task, cur.n, cur.grey, cur.ab,
                           self.state.chroma_at(cur.n))

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
        self.scopes.show_frame(n, cur.grey, rgb)
        if chroma != self.state.chroma_at(n):
            self._request_merge()
        self._update_status()

    # ================================================================== state
    def _on_state(self, name: str, value: Any) -> None:
        if name == "frame":
            self._update_transport()
            if not self._from_play:
                self.request_preview()
        elif name in ("chroma", "shots"):
            self._request_merge()  # playback reads the new look from the next frame on
        elif name in ("preset", "model_size", "stabilise"):
            if self.engine is not None and not self.state.playing:
                self.request_preview()
        elif name == "mode":
            self.viewer.set_mode(str(value))
            self.mode_actions[str(value)].setChecked(True)
        elif name == "speed":
            self._restart_play()
        elif name == "loop":
            self.act_loop.setChecked(bool(value))
            if self.state.playing:
                self._restart_play()
        elif name == "marks":
            self._update_transport()
        if name in ("marks", "shots", "episode"):
            self._update_undo()

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

    def _timecode(self, n: int) -> str:
        return self.info.timecode(n) if self.info is not None else str(n)

    def go_to(self, text: str) -> bool:
        """Go to a typed position: a frame number, a timecode HH:MM:SS:FF, or a time (12.5s,
        MM:SS); raises :class:`RestorerError` for text that is none of these."""
        n = to_frame(parse_position(text), self.state.fps)
        if n is None:
            return False
        self.state.set_speed(0.0)
        self.state.set_frame(n)
        return True

    def go_to_dialog(self) -> None:
        if self.info is None:
            return
        text, ok = QInputDialog.getText(
            self, "Go to", "Timecode (HH:MM:SS:FF), frame number or time (12.5s):",
            text=self.info.timecode(self.state.frame))
        if ok and text.strip():
            try:
                self.go_to(text)
            except RestorerError as exc:
                show_error(self, exc, "going to a position")

    def _update_undo(self) -> None:
        self.act_undo.setEnabled(self.state.can_undo)
        self.act_redo.setEnabled(self.state.can_redo)

    # ================================================================== playback
    def _play_stop(self, speed: float) -> int | None:
        """Where playback ends: the loop's far end when looping, else the episode's."""
        if not self.state.loop:
            return None
        first, last = self.state.loop_range()
        return last if speed > 0 else first

    def _restart_play(self) -> None:
        self._stop_play()
        speed = self.state.speed
        s = self.state
        if speed and s.loop:
            first, last = s.loop_range()
            if not first <= s.frame <= last or s.frame == (last if speed > 0 else first):
                s.set_frame(first if speed > 0 else last)
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
            look=self.state.look_at,  # read per frame: sliders apply during playback
            stop=self._play_stop(speed),
            on_yielded=lambda r, g=gen: self._on_play_frame(g, r),
            on_errored=lambda e, g=gen: self._on_play_error(g, e),
            on_finished=lambda g=gen: self._on_play_end(g))

    def _stop_play(self) -> None:
        self._play_gen += 1
        self._dropped = 0  # counts one playback; a stopped desk drops nothing
        if self._play_worker is not None:
            self._play_worker.quit()
            self._play_worker = None
        if not self._closing:
            self._update_status()

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
            first, last = self.state.loop_range()
            if self.state.loop and last > first and not self._closing:
                self._restart_play()  # from the loop's start again
                return
            self.state.set_speed(0.0)

    # ================================================================== export
    def show_export(self) -> None:
        if self.info is None:
            QMessageBox.information(self, "Export", "Open an episode first (File > Open).") \
                if not self._closing else None
            return
        old = self.export_dialog
        if old is not None and old.running:  # one export at a time: show the one running
            old.show()
            old.raise_()
            return
        if old is not None:  # a fresh dialog for the episode, marks and model of now
            old.close()
            old.deleteLater()
        col = self.colouriser
        dlg = ExportDialog(self.info, self.state, self.export_colouriser, self.model_path,
                           str(self.settings.value("paths/export_folder", "")), self,
                           model_name=col.meta.name if col is not None else "",
                           source_notes=self.source_notes)
        dlg.completed.connect(self._on_export_done)
        dlg.queue_job = self.queue_job
        self.export_dialog = dlg
        dlg.show()

    def queue_job(self, job: RenderJob) -> None:
        """Put an export into the render queue and show the queue."""
        self.queue_panel.add(job)
        self.queue_dock.show()

    def _queue_colouriser(self, job: RenderJob) -> Colouriser | None:
        """A private copy of the loaded model when it is the one the job was queued with;
        None: the job loads its own model file (another may be loaded by now)."""
        if self.colouriser is None or job.model != self.model_path:
            return None
        return self.export_colouriser()

    def _on_export_done(self, path: Path) -> None:
        self.settings.setValue("paths/export_folder", str(Path(path).parent))
        self.statusBar().showMessage(f"Exported {path}", 10000)

    def _confirm_stop_export(self) -> bool:
        """True when no export runs, or the operator agrees to stop it."""
        if self.queue_panel.running and not dialogs.confirm(
                self, "Render queue running",
                "A queued export is running. Stop it and quit? It starts again from the "
                "beginning next time.", "Stop and quit", "Keep rendering"):
            return False
        dlg = self.export_dialog
        if dlg is None or not dlg.running:
            return True
        return dialogs.confirm(
            self, "Export running",
            f"An export is running ({int(dlg.fraction * 100)}%). Stop it and quit?",
            "Stop and quit", "Keep exporting")

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
        self.device_label.setText(f"Device: {col.device}" if col else
                                  "Loading model…" if self.model_loading else "No model")
        e = self.engine
        if e is not None:
            ms = e.last_infer_ms
            cur = self.current
            extra = " (cached)" if cur is not None and cur.cached else ""
            drop = f" · dropped {self._dropped}" if self._dropped else ""
            merge_ms = f" · re-merge {self.last_merge_ms:.0f} ms" if self.last_merge_ms else ""
            where = "kept open" if e.decoder == "pyav" else "re-opened"
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
                "↑/↓ previous/next shot · Ctrl+G go to timecode · Ctrl+L loop in/out\n"
                "J/K/L shuttle · I/O in and out points · Alt+X clear marks\n"
                "Ctrl+Z/Ctrl+Shift+Z undo/redo marks and shot settings · Ctrl+S save project\n"
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
        self.queue_panel.shutdown()
        quit_all()
        deadline = time.monotonic() + timeout_ms / 1000
        for w in active_workers():
            w.done.wait(max(0.0, deadline - time.monotonic()))
        drained = QThreadPool.globalInstance().waitForDone(
            max(0, int((deadline - time.monotonic()) * 1000)))
        if drained and self.engine is not None:
            self.engine.close()
        return drained

    def quit_desk(self) -> None:
        """File > Quit (Ctrl+Q): ask before stopping a running export, then close."""
        if self._confirm_stop_export():
            self._quit_confirmed = True
            self.close()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        """Close; a close from the window system (the title bar) asks first when an export is
        running. A close() from code (quit_desk, which has asked; the screenshot mode) does not
        ask: its caller has decided."""
        if (event.spontaneous() and not self._quit_confirmed
                and not self._confirm_stop_export()):
            event.ignore()
            return
        self._quit_confirmed = False
        self.save_settings()
        self.shutdown()
        super().closeEvent(event)
