"""Export from the window: the current heatmap, every listed image, and the predictions table."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
)

from gui.engine import ExportReport, ExportRequest
from model.errors import ExportError
from model.export import atomic_write

if TYPE_CHECKING:
    from gui.main_window import MainWindow


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
    requestExport = Signal(object)
    finished = Signal(object)  # ExportReport, for callers and tests

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        self._request_id = 0
        self.requestExport.connect(window.engine.export)
        window.engine.exportFinished.connect(self._on_finished)

    def _ask(self, title: str) -> ExportDialog | None:
        dialog = ExportDialog(title, self.w.settings.last_folder(), self.w)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        return dialog

    def export_current(self, dialog: ExportDialog | None = None) -> int | None:
        w = self.w
        if w.info is None or w.last is None or w.current_path is None:
            w.statusBar().showMessage("Nothing to export yet: select a classified image", 5000)
            return None
        dialog = dialog or self._ask("Export heatmap")
        if dialog is None:
            return None
        return self._start(dialog, [w.current_path], [w.shown_class()])

    def export_all(self, dialog: ExportDialog | None = None) -> int | None:
        w = self.w
        paths = [p for p in w.images.paths() if w.images.state(p) == "done"]
        if w.info is None or not paths:
            w.statusBar().showMessage("Nothing to export yet: no classified images", 5000)
            return None
        dialog = dialog or self._ask(f"Export heatmaps of {len(paths)} images")
        if dialog is None:
            return None
        classes = [w.current_class] if w.current_class is not None else None
        return self._start(dialog, paths, classes)

    def _start(self, dialog: ExportDialog, paths: list[str], classes: list[int] | None) -> int | None:
        w = self.w
        folder = dialog.folder.text().strip()
        kinds = dialog.kinds()
        if not kinds and not dialog.grid.isChecked():
            w.statusBar().showMessage("Choose at least one kind of file to export", 5000)
            return None
        if not Path(folder).is_dir():
            w.show_error("Cannot export", f"{folder or 'No folder given'}: not an existing folder")
            return None
        w.settings.set_last_folder(folder)
        blocks = [t for t in w.info.taps if t.startswith("denseblock")]
        layers = [w.current_layer]
        if dialog.grid.isChecked():
            layers += [b for b in blocks if b not in layers]
        self._request_id += 1
        request = ExportRequest(self._request_id, paths, folder, layers, classes, w.method.currentData(), kinds,
                                w.colormap.currentText(), w.opacity.value() / 100, w.preprocess.currentData(),
                                grid=dialog.grid.isChecked())
        w._show_progress("export", 0, len(paths))
        self.requestExport.emit(request)
        return self._request_id

    def _on_finished(self, report: ExportReport) -> None:
        w = self.w
        w._hide_progress("export")
        if report.errors:
            shown = "\n".join(report.errors[:5]) + ("\n…" if len(report.errors) > 5 else "")
            w.show_error("Some exports failed", f"{len(report.written)} file(s) written; "
                         f"{len(report.errors)} failed:\n{shown}")
        else:
            what = "cancelled after" if report.cancelled else "wrote"
            w.statusBar().showMessage(f"Export {what} {len(report.written)} file(s)", 8000)
        self.finished.emit(report)

    # -- predictions table -------------------------------------------------------------
    def export_predictions(self, fmt: str, path: str | None = None) -> str | None:
        w = self.w
        rows = [w.results[p] for p in w.images.paths() if p in w.results]
        if not rows:
            w.statusBar().showMessage("No predictions to export yet", 5000)
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(w, "Export predictions", str(Path(w.settings.last_folder()) /
                                                  f"predictions.{fmt}"), f"{fmt.upper()} (*.{fmt})")
            if not path:
                return None
        data = predictions_document(rows, fmt)
        try:
            written = atomic_write(path, lambda f: f.write(data.encode("utf-8")), overwrite=True)
        except ExportError as e:
            w.show_error("Cannot export predictions", str(e))
            return None
        w.statusBar().showMessage(f"Predictions saved to {written}", 8000)
        return str(written)


def predictions_document(rows: list, fmt: str) -> str:
    """The predictions of classified images as CSV (one row per prediction) or JSON (as the CLI prints)."""
    if fmt == "json":
        return json.dumps([{"path": r.path, "predictions": [p.to_dict() for p in r.predictions or []],
                            "error": r.error} for r in rows], indent=2, ensure_ascii=False) + "\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["path", "rank", "index", "label", "probability", "error"])
    for r in rows:
        if r.error:
            writer.writerow([r.path, "", "", "", "", r.error])
        for rank, p in enumerate(r.predictions or [], 1):
            writer.writerow([r.path, rank, p.index, p.label, f"{p.probability:.6f}", ""])
    return buffer.getvalue()
