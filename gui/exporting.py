"""Export from the window: the current heatmap, every listed image, and the predictions table."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from PySide6.QtCore import QObject, QStandardPaths, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QVBoxLayout,
)

from gui.engine import Engine
from gui.messages import ExportReport, ExportRequest
from gui.session import Session
from gui.settings import Settings
from model.errors import ExportError
from model.export import atomic_write, describe_os_error, escape_surrogates


class ExportDialog(QDialog):
    """Where to and what: overlay, heatmap only, raw map, grid of blocks."""

    def __init__(self, title: str, folder: str, parent=None, choices: dict[str, bool] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.folder = QLineEdit(folder)
        self.folder.setAccessibleName("Export folder")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row.addWidget(QLabel("Folder:"))
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        layout.addLayout(row)
        self.overlay = QCheckBox("Overlay (heatmap over the picture, full resolution)")
        self.heatmap = QCheckBox("Heatmap only")
        self.raw = QCheckBox("Raw map (.npy float32 and 16-bit PNG)")
        self.grid = QCheckBox("Grid of all dense blocks")
        choices = choices or {"overlay": True}
        for kind, box in self.boxes().items():
            box.setChecked(bool(choices.get(kind)))
            layout.addWidget(box)
        layout.addWidget(QLabel("Missing folders are created. Existing files are never overwritten; new ones get "
                                "a _2, _3… suffix."))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export to", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def boxes(self) -> dict[str, QCheckBox]:
        return {"overlay": self.overlay, "heatmap": self.heatmap, "raw": self.raw, "grid": self.grid}

    def choices(self) -> dict[str, bool]:
        return {kind: box.isChecked() for kind, box in self.boxes().items()}

    def kinds(self) -> tuple[str, ...]:
        return tuple(k for k, box in (("overlay", self.overlay), ("heatmap", self.heatmap), ("raw", self.raw))
                     if box.isChecked())


class ExportController(QObject):
    """Turns export actions into engine requests; reads what to export from the session.

    ``window`` is the main window: the dialogs' parent, and where messages go
    (its ``statusBar()`` and ``show_error``).
    """

    requestExport = Signal(object)
    finished = Signal(object)  # ExportReport, for callers and tests

    def __init__(self, window: QMainWindow, session: Session, engine: Engine, settings: Settings) -> None:
        super().__init__(window)
        self.w, self.session, self.settings = window, session, settings
        self.requestExport.connect(engine.export)
        engine.exportFinished.connect(self._on_finished)
        self.open_button = QPushButton("Open export folder")
        self.open_button.setToolTip("Show the exported files in the file manager")
        self.open_button.clicked.connect(self.open_folder)
        self.open_button.hide()
        window.statusBar().addPermanentWidget(self.open_button)
        self._last_folder = ""

    def export_folder(self) -> str:
        """Where exports go: the last export folder, else the user's Pictures/DenseLens."""
        folder = self.settings.export_folder()
        if folder and Path(folder).is_dir():
            return folder
        pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
        return str(Path(pictures or Path.home()) / "DenseLens")

    def _ask(self, title: str) -> ExportDialog | None:
        dialog = ExportDialog(title, self.export_folder(), self.w, self.settings.export_choices())
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        return dialog

    def open_folder(self) -> None:
        if self._last_folder:
            QDesktopServices.openUrl(QUrl.fromLocalFile(self._last_folder))

    def export_current(self, dialog: ExportDialog | None = None) -> int | None:
        s = self.session
        if s.current_explanation() is None or s.shown_class() is None:
            self.w.statusBar().showMessage("Nothing to export yet: select a classified image", 5000)
            return None
        dialog = dialog or self._ask("Export heatmap")
        if dialog is None:
            return None
        return self._start(dialog, [s.current_path], [s.shown_class()])

    def export_all(self, dialog: ExportDialog | None = None) -> int | None:
        s = self.session
        paths = [p for p in s.images if p in s.results and s.results[p].error is None]
        if s.model is None or not paths:
            self.w.statusBar().showMessage("Nothing to export yet: no classified images", 5000)
            return None
        dialog = dialog or self._ask(f"Export heatmaps of {len(paths)} images")
        if dialog is None:
            return None
        classes = [s.current_class] if s.current_class is not None else None
        return self._start(dialog, paths, classes)

    def _start(self, dialog: ExportDialog, paths: list[str], classes: list[int] | None) -> int | None:
        s = self.session
        folder = dialog.folder.text().strip() or self.export_folder()
        kinds = dialog.kinds()
        self.settings.set_export_choices(dialog.choices())
        if not kinds and not dialog.grid.isChecked():
            self.w.statusBar().showMessage("Choose at least one kind of file to export", 5000)
            return None
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            self.w.show_error("Cannot export", f"Cannot create the folder {folder}: {describe_os_error(e)}")
            return None
        self.settings.set_export_folder(folder)
        self._last_folder = folder
        self.open_button.hide()
        layers = [s.layer]
        if dialog.grid.isChecked():
            layers += [b for b in s.model.taps if b.startswith("denseblock") and b not in layers]
        request = ExportRequest(s.export_id(), paths, folder, layers, classes, s.method, kinds, s.colormap,
                                s.opacity / 100, s.region, grid=dialog.grid.isChecked())
        s.update_task("export", 0, len(paths))
        self.requestExport.emit(request)
        return request.request_id

    @Slot(object)
    def _on_finished(self, report: ExportReport) -> None:
        self.session.finish_task("export")
        if report.errors:
            shown = "\n".join(report.errors[:5]) + ("\n…" if len(report.errors) > 5 else "")
            self.w.show_error("Some exports failed", f"{len(report.written)} file(s) written; "
                              f"{len(report.errors)} failed:\n{shown}")
        else:
            what = "cancelled after writing" if report.cancelled else "wrote"
            self.w.statusBar().showMessage(f"Export {what} {len(report.written)} file(s) to {self._last_folder}",
                                           30000)
            self.open_button.setVisible(bool(report.written))
        self.finished.emit(report)

    # -- predictions table -------------------------------------------------------------
    def export_predictions(self, fmt: str, path: str | None = None) -> str | None:
        s = self.session
        rows = [s.results[p] for p in s.images if p in s.results]
        if not rows:
            self.w.statusBar().showMessage("No predictions to export yet", 5000)
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self.w, "Export predictions",
                                                  str(Path(self.export_folder()) / f"predictions.{fmt}"),
                                                  f"{fmt.upper()} (*.{fmt})")
            if not path:
                return None
        if Path(path).suffix.lower() != f".{fmt}":
            path = f"{path}.{fmt}"  # a name typed without its extension gets it
        data = predictions_document(rows, fmt, s.topk)
        try:
            written = atomic_write(path, lambda f: f.write(data.encode("utf-8")), overwrite=True)
        except ExportError as e:
            self.w.show_error("Cannot export predictions", str(e))
            return None
        self.w.statusBar().showMessage(f"Predictions saved to {written}", 8000)
        return str(written)


def predictions_document(rows: list, fmt: str, topk: int) -> str:
    """The predictions of classified images as CSV (one row per prediction) or JSON (as the CLI prints).

    Both are valid UTF-8 whatever the file names: undecodable bytes of a non-UTF-8 name come out as ``\\udcXX``.
    """
    if fmt == "json":
        return json.dumps([{"path": r.path, "predictions": [p.to_dict() for p in (r.predictions or [])[:topk]],
                            "error": r.error} for r in rows], indent=2) + "\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["path", "rank", "index", "label", "probability", "error"])
    for r in rows:
        if r.error:
            writer.writerow([r.path, "", "", "", "", r.error])
        for rank, p in enumerate((r.predictions or [])[:topk], 1):
            writer.writerow([r.path, rank, p.index, p.label, f"{p.probability:.6f}", ""])
    return escape_surrogates(buffer.getvalue())  # a non-UTF-8 file name's odd bytes as \udcXX
