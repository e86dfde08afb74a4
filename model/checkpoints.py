"""Reading DenseNet checkpoints safely and inferring their architecture.

Model files are untrusted.  ``.pth``/``.pt`` files go through
``torch.load(weights_only=True)`` (no arbitrary unpickling), memory-mapped so
that their storages are not read; ``.safetensors`` files are opened for their
header only.  Everything is then checked from names and shapes alone (format
version, preprocessing, class names, the architecture and its size, every
tensor's shape against a model built on the ``meta`` device) before a single
tensor is read or a network allocated.  The architecture is read off the
tensors' names and shapes, so nobody has to say which DenseNet a file holds.
"""

from __future__ import annotations

import json
import pickle
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from model import checkpoint_metadata as cm
from model.densenet import DenseNet, DenseNetConfig
from model.errors import CheckpointError
from model.zoo import Preprocessing

# Old torchvision checkpoints name dense-layer parts "norm.1" instead of "norm1".
_LEGACY_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12]\.[a-z_]+)$")
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")
_PREFIXES = ("module.", "model.")
_ZIP_MAGIC = b"PK\x03\x04"
# A zip .pth may deflate its records; torch inflates them in memory at their declared size.
MAX_INFLATED_BYTES = 256 * 1024 * 1024
# BN counters: torchvision files from before they existed leave them out, and load fine.
_OPTIONAL_SUFFIX = ".num_batches_tracked"


@dataclass
class Checkpoint:
    """A validated state dict plus whatever metadata the file carried."""

    state_dict: dict[str, Tensor]
    config: DenseNetConfig
    labels: list[str] | None = None
    metadata: dict = field(default_factory=dict)
    preprocessing: Preprocessing | None = None  # None: the file records none
    format_version: int = 1
    unfamiliar_threshold: float | None = None  # energy above which a picture is unlike the training ones


def normalize_key(key: str) -> str:
    """Strip DataParallel/wrapper prefixes and rewrite a legacy ``norm.1`` key."""
    while key.startswith(_PREFIXES) and not key.startswith(("features.", "classifier.")):
        key = key.split(".", 1)[1]
    m = _LEGACY_KEY.match(key)
    return m.group(1) + m.group(2) if m else key


def _shape(value: Tensor | Sequence[int]) -> tuple[int, ...]:
    return tuple(value.shape) if isinstance(value, Tensor) else tuple(value)


