"""The controls panel: chroma strength, working-size preset, temporal stabilisation, model card.

Widgets write to the plain :class:`~restorer.gui.state.ViewState` and follow its changes.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from restorer.checkpoint import ModelMeta
from restorer.gui.state import PRESET_LABELS, PRESETS, ViewState, preset_size


class CommitSpinBox(QSpinBox):
    """A spin box that says when the operator is done typing in it (Enter, Return or Escape).

    A spin box with the focus keeps the arrow keys, Home/End and letters for its text, so the
    desk's transport shortcuts stay dead until the focus moves; ``committed`` lets the window
    hand the focus back to the viewer. Leaving by mouse or Tab moves the focus already.
    """

    committed = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        super().keyPressEvent(event)
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Escape):
            self.committed.emit()


def _percent_control(maximum: int, tip: str) -> tuple[QSlider, CommitSpinBox, QWidget]:
    """A 0..``maximum`` % slider with a spin box beside it, and the row holding both."""
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setRange(0, maximum)
    slider.setPageStep(10)
    slider.setToolTip(tip)
    spin = CommitSpinBox()
    spin.setRange(0, maximum)
    spin.setSuffix(" %")
    spin.setMinimumWidth(78)
    row = QWidget()
    lay = QHBoxLayout(row)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.addWidget(slider, 1)
    lay.addWidget(spin)
    return slider, spin, row


# Friendlier names for the validation figures a model file carries ("" hides one).
_METRIC_LABELS = {"val_delta_e": "Val. ΔE2000", "val_psnr": "Val. PSNR (dB)",
                  "val_colourfulness_ratio": "Colourfulness", "val_l1": ""}

class ControlsPanel(QWidget):
    """Right-hand panel of the desk."""

    editing_done = Signal()  # Enter (or Escape) in a number field: give the keys back

    def __init__(self, state: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.setMinimumWidth(270)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 4, 8, 8)
        outer.setSpacing(10)

        look = QGroupBox("Colour")
        form = QFormLayout(look)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        self.chroma, self.chroma_spin, chroma_row = _percent_control(
            200, "Chroma strength: 0% grey, 100% as predicted, 200% doubled. "
                 "Re-merges the cached colour; the network is not run again.")
        form.addRow("Chroma", chroma_row)

        self.preset = QComboBox()
        for p in PRESETS:
            self.preset.addItem(PRESET_LABELS[p], p)
        self.preset.setToolTip("Working size of the network: colour detail against speed")
        form.addRow("Quality", self.preset)

        self.stabilise, self.stabilise_spin, self.stabilise_row = _percent_control(
            100, "Temporal stabilisation: damps colour flicker between frames; "
                 "the preview shows it when playing or stepping")
        form.addRow("Stabilise", self.stabilise_row)
        outer.addWidget(look)

        card = QGroupBox("Model")
        lay = QVBoxLayout(card)
        self.model_title = QLabel("No model")
        self.model_title.setObjectName("cardTitle")
        self.model_title.setWordWrap(True)
        self.model_notice = QLabel("")
        self.model_notice.setObjectName("notice")
        self.model_notice.setWordWrap(True)
        self.model_notice.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.model_notice.hide()
        self.model_card = QLabel("")
        self.model_card.setWordWrap(True)
        self.model_card.setTextFormat(Qt.TextFormat.RichText)
        self.model_card.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.model_card.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.model_title)
        lay.addWidget(self.model_notice)
        lay.addWidget(self.model_card)
        outer.addWidget(card)

        self.info = QGroupBox("Episode")
        il = QVBoxLayout(self.info)
        self.episode = QLabel("No episode")
        self.episode.setWordWrap(True)
        self.episode.setTextFormat(Qt.TextFormat.RichText)
        self.episode_notes = QLabel("")
        self.episode_notes.setObjectName("notice")
        self.episode_notes.setWordWrap(True)
        self.episode_notes.hide()
        il.addWidget(self.episode)
        il.addWidget(self.episode_notes)
        outer.addWidget(self.info)
        outer.addStretch(1)

        self.chroma.valueChanged.connect(lambda v: state.set_chroma(v / 100))
        self.chroma_spin.valueChanged.connect(lambda v: state.set_chroma(v / 100))
        self.preset.currentIndexChanged.connect(
            lambda i: state.set_preset(self.preset.itemData(i)))
        self.stabilise.valueChanged.connect(lambda v: state.set_stabilise(v / 100))
        self.stabilise_spin.valueChanged.connect(lambda v: state.set_stabilise(v / 100))
        self.chroma_spin.committed.connect(self.editing_done)
        self.stabilise_spin.committed.connect(self.editing_done)
        state.changed.connect(self._on_state)
        self._sync()

    def _sync(self) -> None:
        s = self.state
        for w, v in ((self.chroma, s.chroma), (self.chroma_spin, s.chroma),
                     (self.stabilise, s.stabilise), (self.stabilise_spin, s.stabilise)):
            if w.value() != round(v * 100):
                w.blockSignals(True)
                w.setValue(round(v * 100))
                w.blockSignals(False)
        i = self.preset.findData(s.preset)
        if i != self.preset.currentIndex():
            self.preset.blockSignals(True)
            self.preset.setCurrentIndex(i)
            self.preset.blockSignals(False)
        for k, p in enumerate(PRESETS):
            self.preset.setItemText(k, f"{PRESET_LABELS[p]}  ({preset_size(p, s.model_size)} px)")

    def _on_state(self, name: str, value: object) -> None:
        if name in ("chroma", "stabilise", "preset", "model_size"):
            self._sync()

    def show_loading(self, path: str = "") -> None:
        """A model is being read (seconds for the default at start-up): say so, not "No model"."""
        self.model_title.setText("Loading model…")
        self.model_card.setText(html.escape(Path(path).name) if path else "")

    def show_model_notice(self, text: str) -> None:
        """A line above the model card (a model that failed, and what is used instead);
        empty hides it."""
        self.model_notice.setText(text)
        self.model_notice.setVisible(bool(text))

    def show_source_notes(self, notes: Sequence[str]) -> None:
        """What the operator must know about the episode (e.g. that it is already in colour);
        stays until another episode is opened."""
        self.episode_notes.setText("\n".join(f"Note: {n[:1].upper()}{n[1:]}." for n in notes))
        self.episode_notes.setVisible(bool(notes))

    def show_model(self, meta: ModelMeta | None, path: str = "", device: str = "") -> None:
        if meta is None:
            self.model_title.setText("No model")
            self.model_card.setText("Open a model file (.safetensors) from the File menu.")
            return
        self.model_title.setText(meta.name)
        e = html.escape
        rows = []
        if meta.description:
            rows.append(f"<p>{e(meta.description)}</p>")
        arch = dict(meta.arch) if isinstance(meta.arch, dict) else {}
        name = arch.pop("arch", "?")
        arch.pop("in_ch", None)
        arch.pop("out_ch", None)
        arch_text = " ".join([{"unet": "U-Net"}.get(str(name), str(name)),
                              *(f"{k} {v}" for k, v in arch.items())])
        facts = [("Network", arch_text), ("Trained at", f"{meta.working_size} px"),
                 ("Device", device)]
        training = meta.training if isinstance(meta.training, dict) else {}
        data = training.get("sources") or training.get("data")
        if data:
            facts.append(("Training data", ", ".join(map(str, data))
                          if isinstance(data, list) else str(data)))
        for k, v in list((meta.metrics or {}).items())[:6]:
            label = _METRIC_LABELS.get(str(k), str(k).replace("_", " "))
            if label:
                facts.append((label, f"{v:.3g}" if isinstance(v, float) else str(v)))
        if path:
            facts.append(("File", Path(path).name))
        rows.append("<table cellspacing='0' cellpadding='1'>" + "".join(
            f"<tr><td style='color:#8c8c8c; padding-right:8px'>{e(k)}</td><td>{e(str(v))}</td>"
            "</tr>" for k, v in facts if v) + "</table>")
        self.model_card.setText("".join(rows))

    def show_episode(self, text: str) -> None:
        self.episode.setText(text)
