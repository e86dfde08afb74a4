"""Image decoding: every Pillow mode to RGB, orientation, animations and broken files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from model.errors import ImageLoadError
from model.images import BACKGROUND, collect_images, load_image
from tests.conftest import save_image


def _pixel(path, xy=(5, 5)):
    return load_image(path).image.getpixel(xy)


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "CMYK"])
def test_plain_modes_become_rgb(tmp_path, mode):
    fmt = "TIFF" if mode == "CMYK" else "PNG"
    path = save_image(tmp_path / f"x_{mode}.{fmt.lower()}", mode=mode, color=(255, 255, 255), fmt=fmt)
    loaded = load_image(path)
    assert loaded.image.mode == "RGB" and loaded.original_size == (80, 60)
    assert loaded.image.getpixel((5, 5)) == (255, 255, 255)


def test_transparency_is_composited_on_neutral_grey(tmp_path):
    img = Image.new("RGBA", (20, 20), (255, 0, 0, 0))
    img.putpixel((1, 1), (255, 0, 0, 255))
    img.save(tmp_path / "rgba.png")
    img.convert("LA").save(tmp_path / "la.png")
    pal = Image.new("P", (20, 20), 0)
    pal.putpalette([0, 0, 0, 255, 0, 0])
    pal.putpixel((1, 1), 1)
    pal.save(tmp_path / "p.png", transparency=0)
    for name in ("rgba.png", "la.png", "p.png"):
        assert _pixel(tmp_path / name) == BACKGROUND, name
    assert _pixel(tmp_path / "rgba.png", (1, 1)) == (255, 0, 0)
    assert _pixel(tmp_path / "p.png", (1, 1)) == (255, 0, 0)


def test_16_bit_and_float_images_keep_their_brightness(tmp_path):
    Image.fromarray(np.full((10, 10), 32768, np.uint16)).save(tmp_path / "i16.png")
    Image.fromarray(np.full((10, 10), 0.25, np.float32), "F").save(tmp_path / "f.tif")
    arr = np.zeros((10, 10), np.int32)
    arr[:, 5:] = 1000
    Image.fromarray(arr, "I").save(tmp_path / "i32.tif")
    assert _pixel(tmp_path / "i16.png")[0] in (127, 128)
    assert _pixel(tmp_path / "f.tif")[0] in (63, 64)
    assert _pixel(tmp_path / "i32.tif", (1, 1))[0] == 0 and _pixel(tmp_path / "i32.tif", (8, 1))[0] == 255


def test_exif_rotation_is_applied(tmp_path):
    img = Image.new("RGB", (80, 40), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 10, 40))  # red stripe on the left edge
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    img.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    loaded = load_image(tmp_path / "rot.jpg")
    assert loaded.original_size == (40, 80)
    r, g, b = loaded.image.getpixel((20, 3))  # the left edge is now on top
    assert r > 200 and b < 60


def test_exif_rotated_jpeg_is_decoded_upright_at_full_size(tmp_path):
    img = Image.new("RGB", (1600, 800), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 200, 800))  # a red strip on the left, rotated to the top by EXIF 6
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(tmp_path / "big.jpg", exif=exif)
    loaded = load_image(tmp_path / "big.jpg")
    assert loaded.original_size == loaded.image.size == (800, 1600)  # never decoded at reduced scale
    pixels = np.asarray(loaded.image)
    assert pixels[50, 400, 0] > 200 and pixels[1500, 400, 2] > 200


def test_animated_gif_uses_first_frame(tmp_path):
    frames = [Image.new("RGB", (16, 16), c) for c in [(255, 0, 0), (0, 255, 0)]]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    r, g, _ = _pixel(tmp_path / "anim.gif")
    assert r > 200 and g < 50


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_text("hello, I am text"), "not an image"),
    (lambda p: p.mkdir(), "folder"),
    (lambda p: None, "not found"),
])
def test_bad_files_get_a_clear_message(tmp_path, make, message):
    path = tmp_path / "x.png"
    make(path)
    with pytest.raises(ImageLoadError, match=message) as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_truncated_jpeg_is_reported(tmp_path):
    path = tmp_path / "t.jpg"
    Image.effect_noise((400, 300), 60).convert("RGB").save(path, quality=90)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ImageLoadError, match="truncated"):
        load_image(path)


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    path = save_image(tmp_path / "bomb.png", size=(100, 100))
    with pytest.raises(ImageLoadError, match="too large"):
        load_image(path)


def test_path_with_spaces_and_non_ascii(tmp_path):
    path = save_image(tmp_path / "mes photos" / "été à Zürich 猫.png")
    assert load_image(path).image.size == (80, 60)


def test_collect_images_recurses_sorts_and_skips_non_images(tmp_path):
    save_image(tmp_path / "b.png")
    save_image(tmp_path / "a.JPG", fmt="JPEG")
    save_image(tmp_path / "sub" / "c.webp")
    (tmp_path / "readme.txt").write_text("x")
    explicit = tmp_path / "data.bin"
    explicit.write_text("x")
    found = collect_images([tmp_path, explicit])
    images, skipped = found.images, found.skipped
    rel = [p.relative_to(tmp_path).as_posix() for p in images]
    assert rel == ["a.JPG", "b.png", "sub/c.webp", "data.bin"]
    assert [p.name for p in skipped] == ["data.bin", "readme.txt"]


def test_postscript_named_jpg_is_refused_without_starting_a_program(tmp_path, monkeypatch):
    import subprocess

    from PIL import EpsImagePlugin

    from model.images import load_image

    started = []
    monkeypatch.setattr(EpsImagePlugin, "has_ghostscript", lambda: True)  # as on a machine with Ghostscript
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", "gs", raising=False)
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: started.append(a) or (_ for _ in ()).throw(OSError()))
    monkeypatch.setattr(subprocess, "check_call", lambda *a, **k: started.append(a))
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto 10 10 lineto stroke\n"
                     b"showpage\n%%EOF\n")
    with pytest.raises(ImageLoadError, match="photo.jpg: not an image, or a format this app cannot read"):
        load_image(path)
    assert started == []


def test_large_16_bit_greyscale_decodes_within_a_bounded_memory(tmp_path):
    """A 9000x9000 16-bit PNG once took 5 GB through float64 conversions; by bands it stays near its RGB size."""
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "grey16.png"
    Image.fromarray(np.tile(np.arange(9000, dtype=np.uint16) * 7, (9000, 1))).save(path, compress_level=1)
    # VmHWM: this process's own peak (ru_maxrss would include the forking pytest process's size).
    code = ("import re, sys; from model.images import load_image; img = load_image(sys.argv[1]); "
            "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1); "
            "print(img.image.mode, *img.image.size, int(hwm) // 1024)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])
    mode, w, h, peak_mb = out.stdout.split()
    assert (mode, w, h) == ("RGB", "9000", "9000"), out.stderr
    assert int(peak_mb) < 1100  # decoded 16-bit (162 MB) + RGB (243 MB) + bands; 2.2 GB before


def test_picture_over_the_decode_budget_is_refused_naming_the_limit(tmp_path, monkeypatch):
    import model.images

    monkeypatch.setattr(model.images, "DECODE_BUDGET_BYTES", 1 << 20)
    path = save_image(tmp_path / "big.png", size=(1000, 800))
    message = r"big.png: a 1000x800 RGB picture needs about 5 MB to decode, over this app's limit of 1 MB"
    with pytest.raises(ImageLoadError, match=message):
        load_image(path)


def test_16_bit_conversion_rounds_like_dividing_by_257():
    from model.images import _to_rgb

    values = np.array([[0, 128, 129, 385, 65535, 40_000]], dtype=np.uint16)
    rgb = np.asarray(_to_rgb(Image.fromarray(values)))
    assert rgb[0, :, 0].tolist() == np.round(values[0] / 257.0).astype(np.uint8).tolist()
