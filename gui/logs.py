"""Where the app writes its log, and the logger set-up (no window needed)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


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
