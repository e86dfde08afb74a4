"""``main.py classify`` and ``main.py info``: output shape and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main as cli
from tests.conftest import save_image

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def mixed_folder(tmp_path):
    folder = tmp_path / "photos"
    save_image(folder / "red.png", color=(255, 0, 0))
    save_image(folder / "deep" / "blue.jpg", color=(0, 0, 255), fmt="JPEG")
    (folder / "broken.jpg").write_text("not really a jpeg")
    (folder / "notes.txt").write_text("ignored")
    return folder


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_classify_folder_json_shape_and_partial_failure(mixed_folder, tiny_pth, capsys):
    code = cli(["classify", str(mixed_folder), "--model", tiny_pth, "--json", "--topk", "3"])
    records = _json(capsys)
    assert code == 1
    assert [Path(r["path"]).name for r in records] == ["broken.jpg", "red.png", "blue.jpg"]
    broken, red, blue = records
    assert broken["predictions"] == [] and "broken.jpg" in broken["error"]
    assert red["error"] is None and len(red["predictions"]) == 3
    assert set(red["predictions"][0]) == {"index", "label", "probability"}
    assert red["predictions"][0]["label"] in ["ant", "bee", "cat", "dog"]
    probs = [p["probability"] for p in red["predictions"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6


def test_classify_all_good_exits_zero_and_prints_labels(mixed_folder, tiny_pth, capsys):
    (mixed_folder / "broken.jpg").unlink()
    assert cli(["classify", str(mixed_folder), "--model", tiny_pth, "--topk", "2"]) == 0
    out = capsys.readouterr().out
    assert "red.png" in out and "blue.jpg" in out and "%" in out


def test_classify_same_result_as_predict(mixed_folder, tiny_pth, capsys):
    from model.classifier import DenseNetClassifier

    cli(["classify", str(mixed_folder / "red.png"), "--model", tiny_pth, "--json"])
    record = _json(capsys)[0]
    direct = DenseNetClassifier.load(tiny_pth, device="cpu").predict(mixed_folder / "red.png")
    assert [p["index"] for p in record["predictions"]] == [p.index for p in direct]
    assert record["predictions"][0]["probability"] == pytest.approx(direct[0].probability, abs=1e-6)


@pytest.mark.parametrize("args, message", [
    (["--model", "densenet999"], "unknown model"),
    (["--topk", "0"], "--topk"),
    (["--device", "tpu"], "unknown device"),
])
def test_usage_errors_exit_2(mixed_folder, args, message, capsys, tiny_pth):
    argv = ["classify", str(mixed_folder), *args]
    if "--model" not in args:
        argv += ["--model", tiny_pth]
    with pytest.raises(SystemExit) as info:
        cli(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_weights_offline_says_how_to_fix(mixed_folder, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("DENSELENS_WEIGHTS_URL", "http://127.0.0.1:9/")
    with pytest.raises(SystemExit) as info:
        cli(["classify", str(mixed_folder), "--model", "densenet121"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--model demo" in err and "--model FILE" in err and "Traceback" not in err


def test_info_reports_architecture(capsys):
    assert cli(["info", "--model", "densenet169", "--json"]) == 0
    report = _json(capsys)
    assert report["parameters"] == 14_149_480 and report["block_config"] == [6, 12, 32, 32]


def test_real_entry_point_exit_codes_and_no_traceback(mixed_folder, tiny_pth):
    env = {**os.environ, "PYTHONPATH": ""}
    run = subprocess.run([sys.executable, str(ROOT / "main.py"), "classify", str(mixed_folder),
                          "--model", tiny_pth, "--json"], capture_output=True, text=True, env=env,
                         cwd=mixed_folder, timeout=300)
    assert run.returncode == 1, run.stderr
    assert len(json.loads(run.stdout)) == 3
    assert "Traceback" not in run.stderr and "broken.jpg" in run.stderr
