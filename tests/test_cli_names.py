"""``main.py explain`` output names: every script is kept, and one run never overwrites its own files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from cli.main import main as cli
from model.paths import assets_dir
from tests.conftest import make_tiny, save_image


@pytest.fixture
def chinese_model(tmp_path) -> str:
    path = tmp_path / "猫狗.pth"
    torch.save({"state_dict": make_tiny().state_dict(), "class_names": ["虎斑猫", "柴犬", "鹦鹉", "金鱼"],
                "preprocessing": {"input_size": 64}}, path)
    return str(path)


def _explain(capsys, *argv: str) -> list[dict]:
    code = cli(["explain", *argv, "--json", "--quiet", "--device", "cpu"])
    records = json.loads(capsys.readouterr().out)
    assert code == 0, records
    return records


def test_unicode_image_and_class_names_are_kept(tmp_path, chinese_model, capsys):
    image = Path(save_image(tmp_path / "in" / "chat été 猫.png"))
    out = tmp_path / "out"
    [record] = _explain(capsys, str(image), "--model", chinese_model, "--out", str(out))
    label = record["predictions"][0]["label"]
    overlay = Path(record["explanations"][0]["files"]["overlay"][0])
    assert overlay.parent == out and overlay.name.startswith(f"chat_été_猫_{record['predictions'][0]['index']}-")
    assert f"-{label}_" in overlay.name and "unnamed" not in overlay.name and overlay.is_file()


def test_same_stem_in_two_folders_keeps_both_files_even_with_overwrite(tmp_path, capsys):
    # the bundled star and its mirror image under one name: one class, so the output names collide (and
    # pictures the demo finds evidence in: an empty map writes no file)
    a, b = tmp_path / "a" / "cat.png", tmp_path / "b" / "cat.png"
    with Image.open(assets_dir() / "samples" / "star.png") as star:
        for picture, path in ((star, a), (star.transpose(Image.Transpose.FLIP_LEFT_RIGHT), b)):
            path.parent.mkdir()
            picture.save(path)
    out = tmp_path / "out"
    argv = [str(a), str(b), "--model", "demo", "--out", str(out), "--overwrite"]
    first, second = _explain(capsys, *argv)
    written = [Path(p) for r in (first, second) for e in r["explanations"] for ps in e["files"].values() for p in ps]
    assert len(written) == 4 and len(set(written)) == 4 and all(p.is_file() for p in written)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in written)
    assert any(p.name.endswith("_overlay_2.png") for p in written)
    # A second run with --overwrite replaces the first run's files instead of piling up _3, _4.
    again = _explain(capsys, *argv)
    assert [e["files"] for r in again for e in r["explanations"]] == \
        [e["files"] for r in (first, second) for e in r["explanations"]]
