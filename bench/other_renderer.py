"""A second, independent renderer of the demo's eight shapes, for measuring how well the demo model generalises.

Written apart from ``model/shapes.py`` (only ``CLASSES`` is shared) and differently from it:

* shapes are signed-distance fields evaluated per pixel (exact polygon distance, boxes, circles; the
  heart is a rotated square plus two discs, the crescent a disc minus a disc), anti-aliased analytically
  from the distance, with their own proportions (star points, cross arm width, crescent bite, rounded
  squares, slightly isosceles triangles) drawn at random;
* fills: flat, two-colour gradient, outline of 2-6 px, flat with a contrasting rim, woven pattern,
  see-through (alpha 0.55-0.8), with a soft drop shadow under some;
* backgrounds: random crops, zooms, flips and colour casts of ``grace_hopper.jpg`` (matplotlib's sample
  photo, which the training renderer never uses) for most pictures; otherwise 1/f spectral noise through a
  three-colour palette, a Voronoi mosaic, radial rings, or paper grain;
* clutter: text, Bezier strokes and specks; shapes may run off the picture's edge (at least 70% stays
  visible); finishing: colour jitter, blur, sensor noise and real JPEG compression.

``other_sample(seed, index)`` returns ``(image, label, box)`` with ``box`` the (left, top, right, bottom)
bounding box of the shape's visible pixels, right/bottom exclusive.  Picture ``index`` of ``seed`` is
always the same.
"""

from __future__ import annotations

import io
import math
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from model.shapes import CLASSES

MIN_VISIBLE = 0.7  # share of a shape's area that stays inside the picture


# ---- signed distances (negative inside), in the shape's own unit coordinates -------------------------------

def _sd_circle(x: np.ndarray, y: np.ndarray, r: float) -> np.ndarray:
    return np.hypot(x, y) - r


def _sd_box(x: np.ndarray, y: np.ndarray, bx: float, by: float, round_r: float = 0.0) -> np.ndarray:
    qx, qy = np.abs(x) - (bx - round_r), np.abs(y) - (by - round_r)
    outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
    return outside + np.minimum(np.maximum(qx, qy), 0) - round_r


