"""The explanation engine on a constructed DenseNet whose evidence we know.

``brightness_net`` is a tiny DenseNet wired by hand: its stem averages the
pixels, dense layers add nothing, transitions pass that channel through, so
the final feature map is the image's local brightness (after ReLU) and the
"bright" logit is its mean.  Grad-CAM for "bright" must therefore peak where
the bright object is, in the original picture's coordinates; the "dark"
class has only negative evidence, so its map is empty.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch
from PIL import Image

from model.cam import METHODS
from model.classifier import DenseNetClassifier, Prediction
from model.densenet import densenet
from model.errors import Cancelled
from model.explain import resolve_classes
from model.faithfulness import faithfulness
from model.zoo import Preprocessing


def brightness_net() -> torch.nn.Module:
    model = densenet(growth_rate=4, block_config=(2, 2, 2), num_init_features=8, bn_size=2,
                     num_classes=2, stem="small").eval()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.fill_(1.0)
                m.running_mean.zero_()
                m.running_var.fill_(1.0 - m.eps)
        model.features.conv0.weight[0].fill_(1.0 / 27)
        for t in (model.features.transition1, model.features.transition2):
            for i in range(8):
                t.conv.weight[i, i, 0, 0] = 1.0
        model.classifier.weight[0, 0] = -1.0  # "dark"
        model.classifier.weight[1, 0] = 1.0  # "bright"
    return model


@pytest.fixture
def clf():
    return DenseNetClassifier(brightness_net(), ["dark", "bright"], "cpu",
                              preprocessing=Preprocessing(input_size=96, mean=(0.5,) * 3, std=(0.5,) * 3))


def scene(size, box) -> Image.Image:
    img = Image.new("RGB", size, (20, 20, 20))
    img.paste((255, 255, 255), box)
    return img


def _peak(heat: np.ndarray) -> tuple[int, int]:
    y, x = np.unravel_index(np.argmax(heat), heat.shape)
    return int(x), int(y)


@pytest.mark.parametrize("mode, size, box", [
    ("full", (300, 200), (250, 10, 290, 50)),        # top-right corner of a wide picture
    ("full", (160, 400), (10, 340, 60, 390)),        # bottom-left of a tall picture
    ("center-crop", (300, 200), (200, 10, 240, 50)),  # inside the central crop (x 50..250)
])
@pytest.mark.parametrize("method", ["gradcam", "layercam", "scorecam"])
def test_heat_lands_on_the_object_in_original_coordinates(clf, mode, size, box, method):
    explanation = clf.explain(scene(size, box), layers=["denseblock3"], classes=["bright"], method=method,
                              preprocess=mode)
    m = explanation.maps[0]
    assert m.ok and m.label == "bright"
    heat = m.on_original()
    assert heat.shape == (size[1], size[0])
    x, y = _peak(heat)
    left, top, right, bottom = box
    assert left - 8 <= x <= right + 8 and top - 8 <= y <= bottom + 8, (x, y)


def test_center_crop_leaves_no_heat_outside_the_crop(clf):
    explanation = clf.explain(scene((300, 200), (200, 10, 240, 50)), layers=["denseblock3"],
                              classes=["bright"], preprocess="center-crop")
    heat = explanation.maps[0].on_original()
    assert heat[:, :45].max() == 0 and heat[:, 256:].max() == 0 and heat.max() == 1.0


def test_map_without_positive_evidence_is_reported_empty(clf):
    explanation = clf.explain(scene((120, 120), (0, 0, 30, 30)), layers=["denseblock3"], classes=["dark"])
    m = explanation.maps[0]
    assert m.status == "empty" and "no positive evidence" in m.status_message()
    assert m.analysed.max() == 0 and m.on_original().max() == 0


def test_one_pass_returns_predictions_and_all_requested_pairs(clf):
    img = scene((128, 96), (90, 10, 120, 40))
    explanation = clf.explain(img, layers=["denseblock1", "transition2", "norm5"], classes=["top2"])
    assert [p.label for p in explanation.predictions] == ["bright", "dark"]
    assert explanation.predictions == clf.predict(img, topk=2)
    assert {(m.layer, m.class_index) for m in explanation.maps} == \
        {(layer, c) for layer in ("denseblock1", "transition2", "norm5") for c in (0, 1)}
    m = explanation.get("denseblock1", 1)
    assert m.raw.shape == (96, 128) and m.analysed.shape == (96, 128)
    assert explanation.get("norm5", 1).raw.shape == (24, 32)
    assert m.analysed.min() >= 0 and m.analysed.max() == pytest.approx(1.0)


@pytest.mark.parametrize("spec, message", [
    (["elephant"], "unknown class"), ([7], "out of range"), (["top9"], "only the top"),
])
def test_bad_class_specs_are_rejected(clf, spec, message):
    with pytest.raises(ValueError, match=message):
        clf.explain(scene((64, 64), (0, 0, 8, 8)), classes=spec, topk=2)


def test_unknown_layer_and_method_list_the_choices(clf):
    img = scene((64, 64), (0, 0, 8, 8))
    with pytest.raises(ValueError, match="denseblock1, transition1"):
        clf.explain(img, layers=["denseblock9"])
    with pytest.raises(ValueError, match="gradcam, gradcam"):
        clf.explain(img, method="eigencam")


def test_every_method_produces_a_map(clf):
    img = scene((96, 96), (60, 10, 90, 40))
    for method in METHODS:
        m = clf.explain(img, layers=["denseblock2"], classes=["bright"], method=method).maps[0]
        assert m.ok, method
        x, y = _peak(m.on_original())
        assert x >= 50 and y <= 50, method


def test_score_cam_reports_progress_and_can_be_cancelled(clf):
    img = scene((96, 96), (60, 10, 90, 40))
    seen = []
    clf.explain(img, layers=["denseblock1", "denseblock2"], method="scorecam",
                progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (32, 32) and seen == sorted(seen)  # 16 + 16 channels
    with pytest.raises(Cancelled):
        clf.explain(img, method="scorecam", cancelled=lambda: True)


def test_faithful_map_beats_its_inverse(clf):
    img = scene((96, 96), (60, 10, 90, 40))
    explanation = clf.explain(img, layers=["denseblock3"], classes=["bright"])
    m = explanation.maps[0]
    x = explanation.prepared.tensor[None]
    good = faithfulness(clf, x, m.analysed, 1)
    bad = faithfulness(clf, x, 1 - m.analysed, 1)
    assert good.deletion_auc < bad.deletion_auc
    assert good.insertion_auc > bad.insertion_auc
    assert good.probability == pytest.approx(explanation.predictions[0].probability, abs=1e-5)
    assert good.probability_top20 > bad.probability_top20


def _live_tensors() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if issubclass(type(o), torch.Tensor))


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


@pytest.mark.slow
def test_fifty_explain_calls_leak_nothing(tv_densenet121):
    from model.densenet import densenet121

    net = densenet121()
    net.load_state_dict(tv_densenet121.state_dict())
    big = DenseNetClassifier(net, [str(i) for i in range(1000)], "cpu", preprocessing=Preprocessing(input_size=112))
    img = Image.effect_noise((150, 112), 60).convert("RGB")
    for _ in range(5):  # warm-up: allocator pools, lazy initialisation
        big.explain(img, layers=["denseblock2", "denseblock4"], classes=["top2"])
    tensors, rss = _live_tensors(), _rss_mb()
    for _ in range(50):
        big.explain(img, layers=["denseblock2", "denseblock4"], classes=["top2"])
    assert _live_tensors() <= tensors
    assert _rss_mb() - rss < 40
    assert all(p.grad is None and not p.requires_grad for p in big.model.parameters())


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal within 1e-5 of the map's range."""
    return np.abs(a - b).max() <= 1e-5 * max(1.0, float(np.ptp(a)))


