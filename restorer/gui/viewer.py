"""The viewer: original and colour panes with one shared zoom and pan, so they stay in step.

Modes: side by side, a split wipe with a draggable divider, original only, colour only.
Both panes are painted by one widget from one transform (zoom and the image point at the pane
centre), which is what keeps them synchronised: there is nothing to keep in sync.

While scrubbing, the original pane takes decoded frames on their own (:meth:`Viewer.set_original`)
and a colour frame always arrives with its own original (:meth:`Viewer.set_frames`), so the
colour pane never changes to a frame other than the original's. The wipe, one picture of two
halves, paints the colour frame beside the original it came with.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter, QPen, QWheelEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from restorer.gui import theme

MIN_ZOOM, MAX_ZOOM = 0.05, 32.0
GAP = 2  # pixels between the side-by-side panes


def to_qimage(frame: np.ndarray) -> QImage:
    """uint8 grey ``(H, W)`` or RGB ``(H, W, 3)`` to a QImage that owns a copy of the pixels."""
    frame = np.ascontiguousarray(frame)
    h, w = frame.shape[:2]
    if frame.ndim == 2:
        img = QImage(frame.data, w, h, frame.strides[0], QImage.Format.Format_Grayscale8)
    else:
        img = QImage(frame.data, w, h, frame.strides[0], QImage.Format.Format_RGB888)
    return img.copy()


class Viewer(QWidget):
    """Paints the original and colour frames according to the viewer mode."""

    zoom_changed = Signal(float)  # effective zoom, 1.0 = one image pixel per screen pixel
    content_changed = Signal()  # a pane got a new picture (see frame, colour_frame)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.mode = "side"
        self.original: np.ndarray | None = None
        self.colour: np.ndarray | None = None
        self.frame: int | None = None  # the original pane's frame
        self.colour_frame: int | None = None  # the colour pane's frame
        # Request order of the picture in the original pane: a later-finishing older request
        # never replaces it (see set_original).
        self.stamp = 0
        self._orig_img: QImage | None = None
        self._pair_img: QImage | None = None  # the original that came with the colour frame
        self._colour_img: QImage | None = None
        self._fit = True
        self._zoom = 1.0
        self._centre = QPointF(0, 0)  # image coordinates shown at each pane's centre
        self.divider = 0.5  # wipe position, fraction of the width
        self._drag: str | None = None
        self._last = QPointF()
        self.placeholder = "Open an episode (Ctrl+O) or drop a video file here"

    # ------------------------------------------------------------------ content
    def set_frames(self, n: int, original: np.ndarray, colour: np.ndarray,
                   stamp: int = 0) -> None:
        """Show frame ``n`` in both panes: a colour picture always comes with its own original,
        so the panes never pair a colour frame with another frame's original."""
        self._set_original(n, original)
        self.colour_frame, self.colour = n, colour
        self._pair_img, self._colour_img = self._orig_img, to_qimage(colour)
        self.stamp = max(self.stamp, stamp)
        self.update()
        self.content_changed.emit()

    def set_original(self, n: int, original: np.ndarray, stamp: int) -> bool:
        """Show frame ``n`` in the original pane only, unless what is there came from a newer
        request than ``stamp`` (the pictures of a drag finish out of order). True if shown."""
        if stamp <= self.stamp and self.original is not None:
            return False
        self.stamp = stamp
        self._set_original(n, original)
        self.update()
        self.content_changed.emit()
        return True

    def _set_original(self, n: int, original: np.ndarray) -> None:
        new_size = self.original is None or self.original.shape[:2] != original.shape[:2]
        self.frame, self.original = n, original
        self._orig_img = to_qimage(original)
        if new_size:
            self._centre = QPointF(original.shape[1] / 2, original.shape[0] / 2)

    def set_colour(self, colour: np.ndarray) -> None:
        """A new picture of the frame the colour pane already shows (a re-merge)."""
        self.colour = colour
        self._colour_img = to_qimage(colour)
        self.update()
        self.content_changed.emit()

    def clear(self) -> None:
        self.frame = self.colour_frame = self.original = self.colour = None
        self._orig_img = self._pair_img = self._colour_img = None
        self.stamp = 0
        self.update()
        self.content_changed.emit()

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self.update()

    # ------------------------------------------------------------------ zoom and pan
    def panes(self) -> list[QRectF]:
        r = QRectF(self.rect())
        if self.mode == "side":
            half = (r.width() - GAP) / 2
            return [QRectF(r.left(), r.top(), half, r.height()),
                    QRectF(r.left() + half + GAP, r.top(), half, r.height())]
        return [r]

    def _image_size(self) -> tuple[int, int]:
        if self.original is None:
            return (1, 1)
        return self.original.shape[1], self.original.shape[0]

    def scale(self) -> float:
        if not self._fit:
            return self._zoom
        w, h = self._image_size()
        pane = self.panes()[0]
        margin = 0.98
        return max(MIN_ZOOM, min(pane.width() / w, pane.height() / h) * margin)

    def fit(self) -> None:
        self._fit = True
        w, h = self._image_size()
        self._centre = QPointF(w / 2, h / 2)
        self.zoom_changed.emit(self.scale())
        self.update()

    def one_to_one(self) -> None:
        self.set_zoom(1.0)

    def set_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Zoom about ``anchor`` (widget coordinates; default the pane centre)."""
        zoom = max(MIN_ZOOM, min(MAX_ZOOM, zoom))
        if anchor is not None:
            pane = self._pane_at(anchor)
            before = self._to_image(anchor, pane)
            self._fit, self._zoom = False, zoom
            after = self._to_image(anchor, pane)
            self._centre += before - after
        else:
            self._fit, self._zoom = False, zoom
        self.zoom_changed.emit(zoom)
        self.update()

    def _pane_at(self, pos: QPointF) -> QRectF:
        for pane in self.panes():
            if pane.contains(pos):
                return pane
        return self.panes()[0]

    def _to_image(self, pos: QPointF, pane: QRectF) -> QPointF:
        s = self.scale()
        return self._centre + (pos - pane.center()) / s

    def image_rect(self, pane: QRectF) -> QRectF:
        """Where the image lands inside ``pane`` under the shared transform."""
        s = self.scale()
        w, h = self._image_size()
        top_left = pane.center() - self._centre * s
        return QRectF(top_left.x(), top_left.y(), w * s, h * s)

    # ------------------------------------------------------------------ painting
    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(960, 420)

    def paintEvent(self, event: object) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(theme.VIEWER))
        if self._orig_img is None:
            p.setPen(QColor(theme.TEXT_DIM))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
            return
        smooth = abs(self.scale() - round(self.scale())) > 1e-6 or self.scale() < 1
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        panes = self.panes()
        colour = self._colour_img
        if self.mode == "side":
            self._paint_pane(p, panes[0], self._orig_img, "ORIGINAL")
            self._paint_pane(p, panes[1], colour, "COLOUR")
        elif self.mode == "original" or (self.mode == "wipe" and colour is None):
            self._paint_pane(p, panes[0], self._orig_img, "ORIGINAL")
        elif self.mode == "colour":
            self._paint_pane(p, panes[0], colour, "COLOUR")
        else:
            self._paint_wipe(p, panes[0])
        p.end()

    def _paint_pane(self, p: QPainter, pane: QRectF, img: QImage | None, caption: str,
                    clip: QRectF | None = None) -> None:
        if img is None:  # the first colour frame of an episode is still being made
            p.setPen(QColor(theme.TEXT_DIM))
            p.drawText(pane, Qt.AlignmentFlag.AlignCenter, "Colourising…")
        else:
            p.save()
            p.setClipRect(clip or pane)
            p.drawImage(self.image_rect(pane), img)
            p.restore()
        if clip is None:
            self._caption(p, self._caption_area(pane), caption)

    def _paint_wipe(self, p: QPainter, pane: QRectF) -> None:
        x = pane.left() + pane.width() * self.divider
        left = QRectF(pane.left(), pane.top(), x - pane.left(), pane.height())
        right = QRectF(x, pane.top(), pane.right() - x, pane.height())
        # One picture of two halves: both come from one frame (the colour's own original), even
        # while a drag has moved the original pane on.
        assert self._pair_img is not None and self._colour_img is not None  # paintEvent checked
        self._paint_pane(p, pane, self._pair_img, "", clip=left)
        self._paint_pane(p, pane, self._colour_img, "", clip=right)
        p.setPen(QPen(QColor(theme.PLAYHEAD), 1.5))
        p.drawLine(QPointF(x, pane.top()), QPointF(x, pane.bottom()))
        p.setBrush(QColor(theme.PLAYHEAD))
        p.drawEllipse(QPointF(x, pane.center().y()), 5, 5)
        area = self._caption_area(pane)
        self._caption(p, area.intersected(left), "ORIGINAL")
        self._caption(p, area.intersected(right), "COLOUR", right_align=True)

    def _caption_area(self, pane: QRectF) -> QRectF:
        """Captions sit in the picture's corner (or the pane's, when zoomed past it)."""
        area = self.image_rect(pane).intersected(pane)
        return area if area.width() > 0 and area.height() > 0 else pane

    def _caption(self, p: QPainter, pane: QRectF, text: str, right_align: bool = False) -> None:
        if not text or pane.width() < 80:
            return
        p.save()
        f = QFont(self.font())
        f.setPointSizeF(8.5)
        f.setBold(True)
        f.setLetterSpacing(QFont.SpacingType.AbsoluteSpacing, 1.2)
        p.setFont(f)
        w = p.fontMetrics().horizontalAdvance(text) + 14
        x = pane.right() - w - 8 if right_align else pane.left() + 8
        box = QRectF(x, pane.top() + 8, w, 20)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(0, 0, 0, 150))
        p.drawRoundedRect(box, 3, 3)
        p.setPen(QColor(theme.TEXT))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        p.restore()

    # ------------------------------------------------------------------ mouse
    def _divider_x(self) -> float:
        pane = self.panes()[0]
        return pane.left() + pane.width() * self.divider

    def mousePressEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        if e.button() != Qt.MouseButton.LeftButton or self.original is None:
            return super().mousePressEvent(e)
        pos = e.position()
        if self.mode == "wipe" and abs(pos.x() - self._divider_x()) < 8:
            self._drag = "divider"
        else:
            self._drag = "pan"
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        self._last = pos

    def mouseMoveEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        pos = e.position()
        if self._drag == "divider":
            pane = self.panes()[0]
            self.divider = max(0.0, min(1.0, (pos.x() - pane.left()) / max(1.0, pane.width())))
            self.update()
        elif self._drag == "pan":
            if self._fit:
                self._zoom, self._fit = self.scale(), False
            self._centre -= (pos - self._last) / self.scale()
            self._last = pos
            self.update()
        elif self.mode == "wipe" and self.original is not None:
            near = abs(pos.x() - self._divider_x()) < 8
            self.setCursor(Qt.CursorShape.SplitHCursor if near else Qt.CursorShape.ArrowCursor)

    def mouseReleaseEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        self._drag = None
        self.unsetCursor()

    def mouseDoubleClickEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        self.fit()

    def wheelEvent(self, e: QWheelEvent) -> None:  # noqa: N802
        if self.original is None:
            return
        steps = e.angleDelta().y() / 120
        self.set_zoom(self.scale() * (1.25 ** steps), anchor=e.position())
