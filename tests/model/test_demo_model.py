"""The shipped demo model, measured on freshly generated shapes (a seed the training never used) and on
the same classes drawn by an independent renderer over a photo the training never saw.

A subset of bench/eval_demo.py (whose full figures are in docs/QUALITY.md); the floors asserted here sit
below the measured figures with margin for the smaller samples.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.other_renderer import other_sample
from model.classifier import DenseNetClassifier
from model.evaluation import EVAL_SEED, EVAL_SIZE, accuracy, accuracy_on, pointing_game, two_shape_check
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
    assert ckpt["format_version"] == 3 and ckpt["unfamiliar"]["score"] == "energy"


@pytest.mark.slow
def test_accuracy_on_unseen_shapes(demo):
    assert accuracy(demo, 300) >= 0.93  # measured 96.8% on 1,000


def test_photos_are_unfamiliar_and_the_bundled_samples_are_not(demo):
    from matplotlib import cbook

    from model.paths import assets_dir

    for name in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png"):
        (top,) = demo.predict(cbook.get_sample_data(name, asfileobj=False), topk=1)
        assert top.unfamiliar is True, name  # the previous demo called a photo "star 94%" and nothing else
    for path in sorted((assets_dir() / "samples").glob("*.png")):
        (top,) = demo.predict(str(path), topk=1)
        assert top.unfamiliar is False and top.label in path.stem, path.name


def test_other_renderer_is_deterministic_and_boxes_the_visible_shape():
    for i in range(6):
        image, label, box = other_sample(EVAL_SEED, i, EVAL_SIZE)
        again, label_again, box_again = other_sample(EVAL_SEED, i, EVAL_SIZE)
        assert np.array_equal(np.asarray(image), np.asarray(again)) and (label, box) == (label_again, box_again)
        left, top, right, bottom = box
        assert image.size == EVAL_SIZE and 0 <= left < right <= EVAL_SIZE[0] and 0 <= top < bottom <= EVAL_SIZE[1]
        assert 0 <= label < 8


@pytest.mark.slow
def test_accuracy_on_pictures_of_an_independent_renderer(demo):
    def other(i):
        return other_sample(EVAL_SEED, i, EVAL_SIZE)

    assert accuracy_on(demo, other, 200) >= 0.83  # measured 88.6% on 1,000 (earlier demos: 60.3%, 84.3%)


@pytest.mark.slow
def test_grad_cam_points_at_the_object(demo):
    deepest = [t for t in demo.model.tap_names if t.startswith("denseblock")][-1]
    (result,) = pointing_game(demo, 150, [deepest], ["gradcam"])
    assert result.rate >= 0.93  # measured 99.2% on 500
    assert result.energy >= 0.6  # measured 76%


@pytest.mark.slow
def test_each_class_heatmap_lands_on_its_own_shape(demo):
    deepest = [t for t in demo.model.tap_names if t.startswith("denseblock")][-1]
    result = two_shape_check(demo, 60, deepest)
    assert result.peak_rate >= 0.78  # measured 87.0% on 300 (600 peaks)


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
    # 0.197 against 0.687 on 100 pictures (docs/QUALITY.md)
    assert _mean(rows, "gradcam") < _mean(rows, "random") - 0.15
    assert np.mean([r["gradcam"] < r["random"] for r in rows]) >= 0.8


@pytest.mark.slow
def test_grad_cam_insertion_beats_its_reversed_order_but_only_matches_random(auc):
    # Revealing pixels over a blurred copy: Grad-CAM's order restores the class far faster than the same
    # map read coldest first, so the map's ranking matters; but a random order does about as well (0.858
    # against Grad-CAM's 0.841 on 100 pictures, docs/QUALITY.md): scattered pixels outline a blurred shape
    # quickly.  Only "not worse" is asserted.
    rows = auc["insertion"]
    assert _mean(rows, "gradcam") > _mean(rows, "reversed") + 0.15
    assert _mean(rows, "gradcam") > _mean(rows, "random") - 0.05
