"""Turning an RGB image into the network's input, remembering where each pixel came from.

Two analysis modes:

* ``full`` (default): the whole picture, shorter side resized to the model's
  input size with the aspect ratio kept (DenseNet's global pooling accepts any
  size).  Extreme aspect ratios are capped so the longer side stays at most
  ``MAX_ASPECT`` times the input size, and no side goes below ``MIN_SIDE``.
* ``center-crop``: torchvision's evaluation protocol (resize the shorter side
  to 256/224 of the input size, then crop the centre square of the input size).

``Geometry`` records the analysed region in original-image pixels so a map at
analysed resolution can be placed back on the original picture.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from model.zoo import IMAGENET_MEAN, IMAGENET_STD, PREPROCESS_MODES, crop_resize

MAX_ASPECT = 4
MIN_SIDE = 32


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



def _full_size(w: int, h: int, size: int) -> tuple[int, int]:
    scale = size / min(w, h)
    if max(w, h) * scale > MAX_ASPECT * size:
        scale = MAX_ASPECT * size / max(w, h)
    return max(MIN_SIDE, round(w * scale)), max(MIN_SIDE, round(h * scale))


def plan(original_size: tuple[int, int], mode: str = "full", size: int = 224) -> Geometry:
    """Decide the analysed size and region for an image of ``original_size``."""
    if mode not in PREPROCESS_MODES:
        raise ValueError(f"unknown preprocessing mode {mode!r}; choose from {', '.join(PREPROCESS_MODES)}")
    w, h = original_size
    if mode == "full":
        return Geometry(original_size, _full_size(w, h, size), (0.0, 0.0, float(w), float(h)), mode)
    # torchvision's Resize(int) truncates the longer side; its CenterCrop rounds the offset.
    resize = crop_resize(size)
    rw, rh = (resize, int(resize * h / w)) if w <= h else (int(resize * w / h), resize)
    rw, rh = max(size, rw), max(size, rh)
    left, top = int(round((rw - size) / 2.0)), int(round((rh - size) / 2.0))
    sx, sy = w / rw, h / rh
    box = (left * sx, top * sy, (left + size) * sx, (top + size) * sy)
    return Geometry(original_size, (size, size), box, mode)


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
