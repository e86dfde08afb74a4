"""File ▸ Audit a folder…: what the model relies on across a folder, class by class.

The form chooses the folder, the report folder (``<folder>-audit`` beside it;
a non-empty one is only reused after asking, and an earlier audit of the same
folder can be resumed), the label mode, the layer and the method.  The audit
runs in a ``gui.audit_worker.Auditor`` with its own copy of the model, with
progress (pictures explained per second, then the classes analysed) and
Cancel; what was explained stays on disk and Resume carries on.

The results, per class (flagged classes first): the mean heatmap, every flag
with its blur test (the probability drop against the control's, and the
verdict) and its before/after pictures, and the clusters with their exemplars.
Clicking a picture in a flag's or a cluster's list shows it in the main window
with that class's heatmap at the audited layer and method (``pictureChosen``).
The view binds to a ``gui.session.AuditRun`` (plain state, no Qt).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QStandardPaths, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QBrush, QColor, QDesktopServices, QFont, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.audit_worker import Auditor
from gui.messages import AuditRequest, AuditResult, ModelInfo
from gui.session import AuditRun, flag_verdict
from gui.text import ERROR_STYLE, display_name, display_path, plain_tooltip
from gui.trainer import start_worker, stop_worker
from model.audit_options import LABEL_MODES
from model.cam import METHODS

MEAN_SIDE = 240  # pixels of the class's mean heatmap on screen (the file has 160)
EXAMPLE_SIDE = 200  # pixels of each before/after picture
MIN_GRID_WIDTH = 480  # a cluster's exemplar grid is scaled down to the panel's width, not below this
LIST_ROWS = 6  # picture names visible in a list before it scrolls
FLAG_MARK = "⚑"
KINDS = {"fixed-location": "the evidence sits at the same place in most pictures",
         "border": "the evidence sits at the picture's border in most pictures"}
RELIES = QColor(176, 0, 32)
VERDICT_NOTES = {"relies on it": " (the drop is well above the control's: a shortcut the model uses)",
                 "no real drop": " (about what blurring elsewhere costs: probably not a shortcut)"}


# -- plain helpers (no Qt) ---------------------------------------------------------------------
def default_output(folder: str) -> str:
    """``<folder>-audit`` beside the folder, else in the user's documents."""
    path = Path(folder)
    name = f"{path.name or 'pictures'}-audit"
    if path.parent.is_dir() and os.access(path.parent, os.W_OK):
        return str(path.parent / name)
    documents = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation) or str(Path.home())
    return str(Path(documents) / name)


def class_folders(folder: str, labels: list[str]) -> list[str]:
    """The sub-folders of ``folder`` named after one of ``labels`` (compared in composed Unicode)."""
    wanted = {unicodedata.normalize("NFC", name) for name in labels}
    try:
        with os.scandir(folder) as entries:
            names = [e.name for e in entries if e.is_dir() and not e.name.startswith(".")]
    except OSError:
        return []
    return sorted(n for n in names if unicodedata.normalize("NFC", n) in wanted)


