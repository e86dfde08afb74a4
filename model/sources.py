"""Which layer's features carry the evidence: a dense block's heatmap split by source.

A dense block's output is the concatenation of its input and each layer's ``k`` new channels,
``A = [A^(0) | A^(1) | ... | A^(L)]``: source 0 (``input``) holds channels ``[0, c_in)``, source ``l``
(``denselayer<l>``) channels ``[c_in + (l-1)k, c_in + lk)``.  A gradient method's map before its ReLU is
a sum over channels, so it splits exactly into one part per source::

    M = sum_c w_c * A_c = sum_s P_s,        P_s = sum_{c in s} w_c * A_c

(``w_c`` is one number per channel for Grad-CAM, Grad-CAM++ and XGrad-CAM, a map for the element-wise
LayerCAM and HiResCAM; the product is element-wise either way).  The heatmap is ``ReLU(M)``.  A source's
share of the evidence is its part summed over the positions where the heatmap is positive, divided by
the whole positive evidence::

    share_s = sum_{ij: M_ij > 0} P_s,ij / sum_{ij: M_ij > 0} M_ij

The shares of a block's sources sum to 1.  A share is negative where a source argues against the class
inside the heat, and then another one exceeds 1.  With no positive evidence (an empty heatmap, or positive
values below ``NEGLIGIBLE`` times the summed ``|P_s|``: rounding) the shares are undefined: ``None``.
The outputs of transitions and ``norm5`` mix their inputs through a convolution or a ReLU, so only dense
blocks split this way.

``split_sources`` runs its own forward pass (the taps cut from the graph, parameters frozen) and one
backward pass per class, asking autograd for the tapped maps only; ``export_sources`` writes an overlay
per source (and, with ``raw``, each signed part as ``.npy``) named like the other heatmap files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from model.cam import get_method
from model.explain import LayerClassMap, classify_map, normalise, resolve_classes, upsample

if TYPE_CHECKING:
    from model.classifier import DenseNetClassifier, Prepared
    from model.densenet import DenseNetConfig
    from model.explain import Explanation
    from model.export import OutputNames
    from model.preprocess import Geometry

INPUT = "input"
NEGLIGIBLE = 1e-6  # positive evidence below this fraction of all |contributions| is rounding, not evidence


@dataclass(frozen=True)
class Source:
    """One source of a dense block's output: its name and channels ``[start, end)``."""

    name: str
    start: int
    end: int


def dense_blocks(config: DenseNetConfig) -> list[str]:
    return [f"denseblock{i + 1}" for i in range(len(config.block_config))]


def block_sources(config: DenseNetConfig, layer: str) -> list[Source]:
    """The sources of a dense block's output in channel order; a ValueError for any other layer."""
    blocks = dense_blocks(config)
    if layer not in blocks:
        raise ValueError(f"{layer!r} is not a dense block: only a dense block's output is a concatenation of "
                         f"its sources; choose from {', '.join(blocks)}")
    i = blocks.index(layer)
    c_in, c_out = config.block_channels()[i]
    k = config.growth_rate
    sources = [Source(INPUT, 0, c_in)]
    sources += [Source(f"denselayer{n}", c_in + (n - 1) * k, c_in + n * k)
                for n in range(1, config.block_config[i] + 1)]
    assert sources[-1].end == c_out
    return sources


def split_by_source(activations: torch.Tensor, weights: torch.Tensor, sources: Sequence[Source]) -> torch.Tensor:
    """``(B, C, h, w)`` activations and ``(B, C, 1, 1)`` or ``(B, C, h, w)`` weights -> ``(B, S, h, w)`` parts."""
    if activations.shape[1] != sources[-1].end:
        raise ValueError(f"the map has {activations.shape[1]} channels, the sources {sources[-1].end}")
    contributions = weights * activations
    return torch.stack([contributions[:, s.start:s.end].sum(dim=1) for s in sources], dim=1)


def evidence_shares(parts: np.ndarray) -> list[float] | None:
    """Each part's share of the positive evidence (see the module docstring); None without any."""
    parts = np.asarray(parts, dtype=np.float64)
    if not np.isfinite(parts).all():
        return None
    full = parts.sum(axis=0)
    positive = full > 0
    total = float(full[positive].sum())
    if total <= NEGLIGIBLE * float(np.abs(parts).sum()) or total <= 0:
        return None
    return [float(v) for v in parts[:, positive].sum(axis=1) / total]


