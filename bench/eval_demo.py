"""Full quality evaluation of the bundled demo model on freshly generated shapes.

    .venv/bin/python bench/eval_demo.py [--model assets/models/demo.pth] [--images 1000] [--pointing 500]
                                        [--two-shape 300] [--deletion 100] [--scorecam 50]
                                        [--other 1000] [--other-pointing 500]

Prints a Markdown table (the one in docs/QUALITY.md): the model's own generator (model/shapes.py), then
the same classes drawn by an independent renderer over photos (bench/other_renderer.py), its accuracy also
by the kind of background under the shape. The test suite runs a
subset of the same measures (tests/model/test_demo_model.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.other_renderer import background_kind, other_sample  # noqa: E402
from model.cam import METHODS  # noqa: E402
from model.classifier import DenseNetClassifier  # noqa: E402
from model.evaluation import (  # noqa: E402
    EVAL_SEED,
    EVAL_SIZE,
    accuracy,
    deletion_vs_random,
    pointing_game,
    pointing_on,
    two_shape_check,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--pointing", type=int, default=500)
    parser.add_argument("--two-shape", type=int, default=300)
    parser.add_argument("--deletion", type=int, default=100)
    parser.add_argument("--scorecam", type=int, default=50, help="images for Score-CAM's pointing game (slow)")
    parser.add_argument("--other", type=int, default=1000, help="pictures of the other renderer (accuracy)")
    parser.add_argument("--other-pointing", type=int, default=500,
                        help="pictures of the other renderer (Grad-CAM pointing game)")
    args = parser.parse_args()

    t0 = time.time()
    clf = DenseNetClassifier.load(args.model, device="cpu")
    blocks = [t for t in clf.model.tap_names if t.startswith("denseblock")]
    deepest = blocks[-1]
    from model.architecture import describe

    print(f"model {clf.source}: {describe(clf.config).parameters:,} parameters, "
          f"input {clf.input_size}; evaluation seed {EVAL_SEED}\n")
    acc = accuracy(clf, args.images)
    print(f"| accuracy, {args.images} single-shape images | {acc * 100:.1f}% |")

    def other(i: int):
        return other_sample(EVAL_SEED, i, EVAL_SIZE)

    if args.other:
        right: dict[str, list[bool]] = {}
        for i in range(args.other):
            image, label, _ = other(i)
            right.setdefault(background_kind(EVAL_SEED, i), []).append(clf.predict(image, topk=1)[0].index == label)
        every = [r for kind in right.values() for r in kind]
        by_kind = ", ".join(f"{kind} {np.mean(r) * 100:.1f}% of {len(r)}"
                            for kind, r in sorted(right.items(), key=lambda item: -len(item[1])))
        print(f"| accuracy, {args.other} pictures of the other renderer | {np.mean(every) * 100:.1f}% "
              f"(by background: {by_kind}) |")
    if args.other_pointing:
        r = pointing_on(clf, other, args.other_pointing, deepest)
        empty = f", {r.empty} empty" if r.empty else ""
        print(f"| pointing game / heat in box, Grad-CAM at {deepest}, {args.other_pointing} pictures of the other "
              f"renderer | {r.rate * 100:.1f}% / {r.energy * 100:.0f}%{empty} |")
    print()

    fast = [m for m, spec in METHODS.items() if spec.needs_gradients]
    rows = pointing_game(clf, args.pointing, blocks, fast)
    if args.scorecam:
        rows += pointing_game(clf, args.scorecam, blocks, ["scorecam"])
    print(f"Pointing game (peak inside the object's box) / mean share of heat inside the box; "
          f"{args.pointing} images ({args.scorecam} for Score-CAM):\n")
    print("| method | " + " | ".join(blocks) + " |")
    print("|---|" + "---|" * len(blocks))
    for method in [*fast, "scorecam"] if args.scorecam else fast:
        cells = []
        for layer in blocks:
            r = next(r for r in rows if r.layer == layer and r.method == method)
            empty = f", {r.empty} empty" if r.empty else ""
            cells.append(f"{r.rate * 100:.1f}% / {r.energy * 100:.0f}%{empty}")
        print(f"| {METHODS[method].title} | " + " | ".join(cells) + " |")

    two = two_shape_check(clf, args.two_shape, deepest)
    print(f"\nTwo-shape pictures ({args.two_shape}), Grad-CAM at {deepest}:\n")
    print(f"| top-2 predictions are the two shapes | {two.top2_rate * 100:.1f}% |")
    print(f"| each class's peak on its own shape | {two.peak_rate * 100:.1f}% ({two.peaks_on_own_shape}/"
          f"{two.peaks_total}) |")

    d = deletion_vs_random(clf, args.deletion, deepest)
    print(f"\nDeletion / insertion AUC, Grad-CAM at {deepest} against a random pixel order, {args.deletion} "
          f"images (deletion: lower is better; insertion: higher is better):\n")
    print("| order | deletion AUC | insertion AUC |\n|---|---|---|")
    print(f"| Grad-CAM | {d.cam_deletion:.3f} | {d.cam_insertion:.3f} |")
    print(f"| random | {d.random_deletion:.3f} | {d.random_insertion:.3f} |")
    print(f"\n(evaluation took {time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
