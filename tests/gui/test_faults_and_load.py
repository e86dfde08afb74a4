"""Faults (full disk mid export, worker exceptions, weights vanishing) and load (1,000 images, 500 explains)."""

from __future__ import annotations

import errno
import gc
import os
import resource
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QTimer

from tests.conftest import save_image
from tests.gui.conftest import wait_classified, wait_explained
from tests.gui.test_main_window import _export_dialog


def test_disk_full_mid_export_all_keeps_what_succeeded(make_window, model_file, tmp_path, qtbot, monkeypatch):
    paths = [save_image(tmp_path / "in" / f"p{i}.png", size=(80, 60), color=(40 * i, 90, 90)) for i in range(4)]
    w = make_window(model_file)
    w.add_paths(paths)
    wait_classified(qtbot, w)
    out = tmp_path / "out"
    out.mkdir()
    real_fsync, calls = os.fsync, []

    def filling_disk(fd):
        calls.append(fd)
        if len(calls) > 2:  # the disk fills after two files
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", filling_disk)
    with qtbot.waitSignal(w.exporter.finished, timeout=60000) as signal:
        w.exporter.export_all(_export_dialog(out))
    report = signal.args[0]
    assert len(report.written) == 2 and len(report.errors) == 2
    assert all("disk is full" in e for e in report.errors)
    assert sorted(p.name for p in out.iterdir()) == sorted(Path(p).name for p in report.written)
    assert "2 file(s) written" in w.error_box.text()


def test_worker_exception_never_leaves_an_image_busy(make_window, model_file, images, qtbot, monkeypatch):
    from model.classifier import DenseNetClassifier

    _, (one, two) = images
    real = DenseNetClassifier.prepare

    def flaky(self, item, *a, **k):
        if str(item).endswith("two.jpg"):
            raise RuntimeError("simulated bug in preprocessing")
        return real(self, item, *a, **k)

    monkeypatch.setattr(DenseNetClassifier, "prepare", flaky)
    w = make_window(model_file)
    w.add_paths([one, two])
    wait_classified(qtbot, w)
    assert w.images.state(one) == "done" and w.images.state(two) == "error"
    assert "simulated bug" in w.session.results[two].error
    from model.explain import ImageAnalysis

    monkeypatch.setattr(ImageAnalysis, "explain", lambda *a, **k: 1 / 0)
    w.images.setCurrentRow(0)
    w.request_explanation()
    qtbot.waitUntil(lambda: "cannot be analysed" in w.predictions.placeholder.text(), timeout=30000)
    assert "ZeroDivisionError" in w.predictions.placeholder.text()


def test_weights_file_vanishing_while_running(make_window, model_file, images, tmp_path, qtbot):
    import shutil

    _, (one, two) = images
    copy = tmp_path / "vanishing.pth"
    shutil.copy(model_file, copy)
    w = make_window(str(copy))
    copy.unlink()
    w.add_paths([one, two])  # the network is in memory: work goes on
    wait_classified(qtbot, w)
    assert w.images.state(one) == w.images.state(two) == "done"
    with qtbot.waitSignal(w.modelLoadFailed, timeout=60000) as failed:
        w.load_model(str(copy))
    assert "vanishing.pth" in failed.args[0].message and w.session.model is not None


@pytest.mark.slow
def test_thousand_images_stay_responsive_and_bounded(make_window, model_file, tmp_path, qtbot):
    folder = tmp_path / "thousand"
    for i in range(1000):
        save_image(folder / f"{i:04d}.png", size=(64 + i % 50, 48 + i % 30), color=(i % 256, 80, 160))
    w = make_window(model_file)
    gc.collect()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ticks = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    w.add_paths([str(folder)])
    wait_classified(qtbot, w, timeout=600000)
    timer.stop()
    assert sum(w.images.state(p) == "done" for p in w.images.paths()) == 1000
    gaps = np.diff(ticks)
    assert gaps.max() < 0.100, f"longest event-loop gap {gaps.max() * 1000:.0f} ms"
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss_before
    assert grown < 250, f"peak RSS grew {grown:.0f} MB for 1,000 listed images"


@pytest.mark.slow
def test_five_hundred_explains_keep_memory_flat(make_window, model_file, images, qtbot):
    _, (one, _) = images
    w = make_window(model_file)
    w.add_paths([one])
    wait_explained(qtbot, w, one)

    def rss_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    for _ in range(20):  # warm-up
        w.request_explanation()
        wait_explained(qtbot, w, one)
    before = rss_mb()
    for i in range(500):  # 500 real explanations, for changing classes
        w.session.current_class = i % 6
        w.request_explanation()
        wait_explained(qtbot, w, one)
    assert rss_mb() - before < 30
