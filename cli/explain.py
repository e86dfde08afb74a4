"""``main.py explain``: heatmaps for files and folders, written to ``--out``."""

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
from model.cam import METHODS

ALL_BLOCKS = "all-blocks"
DEFAULT_METHOD = next(iter(METHODS))


def _colormaps() -> tuple[str, ...]:
    from model.render import COLORMAPS  # numpy: imported when explain is parsed, not when the app starts

    return COLORMAPS


def add_parser(sub) -> None:
    colormaps = _colormaps()
    p = sub.add_parser("explain", help="Grad-CAM heatmaps for images and folders",
                       description="Write heatmaps (overlay and heatmap PNGs; raw maps with --raw) for each "
                       "image, layer and class into --out.")
    add_input_options(p)
    add_model_options(p)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    p.add_argument("--layer", action="append", metavar="LAYER",
                   help=f"a tap of the loaded model (denseblockN, transitionN, norm5) or {ALL_BLOCKS}; repeatable "
                   f"(default: the deepest dense block). {ALL_BLOCKS} also writes a grid of the dense blocks "
                   "per class")
    p.add_argument("--method", default=DEFAULT_METHOD, metavar="METHOD",
                   help=f"one of {', '.join(METHODS)} (default {DEFAULT_METHOD})")
    p.add_argument("--class", dest="classes", action="append", metavar="CLASS",
                   help="top1|topK|INDEX|LABEL; repeatable (default top1)")
    p.add_argument("--colormap", default=colormaps[0], metavar="NAME",
                   help=f"{'|'.join(colormaps)} (default {colormaps[0]})")
    p.add_argument("--alpha", type=float, default=0.5, help="overlay opacity 0.0-1.0 (default 0.5)")
    p.add_argument("--raw", action="store_true", help="also write raw maps (.npy float32 and 16-bit PNG)")
    p.add_argument("--metrics", action="store_true",
                   help="faithfulness figures: deletion/insertion AUC, confidence with the top 20%% kept")
    p.add_argument("--by-source", action="store_true",
                   help="split each dense block's map by the layer whose features carry it: each source's share "
                   "of the positive evidence (the block input, denselayer1, ...) and an overlay per source "
                   "(with --raw also each signed part before ReLU as .npy; the parts add up to the map). "
                   "Gradient methods only")
    p.add_argument("--overwrite", action="store_true",
                   help="replace files left by earlier runs instead of adding _2, _3 (files of this run are "
                   "never replaced)")


def check_args(args: argparse.Namespace, valid_layers: list[str]) -> list[str]:
    """Validate the options against the registries and the loaded model's taps; the layers to explain."""
    from model.explain import default_layer

    if args.method not in METHODS:
        raise UsageError(f"unknown method {args.method!r}; choose from {', '.join(METHODS)}")
    if args.colormap not in _colormaps():
        raise UsageError(f"unknown colormap {args.colormap!r}; choose from {', '.join(_colormaps())}")
    if not 0.0 <= args.alpha <= 1.0:
        raise UsageError("--alpha must be between 0.0 and 1.0")
    if args.topk < 1:
        raise UsageError("--topk must be at least 1")
    if args.by_source and not METHODS[args.method].needs_gradients:
        raise UsageError(f"--by-source needs a gradient method, not {args.method}")
    layers: list[str] = []
    for name in args.layer or [default_layer(valid_layers)]:
        expanded = [n for n in valid_layers if n.startswith("denseblock")] if name == ALL_BLOCKS else [name]
        for n in expanded:
            if n not in valid_layers:
                raise UsageError(f"unknown layer {n!r}; choose from {', '.join([*valid_layers, ALL_BLOCKS])}")
            if n not in layers:
                layers.append(n)
    if args.by_source and not any(n.startswith("denseblock") for n in layers):
        raise UsageError(f"--by-source splits dense blocks only; add a --layer denseblockN or {ALL_BLOCKS}")
    return layers


def run(args: argparse.Namespace) -> int:
    from model.errors import DenseLensError
    from model.explain import resolve_classes
    from model.export import OutputNames, describe_os_error

    out = Path(args.out)
    images = gather(args.paths)
    clf = load_classifier(args)
    layers = check_args(args, clf.model.tap_names)
    # Validate class names before any work, so a typo fails fast.
    named = [c for c in args.classes or [] if not c.lower().startswith("top") and not c.isdigit()]
    try:
        if named:
            resolve_classes(named, [], clf.labels)
    except ValueError as e:
        raise UsageError(str(e)) from e
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create the output folder {out}: {describe_os_error(e)}") from e

    taken = OutputNames()  # a/cat.png and b/cat.png both keep their files, even with --overwrite
    records, failed = [], 0
    with progress_bar(len(images), args.quiet) as bar:
        for path in images:
            record = {"path": str(path), "predictions": [], "error": None, "explanations": []}
            try:
                record.update(explain_one(clf, path, layers, args, out, taken))
            except ValueError as e:  # e.g. top7 with --topk 5
                raise UsageError(str(e)) from e
            except DenseLensError as e:
                record["error"] = str(e)
            if record["error"]:
                failed += 1
                bar.write(f"error: {record['error']}", file=sys.stderr)
            elif not args.json:
                emit(summary(record), bar)
            records.append(record)
            bar.update(1)
    return finish(records, as_json=args.json, failed=failed)


def explain_one(clf, path: Path, layers: list[str], args: argparse.Namespace, out: Path, taken=None) -> dict:
    from model.faithfulness import faithfulness
    from model.heatmap_files import export_block_grid, export_map

    explanation = clf.explain(path, layers=layers, classes=args.classes, method=args.method, topk=args.topk,
                              preprocess=preprocess_mode(args, clf))
    kinds = ("overlay", "heatmap", "raw") if args.raw else ("overlay", "heatmap")
    entries, warnings = [], []
    model_name = clf.source
    for m in explanation.maps:
        files = export_map(explanation, m, out, model_name, kinds, args.colormap, args.alpha, args.overwrite, taken)
        entry = {"layer": m.layer, "class_index": m.class_index, "label": m.label,
                 "probability": m.probability, "status": m.status, "files": files}
        if not m.ok:
            warnings.append(m.status_message())
        if args.metrics and m.ok:
            entry["metrics"] = faithfulness(clf, explanation.prepared.tensor[None], m.analysed,
                                            m.class_index).to_dict()
        entries.append(entry)
    if args.by_source:
        add_sources(clf, explanation, entries, out, model_name, args, taken)
    grids = {}
    if len([n for n in layers if n.startswith("denseblock")]) > 1:
        for class_index in dict.fromkeys(m.class_index for m in explanation.maps):
            g = export_block_grid(explanation, class_index, out, model_name, args.colormap, args.alpha,
                                  args.overwrite, taken)
            if g:
                grids[str(class_index)] = g
    result = {"predictions": [p.to_dict() for p in explanation.predictions], "explanations": entries}
    if grids:
        result["grids"] = grids
    if warnings:
        result["warnings"] = warnings
    return result


def add_sources(clf, explanation, entries: list[dict], out: Path, model_name: str, args: argparse.Namespace,
                taken=None) -> None:
    """``--by-source``: each dense-block entry gets ``sources`` (share and files per source)."""
    from model.sources import export_sources, split_sources

    blocks = list(dict.fromkeys(m.layer for m in explanation.maps if m.layer.startswith("denseblock")))
    classes = list(dict.fromkeys(m.class_index for m in explanation.maps))
    splits = split_sources(clf, explanation.prepared, blocks, classes, explanation.method)
    by_key = {(s.layer, s.class_index): s for s in splits}
    for entry in entries:
        split = by_key.get((entry["layer"], entry["class_index"]))
        if split is not None:
            entry["sources"] = export_sources(explanation, split, out, model_name, args.raw, args.colormap,
                                              args.alpha, args.overwrite, taken)


def summary(record: dict) -> str:
    top = record["predictions"][0] if record["predictions"] else None
    head = f"{record['path']}: {top['label']} {top['probability'] * 100:.1f}%" if top else record["path"]
    lines = [head]
    for e in record["explanations"]:
        written = ", ".join(Path(p).name for paths in e["files"].values() for p in paths) or e["status"]
        metrics = e.get("metrics")
        extra = (f"  deletion {metrics['deletion_auc']:.3f} insertion {metrics['insertion_auc']:.3f} "
                 f"top-20% {metrics['confidence_change_top20']:+.3f}") if metrics else ""
        lines.append(f"  {e['layer']} · {e['label']}: {written}{extra}")
        for source in e.get("sources", []):
            share = source["share"]
            share = "no positive evidence" if share is None else f"{share * 100:.1f}% of the evidence"
            start, end = source["channels"]
            lines.append(f"    {source['source']} (channels {start}-{end - 1}): {share}")
    for g in record.get("grids", {}).values():
        lines.append(f"  grid: {Path(g).name}")
    return "\n".join(lines)
