"""The worker that owns the model: every torch call of the app runs here, in its own thread.

The GUI talks to ``Engine`` only through queued signals and gets results back
as signals connected to slots of objects living in the GUI thread.  Work is
cut into small steps run from the engine thread's event loop, so a new
request is seen between steps: an interactive explanation jumps ahead of a
batch, and a newer explanation replaces an older pending one.

The engine keeps one picture's analysis (``model.explain.ImageAnalysis``: the
decoded picture, its tensor and the forward pass at every tap): switching
class, layer or method for that picture never decodes the file or runs the
forward pass again, and faithfulness and "export current" reuse it.  It is
released when another picture is explained or another model loaded.

Every job reports its own failure in its own answer; nothing raised here
reaches the GUI thread except as a ``problem`` message.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections import deque
from importlib import metadata

from PySide6.QtCore import QMetaObject, QObject, Qt, Signal, Slot

from gui.messages import (
    Classified,
    Explained,
    ExplainRequest,
    ExportReport,
    ExportRequest,
    MetricsRequest,
    MetricsResult,
    ModelFailure,
    ModelInfo,
    SourcesRequest,
    SourcesResult,
)
from gui.session import MAX_TOPK

log = logging.getLogger("denselens.engine")
THUMBNAIL = 96  # the image list's thumbnails
TILE = 132  # the block panel's tiles
SOURCE_SIDE = 512  # the size at which each source's part of a map is sent (it is shown over the picture)
CLASSIFY_STEP = 4  # images per step of a batch, between which other requests are served


def _unexpected(what: str, error: BaseException) -> str:
    log.error("%s failed\n%s", what, "".join(traceback.format_exception(error)))
    return f"{what} failed: unexpected error ({type(error).__name__}: {error}); details are in the log"


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
    metricsReady = Signal(object)  # MetricsResult
    sourcesReady = Signal(object)  # SourcesResult
    problem = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self._clf = None
        self._load_id = 0
        self._explain: ExplainRequest | None = None
        self._classify: deque[str] = deque()
        self._others: deque = deque()
        self._scheduled = False
        self._analysis = None  # model.explain.ImageAnalysis of the picture explained last
        self._analysis_key: tuple | None = None
        self._pictures: tuple | None = None  # (path, display array, tile thumbnail)
        self.cancel_download = threading.Event()
        self.cancel_batch = threading.Event()
        self.cancel_explain = threading.Event()
        self.cancel_export = threading.Event()
        self._preprocess = "full"  # how the batch classifies

    # -- requests (queued from the GUI thread) ---------------------------
    @Slot(str, str)
    def load_model(self, spec: str, device: str) -> None:
        self._others.appendleft(("load", (spec, device)))
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

    @Slot(object)
    def sources(self, request: SourcesRequest) -> None:
        self._others.append(("sources", request))
        self._schedule()

    @Slot(str)
    def configure(self, preprocess: str) -> None:
        self._preprocess = preprocess

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
                self._do_load(*self._others.popleft()[1])
            elif self._explain is not None:
                request, self._explain = self._explain, None
                self._do_explain(request)
            elif self._others:
                kind, request = self._others.popleft()
                {"export": self._do_export, "metrics": self._do_metrics, "sources": self._do_sources}[kind](request)
            elif self._classify:
                self._do_classify_step()
        except Exception as e:  # noqa: BLE001 - a worker error must never leave the GUI waiting
            self.problem.emit(_unexpected("A background step", e))
        if self._others or self._explain is not None or self._classify:
            self._schedule()

    def _release_analysis(self) -> None:
        self._analysis = self._analysis_key = self._pictures = None

    # -- jobs -------------------------------------------------------------
    def _do_load(self, spec: str, device: str) -> None:
        self.modelLoading.emit(spec)
        self.cancel_download.clear()

        def progress(done: int, total: int | None) -> bool:
            self.downloadProgress.emit(done, -1 if total is None else total)
            return not self.cancel_download.is_set()

        try:
            info = self._load(spec, device, progress)
        except Exception as e:  # noqa: BLE001 - a broken install must end in a message, not a crash
            from model.errors import DenseLensError, DownloadCancelled, WeightsUnavailableError

            if isinstance(e, DownloadCancelled):
                failure = ModelFailure(spec, "Download cancelled.", True)
            elif isinstance(e, WeightsUnavailableError):
                failure = ModelFailure(spec, str(e), True)
            elif isinstance(e, (DenseLensError, ValueError)):
                failure = ModelFailure(spec, str(e), False)
            else:
                failure = ModelFailure(spec, _unexpected("Loading the model", e), False)
            self.modelFailed.emit(failure)
            return
        self.modelReady.emit(info)

    def _load(self, spec: str, device: str, progress) -> ModelInfo:
        from model.architecture import describe, feature_reuse
        from model.classifier import DenseNetClassifier
        from model.devices import available_devices

        clf = DenseNetClassifier.load(spec, device=device or "auto", progress=progress)
        size = clf.input_size
        architecture = describe(clf.config, (size, size)).to_dict()
        architecture["feature_reuse"] = [block.to_dict() for block in feature_reuse(clf.model)]
        versions = {name: _version(name) for name in ("torch", "torchvision")}
        self._release_analysis()
        self._clf = clf
        self._load_id += 1
        return ModelInfo(spec, clf.title, clf.source, str(clf.device), clf.device_name, list(clf.labels),
                         list(clf.model.tap_names), architecture, list(clf.warnings), clf.weights_file,
                         available_devices(), versions, size, self._load_id)

    def _do_classify_step(self) -> None:
        from model.errors import DenseLensError

        if self._clf is None or self.cancel_batch.is_set():
            self._classify.clear()
            self.batchFinished.emit()
            return
        for _ in range(min(CLASSIFY_STEP, len(self._classify))):
            path = self._classify.popleft()
            try:
                prepared = self._clf.prepare(path, self._preprocess)
                logits = self._clf.logits(prepared.tensor[None])
                preds = self._clf.top_predictions(logits, MAX_TOPK)[0]  # lists and exports show the first k
                result = Classified(path, preds, None, _thumbnail(prepared.loaded.image, THUMBNAIL), self._load_id)
            except DenseLensError as e:
                result = Classified(path, None, str(e), load_id=self._load_id)
            except Exception as e:  # noqa: BLE001 - one image's failure must not stall the batch
                result = Classified(path, None, _unexpected(f"Classifying {path}", e), load_id=self._load_id)
            self.classified.emit(result)
        if not self._classify:
            self.batchFinished.emit()

    def _analysis_for(self, path: str, preprocess: str):
        """The cached analysis of ``path``, or a new one (the old one is released first)."""
        from model.explain import ImageAnalysis

        key = (path, preprocess, self._load_id)
        if self._analysis_key != key:
            self._release_analysis()
            self._analysis = ImageAnalysis(self._clf, self._clf.prepare(path, preprocess))
            self._analysis_key = key
        return self._analysis

    def _do_explain(self, request: ExplainRequest) -> None:
        from model.display import heat_view, picture_array
        from model.errors import Cancelled, DenseLensError

        result = Explained(request.request_id, request.path, request.method, request.preprocess,
                           load_id=self._load_id)
        if self._clf is None:
            result.error = "No model is loaded."
            self.explained.emit(result)
            return
        self.cancel_explain.clear()
        try:
            analysis = self._analysis_for(request.path, request.preprocess)
            layers = list(dict.fromkeys([request.main_layer, *request.layers]))
            if self._pictures is None or self._pictures[0] != request.path:
                image = analysis.prepared.loaded.image
                self._pictures = (request.path, picture_array(image), _thumbnail(image, TILE))
            _, result.picture, result.thumbnail = self._pictures
            g = analysis.prepared.geometry
            if not g.covers_whole_image:
                s = result.picture.shape[1] / g.original_size[0]
                result.crop_box = tuple(v * s for v in g.crop_box)
            ex = analysis.explain(layers, request.classes, request.method, request.topk,
                                  progress=lambda d, t: self.taskProgress.emit("explain", d, t),
                                  cancelled=self.cancel_explain.is_set)
            result.predictions = ex.predictions
            result.heat = {(m.layer, m.class_index): heat_view(m) for m in ex.maps if m.layer == request.main_layer}
            result.tiles = {(m.layer, m.class_index): heat_view(m, TILE) for m in ex.maps}
        except Cancelled:  # raised by analysis.explain: the picture and its predictions come without maps
            result.cancelled = True
            result.predictions = analysis.predictions(request.topk)
        except (DenseLensError, ValueError) as e:
            result.error = str(e)
        except Exception as e:  # noqa: BLE001 - the window must never wait for an answer that cannot come
            result.error = _unexpected(f"Explaining {request.path}", e)
        self.explained.emit(result)

    def _explanation(self, path: str, layers: list[str], classes, method: str, preprocess: str):
        """The explanation, from the cached analysis when it is this picture's."""
        if self._analysis_key == (path, preprocess, self._load_id):
            return self._analysis.explain(layers, classes, method)
        return self._clf.explain(path, layers=layers, classes=classes, method=method, preprocess=preprocess)

    def _do_export(self, request: ExportRequest) -> None:
        from model.errors import DenseLensError
        from model.heatmap_files import export_block_grid, export_map

        written, errors = [], []
        total = len(request.paths)
        model_name = self._clf.source if self._clf is not None else ""  # as the CLI records it
        for i, path in enumerate(request.paths):
            if self.cancel_export.is_set():
                self.exportFinished.emit(ExportReport(request.request_id, written, errors, True))
                return
            self.taskProgress.emit("export", i, total)
            try:
                ex = self._explanation(path, request.layers, request.classes, request.method, request.preprocess)
                for m in (m for m in ex.maps if m.layer == request.file_layer and request.kinds):
                    files = export_map(ex, m, request.out_dir, model_name, request.kinds, request.colormap,
                                       request.alpha)
                    written.extend(p for paths in files.values() for p in paths)
                if request.grid:
                    for class_index in dict.fromkeys(m.class_index for m in ex.maps):
                        grid = export_block_grid(ex, class_index, request.out_dir, model_name, request.colormap,
                                                 request.alpha)
                        if grid:
                            written.append(grid)
            except (DenseLensError, ValueError) as e:
                errors.append(str(e))
            except Exception as e:  # noqa: BLE001 - keep exporting the others, report this one
                errors.append(_unexpected(f"Exporting {path}", e))
        self.taskProgress.emit("export", total, total)
        self.exportFinished.emit(ExportReport(request.request_id, written, errors, False))

    def _do_metrics(self, request: MetricsRequest) -> None:
        from model.errors import DenseLensError
        from model.faithfulness import faithfulness

        result = MetricsResult(request.request_id, request.layer, request.class_index)
        try:
            ex = self._explanation(request.path, [request.layer], [request.class_index], request.method,
                                   request.preprocess)
            m = ex.maps[0]
            if m.ok:
                figures = faithfulness(self._clf, ex.prepared.tensor[None], m.analysed, m.class_index)
                result.figures = figures.to_dict()
            else:
                result.error = m.status_message()
        except (DenseLensError, ValueError) as e:
            result.error = str(e)
        except Exception as e:  # noqa: BLE001
            result.error = _unexpected("Measuring faithfulness", e)
        self.metricsReady.emit(result)


    def _do_sources(self, request: SourcesRequest) -> None:
        from model.display import heat_view
        from model.errors import DenseLensError
        from model.sources import split_sources

        result = SourcesResult(request.request_id, request.path, request.layer, request.class_index, request.method,
                               request.preprocess, load_id=self._load_id)
        try:
            prepared = self._analysis_for(request.path, request.preprocess).prepared
            split = split_sources(self._clf, prepared, [request.layer], [request.class_index], request.method)[0]
            result.label, result.names, result.shares = split.label, split.names, split.shares
            result.channels = [(s.start, s.end) for s in split.sources]
            result.maps = [heat_view(split.source_map(i), SOURCE_SIDE) for i in range(len(split.sources))]
        except (DenseLensError, ValueError) as e:
            result.error = str(e)
        except Exception as e:  # noqa: BLE001
            result.error = _unexpected("Splitting the evidence by source", e)
        self.sourcesReady.emit(result)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:  # a bundle without the package's metadata
        return "unknown"


def _thumbnail(image, side: int) -> object:
    import numpy as np

    thumb = image.copy()
    thumb.thumbnail((side, side))
    return np.ascontiguousarray(np.asarray(thumb.convert("RGB"), dtype=np.uint8))
