"""Decoding image files into RGB with Pillow, with messages a person can act on."""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from model.errors import ImageLoadError

IMAGE_EXTENSIONS = frozenset({
    ".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff",
    ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".ico", ".jfif", ".heic", ".heif", ".avif",
})
# The decoders Pillow may use, whatever a file's name or content claims.  Pillow picks a decoder by
# content: a PostScript file named photo.jpg would otherwise open as EPS and run Ghostscript (an
# external interpreter) on untrusted input.  EPS, PDF and every plugin that starts a program stay out
# (JPEG covers multi-picture MPO files).
DECODERS = ("JPEG", "PNG", "BMP", "DIB", "GIF", "WEBP", "TIFF", "PPM", "TGA", "ICO", "AVIF")
# Transparent pixels are composited onto mid grey: neither black nor white
# pushes the network towards "dark" or "bright" scenes.
BACKGROUND = (128, 128, 128)


@dataclass
class LoadedImage:
    """An RGB image and where it came from.

    ``original_size`` is the (width, height) of the picture as a person sees it
    (EXIF orientation applied), even when ``image`` was decoded at a reduced
    scale for speed; heatmaps are mapped back onto that grid.
    """

    image: Image.Image
    original_size: tuple[int, int]
    path: Path | None = None

    @property
    def name(self) -> str:
        return str(self.path) if self.path else "<image>"


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if mode.startswith("I;16"):
            arr = arr / 257.0
        else:
            lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
            if mode == "F" and lo >= 0.0 and hi <= 1.0:
                arr = arr * 255.0
            elif not (lo >= 0.0 and hi <= 255.0):
                arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        grey = np.nan_to_num(arr).clip(0, 255).round().astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if mode == "P" and "transparency" in img.info or mode == "PA" or mode in ("LA", "La", "RGBa"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        background = Image.new("RGB", img.size, BACKGROUND)
        background.paste(img, mask=img.getchannel("A"))
        return background
    return img.convert("RGB")


def _check_path(path: Path) -> None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ImageLoadError(f"{path}: file not found") from None
    except OSError as e:
        raise ImageLoadError(f"{path}: cannot read ({e.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageLoadError(f"{path}: is a folder, not an image")
    if not stat.S_ISREG(st.st_mode):
        raise ImageLoadError(f"{path}: not a regular file")
    if st.st_size == 0:
        raise ImageLoadError(f"{path}: the file is empty (0 bytes)")


def load_image(path: str | Path) -> LoadedImage:
    """Open ``path`` as RGB with EXIF orientation applied (first frame of animations).

    Always decoded at full size, so every caller analyses the same pixels.
    Pillow's decompression-bomb limit stays in force.
    """
    path = Path(path)
    _check_path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Corrupt EXIF data" and the like: decode anyway
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=DECODERS) as img:
                orientation = img.getexif().get(0x0112, 1)
                swapped = orientation in (5, 6, 7, 8)
                w, h = img.size
                original = (h, w) if swapped else (w, h)
                img.load()
                img = ImageOps.exif_transpose(img)
                rgb = _to_rgb(img)
                rgb.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageLoadError(
            f"{path}: image is too large to open safely (more than "
            f"{Image.MAX_IMAGE_PIXELS:,} pixels; possible decompression bomb)") from None
    except UnidentifiedImageError:
        suffix = path.suffix.lower()
        if suffix in (".heic", ".heif", ".avif"):
            raise ImageLoadError(f"{path}: {suffix[1:].upper()} images are not supported by this installation "
                                 "(convert it to JPEG or PNG)") from None
        raise ImageLoadError(f"{path}: not an image, or a format this app cannot read") from None
    except PermissionError:
        raise ImageLoadError(f"{path}: permission denied") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        detail = str(e) or type(e).__name__
        if "truncated" in detail.lower():
            detail = "the file is truncated (incomplete download or copy?)"
        raise ImageLoadError(f"{path}: cannot decode the image: {detail}") from None
    return LoadedImage(rgb, original, path)


def as_loaded(item: str | Path | Image.Image | LoadedImage) -> LoadedImage:
    """Accept a path, a PIL image or a LoadedImage."""
    if isinstance(item, LoadedImage):
        return item
    if isinstance(item, Image.Image):
        rgb = _to_rgb(ImageOps.exif_transpose(item))
        return LoadedImage(rgb, rgb.size)
    return load_image(item)


def collect_images(paths: Iterable[str | Path]) -> tuple[list[Path], list[Path]]:
    """Expand files and folders into (images, skipped).

    Folders are scanned recursively for image extensions, sorted; files named
    explicitly are kept whatever their extension (loading reports problems).
    ``skipped`` lists non-image files found inside folders.
    """
    images: list[Path] = []
    skipped: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for name in sorted(files):
                    f = Path(root) / name
                    (images if f.suffix.lower() in IMAGE_EXTENSIONS else skipped).append(f)
        else:
            images.append(p)
    return images, skipped
