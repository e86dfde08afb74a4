"""Desktop app timings: start to window, drop to predictions and to heatmap, memory with 200 images.

    xvfb-run -a .venv/bin/python bench/bench_gui.py [--runs 5]

* start to window: ``python main.py`` is launched and the window is looked
  for with ``xdotool`` on the X display; reported against ``python -c
  "import torch"`` timed the same way in the same run (what a window that
  waited for torch would cost at least);
* drop to predictions / heatmap: in-process (offscreen), a warm window with
  the demo model and with DenseNet-121 (fixed-seed weights written by this
  script) receives one image;
* peak RSS of the process after 200 generated images are listed and classified (measured first,
  before any other model is loaded).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def window_seconds(command: list[str], home: Path) -> float:
    """Seconds from launching ``command`` until a visible window titled DenseLens exists (X display)."""
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
           "XDG_DATA_HOME": str(home / "data")}
    for key in ("QT_QPA_PLATFORM", "PYTHONPATH"):
        env.pop(key, None)
    log = home / "window.log"
    t0 = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, env=env, cwd=home, stdout=out, stderr=subprocess.STDOUT)
    try:
        while True:
            found = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "^DenseLens$"],
                                   capture_output=True, text=True).stdout.strip()
            if found:
                return time.perf_counter() - t0
            if proc.poll() is not None or time.perf_counter() - t0 > 60:
                raise RuntimeError(f"{command[-1]}: the window never appeared:\n{log.read_text()[-2000:]}")
            time.sleep(0.05)  # gentle polling: each xdotool call is an X client
    finally:
        proc.terminate()
        proc.wait(30)


def start_to_window(runs: int, home: Path) -> tuple[float, float]:
    window_times, torch_times = [], []
    for _ in range(runs):
        window_times.append(window_seconds([sys.executable, str(ROOT / "main.py")], home))
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch, torchvision"], check=True)
        torch_times.append(time.perf_counter() - t0)
    return statistics.median(window_times), statistics.median(torch_times)


def in_process(models: dict[str, str], images: int) -> dict:
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtCore import QCoreApplication, QEventLoop, QSettings, QStandardPaths
    from PySide6.QtWidgets import QApplication

    from gui.main_window import MainWindow
    from tests.conftest import save_image

    app = QApplication.instance() or QApplication([])
    QStandardPaths.setTestModeEnabled(True)
    QCoreApplication.setOrganizationName("DenseLensBench")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    tmp = Path(tempfile.mkdtemp())
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "settings"))

    def wait(cond, timeout=300.0) -> float:
        t0 = time.perf_counter()
        while not cond():
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 5)
            time.sleep(0.002)  # let the engine thread have the GIL, as an idle event loop would
        return time.perf_counter() - t0

    from PIL import Image

    w = MainWindow(autoload=False)
    w.show()
    w.load_model(models["demo"])
    wait(lambda: w.session.model is not None)
    paths = [save_image(tmp / "many" / f"img{i:03d}.jpg", size=(800, 600), color=(i % 255, 80, 160), fmt="JPEG")
             for i in range(images)]
    w.add_paths(paths)
    t_batch = wait(lambda: all(w.images.state(p) != "busy" for p in paths))
    figures = {}
    figures["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures["batch_s"] = t_batch
    w.close()
    for name, spec in models.items():
        w = MainWindow(autoload=False)
        w.show()
        w.load_model(spec)
        wait(lambda w=w: w.session.model is not None)
        warm = save_image(tmp / f"warm-{name}.png", size=(640, 480))
        w.add_paths([warm])
        wait(lambda w=w: w.session.has_current_maps())
        photo = tmp / f"photo-{name}.jpg"
        Image.effect_noise((1024, 768), 60).convert("RGB").save(photo)
        t0 = time.perf_counter()
        w.add_paths([str(photo)])
        w.images.setCurrentRow(w.images.count() - 1)
        t_pred = wait(lambda w=w, p=str(photo): w.images.state(p) == "done")
        wait(lambda w=w, p=str(photo): w.session.has_current_maps() and w.session.current_path == p)
        figures[name] = (t_pred, time.perf_counter() - t0)
        w.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args()
    import torch
    import torchvision

    from model.paths import demo_model_path

    home = Path(tempfile.mkdtemp())
    window, torch_import = start_to_window(args.runs, home)
    print(f"start to window (median of {args.runs}): {window:.2f} s; `import torch, torchvision` alone: "
          f"{torch_import:.2f} s (ratio {window / torch_import:.2f})")
    torch.manual_seed(0)
    d121 = home / "densenet121-seeded.pth"
    torch.save(torchvision.models.densenet121().state_dict(), d121)
    figures = in_process({"demo": str(demo_model_path()), "densenet121": str(d121)}, args.images)
    for name in ("demo", "densenet121"):
        pred, heat = figures[name]
        print(f"{name}: drop to predictions {pred * 1000:.0f} ms, drop to heatmap {heat * 1000:.0f} ms "
              "(1024x768 JPEG, warm model)")
    print(f"{args.images} images (800x600 JPEG) listed and classified with the demo model in "
          f"{figures['batch_s']:.1f} s; peak RSS {figures['rss_mb']:.0f} MB")
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
