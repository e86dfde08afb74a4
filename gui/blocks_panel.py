"""Small heatmaps of every dense block side by side for the current class: attention sharpening block by block."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QToolButton, QWidget

from gui.engine import TILE
from gui.qimages import indexed_image, rgb_pixmap
from gui.text import plain_tooltip
from model.render import colour_table

NO_EVIDENCE = "no evidence"  # written over a tile whose map has no positive evidence


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
        self._note.setTextFormat(Qt.TextFormat.PlainText)  # the caption holds a class name
        self._grid.addWidget(self._note, 0, 0, 1, 2)
        self._thumb: np.ndarray | None = None
        self._base: QPixmap | None = None  # the thumbnail scaled to a tile, made once per picture
        self._heat_pixmaps: dict[str, QPixmap] = {}
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
        if colormap != self._colormap:
            self._heat_pixmaps.clear()
        self._colormap, self._opacity = colormap, opacity
        self._repaint()

    def show_maps(self, thumbnail: np.ndarray | None, heat: dict[str, np.ndarray], messages: dict[str, str],
                  caption: str) -> None:
        """``thumbnail``: the picture at tile size; ``heat``: layer -> tile-sized index image;
        ``messages``: layer -> why it has no map."""
        if thumbnail is not self._thumb:
            self._thumb = thumbnail
            self._base = None if thumbnail is None else rgb_pixmap(thumbnail).scaled(
                TILE, TILE, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        if any(heat.get(layer) is not index for layer, index in self._heat.items()) or heat.keys() != self._heat.keys():
            self._heat_pixmaps.clear()
        self._heat, self._messages = heat, messages
        self._note.setText(caption)
        for tile in self._tiles.values():
            tile.setEnabled(thumbnail is not None)  # no picture (one that cannot be read): nothing to click
        self._repaint()

    def set_stale(self, stale: bool) -> None:
        """Grey the tiles out while they show what the main view no longer does (another picture, method or
        region is being analysed); ``show_maps`` brings them back."""
        for tile in self._tiles.values():
            tile.setEnabled(not stale)

    def select(self, layer: str) -> None:
        for name, tile in self._tiles.items():
            tile.setChecked(name == layer)

    def _heat_pixmap(self, layer: str, index: np.ndarray) -> QPixmap:
        """The layer's heat in the current colormap at the base's size, made once per map and colormap."""
        pixmap = self._heat_pixmaps.get(layer)
        if pixmap is None:
            pixmap = QPixmap.fromImage(indexed_image(index, colour_table(self._colormap))).scaled(
                self._base.size(), Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation)
            self._heat_pixmaps[layer] = pixmap
        return pixmap

    def _repaint(self) -> None:
        """Composite each tile from cached pixmaps: a style change touches only tile-sized images."""
        if self._base is None:  # nothing to draw yet (and no colormap library to load at start-up)
            for layer, tile in self._tiles.items():
                tile.setIcon(QIcon())
                tile.setText(layer)
            return
        for layer, tile in self._tiles.items():
            index = self._heat.get(layer)
            if index is None:
                tile.setIcon(QIcon())
                tile.setText(layer)
                continue
            canvas = QPixmap(self._base)
            painter = QPainter(canvas)
            if layer in self._messages:  # said on the picture: the caption under it keeps the block's name whole
                painter.fillRect(canvas.rect(), QColor(0, 0, 0, 120))
                painter.setPen(Qt.GlobalColor.white)
                painter.drawText(canvas.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, NO_EVIDENCE)
            else:
                painter.setOpacity(self._opacity)
                painter.drawPixmap(0, 0, self._heat_pixmap(layer, index))
            painter.end()
            tile.setIcon(QIcon(canvas))
            tile.setText(layer)
            tile.setToolTip(plain_tooltip(self._messages.get(layer) or f"{layer}: click to show it in the main view"))

    def pixmap(self, layer: str) -> QPixmap:
        return self._tiles[layer].icon().pixmap(QSize(TILE, TILE))
