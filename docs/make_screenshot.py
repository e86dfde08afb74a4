"""Takes docs/screenshot.png: the real window with the demo model, the bundled samples and a heatmap.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/make_screenshot.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    from PySide6.QtCore import QCoreApplication, QEventLoop, QSettings
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from gui.main_window import MainWindow

    app = QApplication([])
    QCoreApplication.setOrganizationName("DenseLensScreenshot")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tempfile.mkdtemp())
    app.setWindowIcon(QIcon(str(ROOT / "assets" / "icons" / "denselens.png")))
    w = MainWindow(autoload=False)
    w.resize(1440, 880)
    w.show()

    def wait(cond, timeout=120.0) -> None:
        end = time.time() + timeout
        while not cond() and time.time() < end:
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
            time.sleep(0.005)

    w.load_model("demo")
    wait(lambda: w.session.model is not None)
    w.add_paths([str(ROOT / "assets" / "samples")])
    wait(lambda: all(w.images.state(p) != "busy" for p in w.images.paths()))
    target = str(ROOT / "assets" / "samples" / "circle-and-star.png")
    w.images.setCurrentItem(w.images.item_for(target))
    wait(lambda: w.session.has_current_maps() and w.session.current_path == target)
    predictions = w.session.explanation.predictions
    w.choose_class(predictions[1].index if predictions[1].label in ("star", "circle") else predictions[0].index)
    wait(lambda: w.session.has_current_maps() and not w._refresh_pending)
    time.sleep(0.2)
    app.processEvents()
    out = ROOT / "docs" / "screenshot.png"
    w.grab().save(str(out))
    print(f"wrote {out}")
    w.close()


if __name__ == "__main__":
    main()
