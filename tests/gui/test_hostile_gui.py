"""The GUI with the hostile corpus: every file gets a result or a message, the app goes on."""

from __future__ import annotations

from tests.gui.conftest import wait_classified
from tests.hostile_corpus import build
from tests.test_hostile_inputs import check_outcome


def test_gui_lists_the_corpus_and_goes_on(make_window, model_file, qtbot, tmp_path):
    corpus = build(tmp_path / "corpus")
    w = make_window(model_file)
    listed = w.session.add_images([str(c.path) for c in corpus])  # as listed, before the deleted file vanished
    w.images.add_paths(listed)
    w._classify(listed)
    wait_classified(qtbot, w, timeout=120000)
    for case in corpus:
        result = w.session.results[str(case.path)]
        check_outcome(case, result.predictions, result.error)
        assert w.images.state(str(case.path)) == ("error" if result.error else "done")
    assert w.isVisible()
