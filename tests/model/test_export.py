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
from model.export import OutputNames, atomic_write, export_stem, safe_component, save_png
from model.heatmap_files import export_block_grid, export_map
from model.render import COLORMAPS, colorize, overlay
from model.zoo import Preprocessing
from tests.model.test_explain import brightness_net, scene


@pytest.fixture
def explanation(tmp_path):
    clf = DenseNetClassifier(brightness_net(), ["dark", "bright/white"], "cpu",
                             preprocessing=Preprocessing(input_size=96, mean=(0.5,) * 3, std=(0.5,) * 3))
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
    ("lpt1.txt", "_lpt1.txt"),
    ("..", "unnamed"), ("x" * 200, "x" * 60), ("chat été 猫", "chat_été_猫"), ("猫", "猫"), ("Ωμέγα", "Ωμέγα"),
    ("-rf", "rf"), (".hidden", "hidden"), ("end. ", "end"), ("tab\tnew\nline\x00nul", "tab_new_line_nul"),
    ("caf\udce9", "caf"), ("caf\udce9s", "caf_s"), ("a\u202egnp.exe", "a_gnp.exe"), ("$(rm -rf ~)", "rm_-rf"),
    ("e\u0301te\u0301", "été"), ("full\u3000width", "full_width"),
])
def test_file_name_parts_are_safe_everywhere(text, expected):
    assert safe_component(text) == expected


def test_file_name_parts_keep_their_script_and_fit_in_bytes():
    chinese = "中华田园猫" * 30  # 3 bytes a character
    part = safe_component(chinese)
    assert part and set(part) <= set("中华田园猫") and len(part.encode()) <= 60 and len(part) == 20
    assert safe_component("é" * 100, 41).encode() == ("é" * 20).encode()  # never half a character
    stem = export_stem("猫" * 300, 999, "虎斑猫" * 80, "denseblock4", "gradcam++")
    assert len(f"{stem}_heatmap_9999.png".encode()) < 200
    assert export_stem("chat été 猫", 3, "虎斑猫", "denseblock4", "gradcam") == \
        "chat_été_猫_3-虎斑猫_denseblock4_gradcam"


def test_unicode_image_and_class_names_reach_the_file_names(explanation, tmp_path):
    explanation.prepared.loaded.path = Path("chat été 猫.png")
    m = explanation.get("denseblock3", 1)
    m.label = "虎斑猫"
    files = export_map(explanation, m, tmp_path, "net")
    assert Path(files["overlay"][0]).name == "chat_été_猫_1-虎斑猫_denseblock3_gradcam_overlay.png"
    assert Image.open(files["overlay"][0]).text["denselens:label"] == "虎斑猫"


def test_overwrite_never_replaces_a_file_of_the_same_run(explanation, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    m = explanation.get("denseblock3", 1)
    old = export_map(explanation, m, out, "net")["overlay"][0]  # left by an earlier run
    taken = OutputNames()
    first = export_map(explanation, m, out, "net", overwrite=True, taken=taken)
    second = export_map(explanation, m, out, "net", overwrite=True, taken=taken)  # b/cat.png after a/cat.png
    assert first["overlay"][0] == old  # the earlier run's file is replaced, as asked
    assert second["overlay"][0].endswith("_overlay_2.png") and second["heatmap"][0].endswith("_heatmap_2.png")
    assert len(taken) == 4 and len(_files(out)) == 4 and Path(first["overlay"][0]).is_file()
    grid1 = export_block_grid(explanation, 1, out, "net", overwrite=True, taken=taken)
    grid2 = export_block_grid(explanation, 1, out, "net", overwrite=True, taken=taken)
    assert grid1 != grid2 and Path(grid1).is_file() and Path(grid2).is_file()


def test_same_run_names_compare_like_a_case_insensitive_file_system(tmp_path):
    taken = OutputNames()
    a = save_png(Image.new("RGB", (2, 2)), tmp_path / "Cat.png", overwrite=True, taken=taken)
    b = save_png(Image.new("RGB", (2, 2)), tmp_path / "cat.png", overwrite=True, taken=taken)
    assert a.name == "Cat.png" and b.name == "cat_2.png"


def test_surrogates_in_metadata_do_not_break_the_png(tmp_path):
    path = save_png(Image.new("RGB", (2, 2)), tmp_path / "x.png", {"denselens:model": "/models/caf\udce9.pth"})
    assert Image.open(path).text["denselens:model"] == "/models/caf\\udce9.pth"


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


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    import os

    from model.export import atomic_write

    old = os.umask(umask)
    try:
        path = atomic_write(tmp_path / "out.png", lambda f: f.write(b"x"))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode
