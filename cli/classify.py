"""``main.py classify``: top-k predictions for files and folders."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli.common import (
    UsageError,
    add_input_options,
    add_model_options,
    emit,
    finish,
    gather,
    load_classifier,
    preprocess_mode,
    progress_bar,
)


def add_parser(sub) -> None:
    p = sub.add_parser("classify", help="top-k predictions for images and folders")
    add_input_options(p)
    add_model_options(p)


def run(args: argparse.Namespace) -> int:
    if args.topk < 1:
        raise UsageError("--topk must be at least 1")
    images = gather(args.paths)
    clf = load_classifier(args)
    records, failed = [], 0
    with progress_bar(len(images), args.quiet) as bar:
        for result in clf.predict_paths(images, topk=args.topk, preprocess=preprocess_mode(args, clf)):
            preds = [p.to_dict() for p in result.predictions] if result.predictions else []
            records.append({"path": str(result.path), "predictions": preds, "error": result.error})
            if result.error:
                failed += 1
                bar.write(f"error: {result.error}", file=sys.stderr)
            elif not args.json:
                emit(format_predictions(result.path, result.predictions), bar)
            bar.update(1)
    return finish(records, as_json=args.json, failed=failed)


def format_predictions(path: Path, predictions) -> str:
    lines = [str(path)]
    if predictions and predictions[0].unfamiliar:
        lines.append("  (unlike the training pictures: do not trust these scores)")
    for rank, p in enumerate(predictions, 1):
        lines.append(f"  {rank}. {p.label:<40} {p.probability * 100:6.2f}%  (class {p.index})")
    return "\n".join(lines)
