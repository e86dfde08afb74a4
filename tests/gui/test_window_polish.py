"""What a new user trips over: empty and busy states, export defaults, class search, small windows."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QStandardPaths, Qt
from PySide6.QtTest import QTest

from gui.exporting import ExportDialog
from gui.predictions_panel import find_class
from tests.gui.conftest import LABELS, wait_classified, wait_explained


def test_export_and_measure_are_disabled_until_a_picture_is_explained(make_window, model_file, images, qtbot):
    _, (one, _) = images
    w = make_window(model_file)
    assert not w.export_action.isEnabled() and not w.metrics_button.isEnabled()
    assert not w.export_all_action.isEnabled() and not w.export_csv_action.isEnabled()
    w.add_paths([one])
    wait_classified(qtbot, w)
    wait_explained(qtbot, w, one)
    assert w.export_action.isEnabled() and w.metrics_button.isEnabled() and w.export_all_action.isEnabled()
    assert w.images.item_for(one).text().split("\n")[1].endswith("%")
    assert re.search(r"\d+\.\d%$", w.images.item_for(one).text())  # one decimal: a top-1 never reads "0%"


def test_the_next_picture_is_shown_as_coming_not_as_the_old_one(make_window, model_file, images, qtbot):
    _, (one, two) = images
    w = make_window(model_file)
    w.add_paths([one, two])
    wait_classified(qtbot, w)
    wait_explained(qtbot, w, one)
    w.images.setCurrentRow(1)
    w.refresh()  # what the next event-loop turn does
    assert w.view.is_busy() and "Analysing" in w.predictions.placeholder.text()
    assert not w.export_action.isEnabled()  # the old picture's maps cannot be exported as this one's
    wait_explained(qtbot, w, two)
    assert not w.view.is_busy() and w.export_action.isEnabled()


def test_another_method_keeps_the_pictures_predictions_and_another_model_does_not(make_window, model_file, images,
                                                                                  qtbot):
    _, (one, _) = images
    w = make_window(model_file)
    w.add_paths([one])
    wait_explained(qtbot, w, one)
    shown = [row.class_index for row in w.predictions.rows()]
    w.method.setCurrentIndex(w.method.findData("scorecam_fast"))
    w.refresh()  # what the next event-loop turn does
    assert w.view.is_busy() and not w.predictions.placeholder.isVisibleTo(w.predictions)
    assert [row.class_index for row in w.predictions.rows()] == shown  # the same picture's predictions
    wait_explained(qtbot, w, one)
    with qtbot.waitSignal(w.modelChanged, timeout=60000):
        w.load_model(model_file)  # a model loaded again: what is on screen came from the one before
    w.refresh()
    assert w.view.is_busy() and "Analysing" in w.predictions.placeholder.text()
    wait_explained(qtbot, w, one)
    assert [row.class_index for row in w.predictions.rows()] == shown and not w.view.is_busy()


def test_export_defaults_to_pictures_creates_folders_and_remembers_choices(make_window, model_file, images, qtbot):
    _, (one, _) = images
    w = make_window(model_file)
    w.add_paths([one])
    wait_explained(qtbot, w, one)
    pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
    assert w.exporter.export_folder() == str(Path(pictures) / "DenseLens")
    target = Path(pictures) / "DenseLens" / "new" / "deeper"
    dialog = ExportDialog("Export", str(target), choices=w.settings.export_choices())
    assert dialog.choices() == {"overlay": True, "heatmap": False, "raw": False, "grid": False}
    dialog.heatmap.setChecked(True)
    with qtbot.waitSignal(w.exporter.finished, timeout=60000) as done:
        w.exporter.export_current(dialog)
    assert len(done.args[0].written) == 2 and all(Path(p).parent == target for p in done.args[0].written)
    assert str(target) in w.statusBar().currentMessage() and w.exporter.open_button.isVisible()
    assert w.settings.export_choices()["heatmap"] and w.exporter.export_folder() == str(target)
    again = ExportDialog("Export", w.exporter.export_folder(), choices=w.settings.export_choices())
    assert again.heatmap.isChecked() and again.folder.text() == str(target)


def test_predictions_export_follows_top_k_and_adds_the_extension(make_window, model_file, images, qtbot,
                                                                  tmp_path):
    _, (one, two) = images
    w = make_window(model_file)
    w.add_paths([one, two])
    wait_classified(qtbot, w)
    w.predictions.topk.setValue(3)
    written = w.exporter.export_predictions("csv", str(tmp_path / "preds"))
    assert written.endswith("preds.csv")
    rows = Path(written).read_text().splitlines()[1:]
    assert len(rows) == 2 * 3
    written = w.exporter.export_predictions("json", str(tmp_path / "preds"))
    assert written.endswith("preds.json") and '"rank"' not in Path(written).read_text()


def test_class_search_takes_prefixes_and_says_when_nothing_matches(make_window, model_file, images, qtbot):
    assert find_class("ban", LABELS) == 1 and find_class("ERRY", LABELS) == 2  # prefix; substring, first match
    assert find_class("date (3)", LABELS) == 3 and find_class("5", LABELS) == 5 and find_class("kiwi", LABELS) is None
    _, (one, _) = images
    w = make_window(model_file)
    w.add_paths([one])
    wait_explained(qtbot, w, one)
    with qtbot.waitSignal(w.predictions.classChosen) as chosen:
        QTest.keyClicks(w.predictions.search, "eld")
        QTest.keyClick(w.predictions.search, Qt.Key.Key_Return)
    assert chosen.args == [4]
    w.predictions.search.clear()
    QTest.keyClicks(w.predictions.search, "kiwi")
    QTest.keyClick(w.predictions.search, Qt.Key.Key_Return)
    assert w.predictions.search_note.isVisible() and "No class matches “kiwi”" in w.predictions.search_note.text()


def test_value_under_the_cursor_reads_the_heat(make_window):
    w = make_window()
    view = w.view
    view.set_picture(np.zeros((40, 80, 3), np.uint8))
    index = np.zeros((20, 40), np.uint8)
    index[:, 20:] = 254
    index[0, 0] = 255  # outside the analysed region
    view.set_heat(index)
    assert view.heat_at(QPointF(60, 20)) == 1.0 and view.heat_at(QPointF(10, 20)) == 0.0
    assert view.heat_at(QPointF(0.5, 0.5)) is None and view.heat_at(QPointF(500, 5)) is None


def test_small_windows_keep_every_tool_and_a_usable_image(make_window, model_file, images, qtbot):
    _, (one, _) = images
    w = make_window(model_file)
    w.add_paths([one])
    wait_explained(qtbot, w, one)
    for size in ((1024, 640), (800, 600)):
        w.resize(*size)
        qtbot.waitUntil(lambda s=size: w.width() == s[0])
        qtbot.wait(50)
        for bar in (w.tools, w.display_tools):
            assert bar.sizeHint().width() <= bar.width() + 1, (size, bar.objectName())  # nothing behind »
            assert bar.geometry().right() <= w.width()
        assert w.view.width() >= 0.3 * w.width() and w.view.height() >= 0.6 * w.height()


def test_shortcuts_are_listed_and_faithfulness_is_scrolled_into_view(make_window, model_file, images, qtbot):
    _, (one, _) = images
    w = make_window(model_file)
    w.show_shortcuts()
    text = w.shortcuts_box.text()
    assert "Ctrl+O" in text and "Open images…" in text and "Space" in text
    w.shortcuts_box.close()
    w.resize(900, 560)
    w.add_paths([one])
    wait_explained(qtbot, w, one)
    w.request_metrics()
    qtbot.waitUntil(lambda: w.session.metrics is not None and w.session.metrics.figures is not None, timeout=60000)
    qtbot.waitUntil(lambda: w.side.viewport().rect().contains(
        w.metrics_label.mapTo(w.side.viewport(), w.metrics_label.rect().bottomLeft())), timeout=5000)
