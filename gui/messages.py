"""What the window and the engine thread send each other: plain data, no Qt, no torch.

Requests carry an id; results echo it, so the session drops answers to
requests that a newer one has replaced.  Results name the model that
produced them (``model``), so nothing is ever shown under another model's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ModelInfo:
    """The model the engine holds now."""

    spec: str  # registry name or checkpoint path
    title: str
    source: str
    device: str
    device_name: str
    labels: list[str]
    taps: list[str]
    architecture: dict
    warnings: list[str]
    weights_file: str
    devices: list[str]
    versions: dict[str, str]
    input_size: int
    load_id: int = 0  # which load produced it: results carry it too


@dataclass
class ModelFailure:
    spec: str
    message: str
    weights_missing: bool


@dataclass
class Classified:
    path: str
    predictions: list | None
    error: str | None
    thumbnail: Any = None  # RGB uint8 array
    load_id: int = 0


@dataclass
class ExplainRequest:
    request_id: int
    path: str
    main_layer: str  # the layer of the main view: sent at display size
    layers: list[str]  # every layer wanted (the block panel's): sent at tile size
    classes: list[int] | None  # None: the top class
    method: str = "gradcam"
    topk: int = 5
    preprocess: str = "full"


@dataclass
class Explained:
    request_id: int
    path: str
    method: str = "gradcam"
    preprocess: str = "full"
    predictions: list = field(default_factory=list)
    heat: dict = field(default_factory=dict)  # (main layer, class_index) -> HeatView at display size
    tiles: dict = field(default_factory=dict)  # (layer, class_index) -> HeatView at tile size
    picture: Any = None  # RGB uint8 array, at most the display size
    thumbnail: Any = None  # RGB uint8 array at tile size
    crop_box: tuple | None = None  # analysed region in picture pixels, None = whole picture
    error: str | None = None
    cancelled: bool = False
    load_id: int = 0


@dataclass
class ExportRequest:
    request_id: int
    paths: list[str]
    out_dir: str
    layers: list[str]
    classes: list[int] | None
    method: str
    kinds: tuple[str, ...]
    colormap: str
    alpha: float
    preprocess: str
    grid: bool = False  # also a grid of every dense block per class

    @property
    def file_layer(self) -> str:
        """The layer whose overlay/heatmap/raw files are written (the others only feed the grid)."""
        return self.layers[0]


@dataclass
class ExportReport:
    request_id: int
    written: list[str]
    errors: list[str]
    cancelled: bool


@dataclass
class MetricsRequest:
    request_id: int
    path: str
    layer: str
    class_index: int
    method: str
    preprocess: str


@dataclass
class MetricsResult:
    request_id: int
    layer: str
    class_index: int
    figures: dict | None = None
    error: str | None = None


@dataclass
class SourcesRequest:
    """Split the map of a dense block for one class by source (the block input and each dense layer)."""

    request_id: int
    path: str
    layer: str
    class_index: int
    method: str
    preprocess: str


@dataclass
class SourcesResult:
    request_id: int
    path: str
    layer: str
    class_index: int
    method: str
    preprocess: str
    label: str = ""
    names: list[str] = field(default_factory=list)
    shares: list | None = None  # one float per source, None without positive evidence
    channels: list[tuple[int, int]] = field(default_factory=list)
    maps: list = field(default_factory=list)  # HeatView per source: its positive part
    error: str | None = None
    load_id: int = 0


# -- training and evaluation (gui.trainer's workers) --------------------------------
@dataclass
class CheckRequest:
    """Check a labelled folder (one sub-folder per class) before training on it."""

    request_id: int
    folder: str


@dataclass
class CheckResult:
    request_id: int
    folder: str
    report: dict | None = None  # model.datasets.DataCheck.to_dict()
    usable: int = 0  # pictures training can use
    error: str | None = None


@dataclass
class TrainRequest:
    config: dict  # model.training.TrainConfig's fields
    resume: bool = False


@dataclass
class TrainResult:
    """How a run ended: ``summary`` is what ``train`` returned (None when it raised)."""

    summary: dict | None = None
    validation_folder: str = ""  # the folder the validation files are relative to
    validation_files: list[str] = field(default_factory=list)
    error: str | None = None
    cancelled: bool = False  # stopped before the first epoch finished: nothing saved


@dataclass
class EvaluationRequest:
    request_id: int
    spec: str  # the model: a registry name or a checkpoint path
    device: str
    folder: str
    files: list[str] | None = None  # only these files (relative to ``folder``, class folder first); None: all


@dataclass
class Evaluated:
    request_id: int
    evaluation: Any = None  # model.folder_evaluation.FolderEvaluation
    layer: str = ""  # the layer the picture heatmaps explain
    error: str | None = None
    cancelled: bool = False


@dataclass
class PairRequest:
    """The heatmaps of one evaluated picture for its predicted and its true class."""

    request_id: int
    path: str
    predicted: int
    true: int
    preprocess: str


@dataclass
class PairResult:
    request_id: int
    path: str
    tiles: list = field(default_factory=list)  # (caption, RGB uint8 array), predicted class first
    error: str | None = None


# -- the folder audit (gui.audit_worker's Auditor) ------------------------------------
@dataclass
class AuditRequest:
    spec: str  # the model: a registry name or a checkpoint path
    device: str
    config: dict  # model.audit.AuditConfig's fields


@dataclass
class AuditResult:
    """How an audit ended: ``summary`` is what ``run_audit`` returned (None when it raised)."""

    out: str
    summary: dict | None = None
    error: str | None = None
    cancelled: bool = False
    stage: str = "loading"  # where it was when it ended: "loading", "explaining", "analysing"
    done: int = 0
    total: int = 0