def _same_place(a: str | Path, b: str | Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except (OSError, RuntimeError):
        return False


def audited_folder(out: str | Path) -> str | None:
    """The folder an earlier audit in ``out`` was of (finished: ``audit.json``; stopped: its records)."""
    out = Path(out)
    try:
        return str(json.loads((out / "audit.json").read_text(encoding="utf-8"))["folder"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        with open(out / "records.jsonl", encoding="ascii", errors="replace") as f:
            first = json.loads(f.readline())
        return str(Path(first["path"]).parent)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def output_kind(out: str, folder: str) -> str:
    """"new" (missing or empty: just write), "previous" (an earlier audit of ``folder``: offer Resume),
    "other" (holds something else: ask).  What cannot be read counts as new: the audit says why."""
    path = Path(out)
    try:
        if not path.is_dir() or not any(path.iterdir()):
            return "new"
    except OSError:
        return "new"
    earlier = audited_folder(path)
    if earlier is not None:
        root = Path(folder)
        place = Path(earlier)
        if _same_place(place, root) or any(_same_place(p, root) for p in place.parents):
            return "previous"
    return "other"


def png_pixmap(path: Path) -> QPixmap:
    """A picture the audit wrote (read by Python: the path never goes through a QString)."""
    pixmap = QPixmap()
    with contextlib.suppress(OSError):
        pixmap.loadFromData(path.read_bytes(), "PNG")
    return pixmap


def _scaled(pixmap: QPixmap, side: int) -> QPixmap:
    """``pixmap`` with its longer side at ``side`` (small pictures grow: they are the audit's thumbnails)."""
    if pixmap.isNull():
        return pixmap
    return pixmap.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)


def _label(text: str = "", bold: bool = False, wrap: bool = True) -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(wrap)
    if bold:
        font = label.font()
        font.setBold(True)
        label.setFont(font)
    return label


def _picture(pixmap: QPixmap, caption: str, tip: str = "", caption_width: int = 0) -> QWidget:
    box = QWidget()
    column = QVBoxLayout(box)
    column.setContentsMargins(0, 0, 0, 0)
    picture = QLabel()
    if pixmap.isNull():
        picture.setText("(picture missing)")
    else:
        picture.setPixmap(pixmap)
    picture.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    if tip:
        picture.setToolTip(plain_tooltip(tip))
    column.addWidget(picture)
    if caption:
        text = _label(caption)
        text.setMaximumWidth(caption_width or max(pixmap.width(), 160))
        column.addWidget(text)
    return box


class PictureList(QListWidget):
    """The file names of some pictures; clicking one emits its exact path (never round-tripped through Qt)."""

    pictureChosen = Signal(object, int)  # the path as the audit recorded it (a str), its audited class

    def __init__(self, paths: list[str], class_index: int, what: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.paths = list(paths)
        self.class_index = class_index
        self.setAccessibleName(what)
        self.setUniformItemSizes(True)
        for i, path in enumerate(self.paths):
            item = QListWidgetItem(display_name(path))
            item.setData(Qt.ItemDataRole.UserRole, i)
            item.setToolTip(plain_tooltip(f"{display_path(path)}\nClick to see it in the main window"))
            self.addItem(item)
        rows = min(LIST_ROWS, max(1, len(self.paths)))
        self.setFixedHeight(rows * max(self.sizeHintForRow(0), 18) + 2 * self.frameWidth() + 4)
        self.itemClicked.connect(self._on_item)
        self.itemActivated.connect(self._on_item)

    def _on_item(self, item: QListWidgetItem) -> None:
        self.pictureChosen.emit(self.paths[item.data(Qt.ItemDataRole.UserRole)], self.class_index)


class AuditWindow(QDialog):
    """See the module docstring."""

    requestAudit = Signal(object)  # AuditRequest, to the auditor's thread
    pictureChosen = Signal(object, int, str, str, object)  # path, class index, layer, method, model spec

    def __init__(self, parent: QWidget | None = None, start_folder: str = "",
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(parent)
        self.setWindowFlag(Qt.WindowType.Window)
        self.setModal(False)
        self.setWindowTitle("Audit a folder — DenseLens")
        self.resize(1280, 880)
        self.run = run = AuditRun(clock)
        self.model: ModelInfo | None = None
        self.device = "auto"
        self.start_folder = start_folder
        self.expert: dict = {}  # more AuditConfig fields (tests: a small batch size)
        self._out_chosen = False  # the report folder was typed or chosen: a new folder keeps it
        self._labels_chosen = False
        self.busy = False  # a request was sent and has not answered yet
        self.picture_lists: list[PictureList] = []  # the lists of the class shown (tests click them)

        self._build_form()
        self._build_results()
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addLayout(self.form)
        layout.addLayout(self.progress_row)
        layout.addLayout(self.status_row)
        layout.addWidget(self.splitter, 1)

        self.auditor = Auditor()
        self.requestAudit.connect(self.auditor.run)
        self.auditor.progress.connect(self._on_progress)
        self.auditor.ended.connect(self._on_ended)
        self.thread = start_worker(self.auditor, "DenseLens audit", self)
        run.subscribe("state", self._on_state)
        for name in ("state", "progress", "message"):
            run.subscribe(name, lambda _v: self._show_status())
        run.subscribe("summary", lambda _v: self._show_classes())
        run.subscribe("chosen", lambda _v: self._show_class())
        self._on_state(run.state)
        self._show_status()
        self._show_class()

    # -- construction -------------------------------------------------------------------------
    def _build_form(self) -> None:
        self.heading = _label(bold=True)
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("A folder of pictures: one sub-folder per class, or any pictures")
        self.folder.setAccessibleName("Folder to audit")
        self.folder.editingFinished.connect(lambda: self.set_folder(self.folder.text().strip()))
        browse = QPushButton("Choose…")
        browse.clicked.connect(self.choose_folder)
        self.out = QLineEdit()
        self.out.setPlaceholderText("Where the report goes (default: the folder's name with -audit, beside it)")
        self.out.setAccessibleName("Report folder")
        self.out.textEdited.connect(self._on_out_edited)
        out_browse = QPushButton("Choose…")
        out_browse.clicked.connect(self.choose_output)
        self.labels = QComboBox()
        for mode, what in LABEL_MODES.items():
            self.labels.addItem(f"{mode.capitalize()}: {what}", mode)
        self.labels.setAccessibleName("Label mode")
        self.labels.setToolTip("Which class each picture is audited for")
        self.labels.activated.connect(self._on_labels_chosen)
        self.layer = QComboBox()
        self.layer.setAccessibleName("Layer")
        self.layer.setToolTip("The layer whose heatmaps are audited (the deepest dense block unless you choose)")
        self.method = QComboBox()
        for m in METHODS.values():
            if m.needs_gradients:
                self.method.addItem(m.title, m.name)
        self.method.setAccessibleName("Method")
        self.start_button = QPushButton("Start audit")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(lambda: self.start())
        self.folder_note = _label()
        self.folder_buttons = (browse, out_browse)

        grid = QGridLayout()
        grid.addWidget(QLabel("Pictures"), 0, 0)
        grid.addWidget(self.folder, 0, 1)
        grid.addWidget(browse, 0, 2)
        grid.addWidget(QLabel("Report into"), 1, 0)
        grid.addWidget(self.out, 1, 1)
        grid.addWidget(out_browse, 1, 2)
        grid.addWidget(QLabel("Classes"), 2, 0)
        choices = QHBoxLayout()
        choices.addWidget(self.labels, 1)
        choices.addWidget(QLabel(" Layer"))
        choices.addWidget(self.layer)
        choices.addWidget(QLabel(" Method"))
        choices.addWidget(self.method)
        grid.addLayout(choices, 2, 1)
        grid.addWidget(self.start_button, 2, 2)
        grid.addWidget(self.folder_note, 3, 1, 1, 2)
        grid.setColumnStretch(1, 1)
        self.form = grid

        self.progress = QProgressBar()
        self.progress.setAccessibleName("Audit progress")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after the current batch; what was explained stays: Resume carries on")
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Carry on the stopped audit without explaining its pictures again")
        self.resume_button.clicked.connect(self.resume)
        self.report_button = QPushButton("Open report")
        self.report_button.setToolTip("report.html: the whole audit in one page, pictures included")
        self.report_button.clicked.connect(self.open_report)
        row = QHBoxLayout()
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)
        self.progress_row = row
        self.status = _label()
        self.status.setAccessibleName("Audit status")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        status_row = QHBoxLayout()
        status_row.addWidget(self.status, 1)
        status_row.addWidget(self.resume_button)
        status_row.addWidget(self.report_button)
        self.status_row = status_row

    def _build_results(self) -> None:
        self.table = QTableWidget()
        self.table.setColumnCount(4)
        self.table.setHorizontalHeaderLabels(["class", "pictures", "accuracy", "flags"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAccessibleName("Audited classes, flagged first")
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.currentCellChanged.connect(self._on_row)
        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(_label("Classes (flagged first)", bold=True))
        column.addWidget(self.table, 1)

        self.detail = QWidget()
        self.detail_layout = QVBoxLayout(self.detail)
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.detail)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.splitter = QSplitter()
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.scroll)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([330, 950])

    # -- the form -------------------------------------------------------------------------------
    def set_model(self, info: ModelInfo, device: str = "auto") -> None:
        """The model the next audit explains (the main window's current one); not while an audit runs."""
        if self.run.running:
            return
        self.model, self.device = info, device
        self.heading.setText(f"What {display_path(info.title)} relies on, class by class")
        chosen = self.layer.currentData()
        self.layer.clear()
        for tap in info.taps:
            self.layer.addItem(tap, tap)
        blocks = [t for t in info.taps if t.startswith("denseblock")]
        keep = chosen if chosen in info.taps else (blocks[-1] if blocks else info.taps[-1])
        self.layer.setCurrentIndex(self.layer.findData(keep))
        if self.folder.text().strip():
            self.set_folder(self.folder.text().strip())
        self._show_status()

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Audit a folder", self.folder.text() or self.start_folder)
        if folder:
            self.set_folder(folder)

    def choose_output(self) -> None:
        out = QFileDialog.getExistingDirectory(self, "Write the audit into", self.out.text() or self.start_folder)
        if out:
            self.set_output(out)

    def set_output(self, out: str) -> None:
        """Write the report into ``out`` (kept when another folder is chosen)."""
        self.out.setText(out)
        self._out_chosen = bool(out)

    def _on_out_edited(self, text: str) -> None:
        self._out_chosen = bool(text.strip())

    def _on_labels_chosen(self, _index: int) -> None:
        self._labels_chosen = True
        self._show_folder_note()

    def set_folder(self, folder: str) -> None:
        """Choose the folder: the report folder and the label mode follow it unless chosen by hand."""
        if self.folder.text() != folder:
            self.folder.setText(folder)
        if folder and not self._out_chosen:
            self.out.setText(default_output(folder))
        if folder and not self._labels_chosen:
            matching = class_folders(folder, self.model.labels) if self.model else []
            self.labels.setCurrentIndex(self.labels.findData("folders" if matching else "predicted"))
        self._show_folder_note()

    def _show_folder_note(self) -> None:
        folder = self.folder.text().strip()
        if not folder or self.model is None:
            self.folder_note.setText("")
            return
        if not Path(folder).is_dir():
            self.folder_note.setText("There is no folder here.")
            return
        matching = class_folders(folder, self.model.labels)
        if matching:
            shown = ", ".join(display_path(n) for n in matching[:6]) + (", …" if len(matching) > 6 else "")
            note = f"{len(matching)} sub-folder{'s' * (len(matching) != 1)} named after the model's classes ({shown})."
        else:
            note = "No sub-folder is named after one of the model's classes."
        if self.labels.currentData() == "predicted":
            note += " Each picture is audited for the class the model predicts."
        else:
            note += " Each picture is audited for its folder's class."
        self.folder_note.setText(note)

    def ask_reuse(self, kind: str, out: str) -> str | None:
        """Whether to write into a non-empty report folder: "resume", "fresh" or None (tests replace this)."""
        if kind == "previous":
            box = QMessageBox(QMessageBox.Icon.Question, "Resume the earlier audit?",
                              f"{display_path(out)} holds an earlier audit of this folder. Resume carries on "
                              "without explaining its pictures again (choose the same layer and method); "
                              "Start again explains every picture anew.", QMessageBox.StandardButton.NoButton, self)
            resume = box.addButton("Resume", QMessageBox.ButtonRole.AcceptRole)
            fresh = box.addButton("Start again", QMessageBox.ButtonRole.DestructiveRole)
        else:
            box = QMessageBox(QMessageBox.Icon.Warning, "Use a folder that is not empty?",
                              f"{display_path(out)} is not empty and holds no audit of this folder. The audit "
                              "writes audit.json, report.html, heatmaps.npz and pictures into it, replacing files "
                              "of the same name.", QMessageBox.StandardButton.NoButton, self)
            resume = None
            fresh = box.addButton("Write into it", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.exec()
        clicked = box.clickedButton()
        return "resume" if clicked is resume and resume is not None else "fresh" if clicked is fresh else None

    # -- running ---------------------------------------------------------------------------------
    def start(self, resume: bool = False) -> bool:
        """Audit the chosen folder (after asking about a non-empty report folder); False if nothing started."""
        if self.busy or self.model is None:
            return False
        folder = self.folder.text().strip()
        if not folder:
            self.status.setText("Choose a folder of pictures to audit.")
            return False
        out = self.out.text().strip() or default_output(folder)
        self.out.setText(out)
        if not resume:
            kind = output_kind(out, folder)
            if kind != "new":
                answer = self.ask_reuse(kind, out)
                if answer is None:
                    return False
                resume = answer == "resume"
        config = {"folder": folder, "out": out, "labels": self.labels.currentData() if self._labels_chosen else None,
                  "layer": self.layer.currentData(), "method": self.method.currentData(), "engine": "local",
                  "resume": resume, **self.expert}
        self._send(config, self.model.spec, self.model.labels)
        return True

    def resume(self) -> None:
        """Carry on the stopped audit: the pictures explained so far are not explained again."""
        if self.busy or not self.run.config:
            return
        self._send({**self.run.config, "resume": True}, self.run.spec, self.run.labels)

    def _send(self, config: dict, spec: str, labels: list[str]) -> None:
        self.busy = True
        self.auditor.cancel.clear()
        self.run.start(config, spec, labels)
        self.requestAudit.emit(AuditRequest(spec, self.device, dict(config)))

    def cancel(self) -> None:
        """Stop after the current batch; what was explained stays on disk."""
        if self.run.running:
            self.auditor.cancel.set()
            self.run.cancel_requested()

    @Slot(str, int, int)
    def _on_progress(self, stage: str, done: int, total: int) -> None:
        if self.run.running:
            self.run.update(stage, done, total)

    @Slot(object)
    def _on_ended(self, result: AuditResult) -> None:
        self.busy = False
        if result.error is not None:
            self.run.failed(result.error)
        elif result.cancelled:
            self.run.cancelled(result.stage, result.done, result.total)
        else:
            self.run.finished(result.summary)

    def open_report(self) -> None:
        report = Path(self.run.config.get("out", "")) / "report.html"
        if not report.is_file():
            self.status.setText(f"There is no report yet in {display_path(str(report.parent))}.")
            return
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(report))):
            self.status.setText(f"The report is {display_path(str(report))}")

    # -- drawing -----------------------------------------------------------------------------------
    def _on_state(self, state: str) -> None:
        running = self.run.running
        for widget in (self.folder, self.out, self.labels, self.layer, self.method, self.start_button,
                       *self.folder_buttons):
            widget.setEnabled(not running)
        self.cancel_button.setEnabled(state == "running")
        self.cancel_button.setVisible(running)
        self.progress.setVisible(running)
        self.resume_button.setVisible(state == "cancelled" or (state == "failed" and self._resumable()))
        self.report_button.setVisible(state == "finished")
        # The button keeps its text while it is disabled (running or cancelling); a new one after the run ends.
        self.start_button.setText("Start audit" if state in ("idle", "running", "cancelling") else "Start a new audit")
        if state == "running":
            self.table.setRowCount(0)
        if self.run.summary is None:
            self._show_class()

    def _resumable(self) -> bool:
        """Whether the last run left pictures explained on disk (a failure after some batches)."""
        out = self.run.config.get("out")
        return bool(out) and (Path(out) / "records.jsonl").is_file()

    def _show_status(self) -> None:
        run = self.run
        stage, done, total = run.progress
        state = run.state
        self.status.setStyleSheet(ERROR_STYLE if state == "failed" else "")
        if state == "idle":
            self.status.setText("Choose a folder, then Start audit." if self.model else "")
        elif state in ("running", "cancelling"):
            if stage == "loading" or total <= 0:
                self.progress.setRange(0, 0)
                self.progress.setFormat("Preparing…")
                text = "Loading the model and listing the pictures…"
            else:
                self.progress.setRange(0, total)
                self.progress.setValue(min(done, total))
                if stage == "explaining":
                    self.progress.setFormat("Explaining %v/%m")
                    text = f"Explaining the pictures: {done} of {total}"
                else:
                    self.progress.setFormat("Analysing class %v/%m")
                    text = f"Analysing the classes (clusters, flags, blur tests): {done} of {total}"
                if run.rate is not None:
                    text += f" · {'' if stage == 'explaining' else 'explained at '}{run.rate:.1f} pictures/s"
            if state == "cancelling":
                text += " · cancelling after the current batch…"
            self.status.setText(text)
        elif state == "cancelled":
            out = display_path(run.config.get("out", ""))
            if stage == "analysing" or (stage == "explaining" and 0 < total <= done):
                text = (f"Cancelled while analysing; every picture is explained and kept in {out}. "
                        "Resume finishes the analysis (on the command line: audit --resume).")
            elif done:
                text = (f"Cancelled after {done} of {total} pictures; what was explained is kept in {out}. "
                        "Resume carries on (on the command line: audit --resume).")
            else:
                text = "Cancelled before any picture was explained. Resume starts it again."
            self.status.setText(text)
        elif state == "failed":
            self.status.setText(display_path(run.message or "The audit failed."))
        else:
            self.status.setText(self._summary_text())

    def _summary_text(self) -> str:
        s = self.run.summary or {}
        classes = s.get("classes") or []
        flagged = [c for c in classes if c.get("flags")]
        method = METHODS[s["method"]].title if s.get("method") in METHODS else s.get("method", "")
        labels = "true (folder)" if s.get("labels") == "folders" else "predicted"
        parts = [f"{s.get('images', 0)} pictures audited ({method} at {s.get('layer', '')}, {labels} classes)"]
        speed = s.get("throughput") or {}
        if speed.get("pictures"):
            parts.append(f"{speed['pictures']} explained at {speed.get('pictures_per_second') or 0:.1f} pictures/s")
        elif speed:
            parts.append("nothing left to explain (resumed)")
        parts.append(f"{len(flagged)} of {len(classes)} classes flagged")
        problems = len(s.get("errors") or [])
        if problems:
            parts.append(f"{problems} could not be read")
        return " · ".join(parts) + f". Report: {display_path(self.run.config.get('out', ''))}"

    def _show_classes(self) -> None:
        classes = self.run.classes()
        self.table.blockSignals(True)
        self.table.setRowCount(len(classes))
        bold = QFont(self.table.font())
        bold.setBold(True)
        for row, c in enumerate(classes):
            flags = c.get("flags") or []
            relied = [f for f in flags if f.get("confirmed")]
            name = f"{FLAG_MARK} {display_path(c['name'])}" if flags else display_path(c["name"])
            accuracy = "" if c.get("accuracy") is None else f"{c['accuracy'] * 100:.1f}%"
            count = str(len(flags)) + (" (relies on it)" if relied else "") if flags else "0"
            for col, value in enumerate((name, str(c["count"]), accuracy, count)):
                item = QTableWidgetItem(value)
                item.setData(Qt.ItemDataRole.UserRole, c["index"])
                if col:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if relied:
                    item.setFont(bold)
                    item.setForeground(QBrush(RELIES))
                item.setToolTip(plain_tooltip(f"{display_path(c['name'])}: {len(flags)} flag(s), "
                                              f"{len(c.get('clusters') or [])} cluster(s)"))
                self.table.setItem(row, col, item)
        rows = [c["index"] for c in classes]
        self.table.setCurrentCell(rows.index(self.run.chosen) if self.run.chosen in rows else -1, 0)
        self.table.blockSignals(False)
        self._show_class()

    def _on_row(self, row: int, _col: int, _prev_row: int, _prev_col: int) -> None:
        item = self.table.item(row, 0)
        if item is not None:
            self.run.choose(item.data(Qt.ItemDataRole.UserRole))

    def choose_class(self, index: int) -> None:
        """Show the audited class ``index`` (its index in the model), as a click on its row does."""
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(Qt.ItemDataRole.UserRole) == index:
                self.table.setCurrentCell(row, 0)
                return

    def _clear_detail(self, note: str = "") -> None:
        """Empty the class panel; with ``note``, say it there."""
        self.picture_lists = []
        while self.detail_layout.count():
            item = self.detail_layout.takeAt(0)
            if item.widget() is not None:
                item.widget().hide()
                item.widget().deleteLater()
        if note:
            self.detail_layout.addWidget(_label(note))
            self.detail_layout.addStretch(1)

    def _show_class(self) -> None:
        c = self.run.chosen_class()
        if c is None:
            state = self.run.state
            note = {"finished": "No class could be audited: no picture was readable.",
                    "running": "The results appear here when the audit has finished.",
                    "cancelling": "The results appear here when the audit has finished.",
                    "cancelled": "No results yet: the audit was cancelled. Resume carries on.",
                    "failed": "No results: the audit failed (see the message above).",
                    }.get(state, "Choose a folder and start the audit: the results appear here, class by class.")
            self._clear_detail(note)
            return
        self._clear_detail()
        out = Path(self.run.config.get("out", ""))
        summary = self.run.summary or {}
        add = self.detail_layout.addWidget
        title = _label(display_path(c["name"]), bold=True)
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        title.setFont(font)
        add(title)
        flags, clusters = c.get("flags") or [], c.get("clusters") or []
        facts = [f"{c['count']} pictures" + (" (by their folder)" if summary.get("labels") == "folders" else
                                             " (the model predicts this class)")]
        if c.get("accuracy") is not None:
            facts.append(f"accuracy {c['accuracy'] * 100:.1f}%")
        facts.append(f"{len(flags)} flag{'s' * (len(flags) != 1)}")
        facts.append(f"{len(clusters)} cluster{'s' * (len(clusters) != 1)}")
        add(_label(" · ".join(facts)))
        add(_label("Mean heatmap", bold=True))
        add(_picture(_scaled(png_pixmap(out / c["mean_heatmap"]), MEAN_SIDE),
                     "Where the evidence sits on average over the class's pictures; white boxes: flagged regions.",
                     caption_width=2 * MEAN_SIDE))
        add(_label(f"Flags ({len(flags)})", bold=True))
        if not flags:
            add(_label("None: the evidence is neither at one place nor at the border in most pictures."))
        for k, flag in enumerate(flags, start=1):
            add(self._flag_box(c, k, flag, out))
        add(_label(f"Clusters of similar heatmaps ({len(clusters)})", bold=True))
        margins = self.detail_layout.contentsMargins()
        width = max(MIN_GRID_WIDTH, self.scroll.width() - self.scroll.verticalScrollBar().sizeHint().width()
                    - margins.left() - margins.right() - 4)
        for k, cluster in enumerate(clusters, start=1):
            add(_label(f"Cluster {k}: {cluster['size']} picture{'s' * (cluster['size'] != 1)}"))
            if cluster.get("exemplars"):
                pixmap = png_pixmap(out / cluster["exemplars"])
                if pixmap.width() > width:
                    pixmap = pixmap.scaledToWidth(width, Qt.TransformationMode.SmoothTransformation)
                add(_picture(pixmap, ""))
            images = cluster.get("images") or []
            add(_label(f"Its pictures ({len(images)}); click one to see it in the main window:"))
            add(self._picture_list(c, images, f"Pictures of cluster {k}"))
        self.detail_layout.addStretch(1)
        self.scroll.verticalScrollBar().setValue(0)  # another class starts at its title

    def _flag_box(self, c: dict, k: int, flag: dict, out: Path) -> QFrame:
        box = QFrame()
        box.setFrameShape(QFrame.Shape.StyledPanel)
        column = QVBoxLayout(box)
        x0, y0, x1, y1 = flag["box"]
        kind = flag["kind"]
        column.addWidget(_label(f"Flag {k}: {kind}", bold=True))
        column.addWidget(_label(f"{KINDS.get(kind, kind).capitalize()}: the box x {x0:.2f}–{x1:.2f}, "
                                f"y {y0:.2f}–{y1:.2f} (fractions of the picture) holds it in "
                                f"{flag['share'] * 100:.0f}% of the class's pictures."))
        drop, control = flag.get("probability_drop"), flag.get("control_drop")
        if drop is not None:
            column.addWidget(_label(
                f"Blurring the box drops the class's probability by {drop * 100:.0f} points on average over "
                f"{flag.get('tested', 0)} pictures; blurring the mirror box (the control) drops it by "
                f"{(control or 0) * 100:.0f} points."))
        verdict = flag_verdict(flag)
        shown = _label(f"Verdict: {verdict}" + VERDICT_NOTES.get(verdict, ""), bold=True)
        shown.setAccessibleName("Verdict")
        if flag.get("confirmed"):
            shown.setStyleSheet(f"QLabel {{ color: {RELIES.name()}; }}")
        column.addWidget(shown)
        example = flag.get("example") or {}
        if flag.get("before") and flag.get("after"):
            row = QHBoxLayout()
            tip = display_path(str(example.get("path", "")))
            before, after = example.get("probability_before"), example.get("probability_after")
            row.addWidget(_picture(_scaled(png_pixmap(out / flag["before"]), EXAMPLE_SIDE),
                                   "before" + (f": {before * 100:.0f}%" if before is not None else ""), tip))
            row.addWidget(_picture(_scaled(png_pixmap(out / flag["after"]), EXAMPLE_SIDE),
                                   "box blurred" + (f": {after * 100:.0f}%" if after is not None else ""), tip))
            row.addStretch(1)
            column.addLayout(row)
            if example.get("path"):
                column.addWidget(_label(f"Example: {display_name(str(example['path']))}"))
        images = flag.get("images") or []
        column.addWidget(_label(f"Its pictures ({len(images)}); click one to see it in the main window:"))
        column.addWidget(self._picture_list(c, images, f"Pictures of flag {k}"))
        return box

    def _picture_list(self, c: dict, paths: list[str], what: str) -> PictureList:
        pictures = PictureList(paths, c["index"], what)
        pictures.pictureChosen.connect(self.open_picture)
        self.picture_lists.append(pictures)
        return pictures

    @Slot(object, int)
    def open_picture(self, path: str, class_index: int) -> None:
        """Show ``path`` in the main window with ``class_index``'s heatmap at the audited layer and method."""
        s = self.run.summary or {}
        self.pictureChosen.emit(path, class_index, s.get("layer", ""), s.get("method", ""), self.run.spec)

    # -- closing: the view only hides (a running audit goes on; File ▸ Audit a folder… shows it again) --
    def shutdown(self, timeout_ms: int = 120000) -> bool:
        """Stop the audit (what was explained stays on disk) and wait for the thread to end."""
        self.cancel()
        self.auditor.cancel.set()
        return stop_worker(self.thread, timeout_ms)
