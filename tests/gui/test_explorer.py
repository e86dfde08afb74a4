"""View ▸ Explore DenseNet: no cut text at any size, connectivity, plain-CNN comparison, feature reuse, clicks."""

from __future__ import annotations

import pytest
import torch
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QFontMetrics, QTextDocumentFragment
from PySide6.QtGui import Qt as QtGuiNamespace
from PySide6.QtWidgets import QAbstractScrollArea, QLabel, QWidget

from gui.architecture_dialog import ArchitectureDialog
from gui.connectivity_view import spread, ticks
from gui.reuse_view import cell_tooltip, normalised
from model.architecture import describe, feature_reuse
from model.densenet import densenet, densenet121


def engine_report(net, size: int) -> dict:
    """What the engine hands the window: the report of the config plus the reuse grid of the fused network."""
    report = describe(net.config, (size, size)).to_dict()
    report["feature_reuse"] = [block.to_dict() for block in feature_reuse(net.fused_for_inference())]
    return report


@pytest.fixture(scope="module")
def report121() -> dict:
    torch.manual_seed(0)
    return engine_report(densenet121(), 224)


@pytest.fixture(scope="module")
def report_demo() -> dict:
    from model.classifier import DenseNetClassifier

    clf = DenseNetClassifier.load("demo", device="cpu")
    report = describe(clf.config, (clf.input_size, clf.input_size)).to_dict()
    report["feature_reuse"] = [block.to_dict() for block in feature_reuse(clf.model)]
    return report


@pytest.fixture
def five_layers() -> dict:
    torch.manual_seed(0)
    return engine_report(densenet(growth_rate=4, block_config=(5, 3), num_init_features=6, bn_size=2,
                                  num_classes=3, stem="small"), 32)


def open_dialog(qtbot, report, size=(800, 600), name="DenseNet-121") -> ArchitectureDialog:
    dialog = ArchitectureDialog(report, name)
    qtbot.addWidget(dialog)
    dialog.resize(*size)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def settle(qtbot, dialog, size) -> None:
    dialog.resize(*size)
    qtbot.waitUntil(lambda: dialog.size().toTuple() == size)
    qtbot.wait(20)


def plain_text(label: QLabel) -> str:
    rich = label.textFormat() == Qt.TextFormat.RichText or (
        label.textFormat() == Qt.TextFormat.AutoText and QtGuiNamespace.mightBeRichText(label.text()))
    return QTextDocumentFragment.fromHtml(label.text()).toPlainText() if rich else label.text()


def cut_labels(dialog: QWidget) -> list[str]:
    """Every visible label whose text does not fit (neither elided with the full text in its tooltip)."""
    problems = []
    for label in dialog.findChildren(QLabel):
        if not label.isVisibleTo(dialog) or not label.text():
            continue
        rect = label.contentsRect()
        text = plain_text(label)
        if label.wordWrap():
            if label.heightForWidth(label.width()) > label.height():
                problems.append(f"wrapped {text[:40]!r}: needs {label.heightForWidth(label.width())}px, "
                                f"has {label.height()}")
        else:
            fm = QFontMetrics(label.font())
            elided = text.endswith("…") and text[:-1] in label.toolTip()
            if any(fm.horizontalAdvance(line) > rect.width() for line in text.splitlines()) and not elided:
                problems.append(f"{text!r}: {fm.horizontalAdvance(text)}px in {rect.width()}px")
        # Nor cut sideways by whatever holds it (a scroll area only scrolls vertically here).
        widget = label.parentWidget()
        while widget is not None and widget is not dialog.parentWidget():
            box = label.rect().translated(label.mapTo(widget, label.rect().topLeft()))
            if box.left() < 0 or box.right() > widget.width():
                problems.append(f"{text[:40]!r} sticks out of {type(widget).__name__} ({box} in {widget.width()})")
                break
            if isinstance(widget.parentWidget(), QAbstractScrollArea):
                break  # the viewport: what is below it is scrolled to, not cut
            widget = widget.parentWidget()
    return problems


