"""Give the demo model its threshold for pictures unlike its training pictures, at the scale people use it.

    .venv/bin/python bench/calibrate_demo.py [--model assets/models/demo.pth] [--pictures 2000]

Training sets the threshold from its validation stream, drawn at the network's 96 px.  People open
larger pictures (the bundled samples are 256 px), which the app shrinks to 96 px first: smoother edges,
slightly different scores (for a model of the first generator, a threshold from the 96-px stream called
the clean ``assets/samples/heart.png`` unfamiliar; for the shipped model the two thresholds agree within
0.002).  So this draws shapes (``model.shapes``, a seed neither training nor evaluation uses) at
96-320 px, prepares them exactly as the app does (``DenseNetClassifier.prepare``), and sets the energy
that 95% of them pass (``model.training.calibrate_unfamiliar``).  Then it prints the verdicts on the
bundled samples and on matplotlib's sample photos, which should be unfamiliar.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from matplotlib import cbook  # noqa: E402
from torch.utils.data import Dataset  # noqa: E402

from model.classifier import DenseNetClassifier  # noqa: E402
from model.paths import assets_dir, demo_model_path  # noqa: E402
from model.shapes import sample  # noqa: E402
from model.training import calibrate_unfamiliar  # noqa: E402

CALIBRATION_SEED = 515_151  # neither training (seed * 10,000 + epoch), validation nor evaluation uses it


class AppSized(Dataset):
    """Shapes drawn at 96-320 px and prepared as the app prepares a picture."""

    def __init__(self, clf: DenseNetClassifier, count: int) -> None:
        self.clf, self.count = clf, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int):
        side = int(np.random.default_rng([CALIBRATION_SEED, index]).integers(96, 321))
        s = sample(CALIBRATION_SEED, index, (side, side))
        return self.clf.prepare(s.image).tensor, s.label


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(demo_model_path()))
    parser.add_argument("--pictures", type=int, default=2000)
    args = parser.parse_args()
    clf = DenseNetClassifier.load(args.model, device="cpu")
    threshold = calibrate_unfamiliar(args.model, AppSized(clf, args.pictures))
    print(f"{args.model}: unfamiliar above energy {threshold:.3f} (95% of {args.pictures} app-sized shapes)")
    clf = DenseNetClassifier.load(args.model, device="cpu")
    photos = [cbook.get_sample_data(name, asfileobj=False) for name in ("grace_hopper.jpg",
                                                                         "Minduka_Present_Blue_Pack.png")]
    for path in sorted((assets_dir() / "samples").glob("*.png")) + [Path(p) for p in photos]:
        top = clf.predict(str(path), topk=1)[0]
        verdict = "UNFAMILIAR" if top.unfamiliar else "familiar"
        print(f"  {path.name:32s} {top.label} {top.probability * 100:5.1f}%  {verdict}")


if __name__ == "__main__":
    main()
