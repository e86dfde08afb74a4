"""A model's evaluation on a labelled folder: accuracy, per-class figures and a clickable confusion matrix.

Clicking a cell lists its pictures (the most confident first); selecting one
shows the heatmaps of its predicted and of its true class side by side.  The
evaluation and the heatmaps are computed by a ``gui.trainer.Evaluator`` in its
own thread, with its own copy of the model, so the view keeps explaining the
model it evaluated whatever the main window loads meanwhile.  The view binds
to a ``gui.session.EvaluationState`` (plain state, no Qt).
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QBrush, QCloseEvent, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.messages import Evaluated, EvaluationRequest, PairRequest, PairResult
from gui.qimages import rgb_pixmap
from gui.session import EvaluationState
from gui.text import ERROR_STYLE, display_name, display_path, plain_tooltip
from gui.trainer import PAIR_METHOD, Evaluator, start_worker, stop_worker
from model.cam import METHODS
from model.folder_evaluation import row_normalised
from model.zoo import model_title

CELL = 46  # pixels per confusion cell
PAIR_TILE = 260  # pixels on the longer side of each heatmap shown
UNFAMILIAR_MARK = "⚑"
NO_FIGURE = "—"  # a figure with no pictures to be computed from
CANCELLED = "The evaluation was cancelled."


def cell_colour(share: float) -> QColor:
    """White to dark blue with the share of the true class (matplotlib's Blues, roughly)."""
    share = min(1.0, max(0.0, share))
    return QColor(round(247 - 239 * share), round(251 - 203 * share), round(255 - 148 * share))


class ConfusionTable(QTableWidget):
    """Rows: true class; columns: predicted class; each cell's count, coloured by the share of its row."""

    cellChosen = Signal(int, int)  # true, predicted (class indices of the model)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.classes: list[int] = []
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setAccessibleName("Confusion matrix: rows are true classes, columns predicted classes")
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.horizontalHeader().setDefaultSectionSize(CELL)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.verticalHeader().setDefaultSectionSize(CELL - 14)
        self.currentCellChanged.connect(self._on_current)

    def show_matrix(self, evaluation) -> None:
        shown = evaluation.shown_classes()
        self.classes = shown
        counts = evaluation.confusion[shown][:, shown]
        shares = row_normalised(counts)
        names = [display_path(evaluation.classes[i]) for i in shown]
        self.blockSignals(True)
        self.clear()
        self.setRowCount(len(shown))
        self.setColumnCount(len(shown))
        columns = [_short(n, 10) for n in names]
        self.setHorizontalHeaderLabels(columns)
        self.setVerticalHeaderLabels([_short(n, 18) for n in names])
        metrics = self.horizontalHeader().fontMetrics()
        width = max([CELL, *(metrics.horizontalAdvance(c) + 14 for c in columns)])
        self.horizontalHeader().setDefaultSectionSize(min(width, 2 * CELL))
        for i, name in enumerate(names):
            self.horizontalHeaderItem(i).setToolTip(f"predicted: {name}")
            self.verticalHeaderItem(i).setToolTip(f"true: {name}")
        for r in range(len(shown)):
            total = int(counts[r].sum())
            for c in range(len(shown)):
                n = int(counts[r, c])
                item = QTableWidgetItem(str(n) if n or r == c else "")
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                item.setBackground(QBrush(cell_colour(shares[r, c])))
                item.setForeground(QBrush(QColor("white" if shares[r, c] > 0.5 else "black")))
                if r == c:
                    font = QFont(item.font())
                    font.setBold(True)
                    item.setFont(font)
                item.setToolTip(plain_tooltip(f"true {names[r]}, predicted {names[c]}: {n} picture{'s' * (n != 1)}"
                                              + (f" ({n / total:.0%} of {names[r]})" if total else "")
                                              + ("\nClick to list them" if n else "")))
                self.setItem(r, c, item)
        self.blockSignals(False)
        side = (self.verticalHeader().sizeHint().width() + self.horizontalHeader().defaultSectionSize() * len(shown)
                + 2 * self.frameWidth() + 2)
        self.setMinimumWidth(min(side, 520))

    def select_cell(self, true: int, predicted: int) -> None:
        if true in self.classes and predicted in self.classes:
            self.setCurrentCell(self.classes.index(true), self.classes.index(predicted))

    def _on_current(self, row: int, column: int, *_previous) -> None:
        if 0 <= row < len(self.classes) and 0 <= column < len(self.classes):
            self.cellChosen.emit(self.classes[row], self.classes[column])


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class PairView(QWidget):
    """The heatmaps of a picture's predicted and true class, side by side, captioned."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.note = QLabel("Select a picture to see its heatmaps.")
        self.note.setWordWrap(True)
        self.note.setTextFormat(Qt.TextFormat.PlainText)
        self.tiles = QHBoxLayout()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.note)
        layout.addLayout(self.tiles)
        layout.addStretch(1)
        self.images: list[QLabel] = []
        self.captions: list[QLabel] = []

    def clear(self, note: str) -> None:
        while self.tiles.count():
            item = self.tiles.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.images, self.captions = [], []
        self.note.setText(note)
        self.note.show()

    def show_tiles(self, tiles: list[tuple[str, object, str]], note: str) -> None:
        """``tiles``: (caption, RGB array, tooltip)."""
        self.clear(note)
        self.note.setVisible(bool(note))
        for caption, array, tip in tiles:
            column = QVBoxLayout()
            picture = QLabel()
            pixmap = rgb_pixmap(array).scaled(QSize(PAIR_TILE, PAIR_TILE), Qt.AspectRatioMode.KeepAspectRatio,
                                              Qt.TransformationMode.SmoothTransformation)  # small pictures grow
            picture.setPixmap(pixmap)
            picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
            picture.setToolTip(plain_tooltip(tip))
            text = QLabel(caption)
            text.setTextFormat(Qt.TextFormat.PlainText)
            text.setWordWrap(True)
            text.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            text.setMaximumWidth(PAIR_TILE)
            column.addWidget(picture)
            column.addWidget(text)
            box = QWidget()
            box.setLayout(column)
            self.tiles.addWidget(box)
            self.images.append(picture)
            self.captions.append(text)
        self.tiles.addStretch(1)


class EvaluationWindow(QDialog):
    """See the module docstring."""

    requestEvaluate = Signal(object)  # EvaluationRequest
    requestPair = Signal(object)  # PairRequest

    def __init__(self, spec: str, device: str, folder: str, files: list[str] | None = None, what: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowFlag(Qt.WindowType.Window)
        self.setModal(False)
        self.state = EvaluationState()
        self.spec, self.device, self.folder, self.files = spec, device, folder, files
        self.layer = ""
        name = model_title(spec)
        what = what or f"the pictures in {display_name(folder)}"
        self.setWindowTitle(f"Evaluation of {display_path(name)} — DenseLens")
        self.resize(1100, 700)

        self.heading = QLabel(f"{display_path(name)} on {display_path(what)}")
        self.heading.setTextFormat(Qt.TextFormat.PlainText)
        self.heading.setWordWrap(True)
        self.heading.setToolTip(plain_tooltip(f"Model: {spec}\nFolder: {folder}"))
        font = self.heading.font()
        font.setBold(True)
        self.heading.setFont(font)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setFormat("Evaluating %p%")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_button)
        self.summary = QLabel("Loading the model and checking the folder…")
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.notes = QLabel()
        self.notes.setTextFormat(Qt.TextFormat.PlainText)
        self.notes.setWordWrap(True)
        self.notes.hide()

        self.matrix = ConfusionTable()
        self.matrix.cellChosen.connect(self.choose_cell)
        self.per_class = QTableWidget()
        self.per_class.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.per_class.setAccessibleName("Figures per class")
        self.per_class.setColumnCount(5)
        self.per_class.setHorizontalHeaderLabels(["class", "pictures", "precision", "recall", "F1"])
        self.per_class.verticalHeader().hide()
        self.per_class.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        left = QWidget()
        left_col = QVBoxLayout(left)
        left_col.setContentsMargins(0, 0, 0, 0)
        left_col.addWidget(_bold("Confusion matrix"))
        hint = QLabel("Rows: true class; columns: predicted class. Click a cell to see its pictures.")
        hint.setWordWrap(True)
        left_col.addWidget(hint)
        left_col.addWidget(self.matrix, 3)
        left_col.addWidget(_bold("Per class"))
        left_col.addWidget(self.per_class, 2)

        self.cell_title = QLabel("No cell chosen.")
        self.cell_title.setTextFormat(Qt.TextFormat.PlainText)
        self.cell_title.setWordWrap(True)
        self.pictures = QListWidget()
        self.pictures.setAccessibleName("Pictures of the chosen cell")
        self.pictures.currentRowChanged.connect(self._on_picture_row)
        self.pair = PairView()
        right = QWidget()
        right_col = QVBoxLayout(right)
        right_col.setContentsMargins(0, 0, 0, 0)
        right_col.addWidget(self.cell_title)
        right_col.addWidget(self.pictures, 1)
        right_col.addWidget(_bold(f"Heatmaps ({METHODS[PAIR_METHOD].title}): predicted class and true class"))
        right_col.addWidget(self.pair, 2)

        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([480, 620])
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        bottom.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addLayout(progress_row)
        layout.addWidget(self.summary)
        layout.addWidget(self.notes)
        layout.addWidget(splitter, 1)
        layout.addLayout(bottom)

        self.evaluator = Evaluator()
        self.requestEvaluate.connect(self.evaluator.evaluate)
        self.requestPair.connect(self.evaluator.explain_pair)
        self.evaluator.progress.connect(self._on_progress)
        self.evaluator.evaluated.connect(self._on_evaluated)
        self.evaluator.pairReady.connect(self._on_pair)
        self.thread = start_worker(self.evaluator, "DenseLens evaluation", self)
        s = self.state
        s.subscribe("evaluation", self._show_evaluation)
        s.subscribe("error", self._show_error)
        s.subscribe("cell", lambda _v: self._show_cell())
        s.subscribe("pair", lambda _v: self._show_pair())
        s.subscribe("picture", lambda _v: self._show_pair())
        self.running = True
        self.requestEvaluate.emit(EvaluationRequest(1, spec, device, folder, files or None))

    # -- evaluation --------------------------------------------------------------------
    def cancel(self) -> None:
        self.evaluator.cancel.set()
        self.cancel_button.setEnabled(False)
        self.progress.setFormat("Cancelling…")

    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        if self.progress.maximum() == 0:
            self.summary.setText("Checking and classifying every picture…")
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    @Slot(object)
    def _on_evaluated(self, result: Evaluated) -> None:
        self.running = False
        self.progress.hide()
        self.cancel_button.hide()
        self.layer = result.layer
        if result.cancelled:
            self.state.fail(CANCELLED)
        elif result.error is not None:
            self.state.fail(result.error)
        else:
            self.state.accept(result.evaluation)

    def _show_error(self, message: str | None) -> None:
        if message:
            self.summary.setText(display_path(message))
            self.summary.setStyleSheet("" if message == CANCELLED else ERROR_STYLE)  # a cancel is no error

    def _show_evaluation(self, evaluation) -> None:
        if evaluation is None:
            return
        e = evaluation
        self.summary.setStyleSheet("")
        parts = [f"Accuracy {e.accuracy:.1%} ({e.correct} of {e.total})", f"macro F1 {e.macro['f1']:.2f}"]
        unfamiliar = e.unfamiliar_counts()
        if unfamiliar is not None:
            parts.append(f"{sum(unfamiliar) or 'none'} unlike the training pictures {UNFAMILIAR_MARK}")
        if e.skipped:
            parts.append(f"{len(e.skipped)} skipped")
        self.summary.setText(" · ".join(parts))
        notes = [display_path(w) for w in e.warnings]
        if e.skipped:
            notes.append(f"{len(e.skipped)} picture{'s' * (len(e.skipped) != 1)} could not be read (hover for why)")
        if e.ignored:
            notes.append(f"{len(e.ignored)} {'entry' if len(e.ignored) == 1 else 'entries'} ignored (hover for why)")
        self.notes.setText("\n".join(notes))
        self.notes.setToolTip(plain_tooltip("\n".join([f"{display_path(str(p))}: {display_path(why)}"
                                                       for p, why in [*e.skipped, *e.ignored]][:100])))
        self.notes.setVisible(bool(notes))
        self.matrix.show_matrix(e)
        figures = e.per_class
        shown = e.shown_classes()
        self.per_class.setRowCount(len(shown))
        for row, i in enumerate(shown):
            f = figures[i]
            # A class no picture is of, or none is predicted as, has no recall, or no precision: a dash, not 0.00.
            values = [display_path(f.name), str(f.count), f"{f.precision:.2f}" if f.predicted else NO_FIGURE,
                      f"{f.recall:.2f}" if f.count else NO_FIGURE, f"{f.f1:.2f}" if f.count else NO_FIGURE]
            for col, value in enumerate(values):
                item = QTableWidgetItem(value)
                if col:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if value == NO_FIGURE:
                    item.setToolTip("No picture of this class in the folder" if not f.count
                                    else "No picture was predicted as this class")
                self.per_class.setItem(row, col, item)
        self.per_class.resizeColumnsToContents()
        self.per_class.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        mistakes = e.all_mistakes()
        if mistakes:  # start at the most frequent confusion
            counts = e.confusion.copy()
            for i in range(len(counts)):
                counts[i, i] = 0
            true, predicted = divmod(int(counts.argmax()), counts.shape[1])
            self.matrix.select_cell(true, predicted)
        self._show_cell()

    # -- cells and pictures ----------------------------------------------------------------
    def choose_cell(self, true: int, predicted: int) -> None:
        self.state.choose_cell(true, predicted)

    def _show_cell(self) -> None:
        s, e = self.state, self.state.evaluation
        self.pictures.blockSignals(True)
        self.pictures.clear()
        self.pictures.blockSignals(False)
        if e is None or s.cell is None:
            self.cell_title.setText("Click a cell of the confusion matrix to list its pictures."
                                    if e is not None else "")
            self.pair.clear("")
            return
        true, predicted = s.cell
        records = s.cell_pictures()
        names = e.classes
        what = (f"{display_path(names[true])} recognised" if true == predicted else
                f"true {display_path(names[true])}, predicted {display_path(names[predicted])}")
        self.cell_title.setText(f"{what}: {len(records)} picture{'s' * (len(records) != 1)}"
                                + (" (the most confident first)" if len(records) > 1 else ""))
        self.pictures.blockSignals(True)
        for r in records:
            text = f"{display_name(str(r.path))} — {r.probability:.0%}"
            if not r.correct:
                text += f" (true class {r.true_probability:.0%})"
            if r.unfamiliar:
                text += f"  {UNFAMILIAR_MARK} unlike the training pictures"
            item = QListWidgetItem(text)
            item.setToolTip(plain_tooltip(display_path(str(r.path))))
            self.pictures.addItem(item)
        self.pictures.setCurrentRow(-1)
        self.pictures.blockSignals(False)
        self.pair.clear("Select a picture to see its heatmaps." if records else "This cell is empty.")

    def _on_picture_row(self, row: int) -> None:
        records = self.state.cell_pictures()
        self.choose_picture(records[row] if 0 <= row < len(records) else None)

    def choose_picture(self, record) -> None:
        request_id = self.state.choose_picture(record)
        if request_id is not None:
            self.requestPair.emit(PairRequest(request_id, str(record.path), record.predicted, record.true,
                                              self.state.evaluation.preprocess))

    @Slot(object)
    def _on_pair(self, result: PairResult) -> None:
        self.state.accept_pair(result)

    def _show_pair(self) -> None:
        s = self.state
        record, pair = s.picture, s.pair
        if record is None:
            return
        if pair is None or pair.path != str(record.path):
            self.pair.clear(f"Computing the heatmaps of {display_name(str(record.path))}…")
            return
        if pair.error:
            self.pair.clear(display_path(pair.error))
            return
        names = s.evaluation.classes
        probability = {record.predicted: record.probability, record.true: record.true_probability}
        tiles = []
        for tile in pair.tiles:
            index = tile["class_index"]
            caption = f"{tile['kind']}: {display_path(names[index])} {probability[index]:.0%}"
            if not tile["ok"]:
                caption += " (no positive evidence)"
            tip = f"{display_path(str(record.path))}\n{self.layer} · {METHODS[PAIR_METHOD].title}"
            tiles.append((caption, tile["image"], tip + (f"\n{tile['message']}" if tile["message"] else "")))
        note = display_name(str(record.path))
        if record.unfamiliar:
            note += f"  {UNFAMILIAR_MARK} unlike the training pictures: do not trust the confidence"
        self.pair.show_tiles(tiles, note)

    # -- closing ----------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        """Cancel what runs and let the thread end without waiting for it (``shutdown`` waits)."""
        if self.thread.isRunning():
            self.evaluator.cancel.set()
            self.thread.quit()
        super().closeEvent(event)

    def shutdown(self, timeout_ms: int = 60000) -> bool:
        self.evaluator.cancel.set()
        return stop_worker(self.thread, timeout_ms)


def _bold(text: str) -> QLabel:
    label = QLabel(text)
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    return label
