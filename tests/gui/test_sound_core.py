"""The window's core: failures stay on their thread, the model named is the model used, the engine caches."""

from __future__ import annotations

import sys
import threading

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from tests.gui.conftest import LABELS, wait_classified, wait_explained
from tests.gui.test_main_window import _export_dialog


def _in_gui_thread(widget) -> bool:
    return widget.thread() is QApplication.instance().thread()


def test_engine_failing_at_load_classify_and_explain_shows_one_message_each(make_window, model_file, images, qtbot,
                                                                             monkeypatch):
    from model.classifier import DenseNetClassifier
    from model.explain import ImageAnalysis

    _, (one, two) = images
    w = make_window(model_file)
    real_load = DenseNetClassifier.load

    def broken_install(*_a, **_k):
        raise RuntimeError("operator torchvision::nms does not exist")

    monkeypatch.setattr(DenseNetClassifier, "load", broken_install)
    with qtbot.waitSignal(w.modelLoadFailed, timeout=60000) as failed:
        w.load_model(model_file)
    assert "torchvision::nms" in failed.args[0].message and "log" in failed.args[0].message
    assert "torchvision::nms" in w.failure_box.text() and _in_gui_thread(w.failure_box)
    assert w.session.model.spec == model_file and w.isVisible()  # the loaded model goes on
    monkeypatch.setattr(DenseNetClassifier, "load", real_load)

    real_logits = DenseNetClassifier.logits

    def logits_fail_for_two(self, x):
        if x.shape[-1] != x.shape[-2] and x.shape[-2] > x.shape[-1]:  # two.jpg is the portrait picture
            raise RuntimeError("kernel exploded")
        return real_logits(self, x)

    monkeypatch.setattr(DenseNetClassifier, "logits", logits_fail_for_two)
    w.add_paths([one, two])
    wait_classified(qtbot, w)
    assert w.images.state(one) == "done" and w.images.state(two) == "error"
    assert w.images.item_for(two).toolTip().count("kernel exploded") == 1

    monkeypatch.setattr(ImageAnalysis, "explain", lambda *a, **k: 1 / 0)
    w.images.setCurrentRow(0)
    w.request_explanation()
    qtbot.waitUntil(lambda: "cannot be analysed" in w.predictions.placeholder.text(), timeout=30000)
    assert w.predictions.placeholder.text().count("ZeroDivisionError") == 1 and w.isVisible()


def test_unexpected_engine_step_error_and_foreign_thread_exception_show_in_gui_thread(make_window, model_file,
                                                                                      images, qtbot, monkeypatch):
    from gui.app import install_excepthook
    from gui.engine import Engine

    _, (one, _) = images
    w = make_window(model_file)
    w.add_paths([one])
    wait_explained(qtbot, w, one)

    def crash(self, request):
        raise MemoryError("simulated")

    monkeypatch.setattr(Engine, "_do_metrics", crash)
    w.request_metrics()
    qtbot.waitUntil(lambda: w.error_box is not None and "simulated" in w.error_box.text(), timeout=30000)
    assert _in_gui_thread(w.error_box)
    first = w.error_box

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    install_excepthook(lambda: w)
    try:
        raise ValueError("raised in a worker thread")
    except ValueError:
        info = sys.exc_info()
    worker = threading.Thread(target=lambda: sys.excepthook(*info))
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: w.error_box is not first, timeout=10000)
    assert "raised in a worker thread" in w.error_box.text() and _in_gui_thread(w.error_box)


