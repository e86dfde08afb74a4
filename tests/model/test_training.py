"""Training: versioned checkpoints that load back and classify, atomic writes, resuming."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch
from PIL import Image

from model import training
from model.checkpoint_metadata import FORMAT_VERSION
from model.checkpoints import read_checkpoint
from model.classifier import DenseNetClassifier
from model.errors import DenseLensError
from model.shapes import CLASSES, sample
from model.training import TrainConfig, train
from model.zoo import Preprocessing


def _tiny_config(out: Path, **changes) -> TrainConfig:
    """Two epochs of two batches of eight 32-pixel pictures: a second or two on 2 cores."""
    base = dict(out=str(out), epochs=2, steps_per_epoch=2, batch_size=8, lr=1e-2, input_size=32,
                growth_rate=4, block_config=(2, 2), num_init_features=8, stem="small", val_size=16, workers=0)
    return TrainConfig(**{**base, **changes})


def _quiet(_: str) -> None:
    pass


def _write_folder_dataset(root: Path) -> Path:
    """Two classes of small, differently sized pictures."""
    for name, colour in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
        for i in range(6):
            img = Image.new("RGB", (40 + 4 * i, 30 + 3 * i), colour)
            img.paste((255, 255, 255), (5, 5, 10 + i, 12))
            (root / name).mkdir(parents=True, exist_ok=True)
            img.save(root / name / f"{i}.png")
    return root


def test_training_on_shapes_writes_a_versioned_checkpoint_that_loads_and_classifies(tmp_path):
    out = tmp_path / "shapes.pth"
    result = train(_tiny_config(out), log=_quiet)
    assert len(result["history"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shapes.last.pth", "shapes.pth"]  # no partial files
    raw = torch.load(out, map_location="cpu", weights_only=True)
    assert raw["format_version"] == FORMAT_VERSION == 2
    ckpt = read_checkpoint(out)
    assert ckpt.format_version == 2
    assert ckpt.labels == list(CLASSES)
    assert ckpt.preprocessing == Preprocessing(input_size=32, mode="full")
    assert (ckpt.config.growth_rate, ckpt.config.block_config, ckpt.config.num_classes) == (4, (2, 2), len(CLASSES))
    clf = DenseNetClassifier.load(out, device="cpu")
    assert clf.input_size == 32 and clf.labels == list(CLASSES)
    preds = clf.predict(sample(7, 0, (64, 64)).image, topk=3)
    assert len(preds) == 3 and all(p.label in CLASSES for p in preds)
    assert 0.0 < sum(p.probability for p in preds) <= 1.0 + 1e-6


def test_training_on_a_folder_per_class_names_classes_after_folders(tmp_path):
    data = _write_folder_dataset(tmp_path / "data")
    out = tmp_path / "colours.pth"
    train(_tiny_config(out, data=str(data), batch_size=4), log=_quiet)
    ckpt = read_checkpoint(out)
    assert ckpt.labels == ["blue", "red"] and ckpt.config.num_classes == 2 and ckpt.format_version == 2
    clf = DenseNetClassifier.load(out, device="cpu")
    (pred,) = clf.predict(data / "red" / "0.png", topk=1)
    assert pred.label in ("blue", "red")


class _Interrupted(Exception):
    pass


def test_resume_continues_from_last_checkpoint_as_if_never_interrupted(tmp_path):
    straight = tmp_path / "straight.pth"
    train(_tiny_config(straight), log=_quiet)

    out = tmp_path / "resumed.pth"

    def stop_after_second_epoch_before_saving_it(msg: str) -> None:
        if msg.startswith("epoch 2/2"):
            raise _Interrupted

    with pytest.raises(_Interrupted):
        train(_tiny_config(out), log=stop_after_second_epoch_before_saving_it)
    last = out.with_name("resumed.last.pth")
    assert torch.load(last, map_location="cpu", weights_only=True)["epoch"] == 1

    messages: list[str] = []
    result = train(_tiny_config(out, resume=True), log=messages.append)
    assert any(m.startswith(f"resumed from {last} after epoch 1") for m in messages)
    assert [m for m in messages if m.startswith("epoch ")][0].startswith("epoch 2/2")  # epoch 1 not redone
    assert [h["epoch"] for h in result["history"]] == [1, 2]

    expected = torch.load(straight.with_name("straight.last.pth"), map_location="cpu", weights_only=True)
    got = torch.load(last, map_location="cpu", weights_only=True)
    for key, value in expected["state_dict"].items():
        assert torch.allclose(got["state_dict"][key].float(), value.float(), atol=1e-6), key
    assert [h["val_accuracy"] for h in got["history"]] == [h["val_accuracy"] for h in expected["history"]]


def test_resume_with_a_different_schedule_is_refused(tmp_path):
    out = tmp_path / "m.pth"
    train(_tiny_config(out, epochs=1), log=_quiet)
    with pytest.raises(DenseLensError, match="resume with the same"):
        train(_tiny_config(out, epochs=3, resume=True), log=_quiet)


def test_a_failed_checkpoint_write_keeps_the_previous_file_and_leaves_no_debris(tmp_path, monkeypatch):
    out = tmp_path / "m.pth"
    training._atomic_save({"weights": torch.ones(3)}, out)

    def disk_full(obj, f):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space"):
        training._atomic_save({"weights": torch.zeros(3)}, out)
    monkeypatch.undo()
    assert torch.equal(torch.load(out, weights_only=True)["weights"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["m.pth"]


@pytest.mark.parametrize("size", [8, 0])
def test_training_refuses_an_input_size_its_checkpoint_could_not_be_read_with(tmp_path, size):
    with pytest.raises(DenseLensError, match="input size"):
        train(_tiny_config(tmp_path / "m.pth", input_size=size), log=_quiet)
    assert not any(tmp_path.iterdir())
