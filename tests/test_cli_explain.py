"""``main.py explain``: files written per (layer, class), JSON shape, exit codes, usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from cli.main import main as cli
from tests.model.test_explain import brightness_net, scene


@pytest.fixture
def bright_model(tmp_path) -> str:
    path = tmp_path / "bright.pth"
    torch.save({"state_dict": brightness_net().state_dict(), "class_names": ["dark", "bright"],
                "preprocessing": {"input_size": 96, "mean": [0.5] * 3, "std": [0.5] * 3}}, path)
    return str(path)


@pytest.fixture
def folder(tmp_path) -> Path:
    d = tmp_path / "scenes"
    d.mkdir()
    scene((200, 120), (150, 10, 190, 50)).save(d / "corner.png")
    scene((120, 160), (10, 110, 50, 150)).save(d / "low.jpg")
    (d / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return d


def test_explain_folder_writes_overlays_and_reports_json(folder, bright_model, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli(["explain", str(folder), "--model", bright_model, "--out", str(out), "--layer", "all-blocks",
                "--class", "bright", "--class", "top2", "--raw", "--metrics", "--json", "--topk", "2"])
    records = json.loads(capsys.readouterr().out)
    assert code == 1  # bad.png failed, the others were done
    by_name = {Path(r["path"]).name: r for r in records}
    assert "bad.png" in by_name["bad.png"]["error"]
    corner = by_name["corner.png"]
    assert corner["error"] is None and corner["predictions"][0]["label"] == "bright"
    pairs = {(e["layer"], e["label"]) for e in corner["explanations"]}
    assert pairs == {(f"denseblock{i}", c) for i in (1, 2, 3) for c in ("bright", "dark")}
    for e in corner["explanations"]:
        assert set(e) >= {"layer", "class_index", "label", "probability", "files", "status"}
        if e["label"] == "bright":
            assert set(e["files"]) == {"overlay", "heatmap", "raw"}
            assert set(e["metrics"]) >= {"deletion_auc", "insertion_auc", "confidence_change_top20"}
            with Image.open(e["files"]["overlay"][0]) as img:
                assert img.size == (200, 120)
        elif e["layer"] == "denseblock3":  # past the transitions' ReLU nothing argues for "dark"
            assert e["status"] == "empty" and set(e["files"]) == {"raw"}
    assert any("no positive evidence" in w for w in corner["warnings"])
    assert Path(corner["grids"]["1"]).is_file()


def test_overlay_heat_is_on_the_object(folder, bright_model, tmp_path, capsys):
    import numpy as np

    out = tmp_path / "out"
    assert cli(["explain", str(folder / "corner.png"), "--model", bright_model, "--out", str(out),
                "--colormap", "grey", "--alpha", "1", "--quiet"]) == 0
    heatmap = next(out.glob("*_heatmap.png"))
    grey = np.asarray(Image.open(heatmap).convert("L"), dtype=float)
    y, x = np.unravel_index(grey.argmax(), grey.shape)
    assert 140 <= x <= 200 and y <= 60
    assert "corner.png" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--layer", "denseblock7"], "choose from denseblock1"),
    (["--method", "magic"], "choose from gradcam"),
    (["--class", "zebra"], "unknown class"),
    (["--colormap", "rainbow"], "choose from jet"),
    (["--alpha", "2"], "--alpha"),
])
def test_usage_errors_list_valid_choices(folder, bright_model, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as info:
        cli(["explain", str(folder), "--model", bright_model, "--out", str(tmp_path / "o"), *args])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_output_folder_that_cannot_exist_is_a_usage_error(folder, bright_model, tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(SystemExit) as info:
        cli(["explain", str(folder), "--model", bright_model, "--out", str(blocker / "out")])
    assert info.value.code == 2 and "cannot create the output folder" in capsys.readouterr().err
