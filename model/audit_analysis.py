"""What a class's heatmaps say together: the mean map, SpRAy clusters and shortcut flags.

* **Clusters** (SpRAy, Lapuschkin et al. 2019): the class's small maps are
  points; a symmetric k-nearest-neighbour graph joins similar ones; the number
  of clusters is where the normalised graph Laplacian's sorted eigenvalues
  jump most (the eigengap); scikit-learn's spectral clustering then splits the
  graph.  Each cluster is a strategy the model uses for that class.
* **Flags**: a *fixed-location* flag when the class's evidence sits in the
  same small box in most of its pictures (an object that moves spreads its
  peaks; a watermark, a tag or a ruler does not); a *border* flag when that
  box touches the picture's outer band and the maps put more of their heat
  in that band than a uniform map would.  A flag is a hypothesis until
  ``model.audit_test`` measures what blurring the box costs the class.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from model.audit_scan import BORDER, MAP_SIDE

MAX_CLUSTERS = 6
MIN_FOR_CLUSTERS = 8  # fewer pictures than this: one cluster
MAX_CLUSTERED = 1500  # a larger class is clustered on a seeded sample; the rest join the nearest cluster
NEIGHBOURS = 10
HOT = 0.5  # the hot region of a mean map: cells at or above this share of its maximum
FIXED_SHARE = 0.6  # pictures whose peak lies in the box, for a fixed-location flag
FIXED_MAX_AREA = 0.16  # the box covers at most this much of the picture
MIN_FOR_FLAGS = 5
BORDER_HEAT = 0.5  # mean share of heat in the outer band for a border flag (a uniform map: 0.36)


@dataclass
class Flag:
    kind: str  # "fixed-location" or "border"
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in [0, 1] of the analysed picture
    share: float  # pictures of the class whose peak lies in the box
    members: list[int]  # their row indices
    probability_drop: float | None = None
    control_drop: float | None = None
    tested: int = 0

    @property
    def confirmed(self) -> bool | None:
        """The box matters: blurring it costs the class at least 0.1 and twice what blurring elsewhere does."""
        if self.probability_drop is None:
            return None
        return self.probability_drop >= 0.1 and self.probability_drop > 2 * max(self.control_drop or 0.0, 0.0)


@dataclass
class ClassAudit:
    index: int
    name: str
    members: list[int]  # row indices into the audit's records
    accuracy: float | None
    mean_map: np.ndarray
    clusters: list[list[int]] = field(default_factory=list)  # row indices, each cluster nearest-first
    flags: list[Flag] = field(default_factory=list)


def hot_box(mean: np.ndarray, level: float = HOT) -> tuple[float, float, float, float] | None:
    """The box around the connected hot region holding the mean map's maximum, in [0, 1] coordinates."""
    from scipy import ndimage

    if mean.max() <= 0:
        return None
    regions, _ = ndimage.label(mean >= level * mean.max())
    y, x = np.unravel_index(int(np.argmax(mean)), mean.shape)
    ys, xs = np.nonzero(regions == regions[y, x])
    side = mean.shape[0]
    return (xs.min() / side, ys.min() / side, (xs.max() + 1) / side, (ys.max() + 1) / side)


def _inside(point: list[float], box: tuple[float, float, float, float], margin: float) -> bool:
    x, y = point
    return box[0] - margin <= x <= box[2] + margin and box[1] - margin <= y <= box[3] + margin


