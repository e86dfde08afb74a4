"""The folder audit's per-picture step: a prediction and one small heatmap with its figures.

Each picture is explained for its true class when the folder says it (else
its predicted class) at one layer; the map is kept at ``MAP_SIDE`` x
``MAP_SIDE`` over the analysed picture (coordinates in [0, 1] of the
analysed picture, whatever its size) with three figures:

* ``peak``: the centre of the map's hottest cell, ``(x, y)``;
* ``border``: the share of the map's total in the outer ``BORDER`` band
  (0.36 for a uniform map);
* ``entropy``: ``-sum p log p / log(cells)`` of the map as a distribution,
  1 for a uniform map, near 0 for a single hot cell.

The same function serves the local engine and Ray's actors, so both give the
same records.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image

from model.cam import get_method
from model.classifier import DenseNetClassifier, Prepared
from model.errors import DenseLensError
from model.explain import LayerClassMap, explain, explain_batch

MAP_SIDE = 32
BORDER = 0.1
DECODE_WORKERS = 2


@dataclass(frozen=True)
class Item:
    """A picture to audit and its class index in the model's classes when the folder says it."""

    path: str
    true: int | None = None


def small_map(m: LayerClassMap, side: int = MAP_SIDE) -> np.ndarray:
    """The map normalised to [0, 1] and resampled to ``side`` x ``side`` over the analysed picture."""
    if not m.ok:
        return np.zeros((side, side), np.float32)
    raw = np.maximum(m.raw.astype(np.float32), 0)
    raw = raw / raw.max()
    small = np.asarray(Image.fromarray(raw, mode="F").resize((side, side), Image.Resampling.BILINEAR))
    return np.clip(small, 0, 1).astype(np.float32)


def band_mask(side: int = MAP_SIDE, band: float = BORDER) -> np.ndarray:
    k = max(1, round(side * band))
    mask = np.ones((side, side), bool)
    mask[k:side - k, k:side - k] = False
    return mask


def figures(small: np.ndarray) -> dict:
    """Peak, border share and entropy of one small map (zeros for an empty map)."""
    side = small.shape[0]
    total = float(small.sum())
    if total <= 0:
        return {"peak": [0.5, 0.5], "border": 0.0, "entropy": 0.0}
    y, x = np.unravel_index(int(np.argmax(small)), small.shape)
    p = small.ravel() / total
    nz = p[p > 0]
    return {"peak": [(x + 0.5) / side, (y + 0.5) / side],
            "border": float(small[band_mask(side)].sum() / total),
            "entropy": float(-(nz * np.log(nz)).sum() / np.log(p.size))}


def prepare_all(clf: DenseNetClassifier, items: Sequence[Item]) -> list[Prepared | str]:
    """Each item decoded and preprocessed as the model's default does (in threads), or its error message."""
    mode = clf.preprocessing.mode

    def one(item: Item) -> Prepared | str:
        try:
            return clf.prepare(item.path, mode)
        except DenseLensError as e:
            return str(e)

    with ThreadPoolExecutor(max_workers=DECODE_WORKERS, thread_name_prefix="audit-decode") as pool:
        return list(pool.map(one, items))


def scan(clf: DenseNetClassifier, items: Sequence[Item], layer: str, method: str, batch_size: int = 8,
         prepared: list[Prepared | str] | None = None) -> tuple[list[dict], np.ndarray]:
    """Records (one per item, in order) and their maps, ``(len(items), MAP_SIDE, MAP_SIDE)`` float16.

    A picture that cannot be read gets a record with ``error`` and an empty map.  ``prepared``: the
    items already through ``prepare_all`` (decoded ahead while the previous batch ran).
    """
    if prepared is None:
        prepared = prepare_all(clf, items)
    good = [i for i, p in enumerate(prepared) if not isinstance(p, str)]
    taps = clf.model.tap_names
    chosen = [items[i].true for i in good]
    pictures = [prepared[i] for i in good]
    if get_method(method).needs_gradients and layer in taps[-2:]:
        # explain_batch stacks consecutive pictures of one analysed size: put equal sizes side by side (a
        # folder of landscape and portrait photos would otherwise break a batch at every change), keep the
        # folder's order within a size, and give the results back in the items' order.
        order = sorted(range(len(pictures)), key=lambda k: tuple(pictures[k].tensor.shape))
        grouped = explain_batch(clf, [pictures[k] for k in order], method, topk=1, batch_size=batch_size,
                                layer=layer, classes=[chosen[k] for k in order])
        explanations: list = [None] * len(order)
        for k, ex in zip(order, grouped):
            explanations[k] = ex
    else:
        explanations = [explain(clf, p, [layer], None if c is None else [c], method, topk=1)
                        for p, c in zip(pictures, chosen)]
    maps = np.zeros((len(items), MAP_SIDE, MAP_SIDE), np.float16)
    records: list[dict] = [{"path": item.path, "true": item.true, "error": None} for item in items]
    for i, ex in zip(good, explanations):
        m = ex.maps[0]
        small = small_map(m)
        maps[i] = small.astype(np.float16)
        top = ex.predictions[0]
        w, h = ex.prepared.geometry.analysed_size
        records[i].update({"predicted": top.index, "probability": top.probability, "target": m.class_index,
                           "target_probability": m.probability, "status": m.status, "analysed_size": [w, h],
                           "unfamiliar": top.unfamiliar, **figures(small)})
    for i, p in enumerate(prepared):
        if isinstance(p, str):
            records[i]["error"] = p
    return records, maps
