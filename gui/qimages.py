"""Converting the engine's NumPy arrays into Qt images (copies: Qt must not share NumPy's memory)."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage, QPixmap, qRgba


def rgb_image(array: np.ndarray) -> QImage:
    """(H, W, 3) uint8 -> QImage (RGB888)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    h, w, _ = array.shape
    return QImage(array.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def rgb_pixmap(array: np.ndarray) -> QPixmap:
    return QPixmap.fromImage(rgb_image(array))


def indexed_image(index: np.ndarray, table: list[tuple[int, int, int, int]]) -> QImage:
    """(H, W) uint8 indices -> QImage (Indexed8) with an RGBA colour table."""
    index = np.ascontiguousarray(index, dtype=np.uint8)
    h, w = index.shape
    image = QImage(index.data, w, h, w, QImage.Format.Format_Indexed8).copy()
    image.setColorTable([qRgba(*rgba) for rgba in table])
    return image
