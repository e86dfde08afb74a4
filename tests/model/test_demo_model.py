"""The shipped demo model, measured on freshly generated shapes (a seed the training never used).

A subset of bench/eval_demo.py (whose full figures are in docs/QUALITY.md); the floors asserted here sit
below the measured figures with margin for the smaller samples.
"""

from __future__ import annotations

import pytest

from model.classifier import DenseNetClassifier
from model.evaluation import accuracy, deletion_vs_random, pointing_game, two_shape_check
from model.paths import demo_model_path

pytestmark = pytest.mark.skipif(not demo_model_path().is_file(), reason="the demo model is not bundled")


@pytest.fixture(scope="module")
def demo():
    return DenseNetClassifier.load("demo", device="cpu")


def test_checkpoint_is_small_and_self_describing(demo):
    import torch

    assert demo_model_path().stat().st_size < 5_000_000
    ckpt = torch.load(demo_model_path(), weights_only=True)
    assert ckpt["class_names"] == demo.labels and len(demo.labels) == 8
    assert ckpt["preprocessing"]["input_size"] == demo.input_size
    assert ckpt["training"]["dataset_seed"] == 0 and ckpt["training"]["best"]["val_accuracy"] > 0.95


@pytest.mark.slow
def test_accuracy_on_unseen_shapes(demo):
    assert accuracy(demo, 300) >= 0.97  # measured 99.9% on 1,000


@pytest.mark.slow
def test_grad_cam_points_at_the_object(demo):
    deepest = [t for t in demo.model.tap_names if t.startswith("denseblock")][-1]
    (result,) = pointing_game(demo, 150, [deepest], ["gradcam"])
    assert result.rate >= 0.93  # measured 99.2% on 500
    assert result.energy >= 0.50  # measured 63%


@pytest.mark.slow
def test_each_class_heatmap_lands_on_its_own_shape(demo):
    deepest = [t for t in demo.model.tap_names if t.startswith("denseblock")][-1]
    result = two_shape_check(demo, 60, deepest)
    assert result.peak_rate >= 0.70  # measured 81.8% on 300 (600 peaks)


@pytest.mark.slow
def test_grad_cam_beats_random_order_on_deletion_and_insertion(demo):
    deepest = [t for t in demo.model.tap_names if t.startswith("denseblock")][-1]
    d = deletion_vs_random(demo, 20, deepest)
    assert d.cam_deletion < d.random_deletion - 0.15  # measured 0.181 against 0.466 on 100
    # Insertion over a blurred copy: Grad-CAM's order restores the class fast (measured 0.875), but a random
    # order does as well on these flat-coloured shapes (0.893): reported in docs/QUALITY.md, not asserted.
    assert d.cam_insertion > 0.75
