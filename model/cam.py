"""The registry of class activation map methods, with each method's formula.

Every gradient method turns activations ``A`` and gradients ``G = dy_c/dA``
of the target score ``y_c`` (the class's pre-softmax logit), both
``(B, C, h, w)``, into weights ``w`` that are multiplied with ``A`` and summed
over channels; the map is ``ReLU(sum_k w_k * A_k)``.  Channel-wise methods
return ``(B, C, 1, 1)``, element-wise methods ``(B, C, h, w)``.  The formulas
follow the papers and agree with pytorch-grad-cam (tests/model/test_cam_reference.py).

Score-CAM needs no gradient: its weights come from forward passes over the
input masked by each upsampled channel (``score_cam_weights``).  Its fast
variant (``score_cam_fast_weights``) masks the input with a few channel groups
instead of every channel, in bfloat16 where the hardware does it natively.

Importing this module needs no torch (the functions only use tensor methods,
and import ``torch`` when called), so the GUI builds its Method menu from
``METHODS`` before torch is loaded.  Adding a method is one entry in ``METHODS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from model.errors import Cancelled

if TYPE_CHECKING:
    from torch import Tensor


def _gradcam(a: Tensor, g: Tensor) -> Tensor:
    """Grad-CAM (Selvaraju et al.): ``w_k = mean_ij G_k,ij``."""
    return g.mean(dim=(2, 3), keepdim=True)


def _gradcam_pp(a: Tensor, g: Tensor) -> Tensor:
    """Grad-CAM++ (Chattopadhyay et al., eq. 19, exp of the score folded in as the references do):

    ``alpha_k,ij = G^2 / (2 G^2 + sum_ab A_k,ab * G^3)`` (0 where ``G = 0``), ``w_k = sum_ij alpha_k,ij ReLU(G_k,ij)``.
    """
    g2, g3 = g.pow(2), g.pow(3)
    sum_a = a.sum(dim=(2, 3), keepdim=True)
    alpha = (g2 / (2 * g2 + sum_a * g3 + 1e-6)).masked_fill(g == 0, 0.0)
    return (g.clamp_min(0) * alpha).sum(dim=(2, 3), keepdim=True)


def _xgradcam(a: Tensor, g: Tensor) -> Tensor:
    """XGrad-CAM (Fu et al.): ``w_k = sum_ij G_k,ij * A_k,ij / sum_ab A_k,ab``."""
    sum_a = a.sum(dim=(2, 3), keepdim=True)
    return (g * a / (sum_a + 1e-7)).sum(dim=(2, 3), keepdim=True)


def _layercam(a: Tensor, g: Tensor) -> Tensor:
    """LayerCAM (Jiang et al.): element-wise ``w_k,ij = ReLU(G_k,ij)``; sharp maps at early blocks."""
    return g.clamp_min(0)


def _hirescam(a: Tensor, g: Tensor) -> Tensor:
    """HiResCAM (Draelos & Carin): element-wise ``w_k,ij = G_k,ij``; faithful to the score."""
    return g


@dataclass(frozen=True)
class Method:
    """One explanation method.

    ``kind`` is ``gradient`` (``weights(A, G)``) or ``perturbation``
    (``weights(A, x, forward, classes, progress=, cancelled=)``: channel weights
    from masked forward passes, ``passes(C)`` of them for a layer of ``C``
    channels); ``slow`` methods get a progress bar and Cancel in the app;
    ``low_precision`` lets the masked forward passes run in bfloat16 where the
    hardware does it natively (for an approximate method only).
    """

    name: str
    title: str
    kind: str
    slow: bool = False
    weights: Callable | None = None
    passes: Callable[[int], int] | None = None
    low_precision: bool = False

    @property
    def needs_gradients(self) -> bool:
        return self.kind == "gradient"


# Score-CAM (fast): masked forward passes per layer (one per channel group); see score_cam_fast_weights.
# 96 groups (six batches of 16): on DenseNet-121 with matplotlib's photos 48 agree as closely, but a trained
# network spreads its evidence wider: on the demo model's samples the lowest r is 0.48 with 48 groups, 0.81
# with 64 and 0.98 with 96 (docs/BENCHMARKS.md), at 1.3x the time of 64.
SCORE_CAM_FAST_GROUPS = 96


def _score_cam(*args, **kwargs) -> Tensor:
    return score_cam_weights(*args, **kwargs)


def _score_cam_fast(*args, **kwargs) -> Tensor:
    return score_cam_fast_weights(*args, **kwargs)


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("gradcam", "Grad-CAM", "gradient", weights=_gradcam),
    Method("gradcam++", "Grad-CAM++", "gradient", weights=_gradcam_pp),
    Method("xgradcam", "XGrad-CAM", "gradient", weights=_xgradcam),
    Method("layercam", "LayerCAM", "gradient", weights=_layercam),
    Method("hirescam", "HiResCAM", "gradient", weights=_hirescam),
    # The fast variant comes first so that menus offer it first.
    Method("scorecam_fast", "Score-CAM (fast)", "perturbation", slow=True, weights=_score_cam_fast,
           passes=lambda channels: min(channels, SCORE_CAM_FAST_GROUPS), low_precision=True),
    Method("scorecam", "Score-CAM", "perturbation", slow=True, weights=_score_cam,
           passes=lambda channels: channels),
)}


def get_method(name: str) -> Method:
    """The registered method, or a ValueError listing the choices."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}") from None


