"""Export: files decode and carry metadata; failures leave no partial file; nothing is overwritten."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.classifier import DenseNetClassifier
from model.errors import ExportError
from model.export import atomic_write, export_stem, safe_component, save_png
from model.heatmap_files import export_block_grid, export_map
from model.render import COLORMAPS, colorize, overlay
from tests.model.test_explain import brightness_net, scene


@pytest.fixture
def explanation(tmp_path):
    clf = DenseNetClassifier(brightness_net(), ["dark", "bright/white"], "cpu", input_size=96,
                             mean=(0.5,) * 3, std=(0.5,) * 3)
    path = tmp_path / "in" / "my photo.png"
    path.parent.mkdir()
    scene((200, 120), (150, 10, 190, 50)).save(path)
    return clf.explain(path, layers=["denseblock1", "denseblock2", "denseblock3"], classes=[1, 0])


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_exported_files_decode_and_carry_metadata(explanation, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    m = explanation.get("denseblock3", 1)
    files = export_map(explanation, m, out, "brightness-net", ("overlay", "heatmap", "raw"), "viridis", 0.4)
    overlay_png = Image.open(files["overlay"][0])
    assert overlay_png.size == (200, 120)
    assert overlay_png.text["denselens:layer"] == "denseblock3"
    assert overlay_png.text["denselens:method"] == "gradcam"
    assert overlay_png.text["denselens:class_index"] == "1"
    assert overlay_png.text["denselens:label"] == "bright/white"
    assert overlay_png.text["denselens:model"] == "brightness-net"
    assert overlay_png.text["Software"].startswith("DenseLens ")
    assert float(overlay_png.text["denselens:score"]) == pytest.approx(m.score, rel=1e-5)
    npy_path, png16_path = files["raw"]
    assert np.array_equal(np.load(npy_path), m.raw) and np.load(npy_path).dtype == np.float32
    png16 = Image.open(png16_path)
    assert png16.mode.startswith("I") and png16.size == m.raw.shape[::-1]
    restored = np.asarray(png16, dtype=np.float64) / 65535 * float(png16.text["denselens:raw_max"])
    assert np.allclose(restored, m.raw, atol=m.raw.max() / 30000)
    name = os.path.basename(files["overlay"][0])
    assert name == "my_photo_1-bright_white_denseblock3_gradcam_overlay.png"
    assert not [f for f in _files(out) if f.startswith(".")]


def test_empty_map_gets_no_picture_but_its_raw_map(explanation, tmp_path):
    m = explanation.get("denseblock3", 0)
    assert m.status == "empty"
    files = export_map(explanation, m, tmp_path, "net", ("overlay", "heatmap", "raw"))
    assert set(files) == {"raw"}


def test_block_grid_shows_every_block_side_by_side(explanation, tmp_path):
    path = export_block_grid(explanation, 1, tmp_path, "net")
    img = Image.open(path)
    assert img.width > 3 * 320 * 0.9 and img.text["denselens:layer"] == "denseblock1,denseblock2,denseblock3"


def test_name_collision_never_overwrites(explanation, tmp_path):
    m = explanation.get("denseblock3", 1)
    first = export_map(explanation, m, tmp_path, "net")["overlay"][0]
    before = Path(first).read_bytes()
    second = export_map(explanation, m, tmp_path, "net")["overlay"][0]
    assert second != first and second.endswith("_overlay_2.png")
    assert Path(first).read_bytes() == before
    third = export_map(explanation, m, tmp_path, "net", overwrite=True)["overlay"][0]
    assert third == first


def test_missing_or_unwritable_folder_is_a_clear_error(explanation, tmp_path):
    m = explanation.get("denseblock3", 1)
    with pytest.raises(ExportError, match="does not exist"):
        export_map(explanation, m, tmp_path / "nope", "net")
    blocker = tmp_path / "file.txt"
    blocker.write_text("I am a file")
    with pytest.raises(ExportError, match="not a folder"):
        export_map(explanation, m, blocker / "out", "net")
    assert _files(tmp_path) == ["file.txt", "in"]


@pytest.mark.parametrize("code, message", [(errno.ENOSPC, "disk is full"), (errno.EROFS, "read-only"),
                                           (errno.EACCES, "permission denied")])
def test_failure_mid_write_leaves_no_partial_file(tmp_path, code, message):
    def write(f):
        f.write(b"\x89PNG half of a file")
        raise OSError(code, os.strerror(code))

    with pytest.raises(ExportError, match=message):
        atomic_write(tmp_path / "x.png", write)
    assert _files(tmp_path) == []


def test_failed_rename_leaves_no_partial_file(tmp_path, monkeypatch):
    def refuse(*_args):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "link", refuse)
    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(ExportError):
        save_png(Image.new("RGB", (4, 4)), tmp_path / "x.png")
    assert _files(tmp_path) == []


@pytest.mark.parametrize("text, expected", [
    ("tabby, tabby cat", "tabby_tabby_cat"), ("a/b\\c:d*e?f", "a_b_c_d_e_f"), ("CON", "_CON"),
    ("..", "unnamed"), ("été", "t"), ("x" * 200, "x" * 60),
])
def test_file_name_parts_are_safe_everywhere(text, expected):
    assert safe_component(text) == expected


def test_export_stem_pattern():
    assert export_stem("IMG 01", 281, "tabby, tabby cat", "denseblock4", "gradcam++") == \
        "IMG_01_281-tabby_tabby_cat_denseblock4_gradcampp"


def test_colormaps_come_from_matplotlib_and_span_their_range():
    from matplotlib import colormaps

    ramp = np.linspace(0, 1, 256)[None]
    for name in COLORMAPS:
        rgb = colorize(ramp, name)[0]
        ref = colormaps["gray" if name == "grey" else name](ramp[0])[:, :3] * 255
        assert np.abs(rgb - ref).max() <= 1, name
    assert tuple(colorize(np.array([[1.0]]), "jet")[0, 0]) == (128, 0, 0)


def test_overlay_opacity(tmp_path):
    img = Image.new("RGB", (4, 4), (0, 0, 0))
    heat = np.ones((4, 4), np.float32)
    assert overlay(img, heat, alpha=0.0).getpixel((0, 0)) == (0, 0, 0)
    assert overlay(img, heat, alpha=1.0, colormap="grey").getpixel((0, 0)) == (255, 255, 255)
    with pytest.raises(ValueError):
        overlay(img, heat, alpha=1.5)
