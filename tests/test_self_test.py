"""``--self-test --gui``: the real window, the engine thread and the demo model; failures exit non-zero."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

import gui.self_test as self_test

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_gui_self_test_loads_the_demo_model_and_classifies_a_sample(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data")}
    run = subprocess.run([sys.executable, str(ROOT / "main.py"), "--self-test", "--gui"], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    steps = report["steps"]
    assert report["ok"] and report["mode"] == "gui" and steps["window"]["exposed"]
    assert steps["model"]["spec"] == "demo" and steps["model"]["name"].startswith("Demo model")
    assert steps["classify"]["top"][0]["label"] == "star" and steps["stayed_up_s"] > 0
    assert not list((tmp_path / "config").rglob("*selftest*"))  # its settings went to a temporary folder


def test_gui_self_test_fails_when_the_engine_cannot_load_the_model(qapp, monkeypatch, capsys):
    from model.classifier import DenseNetClassifier

    def broken(*args, **kwargs):
        raise RuntimeError("operator torchvision::nms does not exist")

    monkeypatch.setattr(DenseNetClassifier, "load", broken)
    monkeypatch.setattr(self_test, "STAY_UP_S", 0.1)
    hook = sys.excepthook
    assert self_test.run(["--gui"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["ok"] and "failed to load" in report["error"] and "torchvision::nms" in report["error"]
    assert sys.excepthook is hook


def test_unknown_self_test_options_are_a_usage_error(capsys):
    assert self_test.run(["--gi"]) == 2
    assert "--gi" in capsys.readouterr().err


def test_self_test_reports_the_glibc_running_and_needed():
    env = self_test.environment()
    if platform.libc_ver()[0] == "glibc":
        assert env["glibc"]["running"] == platform.libc_ver()[1]
    assert env["glibc"]["needs"] is None  # from source: no build record


def test_options_come_after_self_test_on_the_command_line(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["DenseLens", "--self-test", "--gui"])
    assert self_test.options(None) == ["--gui"]
    monkeypatch.setattr(sys, "argv", ["pytest", "-k", "x"])
    assert self_test.options(None) == []
