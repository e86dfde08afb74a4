"""Class activation map methods: how each one weights a feature map.

Every method turns activations ``A`` and gradients ``G`` of the target score
(the class's pre-softmax logit), both ``(B, C, h, w)``, into weights that are
multiplied with ``A`` and summed over channels; the map is the ReLU of that
sum.  Channel-wise methods return ``(B, C, 1, 1)``, element-wise methods
``(B, C, h, w)``.  The formulas follow the papers and agree with
pytorch-grad-cam (see tests/model/test_cam_reference.py).

Score-CAM needs no gradient: its weights come from forward passes over the
input masked by each upsampled channel (``score_cam_weights``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from model.choices import METHOD_TITLES, METHODS  # noqa: F401 - re-exported
from model.errors import Cancelled


def _gradcam(a: Tensor, g: Tensor) -> Tensor:
    # Selvaraju et al.: alpha_k = spatial mean of dY/dA_k.
    return g.mean(dim=(2, 3), keepdim=True)


def _gradcam_pp(a: Tensor, g: Tensor) -> Tensor:
    # Chattopadhyay et al., eq. 19, with the exponential of the score folded in
    # as in the reference implementations; positive gradients only.
    g2, g3 = g.pow(2), g.pow(3)
    sum_a = a.sum(dim=(2, 3), keepdim=True)
    alpha = g2 / (2 * g2 + sum_a * g3 + 1e-6)
    alpha = torch.where(g != 0, alpha, torch.zeros_like(alpha))
    return (F.relu(g) * alpha).sum(dim=(2, 3), keepdim=True)


def _xgradcam(a: Tensor, g: Tensor) -> Tensor:
    # Fu et al.: gradients weighted by normalised activations.
    sum_a = a.sum(dim=(2, 3), keepdim=True)
    return (g * a / (sum_a + 1e-7)).sum(dim=(2, 3), keepdim=True)


def _layercam(a: Tensor, g: Tensor) -> Tensor:
    # Jiang et al.: element-wise positive gradients; sharp maps at early blocks.
    return F.relu(g)


def _hirescam(a: Tensor, g: Tensor) -> Tensor:
    # Draelos & Carin: element-wise gradients, faithful to the score.
    return g


GRADIENT_METHODS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "gradcam": _gradcam,
    "gradcam++": _gradcam_pp,
    "xgradcam": _xgradcam,
    "layercam": _layercam,
    "hirescam": _hirescam,
}


def combine(activations: Tensor, weights: Tensor) -> Tensor:
    """ReLU of the weighted channel sum: ``(B, C, h, w)`` -> ``(B, h, w)``."""
    return F.relu((weights * activations).sum(dim=1))


def gradient_cam(method: str, activations: Tensor, gradients: Tensor) -> Tensor:
    """Raw map (after ReLU, before normalisation) for a gradient-based method."""
    return combine(activations, GRADIENT_METHODS[method](activations, gradients))


def score_cam_weights(activations: Tensor, x: Tensor, forward: Callable[[Tensor], Tensor],
                      classes: list[int], batch_size: int = 32,
                      progress: Callable[[int, int], None] | None = None,
                      cancelled: Callable[[], bool] | None = None) -> Tensor:
    """Score-CAM (Wang et al.) channel weights for each class: ``(len(classes), C, 1, 1)``.

    Each channel, upsampled to the input and min-max normalised, masks the
    input; the class logits of the masked inputs, softmaxed over channels,
    are the weights.  The masked forward passes are shared by all classes.
    """
    _, c, _, _ = activations.shape
    masks = F.interpolate(activations, size=x.shape[-2:], mode="bilinear", align_corners=True)[0]
    flat = masks.flatten(1)
    lo, hi = flat.min(dim=1).values, flat.max(dim=1).values
    masks = (masks - lo[:, None, None]) / (hi - lo + 1e-8)[:, None, None]
    scores = torch.empty(len(classes), c)
    index = torch.tensor(classes)
    for start in range(0, c, batch_size):
        if cancelled and cancelled():
            raise Cancelled("Score-CAM cancelled")
        chunk = masks[start:start + batch_size]
        logits = forward(x * chunk[:, None])
        scores[:, start:start + len(chunk)] = logits[:, index].T.float().cpu()
        if progress:
            progress(min(start + batch_size, c), c)
    return torch.softmax(scores, dim=1)[:, :, None, None]