def combine(activations: Tensor, weights: Tensor) -> Tensor:
    """``ReLU(sum_k w_k A_k)``: ``(B, C, h, w)`` -> ``(B, h, w)`` (activations of one picture serve every row).

    Channel-wise weights ``(B, C, 1, 1)`` are one matrix product per row, ``w (C) @ A (C, h w)``, the same
    call for a row whatever the batch: no ``(B, C, h, w)`` product is written to memory (at DenseNet-121's
    first block that was 3.2 MB a map, fresh pages every time).
    """
    import torch

    if weights.shape[2:] != (1, 1):
        return (weights * activations).sum(dim=1).clamp_min(0)
    rows, channels = weights.shape[:2]
    n, _, h, w = activations.shape
    dtype = torch.promote_types(activations.dtype, weights.dtype)
    flat = activations.flatten(2).to(dtype)  # (n, C, h w): a view of a channels_last map
    matrix = weights.reshape(rows, 1, channels).to(dtype)
    out = torch.stack([matrix[r] @ flat[0 if n == 1 else r] for r in range(rows)])
    return out.view(rows, h, w).clamp_min(0)


def gradient_cam(method: str, activations: Tensor, gradients: Tensor) -> Tensor:
    """Raw map (after ReLU, before normalisation) for a gradient-based method."""
    return combine(activations, get_method(method).weights(activations, gradients))


def score_cam_weights(activations: Tensor, x: Tensor, forward: Callable[[Tensor], Tensor],
                      classes: list[int], batch_size: int = 32,
                      progress: Callable[[int, int], None] | None = None,
                      cancelled: Callable[[], bool] | None = None) -> Tensor:
    """Score-CAM (Wang et al.) channel weights for each class: ``(len(classes), C, 1, 1)``.

    ``M_k`` = channel ``k`` upsampled to the input and min-max normalised;
    ``w_c,k = softmax_k(y_c(x * M_k))``.  The masked forward passes are shared
    by all classes.
    """
    import torch
    import torch.nn.functional as F

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


def _normalised_channels(activations: Tensor) -> Tensor:
    """Each channel of ``(1, C, h, w)`` min-max normalised to [0, 1]: ``(C, h * w)`` (a constant channel is 0)."""
    flat = activations[0].flatten(1).float()
    lo, hi = flat.min(dim=1, keepdim=True).values, flat.max(dim=1, keepdim=True).values
    return (flat - lo) / (hi - lo + 1e-8)


def channel_groups(masks: Tensor, energy: Tensor, groups: int, iterations: int = 30) -> tuple[Tensor, Tensor]:
    """Energy-weighted k-means of channel masks ``(C, d)``: each channel's group ``(C,)``, the group masks ``(G, d)``.

    Deterministic: the first centre is the channel of most energy, each next
    one the channel farthest (energy-weighted) from the centres so far, then
    Lloyd iterations with centres at the energy-weighted means.  With at least
    as many groups as channels every channel is its own group.
    """
    import torch

    c = masks.shape[0]
    if groups >= c:
        return torch.arange(c, device=masks.device), masks
    weight = energy.float() / energy.float().mean().clamp_min(1e-30)
    first = int(weight.argmax())
    chosen = [first]
    distance = ((masks - masks[first]) ** 2).sum(dim=1) * weight
    for _ in range(groups - 1):
        nxt = int(distance.argmax())
        chosen.append(nxt)
        distance = torch.minimum(distance, ((masks - masks[nxt]) ** 2).sum(dim=1) * weight)
    centres = masks[chosen].clone()
    assign = torch.cdist(masks, centres).argmin(dim=1)
    for _ in range(iterations):
        sums = torch.zeros_like(centres).index_add_(0, assign, masks * weight[:, None])
        mass = torch.zeros(groups, device=masks.device).index_add_(0, assign, weight)
        kept = mass > 0
        centres[kept] = sums[kept] / mass[kept, None]
        new_assign = torch.cdist(masks, centres).argmin(dim=1)
        if torch.equal(new_assign, assign):
            break
        assign = new_assign
    return assign, centres


def score_cam_fast_weights(activations: Tensor, x: Tensor, forward: Callable[[Tensor], Tensor],
                           classes: list[int], groups: int = SCORE_CAM_FAST_GROUPS, batch_size: int = 16,
                           progress: Callable[[int, int], None] | None = None,
                           cancelled: Callable[[], bool] | None = None) -> Tensor:
    """Score-CAM with one masked forward pass per channel group instead of per channel: ``(len(classes), C, 1, 1)``.

    Channels whose normalised maps look alike get alike scores, so the
    channels are grouped (``channel_groups``: k-means of the min-max normalised
    maps, weighted by each channel's activation energy ``sum A_k^2`` so that the
    channels that dominate the map get groups of their own), the input is
    masked by each group's mean map (upsampled bilinearly, corners aligned)
    and every channel takes its group's score: ``w_c,k = softmax_k(y_c(x * M_g(k)))``.
    The map is then ``ReLU(sum_k w_k A_k)`` over every channel, as in Score-CAM.
    With at least as many groups as channels it is Score-CAM (masks normalised
    at the feature map's resolution).
    """
    import torch
    import torch.nn.functional as F

    _, c, h, w = activations.shape
    masks = _normalised_channels(activations)
    energy = activations[0].flatten(1).float().pow(2).sum(dim=1)
    assign, centres = channel_groups(masks, energy, groups)
    total = centres.shape[0]
    scores = torch.empty(len(classes), total)
    index = torch.tensor(classes)
    for start in range(0, total, batch_size):
        if cancelled and cancelled():
            raise Cancelled("Score-CAM cancelled")
        chunk = F.interpolate(centres[start:start + batch_size].view(-1, 1, h, w).to(x.dtype), size=x.shape[-2:],
                              mode="bilinear", align_corners=True)
        logits = forward(x * chunk)
        scores[:, start:start + len(chunk)] = logits[:, index].T.float().cpu()
        if progress:
            progress(min(start + batch_size, total), total)
    return torch.softmax(scores[:, assign.cpu()], dim=1)[:, :, None, None]