def test_the_cut_text_check_sees_cut_text(qtbot):
    box = QWidget()
    qtbot.addWidget(box)
    label = QLabel("a label far too long for forty pixels", box)
    label.setGeometry(0, 0, 40, 20)
    wrapped = QLabel("a wrapped label far too long for its height " * 4, box)
    wrapped.setWordWrap(True)
    wrapped.setGeometry(0, 30, 120, 20)
    box.resize(200, 100)
    box.show()
    assert len(cut_labels(box)) == 2


def every_page(dialog, qtbot):
    """Each arrangement shows its pages: as tabs, each tab in turn; side by side, both at once."""
    qtbot.wait(10)  # the layouts follow new texts on the next turn of the event loop
    if dialog.wide:
        yield
        return
    for i in range(dialog.tabs.count()):
        dialog.tabs.setCurrentIndex(i)
        qtbot.wait(10)
        yield


@pytest.mark.parametrize("which", ["report121", "report_demo"])
def test_no_label_is_cut_at_800x600_or_at_1400x900(qtbot, request, which):
    report = request.getfixturevalue(which)
    dialog = open_dialog(qtbot, report, (1400, 900))
    for size in [(800, 600), (1400, 900), (800, 600)]:
        settle(qtbot, dialog, size)
        assert dialog.wide == (size[0] == 1400)
        for block in dialog.blocks:
            dialog.show_block(block)
            for _ in every_page(dialog, qtbot):
                assert cut_labels(dialog) == [], (size, block)


def test_the_window_shrinks_to_800x600_and_the_overview_shows_every_stage(qtbot, report121):
    dialog = open_dialog(qtbot, report121, (800, 600))
    assert dialog.size().toTuple() == (800, 600)
    assert list(dialog.overview.rows) == [s["name"] for s in report121["stages"]]
    row = dialog.overview.rows["denseblock3"]
    assert [c.text() for c in row.cells] == ["denseblock3", "256 → 1024", "14×14", "24", "2,837,760"]
    assert dialog.overview.rows["stem"].cells[1].text() == "3 → 64"


def test_a_five_layer_block_shows_fifteen_connections_and_channels_growing_by_k(qtbot, five_layers):
    dialog = open_dialog(qtbot, five_layers)
    dialog.show_block("denseblock1")
    arcs = dialog.connectivity.arcs()
    into_layers = [(s, t) for s, t in arcs if t <= 5]
    assert len(into_layers) == 15 and len(set(into_layers)) == 15
    assert all(0 <= s < t for s, t in into_layers)
    assert sorted(t for s, t in arcs if t == 6) == [6] * 6  # the transition reads all six sources
    assert dialog.connectivity.channels() == [6, 10, 14, 18, 22, 26, 13]  # +k=4 per layer; transition1: 26 -> 13
    assert "15 direct connections" in dialog.connections_label.text()
    assert "6, 10, 14, …, 26" in dialog.connections_label.text()
    dialog.show_block("denseblock2")
    assert len([a for a in dialog.connectivity.arcs() if a[1] <= 3]) == 6
    assert dialog.connectivity.channels()[-1] == 3  # the classifier's classes


