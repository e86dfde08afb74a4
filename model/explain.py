"""The explanation engine: one forward pass, maps for any layers and classes.

``ImageAnalysis`` runs the network once with the requested taps and reads
the top-k predictions off that pass.  The gradients of each target logit with
respect to the tapped feature maps come from ``model.gradients``: in closed
form at ``norm5`` and the last dense block, by a hand-written backward (all
classes asked for at once) further down.  A network of another structure goes
through autograd, asked for the gradients of the tapped maps only (parameters
never require grad); that path is also the reference the fast one is tested
against.  The analysis keeps its pass for more maps of the same picture (the
app's class, layer and method switches); ``explain`` is the one-shot form and
``explain_batch`` explains many same-size pictures a batch at a time.  No hooks
are installed anywhere, and everything is released with the analysis.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from model import gradients
from model.cam import Method, combine, get_method, gradient_cam
from model.fused_layers import one_product_per_batch
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
        elif isinstance(spec, str) and (named := _label_index(labels, spec)) is not None:
            found = [named]
        else:
            close = difflib.get_close_matches(str(spec), labels, n=5, cutoff=0.5)
            hint = f"; did you mean: {', '.join(close)}" if close else ""
            raise ValueError(f"unknown class {spec!r}: give topK, an index 0..{len(labels) - 1} "
                             f"or a class name{hint}")
        result.extend(i for i in found if i not in result)
    return result


def _label_index(labels: Sequence[str], name: str) -> int | None:
    """The index of the label ``name`` in any case (the last of equal labels), or None.

    Looked up only for a class asked for by name: a top-k or index request (every class switch in the app)
    no longer lowers all 1,000 ImageNet labels (0.5 ms a call).
    """
    wanted = name.lower()
    found = None
    for i, label in enumerate(labels):
        if label.lower() == wanted:
            found = i
    return found


def default_layer(tap_names: Sequence[str]) -> str:
    """The deepest dense block (``denseblock4`` for ImageNet DenseNets)."""
    return [n for n in tap_names if n.startswith("denseblock")][-1]


# Classes carried by one hand-written backward sweep (the classes are its batch): top-5 at all four blocks of
# DenseNet-121 costs 2.8x a forward pass this way against 3.6x one class per sweep (bench/bench_explain.py);
# larger batches only grow the memory (every block's gradient is held per class).
CLASS_BATCH = 8


def low_precision_dtype(device: torch.device) -> torch.dtype | None:
    """bfloat16 where the hardware runs it natively (CPUs with AVX512-BF16 or AMX, CUDA with bf16), else None."""
    try:
        if device.type == "cpu":
            return torch.bfloat16 if torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported() \
                else None
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    except (AttributeError, RuntimeError):  # a torch without these probes: stay in float32
        return None
    return None


class ImageAnalysis:
    """One picture's forward pass, kept so that more maps cost no new decode and no new forward.

    The network runs once on the prepared picture in inference mode, keeping
    the requested taps and the ReLU outputs a backward needs
    (``model.gradients.record``).  Each map then needs only what it adds: a
    gradient method one hand-written backward for all the classes asked for,
    from the head down to the deepest layer asked for, none at all at
    ``norm5`` and the last dense block (closed form); the gradients are kept
    per (layer, class), so switching method is a few tensor operations.
    Score-CAM and its fast variant run their masked forward passes, kept per
    (layer, class, method).  With ``autograd=True`` (or a network
    ``model.gradients`` does not support) the pass keeps an autograd graph
    from the earliest tap instead and each class costs one
    ``torch.autograd.grad``.  Everything is released with this object (one
    picture's worth).
    """

    def __init__(self, clf: DenseNetClassifier, prepared: Prepared, taps: Sequence[str] | None = None,
                 autograd: bool = False) -> None:
        self.clf = clf
        self.prepared = prepared
        valid = clf.model.tap_names
        wanted = list(taps) if taps else list(valid)
        bad = [name for name in wanted if name not in valid]
        if bad:
            raise ValueError(f"unknown layer(s) {', '.join(bad)}; choose from {', '.join(valid)}")
        self.taps = sorted(dict.fromkeys(wanted), key=valid.index)
        self.autograd = autograd or not clf.gradient_plan.supported
        self._gradients: dict[tuple[str, int], torch.Tensor] = {}
        self._raws: dict[tuple[str, int, str], np.ndarray] = {}
        clf.run_with_fallback(self._forward)

    def _forward(self) -> None:
        self.device = self.clf.device
        self._gradients.clear()
        self.x = self.clf.batch([self.prepared.tensor])
        if self.autograd:
            with torch.enable_grad():
                self._logits, self._activations = self.clf.model.forward_with_taps(self.x, self.taps,
                                                                                   grad_taps=True)
        else:
            self._recording = gradients.record(self.clf.model, self.x, self.taps, self.clf.gradient_plan)
            self._logits, self._activations = self._recording.logits, self._recording.taps
        self.scores = self._logits.detach()[0].float().cpu()
        self.probabilities = torch.softmax(self.scores, dim=0)

    def predictions(self, topk: int = 5) -> list[Prediction]:
        return self.clf.top_predictions(self.scores[None], max(topk, 1))[0]

    def explain(self, layers: Sequence[str] | None = None, classes: Sequence[ClassSpec] | None = None,
                method: str = "gradcam", topk: int = 5, progress: Callable[[int, int], None] | None = None,
                cancelled: Callable[[], bool] | None = None) -> Explanation:
        """Maps for every (layer, class); see ``DenseNetClassifier.explain``."""
        spec = get_method(method)
        layers = list(dict.fromkeys(layers or [default_layer(self.clf.model.tap_names)]))
        bad = [name for name in layers if name not in self.taps]
        if bad:
            raise ValueError(f"unknown layer(s) {', '.join(bad)}; choose from {', '.join(self.taps)}")
        predictions = self.predictions(topk)
        targets = resolve_classes(classes, predictions, self.clf.labels)
        missing = [(layer, t) for layer in layers for t in targets if (layer, t, spec.name) not in self._raws]
        if missing:
            def compute() -> None:
                if self.device != self.clf.device:  # moved to the CPU after running out of memory
                    self._forward()
                if spec.needs_gradients:
                    self._gradient_maps(spec.name, missing)
                else:
                    self._score_maps(spec, missing, progress, cancelled)
            self.clf.run_with_fallback(compute)
        maps = [layer_class_map(self.clf, layer, target, self._raws[(layer, target, spec.name)],
                                self.scores, self.probabilities, self.prepared.geometry)
                for layer in layers for target in targets]
        return Explanation(predictions, maps, spec.name, self.prepared)

    def _gradient_maps(self, method: str, wanted: list[tuple[str, int]]) -> None:
        need = [(layer, t) for layer, t in wanted if (layer, t) not in self._gradients]
        if need and self.autograd:
            for target in dict.fromkeys(t for _, t in need):
                layers = [layer for layer, t in need if t == target]
                grads = torch.autograd.grad(self._logits[0, target], [self._activations[n] for n in layers],
                                            retain_graph=True)
                self._gradients.update({(n, target): g for n, g in zip(layers, grads)})
        elif need:
            layers = list(dict.fromkeys(layer for layer, _ in need))
            targets = list(dict.fromkeys(t for _, t in need))
            for start in range(0, len(targets), CLASS_BATCH):
                chunk = targets[start:start + CLASS_BATCH]
                grads = gradients.tap_gradients(self.clf.model, self._recording, layers, chunk)
                self._gradients.update({(n, t): grads[n][row:row + 1] for n in layers for row, t in enumerate(chunk)})
        for layer, target in wanted:
            a = self._activations[layer].detach()
            raw = gradient_cam(method, a, self._gradients[(layer, target)])
            self._raws[(layer, target, method)] = raw[0].float().cpu().numpy()

    def _score_maps(self, spec: Method, wanted: list[tuple[str, int]], progress, cancelled) -> None:
        layers = list(dict.fromkeys(layer for layer, _ in wanted))
        total = sum(spec.passes(self._activations[name].shape[1]) for name in layers)
        dtype = low_precision_dtype(self.clf.device) if spec.low_precision else None
        net = self.clf.reduced_precision_model(dtype) if dtype else self.clf.model
        done_before = 0

        def forward(batch: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode(), one_product_per_batch():
                return net(batch.to(dtype or batch.dtype, memory_format=torch.channels_last)).float()

        for name in layers:
            a = self._activations[name].detach()
            targets = [t for layer, t in wanted if layer == name]

            def report(done: int, _total: int, base: int = done_before) -> None:
                if progress:
                    progress(base + done, total)

            weights = spec.weights(a, self.x, forward, targets, progress=report, cancelled=cancelled)
            for target, w in zip(targets, weights):
                self._raws[(name, target, spec.name)] = combine(a, w[None].to(a.device))[0].float().cpu().numpy()
            done_before += spec.passes(a.shape[1])


def layer_class_map(clf: DenseNetClassifier, layer: str, target: int, raw: np.ndarray, scores: torch.Tensor,
                    probabilities: torch.Tensor, geometry: Geometry) -> LayerClassMap:
    """A raw map with its status, its normalised upsampled form and its class's label, score and probability."""
    status = classify_map(raw)
    norm = normalise(raw) if status == "ok" else np.zeros_like(raw)
    return LayerClassMap(layer, target, clf.labels[target], float(probabilities[target]), float(scores[target]),
                         raw, upsample(norm, geometry.analysed_size), status, geometry)


def explain(clf: DenseNetClassifier, prepared: Prepared, layers: Sequence[str] | None = None,
            classes: Sequence[ClassSpec] | None = None, method: str = "gradcam", topk: int = 5,
            progress: Callable[[int, int], None] | None = None,
            cancelled: Callable[[], bool] | None = None) -> Explanation:
    """Maps for every (layer, class) from one forward pass tapped at just those layers."""
    get_method(method)  # an unknown method fails before any work
    layers = list(dict.fromkeys(layers or [default_layer(clf.model.tap_names)]))
    analysis = ImageAnalysis(clf, prepared, layers)
    return analysis.explain(layers, classes, method, topk, progress, cancelled)


def explain_batch(clf: DenseNetClassifier, prepared: Sequence[Prepared], method: str = "gradcam", topk: int = 5,
                  batch_size: int = 8, layer: str | None = None,
                  classes: Sequence[int | None] | None = None) -> list[Explanation]:
    """The top class's map at the deepest dense block (or ``layer``, ``norm5`` or the last block) for each picture.

    ``classes``: per picture, the class to explain instead of its top class
    (None keeps the top class).

    Consecutive pictures of the same analysed size go through the network
    ``batch_size`` at a time; their gradients are in closed form (no backward
    pass), one row per picture.  Each result is what ``explain(clf, p,
    method=method, topk=topk)`` gives for that picture, up to float rounding
    (a batched convolution may sum in another order).  A gradient method only;
    a network ``model.gradients`` does not support is explained one picture at
    a time.
    """
    spec = get_method(method)
    if not spec.needs_gradients:
        raise ValueError(f"{spec.title} is not a gradient method; explain_batch serves gradient methods only")
    taps = clf.model.tap_names
    layer = layer or default_layer(taps)
    if layer not in taps[-2:]:
        raise ValueError(f"explain_batch explains {taps[-2]} or norm5 (closed-form gradients), not {layer}")
    wanted = list(classes) if classes is not None else [None] * len(prepared)
    if not clf.gradient_plan.supported:
        return [explain(clf, p, [layer], None if c is None else [c], method, topk) for p, c in zip(prepared, wanted)]
    results: list[Explanation] = []
    start = 0
    while start < len(prepared):
        shape = prepared[start].tensor.shape
        stop = start + 1
        while stop < len(prepared) and stop - start < batch_size and prepared[stop].tensor.shape == shape:
            stop += 1
        results.extend(clf.run_with_fallback(lambda group=prepared[start:stop], chosen=wanted[start:stop]:
                                             _explain_group(clf, group, layer, spec.name, topk, chosen)))
        start = stop
    return results


def _explain_group(clf: DenseNetClassifier, group: Sequence[Prepared], layer: str, method: str,
                   topk: int, chosen: Sequence[int | None]) -> list[Explanation]:
    recording = gradients.record(clf.model, clf.batch([p.tensor for p in group]), [layer], clf.gradient_plan)
    scores = recording.logits.float().cpu()
    probabilities = torch.softmax(scores, dim=1)
    predictions = clf.top_predictions(scores, max(topk, 1))
    tops = [p[0].index if c is None else int(c) for p, c in zip(predictions, chosen)]
    grads = gradients.tap_gradients(clf.model, recording, [layer], tops, samples=range(len(group)))[layer]
    raws = gradient_cam(method, recording.taps[layer], grads).float().cpu().numpy()
    return [Explanation(predictions[i], [layer_class_map(clf, layer, tops[i], raws[i], scores[i], probabilities[i],
                                                         p.geometry)], method, p)
            for i, p in enumerate(group)]
