"""Model ▸ Evaluate on a folder…: figures, the clickable confusion matrix, the heatmap pair; the unfamiliar badge."""

from __future__ import annotations

import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from gui.text import ERROR_STYLE
from model.classifier import DenseNetClassifier, Prediction, energy
from model.densenet import densenet
from tests.conftest import randomize_batchnorm, save_image
from tests.folders import FOUR, shapes_folder
from tests.gui.conftest import wait_classified, wait_explained

TIMEOUT = 120_000


def save_model(path, threshold: float | None = None, seed: int = 5) -> str:
    torch.manual_seed(seed)
    net = randomize_batchnorm(densenet(growth_rate=4, block_config=(2, 2), num_init_features=8, bn_size=2,
                                       num_classes=len(FOUR), stem="small"), seed=seed)
    record = {"state_dict": net.state_dict(), "class_names": list(FOUR), "format_version": 3,
              "preprocessing": {"input_size": 32, "mode": "full"}}
    if threshold is not None:
        record["unfamiliar"] = {"score": "energy", "threshold": threshold, "quantile": 0.95}
    torch.save(record, path)
    return str(path)


@pytest.fixture
def shapes_model(tmp_path) -> str:
    return save_model(tmp_path / "shapes4.pth", threshold=0.0)


def evaluate(window, qtbot, folder, monkeypatch):
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(folder)))
    window.evaluate_action.trigger()
    view = window.evaluation_views[-1]
    qtbot.waitUntil(lambda: not view.running, timeout=TIMEOUT)
    return view


def click_cell(qtbot, view, true: int, predicted: int) -> None:
    table = view.matrix
    item = table.item(table.classes.index(true), table.classes.index(predicted))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=table.visualItemRect(item).center())


