"""The frame viewer: the processed frame, the original beside it for comparison, and what the detector found.

Frames arrive as numpy RGB arrays through the controller's signals, so every conversion to Qt images
happens here, on the GUI thread (DESIGN: workers never build QPixmaps). The view keeps the user's zoom and
pan while scrubbing through frames of one size, because inspecting a seam at 400 % only works if the next
frame lands under the same spot.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QMouseEvent,
    QPainter,
    QPen,
    QPixmap,
    QResizeEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QStyleOptionGraphicsItem,
    QWidget,
)

RgbFrame = npt.NDArray[np.uint8]
Box = tuple[float, float, float, float]
CompareMode = Literal["after", "before", "split"]
COMPARE_MODES: tuple[CompareMode, ...] = get_args(CompareMode)

BACKGROUND = QColor(24, 24, 24)
OVERLAY_COLOR = QColor(0, 230, 118)
SPLIT_LINE_COLOR = QColor(255, 196, 0)
ZOOM_STEP = 1.25
MIN_ZOOM, MAX_ZOOM = 0.02, 64.0
_SPLIT_GRAB_PX = 6  # how close (in screen pixels) a press must be to the split line to drag it


def _checked_frame(frame: RgbFrame, what: str) -> RgbFrame:
    """A C-contiguous uint8 [H, W, 3] array, or a ValueError naming expected vs actual."""
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"{what} frame: expected uint8 [H, W, 3] RGB, got {frame.dtype} {list(frame.shape)}")
    return np.ascontiguousarray(frame)


class _Layer:
    """One frame as Qt sees it. The QImage wraps the numpy buffer without copying, so the array is kept
    alive beside it; the pixmap is converted once so repaints while panning cost nothing."""

    def __init__(self, frame: RgbFrame) -> None:
        self.array = frame
        height, width = frame.shape[:2]
        self.image = QImage(frame.data, width, height, frame.strides[0], QImage.Format.Format_RGB888)
        self.pixmap = QPixmap.fromImage(self.image)


class _FrameItem(QGraphicsItem):
    """Paints after, before or both split at a fraction: one item, so the split is a clip, not a re-layout."""

    def __init__(self) -> None:
        super().__init__()
        self.after: _Layer | None = None
        self.before: _Layer | None = None
        self.mode: CompareMode = "after"
        self.split = 0.5
        self._rect = QRectF()

    def set_layers(self, after: _Layer, before: _Layer | None) -> None:
        rect = QRectF(after.pixmap.rect())
        if rect != self._rect:
            self.prepareGeometryChange()
            self._rect = rect
        self.after, self.before = after, before
        self.update()

    def split_x(self) -> float:
        return self._rect.width() * self.split

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, /, widget: QWidget | None = None
    ) -> None:
        if self.after is None:
            return
        # Smooth when shrinking; crisp pixels when magnified, so blend seams are visible as they are.
        detail = QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, detail < 1.0)
        before = self.before
        if before is None or self.mode == "after":
            painter.drawPixmap(QPointF(0, 0), self.after.pixmap)
        elif self.mode == "before":
            painter.drawPixmap(QPointF(0, 0), before.pixmap)
        else:
            x, height = self.split_x(), self._rect.height()
            left = QRectF(0, 0, x, height)
            right = QRectF(x, 0, self._rect.width() - x, height)
            painter.drawPixmap(left, before.pixmap, left)
            painter.drawPixmap(right, self.after.pixmap, right)
            pen = QPen(SPLIT_LINE_COLOR, 2)
            pen.setCosmetic(True)  # same width at every zoom
            painter.setPen(pen)
            painter.drawLine(QPointF(x, 0), QPointF(x, height))


class FrameViewer(QGraphicsView):
    """Shows one frame with zoom (wheel around the cursor), pan (left drag) and a before/after compare."""

    zoomed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self._item = _FrameItem()
        self.scene().addItem(self._item)
        self._overlays: list[QGraphicsRectItem] = []
        self._fit_mode = True
        self._dragging_split = False
        self.setBackgroundBrush(BACKGROUND)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        # No scroll bars: their appearing and vanishing would change the viewport and fight fit().
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.viewport().setMouseTracking(True)  # to show the split cursor on hover

    # ---- frames -------------------------------------------------------------------------------

    @property
    def frame_size(self) -> tuple[int, int] | None:
        """(width, height) of the frame shown, or None before the first frame."""
        layer = self._item.after
        return None if layer is None else (layer.pixmap.width(), layer.pixmap.height())

    def show_frame(
        self, after: RgbFrame, before: RgbFrame | None = None, overlays: list[Box] | None = None
    ) -> None:
        """Show `after` (and `before` for compare); `overlays` are (x1, y1, x2, y2) boxes in frame pixels,
        drawn as outlines. The same size keeps zoom and pan; another size fits the frame again."""
        after = _checked_frame(after, "after")
        if before is not None:
            before = _checked_frame(before, "before")
            if before.shape != after.shape:
                raise ValueError(
                    f"before frame: expected the after frame's shape {list(after.shape)}, "
                    f"got {list(before.shape)}"
                )
        old_size = self.frame_size
        self._item.set_layers(_Layer(after), None if before is None else _Layer(before))
        self._set_overlays(overlays or [])
        if self.frame_size != old_size:
            self.scene().setSceneRect(self._item.boundingRect())
            self.fit()

    def _set_overlays(self, boxes: list[Box]) -> None:
        for item in self._overlays:
            self.scene().removeItem(item)
        pen = QPen(OVERLAY_COLOR, 2)
        pen.setCosmetic(True)
        self._overlays = []
        for x1, y1, x2, y2 in boxes:
            item = QGraphicsRectItem(QRectF(QPointF(x1, y1), QPointF(x2, y2)).normalized())
            item.setPen(pen)
            item.setZValue(1)
            self.scene().addItem(item)
            self._overlays.append(item)

    # ---- compare ------------------------------------------------------------------------------

    @property
    def compare_mode(self) -> CompareMode:
        return self._item.mode

    @property
    def split(self) -> float:
        return self._item.split

    def set_compare(self, mode: CompareMode) -> None:
        """ "after", "before" or "split" (left of the line before, right after). Without a before frame
        every mode shows the after frame."""
        if mode not in COMPARE_MODES:
            raise ValueError(f"compare mode: expected one of {COMPARE_MODES}, got {mode!r}")
        self._item.mode = mode
        self._item.update()

    def set_split(self, fraction: float) -> None:
        """Where the split line sits, as a fraction of the frame width (clamped to 0..1)."""
        self._item.split = min(1.0, max(0.0, fraction))
        self._item.update()

    # ---- zoom ---------------------------------------------------------------------------------

    @property
    def zoom_factor(self) -> float:
        """Screen pixels per frame pixel."""
        return float(self.transform().m11())

    def fit(self) -> None:
        """Fit the whole frame in the view, and keep fitting it as the view resizes."""
        self._fit_mode = True
        if self.frame_size is not None:
            self.fitInView(self._item.boundingRect(), Qt.AspectRatioMode.KeepAspectRatio)
        self.zoomed.emit(self.zoom_factor)

    def actual_size(self) -> None:
        """One frame pixel per screen pixel, keeping the view's centre."""
        self._set_zoom(1.0, self.viewport().rect().center())

    def zoom_in(self) -> None:
        self._set_zoom(self.zoom_factor * ZOOM_STEP, self.viewport().rect().center())

    def zoom_out(self) -> None:
        self._set_zoom(self.zoom_factor / ZOOM_STEP, self.viewport().rect().center())

    def _set_zoom(self, zoom: float, anchor: QPoint) -> None:
        """Zoom to `zoom`, keeping the frame point under `anchor` (viewport pixels) where it is."""
        zoom = min(MAX_ZOOM, max(MIN_ZOOM, zoom))
        self._fit_mode = False
        scene_point = self.mapToScene(anchor)
        self.setTransform(QTransform.fromScale(zoom, zoom))
        drift = self.mapFromScene(scene_point) - anchor
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + drift.x())
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + drift.y())
        self.zoomed.emit(self.zoom_factor)

    def wheelEvent(self, event: QWheelEvent) -> None:
        notches = event.angleDelta().y() / 120
        if notches == 0 or self.frame_size is None:
            event.ignore()
            return
        self._set_zoom(self.zoom_factor * ZOOM_STEP**notches, event.position().toPoint())
        event.accept()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fit_mode:
            self.fit()

    # ---- dragging the split line --------------------------------------------------------------

    def _near_split(self, pos: QPointF) -> bool:
        if self._item.mode != "split" or self._item.before is None:
            return False
        line_x = self.mapFromScene(QPointF(self._item.split_x(), 0)).x()
        return abs(pos.x() - line_x) <= _SPLIT_GRAB_PX

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._near_split(event.position()):
            self._dragging_split = True  # takes the press from the hand drag
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._dragging_split:
            x = self.mapToScene(event.position().toPoint()).x()
            self.set_split(x / max(1.0, self._item.boundingRect().width()))
            event.accept()
            return
        super().mouseMoveEvent(event)
        if event.buttons() == Qt.MouseButton.NoButton:
            near = self._near_split(event.position())
            shape = Qt.CursorShape.SplitHCursor if near else Qt.CursorShape.OpenHandCursor
            self.viewport().setCursor(shape)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._dragging_split and event.button() == Qt.MouseButton.LeftButton:
            self._dragging_split = False
            event.accept()
            return
        super().mouseReleaseEvent(event)
