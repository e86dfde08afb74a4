"""Training curves drawn with QPainter: loss (training and validation) and validation accuracy per epoch."""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QWidget

TRAIN = QColor(31, 119, 180)
VALIDATION = QColor(230, 120, 20)
ACCURACY = QColor(44, 150, 44)
BEST = QColor(130, 130, 130)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2 or 5 times a power of ten apart), at most about ``count``."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(1, count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step + 1e-9) * step
    ticks, value = [], first
    while value < high + step * 0.5:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high - 1e-12:
        ticks.append(round(value, 10))
    return ticks


def epoch_ticks(epochs: int, most: int = 8) -> list[int]:
    step = max(1, math.ceil(epochs / most))
    ticks = list(range(1, epochs + 1, step))
    if ticks[-1] != epochs and epochs - ticks[-1] >= step / 2:
        ticks.append(epochs)
    return ticks


def _label(value: float) -> str:
    return f"{value:.3g}"


class CurvesWidget(QWidget):
    """Two charts: the losses (training solid, validation dashed) and the validation accuracy.

    ``live`` is the running training loss of the epoch in progress, drawn at
    its fraction of the epoch; the best epoch is marked on both.
    """

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list[dict] = []
        self.epochs = 0
        self.live: tuple[float, float] | None = None  # (x in epochs, running loss)
        self.best_epoch: int | None = None
        self.setMinimumSize(460, 220)
        self.setAccessibleName("Training curves")

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(720, 280)

    def set_data(self, rows: list[dict], epochs: int, live: tuple[float, float] | None = None,
                 best_epoch: int | None = None) -> None:
        self.rows = list(rows)
        self.epochs = max(epochs, max((r["epoch"] for r in rows), default=0))
        self.live = live
        self.best_epoch = best_epoch
        self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), self.palette().base())
        gap = 12.0
        half = (self.width() - gap) / 2
        left = QRectF(0, 0, half, self.height())
        right = QRectF(half + gap, 0, half, self.height())
        epochs = [r["epoch"] for r in self.rows]
        losses = [("training", TRAIN, Qt.PenStyle.SolidLine, [(e, r["train_loss"]) for e, r in zip(epochs, self.rows)]),
                  ("validation", VALIDATION, Qt.PenStyle.DashLine,
                   [(e, r["val_loss"]) for e, r in zip(epochs, self.rows)])]
        accuracy = [("validation", ACCURACY, Qt.PenStyle.SolidLine,
                     [(e, r["val_accuracy"] * 100) for e, r in zip(epochs, self.rows)])]
        values = [y for *_, pts in losses for _, y in pts if math.isfinite(y)]
        if self.live is not None and math.isfinite(self.live[1]):
            values.append(self.live[1])
        low, high = (0.0, max(values) * 1.05) if values else (0.0, 1.0)
        self._chart(painter, left, "Loss", losses, nice_ticks(low, high), self.live)
        self._chart(painter, right, "Validation accuracy (%)", accuracy, [0, 20, 40, 60, 80, 100], None)
        painter.end()

    def _chart(self, painter: QPainter, rect: QRectF, title: str, series: list, y_ticks: list[float],
               live: tuple[float, float] | None) -> None:
        fm = QFontMetricsF(self.font())
        line = fm.height()
        text = self.palette().text().color()
        muted = QColor(text)
        muted.setAlpha(110)
        y_width = max(fm.horizontalAdvance(_label(t)) for t in y_ticks) + 8
        plot = QRectF(rect.left() + y_width + 4, rect.top() + 2 * line + 8, rect.width() - y_width - 14,
                      rect.height() - 4 * line - 14)  # below: the epoch numbers and "epoch"
        if plot.width() < 20 or plot.height() < 20:
            return
        painter.setPen(text)
        bold = painter.font()
        bold.setBold(True)
        painter.save()
        painter.setFont(bold)
        painter.drawText(QRectF(rect.left() + 4, rect.top() + 2, rect.width() - 8, line),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, title)
        painter.restore()
        x = rect.left() + y_width + 4
        for name, color, style, _ in series:  # the legend, under the title
            painter.setPen(QPen(color, 2, style))
            painter.drawLine(QPointF(x, rect.top() + line * 1.5 + 4), QPointF(x + 22, rect.top() + line * 1.5 + 4))
            painter.setPen(text)
            width = fm.horizontalAdvance(name)
            painter.drawText(QRectF(x + 26, rect.top() + line + 4, width + 2, line),
                             Qt.AlignmentFlag.AlignVCenter, name)
            x += 26 + width + 14
        epochs = max(self.epochs, 1)
        y_low, y_high = y_ticks[0], y_ticks[-1]

        def to_point(ex: float, y: float) -> QPointF:
            fx = 0.5 if epochs == 1 else (ex - 1) / (epochs - 1)
            fy = (y - y_low) / (y_high - y_low) if y_high > y_low else 0.5
            return QPointF(plot.left() + fx * plot.width(), plot.bottom() - min(1.0, max(0.0, fy)) * plot.height())

        painter.setPen(QPen(muted, 1))
        for t in y_ticks:
            p = to_point(1, t)
            painter.drawLine(QPointF(plot.left(), p.y()), QPointF(plot.right(), p.y()))
            painter.save()
            painter.setPen(text)
            painter.drawText(QRectF(rect.left(), p.y() - line / 2, y_width, line),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, _label(t))
            painter.restore()
        painter.setPen(text)
        for e in epoch_ticks(epochs):
            p = to_point(e, y_low)
            painter.drawLine(QPointF(p.x(), plot.bottom()), QPointF(p.x(), plot.bottom() + 4))
            painter.drawText(QRectF(p.x() - 20, plot.bottom() + 4, 40, line), Qt.AlignmentFlag.AlignHCenter, str(e))
        painter.drawText(QRectF(plot.left(), plot.bottom() + 4 + line, plot.width(), line),
                         Qt.AlignmentFlag.AlignHCenter, "epoch")
        painter.drawLine(plot.bottomLeft(), plot.bottomRight())
        if self.best_epoch is not None:
            p = to_point(self.best_epoch, y_low)
            painter.setPen(QPen(BEST, 1, Qt.PenStyle.DotLine))
            painter.drawLine(QPointF(p.x(), plot.top()), QPointF(p.x(), plot.bottom()))
            width = fm.horizontalAdvance("best") + 2
            left_of_line = p.x() + 3 + width > plot.right()
            painter.drawText(QRectF(p.x() - 3 - width if left_of_line else p.x() + 3, plot.top(), width, line),
                             Qt.AlignmentFlag.AlignLeft, "best")
        if not any(points for *_, points in series) and live is None:
            painter.setPen(muted)
            painter.drawText(plot, Qt.AlignmentFlag.AlignCenter, "Curves appear as epochs finish")
            return
        for _, color, style, points in series:
            points = [(e, y) for e, y in points if math.isfinite(y)]
            if not points:
                continue
            path = QPainterPath(to_point(*points[0]))
            for point in points[1:]:
                path.lineTo(to_point(*point))
            painter.setPen(QPen(color, 2, style))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPath(path)
            painter.setBrush(color)
            painter.setPen(Qt.PenStyle.NoPen)
            for point in points:
                painter.drawEllipse(to_point(*point), 3, 3)
        if live is not None:
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(QPen(TRAIN, 2))
            painter.drawEllipse(to_point(max(1.0, live[0]), live[1]), 4, 4)
