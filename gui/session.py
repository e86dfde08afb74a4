"""The app's state, free of Qt: what is loaded, what is shown, what was asked for, what is running.

In the spirit of napari's ``ViewerModel``: the window binds its widgets to a
``Session`` (``subscribe``) and forwards what the user does to its methods;
the engine's answers come back through it (``accept_*``), which drops answers
to requests a newer one replaced and results of a model that is no longer
loaded.  Everything here is plain Python, so behaviour is tested without a
window, a model or a ``QApplication``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from gui.messages import (
    Classified,
    Explained,
    ExplainRequest,
    MetricsRequest,
    MetricsResult,
    ModelFailure,
    ModelInfo,
    SourcesRequest,
    SourcesResult,
)
from model.cam import METHODS
from model.zoo import PREPROCESS_MODES

_MISSING = object()
MAX_TOPK = 20  # predictions kept per classified picture; lists and exports show the first ``topk``


def _equal(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # arrays and the like: compare by identity only
        return False


class Observable:
    """Attributes whose changes are announced: ``subscribe(name, callback)``, called with the new value."""

    def __init__(self) -> None:
        object.__setattr__(self, "_subscribers", {})

    def subscribe(self, name: str, callback: Callable[[Any], None]) -> None:
        self._subscribers.setdefault(name, []).append(callback)

    def __setattr__(self, name: str, value: Any) -> None:
        old = self.__dict__.get(name, _MISSING)
        object.__setattr__(self, name, value)
        if old is not _MISSING and not _equal(old, value):
            self.notify(name)

    def notify(self, name: str) -> None:
        """Announce ``name`` (for changes made in place, such as a dict's items)."""
        for callback in list(self._subscribers.get(name, ())):
            callback(getattr(self, name))


@dataclass(frozen=True)
class Task:
    """Something long in progress: ``total`` 0 while the amount of work is unknown."""

    name: str  # "download", "classify", "explain", "export"
    done: int = 0
    total: int = 0


class Session(Observable):
    """Everything the window shows and asks for.  See the module docstring."""

    def __init__(self, layer: str = "denseblock4", method: str = "gradcam", colormap: str = "jet",
                 opacity: int = 50, region: str = "full", topk: int = 5, all_taps: bool = False) -> None:
        super().__init__()
        self.model: ModelInfo | None = None
        self.loading: str | None = None  # the model being loaded, if any
        self.load_failure: ModelFailure | None = None
        self.images: list[str] = []
        self.results: dict[str, Classified] = {}
        self.waiting: set[str] = set()  # sent for classification, not answered yet
        self.current_path: str | None = None
        self.current_class: int | None = None  # None: the top class
        self.layer = layer
        self.method = method if method in METHODS else "gradcam"
        self.colormap = colormap
        self.opacity = opacity  # percent
        self.region = region if region in PREPROCESS_MODES else "full"
        self.topk = topk
        self.all_taps = all_taps
        self.explanation: Explained | None = None  # the latest answer for the current picture
        self.metrics: MetricsResult | None = None
        self.split_sources = False  # show which source layers carry the evidence of a dense block
        self.sources: SourcesResult | None = None
        self.source: int | None = None  # the source whose part the main view shows; None: the whole map
        self.tasks: dict[str, Task] = {}
        self.pending: dict[str, int] = {}  # kind -> id of the request whose answer is awaited
        self._ids = itertools.count(1)

    # -- model ------------------------------------------------------------
    def model_loading(self, spec: str) -> None:
        self.loading = spec

    def model_ready(self, info: ModelInfo) -> None:
        """A model is loaded: from now on only its results are accepted."""
        self.loading = None
        self.load_failure = None
        self.finish_task("download")
        self.results = {}
        self.explanation = None
        self.metrics = None
        self.current_class = None
        if self.layer not in info.taps:
            self.layer = [t for t in info.taps if t.startswith("denseblock")][-1]
        self.model = info

    def model_failed(self, failure: ModelFailure) -> None:
        """A load failed: the model that produced the numbers on screen stays the current one."""
        self.loading = None
        self.finish_task("download")
        self.load_failure = failure

    # -- images and classification ---------------------------------------
    def add_images(self, paths: Iterable[str]) -> list[str]:
        """Append new paths (in order, no repeats); returns those added."""
        known = set(self.images)
        added = [p for p in dict.fromkeys(paths) if p not in known]
        if added:
            self.images = [*self.images, *added]
        return added

    def remove_images(self, paths: Iterable[str]) -> None:
        gone = set(paths)
        self.images = [p for p in self.images if p not in gone]
        for p in gone:
            self.results.pop(p, None)
            self.waiting.discard(p)
        if self.current_path in gone:
            self.select_image(None)

    def clear_images(self) -> None:
        self.remove_images(list(self.images))
        self.finish_task("classify")

    def classifying(self, paths: list[str]) -> None:
        self.waiting.update(paths)
        for p in paths:
            self.results.pop(p, None)
        if len(self.waiting) > 1:
            self.update_task("classify", len(self.images) - len(self.waiting), len(self.images))

    def accept_classified(self, result: Classified) -> bool:
        """Keep a classification if it came from the current model and its picture is still listed."""
        if self.model is None or result.load_id != self.model.load_id or result.path not in self.images:
            return False
        self.results[result.path] = result
        self.waiting.discard(result.path)
        if "classify" in self.tasks:
            self.update_task("classify", len(self.images) - len(self.waiting), len(self.images))
        return True

    def batch_finished(self) -> None:
        self.waiting.clear()
        self.finish_task("classify")

    def counts(self) -> tuple[int, int]:
        """(classified, failed) among the listed pictures."""
        rs = [self.results[p] for p in self.images if p in self.results]
        return sum(r.error is None for r in rs), sum(r.error is not None for r in rs)

    # -- what is shown ------------------------------------------------------
    def panel_layers(self) -> list[str]:
        """The taps the block panel shows: the dense blocks, plus transitions and norm5 on request."""
        if self.model is None:
            return []
        if self.all_taps:
            return list(self.model.taps)
        return [t for t in self.model.taps if t.startswith("denseblock")]

    def shown_class(self) -> int | None:
        if self.current_class is not None:
            return self.current_class
        ex = self.current_explanation()
        return ex.predictions[0].index if ex and ex.predictions else None

    def current_explanation(self) -> Explained | None:
        """The explanation of the current picture with the current method and region, if any."""
        ex = self.explanation
        if ex is None or ex.error or ex.path != self.current_path:
            return None
        if ex.method != self.method or ex.preprocess != self.region:
            return None
        return ex

    def has_current_maps(self) -> bool:
        """Whether the main view and the panel can be drawn without asking the engine."""
        ex = self.current_explanation()
        cls = self.shown_class()
        if ex is None or cls is None or (self.layer, cls) not in ex.heat:
            return False
        return all((layer, cls) in ex.tiles for layer in self.panel_layers())

    def select_image(self, path: str | None) -> None:
        if path != self.current_path:
            self.current_class = None
            self.metrics = None
            self.source = None
        self.current_path = path

    def choose_class(self, class_index: int) -> None:
        self.metrics = None
        self.source = None
        self.current_class = class_index

    def choose_layer(self, layer: str) -> bool:
        """Make ``layer`` the main view's; False if the model has no such tap."""
        if self.model is None or layer not in self.model.taps:
            return False
        self.metrics = None
        self.source = None
        self.layer = layer
        return True

    def sources_key(self) -> tuple:
        return (self.current_path, self.layer, self.shown_class(), self.method, self.region)

    def can_split_sources(self) -> bool:
        """Whether the main view's map can be split by source: a dense block and a gradient method."""
        return self.layer.startswith("denseblock") and METHODS[self.method].needs_gradients

    def current_sources(self) -> SourcesResult | None:
        """The split of the main view's map, if it is held."""
        r = self.sources
        if r is None or (r.path, r.layer, r.class_index, r.method, r.preprocess) != self.sources_key():
            return None
        return r

    def sources_request(self) -> SourcesRequest | None:
        """A request for the current map's split, or None (not wanted, not possible, or held already)."""
        cls = self.shown_class()
        if (not self.split_sources or self.model is None or self.current_explanation() is None or cls is None
                or not self.can_split_sources() or self.current_sources() is not None):
            return None
        return SourcesRequest(self._new_id("sources"), self.current_path, self.layer, cls, self.method, self.region)

    def accept_sources(self, result: SourcesResult) -> bool:
        if result.request_id != self.pending.get("sources"):
            return False
        if self.model is not None and result.load_id != self.model.load_id:
            return False
        del self.pending["sources"]
        self.source = None
        self.sources = result
        return True

    # -- requests and answers ----------------------------------------------
    def _new_id(self, kind: str) -> int:
        request_id = next(self._ids)
        self.pending[kind] = request_id
        return request_id

    def explain_request(self) -> ExplainRequest | None:
        """The request for the current picture and settings, or None if there is nothing to explain."""
        if self.model is None or self.current_path is None:
            return None
        result = self.results.get(self.current_path)
        if result is not None and result.error:
            return None
        layers = self.panel_layers()
        if self.layer not in layers:
            layers.append(self.layer)
        classes = None if self.current_class is None else [self.current_class]
        request = ExplainRequest(self._new_id("explain"), self.current_path, self.layer, layers, classes,
                                 self.method, self.topk, self.region)
        if METHODS[self.method].slow:
            self.update_task("explain", 0, 0)
        return request

    def accept_explained(self, result: Explained) -> bool:
        """Take the answer to the newest explain request; older answers are dropped."""
        if result.request_id != self.pending.get("explain"):
            return False
        if self.model is not None and result.load_id != self.model.load_id:
            return False
        del self.pending["explain"]
        self.finish_task("explain")
        if not result.cancelled:
            self.explanation = result
        return True

    def metrics_request(self) -> MetricsRequest | None:
        cls = self.shown_class()
        if self.model is None or self.current_path is None or cls is None or self.current_explanation() is None:
            return None
        request = MetricsRequest(self._new_id("metrics"), self.current_path, self.layer, cls, self.method,
                                 self.region)
        self.metrics = MetricsResult(request.request_id, self.layer, cls)  # measuring: no figures, no error yet
        return request

    def accept_metrics(self, result: MetricsResult) -> bool:
        if result.request_id != self.pending.get("metrics"):
            return False
        del self.pending["metrics"]
        self.metrics = result
        return True

    def export_id(self) -> int:
        return self._new_id("export")

    # -- tasks -------------------------------------------------------------
    def update_task(self, name: str, done: int, total: int) -> None:
        self.tasks[name] = Task(name, done, total)
        self.notify("tasks")

    def finish_task(self, name: str) -> None:
        if self.tasks.pop(name, None) is not None:
            self.notify("tasks")

    def active_task(self) -> Task | None:
        """The task the progress bar shows: the one started or updated last."""
        return next(reversed(self.tasks.values()), None)


# -- training and evaluation ---------------------------------------------------------
def format_duration(seconds: float) -> str:
    """A time left as people say it: "about 40 s", "about 3 min", "about 1 h 20 min"."""
    seconds = max(0.0, float(seconds))
    if seconds < 10:
        return "a few seconds"
    if seconds < 90:
        return f"about {round(seconds / 5) * 5:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min"
    return f"about {minutes // 60} h {minutes % 60} min"


class TrainingRun(Observable):
    """A training run as the training view shows it (announced: ``state``, ``progress``, ``history``).

    ``state``: "checking" (the data check), "training", "stopping", "stopped"
    (the best epoch so far is kept), "finished", "failed" (``message`` says
    why).  ``clock`` is injected so the time-left estimate is tested without
    waiting.
    """

    def __init__(self, config: dict, clock: Callable[[], float]) -> None:
        super().__init__()
        self.config = dict(config)  # TrainConfig fields: out, data, init, mode, epochs, ...
        self.clock = clock
        self.state = "checking"
        self.message: str | None = None
        self.history: list[dict] = []  # one row per finished epoch: epoch, train_loss, val_loss, val_accuracy, ...
        self.progress: tuple[int, int, int, float | None] = (0, 0, 0, None)  # epoch, step, steps, running loss
        self.checked: tuple[int, int] = (0, 0)
        self.summary: dict | None = None  # what ``model.training.train`` returned
        self.validation: tuple[str, list[str]] | None = None  # (folder, files relative to it) to evaluate on
        self._step_clock: tuple[int, int, float] | None = None  # (epoch, step, time) at the epoch's first step

    @property
    def epochs(self) -> int:
        return int(self.config.get("epochs", 0))

    @property
    def running(self) -> bool:
        return self.state in ("checking", "training", "stopping")

    def restart(self) -> None:
        """A new attempt of the same run (resume or start again): history up to the last saved epoch stays."""
        self.message = None
        self.summary = None
        self.checked = (0, 0)
        self.progress = (0, 0, 0, None)
        self._step_clock = None
        self.state = "checking"

    def checking(self, done: int, total: int) -> None:
        self.checked = (done, total)
        self.notify("checked")

    def step(self, epoch: int, step: int, steps: int, loss: float) -> None:
        if self.state == "checking":
            self.state = "training"
        if self._step_clock is None or self._step_clock[0] != epoch or step < self._step_clock[1]:
            self._step_clock = (epoch, step, self.clock())
        self.progress = (epoch, step, steps, loss)

    def epoch_done(self, row: dict) -> None:
        """A finished epoch; a resumed run repeats no epoch, but a row replaces any of the same number."""
        self.history = [r for r in self.history if r["epoch"] < row["epoch"]] + [dict(row)]
        self._step_clock = None

    def stop_requested(self) -> None:
        if self.running:
            self.state = "stopping"

    def ended(self, summary: dict | None, validation: tuple[str, list[str]] | None = None) -> None:
        """``train`` returned (``summary['stopped']`` says whether it was stopped early)."""
        self.summary = summary
        self.validation = validation
        if summary is not None:
            self.history = [dict(r) for r in summary.get("history", self.history)]
        self.state = "stopped" if summary is None or summary.get("stopped") else "finished"

    def failed(self, message: str) -> None:
        self.message = message
        self.state = "failed"

    def best(self) -> dict | None:
        """The best epoch so far (validation accuracy, then loss), as training keeps it."""
        if not self.history:
            return None
        return max(self.history, key=lambda r: (r["val_accuracy"], -r["val_loss"]))

    def time_left(self) -> float | None:
        """Seconds until the last epoch ends: epochs measured so far, else this epoch's steps; None: unknown."""
        epoch, step, steps, _ = self.progress
        if self.state != "training" or not steps or not self.epochs:
            return None
        last = self.history[-1]["epoch"] if self.history else 0
        current, fraction = (epoch, min(1.0, step / steps)) if epoch > last else (last + 1, 0.0)
        seconds = [r["seconds"] for r in self.history if r.get("seconds")]
        if seconds:
            per_epoch = sum(seconds) / len(seconds)
        elif self._step_clock is not None and step > self._step_clock[1]:
            _, first_step, started = self._step_clock
            per_step = (self.clock() - started) / (step - first_step)
            per_epoch = per_step * steps * 1.1  # validation takes some more
        else:
            return None
        return per_epoch * (1.0 - fraction) + per_epoch * max(0, self.epochs - current)


class EvaluationState(Observable):
    """The evaluation view's state: the result, the chosen confusion cell and picture, the heatmaps shown.

    Announced: ``evaluation``, ``error``, ``cell``, ``picture``, ``pair``.  Answers
    to a picture that is no longer the chosen one are dropped.
    """

    def __init__(self) -> None:
        super().__init__()
        self.evaluation: Any = None  # model.folder_evaluation.FolderEvaluation
        self.error: str | None = None
        self.progress: tuple[int, int] = (0, 0)
        self.cell: tuple[int, int] | None = None  # (true, predicted)
        self.picture: Any = None  # the chosen PictureResult of the cell
        self.pair: Any = None  # gui.messages.PairResult for ``picture``
        self._ids = itertools.count(1)
        self.pending: int | None = None

    def accept(self, evaluation: Any) -> None:
        self.cell = None
        self.picture = None
        self.pair = None
        self.error = None
        self.evaluation = evaluation

    def fail(self, message: str) -> None:
        self.error = message

    def cell_pictures(self) -> list:
        if self.evaluation is None or self.cell is None:
            return []
        return self.evaluation.cell(*self.cell)

    def choose_cell(self, true: int, predicted: int) -> None:
        if (true, predicted) != self.cell:
            self.picture = None
            self.pair = None
        self.cell = (true, predicted)

    def choose_picture(self, record: Any) -> int | None:
        """Select a picture of the cell; returns the id of the heatmap request to send, or None."""
        if record is self.picture or record is None:
            if record is None:
                self.pair = None
                self.picture = None
            return None
        self.pair = None
        self.picture = record
        self.pending = next(self._ids)
        return self.pending

    def accept_pair(self, result: Any) -> bool:
        if result.request_id != self.pending:
            return False
        self.pending = None
        self.pair = result
        return True


# -- the folder audit -------------------------------------------------------------------------
def flag_verdict(flag: dict) -> str:
    """What the blur test says about a flag of ``audit.json``."""
    if flag.get("probability_drop") is None:
        return "not tested"
    return "relies on it" if flag.get("confirmed") else "no real drop"


def audit_class_order(classes: list[dict]) -> list[dict]:
    """Flagged classes first (a confirmed flag before unconfirmed ones), then the rest, each in the audit's order."""
    def rank(c: dict) -> int:
        flags = c.get("flags") or []
        return 0 if any(f.get("confirmed") for f in flags) else 1 if flags else 2

    return sorted(classes, key=rank)


class AuditRun(Observable):
    """The folder audit as its view shows it (announced: ``state``, ``progress``, ``summary``, ``chosen``).

    ``state``: "idle", "running", "cancelling", "finished", "cancelled" (what
    was explained stays on disk: Resume carries on), "failed" (``message``
    says why).  ``progress`` is (stage, done, total) with stage "loading",
    "explaining" or "analysing"; ``rate`` the pictures explained per second in
    this run (a resumed run counts only what it explains).  ``clock`` is
    injected so the rate is tested without waiting.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__()
        self.clock = clock
        self.config: dict = {}  # model.audit.AuditConfig's fields of the latest start
        self.spec = ""  # the model audited
        self.labels: list[str] = []  # its class names
        self.state = "idle"
        self.message: str | None = None
        self.progress: tuple[str, int, int] = ("loading", 0, 0)
        self.rate: float | None = None
        self.summary: dict | None = None
        self.chosen: int | None = None  # the class shown (its ``index`` in the model)
        self._rate_start: tuple[int, float] | None = None

    @property
    def running(self) -> bool:
        return self.state in ("running", "cancelling")

    def start(self, config: dict, spec: str, labels: list[str]) -> None:
        self.config = dict(config)
        self.spec = spec
        self.labels = list(labels)
        self.message = None
        self.summary = None
        self.chosen = None
        self.rate = None
        self._rate_start = None
        self.progress = ("loading", 0, 0)
        self.state = "running"

    def update(self, stage: str, done: int, total: int) -> None:
        if stage == "explaining":
            now = self.clock()
            if self._rate_start is None:
                self._rate_start = (done, now)  # a resumed run starts past what was done before
            elif now > self._rate_start[1] and done > self._rate_start[0]:
                self.rate = (done - self._rate_start[0]) / (now - self._rate_start[1])
        self.progress = (stage, done, total)

    def cancel_requested(self) -> None:
        if self.running:
            self.state = "cancelling"

    def finished(self, summary: dict) -> None:
        speed = summary.get("throughput") or {}
        if speed.get("pictures_per_second"):
            self.rate = float(speed["pictures_per_second"])
        ordered = audit_class_order(summary.get("classes") or [])
        self.chosen = ordered[0]["index"] if ordered else None  # the first flagged class is shown at once
        self.summary = summary
        self.state = "finished"

    def cancelled(self, stage: str, done: int, total: int) -> None:
        self.progress = (stage, done, total)
        self.state = "cancelled"

    def failed(self, message: str) -> None:
        self.message = message
        self.state = "failed"

    def classes(self) -> list[dict]:
        """The audited classes, flagged first."""
        return audit_class_order((self.summary or {}).get("classes") or [])

    def chosen_class(self) -> dict | None:
        return next((c for c in self.classes() if c["index"] == self.chosen), None)

    def choose(self, index: int | None) -> None:
        self.chosen = index
