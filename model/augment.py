"""Training-time augmentation of a picture, drawn from a seeded generator (reproducible, resumable).

Every variant produces the geometry the model sees at inference (a square of
the input size taken from the picture) so training and inference prepare
pictures alike; augmentation only varies *which* region, its orientation and
its colours.  ``none`` is exactly the inference preprocessing.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageEnhance

AUGMENTATIONS = ("none", "light", "strong")

# (area scale range, rotation degrees, colour jitter strength)
_SETTINGS = {"light": ((0.6, 1.0), 0.0, 0.0), "strong": ((0.35, 1.0), 15.0, 0.3)}
_RATIO = (3 / 4, 4 / 3)


def random_resized_crop(image: Image.Image, size: int, scale: tuple[float, float],
                        rng: np.random.Generator) -> Image.Image:
    """A random region of ``scale`` of the area and aspect 3:4..4:3, resized to ``size`` x ``size``."""
    w, h = image.size
    area = w * h
    for _ in range(10):
        target = area * rng.uniform(*scale)
        ratio = math.exp(rng.uniform(math.log(_RATIO[0]), math.log(_RATIO[1])))
        cw, ch = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < cw <= w and 0 < ch <= h:
            left, top = rng.integers(0, w - cw + 1), rng.integers(0, h - ch + 1)
            return image.resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + cw, top + ch))
    side = min(w, h)  # fall back to the centre square
    left, top = (w - side) // 2, (h - side) // 2
    return image.resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + side, top + side))


def augment(image: Image.Image, size: int, level: str, rng: np.random.Generator) -> Image.Image:
    """A training view of ``image`` (RGB): a random crop, a flip half the time, and for ``strong``
    a small rotation and colour jitter."""
    scale, degrees, jitter = _SETTINGS[level]
    out = random_resized_crop(image, size, scale, rng)
    if rng.random() < 0.5:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if degrees:
        out = out.rotate(rng.uniform(-degrees, degrees), Image.Resampling.BILINEAR,
                         fillcolor=tuple(int(v) for v in np.asarray(out).reshape(-1, 3).mean(0)))
    if jitter:
        for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            out = enhancer(out).enhance(rng.uniform(1 - jitter, 1 + jitter))
    return out