def _check_file(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read the file ({e.strerror})") from e
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a model file")
    if size == 0:
        raise CheckpointError(f"{path}: the file is empty")


def _check_zip_budget(path: Path) -> None:
    """Refuse zip records that would inflate beyond ``MAX_INFLATED_BYTES`` (stored ones are mapped)."""
    try:
        with zipfile.ZipFile(path) as z:
            inflated = sum(i.file_size for i in z.infolist() if i.compress_type != zipfile.ZIP_STORED)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint or the file is damaged ({e})") from e
    if inflated > MAX_INFLATED_BYTES:
        raise CheckpointError(f"{path}: compressed records would inflate to {inflated:,} bytes "
                              f"(at most {MAX_INFLATED_BYTES:,})")


def _load_pth(path: Path) -> dict:
    """The unpickled dict; tensors of zip files are memory-mapped, not read."""
    with open(path, "rb") as f:
        is_zip = f.read(4) == _ZIP_MAGIC
    if is_zip:
        _check_zip_budget(path)
    try:
        if is_zip:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        else:  # legacy (pre-1.6) format: storages are read, but never beyond the file's own bytes
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "unsupported content"
        raise CheckpointError(
            f"{path}: refused: the file contains objects that are not plain tensors and data "
            f"(loading it could run code). Detail: {first}") from e
    except Exception as e:  # noqa: BLE001 - garbage bytes make the unpickler raise anything
        raise CheckpointError(f"{path}: not a PyTorch checkpoint or the file is damaged ({e})") from e
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a state dict")
    return obj


def _open_safetensors(path: Path) -> tuple[dict[str, tuple[int, ...]], dict]:
    """Tensor shapes and raw metadata from the header alone (nothing mapped into torch)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            shapes = {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}  # noqa: SIM118 - not iterable
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: not a valid safetensors file ({e})") from e
    return shapes, meta


def _load_safetensors(path: Path, names: Sequence[str]) -> dict[str, Tensor]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {name: f.get_tensor(name) for name in names}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: not a valid safetensors file ({e})") from e


def _safetensors_metadata(meta: dict) -> dict:
    """safetensors metadata values are strings, JSON where structured."""
    metadata: dict = {}
    for key, value in meta.items():
        try:
            metadata[key] = json.loads(value)
        except (TypeError, ValueError):
            metadata[key] = value
    return metadata


def _split_wrapper(obj: dict) -> tuple[dict, dict]:
    """(the state dict, the other entries of a wrapper dict)."""
    for key in _WRAPPER_KEYS:
        if isinstance(obj.get(key), dict):
            return obj[key], {k: v for k, v in obj.items() if k != key}
    return obj, {}


def _normalized(names: Sequence[str], source: Path) -> dict[str, str]:
    """{normalised name: name in the file}; two file names for one tensor are refused."""
    out: dict[str, str] = {}
    for name in names:
        if not isinstance(name, str):
            raise CheckpointError(f"{source}: the state dict has a key that is not a name: {name!r:.60}")
        key = normalize_key(name)
        if key in out:
            raise CheckpointError(f"{source}: tensors {out[key]!r} and {name!r} are the same parameter")
        out[key] = name
    return out


def infer_config(sd: Mapping[str, Tensor | Sequence[int]], drop_rate: float = 0.0) -> DenseNetConfig:
    """Read growth rate, blocks, initial features, bn_size, compression, classes and stem off shapes.

    ``sd`` maps names to tensors or to bare shapes: nothing is read but shapes.
    """
    try:
        conv0 = _shape(sd["features.conv0.weight"])
        num_init = conv0[0]
        stem = "imagenet" if conv0[-1] == 7 else "small"
        blocks = []
        i = 1
        while f"features.denseblock{i}.denselayer1.conv1.weight" in sd:
            n = 0
            while f"features.denseblock{i}.denselayer{n + 1}.conv1.weight" in sd:
                n += 1
            blocks.append(n)
            i += 1
        if not blocks:
            raise CheckpointError("no dense blocks found: this is not a DenseNet checkpoint")
        growth = _shape(sd["features.denseblock1.denselayer1.conv2.weight"])[0]
        bn_size = _shape(sd["features.denseblock1.denselayer1.conv1.weight"])[0] // growth
        compression = 1.0
        if "features.transition1.conv.weight" in sd:
            t = _shape(sd["features.transition1.conv.weight"])
            compression = t[0] / t[1]
        num_classes = _shape(sd["classifier.weight"])[0]
    except KeyError as e:
        raise CheckpointError(f"not a DenseNet checkpoint: missing tensor {e.args[0]}") from e
    except (IndexError, ZeroDivisionError) as e:
        raise CheckpointError("not a DenseNet checkpoint: tensors have unexpected shapes") from e
    try:
        return DenseNetConfig(growth, tuple(blocks), num_init, bn_size, compression, drop_rate,
                              num_classes, stem)
    except ValueError as e:
        raise CheckpointError(f"not a usable DenseNet checkpoint: {e}") from e


def _check_shapes(shapes: Mapping[str, tuple[int, ...]], config: DenseNetConfig, source: Path) -> None:
    """Every tensor the network needs, with the shape it needs, and nothing else (no allocation)."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in DenseNet(config).state_dict().items()}
    missing = [k for k in expected if k not in shapes and not k.endswith(_OPTIONAL_SUFFIX)]
    unexpected = [k for k in shapes if k not in expected]
    problems = []
    if missing:
        problems.append(f"Missing key(s): {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
    if unexpected:
        problems.append(f"unexpected key(s): {', '.join(unexpected[:5])}" + (" ..." if len(unexpected) > 5 else ""))
    wrong = [k for k in expected if k in shapes and shapes[k] != expected[k]]
    if wrong:
        k = wrong[0]
        problems.append(f"{k} has shape {list(shapes[k])}, expected {list(expected[k])}"
                        + (f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""))
    if problems:
        raise CheckpointError(f"{source}: the tensors do not fit a DenseNet: {'; '.join(problems)}")


def _check_values(sd: Mapping[str, Tensor], source: Path) -> None:
    for key, t in sd.items():
        if not (t.is_floating_point() or (key.endswith(_OPTIONAL_SUFFIX) and not t.is_complex())):
            raise CheckpointError(f"{source}: tensor {key} holds {t.dtype}, not floating-point numbers")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"{source}: tensor {key} holds NaN or infinite values")


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Load and validate a checkpoint file without building a model.

    Order matters: the metadata, the architecture's size and every tensor's
    shape are checked before any tensor data is read, so a file that lies
    about its size is refused before it can cost memory.
    """
    path = Path(path)
    _check_file(path)
    if path.suffix.lower() == ".safetensors":
        shapes, raw_meta = _open_safetensors(path)
        names = _normalized(list(shapes), path)
        metadata = _safetensors_metadata(raw_meta)
        tensors: dict | None = None
    else:
        tensors, metadata = _split_wrapper(_load_pth(path))
        names = _normalized(list(tensors), path)
        bad = [key for key, name in names.items() if not isinstance(tensors[name], Tensor)]
        if bad:
            raise CheckpointError(f"{path}: the file's state dict has non-tensor entries: {bad[:3]}")
        shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    version = cm.format_version(metadata, str(path))
    preprocessing = cm.preprocessing(metadata, str(path))
    threshold = cm.unfamiliar(metadata, str(path))
    sd_shapes = {key: shapes[name] for key, name in names.items()}
    try:
        config = infer_config(sd_shapes)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from e
    cm.check_architecture(config, str(path))
    labels = cm.class_names(metadata, config.num_classes, str(path))
    _check_shapes(sd_shapes, config, path)
    # Only now is any tensor data read: the sizes are known to be sane.
    if tensors is None:
        loaded = _load_safetensors(path, list(names.values()))
        sd = {key: loaded[name] for key, name in names.items()}
    else:  # copy out of the memory map: the file is then free to be replaced
        sd = {key: tensors[name].clone(memory_format=torch.contiguous_format) for key, name in names.items()}
        del tensors
    _check_values(sd, path)
    return Checkpoint(sd, config, labels, metadata, preprocessing, version, threshold)


def build_model(checkpoint: Checkpoint, source: str = "checkpoint") -> DenseNet:
    """A DenseNet with the checkpoint's weights, or a CheckpointError; never half-loaded."""
    model = DenseNet(checkpoint.config)
    try:
        model.load_state_dict(checkpoint.state_dict, strict=True)
    except RuntimeError as e:
        detail = " ".join(str(e).split())
        raise CheckpointError(f"{source}: the tensors do not fit a DenseNet: {detail[:400]}") from e
    return model.eval()
