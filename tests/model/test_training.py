"""Training: versioned checkpoints that load back and classify, the data check, the split, start points and
modes, resuming, the unfamiliar-picture threshold, atomic writes."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch

from model import training
from model.checkpoint_metadata import FORMAT_VERSION
from model.checkpoints import read_checkpoint
from model.classifier import DenseNetClassifier, energy
from model.datasets import DataError, check_folder, stratified_split
from model.errors import DenseLensError, ExportError
from model.shapes import CLASSES, sample
from model.training import TrainConfig, TrainEvents, train
from model.zoo import Preprocessing
from tests.folders import FOUR, shapes_folder

ARCH = dict(growth_rate=4, block_config=(2, 2), num_init_features=8, stem="small")


def _tiny_config(out: Path, **changes) -> TrainConfig:
    """Two epochs of small batches of 32-pixel pictures: a second or two on 2 cores."""
    base = dict(out=str(out), epochs=2, steps_per_epoch=2, batch_size=8, lr=1e-2, input_size=32, val_size=16,
                workers=0, **ARCH)
    return TrainConfig(**{**base, **changes})


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return shapes_folder(tmp_path_factory.mktemp("data") / "shapes", per_class=10, size=48)


def _log(into: list[str]) -> TrainEvents:
    return TrainEvents(log=into.append)


def test_training_on_shapes_writes_a_versioned_checkpoint_that_loads_and_classifies(tmp_path):
    out = tmp_path / "shapes.pth"
    result = train(_tiny_config(out))
    assert len(result["history"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shapes.last.pth", "shapes.pth"]  # no partial files
    raw = torch.load(out, map_location="cpu", weights_only=True)
    assert raw["format_version"] == FORMAT_VERSION == 3
    ckpt = read_checkpoint(out)
    assert ckpt.format_version == 3 and ckpt.labels == list(CLASSES)
    assert ckpt.preprocessing == Preprocessing(input_size=32, mode="full")  # square pictures, resized whole
    assert (ckpt.config.growth_rate, ckpt.config.block_config, ckpt.config.num_classes) == (4, (2, 2), len(CLASSES))
    clf = DenseNetClassifier.load(out, device="cpu")
    preds = clf.predict(sample(7, 0, (64, 64)).image, topk=3)
    assert len(preds) == 3 and all(p.label in CLASSES for p in preds)
    assert all(p.unfamiliar in (True, False) for p in preds)


def test_a_folder_checkpoint_records_center_crop_and_its_validation_accuracy_is_what_classify_measures(
        folder, tmp_path):
    out = tmp_path / "m.pth"
    summary = train(_tiny_config(out, data=str(folder), epochs=3))
    ckpt = read_checkpoint(out)
    assert ckpt.preprocessing.mode == "center-crop" and ckpt.preprocessing.input_size == 32
    assert ckpt.labels == sorted(FOUR)
    val_files = ckpt.metadata["training"]["validation_files"]
    assert len(val_files) == 8  # 20% of 10 per class, stratified: 2 of each
    assert sorted(Path(f).parts[0] for f in val_files) == sorted(FOUR * 2)
    clf = DenseNetClassifier.load(out, device="cpu")
    results = list(clf.predict_paths([folder / f for f in val_files], topk=1, preprocess=clf.preprocessing.mode))
    correct = sum(r.predictions[0].label == Path(f).parts[0] for r, f in zip(results, val_files))
    assert correct / len(val_files) == summary["val_accuracy"]
    assert summary["best"]["epoch"] == summary["best_epoch"]
    assert summary["counts"]["validation"] == dict.fromkeys(sorted(FOUR), 2)


def test_the_unfamiliar_threshold_is_the_energy_most_validation_pictures_pass(folder, tmp_path):
    out = tmp_path / "m.pth"
    train(_tiny_config(out, data=str(folder), epochs=2))
    ckpt = read_checkpoint(out)
    assert ckpt.metadata["unfamiliar"]["score"] == "energy"
    clf = DenseNetClassifier.load(out, device="cpu")
    assert clf.unfamiliar_threshold == pytest.approx(ckpt.metadata["unfamiliar"]["threshold"])
    files = [folder / f for f in ckpt.metadata["training"]["validation_files"]]
    x = clf.batch([clf.prepare(f, "center-crop").tensor for f in files])
    energies = energy(clf.logits(x))
    expected = torch.quantile(energies, training.UNFAMILIAR_QUANTILE)
    assert clf.unfamiliar_threshold == pytest.approx(float(expected), abs=1e-4)
    flags = [p[0].unfamiliar for p in clf.predict(files, topk=1, preprocess="center-crop")]
    assert flags.count(True) <= 1  # 95% of 8 pass


def test_unreadable_pictures_are_all_listed_and_skipped_and_system_folders_ignored(tmp_path):
    data = shapes_folder(tmp_path / "d", classes=("circle", "square"), per_class=5, size=40)
    (data / "circle" / "truncated.png").write_bytes((data / "circle" / "circle_000.png").read_bytes()[:60])
    (data / "square" / "empty.jpg").write_bytes(b"")
    (data / "__MACOSX" / "circle").mkdir(parents=True)
    (data / "__MACOSX" / "circle" / "._circle_000.png").write_bytes(b"\0\5\26\7")
    (data / ".git").mkdir()
    (data / "loose.png").write_bytes((data / "circle" / "circle_001.png").read_bytes())
    (data / "square" / "nested" / "deeper").mkdir(parents=True)
    (data / "square" / "nested" / "deeper" / "more.png").write_bytes((data / "square" / "square_000.png").read_bytes())
    check = check_folder(data)
    assert check.classes == ["circle", "square"] and check.counts == [5, 6]  # nested pictures belong to the class
    assert sorted(p.name for p, _ in check.bad) == ["empty.jpg", "truncated.png"]
    assert any("truncated" in reason for _, reason in check.bad) and any("empty" in r for _, r in check.bad)
    assert {p.name for p, _ in check.ignored} == {"__MACOSX", ".git", "loose.png"}
    summary = train(_tiny_config(tmp_path / "m.pth", data=str(data)))
    assert summary["classes"] == ["circle", "square"]
    assert {b["path"] for b in summary["data_check"]["bad"]} == {str(data / "circle" / "truncated.png"),
                                                                 str(data / "square" / "empty.jpg")}


@pytest.mark.parametrize("layout, message", [
    ({"circle": 5}, "at least two sub-folders"),
    ({}, "the folder is empty; it needs one sub-folder of pictures per class"),
    ({".": 2}, "its 2 pictures lie directly in the folder; put each class's pictures in a sub-folder"),
    ({"circle": 5, "square": 0}, r"at least 2 readable pictures; too few in square \(0\)"),
    ({"circle": 5, "square": 1}, r"too few in square \(1\)"),
])
def test_folders_no_training_can_use_are_refused_naming_the_folder(tmp_path, layout, message):
    data = tmp_path / "d"
    data.mkdir()
    for name, count in layout.items():  # "." puts the pictures directly in the folder
        (data / name).mkdir(parents=True, exist_ok=True)
        if count and name == ".":
            shapes_folder(tmp_path / "drawn", classes=("circle",), per_class=count, size=32)
            for picture in (tmp_path / "drawn" / "circle").iterdir():
                picture.rename(data / picture.name)
        elif count:
            shapes_folder(data, classes=(name,), per_class=count, size=32)
    with pytest.raises(DataError, match=message) as info:
        check_folder(data)
    assert str(data) in str(info.value)


def test_missing_or_not_a_folder_is_refused(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        check_folder(tmp_path / "nowhere")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        check_folder(tmp_path / "file.txt")


def test_small_and_imbalanced_classes_are_warned_and_weighted(tmp_path):
    data = shapes_folder(tmp_path / "d", classes=("circle", "square"), per_class={"circle": 30, "square": 4},
                         size=32)
    check = check_folder(data)
    assert any("'square' has only 4" in w for w in check.warnings)
    assert any("imbalanced (30 vs 4 pictures)" in w for w in check.warnings)
    plan = training._plan(_tiny_config(tmp_path / "m.pth", data=str(data)), TrainEvents())
    weights = plan.class_weights.tolist()
    assert weights[1] > 5 * weights[0]  # the rare class counts for more


def test_a_folder_smaller_than_one_batch_still_trains(tmp_path):
    data = shapes_folder(tmp_path / "d", classes=("circle", "square"), per_class=3, size=32)
    summary = train(_tiny_config(tmp_path / "m.pth", data=str(data), batch_size=64, epochs=2))
    # 2 training pictures per class (one of each validates): one batch of 4 per epoch
    assert summary["samples_seen"] == 2 * 4
    assert all(row["train_loss"] > 0 for row in summary["history"])


def test_the_schedule_and_samples_seen_follow_the_real_steps(folder, tmp_path):
    out = tmp_path / "m.pth"
    summary = train(_tiny_config(out, data=str(folder), batch_size=7, epochs=3))
    # 32 training pictures in batches of 7: 4 full batches and one of 4 per epoch
    assert summary["samples_seen"] == 3 * 32
    last = torch.load(out.with_name("m.last.pth"), weights_only=True)
    assert last["scheduler"]["last_epoch"] == last["schedule"]["steps"] == 3 * 5


def test_stratified_split_keeps_every_class_on_both_sides():
    files = [(Path(f"{c}/{i}.png"), c) for c in range(3) for i in range([10, 3, 2][c])]
    train_files, val = stratified_split(files, 0.2, seed=1)
    assert sorted(label for _, label in val) == [0, 0, 1, 2]
    assert {label for _, label in train_files} == {0, 1, 2}
    assert stratified_split(files, 0.2, seed=1) == (train_files, val)


def test_a_validation_folder_replaces_the_split(folder, tmp_path):
    val = shapes_folder(tmp_path / "val", per_class=2, size=40, seed=9)
    out = tmp_path / "m.pth"
    summary = train(_tiny_config(out, data=str(folder), val_folder=str(val)))
    assert summary["counts"]["train"] == dict.fromkeys(sorted(FOUR), 10)
    ckpt = read_checkpoint(out)
    assert sorted(ckpt.metadata["training"]["validation_files"]) == sorted(
        str(p.relative_to(val)) for p in val.rglob("*.png"))


def _demo_like(tmp_path: Path, classes: int) -> Path:
    """A trained-looking start point with ``classes`` outputs (fixed seed), saved as a checkpoint."""
    from tests.conftest import make_tiny

    path = tmp_path / f"start{classes}.pth"
    model = make_tiny(num_classes=classes, seed=3)
    torch.save({"state_dict": model.state_dict(), "class_names": [f"c{i}" for i in range(classes)],
                "preprocessing": {"input_size": 40, "mode": "full"}, "format_version": 2}, path)
    return path


def test_head_mode_trains_only_the_classifier_and_computes_features_once(folder, tmp_path, monkeypatch):
    start = _demo_like(tmp_path, classes=7)
    monkeypatch.setenv("DENSELENS_CACHE", str(tmp_path / "cache"))
    calls = []
    real = training.DenseNet.pooled_features
    monkeypatch.setattr(training.DenseNet, "pooled_features", lambda self, x: calls.append(len(x)) or real(self, x))
    out = tmp_path / "head.pth"
    summary = train(_tiny_config(out, data=str(folder), init=str(start), mode="head", input_size=None, epochs=3))
    assert sum(calls) == 40  # every picture once, for three epochs
    assert summary["mode"] == "head" and summary["input_size"] == 40  # the start point's size
    before, after = read_checkpoint(start), read_checkpoint(out)
    assert after.config.num_classes == 4 and after.labels == sorted(FOUR)  # the classifier was replaced
    assert all(torch.equal(before.state_dict[k], v) for k, v in after.state_dict.items() if k.startswith("features."))
    calls.clear()
    train(_tiny_config(tmp_path / "again.pth", data=str(folder), init=str(start), mode="head", input_size=None))
    assert calls == []  # the second run reads every vector from the cache (keyed by file content)


def test_finetune_trains_the_head_then_only_the_last_block(folder, tmp_path):
    start = _demo_like(tmp_path, classes=4)
    out = tmp_path / "ft.pth"
    summary = train(_tiny_config(out, data=str(folder), init=str(start), epochs=3))
    assert summary["mode"] == "finetune"
    assert [row["phase"] for row in summary["history"]] == ["head", "finetune", "finetune"]
    before = read_checkpoint(start).state_dict
    after = torch.load(out.with_name("ft.last.pth"), weights_only=True)["state_dict"]  # the last epoch's weights
    frozen = [k for k in before if k.startswith(("features.conv0", "features.denseblock1", "features.transition2"))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)  # weights and BN statistics
    assert not torch.equal(before["features.denseblock3.denselayer2.conv2.weight"],
                           after["features.denseblock3.denselayer2.conv2.weight"])
    assert not torch.equal(before["features.norm5.running_mean"], after["features.norm5.running_mean"])


def test_starting_from_a_missing_file_or_offline_imagenet_weights_is_a_clear_error(folder, tmp_path, monkeypatch):
    with pytest.raises(DenseLensError, match="no such file, and not one of scratch"):
        train(_tiny_config(tmp_path / "m.pth", data=str(folder), init=str(tmp_path / "nope.pth")))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("DENSELENS_WEIGHTS_URL", "http://127.0.0.1:9/")
    from model.errors import WeightsUnavailableError

    with pytest.raises(WeightsUnavailableError):
        train(_tiny_config(tmp_path / "m.pth", data=str(folder), init="densenet121"))
    assert not (tmp_path / "m.pth").exists()


def test_the_best_epoch_is_chosen_by_validation_loss_when_accuracies_tie(folder, tmp_path, monkeypatch):
    figures = iter([(0.5, 1.0), (0.5, 0.7), (0.5, 0.9)])
    monkeypatch.setattr(training, "validate", lambda *a: (*next(figures), torch.zeros(4)))
    summary = train(_tiny_config(tmp_path / "m.pth", data=str(folder), epochs=3))
    assert summary["best_epoch"] == 2


class _Interrupted(Exception):
    pass


def test_resume_continues_from_last_checkpoint_as_if_never_interrupted(tmp_path):
    straight = tmp_path / "straight.pth"
    train(_tiny_config(straight))
    out = tmp_path / "resumed.pth"

    def stop_after_second_epoch_before_saving_it(msg: str) -> None:
        if msg.startswith("epoch 2/2"):
            raise _Interrupted

    with pytest.raises(_Interrupted):
        train(_tiny_config(out), TrainEvents(log=stop_after_second_epoch_before_saving_it))
    last = out.with_name("resumed.last.pth")
    assert torch.load(last, map_location="cpu", weights_only=True)["epoch"] == 1

    messages: list[str] = []
    result = train(_tiny_config(out, resume=True), _log(messages))
    assert any(m.startswith(f"resumed from {last} after epoch 1") for m in messages)
    assert [m for m in messages if m.startswith("epoch ")][0].startswith("epoch 2/2")  # epoch 1 not redone
    assert [h["epoch"] for h in result["history"]] == [1, 2]
    expected = torch.load(straight.with_name("straight.last.pth"), map_location="cpu", weights_only=True)
    got = torch.load(last, map_location="cpu", weights_only=True)
    for key, value in expected["state_dict"].items():
        assert torch.equal(got["state_dict"][key], value), key  # bit for bit
    assert [h["val_accuracy"] for h in got["history"]] == [h["val_accuracy"] for h in expected["history"]]
    assert got["samples_seen"] == expected["samples_seen"] == 2 * 2 * 8


def test_stopping_keeps_the_best_epoch_and_resume_finishes_the_run(folder, tmp_path):
    out = tmp_path / "m.pth"
    epochs_done: list[dict] = []
    events = TrainEvents(epoch=epochs_done.append, cancelled=lambda: len(epochs_done) >= 1)
    summary = train(_tiny_config(out, data=str(folder), epochs=3), events)
    assert summary["stopped"] and [h["epoch"] for h in summary["history"]] == [1]
    assert read_checkpoint(out).metadata["training"]["best"]["epoch"] == 1
    resumed = train(_tiny_config(out, data=str(folder), epochs=3, resume=True))
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3] and not resumed["stopped"]


def test_resume_without_a_resumable_file_is_refused(tmp_path):
    with pytest.raises(DenseLensError, match="nothing to resume"):
        train(_tiny_config(tmp_path / "m.pth", resume=True))
    train(_tiny_config(tmp_path / "m.pth", epochs=1))
    with pytest.raises(DenseLensError, match=r"nothing to resume: .*other\.last\.pth"):
        train(_tiny_config(tmp_path / "other.pth", epochs=1, resume=True))  # a finished run, a new --out


def test_resume_with_a_different_schedule_is_refused(tmp_path):
    out = tmp_path / "m.pth"
    train(_tiny_config(out, epochs=1))
    with pytest.raises(DenseLensError, match="resume with the same"):
        train(_tiny_config(out, epochs=3, resume=True))


def test_a_failed_checkpoint_write_keeps_the_previous_file_and_leaves_no_debris(tmp_path, monkeypatch):
    out = tmp_path / "m.pth"
    train(_tiny_config(out, epochs=1))
    before = out.read_bytes()
    real_save = torch.save

    def disk_full(obj, f, *a, **kw):
        if "class_names" in obj:
            f.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *a, **kw)

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(ExportError, match="m.pth: the disk is full"):
        train(_tiny_config(out, epochs=1, seed=5))
    monkeypatch.undo()
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.last.pth", "m.pth"]


@pytest.mark.parametrize("size", [8, 0])
def test_training_refuses_an_input_size_its_checkpoint_could_not_be_read_with(tmp_path, size):
    with pytest.raises(DenseLensError, match="input size"):
        train(_tiny_config(tmp_path / "m.pth", input_size=size))
    assert not any(tmp_path.iterdir())


def test_head_mode_from_scratch_is_refused(folder, tmp_path):
    with pytest.raises(DenseLensError, match="needs a trained start point"):
        train(_tiny_config(tmp_path / "m.pth", data=str(folder), mode="head"))


@pytest.mark.parametrize("name", ["demo-format1.pth", "colours-format2.pth"])
def test_checkpoints_written_by_earlier_versions_still_load_and_classify(name):
    path = Path(__file__).resolve().parent.parent / "data" / name
    ckpt = read_checkpoint(path)
    assert ckpt.format_version == int(name[-5]) and ckpt.unfamiliar_threshold is None
    clf = DenseNetClassifier.load(path, device="cpu")
    preds = clf.predict(sample(3, 1, (64, 64)).image, topk=2)
    assert len(preds) == 2 and preds[0].unfamiliar is None and "unfamiliar" not in preds[0].to_dict()


def test_finetuning_starts_from_cached_imagenet_weights_with_a_new_classifier(folder, tmp_path, monkeypatch,
                                                                              densenet121_pth):
    """A fixed-seed DenseNet-121 state dict stands in for the ImageNet file in the torch hub cache."""
    import shutil

    from model.zoo import MODELS

    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    shutil.copy(densenet121_pth, hub / MODELS["densenet121"].weights_file)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("DENSELENS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "dn121.pth"
    summary = train(_tiny_config(out, data=str(folder), init="densenet121", mode="head", epochs=2))
    ckpt = read_checkpoint(out)
    assert summary["init"] == "densenet121" and ckpt.config.block_config == (6, 12, 24, 16)
    assert ckpt.config.num_classes == 4 and ckpt.preprocessing.mean == MODELS["densenet121"].preprocessing.mean
    start = torch.load(densenet121_pth, weights_only=True)
    assert torch.equal(start["features.denseblock4.denselayer16.conv2.weight"],
                       ckpt.state_dict["features.denseblock4.denselayer16.conv2.weight"])


def test_class_folders_match_the_model_names_in_any_unicode_form(tmp_path):
    import unicodedata

    decomposed = unicodedata.normalize("NFD", "été")
    data = shapes_folder(tmp_path / "d", classes=("circle", "square"), per_class=2, size=32)
    (data / "circle").rename(data / decomposed)
    check = check_folder(data, class_names=["été", "square", "other"], min_per_class=0)
    assert check.counts == [2, 2, 0] and check.classes == ["été", "square", "other"]


def test_an_older_checkpoint_can_be_given_its_unfamiliar_threshold(tmp_path):
    import shutil

    path = tmp_path / "old.pth"
    shutil.copy(Path(__file__).resolve().parent.parent / "data" / "demo-format1.pth", path)
    val = training.ShapesDataset(training.VALIDATION_SEED_OFFSET, 64, 96)
    threshold = training.calibrate_unfamiliar(path, val)
    ckpt = read_checkpoint(path)
    assert ckpt.format_version == FORMAT_VERSION and ckpt.unfamiliar_threshold == threshold
    assert ckpt.labels == list(CLASSES) and ckpt.preprocessing.input_size == 96
    clf = DenseNetClassifier.load(path, device="cpu")
    flags = [p[0].unfamiliar for p in clf.predict([val.sample_image(i) for i in range(64)], topk=1)]
    assert flags.count(True) <= 4  # 95% of the calibration pictures pass