@dataclass
class SourceSplit:
    """One (dense block, class) map split by source: ``parts`` ``(S, h, w)`` float32, before any ReLU."""

    layer: str
    class_index: int
    label: str
    probability: float
    score: float
    method: str
    sources: list[Source]
    parts: np.ndarray
    shares: list[float] | None
    geometry: Geometry

    @property
    def full(self) -> np.ndarray:
        """The block's map before ReLU: the sum of the parts."""
        return self.parts.sum(axis=0)

    @property
    def status(self) -> str:
        """``ok``, ``empty`` (no positive evidence: no shares) or ``invalid`` (NaN or infinite values)."""
        if not np.isfinite(self.parts).all():
            return "invalid"
        return "ok" if self.shares is not None else "empty"

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sources]

    def source_map(self, i: int) -> LayerClassMap:
        """Source ``i``'s positive part as a heatmap named ``<block>.<source>`` (normalised on its own when shown,
        like every map; its share says how much it weighs), for ``model.display.heat_view`` or export."""
        raw = np.maximum(self.parts[i], 0).astype(np.float32)
        status = classify_map(raw)
        norm = normalise(raw) if status == "ok" else np.zeros_like(raw)
        return LayerClassMap(f"{self.layer}.{self.sources[i].name}", self.class_index, self.label, self.probability,
                             self.score, raw, upsample(norm, self.geometry.analysed_size), status, self.geometry)

    def to_dict(self) -> dict:
        """Plain data (no arrays): what a summary, a JSON record or a GUI panel needs."""
        shares = self.shares or [None] * len(self.sources)
        return {"layer": self.layer, "class_index": self.class_index, "label": self.label, "method": self.method,
                "status": self.status,
                "sources": [{"source": s.name, "channels": [s.start, s.end], "share": share}
                            for s, share in zip(self.sources, shares)]}


def split_sources(clf: DenseNetClassifier, prepared: Prepared, layers: Sequence[str],
                  classes: Sequence[int | str] | None = None, method: str = "gradcam") -> list[SourceSplit]:
    """Each (dense block, class) map of a gradient method split by source, from one forward pass.

    ``classes`` as for ``DenseNetClassifier.explain`` (None: the top class).  A ValueError for a layer that
    is not a dense block or a method without gradients (Score-CAM).
    """
    spec = get_method(method)
    if not spec.needs_gradients:
        raise ValueError(f"{spec.title} has no gradients to split by source; use a gradient method")
    layers = list(dict.fromkeys(layers))
    if not layers:
        raise ValueError("no dense block given to split by source")
    sources = {layer: block_sources(clf.config, layer) for layer in layers}

    def compute() -> list[SourceSplit]:
        x = clf.batch([prepared.tensor])
        with torch.enable_grad():
            logits, taps = clf.model.forward_with_taps(x, layers, grad_taps=True)
        scores = logits.detach()[0].float().cpu()
        probabilities = torch.softmax(scores, dim=0)
        predictions = clf.top_predictions(scores[None], len(clf.labels))[0]
        targets = resolve_classes(classes, predictions, clf.labels)
        splits = []
        for target in targets:
            grads = torch.autograd.grad(logits[0, target], [taps[n] for n in layers], retain_graph=True)
            for layer, g in zip(layers, grads):
                a = taps[layer].detach()
                parts = split_by_source(a.float(), spec.weights(a.float(), g.float()), sources[layer])
                parts = parts[0].cpu().numpy().astype(np.float32)
                splits.append(SourceSplit(layer, target, clf.labels[target], float(probabilities[target]),
                                          float(scores[target]), spec.name, sources[layer], parts,
                                          evidence_shares(parts), prepared.geometry))
        return splits

    return clf.run_with_fallback(compute)


def export_sources(explanation: Explanation, split: SourceSplit, out_dir: str | Path, model_name: str,
                   raw: bool = False, colormap: str = "jet", alpha: float = 0.5, overwrite: bool = False,
                   taken: OutputNames | None = None) -> list[dict]:
    """Per source: ``{"source", "channels": [start, end], "share", "files"}``.

    ``files`` holds the overlay of the source's positive part (none when it has none), named like every
    heatmap with ``<block>.<source>`` as its layer, and with ``raw`` the signed part (before ReLU; the parts
    add up to the block's map) as ``_raw.npy``.  Writes are atomic (``model.export``).
    """
    from model.export import export_stem, save_npy
    from model.heatmap_files import export_map

    loaded = explanation.prepared.loaded
    entries = []
    for i, record in enumerate(split.to_dict()["sources"]):
        m = split.source_map(i)
        files = export_map(explanation, m, out_dir, model_name, ("overlay",), colormap, alpha, overwrite, taken)
        if raw:
            stem = export_stem(loaded.path.stem if loaded.path else "image", m.class_index, m.label, m.layer,
                               split.method)
            files["raw"] = [str(save_npy(split.parts[i], Path(out_dir) / f"{stem}_raw.npy", overwrite, taken))]
        entries.append({**record, "files": files})
    return entries