def test_every_node_of_a_small_block_is_numbered_and_the_end_boxes_lie_inside_the_view(qtbot, report121):
    dialog = open_dialog(qtbot, report121, (1180, 760))  # the explorer's size in a 1280x800 window
    dialog.show_block("denseblock1")
    view = dialog.connectivity
    labels, widths, numbered = view.node_boxes()
    assert labels == ["in", "1", "2", "3", "4", "5", "6", "T"] and numbered == set(range(8))  # 1 and 6 too
    last = view.node_count() - 1
    assert view.node_x(0) - widths[0] / 2 >= 0 and view.node_x(last) + widths[last] / 2 <= view.width()
    lefts = [view.node_x(i) - w / 2 for i, w in enumerate(widths)]
    rights = [view.node_x(i) + w / 2 for i, w in enumerate(widths)]
    assert all(r < left for r, left in zip(rights, lefts[1:]))  # no two boxes touch
    dialog = open_dialog(qtbot, report121)
    dialog.show_block("denseblock3")  # 24 layers: numbered at a regular step, the ends always
    _, _, numbered = dialog.connectivity.node_boxes()
    steps = {b - a for a, b in zip(sorted(numbered)[1:-2], sorted(numbered)[2:-1])}
    assert {0, 25} <= numbered and len(steps) == 1


def test_block_parameters_are_shown_next_to_a_plain_cnn_counted_independently(qtbot, report121):
    dialog = open_dialog(qtbot, report121)
    dialog.show_block("denseblock1")
    widths = [64 + 32 * i for i in range(7)]
    with torch.device("meta"):
        plain = torch.nn.Sequential(*[m for a, b in zip(widths, widths[1:])
                                      for m in (torch.nn.BatchNorm2d(a), torch.nn.Conv2d(a, b, 3, bias=False))])
    plain_count = sum(p.numel() for p in plain.parameters())
    text = dialog.parameters_label.text()
    assert f"{335_040:,} in this block" in text and f"{plain_count:,}" in text
    assert f"{plain_count / 335_040:.1f}× as many" in text


def test_feature_reuse_grid_of_the_chosen_block(qtbot, report_demo):
    dialog = open_dialog(qtbot, report_demo, (1400, 900), name="Demo model")
    assert [r["block"] for r in report_demo["feature_reuse"]] == ["denseblock1", "denseblock2", "denseblock3"]
    for name, layers in zip(dialog.blocks, (6, 8, 8)):
        dialog.show_block(name)
        reuse = dialog.reuse_view._reuse
        assert reuse["block"] == name and len(reuse["grid"]) == layers + 1
        assert all(len(row) == layers for row in reuse["grid"]) and len(reuse["exit_use"]) == layers + 1
        shares, exit_shares = normalised(reuse, "target")
        for t in range(layers):  # every target's strongest source is 100%
            assert max(shares[s][t] for s in range(t + 1)) == pytest.approx(1.0)
        assert max(exit_shares) == pytest.approx(1.0)
        assert reuse["exit"] in dialog.reuse_label.text()
    assert dialog.reuse["denseblock3"]["exit"] == "classifier"
    # The cell under the mouse is the one the tooltip describes.
    dialog.show_block("denseblock1")
    qtbot.wait(20)
    view = dialog.reuse_view
    centre = view.cell_rect(2, 5).center()
    assert view.cell_at(centre) == (2, 5) and view.cell_at(view.cell_rect(5, 7).center()) == (5, 7)
    assert view.cell_at(QPointF(view.cell_rect(3, 2).center())) is None  # layer 2 cannot see layer 3
    value = dialog.reuse["denseblock1"]["grid"][2][4]
    assert f"{value:.4g}" in cell_tooltip(dialog.reuse["denseblock1"], 2, 5)


def test_normalised_shares_by_hand():
    reuse = {"grid": [[2.0, 1.0], [None, 4.0], [None, None]], "exit_use": [1.0, 2.0, 4.0], "exit": "transition1",
             "in_channels": 3, "growth_rate": 2, "block": "denseblock1"}
    assert normalised(reuse, "target") == ([[1.0, 0.25], [None, 1.0], [None, None]], [0.25, 0.5, 1.0])
    assert normalised(reuse, "block") == ([[0.5, 0.25], [None, 1.0], [None, None]], [0.25, 0.5, 1.0])
    assert "channels 3–4" in cell_tooltip(reuse, 1, 2) and "25%" in cell_tooltip(reuse, 0, 2)


