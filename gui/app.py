"""Starting the desktop app: the window appears at once, torch loads in the engine thread meanwhile."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path

APP_NAME = "DenseLens"
ORGANISATION = "DenseLens"


def data_dir() -> Path:
    """The user's writable data folder for DenseLens (logs, pasted images)."""
    from PySide6.QtCore import QStandardPaths

    folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(folder) if folder else Path.home() / ".denselens"


def log_path() -> Path:
    return data_dir() / "denselens.log"


def setup_logging() -> None:
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("denselens")
    root.setLevel(logging.INFO)
    if not root.handlers:
        root.addHandler(handler)


def install_excepthook(window_getter) -> None:
    """Unexpected exceptions go to the log and a short message, never a raw traceback dialog."""

    def hook(exc_type, exc, tb) -> None:
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        logging.getLogger("denselens").error("unexpected error\n%s", details)
        window = window_getter()
        if window is not None:
            window.show_error("Unexpected error", f"{exc_type.__name__}: {exc}")

    sys.excepthook = hook


def run(paths: list[str]) -> int:
    if sys.platform == "win32":
        import torch  # noqa: F401 - must load before Qt on Windows (pytorch issue 169429)
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(ORGANISATION)
    from model.paths import assets_dir

    icon = assets_dir() / "icons" / "denselens.png"
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    setup_logging()
    from gui.main_window import MainWindow

    window = MainWindow()
    install_excepthook(lambda: window)
    window.show()
    if paths:
        window.add_paths(paths)
    return app.exec()
