"""Which layer's features carry the evidence: one bar per source of a dense block (``model.sources``).

The panel gets plain data (names, shares, channel ranges) and draws a row per source: its name, a bar
from a zero line (to the left when the source argues against the class) and its share in percent.
Clicking a row, or Up/Down with the keyboard, emits ``sourceChosen(index)``; the window then shows
that source's map in its main view.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QEvent, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QLabel, QScrollArea, QToolTip, QVBoxLayout, QWidget

from gui.text import plain_tooltip

PAD = 6
GAP = 8
MIN_BAR = 80  # the bar area never shrinks below this: the labels and values keep their room
NEGATIVE = QColor(200, 80, 70)


def share_text(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f}%"


class ShareBars(QWidget):
    """The painted rows; part of ``SourcesPanel``."""

    rowClicked = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAccessibleName("Share of the evidence by source")
        self._names: list[str] = []
        self._shares: list[float | None] = []
        self._channels: list[tuple[int, int] | None] = []
        self._selected: int | None = None

    # -- data --------------------------------------------------------------
    def set_rows(self, names: Sequence[str], shares: Sequence[float | None],
                 channels: Sequence[tuple[int, int] | None]) -> None:
        self._names, self._shares, self._channels = list(names), list(shares), list(channels)
        if self._selected is not None and self._selected >= len(self._names):
            self._selected = None
        self._fit()
        self.update()

    def set_selected(self, index: int | None) -> None:
        self._selected = index
        self.update()

    def selected(self) -> int | None:
        return self._selected

    def count(self) -> int:
        return len(self._names)

    # -- geometry ----------------------------------------------------------
    def row_height(self) -> int:
        return max(22, self.fontMetrics().height() + 8)

    def _columns(self) -> tuple[int, int]:
        """(name column width, value column width) wide enough for every text shown."""
        fm = self.fontMetrics()
        name_w = max([fm.horizontalAdvance(n) for n in self._names] + [fm.horizontalAdvance("denselayer00")])
        value_w = max([fm.horizontalAdvance(share_text(s)) for s in self._shares] + [fm.horizontalAdvance("-100.0%")])
        return name_w, value_w

    def _fit(self) -> None:
        name_w, value_w = self._columns()
        self.setMinimumSize(PAD + name_w + GAP + MIN_BAR + GAP + value_w + PAD,
                            2 * PAD + self.row_height() * max(1, len(self._names)))
        self.updateGeometry()

    def sizeHint(self) -> QSize:
        name_w, value_w = self._columns()
        return QSize(PAD + name_w + GAP + 2 * MIN_BAR + GAP + value_w + PAD, self.minimumHeight())

    def row_rect(self, index: int) -> QRect:
        h = self.row_height()
        return QRect(0, PAD + index * h, self.width(), h)

    def name_rect(self, index: int) -> QRect:
        r = self.row_rect(index)
        return QRect(PAD, r.top(), self._columns()[0], r.height())

    def value_rect(self, index: int) -> QRect:
        r = self.row_rect(index)
        value_w = self._columns()[1]
        return QRect(self.width() - PAD - value_w, r.top(), value_w, r.height())

    def _bar_area(self) -> tuple[int, int]:
        name_w, value_w = self._columns()
        left = PAD + name_w + GAP
        return left, max(MIN_BAR, self.width() - left - GAP - value_w - PAD)

    def bar_rect(self, index: int) -> QRect:
        """Where source ``index``'s bar is drawn (empty without a share)."""
        share = self._shares[index]
        known = [s for s in self._shares if s is not None]
        r = self.row_rect(index)
        if share is None or not known:
            return QRect()
        lo, hi = min(0.0, *known), max(0.0, *known)
        span = hi - lo or 1.0
        left, width = self._bar_area()
        zero = left + round(-lo / span * width)
        end = left + round((share - lo) / span * width)
        x0, x1 = min(zero, end), max(zero, end)
        return QRect(x0, r.top() + 4, max(1, x1 - x0), r.height() - 8)

    def index_at(self, pos: QPoint) -> int | None:
        i = (pos.y() - PAD) // self.row_height()
        return i if pos.y() >= PAD and 0 <= i < len(self._names) else None

    def tooltip(self, index: int) -> str:
        share, channels = self._shares[index], self._channels[index]
        where = f" (channels {channels[0]}–{channels[1] - 1})" if channels else ""
        if share is None:
            what = "no positive evidence to share"
        elif share < 0:
            what = f"{share_text(share)}: argues against the class where the map is positive"
        else:
            what = f"{share_text(share)} of the positive evidence"
        return f"{self._names[index]}{where}: {what}. Click to show its map."

    # -- painting and input ------------------------------------------------
    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        palette = self.palette()
        text_colour = palette.color(QPalette.ColorRole.WindowText)
        for i, name in enumerate(self._names):
            r = self.row_rect(i)
            if i == self._selected:
                painter.fillRect(r, palette.color(QPalette.ColorRole.Highlight).lighter(160))
            painter.setPen(text_colour)
            painter.drawText(self.name_rect(i), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, name)
            bar = self.bar_rect(i)
            if not bar.isEmpty():
                share = self._shares[i]
                colour = palette.color(QPalette.ColorRole.Highlight) if share >= 0 else NEGATIVE
                painter.fillRect(bar, colour)
            painter.setPen(text_colour)
            painter.drawText(self.value_rect(i), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                             share_text(self._shares[i]))
        if any(s is not None for s in self._shares):  # the zero line
            known = [s for s in self._shares if s is not None]
            lo, hi = min(0.0, *known), max(0.0, *known)
            left, width = self._bar_area()
            zero = left + round(-lo / ((hi - lo) or 1.0) * width)
            painter.setPen(palette.color(QPalette.ColorRole.Mid))
            painter.drawLine(zero, PAD, zero, PAD + len(self._names) * self.row_height())
        painter.end()

    def mousePressEvent(self, event) -> None:
        index = self.index_at(event.position().toPoint())
        if index is not None and event.button() == Qt.MouseButton.LeftButton:
            self.rowClicked.emit(index)
            event.accept()
            return
        super().mousePressEvent(event)

    def keyPressEvent(self, event) -> None:
        step = {Qt.Key.Key_Up: -1, Qt.Key.Key_Down: 1}.get(event.key())
        if step and self._names:
            current = self._selected if self._selected is not None else (-1 if step > 0 else len(self._names))
            self.rowClicked.emit(min(len(self._names) - 1, max(0, current + step)))
            event.accept()
            return
        super().keyPressEvent(event)

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            index = self.index_at(event.pos())
            if index is None:
                QToolTip.hideText()
            else:
                QToolTip.showText(event.globalPos(), plain_tooltip(self.tooltip(index)), self)
            return True
        return super().event(event)


