"""The timeline: a scrubber over the whole episode with in/out marks, cuts and the playhead,
plus the transport row (buttons, timecode HH:MM:SS:FF and frame number).

It draws what :class:`restorer.gui.state.ViewState` holds and forwards the mouse to it.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPainterPath, QPen, QWheelEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from restorer.gui import theme
from restorer.gui.state import ViewState

PAD = 10  # horizontal padding so frame 0 and the last frame can both be grabbed


class Timeline(QWidget):
    """Scrubber slider: click or drag to move the playhead; the wheel steps frames."""

    scrubbed = Signal(int)

    def __init__(self, state: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.setMinimumHeight(46)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setToolTip("Scrub: click or drag. Wheel: step frames. I/O: in and out points.")
        self._dragging = False
        state.changed.connect(self._on_state)

    def _on_state(self, name: str, value: object) -> None:
        if name in ("frame", "marks", "cuts", "episode"):
            self.update()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(800, 46)

    # ------------------------------------------------------------------ geometry
    def _track(self) -> QRectF:
        return QRectF(PAD, 14, max(1.0, self.width() - 2 * PAD), self.height() - 22)

    def x_of(self, n: float) -> float:
        t = self._track()
        last = max(1, self.state.frame_count - 1)
        return t.left() + t.width() * (n / last)

    def frame_at(self, x: float) -> int:
        t = self._track()
        last = max(1, self.state.frame_count - 1)
        return self.state.clamp(round((x - t.left()) / t.width() * last))

    # ------------------------------------------------------------------ painting
    def paintEvent(self, event: object) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor(theme.PANEL))
        t = self._track()
        p.setPen(QPen(QColor(theme.BORDER), 1))
        p.setBrush(QColor(theme.FIELD))
        p.drawRoundedRect(t, 3, 3)
        s = self.state
        if not s.loaded:
            return
        self._ticks(p, t)
        if s.has_marks:
            a, b = s.export_range()
            x0, x1 = self.x_of(a), self.x_of(b - 1)
            band = QColor(255, 255, 255, 34)  # neutral: nothing tinted near the picture
            p.fillRect(QRectF(x0, t.top() + 1, max(2.0, x1 - x0), t.height() - 2), band)
            p.setPen(QPen(QColor(theme.MARK_IN_OUT), 2))
            if s.in_point is not None:
                p.drawLine(QPointF(x0, t.top() - 4), QPointF(x0, t.bottom()))
                p.drawLine(QPointF(x0, t.top() - 4), QPointF(x0 + 6, t.top() - 4))
            if s.out_point is not None:
                p.drawLine(QPointF(x1, t.top() - 4), QPointF(x1, t.bottom()))
                p.drawLine(QPointF(x1, t.top() - 4), QPointF(x1 - 6, t.top() - 4))
        p.setPen(QPen(QColor(theme.CUT), 1.5))
        for c in s.cuts:
            x = self.x_of(c)
            p.drawLine(QPointF(x, t.top() + 2), QPointF(x, t.bottom() - 2))
        x = self.x_of(s.frame)
        p.setPen(QPen(QColor(theme.PLAYHEAD), 2))
        p.drawLine(QPointF(x, t.top() - 2), QPointF(x, t.bottom() + 3))
        head = QPainterPath()
        head.moveTo(x - 6, 2)
        head.lineTo(x + 6, 2)
        head.lineTo(x, 11)
        head.closeSubpath()
        p.fillPath(head, QColor(theme.PLAYHEAD))

    def _ticks(self, p: QPainter, t: QRectF) -> None:
        s = self.state
        fps = max(1, round(s.fps))
        seconds = s.frame_count / fps
        step = 1
        for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800):
            if t.width() / max(1e-9, seconds / step) >= 60:
                break
        p.setPen(QPen(QColor("#4a4a4a"), 1))
        k = 0
        while k * step * fps < s.frame_count:
            x = self.x_of(k * step * fps)
            p.drawLine(QPointF(x, t.bottom() - 5), QPointF(x, t.bottom() - 1))
            k += 1

    # ------------------------------------------------------------------ input
    def mousePressEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        if e.button() == Qt.MouseButton.LeftButton and self.state.loaded:
            self._dragging = True
            self.scrubbed.emit(self.frame_at(e.position().x()))

    def mouseMoveEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        if self._dragging:
            self.scrubbed.emit(self.frame_at(e.position().x()))

    def mouseReleaseEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        self._dragging = False

    def wheelEvent(self, e: QWheelEvent) -> None:  # noqa: N802
        if self.state.loaded:
            step = -1 if e.angleDelta().y() > 0 else 1
            self.scrubbed.emit(self.state.clamp(self.state.frame + step))
