"""The stages of a DenseNet as a compact table of clickable rows: channels, feature map, layers, parameters.

Every column is as wide as its widest cell, so no text is ever cut; a window too narrow for the table
scrolls instead (the table sits in a scroll area in ``ArchitectureDialog``).
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from gui.text import plain_tooltip

KIND_COLOURS = {"stem": "#5b6c8f", "denseblock": "#2e7d5b", "transition": "#8a6d2f", "head": "#6d3f7d"}
HEADERS = ("stage", "channels", "map", "layers", "parameters")
STRIPE = 5


def stage_cells(stage: dict) -> list[str]:
    """The texts of one row, in ``HEADERS`` order."""
    return [stage["name"], f"{stage['in_channels']} → {stage['out_channels']}",
            f"{stage['width']}×{stage['height']}", str(stage["layers"]) if stage["layers"] else "",
            f"{stage['parameters']:,}"]


def stage_tooltip(stage: dict, clickable: bool) -> str:
    kind, name = stage["kind"], stage["name"]
    if kind == "denseblock":
        text = (f"{name}: {stage['layers']} layers, growth rate k = {stage['growth_rate']}, "
                f"{stage['connections']} direct connections; {stage['in_channels']} channels in, "
                f"{stage['out_channels']} out, at {stage['width']}×{stage['height']}.")
    elif kind == "transition":
        text = (f"{name}: BN-ReLU-Conv1×1 from {stage['in_channels']} to {stage['out_channels']} channels, "
                f"then 2×2 average pooling to {stage['width']}×{stage['height']}.")
    elif name == "stem":
        text = f"stem: the first convolution(s), 3 → {stage['out_channels']} channels at {stage['width']}×" \
               f"{stage['height']}."
    elif name == "classifier":
        text = f"classifier: global average pooling, then a linear layer to {stage['out_channels']} classes."
    else:
        text = f"{name}: the final BN and ReLU over all {stage['out_channels']} channels."
    return text + (" Click to show its heatmap." if clickable else " Not a heatmap layer.")


class StageRow(QFrame):
    """One stage; a clickable row emits ``clicked(name)`` on a click, Space or Enter."""

    clicked = Signal(str)

    def __init__(self, stage: dict, clickable: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = stage["name"]
        self.kind = stage["kind"]
        self.clickable = clickable
        self.selected = False
        self._hover = False
        row = QHBoxLayout(self)
        row.setContentsMargins(STRIPE + 6, 3, 6, 3)
        self.cells = []
        for i, text in enumerate(stage_cells(stage)):
            label = QLabel(text)
            if i == 0:
                font = label.font()
                font.setBold(stage["kind"] == "denseblock")
                label.setFont(font)
            else:
                label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
            row.addWidget(label)
            self.cells.append(label)
        self.setToolTip(plain_tooltip(stage_tooltip(stage, clickable)))
        self.setAccessibleName(f"Stage {self.name}")
        if clickable:
            self.setCursor(Qt.CursorShape.PointingHandCursor)
            self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def set_selected(self, selected: bool) -> None:
        self.selected = selected
        self.update()

    def enterEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._hover = self.clickable
        self.update()

    def leaveEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._hover = False
        self.update()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self.clickable and event.button() == Qt.MouseButton.LeftButton and self.rect().contains(
                event.position().toPoint()):
            self.clicked.emit(self.name)
        else:
            super().mouseReleaseEvent(event)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self.clickable and event.key() in (Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.clicked.emit(self.name)
        else:
            super().keyPressEvent(event)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        p = QPainter(self)
        highlight = QColor(self.palette().highlight().color())
        if self.selected or self._hover or self.hasFocus():
            highlight.setAlpha(90 if self.selected else 40)
            p.fillRect(self.rect(), highlight)
        p.fillRect(QRectF(0, 1, STRIPE, self.height() - 2), QColor(KIND_COLOURS.get(self.kind, "#888888")))
        p.end()


class StageOverview(QWidget):
    """The header and one ``StageRow`` per stage of an architecture report; columns aligned."""

    stageClicked = Signal(str)

    def __init__(self, stages: list[dict], clickable: set[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(1)
        header = QWidget()
        header_row = QHBoxLayout(header)
        header_row.setContentsMargins(STRIPE + 6, 0, 6, 2)
        header_cells = []
        for i, text in enumerate(HEADERS):
            label = QLabel(text)
            palette = label.palette()
            palette.setColor(QPalette.ColorRole.WindowText, palette.placeholderText().color())
            label.setPalette(palette)
            if i:
                label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            header_row.addWidget(label)
            header_cells.append(label)
        layout.addWidget(header)
        self.rows: dict[str, StageRow] = {}
        for stage in stages:
            row = StageRow(stage, stage["name"] in clickable)
            row.clicked.connect(self.stageClicked)
            layout.addWidget(row)
            self.rows[stage["name"]] = row
        layout.addStretch(1)
        columns = [header_cells, *(row.cells for row in self.rows.values())]
        for i in range(len(HEADERS)):
            width = max(cells[i].sizeHint().width() for cells in columns)
            for cells in columns:
                cells[i].setFixedWidth(width)

    def select(self, name: str) -> None:
        for row_name, row in self.rows.items():
            row.set_selected(row_name == name)
