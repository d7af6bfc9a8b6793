"""The timeline: a timecode ruler and a scrubber with in/out marks, cuts and the playhead.

It draws what :class:`restorer.gui.state.ViewState` holds and forwards the mouse to it:

* click or drag on the track moves the playhead; the wheel steps frames;
* the in and out marks have handles: drag one to move that mark;
* Ctrl+wheel (or :meth:`zoom`) zooms around the pointer, Shift+wheel scrolls, and a zoomed view
  follows the playhead when it leaves the window.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPainterPath, QPen, QWheelEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from restorer.gui import theme
from restorer.gui.state import ViewState

PAD = 10  # horizontal padding so frame 0 and the last frame can both be grabbed
RULER = 14  # height of the timecode ruler above the track
HANDLE_PX = 6  # how near (pixels) a press must be to a mark to grab its handle
MIN_SPAN = 20  # the closest zoom shows this many frames
# Ruler steps in frames' worth of seconds (and single frames once zoomed right in).
_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600)


class Timeline(QWidget):
    """Scrubber with a ruler: click or drag to move the playhead, drag a mark's handle to move
    it, Ctrl+wheel to zoom."""

    scrubbed = Signal(int)

    def __init__(self, state: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.setMinimumHeight(46 + RULER)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setToolTip("Scrub: click or drag. Drag the in/out handles to move them. "
                        "Wheel: step frames; Ctrl+wheel: zoom; Shift+wheel: scroll.")
        self.setMouseTracking(True)
        self._dragging: str | None = None  # "playhead", "in" or "out"
        self.view_start = 0.0  # first frame shown (fractional while zoomed)
        self.view_span = 0.0  # frames across the track; 0: the whole episode
        state.changed.connect(self._on_state)

    def _on_state(self, name: str, value: object) -> None:
        if name == "episode":
            self.view_start, self.view_span = 0.0, 0.0
        if name == "frame":
            self._follow()
        if name in ("frame", "marks", "cuts", "episode", "shots"):
            self.update()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(800, 46 + RULER)

    # ------------------------------------------------------------------ view
    @property
    def span(self) -> float:
        """Frames across the track (the whole episode unless zoomed)."""
        whole = float(max(1, self.state.frame_count - 1))
        return whole if self.view_span <= 0 else min(self.view_span, whole)

    @property
    def zoomed(self) -> bool:
        return self.span < max(1, self.state.frame_count - 1)

    def zoom(self, factor: float, around: float | None = None) -> None:
        """Zoom in (``factor`` > 1) or out about frame ``around`` (the playhead); a factor of 0
        shows the whole episode."""
        whole = float(max(1, self.state.frame_count - 1))
        centre = float(self.state.frame if around is None else around)
        old = self.span
        new = whole if factor <= 0 else max(min(MIN_SPAN, whole), min(whole, old / factor))
        frac = (centre - self.view_start) / old if old > 0 else 0.5
        self.view_span = 0.0 if new >= whole else new
        self.view_start = centre - frac * new
        self._clamp_view()
        self.update()

    def pan(self, frames: float) -> None:
        self.view_start += frames
        self._clamp_view()
        self.update()

    def _clamp_view(self) -> None:
        whole = float(max(1, self.state.frame_count - 1))
        self.view_start = max(0.0, min(whole - self.span, self.view_start))

    def _follow(self) -> None:
        """Page the zoomed view along with a playhead that left it."""
        if not self.zoomed:
            return
        n = self.state.frame
        if not self.view_start <= n <= self.view_start + self.span:
            self.view_start = n - 0.1 * self.span if n > self.view_start else n - 0.9 * self.span
            self._clamp_view()

    # ------------------------------------------------------------------ geometry
    def _track(self) -> QRectF:
        return QRectF(PAD, RULER + 14, max(1.0, self.width() - 2 * PAD),
                      self.height() - RULER - 22)

    def x_of(self, n: float) -> float:
        t = self._track()
        return t.left() + t.width() * ((n - self.view_start) / self.span)

    def frame_at(self, x: float) -> int:
        t = self._track()
        return self.state.clamp(round(self.view_start + (x - t.left()) / t.width() * self.span))

    def _handle_at(self, x: float) -> str | None:
        """"in" or "out" when ``x`` is on that mark's handle."""
        s = self.state
        best: tuple[float, str] | None = None
        for name, n in (("in", s.in_point), ("out", s.out_point)):
            if n is not None:
                d = abs(self.x_of(n) - x)
                if d <= HANDLE_PX and (best is None or d < best[0]):
                    best = (d, name)
        return best[1] if best else None

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
        p.save()
        p.setClipRect(QRectF(0, 0, self.width(), self.height()))
        self._ruler(p, t)
        self._shot_settings(p, t)
        if s.has_marks:
            a, b = s.export_range()
            x0, x1 = self.x_of(a), self.x_of(b - 1)
            band = QColor(255, 255, 255, 34)  # neutral: nothing tinted near the picture
            p.fillRect(QRectF(x0, t.top() + 1, max(2.0, x1 - x0), t.height() - 2), band)
            p.setPen(QPen(QColor(theme.MARK_IN_OUT), 2))
            if s.in_point is not None:
                self._handle(p, t, x0, +1)
            if s.out_point is not None:
                self._handle(p, t, x1, -1)
        p.setPen(QPen(QColor(theme.CUT), 1.5))
        for c in s.cuts:
            x = self.x_of(c)
            if t.left() - 1 <= x <= t.right() + 1:
                p.drawLine(QPointF(x, t.top() + 2), QPointF(x, t.bottom() - 2))
        x = self.x_of(s.frame)
        if t.left() - 1 <= x <= t.right() + 1:
            p.setPen(QPen(QColor(theme.PLAYHEAD), 2))
            p.drawLine(QPointF(x, t.top() - 2), QPointF(x, t.bottom() + 3))
            head = QPainterPath()
            head.moveTo(x - 6, RULER + 2)
            head.lineTo(x + 6, RULER + 2)
            head.lineTo(x, RULER + 11)
            head.closeSubpath()
            p.fillPath(head, QColor(theme.PLAYHEAD))
        p.restore()

    def _handle(self, p: QPainter, t: QRectF, x: float, direction: int) -> None:
        p.drawLine(QPointF(x, t.top() - 4), QPointF(x, t.bottom()))
        grip = QPainterPath()
        grip.moveTo(x, t.top() - 5)
        grip.lineTo(x + direction * 7, t.top() - 5)
        grip.lineTo(x + direction * 7, t.top() + 3)
        grip.lineTo(x, t.top() + 8)
        grip.closeSubpath()
        p.fillPath(grip, QColor(theme.MARK_IN_OUT))

    def _shot_settings(self, p: QPainter, t: QRectF) -> None:
        """A thin bar under the track for each shot with its own chroma."""
        p.setPen(Qt.PenStyle.NoPen)
        for sh in self.state.shots:
            x0, x1 = self.x_of(sh.start), self.x_of(sh.end - 1)
            p.fillRect(QRectF(x0, t.bottom() - 3, max(2.0, x1 - x0), 3), QColor(120, 160, 200))

    def _ruler(self, p: QPainter, t: QRectF) -> None:
        s = self.state
        fps = max(1, round(s.fps))
        # The smallest step whose labels stay ~70 px apart: seconds, or frames zoomed right in.
        px_per_frame = t.width() / self.span
        step = next((k * fps for k in _STEPS_S if k * fps * px_per_frame >= 70),
                    _STEPS_S[-1] * fps)
        if step == fps:
            step = next((f for f in (1, 2, 5, 10) if f * px_per_frame >= 70), fps)
        font = QFont(p.font())
        font.setPointSizeF(7.5)
        p.setFont(font)
        first = int(self.view_start // step) * step
        n = first
        while n <= self.view_start + self.span:
            x = self.x_of(n)
            if x >= t.left() - 0.5:
                p.setPen(QPen(QColor("#5a5a5a"), 1))
                p.drawLine(QPointF(x, RULER - 4), QPointF(x, RULER + 2))
                p.drawLine(QPointF(x, t.bottom() - 5), QPointF(x, t.bottom() - 1))
                p.setPen(QColor(theme.TEXT_DIM))
                label = self._label(n, step, fps)
                p.drawText(QRectF(x + 3, 0, 90, RULER), Qt.AlignmentFlag.AlignLeft |
                           Qt.AlignmentFlag.AlignVCenter, label)
            n += step

    @staticmethod
    def _label(n: int, step: int, fps: int) -> str:
        secs = n // fps
        hms = f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
        return hms if step % fps == 0 else f"{hms}:{n % fps:02d}"

    # ------------------------------------------------------------------ input
    def mousePressEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        if e.button() != Qt.MouseButton.LeftButton or not self.state.loaded:
            return
        x = e.position().x()
        self._dragging = self._handle_at(x) or "playhead"
        if self._dragging == "playhead":
            self.scrubbed.emit(self.frame_at(x))

    def mouseMoveEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        x = e.position().x()
        if self._dragging == "playhead":
            self.scrubbed.emit(self.frame_at(x))
        elif self._dragging == "in":  # a handle stops at the other mark: both stay set
            out = self.state.out_point
            n = self.frame_at(x)
            self.state.mark_in(n if out is None else min(n, out))
        elif self._dragging == "out":
            in_ = self.state.in_point
            n = self.frame_at(x)
            self.state.mark_out(n if in_ is None else max(n, in_))
        else:
            shape = Qt.CursorShape.SizeHorCursor if self._handle_at(x) else \
                Qt.CursorShape.ArrowCursor
            self.setCursor(shape)

    def mouseReleaseEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        self._dragging = None

    def wheelEvent(self, e: QWheelEvent) -> None:  # noqa: N802
        if not self.state.loaded:
            return
        up = e.angleDelta().y() > 0 or e.angleDelta().x() > 0
        mods = e.modifiers()
        if mods & Qt.KeyboardModifier.ControlModifier:
            self.zoom(1.5 if up else 1 / 1.5, around=self.frame_at(e.position().x()))
        elif mods & Qt.KeyboardModifier.ShiftModifier:
            self.pan(-0.2 * self.span if up else 0.2 * self.span)
        else:
            step = -1 if up else 1
            self.scrubbed.emit(self.state.clamp(self.state.frame + step))
