"""The Shots panel: the shot under the playhead, its own chroma strength, and the shot list.

Shots come from the cuts the desk's scene scan finds. The list jumps to a shot when a row is
clicked; the strength set here is stored per shot in :class:`~restorer.gui.state.ViewState`,
shown by the preview and used by export. Undo takes a setting back (Ctrl+Z).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from restorer.gui.controls import _percent_control
from restorer.gui.state import ViewState
from restorer.shots import shot_starts

Timecode = Callable[[int], str]


class ShotsPanel(QGroupBox):
    """Per-shot chroma for the shot under the playhead, and a list of every shot."""

    editing_done = Signal()

    def __init__(self, state: ViewState, parent: QWidget | None = None) -> None:
        super().__init__("Shot", parent)
        self.state = state
        self.timecode: Timecode = lambda n: str(n)
        lay = QVBoxLayout(self)
        self.where = QLabel("No episode")
        self.where.setWordWrap(True)
        lay.addWidget(self.where)
        form = QFormLayout()
        self.own = QCheckBox("Own chroma for this shot")
        self.own.setToolTip("Give this shot a chroma strength of its own; the other shots keep "
                            "the episode's. Saved with the episode and used by export.")
        form.addRow(self.own)
        self.chroma, self.chroma_spin, self.chroma_row = _percent_control(
            200, "This shot's chroma strength: 0% grey, 100% as predicted, 200% doubled")
        form.addRow("Shot chroma", self.chroma_row)
        lay.addLayout(form)

        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["#", "In", "Frames", "Chroma"])
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the transport
        self.table.setMinimumHeight(120)
        head = self.table.horizontalHeader()
        head.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        head.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.setToolTip("Every shot found by the scene scan; click one to go to it")
        lay.addWidget(self.table, 1)

        self.own.toggled.connect(self._on_own)
        self.chroma.valueChanged.connect(self._on_value)
        self.chroma_spin.valueChanged.connect(self._on_value)
        self.chroma_spin.committed.connect(self.editing_done)
        self.table.cellClicked.connect(self._on_row)
        state.changed.connect(self._on_state)
        self._row_starts: list[int] = []
        self._fill_table()
        self._sync()

    # ------------------------------------------------------------------ input
    def _on_own(self, on: bool) -> None:
        s = self.state
        s.set_shot_chroma(s.chroma if on else None)
        self.editing_done.emit()

    def _on_value(self, v: int) -> None:
        if self.own.isChecked():
            self.state.set_shot_chroma(v / 100)

    def _on_row(self, row: int, _col: int) -> None:
        if 0 <= row < len(self._row_starts):
            self.state.set_speed(0.0)
            self.state.set_frame(self._row_starts[row])

    # ------------------------------------------------------------------ state
    def _on_state(self, name: str, _value: object) -> None:
        if name in ("cuts", "episode", "shots"):
            self._fill_table()
        if name in ("frame", "cuts", "episode", "shots", "chroma"):
            self._sync()

    def _sync(self) -> None:
        s = self.state
        if not s.loaded:
            self.where.setText("No episode")
            for w in (self.own, self.chroma_row):
                w.setEnabled(False)
            return
        a, b = s.shot()
        self.where.setText(f"Shot {s.shot_number()} of {s.shot_count} · "
                           f"{self.timecode(a)} – {self.timecode(b - 1)} ({b - a} frames)")
        own = s.shot_setting()
        value = own if own is not None else s.chroma
        self.own.setEnabled(True)
        self.own.blockSignals(True)
        self.own.setChecked(own is not None)
        self.own.blockSignals(False)
        self.chroma_row.setEnabled(own is not None)
        for w in (self.chroma, self.chroma_spin):
            if w.value() != round(value * 100):
                w.blockSignals(True)
                w.setValue(round(value * 100))
                w.blockSignals(False)
        row = s.shot_number() - 1
        if row != self.table.currentRow() and row < self.table.rowCount():
            self.table.selectRow(row)

    def _fill_table(self) -> None:
        s = self.state
        starts = shot_starts(s.cuts) if s.loaded else []
        self._row_starts = starts
        self.table.setRowCount(len(starts))
        for row, a in enumerate(starts):
            b = s.shot(a)[1]
            own = s.shot_setting(a)
            cells = (str(row + 1), self.timecode(a), str(b - a),
                     f"{own * 100:.0f} %" if own is not None else "episode")
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col != 1:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight |
                                          Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, col, item)