class SourcesPanel(QWidget):
    """For the selected class and dense block: each source's share of the evidence, as clickable bars."""

    sourceChosen = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self._caption = QLabel("Which layer's features carry the evidence appears here for a dense block.")
        self._caption.setWordWrap(True)
        self._caption.setTextFormat(Qt.TextFormat.PlainText)  # the caption holds a class name
        layout.addWidget(self._caption)
        self.bars = ShareBars()
        self.bars.rowClicked.connect(self.show_source)
        self._scroll = QScrollArea()
        self._scroll.setWidgetResizable(True)
        self._scroll.setWidget(self.bars)
        layout.addWidget(self._scroll, 1)
        self._layer = ""
        self._label = ""

    def set_sources(self, layer: str, label: str, names: Sequence[str], shares: Sequence[float | None] | None,
                    channels: Sequence[tuple[int, int]] | None = None, message: str = "") -> None:
        """Show one (dense block, class) split: ``shares[i]`` of source ``names[i]`` (None: no evidence).

        ``message`` replaces the caption's explanation (e.g. why there is no share to show).
        """
        shares = list(shares) if shares is not None else [None] * len(names)
        if len(shares) != len(names):
            raise ValueError(f"{len(names)} sources but {len(shares)} shares")
        channels = [tuple(c) for c in channels] if channels is not None else [None] * len(names)
        self._layer, self._label = layer, label
        if all(s is None for s in shares) and not message:
            message = "no positive evidence: nothing to share"
        detail = message or "share of the positive evidence by source; click one to see its map"
        self._caption.setText(f"{label} · {layer}: {detail}")
        self.bars.set_selected(None)
        self.bars.set_rows(names, shares, channels)
        # Up to ten rows in view without scrolling; a deep block (DenseNet-121's third has 25) scrolls.
        self._scroll.setMinimumHeight(min(len(names), 10) * self.bars.row_height() + 2 * self._scroll.frameWidth())

    def clear(self, message: str = "") -> None:
        self._layer = self._label = ""
        self._caption.setText(message or "Which layer's features carry the evidence appears here for a dense block.")
        self.bars.set_selected(None)
        self.bars.set_rows([], [], [])

    def select(self, index: int | None) -> None:
        """Highlight a source without emitting (to follow a choice made elsewhere)."""
        if index is not None and not 0 <= index < self.bars.count():
            raise IndexError(f"source {index} of {self.bars.count()}")
        self.bars.set_selected(index)

    def show_source(self, index: int) -> None:
        """Choose source ``index``: highlight its bar and emit ``sourceChosen(index)`` (the window shows its map)."""
        self.select(index)
        self.sourceChosen.emit(index)
