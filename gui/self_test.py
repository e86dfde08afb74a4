"""``--self-test``: prove an installation works, headless, and say so in JSON.

Loads the bundled demo model, classifies a bundled sample, writes a Grad-CAM
overlay to a temporary folder, opens and closes the main window once, prints
a JSON report and exits 0; any failure exits 1 with the reason.  It runs the
same way from source and from the frozen bundle.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback


def run() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("TORCHVISION_WARN_WHEN_EXTENSION_LOADING_FAILS", "1")
    report: dict = {"ok": False, "frozen": bool(getattr(sys, "frozen", False)), "steps": {}}
    started = time.perf_counter()

    def step(name: str, value) -> None:
        report["steps"][name] = value

    try:
        from model import __version__
        from model.paths import app_root, assets_dir, demo_model_path

        report["version"] = __version__
        step("app_root", str(app_root()))
        import torch
        import torchvision

        step("torch", torch.__version__)
        step("torchvision", torchvision.__version__)
        step("torchvision_ops", bool(torchvision.extension._has_ops()))
        from model.classifier import DenseNetClassifier
        from model.heatmap_files import export_map

        clf = DenseNetClassifier.load("demo", device="cpu")
        step("model", {"file": str(demo_model_path()), "classes": len(clf.labels)})
        sample = assets_dir() / "samples" / "star.png"
        top = clf.predict(sample, topk=3)
        step("classify", {"image": sample.name, "top": [p.to_dict() for p in top]})
        if top[0].label != "star":
            raise RuntimeError(f"the demo model called {sample.name} '{top[0].label}'")
        ex = clf.explain(sample, method="gradcam")
        with tempfile.TemporaryDirectory(prefix="denselens-selftest-") as out:
            files = export_map(ex, ex.maps[0], out, "demo")
            from PIL import Image

            with Image.open(files["overlay"][0]) as img:
                img.load()
                step("overlay", {"size": list(img.size), "layer": img.text["denselens:layer"]})
        from PySide6.QtWidgets import QApplication

        from gui.main_window import MainWindow

        app = QApplication.instance() or QApplication([])
        app.setOrganizationName("DenseLens")
        app.setApplicationName("DenseLens-selftest")
        window = MainWindow(autoload=False)
        window.show()
        app.processEvents()
        step("window", {"title": window.windowTitle(), "visible": window.isVisible()})
        window.close()
        report["ok"] = True
    except Exception as e:  # noqa: BLE001 - the report must say what failed, whatever it was
        report["error"] = f"{type(e).__name__}: {e}"
        report["traceback"] = traceback.format_exc(limit=8)
    report["seconds"] = round(time.perf_counter() - started, 2)
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1
