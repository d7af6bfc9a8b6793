"""The export dialog: output, codec, quality, range, audio note and a comparison option.

It runs :func:`restorer.render.render` on the thread pool through a :class:`Worker`, showing
progress, fps and ETA. Cancel is cooperative; the library guarantees no partial file is left.
The dialog is not modal, so the desk stays usable during an export.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from restorer.engine import Colouriser
from restorer.errors import Cancelled
from restorer.gui import theme
from restorer.gui.dialogs import show_error
from restorer.gui.state import ViewState
from restorer.gui.workers import Worker
from restorer.media import VideoInfo
from restorer.render import Progress, RenderJob, render

CODEC_CHOICES = (  # (codec, label, suffix)
    ("h264", "H.264 (MP4)", ".mp4"),
    ("prores", "ProRes 422 HQ (MOV)", ".mov"),
    ("ffv1", "FFV1 lossless (MKV)", ".mkv"),
)


def format_eta(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "--:--"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


def export_frames(job: RenderJob, colouriser: Colouriser | None,
                  cancel: Any = None) -> Iterator[Progress]:
    """The worker's generator: the library's render iterator, nothing more."""
    yield from render(job, cancel=cancel, colouriser=colouriser)


class ExportDialog(QDialog):
    """Configure and run one export."""

    completed = Signal(object)  # output Path
    failed = Signal(object)  # exception
    cancelled = Signal()
    _error: BaseException | None = None  # the running export's failure, until it finishes

    def __init__(self, info: VideoInfo, state: ViewState,
                 colouriser_factory: Callable[[], Colouriser | None],
                 model_path: Path | None = None, last_folder: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export colourised episode")
        self.setWindowIcon(theme.icon("export"))
        self.setMinimumWidth(560)
        self.info, self.state = info, state
        self.colouriser_factory = colouriser_factory
        self.model_path = model_path
        self.worker: Worker | None = None
        self.output: Path | None = None
        self.last_progress: Progress | None = None

        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.path = QLineEdit()
        folder = Path(last_folder) if last_folder else info.path.parent
        self.path.setText(str(folder / f"{info.path.stem}_colour.mp4"))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QWidget()
        rl = QHBoxLayout(row)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.path, 1)
        rl.addWidget(browse)
        form.addRow("Output", row)

        self.codec = QComboBox()
        for codec, label, _ in CODEC_CHOICES:
            self.codec.addItem(label, codec)
        self.codec.currentIndexChanged.connect(self._codec_changed)
        form.addRow("Codec", self.codec)

        self.quality = QSpinBox()
        self.quality.setRange(0, 51)
        self.quality.setValue(18)
        self.quality.setPrefix("CRF ")
        self.quality.setToolTip("H.264 constant rate factor: lower is better (18 is visually "
                                "lossless for most material)")
        form.addRow("Quality", self.quality)

        self.whole = QRadioButton()
        self.marked = QRadioButton()
        group = QButtonGroup(self)
        group.addButton(self.whole)
        group.addButton(self.marked)
        rng = QWidget()
        rgl = QVBoxLayout(rng)
        rgl.setContentsMargins(0, 0, 0, 0)
        rgl.addWidget(self.whole)
        rgl.addWidget(self.marked)
        form.addRow("Range", rng)
        self._describe_ranges()

        self.compare = QCheckBox("Side-by-side comparison (original | colour, double width)")
        form.addRow("", self.compare)
        self.overwrite = QCheckBox("Replace the file if it exists")
        form.addRow("", self.overwrite)

        n_audio = len(info.audio)
        audio = QLabel(
            f"Audio: {n_audio} stream{'s' if n_audio != 1 else ''} copied unchanged "
            "(passthrough); re-encoded only where the container cannot hold it."
            if n_audio else "Audio: the source has no audio; the output will be silent.")
        audio.setWordWrap(True)
        audio.setProperty("dim", True)
        form.addRow("", audio)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        self.status = QLabel("Ready")
        self.status.setProperty("dim", True)

        self.buttons = QDialogButtonBox()
        role = QDialogButtonBox.ButtonRole
        self.start_button = self.buttons.addButton("Export", role.AcceptRole)
        self.start_button.setIcon(theme.icon("export"))
        self.cancel_button = self.buttons.addButton("Cancel", role.RejectRole)
        self.cancel_button.setIcon(theme.icon("cancel"))
        self.close_button = self.buttons.addButton("Close", role.ResetRole)
        self.cancel_button.setEnabled(False)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.close)
        self.start_button.setDefault(True)

        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addSpacing(6)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addWidget(self.buttons)
        self._codec_changed()

    # ------------------------------------------------------------------ form
    def _describe_ranges(self) -> None:
        s, info = self.state, self.info
        self.whole.setText(f"Whole episode: {info.frame_count} frames "
                           f"({info.timecode(0)} – {info.timecode(max(0, info.frame_count - 1))})")
        if s.has_marks:
            a, b = s.export_range()
            self.marked.setText(f"In to out: {b - a} frames ({info.timecode(a)} – "
                                f"{info.timecode(b - 1)})")
            self.marked.setEnabled(True)
            self.marked.setChecked(True)
        else:
            self.marked.setText("In to out: set in and out points with I and O")
            self.marked.setEnabled(False)
            self.whole.setChecked(True)

    def _codec_changed(self) -> None:
        codec = self.codec.currentData()
        self.quality.setEnabled(codec == "h264")
        suffix = next(sfx for c, _, sfx in CODEC_CHOICES if c == codec)
        text = self.path.text().strip()
        if text:
            self.path.setText(str(Path(text).with_suffix(suffix)))

    def _browse(self) -> None:
        codec = self.codec.currentData()
        suffix = next(sfx for c, _, sfx in CODEC_CHOICES if c == codec)
        path, _ = QFileDialog.getSaveFileName(self, "Export to", self.path.text(),
                                              f"Video (*{suffix})")
        if path:
            self.path.setText(path)
            self.overwrite.setChecked(Path(path).exists())

    def job(self) -> RenderJob:
        """The :class:`RenderJob` this form describes."""
        start, end = self.state.export_range(use_marks=self.marked.isChecked())
        return RenderJob(
            src=self.info.path, dst=Path(self.path.text().strip()).expanduser(),
            model=self.model_path, look=self.state.look, codec=self.codec.currentData(),
            crf=self.quality.value() if self.codec.currentData() == "h264" else None,
            start=start, end=end, compare=self.compare.isChecked(),
            overwrite=self.overwrite.isChecked(),
        )

    # ------------------------------------------------------------------ running
    @property
    def running(self) -> bool:
        return self.worker is not None

    def start(self) -> None:
        if self.running:
            return
        try:
            job = self.job()
            if not job.dst.name:
                raise ValueError("give an output file name")
            colouriser = self.colouriser_factory()
        except Exception as exc:
            show_error(self, exc, "export")
            return
        self.output = None
        self.last_progress = None
        self._set_running(True)
        self.status.setText("Starting…")
        self.progress.setValue(0)
        worker = Worker(export_frames, job, colouriser, pass_cancel=True)
        worker.yielded.connect(self._on_progress)
        worker.errored.connect(self._on_error)
        worker.finished.connect(lambda w=worker: self._on_finished(w))
        self.worker = worker
        worker.start()

    def cancel(self) -> None:
        if self.worker is not None:
            self.status.setText("Cancelling…")
            self.cancel_button.setEnabled(False)
            self.worker.quit()

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.close_button.setEnabled(not running)
        for w in (self.path, self.codec, self.quality, self.whole, self.marked, self.compare,
                  self.overwrite):
            w.setEnabled(not running and (w is not self.marked or self.state.has_marks)
                         and (w is not self.quality or self.codec.currentData() == "h264"))

    def _on_progress(self, ev: Progress) -> None:
        self.last_progress = ev
        self.progress.setValue(int(1000 * ev.fraction))
        if ev.output is not None:
            self.output = Path(ev.output)
            self.status.setText(f"Wrote {ev.output} — {ev.total} frames at {ev.fps:.1f} fps")
        elif ev.done == 0:
            notes = "; ".join(ev.notes)
            self.status.setText(ev.message + (f" — {notes}" if notes else ""))
        else:
            self.status.setText(f"{ev.done} / {ev.total} frames — {ev.fps:.1f} fps — "
                                f"ETA {format_eta(ev.eta_s)}")

    def _on_error(self, exc: BaseException) -> None:
        if isinstance(exc, Cancelled):
            return
        self.status.setText(f"Failed: {exc}")
        self._error = exc

    def _on_finished(self, worker: Worker) -> None:
        if worker is not self.worker:
            return
        self.worker = None
        self._set_running(False)
        error = getattr(self, "_error", None)
        self._error = None
        if self.output is not None:
            self.progress.setValue(1000)
            box = QMessageBox(QMessageBox.Icon.Information, "Export finished",
                              f"Wrote {self.output}", QMessageBox.StandardButton.Ok, self)
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.setObjectName("exportDone")
            box.open()
            self.completed.emit(self.output)
        elif error is not None:
            self.progress.setValue(0)
            show_error(self, error, "export")
            self.failed.emit(error)
        else:
            self.progress.setValue(0)
            self.status.setText("Cancelled — no file was written")
            self.cancelled.emit()

    def closeEvent(self, event: Any) -> None:  # noqa: N802
        if self.running:
            self.cancel()
            event.ignore()
            return
        super().closeEvent(event)

    def reject(self) -> None:
        if self.running:
            self.cancel()
            return
        super().reject()

    def shutdown(self) -> None:
        """Cancel and wait (the window is closing)."""
        if self.worker is not None:
            self.worker.quit()
            self.worker.done.wait(30)
