"""An accelerator running out of memory: ``predict`` and ``explain`` finish on the CPU with the CPU's numbers.

No accelerator is needed.  The classifier is made to believe it runs on one
(``clf.device`` set to the ``meta`` device, which accepts any tensor moved to
it but holds no data; the weights stay where they are), and a forward
pre-hook on the network's stem raises the error, so every real step of
``predict``/``explain`` runs: moving the input to the device, the forward
pass, the fallback, the retry.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from model.classifier import DenseNetClassifier
from model.paths import assets_dir
from model.zoo import Preprocessing
from tests.conftest import make_tiny

ACCELERATOR = torch.device("meta")


def out_of_memory() -> torch.OutOfMemoryError:
    return torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def classifier() -> DenseNetClassifier:
    return DenseNetClassifier(make_tiny(), ["ant", "bee", "cat", "dog"], "cpu",
                              preprocessing=Preprocessing(input_size=64))


@pytest.fixture(scope="module")
def picture() -> Image.Image:
    return Image.open(assets_dir() / "samples" / "circle-and-star.png").convert("RGB")


class FailingForward:
    """Raise ``error`` once, from the stem of forward pass number ``on_pass`` (1-based); record every pass's device."""

    def __init__(self, clf: DenseNetClassifier, error: BaseException, on_pass: int = 1,
                 accelerator_fails_then: bool = False) -> None:
        self.clf, self.error, self.on_pass = clf, error, on_pass
        self.accelerator_fails_then = accelerator_fails_then
        self.devices: list[str] = []
        clf.model.features.conv0.register_forward_pre_hook(self)

    def __call__(self, _module, args) -> None:
        self.devices.append(args[0].device.type)
        if len(self.devices) == self.on_pass:
            if self.accelerator_fails_then:
                self.clf.device = ACCELERATOR
            raise self.error


def explain(clf: DenseNetClassifier, picture: Image.Image, method: str):
    return clf.explain(picture, layers=["denseblock1", "denseblock3"], classes=["top2", 0], method=method)


def assert_same_explanation(got, expected) -> None:
    assert got.predictions == expected.predictions
    assert [(m.layer, m.class_index, m.status) for m in got.maps] == \
        [(m.layer, m.class_index, m.status) for m in expected.maps]
    for a, b in zip(got.maps, expected.maps):
        assert np.array_equal(a.raw, b.raw) and np.array_equal(a.analysed, b.analysed), (a.layer, a.class_index)
        assert (a.probability, a.score) == (b.probability, b.score)


def assert_fell_back_to_cpu(clf: DenseNetClassifier) -> None:
    assert len(clf.warnings) == 1
    assert "out of memory" in clf.warnings[0] and "CPU" in clf.warnings[0]
    assert clf.device == torch.device("cpu")
    assert all(p.device.type == "cpu" for p in clf.model.parameters())


def test_predict_out_of_memory_on_accelerator_returns_the_cpu_result(picture):
    expected = classifier().predict(picture, topk=4)
    clf = classifier()
    clf.device = ACCELERATOR
    failing = FailingForward(clf, out_of_memory())
    with pytest.warns(RuntimeWarning, match="out of memory"):
        got = clf.predict(picture, topk=4)
    assert got == expected
    assert failing.devices == ["meta", "cpu"]
    assert_fell_back_to_cpu(clf)


@pytest.mark.parametrize("method", ["gradcam", "scorecam"])
def test_explain_out_of_memory_on_accelerator_returns_the_cpu_result(picture, method):
    expected = explain(classifier(), picture, method)
    clf = classifier()
    clf.device = ACCELERATOR
    failing = FailingForward(clf, out_of_memory())
    with pytest.warns(RuntimeWarning, match="out of memory"):
        got = explain(clf, picture, method)
    assert_same_explanation(got, expected)
    assert failing.devices[:2] == ["meta", "cpu"] and set(failing.devices[1:]) == {"cpu"}
    assert_fell_back_to_cpu(clf)


def test_out_of_memory_midway_through_score_cam_restarts_it_on_the_cpu(picture):
    # The first forward pass succeeds; the accelerator fails on the third (a batch of masked inputs).
    # Nothing computed before the failure may leak into the result.
    expected = explain(classifier(), picture, "scorecam")
    clf = classifier()
    failing = FailingForward(clf, out_of_memory(), on_pass=3, accelerator_fails_then=True)
    with pytest.warns(RuntimeWarning, match="out of memory"):
        got = explain(clf, picture, "scorecam")
    assert_same_explanation(got, expected)
    assert len(failing.devices) > 3
    assert_fell_back_to_cpu(clf)


@pytest.mark.parametrize("entry", ["predict", "explain"])
def test_other_runtime_errors_on_accelerator_are_raised_not_retried(picture, entry):
    clf = classifier()
    clf.device = ACCELERATOR
    failing = FailingForward(clf, RuntimeError("CUDA error: an illegal memory access was encountered"))
    with pytest.raises(RuntimeError, match="illegal memory access"):
        clf.predict(picture) if entry == "predict" else explain(clf, picture, "gradcam")
    assert failing.devices == ["meta"]
    assert clf.warnings == [] and clf.device == ACCELERATOR


def test_out_of_memory_on_the_cpu_is_raised_not_retried(picture):
    clf = classifier()
    failing = FailingForward(clf, out_of_memory())
    with pytest.raises(torch.OutOfMemoryError):
        clf.predict(picture)
    assert failing.devices == ["cpu"] and clf.warnings == []
