"""Turning normalised heatmaps into pictures: colormaps, overlays, grids (NumPy + Pillow, no Qt)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFont

COLORMAPS = ("jet", "turbo", "inferno", "viridis", "grey")

if TYPE_CHECKING:
    from model.preprocess import Geometry

_MATPLOTLIB_NAMES = {"grey": "gray"}
OUTSIDE_DIM = 0.45  # brightness kept outside the analysed region (center-crop)


@cache
def colormap_lut(name: str) -> np.ndarray:
    """A (256, 3) uint8 lookup table from matplotlib's maintained colormaps."""
    if name not in COLORMAPS:
        raise ValueError(f"unknown colormap {name!r}; choose from {', '.join(COLORMAPS)}")
    from matplotlib import colormaps

    cmap = colormaps[_MATPLOTLIB_NAMES.get(name, name)]
    return (cmap(np.linspace(0.0, 1.0, 256))[:, :3] * 255.0).round().astype(np.uint8)


def colour_table(colormap: str, levels: int = 255) -> list[tuple[int, int, int, int]]:
    """RGBA per 8-bit index for display: ``levels`` heat levels, then transparent (outside the analysed region)."""
    picks = np.linspace(0, 255, levels).round().astype(int)
    return [(int(r), int(g), int(b), 255) for r, g, b in colormap_lut(colormap)[picks]] + [(0, 0, 0, 0)]


def colorize(heat: np.ndarray, colormap: str = "jet") -> np.ndarray:
    """(H, W) values in [0, 1] -> (H, W, 3) uint8 colours."""
    index = np.clip(np.nan_to_num(heat) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return colormap_lut(colormap)[index]


def region_mask(geometry: Geometry) -> np.ndarray | None:
    """Boolean (H, W) mask of the analysed region, or None when it is the whole picture."""
    if geometry.covers_whole_image:
        return None
    w, h = geometry.original_size
    left, top, right, bottom = (round(v) for v in geometry.crop_box)
    mask = np.zeros((h, w), dtype=bool)
    mask[max(0, top):bottom, max(0, left):right] = True
    return mask


def overlay(image: Image.Image, heat: np.ndarray, alpha: float = 0.5, colormap: str = "jet",
            geometry: Geometry | None = None) -> Image.Image:
    """Blend ``heat`` (on the image's pixel grid) over ``image`` at full resolution.

    Outside the analysed region (center-crop) nothing is coloured and the
    picture is dimmed, so the user sees where the network looked.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError("alpha must be between 0 and 1")
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    if heat.shape != base.shape[:2]:
        raise ValueError(f"heatmap {heat.shape[::-1]} does not match image {image.size}")
    out = base * (1.0 - alpha) + colorize(heat, colormap).astype(np.float32) * alpha
    mask = region_mask(geometry) if geometry is not None else None
    if mask is not None:
        out[~mask] = base[~mask] * OUTSIDE_DIM
    return Image.fromarray(out.round().clip(0, 255).astype(np.uint8), "RGB")


def heatmap_image(heat: np.ndarray, colormap: str = "jet", geometry: Geometry | None = None) -> Image.Image:
    """The coloured heatmap alone; outside the analysed region is black."""
    rgb = colorize(heat, colormap)
    mask = region_mask(geometry) if geometry is not None else None
    if mask is not None:
        rgb[~mask] = 0
    return Image.fromarray(rgb, "RGB")


def raw_to_uint16(raw: np.ndarray) -> tuple[np.ndarray, float]:
    """Scale a raw map to 0..65535 for a 16-bit PNG; returns (array, value of 65535)."""
    top = float(np.nanmax(raw)) if raw.size and np.isfinite(raw).any() else 0.0
    if top <= 0:
        return np.zeros(raw.shape, np.uint16), 0.0
    scaled = np.nan_to_num(raw / top).clip(0, 1) * 65535.0
    return scaled.round().astype(np.uint16), top


def grid(tiles: Sequence[tuple[str, Image.Image]], tile_size: int = 320, title: str = "") -> Image.Image:
    """Tiles side by side, each scaled to ``tile_size`` on its longer side, captioned below."""
    font = ImageFont.load_default(size=max(12, tile_size // 22))
    scaled = []
    for caption, img in tiles:
        s = tile_size / max(img.size)
        scaled.append((caption, img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))),
                                           Image.Resampling.LANCZOS)))
    pad, caption_h = 8, font.size + 10
    title_h = caption_h if title else 0
    width = sum(im.width for _, im in scaled) + pad * (len(scaled) + 1)
    height = max(im.height for _, im in scaled) + caption_h + title_h + pad * 2
    canvas = Image.new("RGB", (width, height), (24, 24, 24))
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((pad, pad), title, fill=(235, 235, 235), font=font)
    x = pad
    for caption, im in scaled:
        canvas.paste(im, (x, pad + title_h))
        draw.text((x, pad + title_h + im.height + 4), caption, fill=(235, 235, 235), font=font)
        x += im.width + pad
    return canvas
