"""Decoding image files into RGB with Pillow, with messages a person can act on."""

from __future__ import annotations

import errno
import os
import stat
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
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
# Decoded pixels plus their RGB copy must fit this memory budget; a larger picture is refused.
DECODE_BUDGET_BYTES = 2 << 30
CONVERSION_ROWS = 256  # rows converted at a time from 16-bit, 32-bit and float greyscale
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "LA": 2, "PA": 2, "La": 2, "RGB": 3, "YCbCr": 3, "LAB": 3, "HSV": 3,
                    "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
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


def _grey_to_8bit(img: Image.Image) -> np.ndarray:
    """16-bit, 32-bit integer or float greyscale to 8 bits, a band of rows at a time.

    Converting the whole picture through float64 at once cost 8 bytes per pixel
    several times over (a 9000x9000 16-bit PNG took 5 GB); by bands the extra
    memory stays under ``CONVERSION_ROWS`` rows of floats.
    """
    arr = np.asarray(img)
    out = np.empty(arr.shape, dtype=np.uint8)
    if img.mode.startswith("I;16"):
        scale, offset = 1 / 257.0, 0.0
    else:
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        if img.mode == "F" and lo >= 0.0 and hi <= 1.0:
            scale, offset = 255.0, 0.0
        elif lo >= 0.0 and hi <= 255.0:
            scale, offset = 1.0, 0.0
        elif hi > lo and np.isfinite(hi - lo):
            scale, offset = 255.0 / (hi - lo), lo
        else:
            scale, offset = 0.0, 0.0
    for top in range(0, arr.shape[0], CONVERSION_ROWS):
        band = (arr[top:top + CONVERSION_ROWS].astype(np.float64) - offset) * scale
        out[top:top + CONVERSION_ROWS] = np.nan_to_num(band).clip(0, 255).round()
    return out


def _check_budget(img: Image.Image, path: Path) -> None:
    """Refuse a picture whose decoded pixels and RGB copy would not fit ``DECODE_BUDGET_BYTES``."""
    w, h = img.size
    need = w * h * (_BYTES_PER_PIXEL.get(img.mode, 4) + 3)
    if need > DECODE_BUDGET_BYTES:
        raise ImageLoadError(f"{path}: a {w}x{h} {img.mode} picture needs about {need / 2**20:,.0f} MB to decode, "
                             f"over this app's limit of {DECODE_BUDGET_BYTES / 2**20:,.0f} MB")


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return Image.fromarray(_grey_to_8bit(img), "L").convert("RGB")
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
        raise ImageLoadError(f"{path}: cannot read ({os_reason(e)})") from None
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
                _check_budget(img, path)
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


@dataclass
class Collected:
    """What a list of files and folders expands to.

    ``images``: files named explicitly (whatever their extension: loading
    reports problems) and image files found in folders, in order, folders
    sorted.  ``skipped``: non-image files found in folders.  ``problems``:
    (path, reason) for paths and sub-folders that could not be read at all
    (permission denied, name too long, ...); the rest is collected anyway.
    """

    images: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)


def os_reason(error: OSError) -> str:
    """A short, human reason for an operating-system error."""
    return {errno.EACCES: "permission denied", errno.EPERM: "permission denied",
            errno.ENAMETOOLONG: "the name is too long for the file system",
            errno.ELOOP: "too many symbolic links"}.get(error.errno, error.strerror or str(error))


def collect_images(paths: Iterable[str | Path]) -> Collected:
    """Expand files and folders (recursively) into images, skipped files and unreadable paths."""
    found = Collected()
    for p in map(Path, paths):
        try:
            is_dir = stat.S_ISDIR(os.stat(p).st_mode)
        except OSError:
            is_dir = False  # named explicitly: listed, and loading it says why it cannot be read
        if not is_dir:
            found.images.append(p)
            continue

        def unreadable(error: OSError, top: Path = p) -> None:
            found.problems.append((Path(error.filename or top), os_reason(error)))

        for root, dirs, files in os.walk(p, onerror=unreadable):
            dirs.sort()
            for name in sorted(files):
                f = Path(root) / name
                (found.images if f.suffix.lower() in IMAGE_EXTENSIONS else found.skipped).append(f)
    return found
