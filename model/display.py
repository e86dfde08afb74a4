"""Arrays ready for a screen: pictures capped in size, heatmaps as 8-bit colour-table indices.

A heatmap goes to the GUI as a ``uint8`` index image: 0..254 are heat levels
(the GUI maps them through the current colormap's colour table, so changing
colormap or opacity needs no recomputation) and ``OUTSIDE`` marks pixels
outside the analysed region (center-crop), drawn transparent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from model.explain import LayerClassMap, place_on_original
from model.explain import normalise as normalise_map
from model.preprocess import Geometry

OUTSIDE = 255
LEVELS = 255  # heat levels 0..254
MAX_DISPLAY_SIDE = 2048


@dataclass
class HeatView:
    """One (layer, class) heatmap for display."""

    layer: str
    class_index: int
    label: str
    probability: float
    status: str
    message: str
    index: np.ndarray  # (h, w) uint8, covering the whole picture (scaled to it)


def display_scale(size: tuple[int, int], max_side: int = MAX_DISPLAY_SIDE) -> float:
    return min(1.0, max_side / max(size))


def picture_array(image: Image.Image, max_side: int = 4096) -> np.ndarray:
    """RGB uint8 array of the picture, shrunk to at most ``max_side`` pixels on its longer side."""
    s = display_scale(image.size, max_side)
    if s < 1.0:
        image = image.resize((max(1, round(image.width * s)), max(1, round(image.height * s))),
                             Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def heat_index(m: LayerClassMap, max_side: int = MAX_DISPLAY_SIDE) -> np.ndarray:
    """The map on the picture's grid (shrunk to ``max_side``) as 8-bit indices; OUTSIDE off the analysed region."""
    g = m.geometry
    s = display_scale(g.original_size, max_side)
    w, h = (max(1, round(v * s)) for v in g.original_size)
    scaled = Geometry((w, h), g.analysed_size, tuple(v * s for v in g.crop_box), g.mode)
    norm = normalise_map(m.raw) if m.ok else np.zeros_like(m.raw)
    heat = place_on_original(norm, scaled)
    index = np.minimum((heat * (LEVELS - 1) + 0.5).astype(np.uint8), LEVELS - 1)
    if not scaled.covers_whole_image:
        left, top, right, bottom = (round(v) for v in scaled.crop_box)
        outside = np.ones((h, w), dtype=bool)
        outside[max(0, top):bottom, max(0, left):right] = False
        index[outside] = OUTSIDE
    return index


def heat_view(m: LayerClassMap, max_side: int = MAX_DISPLAY_SIDE) -> HeatView:
    return HeatView(m.layer, m.class_index, m.label, m.probability, m.status, m.status_message(),
                    heat_index(m, max_side))
