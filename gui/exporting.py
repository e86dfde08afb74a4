"""Export from the window: the current heatmap, every listed image, and the predictions table."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
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
from model.export import atomic_write, escape_surrogates


class ExportDialog(QDialog):
    """Where to and what: overlay, heatmap only, raw map, grid of blocks."""

    def __init__(self, title: str, folder: str, parent=None) -> None:
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
        self.overlay.setChecked(True)
        for box in (self.overlay, self.heatmap, self.raw, self.grid):
            layout.addWidget(box)
        layout.addWidget(QLabel("Existing files are never overwritten; new ones get a _2, _3… suffix."))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export to", self.folder.text())
        if folder:
            self.folder.setText(folder)

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

    def _ask(self, title: str) -> ExportDialog | None:
        dialog = ExportDialog(title, self.settings.last_folder(), self.w)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        return dialog

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
        folder = dialog.folder.text().strip()
        kinds = dialog.kinds()
        if not kinds and not dialog.grid.isChecked():
            self.w.statusBar().showMessage("Choose at least one kind of file to export", 5000)
            return None
        if not Path(folder).is_dir():
            self.w.show_error("Cannot export", f"{folder or 'No folder given'}: not an existing folder")
            return None
        self.settings.set_last_folder(folder)
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
            what = "cancelled after" if report.cancelled else "wrote"
            self.w.statusBar().showMessage(f"Export {what} {len(report.written)} file(s)", 8000)
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
                                                  str(Path(self.settings.last_folder()) / f"predictions.{fmt}"),
                                                  f"{fmt.upper()} (*.{fmt})")
            if not path:
                return None
        data = predictions_document(rows, fmt)
        try:
            written = atomic_write(path, lambda f: f.write(data.encode("utf-8")), overwrite=True)
        except ExportError as e:
            self.w.show_error("Cannot export predictions", str(e))
            return None
        self.w.statusBar().showMessage(f"Predictions saved to {written}", 8000)
        return str(written)


def predictions_document(rows: list, fmt: str) -> str:
    """The predictions of classified images as CSV (one row per prediction) or JSON (as the CLI prints).

    Both are valid UTF-8 whatever the file names: undecodable bytes of a non-UTF-8 name come out as ``\\udcXX``.
    """
    if fmt == "json":
        return json.dumps([{"path": r.path, "predictions": [p.to_dict() for p in r.predictions or []],
                            "error": r.error} for r in rows], indent=2) + "\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["path", "rank", "index", "label", "probability", "error"])
    for r in rows:
        if r.error:
            writer.writerow([r.path, "", "", "", "", r.error])
        for rank, p in enumerate(r.predictions or [], 1):
            writer.writerow([r.path, rank, p.index, p.label, f"{p.probability:.6f}", ""])
    return escape_surrogates(buffer.getvalue())  # a non-UTF-8 file name's odd bytes as \udcXX
