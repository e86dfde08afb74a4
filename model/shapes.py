"""A procedural, seeded dataset of shapes with known masks: the demo model's world.

Each sample is a shape of one of ``CLASSES`` at a random position, scale,
rotation, aspect ratio and proportions (star points, cross arms, crescent
bite, rounded corners), drawn in one of several styles: solid, outline of
various widths, gradient, hatched, dotted, textured, semi-transparent, or
filled with a contrasting rim.  Backgrounds are plain patterns (gradient,
noise, stripes, checks), textures (noise at several scales, wood, marble,
blotches), "dead leaves" scenes (blobs, shards and bands of flat, shaded or
textured colour piled up like the objects of a photo), or crops of real
pictures (matplotlib's bundled gift-box clip art, a hillshaded terrain model
and an MRI slice, and scikit-learn's two sample photos; never matplotlib's
``grace_hopper.jpg``, which the evaluation renderer ``bench/other_renderer.py``
keeps to itself), with clutter (lines,
scribbles, small blobs) that belongs to no class.  A single shape may run
off the picture's edge (at least 60% of it stays visible), and some pictures
get a colour cast, blur, noise or JPEG
compression.  A quarter of the pictures stay plain (pattern background, solid
shapes, nothing cut off).

Every sample carries its objects' masks (the visible pixels of each shape:
the stroke of an outline, the part inside the picture), so heatmaps can be
checked against ground truth.  ``two_shape_sample`` puts two shapes of
different classes in one picture.  Sample ``i`` of a seed is always the same
picture.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASSES = ("circle", "square", "triangle", "star", "cross", "hexagon", "heart", "crescent")
SUPERSAMPLE = 4  # shapes are drawn larger and shrunk, for smooth edges
MIN_VISIBLE = 0.6  # share of a shape that stays inside the picture when it runs off the edge
CUT_OFF_RATE = 0.2  # single-shape pictures whose shape runs off the edge
EASY_SHARE = 0.25  # pictures drawn plainly (pattern background, solid shapes, nothing cut off)
PHOTOS = ("china.jpg", "flower.jpg")  # scikit-learn's sample photos, used as backgrounds
PICTURE_WEIGHTS = (0.15, 0.25, 0.15, 0.225, 0.225)  # gift box, terrain, MRI slice, the two photos


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


# ---- outlines ---------------------------------------------------------------------------------------------

def _polygon(kind: str, rng: np.random.Generator) -> np.ndarray:
    """Closed outline of one instance of ``kind`` in unit coordinates (about [-1, 1]), proportions drawn."""
    if kind == "circle":
        a = np.linspace(0, 2 * math.pi, 48, endpoint=False)
        return np.stack([np.cos(a), np.sin(a)], 1)
    if kind == "square":
        corner = rng.uniform(0.08, 0.3) if rng.random() < 0.3 else 0.0
        if not corner:
            return np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)], dtype=float)
        pts = []
        for cx, cy, start in ((1, 1, 0), (-1, 1, 90), (-1, -1, 180), (1, -1, 270)):
            a = np.radians(start + np.linspace(0, 90, 5))
            pts += list(zip(cx * (1 - corner) + corner * np.cos(a), cy * (1 - corner) + corner * np.sin(a)))
        return np.array(pts)
    if kind == "triangle":
        pts = np.array([(math.cos(a), math.sin(a)) for a in np.radians([-90, 30, 150])])
        pts[0, 1] *= rng.uniform(0.85, 1.2)  # a little isosceles at times
        return pts
    if kind == "hexagon":
        return np.array([(math.cos(a), math.sin(a)) for a in np.radians(np.arange(0, 360, 60))])
    if kind == "star":
        inner = rng.uniform(0.34, 0.55)
        a = np.radians(-90 + 36 * np.arange(10))
        r = np.where(np.arange(10) % 2 == 0, 1.0, inner)
        return np.stack([r * np.cos(a), r * np.sin(a)], 1)
    if kind == "cross":
        t = rng.uniform(0.24, 0.44)
        return np.array([(-t, -1), (t, -1), (t, -t), (1, -t), (1, t), (t, t), (t, 1), (-t, 1), (-t, t), (-1, t),
                         (-1, -t), (-t, -t)])
    if kind == "heart":
        ts = np.linspace(0, 2 * math.pi, 60, endpoint=False)
        x = 16 * np.sin(ts) ** 3
        y = -(13 * np.cos(ts) - 5 * np.cos(2 * ts) - 2 * np.cos(3 * ts) - np.cos(4 * ts))
        return np.stack([x / 17 * rng.uniform(0.9, 1.1), (y + 2) / 17], 1)
    if kind == "crescent":
        # a disc of radius 1 minus a disc of radius ri whose centre sits d to the right
        d, ri = rng.uniform(0.35, 0.65), rng.uniform(0.75, 0.95)
        xi = (1 - ri * ri + d * d) / (2 * d)  # where the two circles cross
        t1 = math.acos(min(1.0, xi))
        p1 = math.acos(max(-1.0, (xi - d) / ri))
        outer = np.linspace(t1, 2 * math.pi - t1, 40)
        inner = np.linspace(2 * math.pi - p1, p1, 30)
        return np.concatenate([np.stack([np.cos(outer), np.sin(outer)], 1),
                               np.stack([d + ri * np.cos(inner), ri * np.sin(inner)], 1)])
    raise ValueError(kind)


def _place_points(unit: np.ndarray, center: tuple[float, float], radius: float, angle: float,
                  aspect: float) -> np.ndarray:
    ca, sa = math.cos(angle), math.sin(angle)
    x, y = unit[:, 0] * aspect, unit[:, 1] / aspect
    return np.stack([center[0] + radius * (x * ca - y * sa), center[1] + radius * (x * sa + y * ca)], 1)


def _coverage(pts: np.ndarray, size: tuple[int, int], stroke: float | None = None,
              supersample: int = SUPERSAMPLE) -> np.ndarray:
    """Share (0..1) of each pixel the polygon ``pts`` (pixels) covers: filled, or a stroke ``stroke`` px wide."""
    w, h = size
    s = supersample
    canvas = Image.new("L", (w * s, h * s), 0)
    draw = ImageDraw.Draw(canvas)
    flat = [(float(x) * s, float(y) * s) for x, y in pts]
    if stroke is None:
        draw.polygon(flat, fill=255)
    else:
        draw.line([*flat, flat[0], flat[1]], fill=255, width=max(1, round(stroke * s)), joint="curve")
    small = canvas.resize((w, h), Image.Resampling.BOX) if s > 1 else canvas
    return np.asarray(small, dtype=np.float32) / 255


# ---- backgrounds ------------------------------------------------------------------------------------------

def _random_color(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, 3).astype(np.float32)


def _luma(c: np.ndarray) -> float:
    return float(0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2])


def _smooth_noise(rng: np.random.Generator, w: int, h: int, cell: float) -> np.ndarray:
    """Value noise in [0, 1] with features about ``cell`` pixels wide."""
    gw, gh = max(2, int(w / cell) + 2), max(2, int(h / cell) + 2)
    small = Image.fromarray((rng.random((gh, gw)) * 255).astype(np.uint8))
    return np.asarray(small.resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32) / 255


def _octaves(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Noise at several scales (fractal), normalised to [0, 1]."""
    t = np.zeros((h, w), np.float32)
    cell, amp, falloff = rng.uniform(16, 48), 1.0, rng.uniform(0.35, 0.7)
    while cell >= 1.5:
        t += amp * _smooth_noise(rng, w, h, cell)
        cell, amp = cell / 2, amp * falloff
    return (t - t.min()) / (np.ptp(t) + 1e-6)


