"""Class names: a checkpoint's own, a sidecar file beside it, ImageNet's, or ``class N``."""

from __future__ import annotations

import json
from pathlib import Path

from model.errors import CheckpointError


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet categories as torchvision ships them (no download)."""
    from torchvision.models import DenseNet121_Weights

    return list(DenseNet121_Weights.IMAGENET1K_V1.meta["categories"])


def generic_labels(num_classes: int) -> list[str]:
    return [f"class {i}" for i in range(num_classes)]


def read_sidecar(model_path: Path) -> list[str] | None:
    """``labels.txt``/``labels.json`` or ``<stem>.txt``/``<stem>.json`` beside a model file."""
    candidates = [model_path.with_suffix(".json"), model_path.with_suffix(".txt"),
                  model_path.with_name("labels.json"), model_path.with_name("labels.txt")]
    for path in candidates:
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise CheckpointError(f"{path}: cannot read the labels file ({e})") from e
        if path.suffix == ".json":
            try:
                data = json.loads(text)
            except ValueError as e:
                raise CheckpointError(f"{path}: not valid JSON ({e})") from e
            if isinstance(data, dict):
                data = data.get("class_names") or data.get("labels")
            if not isinstance(data, list) or not all(isinstance(s, str) for s in data):
                raise CheckpointError(f"{path}: expected a JSON list of class names")
            return data
        return [line.strip() for line in text.splitlines() if line.strip()]
    return None


def check_labels(labels: list[str], num_classes: int, source: str) -> list[str]:
    if len(labels) != num_classes:
        raise CheckpointError(
            f"{source} names {len(labels)} classes but the model has {num_classes} outputs")
    return labels
