"""Checking what a checkpoint file says about itself before anything is allocated.

Everything in a model file is untrusted: its format version, preprocessing,
class names, and the architecture its tensor shapes declare.  Each check
returns the validated value or raises ``CheckpointError`` naming the file and
the field, so that a lying file is refused with a message, never with a
traceback, a ``MemoryError`` or garbage accepted.
"""

from __future__ import annotations

import math

from model.densenet import DenseNetConfig
from model.errors import CheckpointError
from model.zoo import PREPROCESS_MODES, Preprocessing

# Version 1: what DenseLens wrote before format_version existed (no key in the file).
# Version 2: ``format_version`` recorded; preprocessing and class names validated on reading.
# Version 3: ``unfamiliar`` (the score threshold for pictures unlike the training ones) and, under
#            ``training``, the mode, start point and validation files.  Versions 1 and 2 still read.
FORMAT_VERSION = 3
UNFAMILIAR_SCORES = ("energy",)

MIN_INPUT_SIZE, MAX_INPUT_SIZE = 16, 2048
MAX_GROWTH_RATE = 1024
MAX_BLOCKS = 16
MAX_LAYERS_PER_BLOCK = 512
MAX_INIT_FEATURES = 4096
MAX_BN_SIZE = 32
MAX_CLASSES = 100_000
MAX_STATE_ELEMENTS = 300_000_000  # parameters and BN statistics: 1.2 GB in float32
MAX_CLASS_NAME_CHARS = 1000

# What older files kept at the top level of the wrapper dict instead of under "preprocessing".
_TOP_LEVEL_PREPROCESSING = ("input_size", "mean", "std")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def format_version(metadata: dict, source: str) -> int:
    """The file's format version: 1 when it records none; refused when newer than this reader."""
    version = metadata.get("format_version")
    if version is None:
        return 1
    if not _is_int(version) or version < 1:
        raise CheckpointError(f"{source}: format_version must be a positive integer, not {_show(version)}")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{source}: format_version {version}: the file was written by a newer DenseLens "
            f"(this version reads formats up to {FORMAT_VERSION}); update DenseLens to open it")
    return version


