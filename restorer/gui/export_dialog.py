"""The export dialog: output, codec, quality, range, audio note and a comparison option.

It runs :func:`restorer.render.render` on the thread pool through a :class:`Worker`, showing
progress, fps and ETA. Cancel is cooperative; the library guarantees no partial file is left.
The dialog is not modal, so the desk stays usable during an export; so that it always exports
what it shows, it follows the desk's marks, look and model while it is idle, freezes them while
it runs, and belongs to the episode it was opened for (it closes, or when running refuses a
second export, once the desk opens another). A finished export gets its record
(``<output>.restorer.json``, :mod:`restorer.record`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent, QHideEvent, QShowEvent
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
from restorer.errors import Cancelled, RestorerError
from restorer.formats import H264_CRF
from restorer.gui import dialogs, theme
from restorer.gui.dialogs import show_error
from restorer.gui.state import PRESET_LABELS, ViewState
from restorer.gui.workers import Worker
from restorer.media import VideoInfo
from restorer.record import record_export, record_path
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
    """The worker's generator: the library's render iterator, and the record once it commits."""
    for ev in render(job, cancel=cancel, colouriser=colouriser):
        if ev.output is not None:
            try:
                record_export(job, ev.output, model=colouriser.meta if colouriser else None,
                              frames_written=ev.total)
            except RestorerError as exc:  # the master is complete; say what is missing
                ev = dataclasses.replace(ev, notes=[*ev.notes, str(exc)])
        yield ev


def _sentence(note: str) -> str:
    return f"{note[:1].upper()}{note[1:]}" + ("" if note.endswith(".") else ".")


class ExportDialog(QDialog):
    """Configure and run exports of one episode."""

    completed = Signal(object)  # output Path
    failed = Signal(object)  # exception
    cancelled = Signal()
    _error: BaseException | None = None  # the running export's failure, until it finishes

    def __init__(self, info: VideoInfo, state: ViewState,
                 colouriser_factory: Callable[[], Colouriser | None],
                 model_path: Path | None = None, last_folder: str = "",
                 parent: QWidget | None = None, *, model_name: str = "",
                 source_notes: Sequence[str] = ()) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Export {info.path.name} colourised")
        self.setWindowIcon(theme.icon("export"))
        self.setMinimumWidth(560)
        self.info, self.state = info, state
        self.colouriser_factory = colouriser_factory
        self.model_path = model_path
        self.model_name = model_name
        self._pending_model: tuple[Path | None, str] | None = None
        self.worker: Worker | None = None
        self.output: Path | None = None
        self.last_progress: Progress | None = None
        self.notes: list[str] = []
        self.stale = False  # the desk has opened another episode since
        self._listening = False
        self._had_marks: bool | None = None
        self._replace_ok: Path | None = None  # confirmed in the file chooser already

        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.source = QLabel(f"<b>{info.path.name}</b>")
        self.source.setToolTip(str(info.path))
        form.addRow("Source", self.source)
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        form.addRow("Model", self.model_label)
        self.look_label = QLabel()
        self.look_label.setWordWrap(True)
        self.look_label.setToolTip("From the desk's Colour controls at the moment Export is "
                                   "clicked")
        form.addRow("Look", self.look_label)

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
        self.quality.setValue(H264_CRF)
        self.quality.setPrefix("CRF ")
        self.quality.setToolTip("H.264 constant rate factor: lower is better (18-20 is "
                                "visually lossless for most material)")
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

        self.compare = QCheckBox("Side-by-side comparison (original | colour, double width)")
        form.addRow("", self.compare)

        n_audio = len(info.audio)
        audio = QLabel(
            f"Audio: {n_audio} stream{'s' if n_audio != 1 else ''} copied unchanged "
            "(passthrough); re-encoded only where the container cannot hold it."
            if n_audio else "Audio: the source has no audio; the output will be silent.")
        audio.setWordWrap(True)
        audio.setProperty("dim", True)
        form.addRow("", audio)

        # Notes about the source and the encode stay up: they decide whether to trust the
        # output, so they must not flash past under the progress text.
        self.notes_label = QLabel()
        self.notes_label.setObjectName("notice")
        self.notes_label.setWordWrap(True)
        self.notes_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.notes_label.hide()

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        self._status_text = "Ready"
        self.status = QLabel(self._status_text)
        self.status.setProperty("dim", True)
        self.status.setWordWrap(True)

        self.buttons = QDialogButtonBox()
        role = QDialogButtonBox.ButtonRole
        self.start_button = self.buttons.addButton("Export", role.AcceptRole)
        self.start_button.setIcon(theme.icon("export"))
        self.cancel_button = self.buttons.addButton("Cancel", role.RejectRole)
        self.cancel_button.setIcon(theme.icon("cancel"))
        self.close_button = self.buttons.addButton("Close", role.ResetRole)
        self.queue_button = self.buttons.addButton("Add to queue", role.ActionRole)
        self.queue_button.setToolTip("Queue this export with these settings; the desk's "
                                     "render queue runs its jobs one after another")
        self.queue_button.clicked.connect(self.add_to_queue)
        #: Set by the desk: takes a job into its render queue (None: no queue).
        self.queue_job: Callable[[RenderJob], object] | None = None
        self.cancel_button.setEnabled(False)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.close)
        self.start_button.setDefault(True)

        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.notes_label)
        lay.addSpacing(6)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addWidget(self.buttons)
        self._codec_changed()
        self.add_notes(source_notes)
        self.refresh()

    # ------------------------------------------------------------------ following the desk
    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        if not self._listening:
            self.state.changed.connect(self._on_state)
            self._listening = True
        self.refresh()
        super().showEvent(event)

    def hideEvent(self, event: QHideEvent) -> None:  # noqa: N802
        if self._listening:
            self.state.changed.disconnect(self._on_state)
            self._listening = False
        super().hideEvent(event)

    def _on_state(self, name: str, value: object) -> None:
        if name == "episode":
            self._episode_replaced()
        elif name in ("marks", "chroma", "stabilise", "preset", "model_size", "shots"):
            self.refresh()

    def _episode_replaced(self) -> None:
        """The desk's state now belongs to another episode: this dialog's marks and look are
        gone, so it must not build another job from them."""
        self.stale = True
        if self.running:
            self._set_status(self._status_text)
        else:
            self.close()

    def _set_status(self, text: str) -> None:
        """The status line; once the desk has moved on, it also says whose export this is."""
        self._status_text = text
        if self.stale and self.running:
            text += (f"\nThe desk has opened another episode; this export of "
                     f"{self.info.path.name} continues.")
        elif self.stale:
            text += ("\nThe desk now shows another episode: close this dialog and open Export "
                     "again to export it.")
        self.status.setText(text)

    def set_model(self, path: Path | None, name: str) -> None:
        """The desk loaded another model: exports from now on use it (a running one keeps
        its own copy, and the dialog keeps showing that one until it ends)."""
        if self.running:
            self._pending_model = (path, name)
            return
        self.model_path, self.model_name = path, name
        self.refresh()

    def add_notes(self, notes: Sequence[str]) -> None:
        """Show notes about the source or the encode until the dialog closes."""
        new = [n for n in notes if n and n not in self.notes]
        if not new:
            return
        self.notes += new
        self.notes_label.setText("\n".join(f"Note: {_sentence(n)}" for n in self.notes))
        self.notes_label.show()

    def refresh(self) -> None:
        """Show the range, look and model an Export click would use now (frozen while an
        export runs, which keeps what it started with)."""
        if self.running:
            return
        self._describe_ranges()
        s = self.state
        self.look_label.setText(
            f"Chroma {s.chroma * 100:.0f} % · {PRESET_LABELS.get(s.preset, s.preset)} quality, "
            f"working size {s.working_size} px · stabilise {s.stabilise * 100:.0f} %"
            + ("" if not s.shots else " · 1 shot with its own chroma" if len(s.shots) == 1
               else f" · {len(s.shots)} shots with their own chroma"))
        where = f" ({self.model_path.name})" if self.model_path is not None else ""
        self.model_label.setText(f"{self.model_name or 'the loaded model'}{where}")
        if self.stale:
            self.start_button.setEnabled(False)
            self._set_status(self._status_text)

    # ------------------------------------------------------------------ form
    def _describe_ranges(self) -> None:
        s, info = self.state, self.info
        self.whole.setText(f"Whole episode: {info.frame_count} frames "
                           f"({info.timecode(0)} – {info.timecode(max(0, info.frame_count - 1))})")
        if s.has_marks and not self.stale:
            a, b = s.export_range()
            self.marked.setText(f"In to out: {b - a} frames ({info.timecode(a)} – "
                                f"{info.timecode(b - 1)})")
            self.marked.setEnabled(True)
            if not self._had_marks:  # new marks: what the operator most likely wants
                self.marked.setChecked(True)
            self._had_marks = True
        else:
            self.marked.setText("In to out: set in and out points with I and O")
            self.marked.setEnabled(False)
            self.whole.setChecked(True)
            self._had_marks = False

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
            # The file chooser has asked about replacing an existing file already.
            self._replace_ok = Path(path).expanduser() if Path(path).exists() else None

    def job(self, overwrite: bool = False, allow_truncated: bool = False) -> RenderJob:
        """The :class:`RenderJob` this form describes, from the desk's state as it is now."""
        if self.stale:
            raise RestorerError("the desk has opened another episode; open Export again")
        if self.marked.isChecked() and self.state.has_marks:
            start, end = self.state.export_range()
        else:
            start, end = 0, self.info.frame_count
        return RenderJob(
            src=self.info.path, dst=Path(self.path.text().strip()).expanduser(),
            model=self.model_path, look=self.state.look, codec=self.codec.currentData(),
            crf=self.quality.value() if self.codec.currentData() == "h264" else None,
            start=start, end=end, compare=self.compare.isChecked(),
            overwrite=overwrite, allow_truncated=allow_truncated,
            shots=tuple(sh for sh in self.state.shots if sh.start < end and sh.end > start),
        )

    def _ask_first(self, job: RenderJob) -> RenderJob | None:
        """Settle, in the desk's words, what the library would refuse: an existing output
        and a truncated source. None: the operator said no."""
        missing = self.info.missing_frames
        if missing and not job.allow_truncated:
            if not dialogs.confirm(
                    self, "The source is cut short",
                    f"{self.info.path.name} declares {self.info.declared_frames} frames, but "
                    f"only the first {self.info.frame_count} decode ({missing} missing).\n\n"
                    "Export the frames that decode?", "Export what decodes"):
                return None
            job = dataclasses.replace(job, allow_truncated=True)
        dst = job.dst
        if dst.exists() and not job.overwrite and dst.resolve() != job.src.resolve():
            if self._replace_ok is None or dst != self._replace_ok:
                if not dialogs.confirm(self, "Replace the file?",
                                       f"{dst.name} already exists in {dst.parent}.\n\n"
                                       "Replace it?", "Replace"):
                    return None
            job = dataclasses.replace(job, overwrite=True)
        return job

    def _confirmed_job(self) -> RenderJob | None:
        """The job the form shows now, once the operator has settled what the library would
        refuse (None: they said no); raises for a form that describes no job."""
        self.refresh()  # what is shown is what the job is built from, just below
        job = self.job()
        if not job.dst.name:
            raise ValueError("give an output file name")
        return self._ask_first(job)

    def add_to_queue(self) -> bool:
        """Queue the job this form describes, asked about as Export would; True if queued."""
        if self.queue_job is None or self.stale:
            return False
        try:
            asked = self._confirmed_job()
            if asked is None:
                return False
            self.queue_job(asked)
        except Exception as exc:
            show_error(self, exc, "queueing the export")
            return False
        self._set_status(f"Queued {asked.dst.name}")
        return True

    # ------------------------------------------------------------------ running
    @property
    def running(self) -> bool:
        return self.worker is not None

    def start(self) -> None:
        if self.running or self.stale:
            return
        try:
            asked = self._confirmed_job()
            if asked is None:
                self._set_status("Not exported")
                return
            job = asked
            colouriser = self.colouriser_factory()
        except Exception as exc:
            show_error(self, exc, "export")
            return
        self.output = None
        self.last_progress = None
        self._set_running(True)
        self._set_status("Starting…")
        self.progress.setValue(0)
        worker = Worker(export_frames, job, colouriser, pass_cancel=True)
        worker.yielded.connect(self._on_progress)
        worker.errored.connect(self._on_error)
        worker.finished.connect(lambda w=worker: self._on_finished(w))
        self.worker = worker
        worker.start()

    def cancel(self) -> None:
        if self.worker is not None:
            self._set_status("Cancelling…")
            self.cancel_button.setEnabled(False)
            self.worker.quit()

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running and not self.stale)
        self.cancel_button.setEnabled(running)
        self.close_button.setEnabled(not running)
        for w in (self.path, self.codec, self.quality, self.whole, self.marked, self.compare):
            w.setEnabled(not running and (w is not self.marked or self.state.has_marks)
                         and (w is not self.quality or self.codec.currentData() == "h264"))

    def _on_progress(self, ev: Progress) -> None:
        self.last_progress = ev
        self.progress.setValue(int(1000 * ev.fraction))
        self.add_notes(ev.notes)
        if ev.output is not None:
            self.output = Path(ev.output)
            self._set_status(f"Wrote {ev.output} — {ev.total} frames at {ev.fps:.1f} fps")
        elif ev.done == 0:
            self._set_status(ev.message)
        else:
            self._set_status(f"{ev.done} / {ev.total} frames — {ev.fps:.1f} fps — "
                                f"ETA {format_eta(ev.eta_s)}")

    def _on_error(self, exc: BaseException) -> None:
        if isinstance(exc, Cancelled):
            return
        self._set_status(f"Failed: {dialogs.desk_wording(str(exc))}")
        self._error = exc

    def _on_finished(self, worker: Worker) -> None:
        if worker is not self.worker:
            return
        self.worker = None
        self._set_running(False)
        if self._pending_model is not None:
            self.model_path, self.model_name = self._pending_model
            self._pending_model = None
        error = getattr(self, "_error", None)
        self._error = None
        if self.output is not None:
            self.progress.setValue(1000)
            rec = record_path(self.output)
            text = f"Wrote {self.output}"
            if rec.exists():
                text += f"\n\nThe model and settings used are recorded in {rec.name}."
            box = QMessageBox(QMessageBox.Icon.Information, "Export finished", text,
                              QMessageBox.StandardButton.Ok, self)
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
            self._set_status("Cancelled — no file was written")
            self.cancelled.emit()
        self.refresh()

    def _confirm_cancel(self) -> bool:
        return dialogs.confirm(self, "Export running",
                               f"The export is {int(self.fraction * 100)}% done. Stop it? "
                               "Nothing of it will be kept.", "Stop export", "Keep exporting")

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if self.running:
            # The title bar's close is easy to hit by mistake; an export can take hours.
            if not event.spontaneous() or self._confirm_cancel():
                self.cancel()
            event.ignore()
            return
        super().closeEvent(event)

    def reject(self) -> None:
        if self.running:  # Escape
            if self._confirm_cancel():
                self.cancel()
            return
        super().reject()

    @property
    def fraction(self) -> float:
        """How far the running export is (0 before its first batch)."""
        ev = self.last_progress
        return ev.fraction if ev is not None else 0.0

    def shutdown(self) -> None:
        """Cancel and wait (the window is closing)."""
        if self.worker is not None:
            self.worker.quit()
            self.worker.done.wait(30)
