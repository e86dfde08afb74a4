"""Top-k predictions with probability bars; clicking one (or searching any class) picks the heatmap's class."""

from __future__ import annotations

from PySide6.QtCore import QStringListModel, Qt, Signal
from PySide6.QtWidgets import (
    QCompleter,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from gui.text import plain_tooltip

UNFAMILIAR_TEXT = "⚑ Unlike the training pictures"
UNFAMILIAR_TIP = ("This picture is unlike the pictures the model was trained on: its score is outside the range "
                  "of most validation pictures. The model still picks a class, but its confidence should not be "
                  "trusted here.")


class PredictionRow(QPushButton):
    """A checkable row: rank, label and a probability bar."""

    def __init__(self, rank: int, index: int, label: str, probability: float, parent=None) -> None:
        super().__init__(parent)
        self.class_index = index
        self.setCheckable(True)
        self.setToolTip(plain_tooltip(f"Class {index}: {label} — {probability * 100:.2f}%. Click to see its heatmap."))
        self.setAccessibleName(f"Prediction {rank}: {label}, {probability * 100:.1f} percent")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 2)
        name = QLabel(f"{rank}. {label}")
        name.setTextFormat(Qt.TextFormat.PlainText)  # class names come from files: never markup
        name.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        bar = QProgressBar()
        bar.setRange(0, 1000)
        bar.setValue(round(probability * 1000))
        bar.setFormat(f"{probability * 100:.1f}%")
        bar.setFixedWidth(110)
        bar.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        layout.addWidget(name, 1)
        layout.addWidget(bar)
        self.setMinimumHeight(30)


class PredictionsPanel(QWidget):
    classChosen = Signal(int)
    topkChanged = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._labels: list[str] = []
        self._rows: list[PredictionRow] = []
        layout = QVBoxLayout(self)
        header = QHBoxLayout()
        title = QLabel("<b>Predictions</b>")
        self.topk = QSpinBox()
        self.topk.setRange(1, 20)
        self.topk.setPrefix("top ")
        self.topk.setToolTip("How many predictions to list")
        self.topk.setAccessibleName("Number of predictions")
        self.topk.valueChanged.connect(self.topkChanged)
        header.addWidget(title, 1)
        header.addWidget(self.topk)
        layout.addLayout(header)
        self.unfamiliar = QLabel(UNFAMILIAR_TEXT)
        self.unfamiliar.setTextFormat(Qt.TextFormat.PlainText)
        self.unfamiliar.setToolTip(UNFAMILIAR_TIP)
        self.unfamiliar.setAccessibleName("Warning: unlike the training pictures")
        self.unfamiliar.setAccessibleDescription(UNFAMILIAR_TIP)
        self.unfamiliar.setStyleSheet("QLabel { background: #fff3cd; color: #6b4a00; border: 1px solid #e0b000;"
                                      " border-radius: 4px; padding: 3px 6px; font-weight: bold; }")
        self.unfamiliar.hide()
        layout.addWidget(self.unfamiliar)
        self._rows_box = QVBoxLayout()
        self._rows_box.setSpacing(2)
        layout.addLayout(self._rows_box)
        self.placeholder = QLabel("Drop images here or use File ▸ Open.")
        self.placeholder.setTextFormat(Qt.TextFormat.PlainText)
        self.placeholder.setWordWrap(True)
        self._rows_box.addWidget(self.placeholder)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Show heatmap for any class…")
        self.search.setClearButtonEnabled(True)
        self.search.setAccessibleName("Search a class by name")
        self.search.setToolTip("Type part of a class name and press Enter: the first matching class is shown")
        self._completer_model = QStringListModel(self)
        completer = QCompleter(self._completer_model, self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.search.setCompleter(completer)
        completer.activated.connect(self._search_class)
        self.search.returnPressed.connect(lambda: self._search_class(self.search.text()))
        layout.addWidget(self.search)
        self.search_note = QLabel()
        self.search_note.setTextFormat(Qt.TextFormat.PlainText)
        self.search_note.setWordWrap(True)
        self.search_note.hide()
        self.search.textEdited.connect(lambda _t: self.search_note.hide())
        layout.addWidget(self.search_note)
        layout.addStretch(1)

    def set_labels(self, labels: list[str]) -> None:
        self._labels = list(labels)
        self._completer_model.setStringList([f"{label} ({i})" for i, label in enumerate(labels)])

    def set_message(self, text: str) -> None:
        self._clear()
        self.unfamiliar.hide()
        self.placeholder.setText(text)
        self.placeholder.show()

    def set_predictions(self, predictions: list, selected: int | None) -> None:
        self._clear()
        self.placeholder.hide()
        # The badge follows the predictions it is shown with: never another picture's.
        self.unfamiliar.setVisible(bool(predictions) and getattr(predictions[0], "unfamiliar", None) is True)
        for rank, p in enumerate(predictions, 1):
            row = PredictionRow(rank, p.index, p.label, p.probability, self)
            row.setChecked(p.index == selected)
            row.clicked.connect(lambda _checked=False, i=p.index: self._choose(i))
            self._rows_box.addWidget(row)
            self._rows.append(row)

    def _choose(self, class_index: int) -> None:
        """One row checked, the clicked one (Qt would leave the previous one checked too until a redraw)."""
        for row in self._rows:
            row.setChecked(row.class_index == class_index)
        self.classChosen.emit(class_index)

    def rows(self) -> list[PredictionRow]:
        return list(self._rows)

    def _clear(self) -> None:
        for row in self._rows:
            row.deleteLater()
        self._rows.clear()

    def _search_class(self, text: str) -> None:
        index = find_class(text, self._labels)
        if index is None:
            self.search_note.setText(f"No class matches “{text.strip()}”" if text.strip() else "")
            self.search_note.setVisible(bool(text.strip()))
            return
        self.search_note.hide()
        self.classChosen.emit(index)


def find_class(text: str, labels: list[str]) -> int | None:
    """The class a typed text means: an exact name, "name (index)" as the completer shows it, an index,
    else the first class whose name contains the text (the first completion), ignoring case."""
    text = text.strip()
    if not text:
        return None
    if text.endswith(")") and "(" in text:
        idx = text.rsplit("(", 1)[1][:-1]
        if idx.isdigit() and int(idx) < len(labels):
            return int(idx)
    lowered = [label.lower() for label in labels]
    wanted = text.lower()
    if wanted in lowered:
        return lowered.index(wanted)
    if text.isdigit() and int(text) < len(labels):
        return int(text)
    return next((i for i, label in enumerate(lowered) if wanted in label), None)
