"""The worker that owns the model: every torch call of the app runs here, in its own thread.

The GUI talks to ``Engine`` only through queued signals and gets results back
as signals.  Work is cut into small steps run from the engine thread's event
loop, so a new request is seen between steps: an interactive explanation
jumps ahead of a batch, and a newer explanation replaces an older pending one
(the newest request wins; the GUI also drops stale results by request id).
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections import deque
from dataclasses import dataclass, field

from PySide6.QtCore import QMetaObject, QObject, Qt, Signal, Slot

log = logging.getLogger("denselens.engine")
THUMBNAIL = 96
CLASSIFY_STEP = 4  # images per step of a batch, between which other requests are served


@dataclass
class ModelInfo:
    spec: str
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
    thumbnail: object = None  # RGB uint8 array


@dataclass
class ExplainRequest:
    request_id: int
    path: str
    layers: list[str]
    classes: list[int] | None  # None: the top class
    method: str = "gradcam"
    topk: int = 5
    preprocess: str = "full"


@dataclass
class Explained:
    request_id: int
    path: str
    predictions: list = field(default_factory=list)
    heat: dict = field(default_factory=dict)  # (layer, class_index) -> HeatView
    picture: object = None  # RGB uint8 array
    crop_box: tuple | None = None  # analysed region in picture pixels, None = whole picture
    error: str | None = None
    cancelled: bool = False


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


class Engine(QObject):
    """Lives in a worker QThread; see the module docstring."""

    modelLoading = Signal(str)
    downloadProgress = Signal(int, int)  # bytes done, total (-1 unknown)
    modelReady = Signal(object)  # ModelInfo
    modelFailed = Signal(object)  # ModelFailure
    classified = Signal(object)  # Classified
    batchFinished = Signal()
    explained = Signal(object)  # Explained
    taskProgress = Signal(str, int, int)  # task name, done, total
    exportFinished = Signal(object)  # ExportReport
    metricsReady = Signal(int, object)  # request id, dict or error string
    problem = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self._clf = None
        self._spec = ""
        self._explain: ExplainRequest | None = None
        self._classify: deque[str] = deque()
        self._others: deque = deque()
        self._scheduled = False
        self.cancel_download = threading.Event()
        self.cancel_batch = threading.Event()
        self.cancel_explain = threading.Event()
        self.cancel_export = threading.Event()
        self._settings = {"topk": 5, "preprocess": "full"}

    # -- requests (queued from the GUI thread) ---------------------------
    @Slot(str, str)
    def load_model(self, spec: str, device: str) -> None:
        self._others.appendleft(("load", spec, device))
        self._schedule()

    @Slot(object)
    def classify(self, paths: list[str]) -> None:
        self.cancel_batch.clear()
        self._classify.extend(paths)
        self._schedule()

    @Slot()
    def drop_batch(self) -> None:
        self._classify.clear()

    @Slot(object)
    def explain(self, request: ExplainRequest) -> None:
        self._explain = request  # a pending older request is replaced
        self._schedule()

    @Slot(object)
    def export(self, request: ExportRequest) -> None:
        self.cancel_export.clear()
        self._others.append(("export", request))
        self._schedule()

    @Slot(object)
    def metrics(self, request: MetricsRequest) -> None:
        self._others.append(("metrics", request))
        self._schedule()

    @Slot(int, str)
    def configure(self, topk: int, preprocess: str) -> None:
        self._settings = {"topk": topk, "preprocess": preprocess}

    # -- the loop ------------------------------------------------------------
    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            # A queued call, not a timer: nothing is left to stop when the thread ends.
            QMetaObject.invokeMethod(self, "_step", Qt.ConnectionType.QueuedConnection)

    @Slot()
    def _step(self) -> None:
        self._scheduled = False
        try:
            if self._others and self._others[0][0] == "load":
                self._do_load(*self._others.popleft()[1:])
            elif self._explain is not None:
                request, self._explain = self._explain, None
                self._do_explain(request)
            elif self._others:
                kind, request = self._others.popleft()
                (self._do_export if kind == "export" else self._do_metrics)(request)
            elif self._classify:
                self._do_classify_step()
        except Exception:  # noqa: BLE001 - a worker error must never leave the GUI waiting
            log.exception("engine step failed")
            self.problem.emit(traceback.format_exc(limit=3).strip().splitlines()[-1])
        if self._others or self._explain is not None or self._classify:
            self._schedule()

    # -- jobs -------------------------------------------------------------
    def _do_load(self, spec: str, device: str) -> None:
        from model.architecture import describe
        from model.classifier import DenseNetClassifier
        from model.errors import DenseLensError, DownloadCancelled, WeightsUnavailableError

        self.modelLoading.emit(spec)
        self.cancel_download.clear()

        def progress(done: int, total: int | None) -> bool:
            self.downloadProgress.emit(done, -1 if total is None else total)
            return not self.cancel_download.is_set()

        try:
            clf = DenseNetClassifier.load(spec, device=device or "auto", progress=progress)
        except DownloadCancelled:
            self.modelFailed.emit(ModelFailure(spec, "Download cancelled.", True))
            return
        except WeightsUnavailableError as e:
            self.modelFailed.emit(ModelFailure(spec, str(e), True))
            return
        except (DenseLensError, ValueError, OSError) as e:
            self.modelFailed.emit(ModelFailure(spec, str(e), False))
            return
        self._clf, self._spec = clf, spec
        import torch
        import torchvision

        from model.devices import available_devices

        size = clf.input_size
        self.modelReady.emit(ModelInfo(spec, clf.source, str(clf.device), clf.device_name, list(clf.labels),
                                       list(clf.model.tap_names), describe(clf.config, (size, size)).to_dict(),
                                       list(clf.warnings), clf.weights_file, available_devices(),
                                       {"torch": torch.__version__, "torchvision": torchvision.__version__}))

    def _do_classify_step(self) -> None:
        from model.errors import DenseLensError

        if self._clf is None or self.cancel_batch.is_set():
            self._classify.clear()
            self.batchFinished.emit()
            return
        for _ in range(min(CLASSIFY_STEP, len(self._classify))):
            path = self._classify.popleft()
            try:
                prepared = self._clf.prepare(path, self._settings["preprocess"])
                logits = self._clf.logits(prepared.tensor[None])
                preds = self._clf.top_predictions(logits, self._settings["topk"])[0]
                self.classified.emit(Classified(path, preds, None, _thumbnail(prepared.loaded.image)))
            except DenseLensError as e:
                self.classified.emit(Classified(path, None, str(e)))
            except Exception as e:  # noqa: BLE001 - one image's failure must not stall the batch
                log.exception("classifying %s failed", path)
                self.classified.emit(Classified(path, None, f"{path}: unexpected error ({type(e).__name__}: {e})"))
        if not self._classify:
            self.batchFinished.emit()

    def _do_explain(self, request: ExplainRequest) -> None:
        from model.display import heat_view, picture_array
        from model.errors import Cancelled, DenseLensError

        if self._clf is None:
            return
        self.cancel_explain.clear()
        result = Explained(request.request_id, request.path)
        try:
            ex = self._clf.explain(request.path, layers=request.layers, classes=request.classes,
                                   method=request.method, topk=request.topk, preprocess=request.preprocess,
                                   progress=lambda d, t: self.taskProgress.emit("scorecam", d, t),
                                   cancelled=self.cancel_explain.is_set)
        except Cancelled:
            result.cancelled = True
            self.explained.emit(result)
            return
        except (DenseLensError, ValueError) as e:
            result.error = str(e)
            self.explained.emit(result)
            return
        except Exception as e:  # noqa: BLE001 - the window must never wait for an answer that cannot come
            log.exception("explaining %s failed", request.path)
            result.error = f"unexpected error ({type(e).__name__}: {e}); details are in the log"
            self.explained.emit(result)
            return
        picture = picture_array(ex.prepared.loaded.image)
        result.picture = picture
        result.predictions = ex.predictions
        result.heat = {(m.layer, m.class_index): heat_view(m) for m in ex.maps}
        g = ex.prepared.geometry
        if not g.covers_whole_image:
            s = picture.shape[1] / g.original_size[0]
            result.crop_box = tuple(v * s for v in g.crop_box)
        self.explained.emit(result)

    def _do_export(self, request: ExportRequest) -> None:
        from model.errors import DenseLensError
        from model.heatmap_files import export_block_grid, export_map

        written, errors = [], []
        total = len(request.paths)
        for i, path in enumerate(request.paths):
            if self.cancel_export.is_set():
                self.exportFinished.emit(ExportReport(request.request_id, written, errors, True))
                return
            self.taskProgress.emit("export", i, total)
            try:
                ex = self._clf.explain(path, layers=request.layers, classes=request.classes,
                                       method=request.method, preprocess=request.preprocess)
                for m in (m for m in ex.maps if m.layer == request.file_layer and request.kinds):
                    files = export_map(ex, m, request.out_dir, self._spec, request.kinds, request.colormap,
                                       request.alpha)
                    written.extend(p for paths in files.values() for p in paths)
                if request.grid:
                    for class_index in dict.fromkeys(m.class_index for m in ex.maps):
                        grid = export_block_grid(ex, class_index, request.out_dir, self._spec, request.colormap,
                                                 request.alpha)
                        if grid:
                            written.append(grid)
            except (DenseLensError, ValueError) as e:
                errors.append(str(e))
            except Exception as e:  # noqa: BLE001 - keep exporting the others, report this one
                log.exception("exporting %s failed", path)
                errors.append(f"{path}: unexpected error ({type(e).__name__}: {e})")
        self.taskProgress.emit("export", total, total)
        self.exportFinished.emit(ExportReport(request.request_id, written, errors, False))

    def _do_metrics(self, request: MetricsRequest) -> None:
        from model.errors import DenseLensError
        from model.faithfulness import faithfulness

        try:
            ex = self._clf.explain(request.path, layers=[request.layer], classes=[request.class_index],
                                   method=request.method, preprocess=request.preprocess)
            m = ex.maps[0]
            if not m.ok:
                self.metricsReady.emit(request.request_id, m.status_message())
                return
            figures = faithfulness(self._clf, ex.prepared.tensor[None], m.analysed, m.class_index)
            self.metricsReady.emit(request.request_id, figures.to_dict())
        except (DenseLensError, ValueError) as e:
            self.metricsReady.emit(request.request_id, str(e))
        except Exception as e:  # noqa: BLE001
            log.exception("faithfulness for %s failed", request.path)
            self.metricsReady.emit(request.request_id, f"unexpected error ({type(e).__name__}: {e})")


def _thumbnail(image) -> object:
    import numpy as np

    thumb = image.copy()
    thumb.thumbnail((THUMBNAIL, THUMBNAIL))
    return np.ascontiguousarray(np.asarray(thumb.convert("RGB"), dtype=np.uint8))
