"""The Scopes panel: vectorscopes of the original and the colour frame, and a*/b* histograms.

It paints what :func:`restorer.scopes.measure` computes, only while the panel is visible, for
the frame on screen.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from restorer.gui import theme
from restorer.scopes import SKIN_LINE_DEG, TARGETS, Scopes, measure


class Vectorscope(QWidget):
    """A round vectorscope with the 75% bar targets and the skin-tone line."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.scopes: Scopes | None = None
        self._img: QImage | None = None
        self.setMinimumSize(150, 150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(210, 210)

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, w: int) -> int:  # noqa: N802
        return w

    def set_scopes(self, scopes: Scopes | None) -> None:
        self.scopes = scopes
        self._img = None
        if scopes is not None:
            v = scopes.vector
            # Phosphor look: the trace in light green-white on black.
            g = (v * 255).astype(np.uint8)
            rgba = np.stack([(g * 0.75).astype(np.uint8), g, (g * 0.8).astype(np.uint8),
                             np.where(g > 0, 255, 0).astype(np.uint8)], -1)
            rgba = np.ascontiguousarray(rgba)
            self._img = QImage(rgba.data, v.shape[1], v.shape[0], 4 * v.shape[1],
                               QImage.Format.Format_RGBA8888).copy()
        self.update()

    def paintEvent(self, event: object) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor(theme.PANEL))
        side = min(self.width(), self.height()) - 8
        r = QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)
        p.setPen(QPen(QColor(theme.BORDER), 1))
        p.setBrush(QColor("#0c0c0c"))
        p.drawEllipse(r)
        if self._img is not None:
            clip = QPainterPath()
            clip.addEllipse(r)
            p.setClipPath(clip)
            p.drawImage(r, self._img)
            p.setClipping(False)
        c = r.center()
        half = side / 2

        def at(cb: float, cr: float) -> QPointF:  # Cb, Cr in -0.5..0.5
            return QPointF(c.x() + cb * 2 * half, c.y() - cr * 2 * half)

        p.setPen(QPen(QColor(255, 255, 255, 40), 1))
        p.drawLine(QPointF(r.left(), c.y()), QPointF(r.right(), c.y()))
        p.drawLine(QPointF(c.x(), r.top()), QPointF(c.x(), r.bottom()))
        a = math.radians(SKIN_LINE_DEG)
        p.setPen(QPen(QColor(230, 170, 120, 110), 1, Qt.PenStyle.DashLine))
        p.drawLine(c, QPointF(c.x() + math.cos(a) * half, c.y() - math.sin(a) * half))
        font = QFont(p.font())
        font.setPointSizeF(7.5)
        p.setFont(font)
        for name, (cb, cr) in TARGETS.items():
            q = at(cb, cr)
            p.setPen(QPen(QColor(200, 120, 120, 170), 1))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(QRectF(q.x() - 4, q.y() - 4, 8, 8))
            p.drawText(QPointF(q.x() + 6, q.y() + 3), name)
        p.setPen(QColor(theme.TEXT_DIM))
        p.drawText(QRectF(4, 2, self.width() - 8, 14), Qt.AlignmentFlag.AlignLeft, self.title)
        if self.scopes is not None:
            p.drawText(QRectF(4, self.height() - 16, self.width() - 8, 14),
                       Qt.AlignmentFlag.AlignRight, f"C* {self.scopes.mean_chroma:.1f}")


class ChromaHistogram(QWidget):
    """a* and b* histograms: the colour frame filled, the original as a line."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.colour: Scopes | None = None
        self.original: Scopes | None = None
        self.setMinimumHeight(110)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(210, 130)

    def set_scopes(self, original: Scopes | None, colour: Scopes | None) -> None:
        self.original, self.colour = original, colour
        self.update()

    def paintEvent(self, event: object) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor(theme.PANEL))
        rows = (("a*", "hist_a", QColor(200, 90, 130)), ("b*", "hist_b", QColor(200, 180, 70)))
        h = (self.height() - 8) / 2
        for k, (label, attr, tint) in enumerate(rows):
            box = QRectF(22, 4 + k * h, self.width() - 26, h - 6)
            p.setPen(QPen(QColor(theme.BORDER), 1))
            p.setBrush(QColor("#0c0c0c"))
            p.drawRect(box)
            p.setPen(QPen(QColor(255, 255, 255, 40), 1))
            p.drawLine(QPointF(box.center().x(), box.top()), QPointF(box.center().x(),
                                                                   box.bottom()))
            p.setPen(QColor(theme.TEXT_DIM))
            p.drawText(QRectF(0, box.top(), 20, box.height()), Qt.AlignmentFlag.AlignCenter,
                       label)
            peak = max([float(np.max(getattr(s, attr))) for s in (self.colour, self.original)
                        if s is not None] or [1.0])
            # sqrt: the grey peak at 0 would flatten every other bin.
            for s, filled in ((self.colour, True), (self.original, False)):
                if s is None:
                    continue
                hist = np.sqrt(getattr(s, attr) / max(peak, 1e-9))
                path = QPainterPath(QPointF(box.left(), box.bottom()))
                n = len(hist)
                for i, v in enumerate(hist):
                    x = box.left() + box.width() * (i + 0.5) / n
                    path.lineTo(QPointF(x, box.bottom() - float(v) * box.height()))
                path.lineTo(QPointF(box.right(), box.bottom()))
                if filled:
                    fill = QColor(tint)
                    fill.setAlpha(150)
                    p.fillPath(path, fill)
                else:
                    p.setPen(QPen(QColor(235, 235, 235, 200), 1, Qt.PenStyle.DashLine))
                    p.setBrush(Qt.BrushStyle.NoBrush)
                    p.drawPath(path)


class ScopesPanel(QWidget):
    """Original and colour vectorscopes, and the a*/b* histograms of both."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 6)
        self.original_scope = Vectorscope("Original")
        self.colour_scope = Vectorscope("Colour")
        self.histogram = ChromaHistogram()
        legend = QLabel("Histograms: colour filled, original dashed; ±100 a*/b*")
        legend.setProperty("dim", True)
        legend.setWordWrap(True)
        lay.addWidget(self.original_scope)
        lay.addWidget(self.colour_scope)
        lay.addWidget(self.histogram)
        lay.addWidget(legend)
        lay.addStretch(1)
        self.frame: int | None = None
        self.original: Scopes | None = None
        self.colour: Scopes | None = None

    def show_frame(self, n: int, grey: np.ndarray | None, rgb: np.ndarray | None) -> None:
        """Measure and show frame ``n`` (skipped while the panel is hidden)."""
        if not self.isVisible():
            self.frame = None  # measured again once shown
            return
        if grey is not None and (self.frame != n or self.original is None):
            self.original = measure(grey)
        self.colour = measure(rgb) if rgb is not None else None
        self.frame = n
        self.original_scope.set_scopes(self.original)
        self.colour_scope.set_scopes(self.colour)
        self.histogram.set_scopes(self.original, self.colour)