def _two_tone(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    a, b = _random_color(rng), _random_color(rng)
    return a * (1 - t[..., None]) + b * t[..., None]


def _plain_pattern(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Gradient, smooth noise, stripes or checks between two colours."""
    kind = rng.integers(0, 4)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == 0:  # linear gradient
        theta = rng.uniform(0, 2 * math.pi)
        t = (xx * math.cos(theta) + yy * math.sin(theta))
        t = (t - t.min()) / max(1e-6, t.max() - t.min())
    elif kind == 1:  # smooth noise
        t = _smooth_noise(rng, w, h, 8)
    elif kind == 2:  # stripes
        period, theta = rng.uniform(6, 24), rng.uniform(0, math.pi)
        t = 0.5 + 0.5 * np.sin((xx * math.cos(theta) + yy * math.sin(theta)) * 2 * math.pi / period)
    else:  # checks
        cell = int(rng.integers(6, 20))
        t = ((xx // cell + yy // cell) % 2).astype(np.float32)
    return _two_tone(rng, t * rng.uniform(0.3, 1.0))


def _texture(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Fractal noise, wood, marble or soft blotches."""
    kind = rng.integers(0, 4)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == 0:
        return _two_tone(rng, _octaves(rng, w, h))
    if kind == 1:  # wood: rings around a far centre, warped by noise
        cx, cy = rng.uniform(-1, 2) * w, rng.uniform(-1, 2) * h
        r = np.hypot(xx - cx, yy - cy) + _octaves(rng, w, h) * rng.uniform(5, 20)
        t = 0.5 + 0.5 * np.sin(r * 2 * math.pi / rng.uniform(4, 12))
        return _two_tone(rng, t ** rng.uniform(0.5, 2))
    if kind == 2:  # marble: stripes bent by turbulence
        theta = rng.uniform(0, math.pi)
        u = xx * math.cos(theta) + yy * math.sin(theta)
        t = 0.5 + 0.5 * np.sin(u * 2 * math.pi / rng.uniform(15, 50) + _octaves(rng, w, h) * rng.uniform(4, 10))
        return _two_tone(rng, t)
    img = np.broadcast_to(_random_color(rng), (h, w, 3)).copy()  # blotches: soft patches of colour
    for _ in range(int(rng.integers(3, 9))):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rx, ry = rng.uniform(0.1, 0.5) * w, rng.uniform(0.1, 0.5) * h
        d = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2
        a = np.clip(1.5 - d, 0, 1)[..., None] * rng.uniform(0.5, 1)
        img = img * (1 - a) + _random_color(rng) * a
    return img


@lru_cache(maxsize=1)
def _pictures() -> tuple[np.ndarray, ...]:
    """Real pictures bundled with matplotlib (never ``grace_hopper.jpg``) and scikit-learn's two sample photos
    (``china.jpg``, ``flower.jpg``; CC BY 2.0), as RGB uint8 arrays."""
    from matplotlib import cbook
    from matplotlib.colors import LightSource

    with Image.open(cbook.get_sample_data("Minduka_Present_Blue_Pack.png", asfileobj=False)) as im:
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float32)
    gift = rgba[..., :3] * (rgba[..., 3:] / 255) + 255 * (1 - rgba[..., 3:] / 255)
    dem = cbook.get_sample_data("jacksboro_fault_dem.npz")["elevation"]
    terrain = LightSource(315, 45).hillshade(dem, vert_exag=0.05) * 255
    with cbook.get_sample_data("s1045.ima.gz") as f:
        mri = np.frombuffer(f.read(), np.uint16).reshape(256, 256).astype(np.float32)
    mri = mri / mri.max() * 255
    photos = []
    for path in photo_paths():
        with Image.open(path) as im:
            photos.append(np.asarray(im.convert("RGB"), dtype=np.float32))
    return tuple(np.clip(p if p.ndim == 3 else np.repeat(p[..., None], 3, 2), 0, 255).astype(np.uint8)
                 for p in (gift, terrain, mri, *photos))


def photo_paths() -> list[Path]:
    """scikit-learn's two sample photos, found beside its package (no import of ``sklearn.datasets``)."""
    import sklearn

    folder = Path(sklearn.__file__).parent / "datasets" / "images"
    return [folder / name for name in PHOTOS]


def _picture_crop(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    pics = _pictures()
    pic = pics[int(rng.choice(len(pics), p=PICTURE_WEIGHTS))]
    ph, pw = pic.shape[:2]
    side = max(8, int(rng.uniform(0.3, 1.0) * min(ph, pw)))
    x0, y0 = int(rng.integers(0, pw - side + 1)), int(rng.integers(0, ph - side + 1))
    crop = Image.fromarray(pic[y0:y0 + side, x0:x0 + side])
    if rng.random() < 0.6:  # flipped or turned: the crop is square, so its size stays
        crop = crop.transpose(Image.Transpose(int(rng.integers(0, 7))))
    crop = crop.resize((w, h), Image.Resampling.BILINEAR)
    img = np.asarray(crop, dtype=np.float32)
    if rng.random() < 0.6:  # colourise the grey pictures and tint the rest
        tint = _two_tone(rng, np.linspace(0, 1, 256, dtype=np.float32)[None])[0]
        img = img * 0.4 + 0.6 * tint[img.mean(2).astype(np.uint8)]
    return img * rng.uniform(0.7, 1.3, 3) + rng.uniform(-30, 30)


def _leaf(rng: np.random.Generator, w: int, h: int) -> list[tuple[float, float]]:
    """Outline of one piece of a scene: an organic blob, a large shard, or a band across the picture."""
    kind = rng.random()
    c = rng.uniform(-0.1, 1.1, 2) * [w, h]
    if kind < 0.5:  # a blob whose radius wobbles smoothly around its centre
        r = rng.uniform(0.1, 0.6) * min(w, h)
        a = np.linspace(0, 2 * math.pi, 28, endpoint=False)
        wobble = sum(rng.uniform(0, 0.25) * np.cos(k * a + rng.uniform(0, 2 * math.pi)) for k in (1, 2, 3))
        pts = np.stack([c[0] + r * (1 + wobble) * np.cos(a), c[1] + r * (1 + wobble) * np.sin(a)
                        * rng.uniform(0.5, 1.5)], 1)
    elif kind < 0.75:  # a large irregular shard
        r = rng.uniform(0.3, 0.9) * max(w, h)
        a = np.sort(rng.uniform(0, 2 * math.pi, int(rng.integers(4, 7))))
        rad = r * rng.uniform(0.4, 1.0, len(a))
        pts = np.stack([c[0] + rad * np.cos(a), c[1] + rad * np.sin(a)], 1)
    else:  # a band: a long strip across the picture
        t, length, width = rng.uniform(0, math.pi), 2 * max(w, h), rng.uniform(0.06, 0.35) * min(w, h)
        u, v = np.array([math.cos(t), math.sin(t)]), np.array([-math.sin(t), math.cos(t)])
        pts = np.array([c + su * length * u + sv * width * v for su, sv in ((-1, -1), (1, -1), (1, 1), (-1, 1))])
    return [tuple(p) for p in pts]


def _scene(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A "dead leaves" picture: blobs, shards and bands of flat, shaded or textured colour piled up, like the
    objects of a photo."""
    img = Image.fromarray(_plain_pattern(rng, w, h).clip(0, 255).astype(np.uint8))
    grain = _octaves(rng, w, h)[..., None]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for _ in range(int(rng.integers(3, 9))):
        leaf = Image.new("L", (w, h), 0)
        ImageDraw.Draw(leaf).polygon(_leaf(rng, w, h), fill=255)
        a_col, b_col = _random_color(rng), _random_color(rng)
        paint_kind = rng.random()
        if paint_kind < 0.35:  # textured
            paint = a_col + (b_col - a_col) * grain * rng.uniform(0.2, 1.0)
        elif paint_kind < 0.6:  # shaded by a light from one side
            t = rng.uniform(0, 2 * math.pi)
            ramp = ((xx * math.cos(t) + yy * math.sin(t)) / max(w, h))[..., None]
            paint = a_col * (0.6 + 0.6 * (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6))
        else:
            img.paste(tuple(int(v) for v in a_col), mask=leaf)
            continue
        img.paste(Image.fromarray(paint.clip(0, 255).astype(np.uint8)), mask=leaf)
    if rng.random() < 0.4:  # out of focus
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.0)))
    return np.asarray(img, dtype=np.float32)


def _background(rng: np.random.Generator, size: tuple[int, int], plain: bool = False) -> np.ndarray:
    w, h = size
    u = 0.0 if plain else rng.random()
    if u < 0.15:
        img = _plain_pattern(rng, w, h)
    elif u < 0.35:
        img = _texture(rng, w, h)
    elif u < 0.7:
        img = _picture_crop(rng, w, h)
    else:
        img = _scene(rng, w, h)
    sigma = rng.uniform(0, 10)
    noise = rng.standard_normal((h, w, 1 if rng.random() < 0.5 else 3), dtype=np.float32)
    return img.astype(np.float32) + sigma * noise


def _clutter(rng: np.random.Generator, img: Image.Image) -> None:
    draw = ImageDraw.Draw(img)
    w, h = img.size
    for _ in range(rng.integers(0, 6)):
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        kind = rng.random()
        if kind < 0.4:
            draw.line([tuple(rng.uniform(0, [w, h])) for _ in range(2)], fill=color,
                      width=int(rng.integers(1, 3)))
        elif kind < 0.65:  # a scribble: a short random walk
            steps = rng.normal(0, 0.08, (int(rng.integers(3, 8)), 2)).cumsum(0) + rng.uniform(0, 1, 2)
            draw.line([tuple(p) for p in steps * [w, h]], fill=color, width=int(rng.integers(1, 3)),
                      joint="curve")
        else:
            r = rng.uniform(0.02, 0.06) * min(w, h)
            x, y = rng.uniform(0, w), rng.uniform(0, h)
            draw.ellipse((x - r, y - r * rng.uniform(0.5, 1.0), x + r, y + r), fill=color)


# ---- painting ---------------------------------------------------------------------------------------------

def _contrasting_color(rng: np.random.Generator, under: np.ndarray, spread: float = 0.0) -> np.ndarray:
    """A colour that stands out from ``under`` (mean colour of what lies below the shape, whose brightness
    varies by ``spread``, a standard deviation) in brightness or, at times, in hue alone; the most distinct
    of 20 draws if none is distinct enough."""
    best, best_score = None, -1.0
    margin = 0.5 * min(spread, 80.0)  # a busy background needs a starker shape
    for _ in range(20):
        color = _random_color(rng)
        score = max(abs(_luma(color) - _luma(under)) / (60 + margin),
                    float(np.linalg.norm(color - under)) / (140 + margin))
        if score >= 1:
            return color
        if score > best_score:
            best, best_score = color, score
    return best


def _paint(rng: np.random.Generator, style: str, cover: np.ndarray, color: np.ndarray, center: tuple[float, float],
           radius: float) -> tuple[np.ndarray, np.ndarray]:
    """(colour per pixel, opacity per pixel) of a filled shape of coverage ``cover`` in ``style``."""
    h, w = cover.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    shade = color * rng.uniform(0.85, 1.0)
    if style == "gradient":
        other = np.clip(color * rng.uniform(0.2, 0.7) + rng.uniform(0, 100, 3), 0, 255)
        if rng.random() < 0.5:  # linear across the shape
            a = rng.uniform(0, 2 * math.pi)
            t = ((xx - center[0]) * math.cos(a) + (yy - center[1]) * math.sin(a)) / (2 * radius) + 0.5
        else:  # radial from the middle
            t = np.hypot(xx - center[0], yy - center[1]) / radius
        t = np.clip(t, 0, 1)[..., None]
        return color * (1 - t) + other * t, cover
    if style in ("hatched", "dotted"):
        period = rng.uniform(3, 7)
        if style == "hatched":
            a = rng.uniform(0, math.pi)
            on = np.sin((xx * math.cos(a) + yy * math.sin(a)) * 2 * math.pi / period) > rng.uniform(-0.4, 0.4)
        else:
            on = (np.sin(xx * 2 * math.pi / period) * np.sin(yy * 2 * math.pi / period)) > rng.uniform(0.1, 0.5)
        if rng.random() < 0.5:  # the gaps in another colour
            other = np.clip(255 - color + rng.uniform(-60, 60, 3), 0, 255)
            return np.where(on[..., None], shade, other), cover
        return np.broadcast_to(shade, (h, w, 3)), cover * np.where(on, 1.0, 0.4)
    if style == "textured":
        grain = _smooth_noise(rng, w, h, rng.uniform(2, 6))[..., None]
        return shade * (0.6 + 0.8 * grain), cover
    if style == "transparent":
        return np.broadcast_to(shade, (h, w, 3)), cover * rng.uniform(0.5, 0.85)
    return np.broadcast_to(shade, (h, w, 3)), cover  # solid, and the body of "rim"


STYLES = ("solid", "outline", "gradient", "hatched", "dotted", "textured", "transparent", "rim")
STYLE_WEIGHTS = (0.34, 0.16, 0.12, 0.08, 0.06, 0.08, 0.08, 0.08)


def _place(rng: np.random.Generator, size: tuple[int, int], radius: float,
           taken: list[tuple[float, float, float]]) -> tuple[float, float]:
    w, h = size
    for _ in range(100):
        c = (rng.uniform(radius, w - radius), rng.uniform(radius, h - radius))
        if all(math.hypot(c[0] - x, c[1] - y) > radius + r + 2 for x, y, r in taken):
            return c
    return c


def _place_cut(rng: np.random.Generator, size: tuple[int, int], radius: float, unit: np.ndarray, angle: float,
               aspect: float) -> tuple[float, float]:
    """A centre near an edge from which the shape runs off the picture but keeps MIN_VISIBLE of its area."""
    w, h = size
    pad = int(radius * 1.5) + 2
    c = (w / 2, h / 2)
    for _ in range(12):
        c = (rng.uniform(-0.2 * radius, w + 0.2 * radius), rng.uniform(-0.2 * radius, h + 0.2 * radius))
        pts = _place_points(unit, (c[0] + pad, c[1] + pad), radius, angle, aspect)
        full = _coverage(pts, (w + 2 * pad, h + 2 * pad), supersample=1)
        if full[pad:pad + h, pad:pad + w].sum() >= MIN_VISIBLE * full.sum() + 1:
            return c
    return _place(rng, size, radius, [])


def _finish(rng: np.random.Generator, img: Image.Image) -> Image.Image:
    """Occasional colour cast, blur, sensor noise or JPEG compression."""
    if rng.random() < 0.3:
        arr = np.asarray(img, dtype=np.float32) * rng.uniform(0.75, 1.25, 3) + rng.uniform(-25, 25)
        img = Image.fromarray(arr.clip(0, 255).astype(np.uint8))
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    if rng.random() < 0.2:
        sigma = rng.uniform(3, 15)
        arr = np.asarray(img, dtype=np.float32) + sigma * rng.standard_normal((img.size[1], img.size[0], 3),
                                                                               dtype=np.float32)
        img = Image.fromarray(arr.clip(0, 255).astype(np.uint8))
    if rng.random() < 0.25:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=int(rng.integers(15, 75)))
        buf.seek(0)
        with Image.open(buf) as jpeg:
            img = jpeg.convert("RGB")
    return img


def render(rng: np.random.Generator, labels: list[int], size: tuple[int, int] = (128, 128),
           scale: tuple[float, float] = (0.18, 0.42), plain: bool = False) -> ShapeSample:
    """Draw the shapes ``labels`` (class indices) on a fresh background.

    A share ``EASY_SHARE`` of pictures is plain: a patterned background and solid shapes wholly inside
    the picture, with no finishing but a light blur.  It gives training a foothold early on.  ``plain``
    draws every picture so (the controlled folders of the tests).
    """
    w, h = size
    easy = rng.random() < EASY_SHARE or plain
    base = _background(rng, size, plain=easy)
    clutter_img = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    _clutter(rng, clutter_img)
    canvas = np.asarray(clutter_img, dtype=np.float32).copy()
    masks, taken = [], []
    for label in labels:
        radius = rng.uniform(*scale) * min(w, h)
        unit = _polygon(CLASSES[label], rng)
        angle, aspect = rng.uniform(0, 2 * math.pi), math.exp(rng.uniform(-0.22, 0.22))
        if len(labels) == 1 and not easy and rng.random() < CUT_OFF_RATE:
            center = _place_cut(rng, size, radius, unit, angle, aspect)
        else:
            center = _place(rng, size, radius, taken)
        taken.append((*center, radius))
        pts = _place_points(unit, center, radius, angle, aspect)
        fill = _coverage(pts, size)
        style = "solid" if easy else str(rng.choice(STYLES, p=STYLE_WEIGHTS))
        region = canvas[fill >= 0.5]
        under = region.mean(axis=0) if region.size else canvas.mean(axis=(0, 1))
        spread = float((region @ np.float32([0.299, 0.587, 0.114])).std()) if len(region) > 1 else 0.0
        color = _contrasting_color(rng, under, spread)
        if style == "outline":
            stroke = rng.uniform(1.2, 2.5) + rng.uniform(0.0, 0.1) * radius
            cover = _coverage(pts, size, stroke)
            paint, alpha = np.broadcast_to(color * rng.uniform(0.85, 1.0), (h, w, 3)), cover
        else:
            paint, alpha = _paint(rng, style, fill, color, center, radius)
            cover = fill
        canvas = canvas * (1 - alpha[..., None]) + paint * alpha[..., None]
        if style == "rim":
            rim = _coverage(pts, size, rng.uniform(1.0, 2.0) + rng.uniform(0.0, 0.06) * radius) * fill
            rim_color = np.clip(255 - color + rng.uniform(-40, 40, 3), 0, 255)
            canvas = canvas * (1 - rim[..., None]) + rim_color * rim[..., None]
        mask = cover >= 0.5
        if not mask.any():  # a hairline: keep at least its most covered pixel
            mask = cover >= cover.max()
        for earlier in masks:
            earlier &= ~(fill >= 0.5) if style != "outline" else ~mask
        masks.append(mask)
    img = Image.fromarray(canvas.clip(0, 255).astype(np.uint8))
    if not easy:
        img = _finish(rng, img)
    elif rng.random() < 0.3:
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
