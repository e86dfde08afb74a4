"""Model ▸ Train on a folder…: the folder and what it holds, the start point, the mode, epochs, where to save.

The folder is checked as soon as it is chosen (``gui.trainer.FolderChecker``,
off the GUI thread, with a progress bar): the classes with their counts,
unreadable files with the reason, entries ignored and warnings are shown
before anything trains.  ``config()`` gives ``model.training.TrainConfig``'s
fields; ``expert`` adds or overrides any of them (the architecture when
training from scratch, the input size, ...).
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QStandardPaths, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.messages import CheckRequest, CheckResult
from gui.text import ERROR_STYLE, display_path
from gui.trainer import FolderChecker, start_worker, stop_worker
from model.training_modes import MODES, default_mode
from model.zoo import MODELS

CHOOSE_FILE = "\0choose"  # the start point entry that opens a file dialog
DEFAULT_INIT = "densenet121"
DEFAULT_EPOCHS = 12
SHOWN_PROBLEMS = 200  # unreadable or ignored entries listed (the rest are counted)


def default_output(folder: str) -> str:
    """``<folder name>-densenet.pth`` beside the folder, else in the user's documents."""
    folder_path = Path(folder)
    name = f"{folder_path.name or 'model'}-densenet.pth"
    parent = folder_path.parent
    if parent.is_dir() and os.access(parent, os.W_OK):
        return str(parent / name)
    documents = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation) or str(Path.home())
    return str(Path(documents) / name)


