"""Draws the DenseLens icon (a lens over a heatmap, with a dense block's connections) at every size.

    .venv/bin/python assets/icons/make_icons.py

Writes denselens-<size>.png (16 to 1024), denselens.png (256), denselens.ico and denselens.icns here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent
SIZES = (16, 24, 32, 48, 64, 128, 256, 512, 1024)


def draw(size: int = 1024) -> Image.Image:
    s = size
    icon = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    # rounded dark tile
    tile = Image.new("L", (s, s), 0)
    ImageDraw.Draw(tile).rounded_rectangle((0.04 * s, 0.04 * s, 0.96 * s, 0.96 * s), radius=0.2 * s, fill=255)
    icon.paste((28, 32, 44, 255), mask=tile)
    # heatmap inside the lens: a warm blob, coloured with the turbo colormap
    yy, xx = np.mgrid[0:s, 0:s] / s
    heat = np.exp(-(((xx - 0.52) ** 2) / 0.02 + ((yy - 0.42) ** 2) / 0.03))
    heat = 0.15 + 0.85 * heat
    rgb = (colormaps["turbo"](heat)[..., :3] * 255).astype(np.uint8)
    lens = Image.new("L", (s, s), 0)
    c, r = (0.45 * s, 0.43 * s), 0.27 * s
    ImageDraw.Draw(lens).ellipse((c[0] - r, c[1] - r, c[0] + r, c[1] + r), fill=255)
    icon.paste(Image.fromarray(rgb, "RGB"), mask=lens)
    d = ImageDraw.Draw(icon)
    # dense connections: every node linked to every later node
    nodes = [(c[0] + r * 0.62 * np.cos(a), c[1] + r * 0.62 * np.sin(a)) for a in np.linspace(2.6, 5.2, 4)]
    width = max(1, round(s * 0.012))
    for i, a in enumerate(nodes):
        for b in nodes[i + 1:]:
            d.line((a, b), fill=(255, 255, 255, 200), width=width)
    for x, y in nodes:
        rr = s * 0.025
        d.ellipse((x - rr, y - rr, x + rr, y + rr), fill=(255, 255, 255, 255))
    # lens rim and handle
    d.ellipse((c[0] - r, c[1] - r, c[0] + r, c[1] + r), outline=(235, 238, 245, 255), width=round(s * 0.045))
    h0 = (c[0] + r * 0.72, c[1] + r * 0.72)
    d.line((h0, (0.82 * s, 0.82 * s)), fill=(235, 238, 245, 255), width=round(s * 0.085))
    return icon.filter(ImageFilter.SMOOTH) if size >= 256 else icon


def main() -> None:
    big = draw(1024)
    for size in SIZES:
        big.resize((size, size), Image.Resampling.LANCZOS).save(HERE / f"denselens-{size}.png")
    big.resize((256, 256), Image.Resampling.LANCZOS).save(HERE / "denselens.png")
    big.save(HERE / "denselens.ico", sizes=[(n, n) for n in (16, 24, 32, 48, 64, 128, 256)])
    big.save(HERE / "denselens.icns")


if __name__ == "__main__":
    main()
