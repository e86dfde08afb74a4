"""Workers for training and evaluation: each lives in its own QThread and answers through queued signals.

Like ``gui.engine``: the GUI sends requests as queued signals, every answer is
a signal connected to a slot of an object living in the GUI thread, and every
torch-using module is imported inside the worker's slots (the window never
waits for torch).  Failures arrive as messages in the answers, never as
exceptions in the GUI thread.

- ``FolderChecker`` runs ``model.datasets.check_folder`` for the training
  dialog's preview; a newer request cancels an older one.
- ``Trainer`` runs ``model.training.train``; ``stop`` set makes training stop
  after the current step (the best epoch so far stays saved).
- ``Evaluator`` loads its own copy of the model, runs
  ``model.folder_evaluation.evaluate_folder``, then draws the heatmaps of the
  predicted and the true class of any evaluated picture (the newest request
  replaces a pending older one).
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from pathlib import Path

from PySide6.QtCore import QMetaObject, QObject, Qt, QThread, Signal, Slot

from gui.messages import (
    CheckRequest,
    CheckResult,
    Evaluated,
    EvaluationRequest,
    PairRequest,
    PairResult,
    TrainRequest,
    TrainResult,
)

log = logging.getLogger("denselens.gui")
PROGRESS_INTERVAL = 0.05  # seconds between two progress signals: steps can be faster than a repaint is useful
PAIR_SIDE = 360  # pixels on the longer side of a heatmap shown for an evaluated picture
PAIR_METHOD = "gradcam"


def unexpected(what: str, error: BaseException) -> str:
    log.error("%s failed\n%s", what, "".join(traceback.format_exception(error)))
    return f"{what} failed: unexpected error ({type(error).__name__}: {error}); details are in the log"


class Throttle:
    """True at most every ``interval`` seconds (and always for the last call of a series)."""

    def __init__(self, interval: float = PROGRESS_INTERVAL) -> None:
        self.interval = interval
        self.last = -float("inf")

    def __call__(self, final: bool = False) -> bool:
        now = time.monotonic()
        if final or now - self.last >= self.interval:
            self.last = now
            return True
        return False


def start_worker(worker: QObject, name: str, parent: QObject) -> QThread:
    """``worker`` moved into a new running thread (it is deleted when the thread ends)."""
    thread = QThread(parent)
    thread.setObjectName(name)
    worker.moveToThread(thread)
    thread.finished.connect(worker.deleteLater)
    thread.start()
    return thread


def stop_worker(thread: QThread | None, timeout_ms: int = 60000) -> bool:
    """Quit ``thread``'s event loop once its current job returns; False if it did not end in time."""
    if thread is None or not thread.isRunning():
        return True
    thread.quit()
    if not thread.wait(timeout_ms):
        log.error("%s did not stop within %d ms", thread.objectName(), timeout_ms)
        return False
    return True


class FolderChecker(QObject):
    """Checks a labelled folder for the training dialog."""

    progress = Signal(int, int, int)  # request id, pictures checked, total
    checked = Signal(object)  # CheckResult

    def __init__(self) -> None:
        super().__init__()
        self.wanted = 0  # the id of the newest request: set from the GUI thread, older checks stop
        self.warm = False

    @Slot()
    def warm_up(self) -> None:
        """Import now what the first training step would import, while the person reads the dialog.

        The first optimizer imports ``torch._dynamo`` (sympy and more), which holds the GIL for up to a
        quarter of a second at a time: done during training, the window would stall then.
        """
        try:
            import torch._dynamo  # noqa: F401 - what torch.optim imports on first use

            import model.training  # noqa: F401 - torch, the data loader, augmentation
        except Exception as e:  # noqa: BLE001 - training imports them again and reports any failure
            log.warning("could not prepare training: %s", e)
        self.warm = True

    @Slot(object)
    def check(self, request: CheckRequest) -> None:
        if request.request_id != self.wanted:
            return  # replaced before it started
        from model.datasets import check_folder
        from model.errors import DenseLensError

        throttle = Throttle()

        def progress(done: int, total: int) -> None:
            if throttle(done >= total):
                self.progress.emit(request.request_id, done, total)

        result = CheckResult(request.request_id, request.folder)
        try:
            check = check_folder(request.folder, progress, lambda: self.wanted != request.request_id)
            result.report, result.usable = check.to_dict(), len(check.files)
        except DenseLensError as e:
            result.error = str(e)
        except Exception as e:  # noqa: BLE001 - the dialog must get an answer
            result.error = unexpected("Checking the folder", e)
        self.checked.emit(result)


class Trainer(QObject):
    """Runs one training at a time; see the module docstring."""

    logged = Signal(str)
    checking = Signal(int, int)  # pictures checked, total
    stepped = Signal(int, int, int, float)  # epoch, step, steps, running loss
    epochDone = Signal(object)  # the epoch's row
    ended = Signal(object)  # TrainResult

    def __init__(self) -> None:
        super().__init__()
        self.stop = threading.Event()  # set from the GUI thread; cleared by the GUI before each run

    @Slot(object)
    def run(self, request: TrainRequest) -> None:
        from model.errors import Cancelled, DenseLensError
        from model.training import TrainConfig, TrainEvents, train

        steps, checks = Throttle(), Throttle()

        def checking(done: int, total: int) -> None:
            if checks(done >= total):
                self.checking.emit(done, total)

        def step(epoch: int, index: int, count: int, loss: float) -> None:
            if steps(index >= count):
                self.stepped.emit(epoch, index, count, float(loss))

        events = TrainEvents(log=self.logged.emit, checking=checking, step=step, epoch=self.epochDone.emit,
                             cancelled=self.stop.is_set)
        result = TrainResult()
        try:
            cfg = TrainConfig(**{**request.config, "resume": request.resume})
            result.summary = train(cfg, events)
            result.validation_folder, result.validation_files = _validation_files(cfg, result.summary)
        except Cancelled:
            result.cancelled = True
        except DenseLensError as e:  # bad folder, weights unavailable offline, a full disk (ExportError), ...
            if self.stop.is_set() and "cancelled" in str(e):
                result.cancelled = True  # stopped while the folder was being checked
            else:
                result.error = str(e)
        except Exception as e:  # noqa: BLE001 - the window must get an answer, never a traceback
            result.error = unexpected("Training", e)
        self.ended.emit(result)


