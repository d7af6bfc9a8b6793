"""The Render queue panel: queued exports with their progress; start, cancel, remove, retry.

The queue itself is :class:`restorer.render_queue.RenderQueue` (no Qt), stored in the user's
data folder so it survives a restart. Jobs run one at a time on a worker thread, each through
the same render iterator and export record as the Export dialog.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from restorer.errors import RestorerError
from restorer.gui.dialogs import show_error
from restorer.gui.workers import Worker
from restorer.record import record_export
from restorer.render import RenderJob
from restorer.render_queue import RUNNING, WAITING, QueuedJob, RenderQueue


class QueuePanel(QWidget):
    """A table of the queue's jobs and the buttons that act on them."""

    job_finished = Signal(object)  # QueuedJob

    def __init__(self, queue: RenderQueue, parent: QWidget | None = None,
                 colouriser_factory: Callable[[RenderJob], object] | None = None) -> None:
        super().__init__(parent)
        self.queue = queue
        self.colouriser_factory = colouriser_factory
        self.worker: Worker | None = None
        self._stop_after = False
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 6)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["#", "Job", "Status", "Progress"])
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        head = self.table.horizontalHeader()
        head.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        head.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        lay.addWidget(self.table, 1)
        row = QHBoxLayout()
        self.start_button = QPushButton("Start queue")
        self.stop_button = QPushButton("Stop after this job")
        self.cancel_button = QPushButton("Cancel job")
        self.retry_button = QPushButton("Retry")
        self.remove_button = QPushButton("Remove")
        self.clear_button = QPushButton("Clear finished")
        for b in (self.start_button, self.stop_button, self.cancel_button, self.retry_button,
                  self.remove_button, self.clear_button):
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            row.addWidget(b)
        row.addStretch(1)
        lay.addLayout(row)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop_after_current)
        self.cancel_button.clicked.connect(self.cancel_selected)
        self.retry_button.clicked.connect(lambda: self._on_selected(self.queue.retry))
        self.remove_button.clicked.connect(lambda: self._on_selected(self.queue.remove))
        self.clear_button.clicked.connect(self._clear_finished)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.refresh()

    # ------------------------------------------------------------------ editing
    def add(self, job: RenderJob) -> QueuedJob:
        entry = self.queue.add(job)
        self.refresh()
        return entry

    def selected(self) -> QueuedJob | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        item = self.table.item(rows[0].row(), 0)
        try:
            return self.queue.get(int(item.text())) if item is not None else None
        except KeyError:
            return None

    def _on_selected(self, action: Callable[[int], None]) -> None:
        entry = self.selected()
        if entry is None:
            return
        try:
            action(entry.id)
        except RestorerError as exc:
            show_error(self, exc, "the render queue")
        self.refresh()

    def _clear_finished(self) -> None:
        self.queue.clear_finished()
        self.refresh()

    def cancel_selected(self) -> None:
        entry = self.selected()
        if entry is None:
            return
        if entry.status == RUNNING and self.worker is not None:
            self.worker.quit()
        else:
            self.queue.cancel_waiting(entry.id)
        self.refresh()

    # ------------------------------------------------------------------ running
    @property
    def running(self) -> bool:
        return self.worker is not None

    def start(self) -> None:
        """Run waiting jobs one after another until none is left (or Stop after this job)."""
        self._stop_after = False
        if self.worker is None and self.queue.next_waiting() is not None:
            self._run_next()
        self._update_buttons()

    def stop_after_current(self) -> None:
        self._stop_after = True
        self._update_buttons()

    def _run_next(self) -> None:
        entry = self.queue.next_waiting()
        colouriser = (self.colouriser_factory(entry.job) if self.colouriser_factory and entry
                      else None)

        def write_record(job: RenderJob, out: Path) -> None:
            meta = getattr(colouriser, "meta", None)
            record_export(job, out, model=meta)

        worker = Worker(self.queue.run_next, colouriser=colouriser, on_done=write_record,
                        pass_cancel=True)
        worker.yielded.connect(lambda _value: self.refresh())
        worker.errored.connect(lambda exc: show_error(self, exc, "the render queue"))
        worker.finished.connect(lambda w=worker: self._on_finished(w))
        self.worker = worker
        worker.start()

    def _on_finished(self, worker: Worker) -> None:
        if worker is not self.worker:
            return
        self.worker = None
        done = [j for j in self.queue.jobs if j.status not in (WAITING, RUNNING)]
        if done:
            self.job_finished.emit(done[-1])
        self.refresh()
        if not self._stop_after and self.queue.next_waiting() is not None:
            self._run_next()
        self._update_buttons()

    def shutdown(self) -> None:
        if self.worker is not None:
            self.worker.quit()
            self.worker.done.wait(30)

    # ------------------------------------------------------------------ view
    def refresh(self) -> None:
        jobs = self.queue.jobs
        keep = self.selected()
        self.table.setRowCount(len(jobs))
        for r, j in enumerate(jobs):
            cells = (str(j.id), j.label, f"{j.status}: {j.message}" if j.message else j.status,
                     f"{j.fraction * 100:.0f} %")
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c == 1:
                    item.setToolTip(f"{j.job.src}\n→ {j.job.dst}")
                self.table.setItem(r, c, item)
            if keep is not None and keep.id == j.id:
                self.table.selectRow(r)
        self._update_buttons()

    def _update_buttons(self) -> None:
        entry = self.selected()
        waiting = self.queue.next_waiting() is not None
        self.start_button.setEnabled(self.worker is None and waiting)
        self.stop_button.setEnabled(self.worker is not None and not self._stop_after)
        self.cancel_button.setEnabled(entry is not None and entry.status in (WAITING, RUNNING))
        self.retry_button.setEnabled(entry is not None and entry.status in ("failed",
                                                                            "cancelled"))
        self.remove_button.setEnabled(entry is not None and entry.status != RUNNING)