class TrainDialog(QDialog):
    """See the module docstring.  ``accepted`` means: start training ``config()``."""

    requestCheck = Signal(object)  # CheckRequest, to the checker's thread
    requestWarmUp = Signal()

    def __init__(self, parent: QWidget | None = None, current_model: str | None = None, folder: str = "",
                 device: str = "auto") -> None:
        super().__init__(parent)
        self.setWindowTitle("Train on a folder")
        self.setMinimumWidth(620)
        self.device = device
        self.expert: dict = {}  # more TrainConfig fields (tests: a tiny architecture)
        self.report: dict | None = None  # the check of the chosen folder, once it is done
        self._check_id = 0
        self._checking: str | None = None  # the folder checked last
        self._mode_chosen = False

        intro = QLabel("Pick a folder with one sub-folder of pictures per class (the sub-folder's name is the "
                       "class). A fifth of each class is kept aside to validate every epoch.")
        intro.setWordWrap(True)
        self.folder = QLineEdit(folder)
        self.folder.setPlaceholderText("A folder with one sub-folder per class")
        self.folder.setAccessibleName("Folder to train on")
        self.folder.editingFinished.connect(lambda: self.set_folder(self.folder.text().strip()))
        browse = QPushButton("Choose…")
        browse.clicked.connect(self.choose_folder)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)

        self.check_progress = QProgressBar()
        self.check_progress.setFormat("Checking pictures %v/%m")
        self.check_progress.hide()
        self.contents = QTreeWidget()
        self.contents.setHeaderHidden(True)
        self.contents.setAccessibleName("What the folder holds")
        self.contents.setMinimumHeight(180)
        self.check_note = QLabel("Choose a folder to see what it holds.")
        self.check_note.setWordWrap(True)
        self.check_note.setTextFormat(Qt.TextFormat.PlainText)
        self.check_note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.init = QComboBox()
        self.init.setAccessibleName("Start from")
        from model.weights import cached_path  # (urllib: not at the window's start)

        self.init.addItem("Scratch: a new, untrained network", "scratch")
        for entry in MODELS.values():
            download = entry.imagenet and cached_path(entry) is None
            self.init.addItem(f"{entry.title}, downloaded first ({entry.size_mb:.0f} MB)" if download else entry.title,
                              entry.name)
        if current_model and current_model not in MODELS and Path(current_model).is_file():
            self.init.addItem(f"Current model's file: {display_path(Path(current_model).name)}", current_model)
        self.init.addItem("Choose file…", CHOOSE_FILE)
        self.init.setToolTip("What the network starts from: ImageNet weights learn from few pictures; "
                             "scratch needs many")
        self._last_init = DEFAULT_INIT
        self.init.setCurrentIndex(self.init.findData(DEFAULT_INIT))
        self.init.currentIndexChanged.connect(self._on_init)
        self.mode = QComboBox()
        self.mode.setAccessibleName("Mode")
        for name in MODES:
            self.mode.addItem(name, name)
        self.mode.activated.connect(self._on_mode_chosen)
        self.mode.currentIndexChanged.connect(self._show_mode_help)
        self.mode_help = QLabel()
        self.mode_help.setWordWrap(True)
        self.mode_help.setTextFormat(Qt.TextFormat.PlainText)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 1000)
        self.epochs.setValue(DEFAULT_EPOCHS)
        self.epochs.setAccessibleName("Epochs")
        self.epochs.setToolTip("Passes over the training pictures; the best epoch on the validation pictures is kept")
        self.out = QLineEdit()
        self.out.setAccessibleName("Save the model as")
        self.out.setPlaceholderText("Where the trained model is saved (.pth)")
        self.out.textChanged.connect(lambda _t: self._update_start())
        save_as = QPushButton("Choose…")
        save_as.clicked.connect(self.choose_output)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out, 1)
        out_row.addWidget(save_as)

        form = QFormLayout()
        form.addRow("Start from", self.init)
        form.addRow("Mode", self.mode)
        form.addRow("", self.mode_help)
        form.addRow("Epochs", self.epochs)
        form.addRow("Save as", out_row)

        self.buttons = QDialogButtonBox()
        self.start_button = self.buttons.addButton("Start training", QDialogButtonBox.ButtonRole.AcceptRole)
        self.start_button.setDefault(True)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.start)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(row)
        layout.addWidget(self.check_progress)
        layout.addWidget(self.check_note)
        layout.addWidget(self.contents, 1)
        layout.addLayout(form)
        layout.addWidget(self.buttons)

        self.checker = FolderChecker()
        self.requestCheck.connect(self.checker.check)
        self.checker.progress.connect(self._on_check_progress)
        self.checker.checked.connect(self._on_checked)
        self.requestWarmUp.connect(self.checker.warm_up)
        self.thread = start_worker(self.checker, "DenseLens folder check", self)
        self.requestWarmUp.emit()  # while the folder is chosen, not while training
        self._set_default_mode()
        self._update_start()
        if folder:
            self.set_folder(folder)

    # -- the folder and its check ----------------------------------------------------
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder to train on", self.folder.text())
        if folder:
            self.set_folder(folder, again=True)

    def set_folder(self, folder: str, again: bool = False) -> None:
        """Check ``folder`` (an older check still running stops); the output name follows it."""
        if not folder or (folder == self._checking and not again):
            return
        self.folder.setText(folder)
        if not self.out.text() or (self._checking and self.out.text() == default_output(self._checking)):
            self.out.setText(default_output(folder))
        self._checking = folder
        self._check_id += 1
        self.checker.wanted = self._check_id
        self.report = None
        self.contents.clear()
        self._note(f"Checking {display_path(folder)}…")
        self.check_progress.setRange(0, 0)
        self.check_progress.show()
        self._update_start()
        self.requestCheck.emit(CheckRequest(self._check_id, folder))

    def _note(self, text: str, error: bool = False) -> None:
        """What the folder check found, in the error colour when the folder or the file name cannot be used."""
        self.check_note.setText(text)
        self.check_note.setStyleSheet(ERROR_STYLE if error else "")

    @Slot(int, int, int)
    def _on_check_progress(self, request_id: int, done: int, total: int) -> None:
        if request_id == self._check_id:
            self.check_progress.setRange(0, total)
            self.check_progress.setValue(done)

    @Slot(object)
    def _on_checked(self, result: CheckResult) -> None:
        if result.request_id != self._check_id:
            return  # an older folder's check
        self.check_progress.hide()
        if result.error is not None:
            self.report = None
            self._note(f"This folder cannot be trained on:\n{display_path(result.error)}", error=True)
            self._update_start()
            return
        self.report = result.report
        self._show_report(result.report, result.usable)
        self._update_start()

    def _show_report(self, report: dict, usable: int) -> None:
        classes = report["classes"]
        self._note(f"{usable} pictures in {len(classes)} classes. "
                   + ("Check the warnings below." if report["warnings"] else "Ready to train."))
        self.contents.clear()

        def section(title: str, lines: list[str], expanded: bool) -> None:
            item = QTreeWidgetItem([title])
            for line in lines[:SHOWN_PROBLEMS]:
                child = QTreeWidgetItem([line])
                child.setToolTip(0, line)
                item.addChild(child)
            if len(lines) > SHOWN_PROBLEMS:
                item.addChild(QTreeWidgetItem([f"… and {len(lines) - SHOWN_PROBLEMS} more"]))
            self.contents.addTopLevelItem(item)
            item.setExpanded(expanded)

        if report["warnings"]:
            section(f"Warnings ({len(report['warnings'])})", [display_path(w) for w in report["warnings"]], True)
        section(f"Classes ({len(classes)})", [f"{display_path(c['name'])}: {c['count']} pictures" for c in classes],
                True)
        if report["bad"]:
            section(f"Unreadable files, skipped ({len(report['bad'])})",
                    [display_path(b["reason"]) for b in report["bad"]], True)
        if report["ignored"]:
            root = report["folder"]
            section(f"Ignored entries ({len(report['ignored'])})",
                    [f"{display_path(os.path.relpath(i['path'], root))}: {i['reason']}" for i in report["ignored"]],
                    False)

    # -- start point, mode, output ----------------------------------------------------
    def _on_init(self, _index: int) -> None:
        init = self.init.currentData()
        if init == CHOOSE_FILE:
            path, _ = QFileDialog.getOpenFileName(self, "Start from a model file", "",
                                                  "DenseNet checkpoints (*.pth *.pt *.safetensors);;All files (*)")
            if not path:
                self.init.setCurrentIndex(self.init.findData(self._last_init))
                return
            self.set_init(path)
            return
        self._last_init = init
        self._set_default_mode()

    def set_init(self, init: str) -> None:
        """Start from ``init`` (a registry name, scratch or a file, added to the list if new)."""
        i = self.init.findData(init)
        if i < 0:
            self.init.blockSignals(True)
            self.init.insertItem(self.init.count() - 1, f"File: {display_path(Path(init).name)}", init)
            self.init.blockSignals(False)
            i = self.init.findData(init)
            self.init.setItemData(i, display_path(init), Qt.ItemDataRole.ToolTipRole)
        self.init.setCurrentIndex(i)
        self._last_init = init
        self._set_default_mode()

    def _on_mode_chosen(self, _index: int) -> None:
        self._mode_chosen = True

    def _set_default_mode(self) -> None:
        """The default mode for the start point; ``head`` only from trained weights."""
        init = self.init.currentData()
        head = self.mode.model().item(self.mode.findData("head"))
        head.setEnabled(init != "scratch")
        if not self._mode_chosen or (init == "scratch" and self.mode.currentData() == "head"):
            self.mode.setCurrentIndex(self.mode.findData(default_mode(init)))
        self._show_mode_help()

    def _show_mode_help(self, *_args) -> None:
        text = MODES.get(self.mode.currentData(), "")
        self.mode_help.setText(f"{text[:1].upper()}{text[1:]}." if text else "")

    def choose_output(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the trained model as", self.out.text(),
                                              "PyTorch checkpoint (*.pth)",
                                              options=QFileDialog.Option.DontConfirmOverwrite)
        if path:
            self.out.setText(path if path.endswith((".pth", ".pt")) else path + ".pth")

    def _update_start(self) -> None:
        self.start_button.setEnabled(self.report is not None and bool(self.out.text().strip()))

    # -- starting -------------------------------------------------------------------
    def config(self) -> dict:
        """``TrainConfig`` fields for the chosen settings (``expert`` on top)."""
        return {"out": self.out.text().strip(), "data": self.folder.text().strip(), "init": self.init.currentData(),
                "mode": self.mode.currentData(), "epochs": self.epochs.value(), "workers": 0,
                "device": self.device or "auto", **self.expert}

    def confirm_overwrite(self, path: str) -> bool:
        """Ask before replacing an existing model file (tests replace this method)."""
        answer = QMessageBox.question(self, "Replace the model file?",
                                      f"{display_path(path)} exists. Training replaces it with the new model.",
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def start(self) -> None:
        if self.report is None:
            return
        out = self.out.text().strip()
        if Path(out).is_dir() or not Path(out).parent.is_dir():
            self._note(f"Cannot save as {display_path(out)}: "
                       + ("it is a folder." if Path(out).is_dir() else "its folder does not exist."), error=True)
            return
        if Path(out).exists() and not self.confirm_overwrite(out):
            return
        self.accept()

    def done(self, result: int) -> None:
        self.checker.wanted = -1  # a check still running stops
        stop_worker(self.thread)
        super().done(result)