def find_flags(records: list[dict], members: list[int], maps: np.ndarray) -> list[Flag]:
    """Flags for one class from its pictures' maps and peaks (untested)."""
    if len(members) < MIN_FOR_FLAGS:
        return []
    mean = maps[members].astype(np.float32).mean(axis=0)
    box = hot_box(mean)
    if box is None:
        return []
    margin = 1 / MAP_SIDE
    inside = [i for i in members if _inside(records[i]["peak"], box, margin)]
    share = len(inside) / len(members)
    area = (box[2] - box[0]) * (box[3] - box[1])
    touches = min(box[0], box[1]) < BORDER or max(box[2], box[3]) > 1 - BORDER
    border_heat = float(np.mean([records[i]["border"] for i in members]))
    if touches and border_heat >= BORDER_HEAT and share >= FIXED_SHARE / 2:
        return [Flag("border", box, share, inside)]
    if share >= FIXED_SHARE and area <= FIXED_MAX_AREA:
        return [Flag("fixed-location", box, share, inside)]
    return []


def eigengap_clusters(maps: np.ndarray, max_clusters: int = MAX_CLUSTERS, seed: int = 0) -> np.ndarray:
    """Cluster labels (0..k-1) for ``maps`` (n, side, side); k from the eigengap of the kNN graph.

    The graph's Laplacian is dense (n x n), so a class of more than
    ``MAX_CLUSTERED`` pictures is clustered on a seeded sample of that many
    and every other picture joins the cluster whose mean it is nearest:
    time and memory stay bounded whatever the folder's size.
    """
    from scipy.sparse import csgraph
    from sklearn.cluster import SpectralClustering
    from sklearn.neighbors import kneighbors_graph

    n = len(maps)
    if n < MIN_FOR_CLUSTERS:
        return np.zeros(n, int)
    everything = maps.reshape(n, -1).astype(np.float32)
    everything /= np.maximum(np.linalg.norm(everything, axis=1, keepdims=True), 1e-12)
    if n > MAX_CLUSTERED:
        chosen = np.sort(np.random.default_rng(seed).choice(n, MAX_CLUSTERED, replace=False))
        sample = eigengap_clusters(maps[chosen], max_clusters, seed)
        centres = np.stack([everything[chosen[sample == c]].mean(axis=0) for c in range(sample.max() + 1)])
        labels = np.argmin((centres**2).sum(1)[None] - 2 * everything @ centres.T, axis=1)  # nearest centre
        labels[chosen] = sample
        return labels
    x = everything
    n = len(x)
    graph = kneighbors_graph(x, min(NEIGHBOURS, n - 1), include_self=False)
    affinity = 0.5 * (graph + graph.T)
    laplacian = csgraph.laplacian(affinity, normed=True).toarray()
    eigenvalues = np.sort(np.linalg.eigvalsh(laplacian))[:max_clusters + 1]
    k = int(np.argmax(np.diff(eigenvalues))) + 1
    if k <= 1:
        return np.zeros(n, int)
    model = SpectralClustering(n_clusters=k, affinity="precomputed", random_state=seed, assign_labels="discretize")
    with warnings.catch_warnings():  # separate strategies make a graph in pieces: exactly what k counts
        warnings.filterwarnings("ignore", "Graph is not fully connected", UserWarning)
        return model.fit_predict(affinity.toarray())


def analyse_class(index: int, name: str, records: list[dict], members: list[int], maps: np.ndarray) -> ClassAudit:
    known = [records[i] for i in members if records[i].get("true") is not None]
    accuracy = (sum(r["predicted"] == r["true"] for r in known) / len(known)) if known else None
    mean = maps[members].astype(np.float32).mean(axis=0) if members else np.zeros((MAP_SIDE, MAP_SIDE), np.float32)
    labels = eigengap_clusters(maps[members]) if members else np.zeros(0, int)
    clusters = []
    for c in range(labels.max() + 1 if len(labels) else 0):
        rows = [m for m, label in zip(members, labels) if label == c]
        centre = maps[rows].astype(np.float32).mean(axis=0)
        distance = [float(np.abs(maps[r].astype(np.float32) - centre).sum()) for r in rows]
        clusters.append([r for _, r in sorted(zip(distance, rows))])
    clusters.sort(key=len, reverse=True)
    return ClassAudit(index, name, members, accuracy, mean, clusters, find_flags(records, members, maps))
