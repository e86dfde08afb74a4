"""``--self-test [--gui]``: prove an installation works, and say so in JSON.

    --self-test         headless (offscreen): loads the bundled demo model, classifies a bundled sample,
                        writes a Grad-CAM overlay to a temporary folder, opens and closes the main window
    --self-test --gui   the real app on the display in use: opens the main window, loads the demo model
                        through the engine thread and classifies a bundled sample through it; then loads an
                        ImageNet DenseNet-121 the same way (bundled weights if there are any, else seeded
                        ones written to a temporary torch cache: no download), which is the path that needs
                        torchvision (its ImageNet class names); keeps the window up a moment

Either prints a JSON report (with the glibc a bundle needs, recorded when it was built, next to the one
running) and exits 0; any failure exits 1 with the reason: a model that failed to load, a wrong or
failed classification, an error the app reported, a window that did not stay up.  It runs the same
way from source and from the frozen bundle.
"""

from __future__ import annotations

import json
import locale
import os
import sys
import tempfile
import time
import traceback

SAMPLE = ("star.png", "star")  # a bundled sample and what the demo model must call it
IMAGENET = "densenet121"  # the ImageNet model the GUI self-test loads (it needs torchvision's class names)
GUI_TIMEOUT_S = 180  # model load and one classification, on a slow machine
STAY_UP_S = 2.0  # the window must still be there this long after the answer


def glibc_version() -> str | None:
    """The running C library's version if it is glibc ("2.36"), else None (macOS, Windows, musl)."""
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (AttributeError, ValueError, OSError):
        return None
    name, _, version = text.partition(" ")
    return version if name == "glibc" and version else None


