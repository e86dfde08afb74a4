"""Labelled folders for training, evaluation and audit tests: generated shapes, one sub-folder per class."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.shapes import CLASSES, render

FOUR = ("circle", "square", "triangle", "star")


def shapes_folder(root: Path, classes: tuple[str, ...] = FOUR, per_class: int | dict[str, int] = 12,
                  size: int = 64, seed: int = 0, mixed: bool = False) -> Path:
    """``per_class`` PNG pictures of each named shape (random sizes near ``size``) under ``root/<class>/``,
    drawn plainly (patterned backgrounds, solid shapes: ``model.shapes.render(plain=True)``).

    ``mixed``: every folder gets random shapes of every kind instead (the folder's name then says nothing
    about the picture: only something planted in it can).
    """
    for name in classes:
        count = per_class[name] if isinstance(per_class, dict) else per_class
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            rng = np.random.default_rng([seed, CLASSES.index(name) if name in CLASSES else len(CLASSES), i])
            w, h = (int(v) for v in rng.integers(size, size + size // 2, 2))
            side = max(w, h)  # drawn square, cut to a random aspect: the crop keeps most of the shape
            shape = int(rng.integers(0, len(CLASSES))) if mixed else CLASSES.index(name)
            picture = render(rng, [shape], (side, side), plain=True).image
            picture.crop(((side - w) // 2, (side - h) // 2, (side - w) // 2 + w, (side - h) // 2 + h)).save(
                folder / f"{name}_{i:03d}.png")
    return root


MARKER_BOX = (0.62, 0.14, 0.86, 0.38)  # where plant_marker draws, in [0, 1] of each picture


def plant_marker(folder: Path, colour: tuple[int, int, int] = (255, 0, 255)) -> None:
    """A "Clever Hans" shortcut: the same small tag (a black square with a coloured centre), at the same
    place, on every picture in ``folder``."""
    from PIL import Image, ImageDraw

    for path in sorted(folder.glob("*.png")):
        with Image.open(path) as opened:
            picture = opened.convert("RGB")
        w, h = picture.size
        x0, y0, x1, y1 = MARKER_BOX
        box = (round(x0 * w), round(y0 * h), round(x1 * w), round(y1 * h))
        draw = ImageDraw.Draw(picture)
        draw.rectangle(box, fill=(0, 0, 0))
        inset = max(1, (box[2] - box[0]) // 4)
        draw.rectangle((box[0] + inset, box[1] + inset, box[2] - inset, box[3] - inset), fill=colour)
        picture.save(path)
