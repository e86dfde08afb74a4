"""Headless commands: ``main.py classify``, ``main.py explain`` and ``main.py info``.

Exit codes: 0 every image done, 1 some images failed (each with a message),
2 usage errors (unknown model or flag, weights unavailable).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2
IMAGENET_MODELS = ("densenet121", "densenet161", "densenet169", "densenet201")
PROGRESS_THRESHOLD = 3  # show a progress bar for more images than this


class UsageError(Exception):
    """Bad command line: printed with the usage line, exit code 2."""


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="densenet121", metavar="MODEL",
                   help=f"{'|'.join(IMAGENET_MODELS)}|demo|FILE (.pth/.pt/.safetensors); "
                        "default densenet121")
    p.add_argument("--device", default="auto", metavar="DEVICE",
                   help="auto|cpu|cuda|cuda:N|mps (default auto: CUDA, then MPS, then CPU)")


def _add_input_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (recursive)")
    p.add_argument("--topk", type=int, default=5, metavar="K", help="predictions per image (default 5)")
    p.add_argument("--preprocess", choices=("full", "center-crop"), default="full",
                   help="full: whole image, aspect kept (default); center-crop: resize 256, crop 224")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    from model import __version__

    parser = argparse.ArgumentParser(
        prog="main.py", description="DenseLens: see what a DenseNet sees. "
        "Without a command, the desktop app opens.")
    parser.add_argument("--version", action="version", version=f"DenseLens {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("classify", help="top-k predictions for images and folders")
    _add_input_options(p)
    _add_model_options(p)

    p = sub.add_parser("info", help="architecture report of a DenseNet")
    _add_model_options(p)
    p.add_argument("--input-size", type=int, default=224, metavar="PX",
                   help="input size for the feature-map sizes (default 224)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    from model.explain_cli import add_explain_parser
    from model.train_cli import add_train_parser

    add_explain_parser(sub, _add_input_options, _add_model_options)
    add_train_parser(sub)
    return parser


def progress_bar(total: int, quiet: bool, unit: str = "img"):
    from tqdm import tqdm

    return tqdm(total=total, file=sys.stderr, unit=unit, dynamic_ncols=True,
                disable=quiet or total <= PROGRESS_THRESHOLD)


def load_classifier(args: argparse.Namespace):
    """Load ``--model`` on ``--device``; problems become UsageError with a way out."""
    from model.classifier import DenseNetClassifier
    from model.errors import DenseLensError

    spec = args.model
    if spec not in (*IMAGENET_MODELS, "demo") and not Path(spec).exists():
        raise UsageError(f"unknown model {spec!r}: use one of {', '.join(IMAGENET_MODELS)}, demo, "
                         "or the path of a .pth/.pt/.safetensors file")
    bar = None

    def on_progress(done: int, total: int | None) -> None:
        nonlocal bar
        if bar is None:
            from tqdm import tqdm
            bar = tqdm(total=total, file=sys.stderr, unit="B", unit_scale=True,
                       desc=f"downloading {spec}", disable=getattr(args, "quiet", False))
        bar.update(done - bar.n)

    try:
        clf = DenseNetClassifier.load(spec, device=args.device, progress=on_progress)
    except ValueError as e:
        raise UsageError(str(e)) from e
    except DenseLensError as e:
        raise UsageError(str(e)) from e
    finally:
        if bar is not None:
            bar.close()
    for warning in clf.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return clf


def gather(paths: Sequence[str]) -> list[Path]:
    from model.images import collect_images

    images, skipped = collect_images(paths)
    if skipped:
        print(f"note: skipped {len(skipped)} non-image file(s) in the given folders", file=sys.stderr)
    return images


def cmd_classify(args: argparse.Namespace) -> int:
    if args.topk < 1:
        raise UsageError("--topk must be at least 1")
    images = gather(args.paths)
    clf = load_classifier(args)
    records, failed = [], 0
    with progress_bar(len(images), args.quiet) as bar:
        for result in clf.predict_paths(images, topk=args.topk, preprocess=args.preprocess):
            preds = [p.to_dict() for p in result.predictions] if result.predictions else []
            records.append({"path": str(result.path), "predictions": preds, "error": result.error})
            if result.error:
                failed += 1
                bar.write(f"error: {result.error}", file=sys.stderr)
            elif not args.json:
                bar.write(format_predictions(result.path, result.predictions))
            bar.update(1)
    return finish(records, as_json=args.json, failed=failed)


def finish(records: list[dict], as_json: bool, failed: int) -> int:
    """Print the JSON document if asked; exit code 1 if any image failed or none was found."""
    if as_json:
        json.dump(records, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    if not records:
        print("error: no images found in the given paths", file=sys.stderr)
    return EXIT_SOME_FAILED if failed or not records else EXIT_OK


def format_predictions(path: Path, predictions) -> str:
    lines = [str(path)]
    for rank, p in enumerate(predictions, 1):
        lines.append(f"  {rank}. {p.label:<40} {p.probability * 100:6.2f}%  (class {p.index})")
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    from model.architecture import describe
    from model.checkpoints import read_checkpoint
    from model.densenet import FACTORIES
    from model.errors import DenseLensError
    from model.paths import demo_model_path

    if args.input_size < 32:
        raise UsageError("--input-size must be at least 32")
    spec = args.model
    try:
        if spec in FACTORIES:  # the architecture needs no weights
            config = FACTORIES[spec]().config
        else:
            path = demo_model_path() if spec == "demo" else Path(spec)
            if spec != "demo" and not path.exists():
                raise UsageError(f"unknown model {spec!r}: use one of {', '.join(FACTORIES)}, demo, or a file")
            config = read_checkpoint(path).config
    except DenseLensError as e:
        raise UsageError(str(e)) from e
    report = describe(config, (args.input_size, args.input_size))
    if args.json:
        print(json.dumps({"model": spec, **report.to_dict()}, indent=2))
    else:
        print(f"model: {spec}")
        print(report.to_text())
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_OK
    from model.explain_cli import cmd_explain
    from model.train_cli import cmd_train

    commands = {"classify": cmd_classify, "info": cmd_info, "explain": cmd_explain, "train": cmd_train}
    try:
        return commands[args.command](args)
    except UsageError as e:
        parser.exit(EXIT_USAGE, f"{parser.prog} {args.command}: error: {e}\n")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_SOME_FAILED
