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
    tiles = w.blocks.layers()
    assert not any(w.blocks.tile(layer).isEnabled() for layer in tiles)  # the old picture's tiles greyed out
    wait_explained(qtbot, w, two)
    assert not w.view.is_busy() and w.export_action.isEnabled()
    assert all(w.blocks.tile(layer).isEnabled() for layer in tiles)


def test_cancelling_a_new_pictures_slow_maps_shows_that_picture_without_maps(make_window, model_file, images, qtbot,
                                                                             monkeypatch):
    import model.cam
    from model.errors import Cancelled

    _, (one, two) = images  # one is landscape, two portrait
    w = make_window(model_file)
    w.add_paths([one, two])
    wait_classified(qtbot, w)
    wait_explained(qtbot, w, one)
    monkeypatch.setattr(model.cam, "score_cam_weights",
                        lambda *a, **k: (_ for _ in ()).throw(Cancelled("Score-CAM cancelled")))
    asked = []
    w.requestExplain.connect(lambda request: asked.append(request.path))
    w.method.setCurrentIndex(w.method.findData("scorecam"))  # the slow method and another picture, in one turn:
    w.images.setCurrentRow(1)  # its maps are cancelled while the picture before is on screen
    qtbot.waitUntil(lambda: "cancelled" in (w.view.message() or ""), timeout=30000)
    picture = w.view._picture.pixmap()
    assert picture.height() > picture.width()  # two's picture, not one's under two's name
    assert not w.view.is_busy() and w.view._heat_index is None and "two.jpg" in w.view.message()
    top = [p.index for p in w.session.results[two].predictions][:w.session.topk]  # two's, as classified
    assert [row.class_index for row in w.predictions.rows()] == top
    assert not w.predictions.placeholder.isVisibleTo(w.predictions)
    assert w.blocks._note.text() == "Score-CAM cancelled: no maps" and not w.export_action.isEnabled()
    assert w.method.currentData() == "scorecam" and w.windowTitle().startswith("two.jpg")
    w.refresh()  # nothing changed: the cancelled maps are not asked for again by themselves
    qtbot.wait(200)
    assert asked == [two] and w.session.pending.get("explain") is None
    w.method.setCurrentIndex(w.method.findData("gradcam"))  # the user asks for something else
    wait_explained(qtbot, w, two)
    assert w.view.message() is None and asked == [two, two] and w.view._heat_index is not None


def test_an_unreadable_picture_is_named_in_the_view_and_a_tile_without_evidence_keeps_its_name(
        make_window, model_file, images, tmp_path, qtbot):
    from gui.blocks_panel import NO_EVIDENCE

    bad = tmp_path / "not-a-picture.png"
    bad.write_text("plain text, not a PNG")
    _, (one, _) = images
    w = make_window(model_file)
    w.add_paths([one, str(bad)])
    wait_classified(qtbot, w)
    wait_explained(qtbot, w, one)
    qtbot.waitUntil(lambda: w.statusBar().currentMessage().startswith("one.png: "), timeout=30000)
    w.images.setCurrentRow(1)
    qtbot.waitUntil(lambda: "cannot be analysed" in (w.view.message() or ""), timeout=30000)
    assert w.view.message() == "not-a-picture.png cannot be analysed."
    assert "one.png" not in w.statusBar().currentMessage()  # the status line about the picture before went
    assert not any(w.blocks.tile(layer).isEnabled() for layer in w.blocks.layers())  # blank: nothing to click
    w.images.setCurrentRow(0)
    wait_explained(qtbot, w, one)
    assert w.view.message() is None
    layer = w.blocks.layers()[0]
    w.blocks.show_maps(w.session.explanation.thumbnail, {layer: np.zeros((8, 8), np.uint8)},
                       {layer: "no positive evidence"}, "one · Grad-CAM")
    assert w.blocks.tile(layer).text() == layer  # the block's name whole; the verdict is on the picture
    tile, plain = w.blocks.pixmap(layer).toImage(), w.blocks._base.toImage()
    assert tile.pixelColor(2, 2).lightness() < plain.pixelColor(2, 2).lightness()  # the picture veiled
    def white(image) -> int:  # pixels of the written verdict: the red picture has none
        return sum(image.pixelColor(x, y).lightness() > 200 for x in range(image.width())
                   for y in range(image.height()))

    assert NO_EVIDENCE == "no evidence" and white(tile) > 20 and white(plain) == 0
    assert "no positive evidence" in w.blocks.tile(layer).toolTip()


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
    # The panel scrolls down, never sideways: its content fits beside the vertical scroll bar.
    assert w.side.verticalScrollBar().isVisible() and not w.side.horizontalScrollBar().isVisible()
    assert w.side.widget().minimumSizeHint().width() <= w.side.viewport().width()
