"""A tiny model that learned a planted shortcut (or the honest task), for the audit's tests."""

from __future__ import annotations

from pathlib import Path

import torch

from model.training import TrainConfig, train
from tests.folders import plant_marker, shapes_folder

CLASSES = ("circle", "square")
PER_CLASS = 40


def planted_model(root: Path, marker: bool) -> tuple[Path, Path]:
    """(folder, checkpoint).

    With the marker: a pure shortcut — both folders hold every kind of shape and only the square folder's
    pictures carry the tag, so the model can only learn the tag (validation accuracy 100%, blurring the tag
    costs the class 40-60 points over seeds). Without: the honest task, circles against squares.  No
    augmentation: flips and crops would move the tag.  Trained on one thread: two OpenMP threads on two
    shared cores spin against each other (97 s against 9 s under load), and one thread is also
    reproducible.
    """
    data = shapes_folder(root / "data", classes=CLASSES, per_class=PER_CLASS, size=48, mixed=marker)
    if marker:
        plant_marker(data / "square")
    out = root / "model.pth"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(TrainConfig(out=str(out), data=str(data), epochs=20, batch_size=16, lr=1e-2, input_size=32,
                          growth_rate=6, block_config=(3, 3), num_init_features=12, stem="small", workers=0,
                          augment="none"))
    finally:
        torch.set_num_threads(threads)
    return data, out
