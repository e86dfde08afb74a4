"""Testing a shortcut flag: blur its box out of the flagged pictures and measure what the class loses.

``probability_drop`` is the mean, over the tested pictures, of the class's
probability on the picture minus its probability with the box blurred out.
Blurring *out* means filling the box from its surroundings only (a
normalised convolution: ``blur(x * m) / blur(m)`` with ``m`` zero inside the
box, a Gaussian as wide as the box): a marker's own colour does not leak
back in, as it would with a plain blur of the box.  ``control_drop`` does the same with a box of the same size at the
mirror position (through the picture's centre): what blurring *any* region
that size costs.  A box that matters drops far more than its control.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image

from model.audit_analysis import Flag
from model.classifier import DenseNetClassifier, Prepared
from model.errors import Cancelled, DenseLensError

MAX_TESTED = 32
MIN_SIGMA = 2.0  # pixels


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


def _gaussian(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W), edges replicated."""
    radius = int(3 * sigma)
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    padded = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    out = F.conv2d(padded, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def blur_box(x: torch.Tensor, box: Sequence[float]) -> torch.Tensor:
    """``x`` (C, H, W, normalised) with the box filled from its surroundings, blurred (see the module)."""
    _, h, w = x.shape
    left, top, right, bottom = _pixel_box(box, w, h)
    keep = torch.ones(1, 1, h, w)
    keep[..., top:bottom, left:right] = 0
    sigma = max(MIN_SIGMA, float(max(right - left, bottom - top)))
    filled = _gaussian(x[None] * keep, sigma) / _gaussian(keep, sigma).clamp(min=1e-6)
    out = x.clone()
    out[:, top:bottom, left:right] = filled[0, :, top:bottom, left:right]
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


def measure_flag(clf: DenseNetClassifier, paths: Sequence[str], flag: Flag, class_index: int,
                 cancelled: Callable[[], bool] = lambda: False) -> Example | None:
    """Measure the flag's drops on up to ``MAX_TESTED`` of its pictures (in place).

    The example is the picture whose own drop is nearest the mean drop: a typical case, not an extreme.
    """
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
        if cancelled():
            raise Cancelled("the audit was stopped while testing a flag; --resume finishes it without "
                            "explaining again")
        x = p.tensor
        b, a, c = _probabilities(clf, [x, blur_box(x, flag.box), blur_box(x, mirror(flag.box))], class_index)
        before.append(b)
        after.append(a)
        control.append(c)
    n = len(prepared)
    flag.tested = n
    flag.probability_drop = sum(b - a for b, a in zip(before, after)) / n
    flag.control_drop = sum(b - c for b, c in zip(before, control)) / n
    mean = flag.probability_drop
    k = min(range(n), key=lambda i: abs(before[i] - after[i] - mean))
    typical = prepared[k]
    return Example(str(typical.loaded.path), _to_image(clf, typical.tensor),
                   _to_image(clf, blur_box(typical.tensor, flag.box)), before[k], after[k])
