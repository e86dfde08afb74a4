"""``main.py info``: the architecture report of a registered model or a checkpoint file."""

from __future__ import annotations

import argparse

from cli.common import EXIT_OK, UsageError, add_model_options, check_model_spec, emit


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="architecture report of a DenseNet")
    add_model_options(p)
    p.add_argument("--input-size", type=int, default=None, metavar="PX",
                   help="input size for the feature-map sizes (default: the model's own)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def model_config(spec: str) -> tuple[object, int]:
    """(DenseNetConfig, input size) of ``spec``; registered architectures need no weights."""
    from model.checkpoints import read_checkpoint
    from model.densenet import DenseNetConfig
    from model.errors import DenseLensError
    from model.paths import assets_dir
    from model.zoo import MODELS, Preprocessing

    entry = MODELS.get(check_model_spec(spec))
    default_size = (entry.preprocessing if entry else Preprocessing()).input_size
    try:
        if entry is not None and entry.architecture is not None:  # ImageNet: 1000 classes
            arch = entry.architecture
            return DenseNetConfig(arch.growth_rate, arch.block_config, arch.num_init_features), default_size
        path = assets_dir() / "models" / entry.weights_file if entry else spec
        ckpt = read_checkpoint(path)
    except DenseLensError as e:
        raise UsageError(str(e)) from e
    return ckpt.config, ckpt.preprocessing.input_size if ckpt.preprocessing else default_size


def run(args: argparse.Namespace) -> int:
    import json

    from model.architecture import describe

    if args.input_size is not None and args.input_size < 32:
        raise UsageError("--input-size must be at least 32")
    config, own_size = model_config(args.model)
    size = args.input_size or own_size
    report = describe(config, (size, size))
    if args.json:
        emit(json.dumps({"model": args.model, **report.to_dict()}, indent=2))
    else:
        emit(f"model: {args.model}\n{report.to_text()}")
    return EXIT_OK