def test_failed_model_switch_keeps_naming_the_model_in_use(make_window, model_file, images, tmp_path, qtbot,
                                                           monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("DENSELENS_WEIGHTS_URL", "http://127.0.0.1:9/")  # offline: refused at once
    _, (one, _) = images
    w = make_window(model_file)
    w.add_paths([one])
    wait_explained(qtbot, w, one)
    action = next(a for a in w.model_group.actions() if a.data() == "densenet121")
    with qtbot.waitSignal(w.modelLoadFailed, timeout=60000):
        action.trigger()  # as a click in the Model menu does
    w.failure_box.close()  # the user presses Close
    assert not action.isChecked()
    assert [a.data() for a in w.model_group.actions() if a.isChecked()] == []  # the file model has no entry
    assert w.model_label.text() == "fruit.pth · CPU"
    assert not w.statusBar().currentMessage().startswith("Loading")
    w.about()
    assert "fruit.pth" in w.about_box.text() and "DenseNet-121" not in w.about_box.text()
    out = tmp_path / "out"
    out.mkdir()
    with qtbot.waitSignal(w.exporter.finished, timeout=60000) as done:
        w.exporter.export_current(_export_dialog(out))
    with Image.open(done.args[0].written[0]) as png:
        assert png.text["denselens:model"] == model_file


def test_switching_class_layer_method_and_measuring_reuse_the_forward_pass(make_window, model_file, images, qtbot,
                                                                           monkeypatch, tmp_path):
    from model.classifier import DenseNetClassifier
    from model.densenet import DenseNet

    _, (one, _) = images
    w = make_window(model_file)
    w.add_paths([one])
    wait_classified(qtbot, w)
    wait_explained(qtbot, w, one)
    calls = {"prepare": 0, "forward": 0}
    real_prepare, real_forward = DenseNetClassifier.prepare, DenseNet.forward_with_taps

    def counting_prepare(self, *a, **k):
        calls["prepare"] += 1
        return real_prepare(self, *a, **k)

    def counting_forward(self, *a, **k):
        calls["forward"] += 1
        return real_forward(self, *a, **k)

    monkeypatch.setattr(DenseNetClassifier, "prepare", counting_prepare)
    monkeypatch.setattr(DenseNet, "forward_with_taps", counting_forward)
    second = w.predictions.rows()[1].class_index
    w.choose_class(second)
    wait_explained(qtbot, w, one)
    w.choose_layer("denseblock2")
    wait_explained(qtbot, w, one)
    w.method.setCurrentIndex(w.method.findData("gradcam++"))
    wait_explained(qtbot, w, one)
    assert w.session.shown_class() == second and w.session.explanation.method == "gradcam++"
    assert calls == {"prepare": 0, "forward": 0}
    w.request_metrics()
    qtbot.waitUntil(lambda: w.session.metrics is not None and w.session.metrics.figures is not None, timeout=60000)
    assert calls["prepare"] == 0  # faithfulness reuses the held explanation (its own masked passes aside)
    assert "denseblock2" in w.metrics_label.text() and LABELS[second] in w.metrics_label.text()
    out = tmp_path / "current"
    out.mkdir()
    with qtbot.waitSignal(w.exporter.finished, timeout=60000):
        w.exporter.export_current(_export_dialog(out))
    assert calls["prepare"] == 0


def test_block_panel_gets_tile_sized_maps_and_style_changes_need_no_engine(make_window, model_file, tmp_path,
                                                                           qtbot):
    from gui.engine import TILE
    from tests.conftest import save_image

    big = save_image(tmp_path / "big.png", size=(1600, 1200), color=(90, 140, 200))
    w = make_window(model_file)
    w.add_paths([big])
    wait_explained(qtbot, w, big)
    ex = w.session.explanation
    assert all(max(v.index.shape) <= TILE for v in ex.tiles.values())
    assert max(ex.thumbnail.shape[:2]) <= TILE
    assert max(ex.heat[(w.session.layer, w.session.shown_class())].index.shape) > TILE  # the main view stays sharp
    sent = []
    w.requestExplain.connect(sent.append)
    w.opacity.setValue(20)
    w.colormap.setCurrentText("viridis")
    qtbot.wait(50)
    assert sent == [] and w.session.explanation is ex


def test_class_names_from_files_are_plain_text(make_window, tmp_path, images, qtbot):
    import torch

    from model.densenet import densenet
    from tests.conftest import randomize_batchnorm

    names = ["<b>bold</b>", "<img src='x'>", "a & b", "plain"]
    net = randomize_batchnorm(densenet(4, (2, 2), 8, 2, num_classes=4, stem="small"), seed=1)
    path = tmp_path / "markup.pth"
    torch.save({"state_dict": net.state_dict(), "class_names": names, "preprocessing": {"input_size": 32}}, path)
    _, (one, _) = images
    w = make_window(str(path))
    w.add_paths([one])
    wait_explained(qtbot, w, one)
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QLabel

    for row in w.predictions.rows():
        label = row.findChild(QLabel)
        assert label.textFormat() == Qt.TextFormat.PlainText and label.text().split(". ", 1)[1] in names
        assert "&lt;" in row.toolTip() or "&amp;" in row.toolTip() or "plain" in row.toolTip()
    assert w.blocks._note.textFormat() == Qt.TextFormat.PlainText


def test_app_gives_the_numbers_of_the_api(make_window, model_file, tmp_path, qtbot):
    from model.classifier import DenseNetClassifier

    rng = np.random.default_rng(0)
    photo = tmp_path / "photo.jpg"
    noise = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(noise).resize((1600, 1200), Image.Resampling.BICUBIC).save(photo, quality=90)
    expected = DenseNetClassifier.load(model_file, device="cpu").predict(str(photo), topk=5)
    w = make_window(model_file)
    w.add_paths([str(photo)])
    wait_classified(qtbot, w)
    wait_explained(qtbot, w, str(photo))
    listed = w.session.results[str(photo)].predictions[:5]
    shown = w.session.explanation.predictions
    for got in (listed, shown):
        assert [p.index for p in got] == [p.index for p in expected]
        assert np.allclose([p.probability for p in got], [p.probability for p in expected], atol=1e-5, rtol=0)


def test_region_menu_names_the_loaded_models_sizes(make_window, model_file):
    w = make_window(model_file)  # a 64-pixel model
    assert w.preprocess.itemText(w.preprocess.findData("center-crop")) == "Center crop 64"
    assert "resized to 73, centre 64x64" in w.preprocess.toolTip()


def test_cancelled_slow_method_puts_the_method_of_the_shown_maps_back(make_window, model_file, images, qtbot,
                                                                      monkeypatch):
    import model.cam
    from model.errors import Cancelled

    _, (one, _) = images
    w = make_window(model_file)
    w.add_paths([one])
    wait_explained(qtbot, w, one)

    def cancelled_midway(*_a, cancelled=None, **_k):
        raise Cancelled("Score-CAM cancelled")  # as when the user presses Cancel

    monkeypatch.setattr(model.cam, "score_cam_weights", cancelled_midway)
    shown = []
    w.session.subscribe("tasks", lambda _t: shown.append((w.progress.isVisible(), w.cancel_button.isVisible())))
    w.method.setCurrentIndex(w.method.findData("scorecam"))
    qtbot.waitUntil(lambda: w.method.currentData() == "gradcam", timeout=30000)
    assert w.session.method == "gradcam" and "cancelled" in w.statusBar().currentMessage()
    assert shown[0] == (True, True) and not w.progress.isVisible()  # progress and Cancel came, then went
    wait_explained(qtbot, w, one)


def test_evidence_split_by_source_shows_shares_and_each_part(make_window, model_file, images, qtbot):
    _, (one, _) = images
    w = make_window(model_file)
    w.add_paths([one])
    wait_explained(qtbot, w, one)
    whole = w.session.explanation.heat[(w.session.layer, w.session.shown_class())].index.copy()
    w.split_box.setChecked(True)
    qtbot.waitUntil(lambda: w.session.current_sources() is not None and w.sources_panel.bars.count() > 0,
                    timeout=60000)
    split = w.session.current_sources()
    assert split.names[0] == "input" and len(split.names) == 3  # a 2-layer block: its input and two layers
    assert abs(sum(split.shares) - 1) < 1e-5
    w.sources_panel.show_source(2)
    wait_explained(qtbot, w, one)
    shown = w.view._heat_index
    assert shown is split.maps[2].index and not np.array_equal(shown, whole)
    w.sources_panel.show_source(2)  # the same source again: back to the whole map
    wait_explained(qtbot, w, one)
    assert np.array_equal(w.view._heat_index, whole) and w.session.source is None


def test_one_prediction_row_is_checked_even_when_the_slow_answer_is_cancelled(make_window, model_file, images,
                                                                              qtbot, monkeypatch):
    import model.cam
    from model.errors import Cancelled

    _, (one, _) = images
    w = make_window(model_file)
    w.add_paths([one])
    wait_explained(qtbot, w, one)
    first = w.session.shown_class()
    monkeypatch.setattr(model.cam, "score_cam_weights",
                        lambda *a, **k: (_ for _ in ()).throw(Cancelled("Score-CAM cancelled")))
    w.method.setCurrentIndex(w.method.findData("scorecam"))
    qtbot.waitUntil(lambda: w.method.currentData() == "gradcam", timeout=30000)  # cancelled: back
    wait_explained(qtbot, w, one)
    rows = w.predictions.rows()
    qtbot.mouseClick(rows[2], Qt.MouseButton.LeftButton)
    assert [r.isChecked() for r in rows].count(True) == 1 and rows[2].isChecked()
    wait_explained(qtbot, w, one)
    assert [r.isChecked() for r in w.predictions.rows()].count(True) == 1
    assert w.session.shown_class() == rows[2].class_index != first
