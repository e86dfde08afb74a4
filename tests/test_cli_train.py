"""``main.py train`` as a user runs it: exit codes and messages, the JSON summary, and what the trained
checkpoint tells ``classify``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main as cli
from tests.conftest import usage_error
from tests.folders import FOUR, shapes_folder

SMALL = ["--epochs", "2", "--batch-size", "8", "--input-size", "32", "--growth-rate", "4", "--blocks", "2,2",
         "--init-features", "8", "--stem", "small", "--workers", "0", "--device", "cpu"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return shapes_folder(tmp_path_factory.mktemp("cli") / "pictures", per_class=8, size=40)




def test_train_json_summary_and_classify_reports_unfamiliar(folder, tmp_path, capsys):
    out = tmp_path / "model.pth"
    assert cli(["train", "--data", str(folder), "--out", str(out), "--json", *SMALL]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["classes"] == sorted(FOUR) and summary["checkpoint"] == str(out)
    assert [row["epoch"] for row in summary["history"]] == [1, 2] and summary["best_epoch"] in (1, 2)
    assert summary["counts"]["validation"] == dict.fromkeys(sorted(FOUR), 2)
    assert 0.0 <= summary["val_accuracy"] <= 1.0 and summary["seconds"] > 0
    assert "best val accuracy" in captured.err
    assert cli(["classify", str(folder / "star"), "--model", str(out), "--json", "--topk", "1"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 8 and all(r["predictions"][0]["unfamiliar"] in (True, False) for r in records)


@pytest.mark.parametrize("make, message", [
    (lambda root: root / "missing", "no such folder"),
    (lambda root: (root / "file.txt").write_text("x") and root / "file.txt", "not a folder"),
    (lambda root: shapes_folder(root / "one", classes=("circle",), per_class=3, size=32), "at least two sub-folders"),
])
def test_unusable_data_is_exit_2_naming_the_folder(tmp_path, capsys, make, message):
    data = make(tmp_path)
    err = usage_error(["train", "--data", str(data), "--out", str(tmp_path / "m.pth"), *SMALL], capsys)
    assert message in err and str(data) in err
    assert not (tmp_path / "m.pth").exists()


def test_resume_without_a_resumable_file_is_exit_2(folder, tmp_path, capsys):
    err = usage_error(["train", "--data", str(folder), "--out", str(tmp_path / "m.pth"), "--resume", *SMALL], capsys)
    assert "nothing to resume" in err and "m.last.pth" in err


def test_offline_imagenet_start_is_exit_2_naming_the_alternatives(folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("DENSELENS_WEIGHTS_URL", "http://127.0.0.1:9/")
    err = usage_error(["train", "--data", str(folder), "--out", str(tmp_path / "m.pth"),
                       "--init", "densenet121", *SMALL], capsys)
    assert "--init demo" in err and "--init scratch" in err


def test_bad_numbers_are_usage_errors(folder, tmp_path, capsys):
    err = usage_error(["train", "--data", str(folder), "--out", str(tmp_path / "m.pth"),
                       *SMALL, "--val-fraction", "1.5"], capsys)
    assert "validation fraction" in err


def test_classify_says_when_a_picture_is_unlike_the_training_pictures(tmp_path, capsys):
    import torch

    from model.shapes import sample
    from tests.conftest import make_tiny

    picture = tmp_path / "odd.png"
    sample(1, 0, (64, 64)).image.save(picture)
    for threshold, unfamiliar in ((-1e9, True), (1e9, False)):
        path = tmp_path / f"t{unfamiliar}.pth"
        torch.save({"state_dict": make_tiny().state_dict(), "class_names": ["a", "b", "c", "d"], "format_version": 3,
                    "unfamiliar": {"score": "energy", "threshold": threshold, "quantile": 0.95}}, path)
        assert cli(["classify", str(picture), "--model", str(path)]) == 0
        assert ("unlike the training pictures" in capsys.readouterr().out) is unfamiliar
        assert cli(["classify", str(picture), "--model", str(path), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)[0]["predictions"][0]["unfamiliar"] is unfamiliar


def test_the_validation_accuracy_training_reports_is_what_evaluate_measures(folder, tmp_path, capsys):
    val = shapes_folder(tmp_path / "val", per_class=5, size=40, seed=4)
    out = tmp_path / "m.pth"
    assert cli(["train", "--data", str(folder), "--val-folder", str(val), "--out", str(out), "--json", *SMALL]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert cli(["evaluate", str(val), "--model", str(out), "--json", "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["accuracy"] == summary["val_accuracy"]
    assert [c["count"] for c in report["classes"]] == [5, 5, 5, 5]
