"""The shipped demo model, measured on freshly generated shapes (a seed the training never used).

A subset of bench/eval_demo.py (whose full figures are in docs/QUALITY.md); the floors asserted here sit
below the measured figures with margin for the smaller samples.
"""

from __future__ import annotations

import numpy as np
import pytest

from model.classifier import DenseNetClassifier
from model.evaluation import EVAL_SEED, EVAL_SIZE, accuracy, pointing_game, two_shape_check
from model.faithfulness import faithfulness
from model.paths import demo_model_path
from model.shapes import sample

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


@pytest.fixture(scope="module")
def auc(demo):
    """Deletion and insertion AUC per picture (rows) for three pixel orders of the same pictures:
    Grad-CAM's (hottest first), a seeded random one and Grad-CAM's reversed (coldest first)."""
    deepest = [t for t in demo.model.tap_names if t.startswith("denseblock")][-1]
    rng = np.random.default_rng(7)
    deletion, insertion = [], []
    for i in range(20):
        s = sample(EVAL_SEED, i, EVAL_SIZE)
        prepared = demo.prepare(s.image)
        (m,) = demo.explain(prepared, layers=[deepest], classes=[s.label]).maps
        x = prepared.tensor[None]
        orders = {"gradcam": m.analysed, "random": rng.random(m.analysed.shape).astype(np.float32),
                  "reversed": -m.analysed}
        figures = {name: faithfulness(demo, x, heat, s.label) for name, heat in orders.items()}
        deletion.append({name: f.deletion_auc for name, f in figures.items()})
        insertion.append({name: f.insertion_auc for name, f in figures.items()})
    return {"deletion": deletion, "insertion": insertion}


def _mean(rows, name):
    return float(np.mean([r[name] for r in rows]))


@pytest.mark.slow
def test_grad_cam_order_deletes_the_class_faster_than_a_random_order(auc):
    rows = auc["deletion"]
    # measured 0.202 against 0.525 on these 20 pictures (0.181 against 0.466 on 100, docs/QUALITY.md)
    assert _mean(rows, "gradcam") < _mean(rows, "random") - 0.15
    assert np.mean([r["gradcam"] < r["random"] for r in rows]) >= 0.8  # measured 95%


@pytest.mark.slow
def test_grad_cam_insertion_beats_its_reversed_order_but_only_matches_random(auc):
    # Revealing pixels over a blurred copy: Grad-CAM's order restores the class far faster than the same
    # map read coldest first (measured 0.88 against 0.60), so the map's ranking matters; but on these
    # flat-coloured shapes a random order does as well (0.88 on these 20, 0.893 against 0.875 on 100 in
    # docs/QUALITY.md): scattered pixels outline a blurred shape quickly.  Only "not worse" is asserted.
    rows = auc["insertion"]
    assert _mean(rows, "gradcam") > _mean(rows, "reversed") + 0.15
    assert _mean(rows, "gradcam") > _mean(rows, "random") - 0.05
