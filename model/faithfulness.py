"""How far to trust a heatmap: deletion/insertion AUC and confidence with the top 20% kept.

* Deletion (Petsiuk et al., RISE): remove pixels in heatmap order, most heat
  first, and follow the class probability; a faithful map makes it fall fast
  (low AUC is good).
* Insertion: reveal pixels in the same order over a blurred copy; a faithful
  map makes the probability rise fast (high AUC is good).
* Top 20%: keep only the hottest 20% of pixels (rest at the dataset mean) and
  compare the probability with the original's (as in the Grad-CAM++ paper's
  Average Drop / Increase in Confidence).

All variants of the image go through the network in batches.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from model.classifier import DenseNetClassifier

STEPS = 16
KEEP_FRACTION = 0.2


@dataclass(frozen=True)
class Faithfulness:
    deletion_auc: float
    insertion_auc: float
    probability: float
    probability_top20: float
    confidence_change_top20: float  # probability_top20 - probability

    def to_dict(self) -> dict:
        return {k: round(v, 6) for k, v in asdict(self).items()}


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1),
                 groups=c)
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1),
                    groups=c)


def _auc(values: np.ndarray) -> float:
    return float(((values[:-1] + values[1:]) / 2).mean())


def faithfulness(clf: DenseNetClassifier, x: torch.Tensor, heat: np.ndarray, class_index: int,
                 steps: int = STEPS, batch_size: int = 8) -> Faithfulness:
    """Figures for ``heat`` (analysed resolution, any scale) explaining ``class_index`` on input ``x`` (1,3,H,W)."""
    _, _, h, w = x.shape
    if heat.shape != (h, w):
        raise ValueError(f"heatmap {heat.shape} does not match the analysed image {(h, w)}")
    order = torch.from_numpy(np.argsort(-heat.ravel(), kind="stable").copy())
    rank = torch.empty(h * w, dtype=torch.long)
    rank[order] = torch.arange(h * w)
    rank = rank.view(1, 1, h, w)
    x = x.float().cpu()
    blurred = _blur(x, sigma=max(h, w) / 20)
    mean = torch.zeros_like(x)  # inputs are normalised: zero is the dataset mean colour

    def variants(counts):
        deleted = [torch.where(rank < n, mean, x) for n in counts]
        inserted = [torch.where(rank < n, x, blurred) for n in counts]
        return deleted, inserted

    counts = [round(i * h * w / steps) for i in range(steps + 1)]
    deleted, inserted = variants(counts)
    top_kept = torch.where(rank < round(KEEP_FRACTION * h * w), x, mean)
    batch = torch.cat([*deleted, *inserted, top_kept])
    probs = []
    for start in range(0, len(batch), batch_size):
        logits = clf.logits(batch[start:start + batch_size])
        probs.append(torch.softmax(logits.float(), dim=1)[:, class_index].cpu())
    p = torch.cat(probs).numpy()
    n = steps + 1
    deletion, insertion, kept = p[:n], p[n:2 * n], float(p[-1])
    original = float(deletion[0])
    return Faithfulness(_auc(deletion), _auc(insertion), original, kept, kept - original)
