"""Evaluating a classifier on a labelled folder (one sub-folder per class), and writing what it shows.

``evaluate_folder`` classifies every usable picture of the folder once (the
model's own preprocessing, as ``classify`` uses it) and keeps one record per
picture: true class, predicted class, the probability of each, and whether
the picture looked unfamiliar.  Everything else is read off those records:
the confusion matrix (rows: true class, columns: predicted, in the model's
class order), accuracy, per-class precision, recall and F1, the most
confident mistakes and the pictures of any confusion cell (``cell``, for the
app's clickable matrix).

Conventions for undefined figures: the precision of a class never predicted,
the recall of a class with no pictures, and the F1 of a class whose precision
and recall are both 0 are 0 (scikit-learn's ``zero_division=0``).  Macro
averages are over the classes that occur, as true or predicted class.

``write_report`` draws the confusion matrix (matplotlib, Agg, no pyplot) and,
for each of the most confident mistakes, the Grad-CAM overlays of the
predicted and of the true class plus the two side by side; every file is
written atomically and never replaces an existing one (``model.export``).
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from model import __version__
from model.datasets import DataCheck, DataError, check_folder, count_warnings
from model.errors import Cancelled, DenseLensError, ExportError

if TYPE_CHECKING:
    from PIL import Image

    from model.classifier import DenseNetClassifier

Progress = Callable[[int, int], None]
MISTAKES = 8  # the most confident mistakes reported by default
ALL_CLASSES_UP_TO = 30  # above this many classes, tables and pictures show only the classes that occur
MISTAKES_FOLDER = "mistakes"


# -- the figures (pure) -----------------------------------------------------
def confusion_matrix(true: Sequence[int], predicted: Sequence[int], n_classes: int) -> np.ndarray:
    """(n, n) int64 counts: ``[i, j]`` = pictures of true class i predicted as j."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    if len(true):
        np.add.at(matrix, (np.asarray(true, dtype=np.intp), np.asarray(predicted, dtype=np.intp)), 1)
    return matrix