def _triple(value: object, field: str, source: str, positive: bool) -> tuple[float, float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 3 or not all(_is_number(v) for v in value):
        raise CheckpointError(f"{source}: {field} must be a list of three finite numbers (R, G, B), "
                              f"not {_show(value)}")
    if positive and min(value) <= 0:
        raise CheckpointError(f"{source}: {field} must be three numbers above zero, not {_show(value)}")
    return (float(value[0]), float(value[1]), float(value[2]))


def preprocessing(metadata: dict, source: str) -> Preprocessing | None:
    """The file's preprocessing, None when it records none.

    Read from ``metadata["preprocessing"]`` (a dict), or, as older versions
    wrote them, from ``input_size``/``mean``/``std`` at the top level.  Fields
    a file leaves out take ``Preprocessing``'s defaults.
    """
    raw = metadata.get("preprocessing")
    prefix = "preprocessing."
    if raw is not None and not isinstance(raw, dict):
        raise CheckpointError(f"{source}: preprocessing must be a dict of input_size, mean, std and mode, "
                              f"not a {type(raw).__name__}")
    if not raw:  # absent or empty: what older versions kept at the top level
        raw = {k: metadata[k] for k in _TOP_LEVEL_PREPROCESSING if metadata.get(k) is not None}
        prefix = ""
        if not raw:
            return None
    default = Preprocessing()
    size = raw.get("input_size", default.input_size)
    if not _is_int(size) or not MIN_INPUT_SIZE <= size <= MAX_INPUT_SIZE:
        raise CheckpointError(f"{source}: {prefix}input_size must be an integer from {MIN_INPUT_SIZE} to "
                              f"{MAX_INPUT_SIZE} pixels, not {_show(size)}")
    mean = _triple(raw.get("mean", default.mean), prefix + "mean", source, positive=False)
    std = _triple(raw.get("std", default.std), prefix + "std", source, positive=True)
    mode = raw.get("mode", default.mode)
    if mode not in PREPROCESS_MODES:
        raise CheckpointError(f"{source}: {prefix}mode must be one of {', '.join(PREPROCESS_MODES)}, "
                              f"not {_show(mode)}")
    return Preprocessing(size, mean, std, mode)


def class_names(metadata: dict, num_classes: int, source: str) -> list[str] | None:
    """The file's class names (``class_names``, else ``labels``), one per output; None when absent."""
    for field in ("class_names", "labels"):
        names = metadata.get(field)
        if names is None:
            continue
        if not isinstance(names, list) or not all(isinstance(s, str) for s in names):
            raise CheckpointError(f"{source}: {field} must be a list of class names (strings), "
                                  f"not {_show(names)}")
        if len(names) != num_classes:
            raise CheckpointError(f"{source}: {field} names {len(names)} classes but the model has "
                                  f"{num_classes} outputs")
        long = next((s for s in names if len(s) > MAX_CLASS_NAME_CHARS), None)
        if long is not None:
            raise CheckpointError(f"{source}: {field} has a name of {len(long)} characters "
                                  f"(at most {MAX_CLASS_NAME_CHARS})")
        return list(names)
    return None


def unfamiliar(metadata: dict, source: str) -> float | None:
    """The energy threshold above which a picture is unlike the training pictures; None when absent.

    Stored as ``{"score": "energy", "threshold": T, "quantile": q}``: ``q`` of
    the validation pictures had an energy ``-logsumexp(logits)`` at or below T.
    """
    raw = metadata.get("unfamiliar")
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("score") not in UNFAMILIAR_SCORES:
        raise CheckpointError(f"{source}: unfamiliar must be a dict with score 'energy' and a threshold, "
                              f"not {_show(raw)}")
    threshold = raw.get("threshold")
    if not _is_number(threshold):
        raise CheckpointError(f"{source}: unfamiliar.threshold must be a finite number, not {_show(threshold)}")
    return float(threshold)


def state_elements(config: DenseNetConfig) -> int:
    """How many numbers a DenseNet of ``config`` holds (parameters and BN statistics), allocating nothing."""
    def bn(channels: int) -> int:
        return 4 * channels + 1  # weight, bias, running mean and variance, num_batches_tracked

    k0, k = config.num_init_features, config.growth_rate
    inter = config.bn_size * k
    total = 3 * k0 * (49 if config.stem == "imagenet" else 9) + (bn(k0) if config.stem == "imagenet" else 0)
    last = len(config.block_config) - 1
    for i, (layers, (c_in, c_out)) in enumerate(zip(config.block_config, config.block_channels())):
        for j in range(layers):
            c = c_in + j * k
            total += bn(c) + c * inter + bn(inter) + inter * k * 9
        if i != last:
            total += bn(c_out) + c_out * int(c_out * config.compression)
    features = config.num_features
    return total + bn(features) + features * config.num_classes + config.num_classes


def check_architecture(config: DenseNetConfig, source: str) -> None:
    """Refuse architectures too big to build, before anything is allocated."""
    limits = (
        ("growth rate", config.growth_rate, MAX_GROWTH_RATE),
        ("number of dense blocks", len(config.block_config), MAX_BLOCKS),
        ("layers per dense block", max(config.block_config), MAX_LAYERS_PER_BLOCK),
        ("initial features", config.num_init_features, MAX_INIT_FEATURES),
        ("bottleneck size (bn_size)", config.bn_size, MAX_BN_SIZE),
        ("number of classes", config.num_classes, MAX_CLASSES),
    )
    for what, value, limit in limits:
        if not 1 <= value <= limit:
            raise CheckpointError(f"{source}: the tensors declare a {what} of {value:,}; "
                                  f"DenseLens accepts 1 to {limit:,}")
    elements = state_elements(config)
    if elements > MAX_STATE_ELEMENTS:
        raise CheckpointError(f"{source}: the tensors declare a network of {elements:,} parameters; "
                              f"DenseLens accepts at most {MAX_STATE_ELEMENTS:,}")