def _sd_polygon(x: np.ndarray, y: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Exact distance to a closed polygon, signed by the even-odd crossing rule."""
    d2 = np.full(x.shape, np.inf, dtype=np.float32)
    inside = np.zeros(x.shape, dtype=bool)
    n = len(pts)
    for i in range(n):
        ax, ay = pts[i]
        bx, by = pts[i - 1]
        ex, ey = bx - ax, by - ay
        wx, wy = x - ax, y - ay
        t = np.clip((wx * ex + wy * ey) / (ex * ex + ey * ey), 0, 1)
        d2 = np.minimum(d2, (wx - ex * t) ** 2 + (wy - ey * t) ** 2)
        crosses = (ay > y) != (by > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xcross = ax + (y - ay) * ex / ey
        inside ^= crosses & (x < xcross)
    return np.where(inside, -1.0, 1.0) * np.sqrt(d2)


def _regular(n: int, start_deg: float, radius: float = 1.0) -> np.ndarray:
    a = np.radians(start_deg + np.arange(n) * 360.0 / n)
    return np.stack([radius * np.cos(a), radius * np.sin(a)], 1)


def _shape_sdf(kind: str, rng: np.random.Generator):
    """A function (x, y) -> signed distance for one drawn instance of ``kind`` (its proportions drawn here)."""
    if kind == "circle":
        return lambda x, y: _sd_circle(x, y, 1.0)
    if kind == "square":
        rr = rng.choice([0.0, rng.uniform(0.05, 0.2)])
        return lambda x, y: _sd_box(x, y, 0.85, 0.85, rr)
    if kind == "triangle":
        apex = rng.uniform(0.9, 1.15)  # a little isosceles at times
        pts = _regular(3, -90) * [1.0, 1.0]
        pts[0, 1] *= apex
        pts[:, 1] += 0.15
        return lambda x, y: _sd_polygon(x, y, pts)
    if kind == "hexagon":
        pts = _regular(6, rng.choice([0.0, 30.0]), 0.98)
        return lambda x, y: _sd_polygon(x, y, pts)
    if kind == "star":
        inner = rng.uniform(0.36, 0.5)
        a = np.radians(-90 + 36 * np.arange(10))
        r = np.where(np.arange(10) % 2 == 0, 1.0, inner)
        pts = np.stack([r * np.cos(a), r * np.sin(a) + 0.08], 1)
        return lambda x, y: _sd_polygon(x, y, pts)
    if kind == "cross":
        t = rng.uniform(0.26, 0.4)
        return lambda x, y: np.minimum(_sd_box(x, y, 0.92, t), _sd_box(x, y, t, 0.92))
    if kind == "heart":
        # a square standing on a corner with a disc on each upper side
        s = 0.95
        half = s / 2
        c, si = math.cos(math.pi / 4), math.sin(math.pi / 4)
        dy = -0.15  # centre the figure

        def heart(x, y):
            yy = y - dy
            u, v = c * x - si * (yy + 0.1), si * x + c * (yy + 0.1)
            sq = _sd_box(u, v, half, half)
            # upper-left and upper-right edge midpoints of the rotated square
            m = half * math.sqrt(2) / 2
            d1 = _sd_circle(x + m, yy + 0.1 + m, half)
            d2 = _sd_circle(x - m, yy + 0.1 + m, half)
            return np.minimum(sq, np.minimum(d1, d2))
        return heart
    if kind == "crescent":
        off, rin = rng.uniform(0.4, 0.62), rng.uniform(0.78, 0.92)
        return lambda x, y: np.maximum(_sd_circle(x, y, 1.0), -_sd_circle(x - off, y, rin))
    raise ValueError(kind)


def _coverage(sdf, grid_x: np.ndarray, grid_y: np.ndarray, cx: float, cy: float, radius: float,
              angle: float, stretch: float, stroke: float | None):
    """Anti-aliased coverage of the transformed shape on pixel centres; ``stroke``: outline width in px."""
    ca, sa = math.cos(angle), math.sin(angle)
    dx, dy = grid_x - cx, grid_y - cy
    u = (ca * dx + sa * dy) / (radius * stretch)
    v = (-sa * dx + ca * dy) / (radius / stretch)
    d = sdf(u, v) * radius * min(stretch, 1 / stretch)  # approximately pixels
    if stroke is not None:
        d = np.abs(d + stroke / 2) - stroke / 2
    return np.clip(0.5 - d, 0.0, 1.0).astype(np.float32), d


# ---- backgrounds ------------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _photo() -> np.ndarray:
    from matplotlib import cbook

    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as im:
        return np.asarray(im.convert("RGB"))


def _photo_background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    photo = _photo()
    ph, pw = photo.shape[:2]
    side = int(rng.uniform(0.18, 1.0) * min(ph, pw))
    cw = min(pw, int(side * rng.uniform(0.85, 1.15)))
    x0, y0 = int(rng.integers(0, pw - cw + 1)), int(rng.integers(0, ph - side + 1))
    crop = Image.fromarray(photo[y0:y0 + side, x0:x0 + cw]).resize((w, h), Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng.random() < 0.15:
        crop = crop.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    img = np.asarray(crop, dtype=np.float32)
    if rng.random() < 0.2:
        img = img.mean(2, keepdims=True).repeat(3, 2)
    cast = rng.uniform(0.75, 1.25, 3)  # colour cast
    return img * cast + rng.uniform(-30, 30)


def _palette(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    stops = rng.uniform(0, 255, (3, 3)).astype(np.float32)
    t = np.clip(t, 0, 1)[..., None]
    lo = stops[0] + (stops[1] - stops[0]) * np.clip(t * 2, 0, 1)
    return np.where(t < 0.5, lo, stops[1] + (stops[2] - stops[1]) * np.clip(t * 2 - 1, 0, 1))


def _spectral_noise(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    beta = rng.uniform(1.6, 3.2)
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]
    amp = (np.hypot(fx, fy) + 1.0 / max(w, h)) ** (-beta / 2)
    spec = amp * np.exp(2j * math.pi * rng.random(amp.shape))
    field = np.fft.irfft2(spec, s=(h, w))
    field = (field - field.min()) / (np.ptp(field) + 1e-9)
    return _palette(rng, field)


def _voronoi(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    n = int(rng.integers(6, 30))
    seeds = rng.uniform(0, 1, (n, 2)) * [w, h]
    colours = rng.uniform(0, 255, (n, 3)).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    d = (xx[..., None] - seeds[:, 0]) ** 2 + (yy[..., None] - seeds[:, 1]) ** 2
    return colours[np.argmin(d, axis=2)]


def _rings(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    cx, cy = rng.uniform(-0.5, 1.5) * w, rng.uniform(-0.5, 1.5) * h
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.hypot(xx - cx, yy - cy) / max(w, h)
    t = 0.5 + 0.5 * np.cos(r * rng.uniform(3, 25)) if rng.random() < 0.6 else r / (r.max() + 1e-6)
    return _palette(rng, t)


def _paper(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    base = rng.uniform(120, 250, 3).astype(np.float32)
    grain = rng.normal(0, rng.uniform(3, 12), (h, w, 1)).astype(np.float32)
    return base + grain


BACKGROUNDS = (  # (the uniform draw below which this kind is drawn, its name, its renderer)
    (0.6, "photo", _photo_background),
    (0.75, "noise", _spectral_noise),
    (0.85, "Voronoi", _voronoi),
    (0.93, "rings", _rings),
    (1.0, "paper", _paper),
)


def _background_kind(u: float) -> tuple:
    return next(kind for kind in BACKGROUNDS if u < kind[0])


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    _, _, render = _background_kind(rng.random())
    return np.clip(render(rng, w, h), 0, 255).astype(np.float32)


def background_kind(seed: int, index: int) -> str:
    """The kind of background under picture ``index`` of stream ``seed`` (drawn right after the class)."""
    rng = np.random.default_rng([seed, index, 0x0DD])
    rng.integers(0, len(CLASSES))
    return _background_kind(rng.random())[1]


# ---- clutter, fills, finishing ----------------------------------------------------------------------------

def _clutter(rng: np.random.Generator, img: Image.Image) -> None:
    draw = ImageDraw.Draw(img)
    w, h = img.size
    for _ in range(int(rng.integers(0, 4))):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = rng.random()
        if kind < 0.4:  # a line of text
            font = ImageFont.load_default(size=int(rng.integers(8, max(9, h // 7))))
            text = "".join(chr(int(c)) for c in rng.integers(97, 123, int(rng.integers(2, 8))))
            draw.text((rng.uniform(-10, w), rng.uniform(-5, h)), text, fill=colour, font=font)
        elif kind < 0.8:  # a cubic Bezier stroke
            p = rng.uniform(-0.1, 1.1, (4, 2)) * [w, h]
            t = np.linspace(0, 1, 24)[:, None]
            curve = ((1 - t) ** 3 * p[0] + 3 * (1 - t) ** 2 * t * p[1] + 3 * (1 - t) * t ** 2 * p[2]
                     + t ** 3 * p[3])
            draw.line([tuple(q) for q in curve], fill=colour, width=int(rng.integers(1, 4)))
        else:  # specks
            for _ in range(int(rng.integers(3, 12))):
                x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.5, 2.0)
                draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)


def _contrasting(rng: np.random.Generator, under: np.ndarray) -> np.ndarray:
    """A saturated-ish colour (HSV drawn) far enough in RGB from the mean of what lies under the shape."""
    best, best_d = None, -1.0
    for _ in range(12):
        hue, sat, val = rng.random(), rng.uniform(0.2, 1.0), rng.uniform(0.1, 1.0)
        rgb = np.array([_hsv_channel(hue, sat, val, k) for k in (5, 3, 1)], dtype=np.float32) * 255
        d = float(np.linalg.norm(rgb - under))
        if d > 110:
            return rgb
        if d > best_d:
            best, best_d = rgb, d
    return best


def _hsv_channel(h: float, s: float, v: float, n: int) -> float:
    k = (n + h * 6) % 6
    return v - v * s * max(0.0, min(k, 4 - k, 1.0))


def _fill(rng: np.random.Generator, cover: np.ndarray, dist: np.ndarray, grid_x: np.ndarray, grid_y: np.ndarray,
          colour: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """(colour per pixel, alpha per pixel) for a filled shape."""
    style = rng.random()
    h, w = cover.shape
    alpha = cover
    if style < 0.35:  # flat
        paint = np.broadcast_to(colour, (h, w, 3))
    elif style < 0.55:  # two-colour linear gradient
        other = np.clip(colour * rng.uniform(0.3, 0.7) + rng.uniform(0, 120, 3), 0, 255)
        a = rng.uniform(0, 2 * math.pi)
        t = ((grid_x * math.cos(a) + grid_y * math.sin(a)) / max(w, h))
        t = (t - t.min()) / (np.ptp(t) + 1e-6)
        paint = colour * (1 - t[..., None]) + other * t[..., None]
    elif style < 0.7:  # flat with a contrasting rim
        rim = 255 - colour
        width = rng.uniform(1.5, max(2.0, radius * 0.15))
        t = np.clip((-dist) / width, 0, 1)[..., None]
        paint = rim * (1 - t) + colour * t
    elif style < 0.82:  # woven pattern
        period = rng.uniform(3, 8)
        other = np.clip(colour * 0.5 + 60, 0, 255)
        t = (np.sin(grid_x * 2 * math.pi / period) * np.sin(grid_y * 2 * math.pi / period) > 0)[..., None]
        paint = np.where(t, colour, other)
    else:  # see-through
        paint = np.broadcast_to(colour, (h, w, 3))
        alpha = cover * rng.uniform(0.55, 0.8)
    return paint, alpha


def _finish(rng: np.random.Generator, img: Image.Image) -> Image.Image:
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.3)))
    arr = np.asarray(img, dtype=np.float32)
    arr = (arr - 128) * rng.uniform(0.8, 1.2) + 128 + rng.uniform(-20, 20)
    if rng.random() < 0.35:
        arr += rng.normal(0, rng.uniform(3, 12), arr.shape)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if rng.random() < 0.4:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=int(rng.integers(20, 80)))
        buf.seek(0)
        with Image.open(buf) as jpeg:
            img = jpeg.convert("RGB")
    return img


def other_sample(seed: int, index: int, size: tuple[int, int] = (128, 128)
                 ) -> tuple[Image.Image, int, tuple[int, int, int, int]]:
    """Picture ``index`` of stream ``seed``: (image, class index, box of the shape's visible pixels)."""
    rng = np.random.default_rng([seed, index, 0x0DD])
    w, h = size
    label = int(rng.integers(0, len(CLASSES)))
    canvas = Image.fromarray(_background(rng, w, h).astype(np.uint8))
    _clutter(rng, canvas)
    base = np.asarray(canvas, dtype=np.float32)

    sdf = _shape_sdf(CLASSES[label], rng)
    radius = rng.uniform(0.18, 0.42) * min(w, h)
    angle = rng.uniform(0, 2 * math.pi)
    stretch = math.exp(rng.uniform(-0.22, 0.22))
    stroke = rng.uniform(2.0, 6.0) if rng.random() < 0.18 else None
    # evaluate on a grid padded by one radius each side, to know how much of the shape leaves the picture
    pad = int(math.ceil(radius * 1.3)) + 2
    gy, gx = np.mgrid[-pad:h + pad, -pad:w + pad].astype(np.float32) + 0.5
    off_edge = rng.random() < 0.3
    for _ in range(30):
        if off_edge:
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        else:
            cx, cy = rng.uniform(radius * 0.9, w - radius * 0.9), rng.uniform(radius * 0.9, h - radius * 0.9)
        full, dist = _coverage(sdf, gx, gy, cx, cy, radius, angle, stretch, stroke)
        inner = full[pad:pad + h, pad:pad + w]
        if inner.sum() >= MIN_VISIBLE * full.sum():
            break
        off_edge = rng.random() < 0.5  # fall back towards the centre
    cover, dist = inner, dist[pad:pad + h, pad:pad + w]
    xs, ys = gx[pad:pad + h, pad:pad + w], gy[pad:pad + h, pad:pad + w]

    under = base[cover > 0.5].mean(0) if (cover > 0.5).any() else base.mean((0, 1))
    colour = _contrasting(rng, under)
    if stroke is not None:
        paint, alpha = np.broadcast_to(colour, (h, w, 3)), cover
    else:
        paint, alpha = _fill(rng, cover, dist, xs, ys, colour, radius)
    if rng.random() < 0.3:  # soft drop shadow
        sh = Image.fromarray((cover * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(radius * 0.08 + 1))
        shift = int(max(1, radius * 0.08))
        sh = np.roll(np.asarray(sh, dtype=np.float32) / 255, (shift, shift), (0, 1))[..., None]
        base = base * (1 - 0.45 * sh)
    out = base * (1 - alpha[..., None]) + paint * alpha[..., None]

    mask = cover >= 0.5
    ys_, xs_ = np.nonzero(mask)
    box = (int(xs_.min()), int(ys_.min()), int(xs_.max()) + 1, int(ys_.max()) + 1)
    img = _finish(rng, Image.fromarray(np.clip(out, 0, 255).astype(np.uint8)))
    return img, label, box
