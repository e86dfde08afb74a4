"""The main view: the picture with its heatmap as a layer (opacity, colormap), zoom and pan."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QKeyEvent, QPainter, QPainterPath, QPen, QPixmap, QWheelEvent
from PySide6.QtWidgets import (
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
)

from gui.qimages import indexed_image, rgb_pixmap
from model.render import colour_table

PEEK_KEY = Qt.Key.Key_Space  # hold to see the picture without the heatmap


class ImageView(QGraphicsView):
    """Picture, heatmap layer and the analysed-region outline.

    The heatmap arrives as 8-bit indices; colormap and opacity changes only
    swap the colour table or the item's opacity, so they are instant.
    """

    zoomChanged = Signal(float)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setAccessibleName("Image with heatmap")
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setRenderHints(QPainter.RenderHint.SmoothPixmapTransform | QPainter.RenderHint.Antialiasing)
        self.setBackgroundBrush(QBrush(self.palette().color(self.backgroundRole()).darker(115)))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._picture = QGraphicsPixmapItem()
        self._picture.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._heat = QGraphicsPixmapItem()
        self._heat.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._outside = QGraphicsPathItem()
        self._outside.setBrush(QColor(0, 0, 0, 130))
        self._outside.setPen(QPen(Qt.PenStyle.NoPen))
        self._outline = QGraphicsRectItem()
        self._outline.setPen(QPen(QColor(255, 255, 255, 220), 0, Qt.PenStyle.DashLine))
        for item in (self._picture, self._heat, self._outside, self._outline):
            self.scene().addItem(item)
        self._heat_index: np.ndarray | None = None
        self._colormap = "jet"
        self._opacity = 0.5
        self._overlay_on = True
        self._fit = True
        self.set_region(None)

    # -- content ------------------------------------------------------------
    def set_picture(self, picture: np.ndarray | None) -> None:
        if picture is None:
            self._picture.setPixmap(QPixmap())
            self.set_heat(None)
            self.set_region(None)
            return
        new = self._picture.pixmap().size().toTuple() != (picture.shape[1], picture.shape[0])
        self._picture.setPixmap(rgb_pixmap(picture))
        self.scene().setSceneRect(QRectF(0, 0, picture.shape[1], picture.shape[0]))
        if new or self._fit:
            self.fit()

    def set_heat(self, index: np.ndarray | None) -> None:
        self._heat_index = index
        self._refresh_heat()

    def set_region(self, box: tuple[float, float, float, float] | None) -> None:
        """Show where a center-crop analysis looked (None: the whole picture)."""
        if box is None:
            self._outside.setPath(QPainterPath())
            self._outline.setVisible(False)
            return
        rect = self.scene().sceneRect()
        region = QRectF(box[0], box[1], box[2] - box[0], box[3] - box[1])
        path = QPainterPath()
        path.addRect(rect)
        inner = QPainterPath()
        inner.addRect(region)
        self._outside.setPath(path.subtracted(inner))
        self._outline.setRect(region)
        self._outline.setVisible(True)

    def set_colormap(self, name: str) -> None:
        self._colormap = name
        self._refresh_heat()

    def set_opacity(self, value: float) -> None:
        self._opacity = value
        self._heat.setOpacity(value)

    def set_overlay_visible(self, visible: bool) -> None:
        self._overlay_on = visible
        self._heat.setVisible(visible and self._heat_index is not None)

    def _refresh_heat(self) -> None:
        if self._heat_index is None:
            self._heat.setPixmap(QPixmap())
            self._heat.setVisible(False)
            return
        image = indexed_image(self._heat_index, colour_table(self._colormap))
        self._heat.setPixmap(QPixmap.fromImage(image))
        picture = self._picture.pixmap()
        if not picture.isNull():  # the heat covers the picture whatever its resolution
            self._heat.setScale(picture.width() / max(1, image.width()))
        self._heat.setOpacity(self._opacity)
        self._heat.setVisible(self._overlay_on)

    def grab_composite(self) -> QPixmap:
        """The picture with the heatmap as shown, at the picture's resolution."""
        picture = self._picture.pixmap()
        if picture.isNull():
            return QPixmap()
        out = QPixmap(picture.size())
        painter = QPainter(out)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.scene().render(painter, QRectF(out.rect()), self.scene().sceneRect())
        painter.end()
        return out

    # -- zoom and pan -------------------------------------------------------------
    def fit(self) -> None:
        self._fit = True
        if not self._picture.pixmap().isNull():
            self.fitInView(self.scene().sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)
            self.zoomChanged.emit(self.transform().m11())

    def actual_size(self) -> None:
        self._fit = False
        self.resetTransform()
        self.zoomChanged.emit(1.0)

    def zoom_by(self, factor: float) -> None:
        current = self.transform().m11()
        factor = max(0.02, min(32.0, current * factor)) / current
        self._fit = False
        self.scale(factor, factor)
        self.zoomChanged.emit(self.transform().m11())

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt's name
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom_by(1.25**steps)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self._fit:
            self.fit()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == PEEK_KEY and not event.isAutoRepeat():
            self._heat.setVisible(False)
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == PEEK_KEY and not event.isAutoRepeat():
            self._heat.setVisible(self._overlay_on and self._heat_index is not None)
            return
        super().keyReleaseEvent(event)
