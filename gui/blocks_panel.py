"""Small heatmaps of every dense block side by side for the current class: attention sharpening block by block."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QToolButton, QWidget

from gui.qimages import indexed_image, rgb_pixmap
from model.render import colour_table

TILE = 132


class BlockTile(QToolButton):
    def __init__(self, layer: str, parent=None) -> None:
        super().__init__(parent)
        self.layer = layer
        self.setCheckable(True)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
        self.setIconSize(QSize(TILE, TILE))
        self.setText(layer)
        self.setAccessibleName(f"Heatmap of {layer}")
        self.setToolTip(f"{layer}: click to show this block's heatmap in the main view")
        self.setMinimumSize(TILE + 12, TILE + 30)  # tiles never shrink to unreadable stamps


class BlocksPanel(QWidget):
    layerChosen = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._grid = QGridLayout(self)
        self._grid.setSpacing(4)
        self._tiles: dict[str, BlockTile] = {}
        self._note = QLabel("Dense-block heatmaps appear here.")
        self._note.setWordWrap(True)
        self._grid.addWidget(self._note, 0, 0, 1, 2)
        self._thumb: np.ndarray | None = None
        self._heat: dict[str, np.ndarray] = {}
        self._messages: dict[str, str] = {}
        self._colormap = "jet"
        self._opacity = 0.5

    def set_layers(self, layers: list[str]) -> None:
        for tile in self._tiles.values():
            tile.deleteLater()
        self._tiles.clear()
        for i, layer in enumerate(layers):
            tile = BlockTile(layer, self)
            tile.clicked.connect(lambda _c=False, name=layer: self.layerChosen.emit(name))
            self._tiles[layer] = tile
            self._grid.addWidget(tile, 1 + i // 2, i % 2)

    def layers(self) -> list[str]:
        return list(self._tiles)

    def tile(self, layer: str) -> BlockTile:
        return self._tiles[layer]

    def set_style(self, colormap: str, opacity: float) -> None:
        self._colormap, self._opacity = colormap, opacity
        self._repaint()

    def show_maps(self, picture: np.ndarray | None, heat: dict[str, np.ndarray], messages: dict[str, str],
                  caption: str) -> None:
        """``heat``: layer -> index image; ``messages``: layer -> why it has no map."""
        self._thumb = picture
        self._heat, self._messages = heat, messages
        self._note.setText(caption)
        self._repaint()

    def select(self, layer: str) -> None:
        for name, tile in self._tiles.items():
            tile.setChecked(name == layer)

    def _repaint(self) -> None:
        if self._thumb is None:  # nothing to draw yet (and no colormap library to load at start-up)
            for layer, tile in self._tiles.items():
                tile.setIcon(QIcon())
                tile.setText(layer)
            return
        table = colour_table(self._colormap)
        base = rgb_pixmap(self._thumb)
        for layer, tile in self._tiles.items():
            index = self._heat.get(layer)
            if index is None:
                tile.setIcon(QIcon())
                tile.setText(layer)
                continue
            canvas = base.scaled(TILE, TILE, Qt.AspectRatioMode.KeepAspectRatio,
                                 Qt.TransformationMode.SmoothTransformation)
            if layer not in self._messages:
                heat = QPixmap.fromImage(indexed_image(index, table)).scaled(
                    canvas.size(), Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation)
                painter = QPainter(canvas)
                painter.setOpacity(self._opacity)
                painter.drawPixmap(0, 0, heat)
                painter.end()
            tile.setIcon(QIcon(canvas))
            tile.setText(layer if layer not in self._messages else f"{layer}: no evidence")
            tile.setToolTip(self._messages.get(layer) or f"{layer}: click to show it in the main view")

    def pixmap(self, layer: str) -> QPixmap:
        return self._tiles[layer].icon().pixmap(QSize(TILE, TILE))
