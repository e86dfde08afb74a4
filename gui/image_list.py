"""The list of images: thumbnails, top-1 label and probability, busy and error badges."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QKeyEvent, QPainter, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListWidget, QListWidgetItem, QStyle

from gui.qimages import rgb_pixmap
from gui.text import display_name, display_path, plain_tooltip

ROW_ROLE = Qt.ItemDataRole.UserRole  # the row's key into ImageList's own table of paths
STATE_ROLE = Qt.ItemDataRole.UserRole + 1  # "busy", "done", "error"
ICON = 64


class ImageList(QListWidget):
    """One row per image; the row's state lives in item data, never in the text.

    Paths never travel through Qt: a Python ``str`` holding undecodable bytes
    of a non-UTF-8 file name (``caf\\udce9.png``) would lose them in a
    ``QString`` and could then name another file.  Each item holds a number;
    the path is looked up here.
    """

    removeRequested = Signal(list)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setIconSize(QSize(ICON, ICON))
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setUniformItemSizes(True)
        # Rows as wide as the list: a long name is shortened in the middle (extension kept), the tooltip has it whole.
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setAccessibleName("Images")
        self.setToolTip("Images to analyse. Delete removes the selected ones.")
        self._rows: dict[str, QListWidgetItem] = {}
        self._paths: dict[int, str] = {}  # ROW_ROLE number -> the exact path
        self._next_row = 0
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
            item = QListWidgetItem(self._busy, f"{display_name(path)}\nclassifying…")
            self._next_row += 1
            self._paths[self._next_row] = path
            item.setData(ROW_ROLE, self._next_row)
            item.setData(STATE_ROLE, "busy")
            item.setToolTip(plain_tooltip(display_path(path)))
            self.addItem(item)
            self._rows[path] = item
            added.append(path)
        return added

    def paths(self) -> list[str]:
        return [self.path_of(self.item(i)) for i in range(self.count())]

    def path_of(self, item: QListWidgetItem | None) -> str | None:
        """The exact path of a row (None for no row)."""
        return self._paths.get(item.data(ROW_ROLE)) if item is not None else None

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
                item.setText(f"{display_name(path)}\nclassifying…")
                item.setData(STATE_ROLE, "busy")

    def set_result(self, path: str, predictions: list | None, error: str | None, thumbnail=None) -> None:
        item = self._rows.get(path)
        if item is None:
            return
        name = display_name(path)
        if error:
            item.setIcon(self._error)
            item.setText(f"{name}\ncannot be read")
            item.setToolTip(plain_tooltip(f"{display_path(path)}\n\n{display_path(error)}"))
            item.setData(STATE_ROLE, "error")
            return
        top = predictions[0]
        if thumbnail is not None:
            item.setIcon(QIcon(rgb_pixmap(thumbnail)))
        item.setText(f"{name}\n{top.label} · {top.probability * 100:.1f}%")
        item.setToolTip(plain_tooltip(f"{display_path(path)}\n{top.label}: {top.probability * 100:.1f}%"))
        item.setData(STATE_ROLE, "done")

    def remove(self, paths: list[str]) -> None:
        for path in paths:
            item = self._rows.pop(path, None)
            if item is not None:
                self._paths.pop(item.data(ROW_ROLE), None)
                self.takeItem(self.row(item))

    def clear_all(self) -> None:
        self._rows.clear()
        self._paths.clear()
        self.clear()

    def selected_paths(self) -> list[str]:
        return [self.path_of(item) for item in self.selectedItems()]

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self.selectedItems():
            self.removeRequested.emit(self.selected_paths())
            return
        super().keyPressEvent(event)
