"""``main.py audit``: what a model relies on across a whole folder (clusters of heatmaps, shortcut flags)."""

from __future__ import annotations

import argparse
import json
import sys

from cli.common import EXIT_OK, UsageError, add_model_options, emit, load_classifier


def add_parser(sub) -> None:
    from model.audit_options import ENGINES, LABEL_MODES
    from model.cam import METHODS

    p = sub.add_parser(
        "audit", help="find what a model relies on across a folder (heatmap clusters, shortcut flags)",
        description="Explain every picture of a folder, then per class: the mean heatmap, clusters of similar "
        "heatmaps (SpRAy), and flags where the evidence sits at the same place or at the border in most "
        "pictures, each tested by blurring that region and measuring the class's probability drop. Writes "
        "audit.json, heatmaps.npz, pictures and report.html into --out.")
    p.add_argument("folder", metavar="FOLDER", help="pictures: one sub-folder per class, or any folder")
    p.add_argument("--out", required=True, metavar="DIR", help="where the report goes (created if needed)")
    add_model_options(p)
    p.add_argument("--labels", choices=list(LABEL_MODES), default=None,
                   help="folders: sub-folders name the true class (the default when they match the model's "
                   "classes); predicted: audit each picture's predicted class")
    p.add_argument("--layer", default=None, help="the layer whose heatmaps are audited (default: the deepest "
                   "dense block)")
    p.add_argument("--method", choices=[m for m, spec in METHODS.items() if not spec.slow], default="gradcam")
    p.add_argument("--engine", choices=list(ENGINES), default="local",
                   help="local: this process; ray: Ray Data actors (pip install 'ray[data]'), local Ray unless "
                   "--ray-address")
    p.add_argument("--ray-address", metavar="ADDR", help="a Ray cluster (ray://host:10001 or auto)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--resume", action="store_true", help="skip pictures an interrupted audit already did")
    p.add_argument("--json", action="store_true", help="print audit.json on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from model.audit import AuditConfig, run_audit
    from model.errors import DenseLensError

    if args.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    if args.ray_address and args.engine != "ray":
        raise UsageError("--ray-address needs --engine ray")
    if args.engine == "ray":
        from importlib.util import find_spec

        from model.audit_ray import RAY_MISSING

        if find_spec("ray") is None:
            raise UsageError(RAY_MISSING)
    clf = load_classifier(args)
    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if args.quiet or total <= 0:
            return
        bar = bars.get(stage)
        if bar is None:
            for other in [k for k in bars if k != stage]:
                bars.pop(other).close()
            bar = bars[stage] = tqdm(total=total, desc=stage, unit="img" if stage == "explaining" else "class",
                                     file=sys.stderr, dynamic_ncols=True, leave=False)
        bar.update(done - bar.n)

    cfg = AuditConfig(args.folder, args.out, args.labels, args.layer, args.method, args.engine, args.ray_address,
                      args.resume, args.batch_size)
    try:
        summary = run_audit(clf, cfg, progress)
    except DenseLensError as e:
        raise UsageError(str(e)) from e
    finally:
        for bar in bars.values():
            bar.close()
    if args.json:
        emit(json.dumps(summary, indent=2, ensure_ascii=True))
        return EXIT_OK
    speed = summary["throughput"]
    emit(f"{summary['images']} pictures audited ({speed['pictures']} explained at "
         f"{speed['pictures_per_second'] or 0:.1f}/s, engine {speed['engine']}); {summary['method']} at "
         f"{summary['layer']}, {summary['labels']} labels")
    for c in summary["classes"]:
        acc = "" if c["accuracy"] is None else f", accuracy {c['accuracy'] * 100:.1f}%"
        emit(f"  {c['name']}: {c['count']} pictures{acc}, {len(c['clusters'])} clusters")
        for f in c["flags"]:
            verdict = ("relies on it" if f["confirmed"] else "no real drop") if f["probability_drop"] is not None \
                else "not tested"
            drop = "" if f["probability_drop"] is None else \
                f": blurring it drops the class by {f['probability_drop'] * 100:.0f} points " \
                f"(elsewhere {f['control_drop'] * 100:.0f})"
            emit(f"    FLAG {f['kind']} at {', '.join(f'{v:.2f}' for v in f['box'])} in {f['share'] * 100:.0f}% "
                 f"of its pictures{drop}: {verdict}")
    for e in summary["errors"]:
        print(f"warning: {e['error']}", file=sys.stderr)
    emit(f"report: {args.out}/report.html")
    return EXIT_OK