def _validation_files(cfg, summary: dict) -> tuple[str, list[str]]:
    """The folder and the validation files the best checkpoint records (none: evaluate the whole folder)."""
    from model.checkpoints import read_checkpoint
    from model.errors import DenseLensError

    folder = cfg.val_folder or cfg.data
    try:
        training = read_checkpoint(summary["checkpoint"]).metadata.get("training") or {}
    except DenseLensError as e:
        log.warning("cannot read the validation files of %s: %s", summary.get("checkpoint"), e)
        return folder, []
    files = training.get("validation_files") or []
    return folder, [str(f) for f in files] if isinstance(files, list) else []


class Evaluator(QObject):
    """Evaluates one model on one folder, then explains its pictures on request."""

    progress = Signal(int, int)  # done, total
    evaluated = Signal(object)  # Evaluated
    pairReady = Signal(object)  # PairResult

    def __init__(self) -> None:
        super().__init__()
        self.cancel = threading.Event()
        self._clf = None
        self._layer = ""
        self._pair: PairRequest | None = None
        self._scheduled = False

    @Slot(object)
    def evaluate(self, request: EvaluationRequest) -> None:
        from model.classifier import DenseNetClassifier
        from model.errors import Cancelled, DenseLensError
        from model.explain import default_layer
        from model.folder_evaluation import evaluate_folder

        throttle = Throttle()

        def progress(done: int, total: int) -> None:
            if throttle(done >= total):
                self.progress.emit(done, total)

        result = Evaluated(request.request_id)
        try:
            clf = DenseNetClassifier.load(request.spec, device=request.device or "auto", allow_download=False)
            self._clf, self._layer = clf, default_layer(clf.model.tap_names)
            result.layer = self._layer
            source = request.folder if request.files is None else _listed(request.folder, request.files, clf.labels)
            result.evaluation = evaluate_folder(clf, source, progress, self.cancel.is_set)
        except Cancelled:
            result.cancelled = True
        except (DenseLensError, ValueError) as e:
            if self.cancel.is_set():
                result.cancelled = True  # cancelled while the folder was being checked
            else:
                result.error = str(e)
        except Exception as e:  # noqa: BLE001
            result.error = unexpected("Evaluating the folder", e)
        self.evaluated.emit(result)

    @Slot(object)
    def explain_pair(self, request: PairRequest) -> None:
        self._pair = request  # a pending older request is replaced
        if not self._scheduled:
            self._scheduled = True
            QMetaObject.invokeMethod(self, "_explain_next", Qt.ConnectionType.QueuedConnection)

    @Slot()
    def _explain_next(self) -> None:
        from model.errors import DenseLensError

        self._scheduled = False
        request, self._pair = self._pair, None
        if request is None:
            return
        result = PairResult(request.request_id, request.path)
        try:
            if self._clf is None:
                raise ValueError("the model could not be loaded")
            result.tiles = self._pair_tiles(request)
        except (DenseLensError, ValueError) as e:
            result.error = str(e)
        except Exception as e:  # noqa: BLE001
            result.error = unexpected(f"Explaining {request.path}", e)
        self.pairReady.emit(result)

    def _pair_tiles(self, request: PairRequest) -> list[dict]:
        import numpy as np

        from model.render import overlay

        classes = list(dict.fromkeys([request.predicted, request.true]))
        ex = self._clf.explain(request.path, layers=[self._layer], classes=classes, method=PAIR_METHOD, topk=1,
                               preprocess=request.preprocess)
        image = ex.prepared.loaded.image
        tiles = []
        for index in classes:
            m = ex.get(self._layer, index)
            picture = overlay(image, m.on_original(), 0.5 if m.ok else 0.0, "jet", m.geometry)
            picture.thumbnail((PAIR_SIDE, PAIR_SIDE))
            kind = "predicted" if index == request.predicted else "true"
            if len(classes) == 1:
                kind = "predicted and true"
            tiles.append({"kind": kind, "class_index": index, "ok": m.ok, "message": m.status_message(),
                          "image": np.ascontiguousarray(np.asarray(picture.convert("RGB"), dtype=np.uint8))})
        return tiles


def _listed(folder: str, files: list[str], labels: list[str]):
    """A ``DataCheck`` of the listed files (relative to ``folder``, the class folder first)."""
    from model.datasets import DataCheck

    root = Path(folder)
    listed, ignored = [], []
    for name in files:
        path = root / name
        cls = Path(name).parts[0] if Path(name).parts else ""
        if cls in labels:
            listed.append((path, labels.index(cls)))
        else:
            ignored.append((path, "not one of the model's classes"))
    return DataCheck(root, list(labels), listed, [], ignored)