def build_record() -> dict | None:
    """What build.spec recorded about the build (assets/build-info.json), or None from source."""
    from model.paths import assets_dir

    try:
        return json.loads((assets_dir() / "build-info.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def environment() -> dict:
    build = build_record()
    return {
        # A bundle needs at least the glibc it was built with (docs/PACKAGING.md); from source: the wheels'.
        "glibc": {"needs": build.get("glibc") if build else None, "running": glibc_version()},
        "locale": {"ctype": locale.setlocale(locale.LC_CTYPE), "utf8_mode": bool(sys.flags.utf8_mode),
                   "filesystem_encoding": sys.getfilesystemencoding()},
        "build": build,
    }


def options(argv: list[str] | None) -> list[str]:
    """The words after ``--self-test``: given, or read from the command line (main.py passes none)."""
    if argv is not None:
        return list(argv)
    args = sys.argv[1:]
    return args[args.index("--self-test") + 1:] if "--self-test" in args else []


def run(argv: list[str] | None = None) -> int:
    words = options(argv)
    if any(w != "--gui" for w in words):
        print(f"--self-test takes only --gui, not {' '.join(w for w in words if w != '--gui')}", file=sys.stderr)
        return 2
    gui = "--gui" in words
    from gui.qt_locale import use_utf8_locale

    use_utf8_locale()
    if not gui:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("TORCHVISION_WARN_WHEN_EXTENSION_LOADING_FAILS", "1")
    report: dict = {"ok": False, "mode": "gui" if gui else "headless", "frozen": bool(getattr(sys, "frozen", False)),
                    "steps": {}}
    started = time.perf_counter()
    try:
        from model import __version__

        report["version"] = __version__
        report.update(environment())
        (gui_checks if gui else headless_checks)(report["steps"])
        report["ok"] = True
    except Exception as e:  # noqa: BLE001 - the report must say what failed, whatever it was
        report["error"] = f"{type(e).__name__}: {e}"
        report["traceback"] = traceback.format_exc(limit=8)
    report["seconds"] = round(time.perf_counter() - started, 2)
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


def headless_checks(steps: dict) -> None:
    from model.paths import app_root, assets_dir, demo_model_path

    steps["app_root"] = str(app_root())
    import torch
    import torchvision

    steps["torch"] = torch.__version__
    steps["torchvision"] = torchvision.__version__
    steps["torchvision_ops"] = bool(torchvision.extension._has_ops())
    from model.classifier import DenseNetClassifier
    from model.heatmap_files import export_map

    clf = DenseNetClassifier.load("demo", device="cpu")
    steps["model"] = {"file": str(demo_model_path()), "classes": len(clf.labels)}
    sample = assets_dir() / "samples" / SAMPLE[0]
    top = clf.predict(sample, topk=3)
    steps["classify"] = {"image": sample.name, "top": [p.to_dict() for p in top]}
    if top[0].label != SAMPLE[1]:
        raise RuntimeError(f"the demo model called {sample.name} '{top[0].label}'")
    ex = clf.explain(sample, method="gradcam")
    with tempfile.TemporaryDirectory(prefix="denselens-selftest-") as out:
        files = export_map(ex, ex.maps[0], out, "demo")
        from PIL import Image

        with Image.open(files["overlay"][0]) as img:
            img.load()
            steps["overlay"] = {"size": list(img.size), "layer": img.text["denselens:layer"]}
    from PySide6.QtWidgets import QApplication

    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    app.setOrganizationName("DenseLens")
    app.setApplicationName("DenseLens-selftest")
    window = MainWindow(autoload=False)
    window.show()
    app.processEvents()
    steps["window"] = {"title": window.windowTitle(), "visible": window.isVisible()}
    window.close()


def _wait(until, seconds: float) -> bool:
    """Run the event loop until ``until()`` is true or ``seconds`` pass; returns ``until()``."""
    from PySide6.QtCore import QEventLoop, QTimer

    end = time.monotonic() + seconds
    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: (until() or time.monotonic() > end) and loop.quit())
    timer.start()
    if not until():
        loop.exec()
    timer.stop()
    return bool(until())


def gui_checks(steps: dict) -> None:
    """The app as a user gets it: window, engine thread, the demo model and an ImageNet one, a classified picture."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from gui.app import install_excepthook
    from gui.main_window import MainWindow
    from gui.settings import Settings
    from model.paths import assets_dir

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("DenseLens")
    app.setApplicationName("DenseLens-selftest")
    steps["platform"] = app.platformName()
    sample = str(assets_dir() / "samples" / SAMPLE[0])
    with tempfile.TemporaryDirectory(prefix="denselens-selftest-") as tmp:  # no settings or weights left behind
        settings = Settings(QSettings(os.path.join(tmp, "settings.ini"), QSettings.Format.IniFormat))
        previous_home, previous_hook = os.environ.get("TORCH_HOME"), sys.excepthook
        os.environ["TORCH_HOME"] = os.path.join(tmp, "torch")  # the user's cache is neither read nor written
        try:
            steps["imagenet_weights"] = _imagenet_weights()
            window = MainWindow(settings=settings, model="demo", device="auto")
            install_excepthook(lambda: window)  # an exception in a slot becomes an error box: a failure here
            window.show()
            try:
                _check_window(window, sample, steps)
            finally:
                window.close()
                app.processEvents()
        finally:
            sys.excepthook = previous_hook
            if previous_home is None:
                os.environ.pop("TORCH_HOME", None)
            else:
                os.environ["TORCH_HOME"] = previous_home


def _imagenet_weights() -> str:
    """Where the engine will find DenseNet-121's weights: bundled, else seeded ones written to $TORCH_HOME."""
    from model.weights import cache_dir, cached_path
    from model.zoo import MODELS

    entry = MODELS[IMAGENET]
    found = cached_path(entry)
    if found is not None:
        return "bundled"
    import torch

    from model.densenet import FACTORIES

    torch.manual_seed(0)
    path = cache_dir() / entry.weights_file
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(FACTORIES[IMAGENET]().state_dict(), path)
    return "seeded"


def _loaded(session, spec: str, problem):
    """The ModelInfo once the engine has loaded ``spec``; a RuntimeError if it failed or took too long."""
    if not _wait(lambda: (session.model is not None and session.model.spec == spec)
                 or session.load_failure is not None or problem(), GUI_TIMEOUT_S):
        raise RuntimeError(f"{spec} was not loaded within {GUI_TIMEOUT_S} s")
    if session.load_failure is not None:
        raise RuntimeError(f"the model failed to load: {session.load_failure.message}")
    if problem():
        raise RuntimeError(problem())
    return session.model


def _check_window(window, sample: str, steps: dict) -> None:
    session = window.session

    def problem() -> str | None:
        for box in (window.error_box, window.failure_box):
            if box is not None:
                return f"{box.windowTitle()}: {box.text()}"
        return None

    if not _wait(lambda: window.isVisible() and window.windowHandle() is not None
                 and window.windowHandle().isExposed(), 30):
        raise RuntimeError("the main window was not shown within 30 s")
    steps["window"] = {"title": window.windowTitle(), "visible": True, "exposed": True}
    info = _loaded(session, "demo", problem)
    steps["model"] = {"name": info.title, "spec": info.spec, "device": info.device_name,
                      "classes": len(info.labels), "torch": info.versions.get("torch")}
    window.add_paths([sample])
    if not _wait(lambda: sample in session.results or problem(), GUI_TIMEOUT_S):
        raise RuntimeError(f"{SAMPLE[0]} was not classified within {GUI_TIMEOUT_S} s")
    result = session.results.get(sample)
    if result is None or result.error:
        raise RuntimeError(problem() or f"classifying {SAMPLE[0]} failed: {result.error}")
    steps["classify"] = {"image": SAMPLE[0], "top": [p.to_dict() for p in result.predictions[:3]]}
    if result.predictions[0].label != SAMPLE[1]:
        raise RuntimeError(f"the demo model called {SAMPLE[0]} '{result.predictions[0].label}'")

    window.load_model(IMAGENET)  # the window classifies the listed sample again once it is loaded
    info = _loaded(session, IMAGENET, problem)
    if len(info.labels) != 1000 or info.labels[0] != "tench":
        raise RuntimeError(f"{IMAGENET} has {len(info.labels)} classes, not ImageNet's 1000 names")
    if not _wait(lambda: sample in session.results or problem(), GUI_TIMEOUT_S):
        raise RuntimeError(f"{SAMPLE[0]} was not classified by {IMAGENET} within {GUI_TIMEOUT_S} s")
    result = session.results.get(sample)
    if result is None or result.error:
        raise RuntimeError(problem() or f"classifying {SAMPLE[0]} with {IMAGENET} failed: {result.error}")
    steps["imagenet"] = {"name": info.title, "classes": len(info.labels), "weights": info.weights_file,
                         "top": result.predictions[0].to_dict()}  # seeded weights: any class will do
    _wait(lambda: not window.isVisible() or problem() is not None, STAY_UP_S)
    if problem():
        raise RuntimeError(problem())
    if not window.isVisible():
        raise RuntimeError("the main window closed by itself")
    steps["stayed_up_s"] = STAY_UP_S
