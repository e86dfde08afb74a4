"""Measuring a classifier and its heatmaps against the shapes' ground truth.

* accuracy on single-shape pictures;
* pointing game: does the heatmap's maximum, on the original picture's grid,
  fall inside the object's bounding box; and the energy-based variant (the
  share of the heatmap's total inside the box);
* class-discriminative check on two-shape pictures: are the top-2
  predictions the two shapes, and does each class's peak land on its shape;
* deletion/insertion AUC of a heatmap against a random pixel order.

Pictures come from ``model.shapes`` with a seed the training never used; ``accuracy_on`` and
``pointing_on`` take pictures from any other source (``bench/other_renderer.py``: the same classes drawn
by a renderer the training never saw).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from model.classifier import DenseNetClassifier
from model.faithfulness import faithfulness
from model.shapes import ShapeSample, sample, two_shape_sample

EVAL_SEED = 424_242  # training uses seed*10000+epoch and seed+1000003
EVAL_SIZE = (128, 128)  # not the training size: heatmaps must map back to the original grid


def in_box(point: tuple[int, int], box: tuple[int, int, int, int]) -> bool:
    x, y = point
    left, top, right, bottom = box
    return left <= x < right and top <= y < bottom


def peak(heat: np.ndarray) -> tuple[int, int]:
    y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
    return int(x), int(y)


def energy_in_box(heat: np.ndarray, box: tuple[int, int, int, int]) -> float:
    total = float(heat.sum())
    left, top, right, bottom = box
    return float(heat[top:bottom, left:right].sum()) / total if total > 0 else 0.0


def accuracy(clf: DenseNetClassifier, count: int, seed: int = EVAL_SEED) -> float:
    correct = 0
    for i in range(count):
        s = sample(seed, i, EVAL_SIZE)
        correct += clf.predict(s.image, topk=1)[0].index == s.label
    return correct / count


Picture = tuple[Image.Image, int, tuple[int, int, int, int]]  # (image, class index, object's box)


def accuracy_on(clf: DenseNetClassifier, draw: Callable[[int], Picture], count: int) -> float:
    """Top-1 accuracy on pictures ``draw(0)`` .. ``draw(count - 1)``."""
    correct = 0
    for i in range(count):
        image, label, _ = draw(i)
        correct += clf.predict(image, topk=1)[0].index == label
    return correct / count


@dataclass
class PointingResult:
    layer: str
    method: str
    hits: int
    total: int
    energy: float  # mean share of heat inside the box
    empty: int  # maps with no positive evidence (counted as misses)

    @property
    def rate(self) -> float:
        return self.hits / self.total if self.total else 0.0

    def score(self, m, box: tuple[int, int, int, int]) -> None:
        """Count map ``m`` (a ``model.explain`` map) against the object's ``box``; energy is summed until
        ``finish``."""
        self.total += 1
        if not m.ok:
            self.empty += 1
            return
        heat = m.on_original()
        self.hits += in_box(peak(heat), box)
        self.energy += energy_in_box(heat, box)

    def finish(self) -> PointingResult:
        """Turn the summed energy into the mean share per map."""
        self.energy = self.energy / self.total if self.total else 0.0
        return self


def pointing_game(clf: DenseNetClassifier, count: int, layers: Sequence[str], methods: Sequence[str],
                  seed: int = EVAL_SEED) -> list[PointingResult]:
    """Pointing game for the true class, every (layer, method), from one explain call per method and image."""
    results = {(layer, m): PointingResult(layer, m, 0, 0, 0.0, 0) for m in methods for layer in layers}
    for i in range(count):
        s = sample(seed, i, EVAL_SIZE)
        box = s.box()
        for method in methods:
            ex = clf.explain(s.image, layers=list(layers), classes=[s.label], method=method)
            for m in ex.maps:
                results[(m.layer, method)].score(m, box)
    return [r.finish() for r in results.values()]


def pointing_on(clf: DenseNetClassifier, draw: Callable[[int], Picture], count: int, layer: str,
                method: str = "gradcam") -> PointingResult:
    """Pointing game for the true class at ``layer`` on pictures ``draw(0)`` .. ``draw(count - 1)``."""
    r = PointingResult(layer, method, 0, 0, 0.0, 0)
    for i in range(count):
        image, label, box = draw(i)
        (m,) = clf.explain(image, layers=[layer], classes=[label], method=method).maps
        r.score(m, box)
    return r.finish()


@dataclass
class TwoShapeResult:
    total: int
    top2_both: int  # top-2 predictions are exactly the two shapes
    peaks_on_own_shape: int  # classes (two per picture) whose peak lands in their own box
    peaks_total: int

    @property
    def top2_rate(self) -> float:
        return self.top2_both / self.total

    @property
    def peak_rate(self) -> float:
        return self.peaks_on_own_shape / self.peaks_total


def two_shape_check(clf: DenseNetClassifier, count: int, layer: str, method: str = "gradcam",
                    seed: int = EVAL_SEED) -> TwoShapeResult:
    result = TwoShapeResult(count, 0, 0, 0)
    for i in range(count):
        s: ShapeSample = two_shape_sample(seed, i, EVAL_SIZE)
        ex = clf.explain(s.image, layers=[layer], classes=list(s.labels), method=method, topk=2)
        result.top2_both += {p.index for p in ex.predictions[:2]} == set(s.labels)
        for k, label in enumerate(s.labels):
            m = ex.get(layer, label)
            result.peaks_total += 1
            if m.ok:
                result.peaks_on_own_shape += in_box(peak(m.on_original()), s.box(k))
    return result


@dataclass
class DeletionResult:
    cam_deletion: float
    random_deletion: float
    cam_insertion: float
    random_insertion: float


def deletion_vs_random(clf: DenseNetClassifier, count: int, layer: str, method: str = "gradcam",
                       seed: int = EVAL_SEED) -> DeletionResult:
    rng = np.random.default_rng(seed)
    sums = np.zeros(4)
    for i in range(count):
        s = sample(seed, i, EVAL_SIZE)
        ex = clf.explain(s.image, layers=[layer], classes=[s.label], method=method)
        m = ex.maps[0]
        x = ex.prepared.tensor[None]
        cam = faithfulness(clf, x, m.analysed, s.label)
        rand = faithfulness(clf, x, rng.random(m.analysed.shape).astype(np.float32), s.label)
        sums += [cam.deletion_auc, rand.deletion_auc, cam.insertion_auc, rand.insertion_auc]
    return DeletionResult(*(sums / count))
