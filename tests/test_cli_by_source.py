"""``main.py explain --by-source``: each dense block's map split by source, in JSON, text and files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cli.main import main as cli
from tests.model.test_explain import scene
from tests.model.test_sources import one_layer_net


@pytest.fixture
def one_layer_model(tmp_path) -> str:
    path = tmp_path / "one-layer.pth"
    torch.save({"state_dict": one_layer_net().state_dict(), "class_names": ["dark", "bright"],
                "preprocessing": {"input_size": 96, "mean": [0.5] * 3, "std": [0.5] * 3}}, path)
    return str(path)


@pytest.fixture
def picture(tmp_path) -> Path:
    path = tmp_path / "corner.png"
    scene((200, 120), (150, 10, 190, 50)).save(path)
    return path


def test_json_gives_each_dense_block_its_sources_with_shares_and_files(picture, one_layer_model, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli(["explain", str(picture), "--model", one_layer_model, "--out", str(out), "--layer", "all-blocks",
                "--layer", "norm5", "--class", "bright", "--class", "dark", "--by-source", "--raw", "--json"])
    assert code == 0
    (record,) = json.loads(capsys.readouterr().out)
    entries = {(e["layer"], e["label"]): e for e in record["explanations"]}
    assert "sources" not in entries[("norm5", "bright")]
    for block in ("denseblock1", "denseblock2", "denseblock3"):
        e = entries[(block, "bright")]
        assert [s["source"] for s in e["sources"]] == ["input", "denselayer1", "denselayer2"]
        channels = [s["channels"] for s in e["sources"]]
        assert channels[0][0] == 0 and all(a[1] == b[0] for a, b in zip(channels, channels[1:]))
        assert sum(s["share"] for s in e["sources"]) == pytest.approx(1.0)
        parts = [np.load(s["files"]["raw"][0]) for s in e["sources"]]
        whole = np.load(next(p for p in e["files"]["raw"] if p.endswith(".npy")))
        assert np.abs(np.maximum(sum(parts), 0) - whole).max() <= 1e-5 * whole.max()
    carrying = entries[("denseblock3", "bright")]["sources"]
    assert [s["share"] for s in carrying] == [0.0, 0.0, 1.0]
    overlay = Path(carrying[2]["files"]["overlay"][0])
    assert "denseblock3.denselayer2" in overlay.name and overlay.name.endswith("_overlay.png")
    with Image.open(overlay) as img:
        assert img.size == (200, 120)
    assert "overlay" not in carrying[0]["files"]  # no positive part, no picture of nothing
    assert [s["share"] for s in entries[("denseblock3", "dark")]["sources"]] == [None, None, None]


def test_text_output_has_a_line_per_source_with_its_share(picture, one_layer_model, tmp_path, capsys):
    assert cli(["explain", str(picture), "--model", one_layer_model, "--out", str(tmp_path / "out"),
                "--class", "bright", "--by-source", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "denselayer2 (channels 12-15): 100.0% of the evidence" in text
    assert "input (channels 0-7): 0.0% of the evidence" in text


@pytest.mark.parametrize("args, message", [
    (["--method", "scorecam"], "gradient method"),
    (["--layer", "norm5"], "dense blocks only"),
])
def test_by_source_needs_a_gradient_method_and_a_dense_block(picture, one_layer_model, tmp_path, capsys, args,
                                                             message):
    with pytest.raises(SystemExit) as info:
        cli(["explain", str(picture), "--model", one_layer_model, "--out", str(tmp_path / "o"), "--by-source",
             *args])
    assert info.value.code == 2
    assert message in capsys.readouterr().err
