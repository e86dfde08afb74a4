"""One dense block's connectivity, painted: every layer reads the block input and every earlier layer.

Nodes sit on a line (the block input, layers 1..L, then the block's consumer: the next transition or the
classifier); an arc joins every source to every layer that reads it, L(L+1)/2 in all, and dashed arcs show
that the consumer reads the whole concatenation.  Under each node: the channels the concatenation holds
after it, growing by k.  Hovering a node highlights its connections and a tooltip explains it.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QToolTip, QWidget

from gui.text import plain_tooltip

LAYER_COLOUR = QColor("#2e7d5b")
EXIT_COLOUR = QColor("#8a6d2f")
HOVER_COLOUR = QColor("#d0542c")
MAX_NODE_WIDTH = 34.0  # a node box's widest
END_WIDTH = 1.6  # the block input's and the consumer's boxes, this much wider than a layer's


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def spread(centres: list[float], widths: list[float], first: list[int], gap: float = 6.0,
           candidates: list[int] | None = None) -> list[int]:
    """Which labels to draw so that none overlap: those in ``first`` (in order), then the ``candidates``
    (default: every label) in order, each only if it overlaps none drawn before."""
    taken: list[tuple[float, float]] = []
    chosen = []
    rest = range(len(centres)) if candidates is None else candidates
    for i in [*first, *(i for i in rest if i not in first)]:
        left, right = centres[i] - widths[i] / 2, centres[i] + widths[i] / 2
        if all(right + gap <= a or left >= b + gap for a, b in taken):
            taken.append((left, right))
            chosen.append(i)
    return sorted(chosen)


def ticks(centres: list[float], widths: list[float], numbers: list[int | None], first: list[int],
          gap: float = 6.0) -> list[int]:
    """Labels at a regular step: ``first`` and the labels whose number is a multiple of the smallest step
    (1, 2, 5, 10, ...) at which no two of them overlap."""
    multiples: list[int] = []
    for step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000):
        multiples = [i for i, n in enumerate(numbers) if n is not None and n % step == 0 and i not in first]
        if spread(centres, widths, [], gap, multiples) == multiples:
            break
    return spread(centres, widths, first, gap, multiples)


def node_numbers(layers: int) -> list[int | None]:
    """The number of each node for the label step (``ticks``): the block input 0, layers 1..L, the consumer none."""
    return [0, *range(1, layers + 1), None]


def layer_range(first: int, last: int) -> str:
    if first > last:
        return "no earlier layer"
    return f"layer {first}" if first == last else f"layers {first}–{last}"


def node_tooltip(block: dict, exit_name: str, exit_channels: int, node: int) -> str:
    """What hovering node ``node`` (0: block input, 1..L: layers, L+1: the consumer) explains."""
    layers, k, k0 = block["layers"], block["growth_rate"], block["in_channels"]
    if node == 0:
        return (f"Block input: {k0} channels. Read directly by all {plural(layers, 'layer')} of "
                f"{block['name']} and by {exit_name}.")
    if node <= layers:
        reads = k0 + (node - 1) * k
        later = layer_range(node + 1, layers)
        return (f"Layer {node} reads {reads} channels: the block input and {layer_range(1, node - 1)} "
                f"({plural(node, 'direct connection')}). It computes {k} new channels "
                f"(BN-ReLU-Conv1×1, BN-ReLU-Conv3×3); the block then holds {reads + k}. "
                f"Read by {later + ' and ' if node < layers else ''}{exit_name}.")
    total = k0 + layers * k
    if exit_name == "classifier":
        return f"norm5 and the classifier read all {total} channels of the last block (global average pooled)."
    return (f"{exit_name} reads all {total} channels and compresses them to {exit_channels} "
            f"(BN-ReLU-Conv1×1), then halves the resolution (2×2 average pooling).")


class ConnectivityView(QWidget):
    """Paints the dense block given to ``set_block``."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._block: dict | None = None
        self._exit = ""
        self._exit_channels = 0
        self._hover: int | None = None
        self.setMouseTracking(True)
        self.setMinimumSize(280, 170)
        self.setAccessibleName("Dense block connectivity")

    def set_block(self, block: dict, exit_name: str, exit_channels: int) -> None:
        self._block, self._exit, self._exit_channels = block, exit_name, exit_channels
        self._hover = None
        self.setAccessibleDescription(
            f"{block['name']}: {block['layers']} layers, {block['connections']} direct connections")
        self.update()

    # -- geometry -----------------------------------------------------------
    def node_count(self) -> int:
        return 0 if self._block is None else self._block["layers"] + 2

    def _metrics(self) -> tuple[QFontMetrics, float, float, float]:
        """(font metrics, node row y, node box height, x step)."""
        fm = QFontMetrics(self.font())
        line = fm.height()
        box = max(14.0, line + 4.0)
        y = self.height() - 2 * line - 10 - box / 2  # room under the nodes for channels and the caption
        step = (self.width() - 2 * self._margin(fm)) / max(1, self.node_count() - 1)
        return fm, y, box, step

    @staticmethod
    def _margin(fm: QFontMetrics) -> float:
        """From the widget's edge to the first and last node's centre: room for their widest box."""
        return 4 + max(END_WIDTH * MAX_NODE_WIDTH, fm.horizontalAdvance("in") + 4) / 2

    def node_x(self, node: int) -> float:
        margin = self._margin(QFontMetrics(self.font()))
        return margin + node * (self.width() - 2 * margin) / max(1, self.node_count() - 1)

    def node_boxes(self) -> tuple[list[str], list[float], set[int]]:
        """Each node's label and box width, and which nodes show their label (where the numbers fit)."""
        fm, _y, _box, step = self._metrics()
        layers = self._block["layers"]
        n = layers + 2
        exit_node = n - 1
        xs = [self.node_x(i) for i in range(n)]
        width = min(max(6.0, step * 0.7), MAX_NODE_WIDTH)
        widths = [width * (END_WIDTH if i in (0, exit_node) else 1.0) for i in range(n)]
        labels = ["in", *map(str, range(1, layers + 1)), "C" if self._exit == "classifier" else "T"]
        numbers = node_numbers(layers)
        # A number sits inside its box and the boxes never touch: labels need no more gap than their boxes.
        numbered = set(ticks(xs, [max(w, fm.horizontalAdvance(t) + 4) for w, t in zip(widths, labels)], numbers,
                             [0, exit_node], gap=1.0))
        room = 2 * step - width - 2  # widest box that still clears its unnumbered neighbours
        numbered = {i for i in numbered if i in (0, exit_node) or fm.horizontalAdvance(labels[i]) + 4 <= room}
        widths = [max(w, fm.horizontalAdvance(labels[i]) + 4) if i in numbered else w for i, w in enumerate(widths)]
        return labels, widths, numbered

    def node_at(self, pos: QPointF) -> int | None:
        if self._block is None:
            return None
        _fm, y, box, step = self._metrics()
        if abs(pos.y() - y) > box:
            return None
        node = round((pos.x() - self.node_x(0)) / step)
        return node if 0 <= node < self.node_count() and abs(pos.x() - self.node_x(node)) <= step / 2 else None

    def arcs(self) -> list[tuple[int, int]]:
        """(source, target) of every drawn arc; targets 1..L are layers, L+1 is the block's consumer."""
        if self._block is None:
            return []
        layers = self._block["layers"]
        return [(s, t) for t in range(1, layers + 2) for s in range(t)]

    def channels(self) -> list[int]:
        """Channels of the concatenation after the block input and after each layer (growing by k), then the
        consumer's output: a transition's channels, or the classifier's classes (not drawn under its node)."""
        if self._block is None:
            return []
        k, k0 = self._block["growth_rate"], self._block["in_channels"]
        return [k0 + i * k for i in range(self._block["layers"] + 1)] + [self._exit_channels]

    # -- events -------------------------------------------------------------
    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt override
        node = self.node_at(event.position())
        if node != self._hover:
            self._hover = node
            self.update()

    def leaveEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._hover = None
        self.update()

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            node = self.node_at(QPointF(event.pos()))
            if node is None or self._block is None:
                QToolTip.hideText()
            else:
                tip = node_tooltip(self._block, self._exit, self._exit_channels, node)
                QToolTip.showText(event.globalPos(), plain_tooltip(tip), self)
            return True
        return super().event(event)

    # -- painting -----------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._block is None:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        fm, y, box, step = self._metrics()
        layers, k = self._block["layers"], self._block["growth_rate"]
        n = layers + 2
        exit_node = n - 1
        top = 8.0
        span_height = max(10.0, y - box / 2 - top)
        text = self.palette().windowText().color()
        # Fewer, fainter arcs for big blocks, so that 300 connections still read as a fabric.
        alpha = int(max(60, min(200, 4000 / max(1, layers * (layers + 1) / 2))))
        hovering = self._hover is not None
        for s, t in self.arcs():
            lit = hovering and self._hover in (s, t)
            colour = QColor(HOVER_COLOUR if lit else EXIT_COLOUR if t == exit_node else LAYER_COLOUR)
            colour.setAlpha(230 if lit else (alpha // 3 if hovering else alpha))
            pen = QPen(colour, 2.0 if lit else 1.2)
            if t == exit_node:
                pen.setStyle(Qt.PenStyle.DashLine)
            p.setPen(pen)
            x0, x1 = self.node_x(s), self.node_x(t)
            h = span_height * (t - s) / (n - 1) / 0.75  # a cubic's peak is 3/4 of its control height
            path = QPainterPath(QPointF(x0, y - box / 2))
            path.cubicTo(QPointF(x0, y - box / 2 - h), QPointF(x1, y - box / 2 - h), QPointF(x1, y - box / 2))
            p.drawPath(path)
        # Nodes, numbered where the numbers fit.
        xs = [self.node_x(i) for i in range(n)]
        labels, widths, numbered = self.node_boxes()
        for i in range(n):
            colour = QColor("#5b6c8f") if i == 0 else EXIT_COLOUR if i == exit_node else LAYER_COLOUR
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(HOVER_COLOUR if i == self._hover else colour)
            rect = QRectF(xs[i] - widths[i] / 2, y - box / 2, widths[i], box)
            p.drawRoundedRect(rect, 3, 3)
            if i in numbered:
                p.setPen(QColor("white"))
                p.drawText(rect, Qt.AlignmentFlag.AlignCenter, labels[i])
        # Channels held after each node (the consumer: its output), thinned so that none overlap.
        counts = [str(c) for c in self.channels()]
        if self._exit == "classifier":
            counts[-1] = ""  # not channels but classes: the caption says how many
        advances = [fm.horizontalAdvance(c) for c in counts]
        p.setPen(text)
        row = QRectF(0, y + box / 2 + 2, 0, fm.height())
        numbers = node_numbers(layers)
        for i in ticks(xs, advances, numbers, [0, exit_node]):
            p.drawText(QRectF(xs[i] - advances[i] / 2 - 1, row.y(), advances[i] + 2, row.height()),
                       Qt.AlignmentFlag.AlignCenter, counts[i])
        caption = f"channels after each layer (+{k} per layer)"
        exit_caption = f"→ {self._exit}" + (f" ({self._exit_channels} classes)" if self._exit == "classifier" else "")
        y2 = row.y() + fm.height() + 2
        p.setPen(self.palette().placeholderText().color())
        if fm.horizontalAdvance(caption) + fm.horizontalAdvance(exit_caption) + 20 > self.width():
            caption = f"channels (+{k}/layer)"
        p.drawText(QRectF(4, y2, self.width() - 8, fm.height()), Qt.AlignmentFlag.AlignLeft, caption)
        p.drawText(QRectF(4, y2, self.width() - 8, fm.height()), Qt.AlignmentFlag.AlignRight, exit_caption)
        p.end()