def class_scores(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 per class from a confusion matrix; 0 wherever a figure is undefined."""
    c = np.asarray(confusion, dtype=np.float64)
    hits = np.diag(c)
    predicted, actual = c.sum(axis=0), c.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, actual, out=np.zeros_like(hits), where=actual > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(hits), where=both > 0)
    return precision, recall, f1


def row_normalised(confusion: np.ndarray) -> np.ndarray:
    """Each row divided by its total (the share of the true class predicted as each class); empty rows 0."""
    c = np.asarray(confusion, dtype=np.float64)
    totals = c.sum(axis=1, keepdims=True)
    return np.divide(c, totals, out=np.zeros_like(c), where=totals > 0)


# -- the evaluation -----------------------------------------------------------
@dataclass(frozen=True)
class PictureResult:
    """One picture: its true and predicted class (indices into the model's classes) and their probabilities."""

    path: Path
    true: int
    predicted: int
    probability: float  # of the predicted class
    true_probability: float
    unfamiliar: bool | None = None  # None: the model has no unfamiliar threshold

    @property
    def correct(self) -> bool:
        return self.true == self.predicted


@dataclass(frozen=True)
class ClassFigures:
    name: str
    count: int  # pictures of this class in the folder
    predicted: int  # pictures predicted as this class
    precision: float
    recall: float
    f1: float


def _by_confidence(records: Sequence[PictureResult]) -> list[PictureResult]:
    return sorted(records, key=lambda r: (-r.probability, str(r.path)))


@dataclass
class FolderEvaluation:
    """A model's results on a labelled folder, one record per classified picture.

    ``skipped``: pictures that could not be read or classified, with the
    reason; ``ignored``: entries left out on purpose (folders named after no
    class of the model, hidden files, pictures at the top level).
    """

    model: str
    root: Path
    classes: list[str]
    records: list[PictureResult]
    preprocess: str
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    ignored: list[tuple[Path, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    mistakes_kept: int = MISTAKES  # how many mistakes ``mistakes`` and the report show
    unfamiliar_threshold: float | None = None
    confusion: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.confusion = confusion_matrix([r.true for r in self.records], [r.predicted for r in self.records],
                                          len(self.classes))

    # -- figures ------------------------------------------------------------
    @property
    def total(self) -> int:
        return len(self.records)

    @property
    def correct(self) -> int:
        return int(np.trace(self.confusion))

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    @property
    def per_class(self) -> list[ClassFigures]:
        precision, recall, f1 = class_scores(self.confusion)
        counts, predicted = self.confusion.sum(axis=1), self.confusion.sum(axis=0)
        return [ClassFigures(name, int(counts[i]), int(predicted[i]), float(precision[i]), float(recall[i]),
                             float(f1[i])) for i, name in enumerate(self.classes)]

    def occurring(self) -> list[int]:
        """Indices of the classes that occur, as true or as predicted class (model order)."""
        seen = (self.confusion.sum(axis=0) + self.confusion.sum(axis=1)) > 0
        return [int(i) for i in np.flatnonzero(seen)]

    def shown_classes(self, limit: int = ALL_CLASSES_UP_TO) -> list[int]:
        """The classes a table or picture shows: all of them up to ``limit``, else those that occur.

        Leaving out classes that never occur loses no count: their rows and columns are zero.
        """
        return list(range(len(self.classes))) if len(self.classes) <= limit else self.occurring()

    @property
    def macro(self) -> dict[str, float]:
        """Unweighted means of precision, recall and F1 over the classes that occur."""
        every = self.per_class
        figures = [every[i] for i in self.occurring()]
        if not figures:
            return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
        return {key: float(np.mean([getattr(f, key) for f in figures])) for key in ("precision", "recall", "f1")}

    def unfamiliar_counts(self) -> list[int] | None:
        """Unfamiliar pictures per true class; None when the model cannot tell."""
        if self.unfamiliar_threshold is None:
            return None
        counts = [0] * len(self.classes)
        for r in self.records:
            counts[r.true] += bool(r.unfamiliar)
        return counts

    # -- pictures -------------------------------------------------------------
    def all_mistakes(self) -> list[PictureResult]:
        """Every misclassified picture, the most confident first."""
        return _by_confidence([r for r in self.records if not r.correct])

    @property
    def mistakes(self) -> list[PictureResult]:
        """The ``mistakes_kept`` most confident mistakes."""
        return self.all_mistakes()[: self.mistakes_kept]

    def cell(self, true: int, predicted: int) -> list[PictureResult]:
        """The pictures of one confusion cell (true class, predicted class), the most confident first."""
        return _by_confidence([r for r in self.records if r.true == true and r.predicted == predicted])

    # -- output ---------------------------------------------------------------
    def picture_dict(self, r: PictureResult) -> dict:
        record = {"path": str(r.path), "true": self.classes[r.true], "predicted": self.classes[r.predicted],
                  "probability": r.probability, "true_probability": r.true_probability}
        if r.unfamiliar is not None:
            record["unfamiliar"] = r.unfamiliar
        return record

    def to_dict(self, files: dict | None = None) -> dict:
        """The JSON report; ``files`` (what ``write_report`` returned) fills in the files of each mistake."""
        files = files or {}
        written = files.get("mistakes", [])
        unfamiliar = self.unfamiliar_counts()
        classes = []
        for i, f in enumerate(self.per_class):
            entry = {"name": f.name, "count": f.count, "predicted": f.predicted, "precision": f.precision,
                     "recall": f.recall, "f1": f.f1}
            if unfamiliar is not None:
                entry["unfamiliar"] = unfamiliar[i]
            classes.append(entry)
        report = {
            "model": self.model, "folder": str(self.root), "preprocess": self.preprocess,
            "total": self.total, "correct": self.correct, "accuracy": self.accuracy,
            "macro": self.macro, "classes": classes, "confusion": self.confusion.tolist(),
            "mistakes": [{**self.picture_dict(r), "files": written[k] if k < len(written) else {}}
                         for k, r in enumerate(self.mistakes)],
            "mistakes_total": len(self.all_mistakes()),
            "skipped": [{"path": str(p), "reason": why} for p, why in self.skipped],
            "ignored": [{"path": str(p), "reason": why} for p, why in self.ignored],
            "warnings": list(self.warnings),
            "pictures": [self.picture_dict(r) for r in self.records],
        }
        if unfamiliar is not None:
            report["unfamiliar"] = {"count": sum(unfamiliar), "threshold": self.unfamiliar_threshold}
        if "confusion" in files:
            report["files"] = {"confusion": files["confusion"]}
        if files.get("problems"):
            report["warnings"] += list(files["problems"])
        return report


def _remap(check: DataCheck, labels: list[str]) -> tuple[list[tuple[Path, int]], list[tuple[Path, str]]]:
    """A check's files with the model's class indices; files of classes the model lacks are ignored."""
    files, ignored = [], []
    for path, label in check.files:
        name = check.classes[label]
        if name in labels:
            files.append((path, labels.index(name)))
        else:
            ignored.append((path, "not one of the model's classes"))
    return files, ignored


def evaluate_folder(clf: DenseNetClassifier, root_or_check: str | Path | DataCheck, progress: Progress | None = None,
                    cancelled: Callable[[], bool] | None = None, mistakes: int = MISTAKES,
                    preprocess: str | None = None, batch_size: int = 8) -> FolderEvaluation:
    """Classify every picture of a labelled folder; ``DataError`` for a folder no evaluation can use.

    ``root_or_check``: the folder, or a ``DataCheck`` already made of it.
    ``progress(done, total)`` counts classified pictures (each decoded once);
    ``cancelled()`` true stops with ``Cancelled``.  ``preprocess``:
    None is the model's own mode, as ``classify`` uses it.  A picture that
    fails to load now (changed since the check) is skipped with its reason.
    """
    if isinstance(root_or_check, DataCheck):
        check = root_or_check
    else:  # classifying decodes every picture and reports the ones that fail: no separate decoding pass
        check = check_folder(root_or_check, None, cancelled, class_names=clf.labels, min_per_class=0, decode=False)
    files, extra_ignored = _remap(check, clf.labels)
    if not files:
        raise DataError(f"{check.root}: no readable pictures in folders named after the model's classes")
    mode = preprocess or clf.preprocessing.mode
    labels = dict(files)
    records: list[PictureResult] = []
    skipped = list(check.bad)
    total = len(files)
    if progress:
        progress(0, total)
    results = clf.predict_paths([p for p, _ in files], topk=len(clf.labels), preprocess=mode,
                                batch_size=batch_size)
    try:
        for done, result in enumerate(results, start=1):
            if result.error is not None:
                skipped.append((result.path, result.error))
            else:
                true = labels[result.path]
                top = result.predictions[0]
                p_true = next(p.probability for p in result.predictions if p.index == true)
                records.append(PictureResult(result.path, true, top.index, top.probability, p_true, top.unfamiliar))
            if progress:
                progress(done, total)
            if cancelled and cancelled():
                raise Cancelled(f"{check.root}: the evaluation was cancelled")
    finally:
        results.close()  # stop decoding ahead
    if not records:
        raise DataError(f"{check.root}: none of the pictures could be classified")
    counts = np.bincount([r.true for r in records], minlength=len(clf.labels)).tolist()
    warnings = count_warnings(clf.labels, counts)  # of the pictures classified, not of the files found
    return FolderEvaluation(clf.spec or clf.source, check.root, list(clf.labels), records, mode, skipped,
                            [*check.ignored, *extra_ignored], warnings, max(0, int(mistakes)),
                            clf.unfamiliar_threshold)


# -- the confusion picture ----------------------------------------------------------
# Tried in order for characters DejaVu Sans lacks (CJK and others), where matplotlib knows them.
FALLBACK_FONTS = ("DejaVu Sans", "Noto Sans CJK SC", "Noto Sans CJK JP", "Source Han Sans SC", "Droid Sans Fallback",
                  "Microsoft YaHei", "Yu Gothic", "Malgun Gothic", "PingFang SC", "Hiragino Sans",
                  "Arial Unicode MS", "Noto Sans")


@cache
def _fonts() -> tuple[tuple[str, ...], frozenset[int]]:
    """The fallback families matplotlib can find, and every character they cover."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    families, covered, seen = [], set(), set()
    for family in FALLBACK_FONTS:
        try:
            path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
        except ValueError:
            continue
        if path in seen:
            continue
        seen.add(path)
        families.append(family)
        covered.update(FT2Font(path).get_charmap())
    return tuple(families), frozenset(covered)


def drawable(text: str, max_chars: int = 30) -> str:
    """``text`` as matplotlib can draw it: characters no font covers become U+FFFD, ``$`` is no maths.

    (A missing glyph would otherwise draw a blank and warn.)
    """
    _, covered = _fonts()
    marker = "\ufffd" if ord("\ufffd") in covered else "?"
    text = unicodedata.normalize("NFC", text)
    if len(text) > max_chars:
        text = text[: max_chars - 1] + "\u2026"
    return "".join(ch if ord(ch) in covered or ch in "\n" else marker for ch in text).replace("$", r"\$")


def render_confusion(evaluation: FolderEvaluation, title: str | None = None) -> Image.Image:
    """The confusion matrix as a picture: counts in the cells, colour = share of the row (true class)."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure
    from PIL import Image

    shown = evaluation.shown_classes()
    counts = evaluation.confusion[np.ix_(shown, shown)]
    shares = row_normalised(counts)
    n = len(shown)
    names = [drawable(evaluation.classes[i]) for i in shown]
    side = min(40.0, max(5.0, 0.45 * n + 3.0))
    tick_size = max(4.0, min(10.0, 360.0 / max(n, 1)))
    if title is None:
        title = (f"{evaluation.model or 'model'} on {evaluation.root.name}: accuracy {evaluation.accuracy:.1%} "
                 f"({evaluation.correct} of {evaluation.total})")
        if n < len(evaluation.classes):
            title += f"\n{n} of {len(evaluation.classes)} classes shown (the others never occur)"
    families, _ = _fonts()
    with rc_context({"font.family": list(families) or ["DejaVu Sans"]}):
        fig = Figure(figsize=(side + 1.5, side), dpi=100, layout="constrained")
        ax = fig.subplots()
        image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
        bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        bar.set_label("share of the true class")
        ax.set_xticks(range(n), names, rotation=45, ha="right", rotation_mode="anchor", fontsize=tick_size)
        ax.set_yticks(range(n), names, fontsize=tick_size)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(drawable(title, 200), fontsize=10)
        if n <= 40:
            for i in range(n):
                for j in range(n):
                    if counts[i, j] or i == j:
                        ax.text(j, i, str(int(counts[i, j])), ha="center", va="center", fontsize=tick_size,
                                color="white" if shares[i, j] > 0.5 else "black")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", facecolor="white")
    buffer.seek(0)
    with Image.open(buffer) as png:
        return png.convert("RGB")


# -- the report files ---------------------------------------------------------
def _comparison(explanation, record: PictureResult, evaluation: FolderEvaluation, layer: str, rank: int,
                alpha: float, colormap: str) -> Image.Image:
    from model.render import grid, overlay

    image = explanation.prepared.loaded.image
    tiles = [("picture", image)]
    for kind, index, p in (("predicted", record.predicted, record.probability),
                           ("true", record.true, record.true_probability)):
        m = explanation.get(layer, index)
        caption = f"{kind}: {evaluation.classes[index]} {p * 100:.1f}%" + ("" if m.ok else " (no evidence)")
        tiles.append((caption, overlay(image, m.on_original(), alpha if m.ok else 0.0, colormap, m.geometry)))
    title = (f"{rank}. {record.path.name}: true {evaluation.classes[record.true]}, "
             f"predicted {evaluation.classes[record.predicted]}")
    return grid(tiles, title=title)


def write_report(evaluation: FolderEvaluation, clf: DenseNetClassifier, out_dir: str | Path,
                 layer: str | None = None, method: str = "gradcam", overwrite: bool = False,
                 progress: Progress | None = None, colormap: str = "jet", alpha: float = 0.5) -> dict:
    """Write ``confusion.png`` and, under ``mistakes/``, each kept mistake's heatmaps; return what was written.

    ``out_dir`` is created if missing.  Returns ``{"confusion": path,
    "mistakes": [{"comparison": path, "predicted": path, "true": path}, ...],
    "problems": [message, ...]}``, the mistakes in the order of
    ``evaluation.mistakes``.  ``comparison`` is the picture and both overlays
    side by side; ``predicted`` and ``true`` are the overlays of each class's
    heatmap on the full picture, named like ``explain``'s with the mistake's
    rank in front (``01_cat_predicted_1-dog_denseblock4_gradcam_overlay.png``),
    so a mistake's files sort together.  A class with no positive evidence
    gets no overlay (its tile in the comparison says so).  A mistake whose
    picture cannot be read any more is listed under ``problems``.  Existing
    files are kept: new ones get free names unless ``overwrite``; files of
    this report never replace each other.  ``ExportError`` when a file cannot
    be written.
    """
    from model.explain import default_layer
    from model.export import OutputNames, describe_os_error, export_stem, safe_component, save_png
    from model.heatmap_files import map_metadata
    from model.render import overlay

    out_dir = Path(out_dir)
    layer = layer or default_layer(clf.model.tap_names)
    taken = OutputNames()
    mistakes = evaluation.mistakes
    folder = out_dir / MISTAKES_FOLDER
    for needed in (out_dir, folder) if mistakes else (out_dir,):
        try:
            needed.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ExportError(f"cannot create the folder {needed}: {describe_os_error(e)}") from e
    meta = {"Software": f"DenseLens {__version__}", "denselens:model": evaluation.model,
            "denselens:folder": str(evaluation.root), "denselens:accuracy": f"{evaluation.accuracy:.6g}"}
    written: dict = {"confusion": str(save_png(render_confusion(evaluation), out_dir / "confusion.png", meta,
                                               overwrite, taken)),
                     "mistakes": [], "problems": []}
    for rank, record in enumerate(mistakes, start=1):
        files: dict[str, str] = {}
        written["mistakes"].append(files)
        try:
            explanation = clf.explain(record.path, layers=[layer], classes=[record.predicted, record.true],
                                      method=method, topk=1, preprocess=evaluation.preprocess)
        except DenseLensError as e:  # the picture changed or went since it was classified
            written["problems"].append(f"mistake {rank}: {e}")
            continue
        image = explanation.prepared.loaded.image
        if image.size != explanation.prepared.geometry.original_size:
            raise ExportError("the image was decoded at reduced size; reload it at full size to export")
        head = f"{rank:02d}_{safe_component(record.path.stem)}"
        true_name, predicted_name = evaluation.classes[record.true], evaluation.classes[record.predicted]
        source = {"denselens:source": str(record.path), "denselens:true_label": true_name,
                  "denselens:colormap": colormap, "denselens:alpha": alpha}
        stem = f"{head}_compare_true-{safe_component(true_name, 40)}_predicted-{safe_component(predicted_name, 40)}"
        pair = _comparison(explanation, record, evaluation, layer, rank, alpha, colormap)
        files["comparison"] = str(save_png(pair, folder / f"{stem}.png",
                                           map_metadata(explanation, explanation.get(layer, record.predicted),
                                                        evaluation.model, source), overwrite, taken))
        for kind, index in (("predicted", record.predicted), ("true", record.true)):
            m = explanation.get(layer, index)
            if not m.ok:  # no positive evidence: a blank or fully red overlay would mislead
                continue
            stem = export_stem(f"{head}_{kind}", index, m.label, layer, explanation.method)
            files[kind] = str(save_png(overlay(image, m.on_original(), alpha, colormap, m.geometry),
                                       folder / f"{stem}_overlay.png",
                                       map_metadata(explanation, m, evaluation.model, source), overwrite, taken))
        if progress:
            progress(rank, len(mistakes))
    return written
