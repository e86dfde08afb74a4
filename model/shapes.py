"""A procedural, seeded dataset of shapes with known masks: the demo model's world.

Each sample is a shape of one of ``CLASSES`` at a random position, scale,
rotation, colour and aspect ratio, on a random background (gradient, noise,
stripes or checks) with clutter (lines, small blobs) that belongs to no class.
Every sample carries its object's mask, so heatmaps can be checked against
ground truth.  ``two_shape_sample`` puts two shapes of different classes in
one picture.  Sample ``i`` of a seed is always the same picture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASSES = ("circle", "square", "triangle", "star", "cross", "hexagon", "heart", "crescent")
SUPERSAMPLE = 4  # shapes are drawn larger and shrunk, for smooth edges


@dataclass
class ShapeSample:
    image: Image.Image
    labels: list[int]  # one class per shape
    masks: list[np.ndarray]  # (H, W) bool per shape

    @property
    def label(self) -> int:
        return self.labels[0]

    @property
    def mask(self) -> np.ndarray:
        return self.masks[0]

    def box(self, i: int = 0) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of shape ``i``, right/bottom exclusive."""
        ys, xs = np.nonzero(self.masks[i])
        return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _polygon(kind: str) -> list[tuple[float, float]]:
    """Outline of a shape in unit coordinates (about [-1, 1])."""
    if kind == "square":
        return [(-1, -1), (1, -1), (1, 1), (-1, 1)]
    if kind == "triangle":
        return [(math.cos(a), math.sin(a)) for a in np.radians([-90, 30, 150])]
    if kind == "hexagon":
        return [(math.cos(a), math.sin(a)) for a in np.radians(np.arange(0, 360, 60))]
    if kind == "star":
        pts = []
        for i in range(10):
            r = 1.0 if i % 2 == 0 else 0.42
            a = math.radians(-90 + 36 * i)
            pts.append((r * math.cos(a), r * math.sin(a)))
        return pts
    if kind == "cross":
        t = 0.36
        return [(-t, -1), (t, -1), (t, -t), (1, -t), (1, t), (t, t), (t, 1), (-t, 1), (-t, t), (-1, t),
                (-1, -t), (-t, -t)]
    if kind == "heart":
        ts = np.linspace(0, 2 * math.pi, 60, endpoint=False)
        x = 16 * np.sin(ts) ** 3
        y = -(13 * np.cos(ts) - 5 * np.cos(2 * ts) - 2 * np.cos(3 * ts) - np.cos(4 * ts))
        return list(zip(x / 17, (y + 2) / 17))
    raise ValueError(kind)


def _shape_mask(kind: str, size: tuple[int, int], center: tuple[float, float], radius: float, angle: float,
                aspect: float) -> np.ndarray:
    w, h = size
    s = SUPERSAMPLE
    canvas = Image.new("L", (w * s, h * s), 0)
    draw = ImageDraw.Draw(canvas)
    cx, cy, r = center[0] * s, center[1] * s, radius * s
    if kind in ("circle", "crescent"):
        rx, ry = r * aspect, r / aspect
        draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=255)
        if kind == "crescent":
            dx, dy = math.cos(angle) * r * 0.55, math.sin(angle) * r * 0.55
            draw.ellipse((cx + dx - rx * 0.85, cy + dy - ry * 0.85, cx + dx + rx * 0.85, cy + dy + ry * 0.85),
                         fill=0)
    else:
        ca, sa = math.cos(angle), math.sin(angle)
        pts = [(cx + r * (x * aspect * ca - y / aspect * sa), cy + r * (x * aspect * sa + y / aspect * ca))
               for x, y in _polygon(kind)]
        draw.polygon(pts, fill=255)
    small = canvas.resize((w, h), Image.Resampling.BOX)
    return np.asarray(small) >= 128


def _random_color(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, 3).astype(np.float32)


def _luma(c: np.ndarray) -> float:
    return float(0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2])


