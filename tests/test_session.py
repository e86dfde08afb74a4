"""The session state on its own: no window, no QApplication, no model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gui.messages import Classified, Explained, MetricsResult, ModelFailure, ModelInfo
from gui.session import Session

TAPS = ["denseblock1", "transition1", "denseblock2", "transition2", "denseblock3", "norm5"]


class _Prediction:
    def __init__(self, index: int) -> None:
        self.index = index


def _info(spec: str = "demo", load_id: int = 1) -> ModelInfo:
    return ModelInfo(spec, spec.title(), spec, "cpu", "CPU", ["a", "b", "c"], TAPS, {}, [], "", ["cpu"], {}, 96,
                     load_id)


def _answer(request, top: int = 1, load_id: int = 1, classes=(0, 1, 2)) -> Explained:
    layers = [request.main_layer, *request.layers]
    return Explained(request.request_id, request.path, request.method, request.preprocess,
                     predictions=[_Prediction(top)],
                     heat={(request.main_layer, c): object() for c in classes},
                     tiles={(layer, c): object() for layer in layers for c in classes}, load_id=load_id)


def test_session_imports_without_qt_or_torch():
    code = "import sys, gui.session; print('PySide6' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_subscribers_hear_changes_once_and_not_repeats():
    s = Session()
    heard = []
    s.subscribe("colormap", heard.append)
    s.colormap = "viridis"
    s.colormap = "viridis"
    s.colormap = "inferno"
    assert heard == ["viridis", "inferno"]


def test_explain_request_carries_the_state_and_newest_answer_wins():
    s = Session(method="gradcam++", region="center-crop", topk=3)
    assert s.explain_request() is None  # no model, no picture
    s.model_ready(_info())
    s.add_images(["/p/a.png"])
    s.select_image("/p/a.png")
    first = s.explain_request()
    assert (first.path, first.method, first.preprocess, first.topk) == ("/p/a.png", "gradcam++", "center-crop", 3)
    assert first.layers == ["denseblock1", "denseblock2", "denseblock3"] and first.main_layer == "denseblock3"
    second = s.explain_request()
    assert not s.accept_explained(_answer(first))  # replaced by the second request
    assert s.explanation is None
    assert s.accept_explained(_answer(second))
    assert s.explanation.request_id == second.request_id and s.has_current_maps()


def test_class_and_layer_switch_use_held_maps_until_one_is_missing():
    s = Session()
    s.model_ready(_info())
    s.add_images(["/p/a.png"])
    s.select_image("/p/a.png")
    request = s.explain_request()
    s.accept_explained(_answer(request, top=2, classes=(2,)))
    assert s.shown_class() == 2 and s.has_current_maps()
    s.choose_class(1)
    assert not s.has_current_maps()  # class 1 was not computed: the window must ask the engine
    assert not s.choose_layer("conv0")  # not a tap of this model
    assert s.choose_layer("norm5") and s.layer == "norm5"
    s.all_taps = True
    assert s.panel_layers() == TAPS


def test_other_picture_or_method_makes_held_maps_stale():
    s = Session()
    s.model_ready(_info())
    s.add_images(["/p/a.png", "/p/b.png"])
    s.select_image("/p/a.png")
    s.accept_explained(_answer(s.explain_request()))
    s.choose_class(0)
    s.select_image("/p/b.png")
    assert s.current_class is None and s.current_explanation() is None
    s.select_image("/p/a.png")
    assert s.has_current_maps()
    s.method = "layercam"
    assert s.current_explanation() is None


def test_failed_model_switch_keeps_the_model_that_made_the_numbers():
    s = Session()
    s.model_ready(_info("demo", load_id=1))
    s.add_images(["/p/a.png"])
    s.classifying(["/p/a.png"])
    s.model_loading("densenet121")
    assert s.loading == "densenet121"
    s.model_failed(ModelFailure("densenet121", "offline", True))
    assert s.loading is None and s.model.spec == "demo" and s.model.title == "Demo"
    assert s.accept_classified(Classified("/p/a.png", [_Prediction(0)], None, load_id=1))


def test_results_of_a_replaced_model_or_removed_picture_are_dropped():
    s = Session()
    s.model_ready(_info("demo", load_id=1))
    s.add_images(["/p/a.png", "/p/b.png"])
    s.classifying(["/p/a.png", "/p/b.png"])
    assert s.tasks["classify"].total == 2
    s.model_ready(_info("other.pth", load_id=2))
    assert not s.accept_classified(Classified("/p/a.png", [_Prediction(0)], None, load_id=1))
    s.remove_images(["/p/b.png"])
    assert not s.accept_classified(Classified("/p/b.png", [_Prediction(0)], None, load_id=2))
    assert s.accept_classified(Classified("/p/a.png", None, "broken", load_id=2))
    assert s.counts() == (0, 1)
    s.select_image("/p/a.png")
    assert s.explain_request() is None  # a picture that cannot be read is not explained


def test_metrics_name_their_layer_and_class_and_stale_ones_are_dropped():
    s = Session()
    s.model_ready(_info())
    s.add_images(["/p/a.png"])
    s.select_image("/p/a.png")
    assert s.metrics_request() is None  # nothing explained yet
    s.accept_explained(_answer(s.explain_request(), top=1))
    old = s.metrics_request()
    new = s.metrics_request()
    assert (new.layer, new.class_index) == ("denseblock3", 1)
    assert s.metrics.figures is None and s.metrics.error is None  # measuring
    assert not s.accept_metrics(MetricsResult(old.request_id, "denseblock3", 1, {"deletion_auc": 0.1}))
    assert s.accept_metrics(MetricsResult(new.request_id, "denseblock3", 1, {"deletion_auc": 0.2}))
    s.choose_class(2)
    assert s.metrics is None  # figures of another class are never shown under this one


def test_tasks_report_the_latest_and_clear():
    s = Session(method="scorecam")
    heard = []
    s.subscribe("tasks", lambda tasks: heard.append(sorted(tasks)))
    s.model_ready(_info())
    s.add_images(["/p/a.png"])
    s.select_image("/p/a.png")
    request = s.explain_request()
    assert s.active_task().name == "explain"  # slow method: progress and Cancel
    s.update_task("export", 1, 4)
    assert s.active_task().name == "export"
    s.accept_explained(_answer(request))
    s.finish_task("export")
    assert s.active_task() is None and heard[-1] == []