def test_clicking_a_block_chooses_its_layer(qtbot, report121):
    dialog = open_dialog(qtbot, report121)
    assert set(dialog.buttons) == {"denseblock1", "denseblock2", "denseblock3", "denseblock4", "transition1",
                                   "transition2", "transition3", "norm5"}
    with qtbot.waitSignal(dialog.layerChosen) as chosen:
        qtbot.mouseClick(dialog.buttons["denseblock2"], Qt.MouseButton.LeftButton)
    assert chosen.args == ["denseblock2"] and dialog.current_block == "denseblock2"
    assert dialog.overview.rows["denseblock2"].selected and "12 layers" in dialog.title.text()
    with qtbot.waitSignal(dialog.layerChosen) as chosen:
        qtbot.mouseClick(dialog.buttons["transition3"], Qt.MouseButton.LeftButton)
    assert chosen.args == ["transition3"] and dialog.current_block == "denseblock3"
    with qtbot.waitSignal(dialog.layerChosen) as chosen:
        dialog.buttons["norm5"].setFocus()
        qtbot.keyClick(dialog.buttons["norm5"], Qt.Key.Key_Space)
    assert chosen.args == ["norm5"] and dialog.current_block == "denseblock4"
    with qtbot.assertNotEmitted(dialog.layerChosen):
        qtbot.mouseClick(dialog.overview.rows["stem"], Qt.MouseButton.LeftButton)
    assert dialog.isVisible()  # exploring goes on: the dialog stays open


def test_a_report_without_weights_explains_the_missing_grid(qtbot, report121):
    report = {k: v for k, v in report121.items() if k != "feature_reuse"}  # the shape alone, as `info` has it
    dialog = open_dialog(qtbot, report)
    assert "needs the model's weights" in dialog.reuse_label.text() and not dialog.reuse_view.isVisibleTo(dialog)
    assert f"{1_531_584:,}" in dialog.parameters_label.text()


def test_painted_labels_never_overlap():
    centres = [10.0 * i for i in range(30)]
    widths = [14.0] * 30
    chosen = ticks(centres, widths, [0, *range(1, 29), None], [0, 29])
    assert 0 in chosen and 29 in chosen
    boxes = sorted((centres[i] - 7, centres[i] + 7) for i in chosen)
    assert all(a[1] <= b[0] for a, b in zip(boxes, boxes[1:]))
    assert spread([0.0, 5.0, 25.0], [10.0, 10.0, 10.0], [1]) == [1, 2]  # 0 would overlap 1, chosen first


@pytest.mark.qt_log_ignore("This plugin does not support raise")  # the offscreen platform, showing a tooltip
def test_hovering_explains_a_node_and_a_cell(qtbot, five_layers):
    from PySide6.QtCore import QEvent, QPoint
    from PySide6.QtGui import QHelpEvent
    from PySide6.QtWidgets import QToolTip

    dialog = open_dialog(qtbot, five_layers, (1400, 900))
    dialog.show_block("denseblock1")
    qtbot.wait(20)
    view = dialog.connectivity
    _fm, y, _box, _step = view._metrics()
    spot = QPoint(round(view.node_x(3)), round(y))
    assert view.node_at(QPointF(spot)) == 3
    qtbot.mouseMove(view, spot)
    qtbot.waitUntil(lambda: view._hover == 3)
    assert view.event(QHelpEvent(QEvent.Type.ToolTip, spot, view.mapToGlobal(spot)))
    qtbot.waitUntil(lambda: "Layer 3 reads 14 channels" in QToolTip.text())
    assert "3 direct connections" in QToolTip.text()
    grid = dialog.reuse_view
    spot = grid.cell_rect(0, 6).center().toPoint()  # the transition's use of the block input
    assert grid.event(QHelpEvent(QEvent.Type.ToolTip, spot, grid.mapToGlobal(spot)))
    qtbot.waitUntil(lambda: "transition1 ← the block input (channels 0–5)" in QToolTip.text())
    QToolTip.hideText()