def _background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    a, b = _random_color(rng), _random_color(rng)
    kind = rng.integers(0, 4)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == 0:  # linear gradient
        theta = rng.uniform(0, 2 * math.pi)
        t = (xx * math.cos(theta) + yy * math.sin(theta))
        t = (t - t.min()) / max(1e-6, t.max() - t.min())
    elif kind == 1:  # smooth noise
        noise = Image.fromarray((rng.random((h // 8 + 1, w // 8 + 1)) * 255).astype(np.uint8))
        t = np.asarray(noise.resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32) / 255
    elif kind == 2:  # stripes
        period, theta = rng.uniform(6, 24), rng.uniform(0, math.pi)
        t = 0.5 + 0.5 * np.sin((xx * math.cos(theta) + yy * math.sin(theta)) * 2 * math.pi / period)
    else:  # checks
        cell = int(rng.integers(6, 20))
        t = ((xx // cell + yy // cell) % 2).astype(np.float32)
    t = t[..., None] * rng.uniform(0.3, 1.0)
    img = a * (1 - t) + b * t
    img += rng.normal(0, rng.uniform(0, 10), img.shape)
    return img


def _clutter(rng: np.random.Generator, img: Image.Image) -> None:
    draw = ImageDraw.Draw(img)
    w, h = img.size
    for _ in range(rng.integers(0, 5)):
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.line([tuple(rng.uniform(0, [w, h])) for _ in range(2)], fill=color,
                      width=int(rng.integers(1, 3)))
        else:
            r = rng.uniform(0.02, 0.06) * min(w, h)
            x, y = rng.uniform(0, w), rng.uniform(0, h)
            draw.ellipse((x - r, y - r * rng.uniform(0.5, 1.0), x + r, y + r), fill=color)


def _place(rng: np.random.Generator, size: tuple[int, int], radius: float,
           taken: list[tuple[float, float, float]]) -> tuple[float, float]:
    w, h = size
    for _ in range(100):
        c = (rng.uniform(radius, w - radius), rng.uniform(radius, h - radius))
        if all(math.hypot(c[0] - x, c[1] - y) > radius + r + 2 for x, y, r in taken):
            return c
    return c


def render(rng: np.random.Generator, labels: list[int], size: tuple[int, int] = (128, 128),
           scale: tuple[float, float] = (0.2, 0.4)) -> ShapeSample:
    """Draw the shapes ``labels`` (class indices) on a fresh background."""
    w, h = size
    base = _background(rng, size)
    _clutter_img = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    _clutter(rng, _clutter_img)
    canvas = np.asarray(_clutter_img, dtype=np.float32).copy()
    masks, taken = [], []
    for label in labels:
        radius = rng.uniform(*scale) * min(w, h)
        center = _place(rng, size, radius, taken)
        taken.append((*center, radius))
        mask = _shape_mask(CLASSES[label], size, center, radius, rng.uniform(0, 2 * math.pi),
                           math.exp(rng.uniform(-0.2, 0.2)))
        region = canvas[mask]
        bg = region.mean(axis=0) if region.size else canvas.mean(axis=(0, 1))
        color = _random_color(rng)
        for _ in range(20):  # keep the shape visible against what lies under it
            if abs(_luma(color) - _luma(bg)) >= 60:
                break
            color = _random_color(rng)
        shade = rng.uniform(0.85, 1.0)
        canvas[mask] = color * shade
        for earlier in masks:
            earlier &= ~mask
        masks.append(mask)
    img = Image.fromarray(canvas.clip(0, 255).astype(np.uint8))
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    return ShapeSample(img, list(labels), masks)


def sample(seed: int, index: int, size: tuple[int, int] = (128, 128)) -> ShapeSample:
    """Single-shape sample ``index`` of the stream ``seed``: always the same picture."""
    rng = np.random.default_rng([seed, index])
    return render(rng, [int(rng.integers(0, len(CLASSES)))], size)


def two_shape_sample(seed: int, index: int, size: tuple[int, int] = (128, 128)) -> ShapeSample:
    """Two shapes of different classes, not overlapping."""
    rng = np.random.default_rng([seed, index, 2])
    a, b = rng.choice(len(CLASSES), size=2, replace=False)
    return render(rng, [int(a), int(b)], size, scale=(0.16, 0.26))


def write_samples(folder: str, size: int = 256, seed: int = 2026) -> list[str]:
    """One picture per class plus two two-shape pictures, as PNGs named after their content."""
    from pathlib import Path

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    wanted = list(range(len(CLASSES)))
    i = 0
    while wanted:
        s = sample(seed, i, (size, size))
        i += 1
        if s.label in wanted:
            wanted.remove(s.label)
            path = out / f"{CLASSES[s.label]}.png"
            s.image.save(path)
            written.append(str(path))
    for j in range(2):
        s = two_shape_sample(seed, j, (size, size))
        path = out / f"{CLASSES[s.labels[0]]}-and-{CLASSES[s.labels[1]]}.png"
        s.image.save(path)
        written.append(str(path))
    return written
