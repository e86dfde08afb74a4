"""The list of images: thumbnails, top-1 label and probability, busy and error badges."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QKeyEvent, QPainter, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListWidget, QListWidgetItem, QStyle

from gui.qimages import rgb_pixmap
from gui.text import plain_tooltip

PATH_ROLE = Qt.ItemDataRole.UserRole
STATE_ROLE = Qt.ItemDataRole.UserRole + 1  # "busy", "done", "error"
ICON = 64


class ImageList(QListWidget):
    """One row per image; the row's state lives in item data, never in the text."""

    removeRequested = Signal(list)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setIconSize(QSize(ICON, ICON))
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setUniformItemSizes(True)
        self.setAccessibleName("Images")
        self.setToolTip("Images to analyse. Delete removes the selected ones.")
        self._rows: dict[str, QListWidgetItem] = {}
        self._busy = self._badge(QColor(120, 120, 120), "…")
        self._error = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)

    def _badge(self, color: QColor, text: str) -> QIcon:
        pix = QPixmap(ICON, ICON)
        pix.fill(color)
        painter = QPainter(pix)
        painter.setPen(Qt.GlobalColor.white)
        painter.drawText(pix.rect(), Qt.AlignmentFlag.AlignCenter, text)
        painter.end()
        return QIcon(pix)

    def add_paths(self, paths: list[str]) -> list[str]:
        """Add new paths (duplicates ignored); returns those added."""
        added = []
        for path in paths:
            if path in self._rows:
                continue
            item = QListWidgetItem(self._busy, f"{Path(path).name}\nclassifying…")
            item.setData(PATH_ROLE, path)
            item.setData(STATE_ROLE, "busy")
            item.setToolTip(plain_tooltip(path))
            self.addItem(item)
            self._rows[path] = item
            added.append(path)
        return added

    def paths(self) -> list[str]:
        return [self.item(i).data(PATH_ROLE) for i in range(self.count())]

    def state(self, path: str) -> str | None:
        item = self._rows.get(path)
        return item.data(STATE_ROLE) if item else None

    def item_for(self, path: str) -> QListWidgetItem | None:
        return self._rows.get(path)

    def mark_busy(self, paths: list[str]) -> None:
        for path in paths:
            item = self._rows.get(path)
            if item:
                item.setIcon(self._busy)
                item.setText(f"{Path(path).name}\nclassifying…")
                item.setData(STATE_ROLE, "busy")

    def set_result(self, path: str, predictions: list | None, error: str | None, thumbnail=None) -> None:
        item = self._rows.get(path)
        if item is None:
            return
        name = Path(path).name
        if error:
            item.setIcon(self._error)
            item.setText(f"{name}\ncannot be read")
            item.setToolTip(plain_tooltip(f"{path}\n\n{error}"))
            item.setData(STATE_ROLE, "error")
            return
        top = predictions[0]
        if thumbnail is not None:
            item.setIcon(QIcon(rgb_pixmap(thumbnail)))
        item.setText(f"{name}\n{top.label} · {top.probability * 100:.0f}%")
        item.setToolTip(plain_tooltip(f"{path}\n{top.label}: {top.probability * 100:.1f}%"))
        item.setData(STATE_ROLE, "done")

    def remove(self, paths: list[str]) -> None:
        for path in paths:
            item = self._rows.pop(path, None)
            if item is not None:
                self.takeItem(self.row(item))

    def clear_all(self) -> None:
        self._rows.clear()
        self.clear()

    def selected_paths(self) -> list[str]:
        return [item.data(PATH_ROLE) for item in self.selectedItems()]

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self.selectedItems():
            self.removeRequested.emit(self.selected_paths())
            return
        super().keyPressEvent(event)
