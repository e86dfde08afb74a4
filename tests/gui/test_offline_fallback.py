"""Offline first start: ImageNet weights cannot be downloaded, the demo model takes over."""

from __future__ import annotations

import pytest

from model.paths import demo_model_path


@pytest.mark.skipif(not demo_model_path().is_file(), reason="the demo model is not bundled")
def test_missing_imagenet_weights_fall_back_to_demo(make_window, monkeypatch, tmp_path, qtbot):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("DENSELENS_WEIGHTS_URL", "http://127.0.0.1:9/")  # refused at once
    w = make_window()
    with qtbot.waitSignal(w.modelChanged, timeout=60000) as ready:
        w.load_model("densenet121")
    assert ready.args[0].spec == "demo"
    box = w.failure_box
    assert "--model demo" in box.text() or "demo model" in box.text()
    assert {b.text() for b in box.buttons()} >= {"Retry", "Load weights file…"}
