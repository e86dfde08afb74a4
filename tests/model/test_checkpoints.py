"""Checkpoint files: architecture inference, labels, versions, damaged, lying and hostile files."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pickle
import resource
import struct
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from model import checkpoint_metadata as cm
from model.checkpoints import MAX_INFLATED_BYTES, infer_config, read_checkpoint
from model.classifier import DenseNetClassifier
from model.densenet import DenseNet, DenseNetConfig, densenet, densenet121, densenet169
from model.errors import CheckpointError
from model.zoo import Preprocessing
from tests.conftest import make_tiny, save_image


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


# -- format versions ----------------------------------------------------------

def test_demo_file_from_before_versions_loads_as_format_1_with_labels_and_size_96():
    # the demo model as the first versions shipped it (the bundled one is format 3 since its retraining)
    ckpt = read_checkpoint(Path(__file__).resolve().parent.parent / "data" / "demo-format1.pth")
    assert ckpt.format_version == 1
    assert ckpt.labels == ["circle", "square", "triangle", "star", "cross", "hexagon", "heart", "crescent"]
    assert ckpt.preprocessing == Preprocessing(input_size=96, mode="full")


def test_a_file_from_a_newer_denselens_is_refused_by_name(tmp_path):
    path = tmp_path / "future.pth"
    torch.save({"state_dict": make_tiny().state_dict(), "format_version": 99}, path)
    with pytest.raises(CheckpointError, match="format_version 99.*newer DenseLens") as info:
        read_checkpoint(path)
    assert path.name in str(info.value)


def test_current_format_version_is_read_back(tmp_path):
    path = tmp_path / "v2.pth"
    torch.save({"state_dict": make_tiny().state_dict(), "format_version": cm.FORMAT_VERSION}, path)
    assert read_checkpoint(path).format_version == cm.FORMAT_VERSION == 3


# -- metadata: what a file says about itself is checked ----------------------

def test_preprocessing_and_names_are_read_from_the_wrapper(tmp_path):
    path = tmp_path / "good.pth"
    prep = {"input_size": 64, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "mode": "center-crop"}
    torch.save({"state_dict": make_tiny().state_dict(), "preprocessing": prep, "labels": list("abcd")}, path)
    ckpt = read_checkpoint(path)
    assert ckpt.preprocessing == Preprocessing(64, (0.5,) * 3, (0.25,) * 3, "center-crop")
    assert ckpt.labels == ["a", "b", "c", "d"]


def test_older_files_with_top_level_preprocessing_keep_loading(tmp_path):
    path = tmp_path / "old.pth"
    torch.save({"state_dict": make_tiny().state_dict(), "input_size": 48, "std": [0.5, 0.5, 0.5]}, path)
    assert read_checkpoint(path).preprocessing == Preprocessing(input_size=48, std=(0.5, 0.5, 0.5))


def test_a_file_without_preprocessing_records_none(tmp_path):
    path = tmp_path / "bare.pth"
    torch.save(make_tiny().state_dict(), path)
    assert read_checkpoint(path).preprocessing is None


LYING_METADATA = [
    ({"preprocessing": "224"}, "preprocessing"),
    ({"preprocessing": [224, 0.5]}, "preprocessing"),
    ({"preprocessing": {"mean": 0.5}}, "mean"),
    ({"preprocessing": {"mean": [0.5, 0.5]}}, "mean"),
    ({"preprocessing": {"mean": [0.5, math.nan, 0.5]}}, "mean"),
    ({"preprocessing": {"std": 0.2}}, "std"),
    ({"preprocessing": {"std": [0.2, 0.2]}}, "std"),
    ({"preprocessing": {"std": [0.2, 0.0, 0.2]}}, "std"),
    ({"preprocessing": {"input_size": [96, 96]}}, "input_size"),
    ({"preprocessing": {"input_size": 0}}, "input_size"),
    ({"preprocessing": {"input_size": 100_000}}, "input_size"),
    ({"preprocessing": {"input_size": True}}, "input_size"),
    ({"preprocessing": {"mode": "stretch"}}, "mode"),
    ({"input_size": 100_000}, "input_size"),  # the older top-level place
    ({"class_names": "ant bee cat dog"}, "class_names"),
    ({"class_names": ["ant", "bee"]}, "class_names"),
    ({"labels": [1, 2, 3, 4]}, "labels"),
    ({"format_version": "2"}, "format_version"),
    ({"unfamiliar": 3.5}, "unfamiliar"),
    ({"unfamiliar": {"score": "maxlogit", "threshold": 1.0}}, "unfamiliar"),
    ({"unfamiliar": {"score": "energy", "threshold": math.inf}}, "unfamiliar.threshold"),
    ({"unfamiliar": {"score": "energy", "threshold": "-3"}}, "unfamiliar.threshold"),
]


@pytest.mark.parametrize("extra, field", LYING_METADATA, ids=[f"{f}-{i}" for i, (_, f) in enumerate(LYING_METADATA)])
def test_lying_metadata_in_a_pth_is_refused_naming_file_and_field(tmp_path, extra, field):
    path = tmp_path / "liar.pth"
    torch.save({"state_dict": make_tiny().state_dict(), **extra}, path)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    assert path.name in str(info.value) and field in str(info.value)


@pytest.mark.parametrize("extra, field", [
    ({"preprocessing": "224"}, "preprocessing"),
    ({"preprocessing": {"input_size": 100_000}}, "input_size"),
    ({"preprocessing": {"std": [0.2, 0.0, 0.2]}}, "std"),
    ({"class_names": ["ant"]}, "class_names"),
])
def test_lying_metadata_in_a_safetensors_is_refused(tmp_path, extra, field):
    path = tmp_path / "liar.safetensors"
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in extra.items()}
    save_file(make_tiny().state_dict(), str(path), metadata=meta)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    assert path.name in str(info.value) and field in str(info.value)


def test_safetensors_metadata_is_read(tmp_path):
    path = tmp_path / "good.safetensors"
    meta = {"format_version": "2", "class_names": json.dumps(list("abcd")),
            "preprocessing": json.dumps({"input_size": 40, "mode": "center-crop"})}
    save_file(make_tiny().state_dict(), str(path), metadata=meta)
    ckpt = read_checkpoint(path)
    assert (ckpt.format_version, ckpt.labels, ckpt.preprocessing) == \
        (2, ["a", "b", "c", "d"], Preprocessing(input_size=40, mode="center-crop"))


# -- sizes: a file that declares a huge network is refused before allocation -

TINY = make_tiny().config


def _deep_block_shapes(config: DenseNetConfig) -> dict[str, tuple[int, ...]]:
    """The shapes of a one-block ``config`` network, computed: building 500 layers even on meta takes seconds."""
    (layers,) = config.block_config
    with torch.device("meta"):
        one = DenseNet(dataclasses.replace(config, block_config=(1,))).state_dict()
    shapes = {k: tuple(v.shape) for k, v in one.items() if ".denselayer1." not in k}
    k0, k, inter = config.num_init_features, config.growth_rate, config.bn_size * config.growth_rate
    for n in range(layers):
        c, prefix = k0 + n * k, f"features.denseblock1.denselayer{n + 1}."
        shapes.update({prefix + f"norm1.{p}": (c,) for p in ("weight", "bias", "running_mean", "running_var")})
        shapes.update({prefix + f"norm2.{p}": (inter,) for p in ("weight", "bias", "running_mean", "running_var")})
        shapes.update({prefix + "conv1.weight": (inter, c, 1, 1), prefix + "conv2.weight": (k, inter, 3, 3)})
    features = config.num_features
    shapes.update({f"features.norm5.{p}": (features,) for p in ("weight", "bias", "running_mean", "running_var")})
    shapes.update({"classifier.weight": (config.num_classes, features)})
    return shapes


def _lying_state_dict(config: DenseNetConfig) -> dict[str, torch.Tensor]:
    """Every tensor a ``config`` network needs, each a zero broadcast to its shape: a tiny file."""
    if len(config.block_config) == 1 and config.block_config[0] > 100:
        shapes = _deep_block_shapes(config)
    else:
        with torch.device("meta"):
            shapes = {k: v.shape for k, v in DenseNet(config).state_dict().items()}
    return {k: torch.zeros((), dtype=torch.long if k.endswith("tracked") else torch.float).expand(s)
            for k, s in shapes.items()}


def test_lying_state_dict_of_a_deep_block_has_the_real_shapes():
    config = dataclasses.replace(TINY, block_config=(3,))
    with torch.device("meta"):
        real = {k: tuple(v.shape) for k, v in DenseNet(config).state_dict().items() if not k.endswith("tracked")}
    assert {k: v for k, v in _deep_block_shapes(config).items() if not k.endswith("tracked")} == real


SIZE_LIES = [
    (dataclasses.replace(TINY, num_classes=20_000_000), "classes"),
    (dataclasses.replace(TINY, growth_rate=100_000), "growth rate"),
    (dataclasses.replace(TINY, block_config=(1,) * 17), "dense blocks"),
    (dataclasses.replace(TINY, block_config=(513,)), "layers per dense block"),
    (dataclasses.replace(TINY, num_init_features=5000), "initial features"),
    (DenseNetConfig(1024, (4,), 64, 4, 0.5, 0.0, 100_000, "small"), "parameters"),  # each number allowed
]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("config, field", SIZE_LIES, ids=[f for _, f in SIZE_LIES])
def test_pth_declaring_a_huge_network_is_refused_without_allocating(tmp_path, config, field):
    path = tmp_path / "huge.pth"
    torch.save({"state_dict": _lying_state_dict(config)}, path)
    assert path.stat().st_size < 5_000_000
    before = _peak_rss_mb()
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    assert path.name in str(info.value) and field in str(info.value)
    assert _peak_rss_mb() - before < 200


def _write_sparse_safetensors(path: Path, shapes: dict[str, tuple[int, ...]]) -> None:
    """A valid safetensors header; the data is a hole in a sparse file (nothing written)."""
    header, offset = {}, 0
    for name, shape in shapes.items():
        size = 4 * math.prod(shape)
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.truncate(8 + len(raw) + offset)


def _tiny_shapes(**changes) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        sd = DenseNet(dataclasses.replace(TINY, **changes)).state_dict()
    return {k: tuple(v.shape) for k, v in sd.items() if not k.endswith("tracked")}


@pytest.mark.parametrize("shapes, field", [
    ({**_tiny_shapes(), "classifier.weight": (20_000_000, 1024), "classifier.bias": (20_000_000,)}, "classes"),
    (_tiny_shapes(growth_rate=100_000), "growth rate"),
    (_tiny_shapes(num_classes=20_000_000), "classes"),
], ids=["classifier-20M-x-1024", "growth-100000", "classes-20M"])
def test_safetensors_header_declaring_a_huge_network_is_refused_without_reading(tmp_path, shapes, field):
    path = tmp_path / "huge.safetensors"
    _write_sparse_safetensors(path, shapes)
    before = _peak_rss_mb()
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    assert path.name in str(info.value) and field in str(info.value)
    assert _peak_rss_mb() - before < 200


def test_state_size_is_computed_without_building_the_network():
    for config in (TINY, DenseNetConfig(num_classes=7),  # DenseNet-121's layout
                   DenseNetConfig(12, (4, 5, 6), 24, 2, 0.5, 0.0, 10, "small")):
        with torch.device("meta"):
            counted = sum(t.numel() for t in DenseNet(config).state_dict().values())
        assert cm.state_elements(config) == counted


def test_tensor_shapes_are_checked_before_any_data_is_read(tmp_path):
    sd = make_tiny().state_dict()
    sd["classifier.weight"] = torch.zeros(()).expand(4, 999)
    path = tmp_path / "wide.pth"
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match=r"classifier.weight has shape \[4, 999\], expected \[4, 16\]"):
        read_checkpoint(path)


def test_files_from_before_bn_counters_still_load(tmp_path):
    model = make_tiny()
    sd = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "old-torchvision.pth"
    torch.save(sd, path)
    clf = DenseNetClassifier.load(path, device="cpu")
    x = torch.randn(1, 3, 32, 32)
    assert torch.allclose(clf.logits(x), model(x), atol=1e-5)


def test_zip_records_that_would_inflate_past_the_budget_are_refused(tmp_path):
    plain = tmp_path / "plain.pth"
    torch.save(make_tiny().state_dict(), plain)
    bomb = tmp_path / "bomb.pth"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
        prefix = src.infolist()[0].filename.split("/")[0]
        with dst.open(f"{prefix}/padding", "w") as w:
            block = bytes(1 << 20)
            for _ in range(MAX_INFLATED_BYTES // len(block) + 1):
                w.write(block)
    assert bomb.stat().st_size < 2_000_000
    with pytest.raises(CheckpointError, match="inflate"):
        read_checkpoint(bomb)


# -- end to end: the command line reports a lying file, never a traceback ----

@pytest.mark.parametrize("kind", ["preprocessing-string", "input-size-100000", "classes-20M-pth",
                                  "classifier-20M-safetensors"])
def test_classify_with_a_lying_model_exits_2_without_traceback(tmp_path, capsys, kind):
    import main

    image = save_image(tmp_path / "red.png")
    if kind == "classifier-20M-safetensors":
        bad = tmp_path / "bad.safetensors"
        _write_sparse_safetensors(bad, {**_tiny_shapes(), "classifier.weight": (20_000_000, 1024)})
    else:
        bad = tmp_path / "bad.pth"
        wrapper = {"state_dict": make_tiny().state_dict()}
        if kind == "preprocessing-string":
            wrapper["preprocessing"] = "224"
        elif kind == "input-size-100000":
            wrapper["preprocessing"] = {"input_size": 100_000}
        else:
            wrapper["state_dict"] = _lying_state_dict(dataclasses.replace(TINY, num_classes=20_000_000))
        torch.save(wrapper, bad)
    try:
        code = main.main(["classify", image, "--model", str(bad)])
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err and bad.name in err
