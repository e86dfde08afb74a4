"""``main.py evaluate``: the JSON contract, the text report, the files in --out, exit codes and usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from cli.main import main as cli
from tests.conftest import usage_error
from tests.model.test_folder_evaluation import EXPECTED_CONFUSION, HAND_MADE, colour_net, make_folder


def save_colour_model(path: Path, labels=("a", "b", "c")) -> str:
    torch.save({"state_dict": colour_net().state_dict(), "class_names": list(labels),
                "preprocessing": {"input_size": 32, "mean": [0.0] * 3, "std": [1.0] * 3, "mode": "center-crop"},
                "format_version": 2}, path)
    return str(path)


@pytest.fixture
def model(tmp_path) -> str:
    return save_colour_model(tmp_path / "colours.pth")


@pytest.fixture
def folder(tmp_path) -> Path:
    root = make_folder(tmp_path / "data", HAND_MADE)
    (root / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    make_folder(root, {"zebra": {"z.png": (0, 0, 255)}})
    return root




def test_json_report_with_files(folder, model, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli(["evaluate", str(folder), "--model", model, "--out", str(out), "--json", "--quiet"])
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert code == 0
    assert set(report) >= {"model", "accuracy", "classes", "confusion", "mistakes", "skipped", "ignored"}
    assert report["model"] == model and report["accuracy"] == pytest.approx(0.75)
    assert report["confusion"] == EXPECTED_CONFUSION
    assert [(c["name"], c["count"]) for c in report["classes"]] == [("a", 4), ("b", 2), ("c", 2)]
    assert report["classes"][1]["precision"] == pytest.approx(2 / 3) and report["classes"][1]["f1"] == \
        pytest.approx(0.8)
    assert [Path(s["path"]).name for s in report["skipped"]] == ["broken.png"]
    assert "1 unreadable picture(s) skipped" in captured.err
    assert any(Path(i["path"]).name == "zebra" for i in report["ignored"])
    assert [Path(m["path"]).name for m in report["mistakes"]] == ["purple.png", "greenish.png"]
    assert [(m["true"], m["predicted"]) for m in report["mistakes"]] == [("c", "a"), ("a", "b")]
    assert report["mistakes"][0]["probability"] > report["mistakes"][1]["probability"]
    for mistake in report["mistakes"]:
        assert set(mistake["files"]) == {"comparison", "predicted", "true"}
        for kind in ("predicted", "true"):
            with Image.open(mistake["files"][kind]) as img:
                assert img.format == "PNG" and img.size == (40, 40)
    with Image.open(report["files"]["confusion"]) as img:
        assert img.format == "PNG" and Path(img.filename) == out / "confusion.png"


def test_text_report_is_a_readable_table(folder, model, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli(["evaluate", str(folder), "--model", model, "--out", str(out), "--quiet", "--mistakes", "1"])
    text = capsys.readouterr().out
    assert code == 0
    assert "Accuracy: 75.0% (6 of 8)" in text
    lines = text.splitlines()
    b_row = next(line for line in lines if line.startswith("b ") and "%" in line)
    assert b_row.split() == ["b", "2", "3", "66.7%", "100.0%", "80.0%"]
    rows = [line.split() for line in lines if line[:2] in ("0 ", "1 ", "2 ")]
    assert rows == [["0", "a", "3", "1", "0"], ["1", "b", "0", "2", "0"], ["2", "c", "1", "0", "1"]]
    assert "Most confident mistakes (1 of 2):" in text and "c/purple.png: true c" in text
    assert "broken.png" in text and "zebra" in text
    assert f"Files written to {out}" in text
    assert len(list((out / "mistakes").glob("01_purple*.png"))) == 3


def test_without_out_nothing_is_written(folder, model, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    assert cli(["evaluate", str(folder), "--model", model, "--quiet"]) == 0
    assert "No files written" in capsys.readouterr().out
    assert sorted(tmp_path.rglob("*")) == before


def test_unicode_class_folders_in_json_and_text(tmp_path, capsys):
    model = save_colour_model(tmp_path / "m.pth", labels=("été", "猫", "c"))
    root = make_folder(tmp_path / "données", {"été": {"r.png": (230, 20, 20), "v.png": (60, 200, 0)},
                                               "猫": {"g.png": (0, 220, 0)}})
    assert cli(["evaluate", str(root), "--model", model, "--json", "--quiet", "--out", str(tmp_path / "o")]) == 0
    raw = capsys.readouterr().out
    assert raw.isascii()  # escaped: valid on any console
    report = json.loads(raw)
    assert [(c["name"], c["count"]) for c in report["classes"]] == [("été", 2), ("猫", 1), ("c", 0)]
    assert report["confusion"] == [[1, 1, 0], [0, 1, 0], [0, 0, 0]]
    assert all(Path(p).is_file() for p in report["mistakes"][0]["files"].values())
    assert cli(["evaluate", str(root), "--model", model, "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "0 été" in text and "1 猫" in text


def test_missing_folder_is_a_usage_error(model, tmp_path, capsys):
    err = usage_error(["evaluate", str(tmp_path / "nowhere"), "--model", model], capsys)
    assert "nowhere" in err and "no such folder" in err


def test_a_file_instead_of_a_folder_is_a_usage_error(model, tmp_path, capsys):
    picture = tmp_path / "one.png"
    Image.new("RGB", (8, 8)).save(picture)
    err = usage_error(["evaluate", str(picture), "--model", model], capsys)
    assert "one.png" in err and "not a folder" in err


def test_no_sub_folder_named_after_a_class_is_a_usage_error(model, tmp_path, capsys):
    root = make_folder(tmp_path / "pets", {"dog": {"d.png": (1, 2, 3)}})
    err = usage_error(["evaluate", str(root), "--model", model], capsys)
    assert "pets" in err and "model's classes" in err


def test_bad_options_are_usage_errors(folder, model, tmp_path, capsys):
    assert "--mistakes" in usage_error(["evaluate", str(folder), "--model", model, "--mistakes", "-1"], capsys)
    assert "unknown layer" in usage_error(["evaluate", str(folder), "--model", model, "--layer", "x"], capsys)
    assert "unknown method" in usage_error(["evaluate", str(folder), "--model", model, "--method", "x"], capsys)
    (tmp_path / "file.txt").write_text("x")
    err = usage_error(["evaluate", str(folder), "--model", model, "--out", str(tmp_path / "file.txt" / "o")],
                          capsys)
    assert "cannot create the output folder" in err


def test_help_lists_the_command(capsys):
    with pytest.raises(SystemExit):
        cli(["--help"])
    assert "evaluate" in capsys.readouterr().out
