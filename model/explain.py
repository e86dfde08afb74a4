"""The explanation engine: one forward pass, maps for any layers and classes.

``explain`` runs the network once with the requested taps cut from the graph
(parameters never require grad), reads the top-k predictions off that pass,
and asks autograd for the gradients of each target logit with respect to the
tapped feature maps only.  The graph is released when the call returns; no
hooks are installed anywhere.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from model.cam import GRADIENT_METHODS, METHODS, combine, gradient_cam, score_cam_weights
from model.preprocess import Geometry

if TYPE_CHECKING:
    from model.classifier import DenseNetClassifier, Prediction, Prepared

ClassSpec = "int | str"


@dataclass
class LayerClassMap:
    """One heatmap: a (layer, class) pair.

    ``raw`` is at feature-map resolution, after ReLU and before any
    normalisation.  ``analysed`` is min-max normalised to [0, 1] and
    upsampled (bilinear) to the analysed image.  ``status`` is ``ok``,
    ``empty`` (no positive evidence: the map is zero everywhere) or
    ``invalid`` (NaN or infinite values); only ``ok`` maps are rendered.
    """

    layer: str
    class_index: int
    label: str
    probability: float
    score: float
    raw: np.ndarray
    analysed: np.ndarray
    status: str
    geometry: Geometry
    metrics: dict | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def status_message(self) -> str:
        return {
            "ok": "",
            "empty": f"{self.layer}: no positive evidence for '{self.label}' (the map is zero everywhere)",
            "invalid": f"{self.layer}: the map for '{self.label}' holds NaN or infinite values",
        }[self.status]

    def on_original(self) -> np.ndarray:
        """The normalised map on the original picture's pixel grid (zero outside the analysed region)."""
        return place_on_original(normalise(self.raw) if self.ok else np.zeros_like(self.raw), self.geometry)


@dataclass
class Explanation:
    """Predictions from the explaining pass and one map per (layer, class)."""

    predictions: list[Prediction]
    maps: list[LayerClassMap]
    method: str
    prepared: Prepared
    warnings: list[str] = field(default_factory=list)

    def get(self, layer: str, class_index: int) -> LayerClassMap:
        for m in self.maps:
            if m.layer == layer and m.class_index == class_index:
                return m
        raise KeyError((layer, class_index))


def normalise(raw: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1]; a constant or non-finite map becomes zeros, never full heat."""
    if not np.isfinite(raw).all():
        return np.zeros_like(raw, dtype=np.float32)
    lo, hi = float(raw.min()), float(raw.max())
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):
        return np.zeros_like(raw, dtype=np.float32)
    return ((raw - lo) / (hi - lo)).astype(np.float32)


def classify_map(raw: np.ndarray) -> str:
    if not np.isfinite(raw).all():
        return "invalid"
    return "ok" if float(raw.max()) > 0 else "empty"


def upsample(norm: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """Bilinear (half-pixel centres) resize of a 2-D map to (width, height)."""
    t = torch.from_numpy(np.ascontiguousarray(norm, dtype=np.float32))[None, None]
    out = F.interpolate(t, size=(size_wh[1], size_wh[0]), mode="bilinear", align_corners=False)
    return out[0, 0].clamp_(0, 1).numpy()


def place_on_original(norm: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Upsample a normalised map onto the analysed region of the original picture."""
    w, h = geometry.original_size
    left, top, right, bottom = (round(v) for v in geometry.crop_box)
    left, top = max(0, left), max(0, top)
    right, bottom = min(w, max(right, left + 1)), min(h, max(bottom, top + 1))
    canvas = np.zeros((h, w), dtype=np.float32)
    canvas[top:bottom, left:right] = upsample(norm, (right - left, bottom - top))
    return canvas