def test_evaluation_shows_figures_and_a_cell_lists_its_pictures_with_both_heatmaps(make_window, shapes_model,
                                                                                  tmp_path, qtbot, monkeypatch):
    folder = shapes_folder(tmp_path / "pictures", per_class=5, size=40)
    (folder / "circle" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not a picture")
    w = make_window(shapes_model)
    view = evaluate(w, qtbot, folder, monkeypatch)
    e = view.state.evaluation
    assert view.state.error is None and e.total == 20
    assert view.summary.text().startswith(f"Accuracy {e.accuracy:.1%} ({e.correct} of 20)")
    assert "1 skipped" in view.summary.text() and "1 picture could not be read" in view.notes.text()
    assert view.matrix.rowCount() == view.matrix.columnCount() == 4 and view.per_class.rowCount() == 4
    shown = [[int(view.matrix.item(r, c).text() or 0) for c in range(4)] for r in range(4)]
    assert shown == e.confusion.tolist()
    assert [view.per_class.item(r, 0).text() for r in range(4)] == list(FOUR)
    assert view.progress.isHidden()
    # the most frequent confusion is chosen at first
    mistakes = [(t, p) for t in range(4) for p in range(4) if t != p and e.confusion[t, p]]
    assert mistakes, "the random model should confuse some classes"
    true, predicted = max(mistakes, key=lambda tp: e.confusion[tp])
    assert view.state.cell == (true, predicted)
    # clicking another cell lists its pictures
    true, predicted = mistakes[-1]
    click_cell(qtbot, view, true, predicted)
    assert view.state.cell == (true, predicted)
    assert view.pictures.count() == e.confusion[true, predicted]
    assert f"true {FOUR[true]}, predicted {FOUR[predicted]}" in view.cell_title.text()
    assert view.pair.images == [] and "Select a picture" in view.pair.note.text()
    # selecting a picture shows the predicted and the true class's heatmaps side by side
    view.pictures.setCurrentRow(0)
    record = view.state.picture
    assert record.true == true and record.predicted == predicted
    assert "Computing the heatmaps" in view.pair.note.text()
    qtbot.waitUntil(lambda: len(view.pair.images) == 2, timeout=TIMEOUT)
    captions = [c.text() for c in view.pair.captions]
    assert captions[0].startswith(f"predicted: {FOUR[predicted]}") and captions[1].startswith(f"true: {FOUR[true]}")
    assert all(not label.pixmap().isNull() for label in view.pair.images)
    # a diagonal cell: the pictures recognised; the old heatmaps do not stay on screen
    right = next(i for i in range(4) if e.confusion[i, i]) if e.correct else None
    if right is not None:
        click_cell(qtbot, view, right, right)
        assert view.pair.images == [] and "recognised" in view.cell_title.text()
        view.pictures.setCurrentRow(0)
        qtbot.waitUntil(lambda: len(view.pair.images) == 1, timeout=TIMEOUT)
        assert view.pair.captions[0].text().startswith(f"predicted and true: {FOUR[right]}")


def test_a_class_the_folder_lacks_has_no_recall_or_f1_rather_than_zero(make_window, shapes_model, tmp_path, qtbot,
                                                                      monkeypatch):
    from gui.evaluation_view import NO_FIGURE

    folder = shapes_folder(tmp_path / "pictures", classes=FOUR[:3], per_class=4, size=40)
    w = make_window(shapes_model)
    view = evaluate(w, qtbot, folder, monkeypatch)
    e = view.state.evaluation
    rows = {view.per_class.item(r, 0).text(): [view.per_class.item(r, c).text() for c in range(1, 5)]
            for r in range(view.per_class.rowCount())}
    absent = FOUR[3]
    assert rows[absent][0] == "0" and rows[absent][2:] == [NO_FIGURE, NO_FIGURE]
    predicted_absent = e.per_class[FOUR.index(absent)].predicted
    assert (rows[absent][1] == NO_FIGURE) == (predicted_absent == 0)
    assert all(NO_FIGURE not in rows[name][1:] or e.per_class[FOUR.index(name)].predicted == 0 for name in FOUR[:3])


def test_only_the_newest_picture_gets_its_heatmaps(make_window, shapes_model, tmp_path, qtbot, monkeypatch):
    folder = shapes_folder(tmp_path / "pictures", per_class=4, size=40)
    w = make_window(shapes_model)
    view = evaluate(w, qtbot, folder, monkeypatch)
    e = view.state.evaluation
    true, predicted = max(((t, p) for t in range(4) for p in range(4)), key=lambda tp: e.confusion[tp])
    click_cell(qtbot, view, true, predicted)
    assert view.pictures.count() >= 2
    view.pictures.setCurrentRow(0)
    view.pictures.setCurrentRow(1)  # before the first answer
    qtbot.waitUntil(lambda: view.state.pair is not None, timeout=TIMEOUT)
    qtbot.wait(200)
    assert view.state.pair.path == str(view.state.picture.path) == str(e.cell(true, predicted)[1].path)


def test_evaluating_a_folder_without_the_models_classes_says_why(make_window, shapes_model, tmp_path, qtbot,
                                                                 monkeypatch):
    folder = tmp_path / "fruit"
    for name in ("apple", "pear"):
        for i in range(2):
            save_image(folder / name / f"{name}{i}.png", size=(40, 40))
    w = make_window(shapes_model)
    view = evaluate(w, qtbot, folder, monkeypatch)
    assert view.state.evaluation is None
    assert "no sub-folder is named after one of the model's classes" in view.summary.text()
    assert view.summary.styleSheet() == ERROR_STYLE
    assert view.progress.isHidden() and view.matrix.rowCount() == 0


def test_closing_an_evaluation_while_it_runs_cancels_it(make_window, shapes_model, tmp_path, qtbot):
    folder = shapes_folder(tmp_path / "pictures", per_class=30, size=200)
    w = make_window(shapes_model)
    view = w.open_evaluation(shapes_model, str(folder))
    qtbot.waitUntil(lambda: view.progress.maximum() > 0, timeout=TIMEOUT)
    view.close()
    qtbot.waitUntil(lambda: not view.running, timeout=TIMEOUT)
    assert view.thread.wait(TIMEOUT) and view.state.evaluation is None
    assert view.summary.text() == "The evaluation was cancelled." and view.summary.styleSheet() == ""  # no error


# -- the unfamiliar badge ------------------------------------------------------------------------
def test_badge_shows_for_an_unfamiliar_picture_only(make_window, tmp_path, qtbot):
    folder = shapes_folder(tmp_path / "pictures", per_class=3, size=48)
    plain = save_model(tmp_path / "plain.pth")
    clf = DenseNetClassifier.load(plain, device="cpu")
    paths = sorted(str(p) for p in folder.rglob("*.png"))
    scores = {p: float(energy(clf.logits(clf.prepare(p, "full").tensor[None]))[0]) for p in paths}
    low, high = min(paths, key=scores.get), max(paths, key=scores.get)
    assert scores[high] > scores[low]
    model = save_model(tmp_path / "judged.pth", threshold=(scores[low] + scores[high]) / 2)
    w = make_window(model)
    w.add_paths([low, high])
    wait_classified(qtbot, w)
    badge = w.predictions.unfamiliar
    w.images.setCurrentRow(w.images.paths().index(high))
    wait_explained(qtbot, w, high)
    assert w.session.explanation.predictions[0].unfamiliar is True
    assert badge.isVisibleTo(w.predictions) and "Unlike the training pictures" in badge.text()
    assert "should not be trusted" in badge.toolTip()
    assert w.images.item_for(high).text().endswith("⚑") and not w.images.item_for(low).text().endswith("⚑")
    w.images.setCurrentRow(w.images.paths().index(low))
    qtbot.waitUntil(lambda: not badge.isVisibleTo(w.predictions), timeout=5000)  # at once: "Analysing…"
    wait_explained(qtbot, w, low)
    assert w.session.explanation.predictions[0].unfamiliar is False and not badge.isVisibleTo(w.predictions)


def test_badge_never_shows_without_a_threshold_or_with_a_message(qtbot):
    from gui.predictions_panel import PredictionsPanel

    panel = PredictionsPanel()
    qtbot.addWidget(panel)
    odd = [Prediction(0, "circle", 0.9, True), Prediction(1, "square", 0.1, True)]
    panel.set_predictions(odd, None)
    assert panel.unfamiliar.isVisibleTo(panel)
    panel.set_message("Analysing…")
    assert not panel.unfamiliar.isVisibleTo(panel)
    panel.set_predictions(odd, None)
    panel.set_predictions([Prediction(0, "circle", 0.9, None)], None)  # a model that cannot tell
    assert not panel.unfamiliar.isVisibleTo(panel)
    panel.set_predictions([Prediction(0, "circle", 0.9, False)], None)
    assert not panel.unfamiliar.isVisibleTo(panel)
