"""What the caching engine saves: class switches on a held picture, and one opacity step of the window.

    .venv/bin/python bench/bench_session.py [--runs 9]

1. Fixed-seed DenseNet-121 weights, one 224x224 picture, CPU, medians of
   interleaved runs after warm-up.  A *fresh explain* decodes nothing (the
   picture is in memory) but prepares the tensor, runs the forward pass and
   the backward pass, as the app did for every class switch before the
   engine held the picture's analysis.  A *class switch* asks the held
   ``ImageAnalysis`` for a class it has not computed yet (each run a new
   class): only the backward pass from the logits to the layer runs.
   Both at ``denseblock4`` and at all four dense blocks; our ``predict``
   is timed as well, for scale.
2. One opacity step of the window at 4096x3072 (offscreen Qt): the block
   panel now composites tile-sized cached pixmaps; the reference is what it
   did before in the same run, scaling the full-resolution picture and heat
   index down to each of the four tiles on every step.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from PIL import Image  # noqa: E402

from bench.bench_predict import interleaved_medians  # noqa: E402
from model.classifier import DenseNetClassifier  # noqa: E402
from model.densenet import densenet121  # noqa: E402
from model.explain import ImageAnalysis  # noqa: E402

BLOCKS = ["denseblock1", "denseblock2", "denseblock3", "denseblock4"]


def class_switch(runs: int) -> None:
    torch.manual_seed(0)
    tv = torchvision.models.densenet121().eval()
    ours = densenet121()
    ours.load_state_dict(tv.state_dict())
    clf = DenseNetClassifier(ours, [f"class {i}" for i in range(1000)], device="cpu")
    picture = Image.effect_noise((224, 224), 50).convert("RGB")
    prepared = clf.prepare(picture)
    analysis = ImageAnalysis(clf, prepared)
    fresh_classes, switch_classes = itertools.count(0), itertools.count(500)
    t = interleaved_medians({
        "predict": lambda: clf.logits(prepared.tensor[None]),
        "fresh_b4": lambda: clf.explain(picture, layers=["denseblock4"], classes=[next(fresh_classes) % 500]),
        "switch_b4": lambda: analysis.explain(["denseblock4"], [next(switch_classes)]),
        "fresh_all": lambda: clf.explain(picture, layers=BLOCKS, classes=[next(fresh_classes) % 500]),
        "switch_all": lambda: analysis.explain(BLOCKS, [next(switch_classes)]),
    }, runs, warmup=2)
    print(f"predict                      {t['predict'] * 1000:7.1f} ms")
    for what, fresh, switch in (("denseblock4", "fresh_b4", "switch_b4"), ("all four blocks", "fresh_all",
                                                                          "switch_all")):
        print(f"{what:16s} fresh explain {t[fresh] * 1000:7.1f} ms ({t[fresh] / t['predict']:.2f}x predict)   "
              f"class switch {t[switch] * 1000:7.1f} ms ({t[switch] / t['predict']:.2f}x predict)   "
              f"switch/fresh {t[switch] / t[fresh]:.2f}")


def opacity_step(runs: int) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QPainter, QPixmap
    from PySide6.QtWidgets import QApplication

    from gui.blocks_panel import BlocksPanel
    from gui.engine import TILE, _thumbnail
    from gui.qimages import indexed_image, rgb_pixmap
    from model.render import colour_table

    app = QApplication.instance() or QApplication([])
    rng = np.random.default_rng(0)
    picture = Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).resize((4096, 3072))
    full = np.asarray(picture)
    full_index = np.asarray(Image.fromarray(rng.integers(0, 254, (7, 7), dtype=np.uint8)).resize((2048, 1536)))
    tile_index = full_index[::12, ::12].copy()
    panel = BlocksPanel()
    panel.set_layers(BLOCKS)
    panel.show_maps(_thumbnail(picture, TILE), {b: tile_index for b in BLOCKS}, {}, "bench")
    opacities = itertools.cycle([0.3, 0.6])
    table = colour_table("jet")

    def before() -> None:  # what the panel did per step before: full-resolution sources, scaled per tile
        base = rgb_pixmap(full)
        opacity = next(opacities)
        for _ in BLOCKS:
            canvas = base.scaled(TILE, TILE, Qt.AspectRatioMode.KeepAspectRatio,
                                 Qt.TransformationMode.SmoothTransformation)
            heat = QPixmap.fromImage(indexed_image(full_index, table)).scaled(
                canvas.size(), Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation)
            painter = QPainter(canvas)
            painter.setOpacity(opacity)
            painter.drawPixmap(0, 0, heat)
            painter.end()

    def now() -> None:
        panel.set_style("jet", next(opacities))
        app.processEvents()

    t = interleaved_medians({"before": before, "now": now}, runs, warmup=2)
    print(f"opacity step at 4096x3072: block panel now {t['now'] * 1000:.2f} ms, before {t['before'] * 1000:.1f} ms "
          f"(now/before {t['now'] / t['before']:.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    started = time.perf_counter()
    class_switch(args.runs)
    opacity_step(args.runs)
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