def test_held_analysis_gives_the_maps_of_a_fresh_explain(clf):
    from model.explain import ImageAnalysis

    img = scene((120, 96), (70, 10, 110, 50))
    analysis = ImageAnalysis(clf, clf.prepare(img))
    for method in METHODS:
        for layers, classes in ((["denseblock3"], [1]), (["denseblock1", "norm5"], [0, 1])):
            held = analysis.explain(layers, classes, method)
            fresh = clf.explain(img, layers=layers, classes=classes, method=method)
            for a, b in zip(held.maps, fresh.maps):
                assert (a.layer, a.class_index, a.status) == (b.layer, b.class_index, b.status)
                assert _close(a.raw, b.raw), (method, a.layer, a.class_index)


def test_held_analysis_runs_one_forward_and_one_backward_per_class(clf, monkeypatch):
    from model.explain import ImageAnalysis

    forwards, backwards = [], []
    real_forward, real_grad = type(clf.model).forward_with_taps, torch.autograd.grad
    monkeypatch.setattr(type(clf.model), "forward_with_taps",
                        lambda self, *a, **k: forwards.append(1) or real_forward(self, *a, **k))
    monkeypatch.setattr(torch.autograd, "grad", lambda *a, **k: backwards.append(1) or real_grad(*a, **k))
    analysis = ImageAnalysis(clf, clf.prepare(scene((96, 96), (60, 10, 90, 40))), autograd=True)
    analysis.explain(["denseblock3"], [1], "gradcam")
    analysis.explain(["denseblock3"], [0], "gradcam")  # class switch: one backward, no forward
    analysis.explain(["denseblock3"], [0, 1], "gradcam++")  # method switch: gradients are held
    analysis.explain(["denseblock2", "denseblock3"], [1], "layercam")  # one more layer: one backward
    assert (len(forwards), len(backwards)) == (1, 3)


def test_classes_resolve_by_rank_index_and_name_in_any_case():
    labels = ["Tabby Cat", "tiger", "dog", "tiger"]
    top = [Prediction(2, "dog", 0.6), Prediction(0, "Tabby Cat", 0.3)]
    assert resolve_classes(["top2", "TABBY cat", 1, "2"], top, labels) == [2, 0, 1]
    assert resolve_classes(["Tiger"], top, labels) == [3]  # equal labels: the last, as before
    with pytest.raises(ValueError, match="did you mean: tiger"):
        resolve_classes(["tigr"], top, labels)
