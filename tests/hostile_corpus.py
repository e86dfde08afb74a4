"""A corpus of odd and hostile image files, generated on the fly (no committed binaries).

Each entry says what a correct app does with it: ``ok`` (classified), ``error`` (refused with a message
containing ``expect``), or ``any`` (a damaged file that may still decode: either outcome is fine, a crash
is not).
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass
class Case:
    path: Path
    outcome: str  # "ok", "error" or "any"
    expect: str = ""  # part of the error message


def _noise(size=(120, 90)) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def _bytes(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size (a decompression bomb's signature)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + \
        chunk(b"IEND", b"")


def build(folder: Path) -> list[Case]:
    folder.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []
    base = _noise()

    def write(name: str, data: bytes, outcome: str, expect: str = "") -> None:
        path = folder / name
        path.write_bytes(data)
        cases.append(Case(path, outcome, expect))

    formats = {"jpg": ("JPEG", {}), "png": ("PNG", {}), "gif": ("GIF", {}), "webp": ("WEBP", {}),
               "tif": ("TIFF", {}), "bmp": ("BMP", {})}
    for ext, (fmt, kw) in formats.items():
        data = _bytes(base, fmt, **kw)
        write(f"good.{ext}", data, "ok")
        write(f"truncated.{ext}", data[: max(20, len(data) // 3)], "error" if ext != "bmp" else "any")
        flipped = bytearray(data)
        for i in range(len(flipped) // 4, len(flipped), max(1, len(flipped) // 40)):
            flipped[i] ^= 0xFF
        write(f"bitflipped.{ext}", bytes(flipped), "any")
    write("png-named.jpg", _bytes(base, "PNG"), "ok")
    write("text-named.png", b"Dear diary, today I pretended to be a PNG.\n" * 20, "error", "not an image")
    write("postscript-named.jpg", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n%%EOF\n", "error",
          "not an image")  # Pillow alone would open it as EPS and run Ghostscript on it
    write("empty.jpg", b"", "error", "empty")
    write("bomb.png", _png_claiming(100_000, 100_000), "error", "too large")
    write("one-pixel.png", _bytes(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG"), "ok")
    write("strip-10000x10.png", _bytes(Image.new("RGB", (10_000, 10), (10, 200, 10)), "PNG"), "ok")
    write("gray16.tif", _bytes(Image.fromarray(np.full((40, 60), 40_000, np.uint16)), "TIFF"), "ok")
    write("float.tif", _bytes(Image.fromarray(np.random.default_rng(1).random((40, 60), dtype=np.float32), "F"),
                              "TIFF"), "ok")
    write("cmyk.jpg", _bytes(base.convert("CMYK"), "JPEG"), "ok")
    pal = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    write("palette-transparent.png", _bytes(pal, "PNG", transparency=0), "ok")
    frames = [Image.new("RGB", (40, 40), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    for ext, fmt in (("gif", "GIF"), ("webp", "WEBP")):
        buf = io.BytesIO()
        frames[0].save(buf, format=fmt, save_all=True, append_images=frames[1:], duration=50, loop=0)
        write(f"animated.{ext}", buf.getvalue(), "ok")
    for orientation in (3, 6, 8):
        exif = Image.Exif()
        exif[0x0112] = orientation
        write(f"exif-{orientation}.jpg", _bytes(base, "JPEG", exif=exif), "ok")
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    write("icc.jpg", _bytes(base, "JPEG", icc_profile=profile), "ok")
    write("fake.heic", b"\x00\x00\x00\x18ftypheic" + b"\x00" * 100, "error", "not supported")
    (folder / "folder.png").mkdir(exist_ok=True)
    cases.append(Case(folder / "folder.png", "error", "folder"))
    if hasattr(os, "mkfifo"):
        os.mkfifo(folder / "pipe.jpg")
        cases.append(Case(folder / "pipe.jpg", "error", "not a regular file"))
    cases.append(Case(folder / "deleted.png", "error", "not found"))  # listed, then gone
    latin1 = Path(os.fsdecode(os.fsencode(folder) + b"/caf\xe9.png"))  # a Latin-1 name: not UTF-8
    latin1.write_bytes(_bytes(base, "PNG"))
    cases.append(Case(latin1, "ok"))
    cases.append(Case(folder / ("n" * 5000 + ".png"), "error", "too long"))  # no file system takes that name
    return cases
