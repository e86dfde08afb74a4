"""The main view: the picture with its heatmap as a layer (opacity, colormap), zoom and pan."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QKeyEvent,
    QLinearGradient,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
    QWheelEvent,
)
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
EMPTY_HINT = "Drop pictures or folders here\nor use File ▸ Open (Ctrl+O)"
LEVELS = 254  # heat indices 0..254 (255: outside the analysed region), as model.display makes them


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
        # The legend and hints are drawn over the viewport: a pan must repaint, not scroll, the pixels.
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
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
        self._busy: str | None = None
        self._message: str | None = None  # why no picture or no map is shown (None: the empty-window hint)
        self._hover: float | None = None  # heat under the cursor, 0..1 of the map's peak
        self.setMouseTracking(True)
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
        self._hover = None
        self._refresh_heat()
        self.viewport().update()

    def set_busy(self, text: str | None) -> None:
        """Dim what is shown and say what is coming (None: the view is current)."""
        if text != self._busy:
            self._busy = text
            self.viewport().update()

    def set_message(self, text: str | None) -> None:
        """Say why nothing, or no map, is shown: in place of the empty-window hint without a picture, in a band
        over the picture with one (None: no message)."""
        if text != self._message:
            self._message = text
            self.viewport().update()

    def message(self) -> str | None:
        return self._message

    def is_busy(self) -> bool:
        return self._busy is not None

    def zoom(self) -> float:
        return self.transform().m11()

    def heat_at(self, scene_point: QPointF) -> float | None:
        """The heat at a picture position as a fraction of the map's peak (None: no heat there)."""
        index, picture = self._heat_index, self._picture.pixmap()
        if index is None or picture.isNull():
            return None
        x = int(scene_point.x() * index.shape[1] / picture.width())
        y = int(scene_point.y() * index.shape[0] / picture.height())
        if not (0 <= x < index.shape[1] and 0 <= y < index.shape[0]) or index[y, x] > LEVELS:
            return None
        return float(index[y, x]) / LEVELS

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
        self.viewport().update()

    def set_overlay_visible(self, visible: bool) -> None:
        self._overlay_on = visible
        self._heat.setVisible(visible and self._heat_index is not None)
        self.viewport().update()

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

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        super().mouseMoveEvent(event)
        hover = self.heat_at(self.mapToScene(event.position().toPoint()))
        if hover != self._hover:
            self._hover = hover
            self.viewport().update()

    def leaveEvent(self, event) -> None:  # noqa: N802
        self._hover = None
        self.viewport().update()
        super().leaveEvent(event)

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802
        """In view coordinates: the empty-state hint, the busy veil, the colour bar and the zoom."""
        painter.save()
        painter.resetTransform()
        area = QRectF(self.viewport().rect())
        if self._picture.pixmap().isNull():
            painter.setPen(self.palette().color(self.foregroundRole()))
            font = painter.font()
            font.setPointSizeF(font.pointSizeF() * 1.4)
            painter.setFont(font)
            painter.drawText(area.adjusted(12, 12, -12, -12), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             self._busy or self._message or EMPTY_HINT)
        else:
            if self._busy:
                painter.fillRect(area, QColor(0, 0, 0, 120))
                painter.setPen(Qt.GlobalColor.white)
                painter.drawText(area, Qt.AlignmentFlag.AlignCenter, self._busy)
            elif self._message:
                self._draw_band(painter, area, self._message)
            self._draw_legend(painter, area)
        painter.restore()

    def _draw_band(self, painter: QPainter, area: QRectF, text: str) -> None:
        """``text`` in a dark band across the top of the view, wrapped to its width."""
        pad = 8
        flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
        box = painter.fontMetrics().boundingRect(area.adjusted(pad, 0, -pad, 0).toRect(), flags, text)
        band = QRectF(area.left(), area.top(), area.width(), box.height() + 2 * pad)
        painter.fillRect(band, QColor(0, 0, 0, 170))
        painter.setPen(Qt.GlobalColor.white)
        painter.drawText(band.adjusted(pad, pad, -pad, -pad), flags, text)

    def _draw_legend(self, painter: QPainter, area: QRectF) -> None:
        metrics = painter.fontMetrics()
        pad, bar_w, bar_h = 8, 120, 10
        zoom = f"{self.zoom() * 100:.0f}%"
        box_h = metrics.height() + 2 * pad
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 150))
        zoom_box = QRectF(pad, area.height() - box_h - pad, metrics.horizontalAdvance(zoom) + 2 * pad, box_h)
        painter.drawRoundedRect(zoom_box, 4, 4)
        painter.setPen(Qt.GlobalColor.white)
        painter.drawText(zoom_box, Qt.AlignmentFlag.AlignCenter, zoom)
        if self._heat_index is None or not self._heat.isVisible():
            return
        value = "—" if self._hover is None else f"{self._hover * 100:.0f}% of peak"
        text_w = metrics.horizontalAdvance("100% of peak")
        room = area.width() - zoom_box.right() - 3 * pad  # right of the zoom box
        if room < bar_w + text_w + 4 * pad:
            bar_w = max(40.0, room - text_w - 4 * pad)
        if room < bar_w + text_w + 4 * pad:
            return  # too narrow for a legend that does not cover the zoom
        width = bar_w + text_w + 4 * pad
        box = QRectF(area.width() - width - pad, area.height() - box_h - pad, width, box_h)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.drawRoundedRect(box, 4, 4)
        bar = QRectF(box.left() + pad, box.center().y() - bar_h / 2, bar_w, bar_h)
        gradient = QLinearGradient(bar.topLeft(), bar.topRight())
        table = colour_table(self._colormap)
        for i in range(0, LEVELS + 1, 17):
            r, g, b, _a = table[i]
            gradient.setColorAt(i / LEVELS, QColor(r, g, b))
        painter.setBrush(QBrush(gradient))
        painter.drawRect(bar)
        if self._hover is not None:
            painter.setPen(QPen(Qt.GlobalColor.white, 2))
            x = bar.left() + self._hover * bar.width()
            painter.drawLine(QPointF(x, bar.top() - 3), QPointF(x, bar.bottom() + 3))
        painter.setPen(Qt.GlobalColor.white)
        painter.drawText(QRectF(bar.right() + 2 * pad, box.top(), text_w, box_h),
                         Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, value)

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
