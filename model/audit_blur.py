"""Testing a shortcut flag: blur its box out of the flagged pictures and measure what the class loses.

``probability_drop`` is the mean, over the tested pictures, of the class's
probability on the picture minus its probability with the box blurred
(a Gaussian blur strong enough to erase a marker, keeping the colours
around it).  ``control_drop`` does the same with a box of the same size at the
mirror position (through the picture's centre): what blurring *any* region
that size costs.  A box that matters drops far more than its control.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image

from model.audit_analysis import Flag
from model.classifier import DenseNetClassifier, Prepared
from model.errors import DenseLensError

MAX_TESTED = 32
BLUR_SIGMA = 0.08  # of the analysed picture's shorter side


@dataclass
class Example:
    """One tested picture, for the report: the analysed picture before and after, and the class's probability."""

    path: str
    before: Image.Image
    after: Image.Image
    p_before: float
    p_after: float


def _pixel_box(box: Sequence[float], w: int, h: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    return (max(0, int(x0 * w)), max(0, int(y0 * h)), min(w, max(int(x0 * w) + 1, round(x1 * w))),
            min(h, max(int(y0 * h) + 1, round(y1 * h))))


def blur_box(x: torch.Tensor, box: Sequence[float]) -> torch.Tensor:
    """``x`` (C, H, W, normalised) with the box replaced by a strongly blurred copy of the picture."""
    _, h, w = x.shape
    sigma = max(1.0, BLUR_SIGMA * min(h, w))
    radius = int(3 * sigma)
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    padded = F.pad(x[None], (radius, radius, radius, radius), mode="replicate")
    c = x.shape[0]
    blurred = F.conv2d(padded, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    blurred = F.conv2d(blurred, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)[0]
    left, top, right, bottom = _pixel_box(box, w, h)
    out = x.clone()
    out[:, top:bottom, left:right] = blurred[:, top:bottom, left:right]
    return out


def mirror(box: Sequence[float]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = box
    return (1 - x1, 1 - y1, 1 - x0, 1 - y0)


def _probabilities(clf: DenseNetClassifier, tensors: list[torch.Tensor], class_index: int) -> list[float]:
    probs = torch.softmax(clf.logits(clf.batch(tensors)), dim=1)[:, class_index]
    return probs.cpu().tolist()


def _to_image(clf: DenseNetClassifier, x: torch.Tensor) -> Image.Image:
    p = clf.preprocessing
    mean = torch.tensor(p.mean).view(3, 1, 1)
    std = torch.tensor(p.std).view(3, 1, 1)
    rgb = ((x * std + mean).clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    return Image.fromarray(rgb)


def measure_flag(clf: DenseNetClassifier, paths: Sequence[str], flag: Flag, class_index: int) -> Example | None:
    """Measure the flag's drops on up to ``MAX_TESTED`` of its pictures (in place); the first as an example."""
    prepared: list[Prepared] = []
    for path in paths[:MAX_TESTED]:
        try:
            prepared.append(clf.prepare(path, clf.preprocessing.mode))
        except DenseLensError:
            continue  # changed since the scan: test the others
    if not prepared:
        return None
    before, after, control = [], [], []
    for p in prepared:  # one at a time: analysed sizes may differ
        x = p.tensor
        b, a, c = _probabilities(clf, [x, blur_box(x, flag.box), blur_box(x, mirror(flag.box))], class_index)
        before.append(b)
        after.append(a)
        control.append(c)
    n = len(prepared)
    flag.tested = n
    flag.probability_drop = sum(b - a for b, a in zip(before, after)) / n
    flag.control_drop = sum(b - c for b, c in zip(before, control)) / n
    first = prepared[0]
    return Example(str(first.loaded.path or paths[0]), _to_image(clf, first.tensor),
                   _to_image(clf, blur_box(first.tensor, flag.box)), before[0], after[0])
