"""Feature reuse of one dense block, painted as the DenseNet paper's heat map of average absolute weights.

Cell (source s, target l) is the mean |weight| that layer l's first convolution gives to the channels
source s produced (s = 0: the block input); the last column is the block's consumer (the next transition,
or the classifier).  The numbers come from ``model.architecture.feature_reuse``; this module only colours
them.  Colours are relative (see ``normalised``); the tooltips give the raw means.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetrics, QLinearGradient, QPainter, QPen
from PySide6.QtWidgets import QToolTip, QWidget

from gui.connectivity_view import ticks
from gui.text import plain_tooltip

# viridis, sampled: dark = little weight, yellow = the most.
STOPS = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725")
SCALES = {"target": "each target's strongest source", "block": "the block's strongest weight"}


def colour(value: float) -> QColor:
    """The colour of a share in [0, 1]."""
    value = min(1.0, max(0.0, value)) * (len(STOPS) - 1)
    i = min(int(value), len(STOPS) - 2)
    a, b, t = QColor(STOPS[i]), QColor(STOPS[i + 1]), value - i
    return QColor.fromRgbF(a.redF() + (b.redF() - a.redF()) * t, a.greenF() + (b.greenF() - a.greenF()) * t,
                           a.blueF() + (b.blueF() - a.blueF()) * t)


def normalised(reuse: dict, scale: str = "target") -> tuple[list[list[float | None]], list[float]]:
    """The grid and the consumer column as shares in [0, 1].

    ``target``: each column divided by its own maximum ("how much does this layer use each source, compared
    with the one it uses most").  ``block``: the layers' cells divided by the largest of them; the consumer
    column, whose weights belong to a different kind of layer, always by its own maximum.
    """
    grid, exit_use = reuse["grid"], reuse["exit_use"]
    layers = len(grid) - 1

    def share(value: float | None, top: float) -> float | None:
        return None if value is None else (value / top if top > 0 else 0.0)

    if scale == "block":
        top = max((v for row in grid for v in row if v is not None), default=0.0)
        tops = [top] * layers
    else:
        tops = [max((grid[s][t] for s in range(t + 1)), default=0.0) for t in range(layers)]
    shares = [[share(grid[s][t], tops[t]) for t in range(layers)] for s in range(layers + 1)]
    exit_top = max(exit_use, default=0.0)
    return shares, [share(v, exit_top) for v in exit_use]


def source_name(s: int) -> str:
    return "the block input" if s == 0 else f"layer {s}"


def reuse_summary(reuse: dict) -> str:
    """Answers "do later layers really use early features?" for this block, in numbers."""
    shares, exit_shares = normalised(reuse, "target")
    layers = len(shares) - 1
    cells = [shares[s][t] for t in range(layers) for s in range(t + 1)]
    strong = sum(v >= 0.5 for v in cells)
    last = f"Layer {layers} weighs the block input at {shares[0][layers - 1]:.0%} of its strongest source"
    if layers > 1:
        last += f" and layer 1 at {shares[1][layers - 1]:.0%}"
    return (f"{last}. {strong} of {len(cells)} connections ({strong / len(cells):.0%}) carry at least half of "
            f"their layer's strongest weight. Its consumer, {reuse['exit']}, weighs the block input at "
            f"{exit_shares[0]:.0%} "
            f"and layer {layers}'s new features at {exit_shares[-1]:.0%} of its strongest source.")


def cell_tooltip(reuse: dict, s: int, t: int) -> str:
    """Tooltip of cell (source s, target t); t = L + 1 is the block's consumer."""
    from model.architecture import source_channels  # torch: loaded by then (the dialog needs a model)

    grid, layers = reuse["grid"], len(reuse["grid"]) - 1
    start, stop = source_channels(reuse["in_channels"], reuse["growth_rate"], s)
    shares, exit_shares = normalised(reuse, "target")
    if t == layers + 1:
        target, value, share = reuse["exit"], reuse["exit_use"][s], exit_shares[s]
    else:
        target, value, share = f"layer {t}", grid[s][t - 1], shares[s][t - 1]
    return (f"{target} ← {source_name(s)} (channels {start}–{stop - 1}): mean |weight| {value:.4g}, "
            f"{share:.0%} of what {target} gives its strongest source.")


class FeatureReuseView(QWidget):
    """Paints the grid given to ``set_reuse``."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._reuse: dict | None = None
        self._scale = "target"
        self._hover: tuple[int, int] | None = None
        self.setMouseTracking(True)
        self.setMinimumSize(260, 200)
        self.setAccessibleName("Feature reuse heat map")

    def set_reuse(self, reuse: dict | None) -> None:
        self._reuse = reuse
        self._hover = None
        self.update()

    def set_scale(self, scale: str) -> None:
        self._scale = scale
        self.update()

    # -- geometry -----------------------------------------------------------
    def _geometry(self) -> tuple[float, float, float, float]:
        """(left, top, cell size, gap before the consumer column) of the grid."""
        fm = QFontMetrics(self.font())
        layers = len(self._reuse["grid"]) - 1
        left = fm.height() + 6 + max(fm.horizontalAdvance("in"), fm.horizontalAdvance(str(layers))) + 6
        bar = 14 + 6 + fm.horizontalAdvance("100%") + 8
        bottom = 2 * fm.height() + 10
        cols, rows = layers + 1, layers + 1
        width, height = self.width() - left - bar - 4, self.height() - bottom - 6
        cell = max(2.0, min(width / (cols + 0.5), height / rows, 44.0))
        gap = cell / 2
        left += max(0.0, (width - cell * (cols + 0.5)) / 2)
        top = 6.0 + max(0.0, (height - cell * rows) / 2)  # a grid limited by the width sits mid-height
        return left, top, cell, gap

    def cell_rect(self, s: int, t: int) -> QRectF:
        """Where cell (source s, target t) is drawn; t = L + 1 is the block's consumer."""
        left, top, cell, gap = self._geometry()
        layers = len(self._reuse["grid"]) - 1
        x = left + (t - 1) * cell + (gap if t == layers + 1 else 0)
        return QRectF(x, top + s * cell, cell, cell)

    def cell_at(self, pos: QPointF) -> tuple[int, int] | None:
        if self._reuse is None:
            return None
        layers = len(self._reuse["grid"]) - 1
        for t in range(1, layers + 2):
            for s in range(t):
                if self.cell_rect(s, t).contains(pos):
                    return s, t
        return None

    # -- events -------------------------------------------------------------
    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt override
        cell = self.cell_at(event.position())
        if cell != self._hover:
            self._hover = cell
            self.update()

    def leaveEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._hover = None
        self.update()

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            cell = self.cell_at(QPointF(event.pos()))
            if cell is None:
                QToolTip.hideText()
            else:
                QToolTip.showText(event.globalPos(), plain_tooltip(cell_tooltip(self._reuse, *cell)), self)
            return True
        return super().event(event)

    # -- painting -----------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._reuse is None:
            return
        p = QPainter(self)
        fm = QFontMetrics(self.font())
        shares, exit_shares = normalised(self._reuse, self._scale)
        layers = len(shares) - 1
        left, top, cell, _gap = self._geometry()
        for t in range(1, layers + 2):
            for s in range(t):
                value = exit_shares[s] if t == layers + 1 else shares[s][t - 1]
                p.fillRect(self.cell_rect(s, t), colour(value))
        if self._hover is not None:
            p.setPen(QPen(QColor("white"), 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(self.cell_rect(*self._hover).adjusted(1, 1, -1, -1))
        text = self.palette().windowText().color()
        p.setPen(text)
        grid_bottom = top + (layers + 1) * cell
        consumer = "C" if self._reuse["exit"] == "classifier" else "T"
        # Sources down the side, targets along the bottom, thinned so that no two labels overlap.
        rows = [self.cell_rect(s, layers + 1).center().y() for s in range(layers + 1)]
        label_right = self.cell_rect(0, 1).left() - 4
        for s in ticks(rows, [fm.height()] * len(rows), list(range(layers + 1)), [0], gap=1):
            p.drawText(QRectF(0, rows[s] - fm.height() / 2, label_right, fm.height()),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, "in" if s == 0 else str(s))
        labels = [*map(str, range(1, layers + 1)), consumer]
        cols = [self.cell_rect(0, t).center().x() for t in range(1, layers + 2)]
        advances = [fm.horizontalAdvance(label) for label in labels]
        for i in ticks(cols, advances, [*range(1, layers + 1), None], [layers], gap=4):
            p.drawText(QRectF(cols[i] - advances[i] / 2 - 1, grid_bottom + 2, advances[i] + 2, fm.height()),
                       Qt.AlignmentFlag.AlignCenter, labels[i])
        p.setPen(self.palette().placeholderText().color())
        caption = f"target layer l  ·  {consumer} = {self._reuse['exit']}"
        p.drawText(QRectF(0, grid_bottom + fm.height() + 4, self.width(), fm.height()),
                   Qt.AlignmentFlag.AlignHCenter, caption)
        p.save()
        widest = max(fm.horizontalAdvance("in"), fm.horizontalAdvance(str(layers)))
        p.translate(max(2.0, label_right - widest - 6 - fm.height()), top + (layers + 1) * cell / 2)
        p.rotate(-90)
        p.drawText(QRectF(-self.height() / 2, 0, self.height(), fm.height()), Qt.AlignmentFlag.AlignHCenter,
                   "source s")
        p.restore()
        # The colour bar.
        bar_x = self.cell_rect(0, layers + 1).right() + 12
        bar = QRectF(bar_x, top, 12, max(20.0, grid_bottom - top))
        gradient = QLinearGradient(bar.bottomLeft(), bar.topLeft())
        for i, stop in enumerate(STOPS):
            gradient.setColorAt(i / (len(STOPS) - 1), QColor(stop))
        p.fillRect(bar, gradient)
        p.setPen(text)
        p.drawText(QRectF(bar.right() + 4, bar.top() - 2, 60, fm.height()), Qt.AlignmentFlag.AlignLeft, "100%")
        p.drawText(QRectF(bar.right() + 4, bar.bottom() - fm.height() + 2, 60, fm.height()),
                   Qt.AlignmentFlag.AlignLeft, "0%")
        p.end()
