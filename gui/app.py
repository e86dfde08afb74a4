"""Starting the desktop app: the window appears at once, torch loads in the engine thread meanwhile."""

from __future__ import annotations

import logging
import sys
import traceback

from gui.logs import setup_logging

APP_NAME = "DenseLens"
ORGANISATION = "DenseLens"


def install_excepthook(window_getter) -> None:
    """Unexpected exceptions go to the log and a short message, never a raw traceback dialog.

    The message travels by the window's ``errorReported`` signal: an exception
    raised in another thread is then shown by the GUI thread (queued), never
    built in the thread that raised it.
    """

    def hook(exc_type, exc, tb) -> None:
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        logging.getLogger("denselens").error("unexpected error\n%s", details)
        window = window_getter()
        if window is not None:
            window.errorReported.emit("Unexpected error", f"{exc_type.__name__}: {exc}")

    sys.excepthook = hook


def run(paths: list[str], model: str | None = None, device: str | None = None) -> int:
    """Open the window (with ``model`` on ``device`` if given, else the last used) and add ``paths``."""
    if sys.platform == "win32":
        import torch  # noqa: F401 - must load before Qt on Windows (pytorch issue 169429)
    from gui.qt_locale import use_utf8_locale

    use_utf8_locale()  # under LANG=C Qt would print locale warnings at every start
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

    window = MainWindow(model=model, device=device)
    install_excepthook(lambda: window)
    window.show()
    if paths:
        window.add_paths(paths)
    return app.exec()
