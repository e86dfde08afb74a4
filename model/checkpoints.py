"""Reading DenseNet checkpoints safely and inferring their architecture.

Model files are untrusted: ``.pth``/``.pt`` files go through
``torch.load(weights_only=True)`` (no arbitrary unpickling), ``.safetensors``
through safetensors.  The architecture is read off the tensors' names and
shapes, so nobody has to say which DenseNet a file holds.
"""

from __future__ import annotations

import json
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from model.densenet import DenseNet, DenseNetConfig
from model.errors import CheckpointError

# Old torchvision checkpoints name dense-layer parts "norm.1" instead of "norm1".
_LEGACY_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12]\.[a-z_]+)$")
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")
_PREFIXES = ("module.", "model.")


@dataclass
class Checkpoint:
    """A validated state dict plus whatever metadata the file carried."""

    state_dict: dict[str, Tensor]
    config: DenseNetConfig
    labels: list[str] | None = None
    metadata: dict = field(default_factory=dict)


def normalize_keys(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """Strip DataParallel/wrapper prefixes and rewrite legacy ``norm.1`` keys."""
    out = {}
    for key, value in state_dict.items():
        while key.startswith(_PREFIXES) and not key.startswith(("features.", "classifier.")):
            key = key.split(".", 1)[1]
        m = _LEGACY_KEY.match(key)
        if m:
            key = m.group(1) + m.group(2)
        out[key] = value
    return out


def _read_file(path: Path) -> tuple[dict, dict]:
    """Return (tensors or wrapper dict, safetensors metadata)."""
    try:
        size = path.stat().st_size
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read the file ({e.strerror})") from e
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a model file")
    if size == 0:
        raise CheckpointError(f"{path}: the file is empty")
    if path.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file, safe_open
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
            return load_file(str(path)), meta
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"{path}: not a valid safetensors file ({e})") from e
    try:
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
    return obj, {}


def _split_wrapper(obj: dict, meta: dict) -> tuple[dict[str, Tensor], list[str] | None, dict]:
    metadata: dict = {}
    for key, value in meta.items():  # safetensors metadata values are strings, JSON where structured
        try:
            metadata[key] = json.loads(value)
        except (TypeError, ValueError):
            metadata[key] = value
    tensors = obj
    for key in _WRAPPER_KEYS:
        if isinstance(obj.get(key), dict):
            tensors = obj[key]
            metadata.update({k: v for k, v in obj.items() if k != key})
            break
    labels = metadata.get("class_names") or metadata.get("labels")
    if labels is not None and not (isinstance(labels, list) and all(isinstance(s, str) for s in labels)):
        labels = None
    bad = [k for k, v in tensors.items() if not isinstance(v, Tensor)]
    if bad:
        raise CheckpointError(f"the file's state dict has non-tensor entries: {bad[:3]}")
    return tensors, labels, metadata


def infer_config(sd: dict[str, Tensor], drop_rate: float = 0.0) -> DenseNetConfig:
    """Read growth rate, blocks, initial features, bn_size, compression, classes and stem off shapes."""
    try:
        conv0 = sd["features.conv0.weight"]
        num_init = conv0.shape[0]
        stem = "imagenet" if conv0.shape[-1] == 7 else "small"
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
        growth = sd["features.denseblock1.denselayer1.conv2.weight"].shape[0]
        bn_size = sd["features.denseblock1.denselayer1.conv1.weight"].shape[0] // growth
        compression = 1.0
        if "features.transition1.conv.weight" in sd:
            t = sd["features.transition1.conv.weight"]
            compression = t.shape[0] / t.shape[1]
        num_classes = sd["classifier.weight"].shape[0]
    except KeyError as e:
        raise CheckpointError(f"not a DenseNet checkpoint: missing tensor {e.args[0]}") from e
    except (IndexError, ZeroDivisionError) as e:
        raise CheckpointError("not a DenseNet checkpoint: tensors have unexpected shapes") from e
    try:
        return DenseNetConfig(growth, tuple(blocks), num_init, bn_size, compression, drop_rate,
                              num_classes, stem)
    except ValueError as e:
        raise CheckpointError(f"not a usable DenseNet checkpoint: {e}") from e


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Load and validate a checkpoint file without building a model."""
    path = Path(path)
    obj, meta = _read_file(path)
    try:
        tensors, labels, metadata = _split_wrapper(obj, meta)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from e
    sd = normalize_keys(tensors)
    try:
        config = infer_config(sd)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from e
    for key, t in sd.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"{path}: tensor {key} holds NaN or infinite values")
    return Checkpoint(sd, config, labels, metadata)


def build_model(checkpoint: Checkpoint, source: str = "checkpoint") -> DenseNet:
    """A DenseNet with the checkpoint's weights, or a CheckpointError; never half-loaded."""
    model = DenseNet(checkpoint.config)
    try:
        model.load_state_dict(checkpoint.state_dict, strict=True)
    except RuntimeError as e:
        detail = " ".join(str(e).split())
        raise CheckpointError(f"{source}: the tensors do not fit a DenseNet: {detail[:400]}") from e
    return model.eval()