def resolve_classes(specs: Sequence[ClassSpec] | None, predictions: list[Prediction],
                    labels: Sequence[str]) -> list[int]:
    """Turn ``top1``, ``top3``, an index or a label into class indices (in order, no repeats)."""
    specs = list(specs) if specs else ["top1"]
    result: list[int] = []
    lowered = {name.lower(): i for i, name in enumerate(labels)}
    for spec in specs:
        if isinstance(spec, (int, np.integer)) or (isinstance(spec, str) and spec.strip().isdigit()):
            index = int(spec)
            if not 0 <= index < len(labels):
                raise ValueError(f"class index {index} is out of range 0..{len(labels) - 1}")
            found = [index]
        elif isinstance(spec, str) and spec.lower().startswith("top") and spec[3:].isdigit():
            k = int(spec[3:])
            if k < 1:
                raise ValueError(f"{spec}: use top1 or more")
            found = [p.index for p in predictions[:k]]
            if k > len(predictions):
                raise ValueError(f"{spec}: only the top {len(predictions)} predictions were computed")
        elif isinstance(spec, str) and spec.lower() in lowered:
            found = [lowered[spec.lower()]]
        else:
            close = difflib.get_close_matches(str(spec), labels, n=5, cutoff=0.5)
            hint = f"; did you mean: {', '.join(close)}" if close else ""
            raise ValueError(f"unknown class {spec!r}: give topK, an index 0..{len(labels) - 1} "
                             f"or a class name{hint}")
        result.extend(i for i in found if i not in result)
    return result


def default_layer(tap_names: Sequence[str]) -> str:
    """The deepest dense block (``denseblock4`` for ImageNet DenseNets)."""
    return [n for n in tap_names if n.startswith("denseblock")][-1]


def explain(clf: DenseNetClassifier, prepared: Prepared, layers: Sequence[str] | None = None,
            classes: Sequence[ClassSpec] | None = None, method: str = "gradcam", topk: int = 5,
            progress: Callable[[int, int], None] | None = None,
            cancelled: Callable[[], bool] | None = None) -> Explanation:
    """Maps for every (layer, class) from one forward pass; see ``DenseNetClassifier.explain``."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    valid = clf.model.tap_names
    layers = list(dict.fromkeys(layers or [default_layer(valid)]))
    bad = [name for name in layers if name not in valid]
    if bad:
        raise ValueError(f"unknown layer(s) {', '.join(bad)}; choose from {', '.join(valid)}")
    order = sorted(layers, key=valid.index)

    def run():
        x = clf.batch([prepared.tensor])
        with torch.enable_grad():
            logits, taps = clf.model.forward_with_taps(x, order, grad_taps=method in GRADIENT_METHODS)
            scores = logits.detach()[0].float().cpu()
            predictions = clf.top_predictions(scores[None], max(topk, 1))[0]
            targets = resolve_classes(classes, predictions, clf.labels)
            if method in GRADIENT_METHODS:
                raws = _gradient_maps(method, logits, taps, order, targets)
            else:
                del logits
                raws = _score_maps(clf, x, {k: v.detach() for k, v in taps.items()}, order, targets,
                                   progress, cancelled)
        return scores, predictions, targets, raws

    scores, predictions, targets, raws = clf.run_with_fallback(run)
    probabilities = torch.softmax(scores, dim=0)
    maps = []
    for layer in layers:
        for target in targets:
            raw = raws[(layer, target)]
            status = classify_map(raw)
            norm = normalise(raw) if status == "ok" else np.zeros_like(raw)
            maps.append(LayerClassMap(layer, target, clf.labels[target], float(probabilities[target]),
                                      float(scores[target]), raw,
                                      upsample(norm, prepared.geometry.analysed_size), status,
                                      prepared.geometry))
    return Explanation(predictions, maps, method, prepared)


def _gradient_maps(method, logits, taps, order, targets) -> dict[tuple[str, int], np.ndarray]:
    raws = {}
    tensors = [taps[name] for name in order]
    for n, target in enumerate(targets):
        grads = torch.autograd.grad(logits[0, target], tensors, retain_graph=n < len(targets) - 1)
        for name, a, g in zip(order, tensors, grads):
            raws[(name, target)] = gradient_cam(method, a.detach(), g)[0].float().cpu().numpy()
    return raws


def _score_maps(clf, x, taps, order, targets, progress, cancelled) -> dict[tuple[str, int], np.ndarray]:
    total = sum(taps[name].shape[1] for name in order)
    done_before = 0
    raws = {}

    def forward(batch):
        with torch.inference_mode():
            return clf.model(batch.contiguous(memory_format=torch.channels_last))

    for name in order:
        a = taps[name]

        def report(done, _total, base=done_before):
            if progress:
                progress(base + done, total)

        weights = score_cam_weights(a, x, forward, targets, progress=report, cancelled=cancelled)
        for target, w in zip(targets, weights):
            raws[(name, target)] = combine(a, w[None].to(a.device))[0].float().cpu().numpy()
        done_before += a.shape[1]
    return raws
