""""Explore DenseNet": the loaded network drawn stage by stage, each dense block clickable."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

KIND_COLOURS = {"stem": "#5b6c8f", "denseblock": "#2e7d5b", "transition": "#8a6d2f", "head": "#6d3f7d"}


def stage_text(stage: dict) -> str:
    """What one card says about a stage of the architecture report."""
    size = f"{stage['width']}×{stage['height']}"
    lines = [f"<b>{stage['name']}</b>", f"{stage['in_channels']} → {stage['out_channels']} channels",
             f"feature map {size}", f"{stage['parameters']:,} parameters"]
    if stage["kind"] == "denseblock":
        growth = stage.get("channel_growth", [])
        shown = growth if len(growth) <= 6 else [*growth[:3], "…", *growth[-2:]]
        lines[1:1] = [f"{stage['layers']} layers, growth rate k={stage['growth_rate']}",
                      f"channels: {' → '.join(map(str, shown))}",
                      f"{stage['connections']} direct connections (L(L+1)/2)"]
    return "<br>".join(lines)


class ArchitectureDialog(QDialog):
    layerChosen = Signal(str)

    def __init__(self, report: dict, model_name: str, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Explore DenseNet — {model_name}")
        self.setMinimumSize(720, 360)
        layout = QVBoxLayout(self)
        summary = QLabel(
            f"<b>{html.escape(model_name)}</b>: DenseNet-BC, growth rate k={report['growth_rate']}, dense blocks "
            f"{report['block_config']}, {report['parameters']:,} parameters, input "
            f"{report['input_size'][1]}×{report['input_size'][0]}. Each layer of a dense block receives the "
            f"feature maps of <i>all</i> earlier layers of the block (concatenated) and adds k new ones; "
            f"transitions halve the channels (compression {report['compression']}) and the resolution.")
        summary.setWordWrap(True)
        layout.addWidget(summary)
        strip = QWidget()
        row = QHBoxLayout(strip)
        self.buttons: dict[str, QPushButton] = {}
        for i, stage in enumerate(report["stages"]):
            if i:
                arrow = QLabel("→")
                arrow.setAlignment(Qt.AlignmentFlag.AlignCenter)
                row.addWidget(arrow)
            card = QPushButton()
            card.setAccessibleName(f"Stage {stage['name']}")
            label = QLabel(stage_text(stage))
            label.setTextFormat(Qt.TextFormat.RichText)
            label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
            label.setStyleSheet("color: white;")
            inner = QVBoxLayout(card)
            inner.addWidget(label)
            card.setMinimumSize(170, 150)
            card.setStyleSheet(f"QPushButton {{ background: {KIND_COLOURS[stage['kind']]}; border-radius: 6px; }}")
            if stage["kind"] in ("denseblock", "transition") or stage["name"] == "norm5":
                card.setToolTip(f"Show the heatmap of {stage['name']}")
                card.clicked.connect(lambda _c=False, n=stage["name"]: self._choose(n))
                self.buttons[stage["name"]] = card
            else:
                card.setEnabled(False)
            row.addWidget(card)
        scroll = QScrollArea()
        scroll.setWidget(strip)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        layout.addWidget(scroll, 1)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout.addWidget(close)

    def _choose(self, layer: str) -> None:
        self.layerChosen.emit(layer)
        self.accept()
