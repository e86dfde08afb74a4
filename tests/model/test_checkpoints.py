"""Checkpoint files: architecture inference, labels, damaged and hostile files."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from model.checkpoints import infer_config, read_checkpoint
from model.classifier import DenseNetClassifier
from model.densenet import densenet, densenet121, densenet169
from model.errors import CheckpointError
from tests.conftest import make_tiny


@pytest.mark.parametrize("factory, blocks, k, k0", [
    (densenet121, (6, 12, 24, 16), 32, 64),
    (densenet169, (6, 12, 32, 32), 32, 64),
])
def test_infers_imagenet_architectures(factory, blocks, k, k0):
    with torch.device("meta"):
        sd = factory(num_classes=7).state_dict()
    cfg = infer_config(sd)
    assert (cfg.block_config, cfg.growth_rate, cfg.num_init_features, cfg.num_classes, cfg.stem) == \
        (blocks, k, k0, 7, "imagenet")


def test_infers_small_bc_variant_from_a_file(tmp_path):
    model = densenet(12, (4, 5, 6), 24, bn_size=2, compression=0.5, num_classes=10, stem="small")
    path = tmp_path / "bc.pt"
    torch.save(model.state_dict(), path)
    cfg = read_checkpoint(path).config
    assert (cfg.growth_rate, cfg.block_config, cfg.num_init_features, cfg.bn_size,
            cfg.compression, cfg.num_classes, cfg.stem) == (12, (4, 5, 6), 24, 2, 0.5, 10, "small")


def test_wrapped_checkpoint_with_names_and_dataparallel_prefix(tmp_path):
    model = make_tiny()
    sd = {"module." + k: v for k, v in model.state_dict().items()}
    path = tmp_path / "wrapped.pth"
    torch.save({"model_state_dict": sd, "class_names": ["a", "b", "c", "d"], "epoch": 3}, path)
    clf = DenseNetClassifier.load(path, device="cpu")
    assert clf.labels == ["a", "b", "c", "d"] and clf.weights_file == str(path)
    x = torch.randn(1, 3, 32, 32)
    assert torch.allclose(clf.logits(x), model(x), atol=1e-5)


def test_sidecar_labels_file_names_classes(tmp_path):
    path = tmp_path / "net.pth"
    torch.save(make_tiny().state_dict(), path)
    (tmp_path / "labels.txt").write_text("red\ngreen\nblue\nyellow\n")
    assert DenseNetClassifier.load(path, device="cpu").labels == ["red", "green", "blue", "yellow"]


def test_labels_file_with_wrong_count_is_a_clear_error(tmp_path):
    path = tmp_path / "net.pth"
    torch.save(make_tiny().state_dict(), path)
    (tmp_path / "net.txt").write_text("\n".join(f"c{i}" for i in range(1000)))
    with pytest.raises(CheckpointError, match="names 1000 classes but the model has 4"):
        DenseNetClassifier.load(path, device="cpu")


def test_without_names_classes_are_numbered(tmp_path):
    path = tmp_path / "net.pth"
    torch.save(make_tiny().state_dict(), path)
    assert DenseNetClassifier.load(path, device="cpu").labels[:2] == ["class 0", "class 1"]


def test_wrong_tensor_shape_is_refused(tmp_path):
    sd = make_tiny().state_dict()
    sd["features.denseblock2.denselayer1.conv2.weight"] = torch.zeros(4, 8, 5, 5)
    path = tmp_path / "bad.pth"
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match="do not fit a DenseNet"):
        DenseNetClassifier.load(path, device="cpu")


def test_missing_tensor_is_refused(tmp_path):
    sd = make_tiny().state_dict()
    del sd["features.denseblock1.denselayer2.norm2.running_var"]
    path = tmp_path / "missing.pth"
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match="Missing key"):
        DenseNetClassifier.load(path, device="cpu")


def test_truncated_file_is_refused(tmp_path):
    path = tmp_path / "trunc.pth"
    torch.save(make_tiny().state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="damaged"):
        read_checkpoint(path)


@pytest.mark.parametrize("name, content, message", [
    ("empty.pth", b"", "empty"),
    ("notes.pth", b"these are my notes, not a model", "not a PyTorch checkpoint"),
    ("fake.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}", "not a valid safetensors"),
])
def test_non_checkpoint_files_are_refused(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(path)


def test_nan_weights_are_refused(tmp_path):
    sd = make_tiny().state_dict()
    sd["classifier.weight"][0, 0] = float("nan")
    path = tmp_path / "nan.pth"
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        read_checkpoint(path)


class _Exploit:
    """Unpickling this would create a marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("wrapped", [False, True])
def test_code_in_a_pickle_never_runs(tmp_path, wrapped):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    payload = _Exploit(str(marker))
    if wrapped:  # a real zip checkpoint with the exploit among genuine tensors
        torch.save({"state_dict": make_tiny().state_dict(), "extra": payload}, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    with pytest.raises(CheckpointError, match="refused|not a PyTorch checkpoint"):
        DenseNetClassifier.load(path, device="cpu")
    assert not marker.exists()


def test_a_folder_is_not_a_model(tmp_path):
    with pytest.raises(CheckpointError, match="folder"):
        read_checkpoint(Path(tmp_path))
