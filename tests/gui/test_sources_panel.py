"""The sources panel: one readable bar per source, a click chooses that source."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from gui.sources_panel import SourcesPanel

NAMES = ["input", "denselayer1", "denselayer2", "denselayer3"]
SHARES = [0.6, 0.5, -0.2, 0.1]
CHANNELS = [(0, 64), (64, 96), (96, 128), (128, 160)]


@pytest.fixture
def panel(qtbot):
    p = SourcesPanel()
    qtbot.addWidget(p)
    p.resize(360, 300)
    p.show()
    qtbot.waitExposed(p)
    p.set_sources("denseblock2", "<b>tabby</b> cat", NAMES, SHARES, CHANNELS)
    return p


def test_bars_grow_with_the_share_and_negative_ones_point_left(panel):
    bars = panel.bars
    assert bars.count() == 4
    widths = [bars.bar_rect(i).width() for i in range(4)]
    assert widths[0] > widths[1] > widths[2] > widths[3] > 0
    zero = bars.bar_rect(0).left()
    assert bars.bar_rect(2).right() < zero <= bars.bar_rect(1).left()
    assert "<b>tabby</b> cat" in panel._caption.text()  # a class name is plain text, never markup


def test_clicking_a_bar_chooses_its_source(panel, qtbot):
    with qtbot.waitSignal(panel.sourceChosen) as blocker:
        qtbot.mouseClick(panel.bars, Qt.MouseButton.LeftButton, pos=panel.bars.bar_rect(2).center())
    assert blocker.args == [2] and panel.bars.selected() == 2
    with qtbot.waitSignal(panel.sourceChosen) as blocker:  # the row's name is part of the target too
        qtbot.mouseClick(panel.bars, Qt.MouseButton.LeftButton, pos=panel.bars.name_rect(3).center())
    assert blocker.args == [3]
    with qtbot.waitSignal(panel.sourceChosen) as blocker:
        qtbot.keyClick(panel.bars, Qt.Key.Key_Up)
    assert blocker.args == [2]


def test_show_source_emits_and_select_only_highlights(panel, qtbot):
    with qtbot.assertNotEmitted(panel.sourceChosen):
        panel.select(1)
    assert panel.bars.selected() == 1
    with qtbot.waitSignal(panel.sourceChosen) as blocker:
        panel.show_source(3)
    assert blocker.args == [3] and panel.bars.selected() == 3


def test_no_text_is_clipped_even_when_the_panel_is_narrow(panel, qtbot):
    long_names = [*NAMES, "denselayer48"]
    panel.set_sources("denseblock3", "cat", long_names, [1.25, -0.5, 0.1, 0.1, 0.05])
    panel.resize(120, 200)
    qtbot.wait(10)
    bars = panel.bars
    fm = bars.fontMetrics()
    assert bars.width() >= bars.minimumWidth()  # the scroll area scrolls instead of squeezing
    for i, name in enumerate(long_names):
        name_rect, value_rect, bar = bars.name_rect(i), bars.value_rect(i), bars.bar_rect(i)
        assert fm.horizontalAdvance(name) <= name_rect.width()
        assert fm.horizontalAdvance(f"{[125.0, -50.0, 10.0, 10.0, 5.0][i]:.1f}%") <= value_rect.width()
        assert name_rect.right() < bar.left() and bar.right() < value_rect.left()
        assert bars.rect().contains(value_rect)


def test_a_map_without_evidence_shows_no_bars_and_says_why(panel):
    panel.set_sources("denseblock1", "cat", NAMES, None, CHANNELS)
    assert all(panel.bars.bar_rect(i).isEmpty() for i in range(4))
    assert "no positive evidence" in panel._caption.text()
    panel.clear()
    assert panel.bars.count() == 0 and panel.bars.selected() is None
