"""``main.py info`` and the help texts take sizes from the model, not from ImageNet's 224."""

from __future__ import annotations

import json

import pytest
import torch

from cli.main import main as cli
from tests.conftest import make_tiny


def test_info_demo_reports_its_own_input_size(capsys):
    assert cli(["info", "--model", "demo"]) == 0
    out = capsys.readouterr().out
    assert "input: 96x96" in out and "224" not in out
    assert cli(["info", "--model", "demo", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "demo" and report["input_size"] == [96, 96]


def test_info_input_size_option_wins(capsys):
    assert cli(["info", "--model", "demo", "--input-size", "128", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["input_size"] == [128, 128]


def test_info_imagenet_model_uses_224_without_weights(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-cache"))
    assert cli(["info", "--model", "densenet161", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["input_size"] == [224, 224] and report["parameters"] == 28_681_000


def test_info_checkpoint_file_reports_the_size_it_records(tmp_path, capsys):
    path = tmp_path / "tiny.pth"
    torch.save({"state_dict": make_tiny().state_dict(), "preprocessing": {"input_size": 64}}, path)
    assert cli(["info", "--model", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["input_size"] == [64, 64]


def test_info_unknown_model_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        cli(["info", "--model", "densenet999"])
    assert info.value.code == 2 and "unknown model 'densenet999'" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["classify", "explain"])
def test_preprocess_help_does_not_claim_imagenet_sizes_for_every_model(command, capsys):
    from model.zoo import MODELS, PREPROCESS_MODES

    with pytest.raises(SystemExit):
        cli([command, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "resize 256, crop 224" not in out and "8/7 of the model's input size" in out
    assert all(mode in out for mode in PREPROCESS_MODES) and all(name in out for name in MODELS)


def test_explain_help_lists_the_registered_methods(capsys):
    from model.cam import METHODS

    with pytest.raises(SystemExit):
        cli(["explain", "--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in METHODS)
