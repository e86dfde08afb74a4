"""Turning an RGB image into the network's input, remembering where each pixel came from.

Two analysis modes:

* ``full`` (default): the whole picture, shorter side resized to the model's
  input size with the aspect ratio kept (DenseNet's global pooling accepts any
  size).  Extreme aspect ratios are capped so the longer side stays at most
  ``MAX_ASPECT`` times the input size, and no side goes below ``MIN_SIDE``.
* ``center-crop``: torchvision's evaluation protocol (resize the shorter side
  to 256/224 of the input size, then crop the centre square).

``Geometry`` records the analysed region in original-image pixels so a map at
analysed resolution can be placed back on the original picture.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

MODES = ("full", "center-crop")
MAX_ASPECT = 4
MIN_SIDE = 32
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Geometry:
    """Where the analysed image sits on the original picture.

    ``crop_box`` is (left, top, right, bottom) in original pixels (floats);
    the analysed image of ``analysed_size`` (width, height) covers exactly it.
    """

    original_size: tuple[int, int]
    analysed_size: tuple[int, int]
    crop_box: tuple[float, float, float, float]
    mode: str

    @property
    def covers_whole_image(self) -> bool:
        w, h = self.original_size
        left, top, right, bottom = self.crop_box
        return left <= 0.5 and top <= 0.5 and right >= w - 0.5 and bottom >= h - 0.5

    def to_original(self, x: float, y: float) -> tuple[float, float]:
        """Map a point in analysed pixels to original pixels."""
        left, top, right, bottom = self.crop_box
        aw, ah = self.analysed_size
        return left + x * (right - left) / aw, top + y * (bottom - top) / ah


def _full_size(w: int, h: int, size: int) -> tuple[int, int]:
    scale = size / min(w, h)
    if max(w, h) * scale > MAX_ASPECT * size:
        scale = MAX_ASPECT * size / max(w, h)
    return max(MIN_SIDE, round(w * scale)), max(MIN_SIDE, round(h * scale))


def plan(original_size: tuple[int, int], mode: str = "full", size: int = 224) -> Geometry:
    """Decide the analysed size and region for an image of ``original_size``."""
    if mode not in MODES:
        raise ValueError(f"unknown preprocessing mode {mode!r}; choose from {', '.join(MODES)}")
    w, h = original_size
    if mode == "full":
        return Geometry(original_size, _full_size(w, h, size), (0.0, 0.0, float(w), float(h)), mode)
    resize = round(size * 256 / 224)
    scale = resize / min(w, h)
    rw, rh = max(size, round(w * scale)), max(size, round(h * scale))
    left, top = (rw - size) // 2, (rh - size) // 2
    sx, sy = w / rw, h / rh
    box = (left * sx, top * sy, (left + size) * sx, (top + size) * sy)
    return Geometry(original_size, (size, size), box, mode)


def decode_size_hint(original_size: tuple[int, int], mode: str = "full", size: int = 224) -> tuple[int, int]:
    """Smallest decoded (width, height) that still has every pixel the analysis needs."""
    w, h = original_size
    g = plan(original_size, mode, size)
    left, top, right, bottom = g.crop_box
    aw, ah = g.analysed_size
    fx, fy = aw / (right - left), ah / (bottom - top)
    return min(w, int(np.ceil(w * fx))), min(h, int(np.ceil(h * fy)))


def analysed_image(image: Image.Image, geometry: Geometry) -> Image.Image:
    """Resample ``image`` (any scale of the original) to the analysed region and size."""
    sx = image.width / geometry.original_size[0]
    sy = image.height / geometry.original_size[1]
    left, top, right, bottom = geometry.crop_box
    box = (left * sx, top * sy, right * sx, bottom * sy)
    return image.resize(geometry.analysed_size, Image.Resampling.BILINEAR, box=box)


def to_tensor(image: Image.Image, mean: tuple[float, ...] = IMAGENET_MEAN,
              std: tuple[float, ...] = IMAGENET_STD) -> torch.Tensor:
    """HWC uint8 RGB -> normalised float CHW tensor."""
    arr = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy())
    x = arr.permute(2, 0, 1).float().div_(255.0)
    m = torch.tensor(mean).view(3, 1, 1)
    s = torch.tensor(std).view(3, 1, 1)
    return x.sub_(m).div_(s)
