"""The folder audit: its per-picture step against plain explain calls, its memory against the folder's size, Ray.

    nice -n 5 .venv/bin/python bench/bench_audit.py [--input-size 128] [--speed-pictures 64] [--runs 5]
        [--batch-size 16] [--layouts one,mix,random] [--pictures 1000,10000] [--picture-size 48]
        [--ray-pictures 500] [--ray-rounds 2] [--skip speed,memory,ray]

1. Speed: pictures per second of ``run_audit``'s per-picture step (the local engine as ``run_audit`` runs
   it: batches of ``--batch-size`` decoded in threads, ``explain_batch`` for the chosen class at the
   deepest dense block, the small map and its figures, streamed to disk by ``AuditStore``) against a plain
   loop of ``clf.explain(path, layers=[deepest], classes=[true])`` on the same pictures, same model,
   interleaved runs (medians after one warm-up run).  Two models: a DenseNet-121 with fixed-seed weights
   (torchvision's initialisation after ``torch.manual_seed(0)``, loaded from a checkpoint file) at
   ``--input-size``, and the demo model (96 px).  Both preprocess ``full`` (the whole picture, aspect
   kept), so a network batch can only stack pictures of one analysed size: the pictures (generated shapes
   over textures, ``tests/folders.py``) come in three ``--layouts``: one size (4:3), a mix of 4:3, 3:4
   and 1:1, and every picture its own aspect.  Target: at least 1.5x.
2. Memory: peak RSS (VmHWM, read inside the child process at exit) of a whole ``main.py audit`` with the
   demo model on generated folders of ``--pictures`` square pictures of ``--picture-size`` px (8
   classes); it should stay flat as the folder grows (records and small maps are streamed to disk).
3. Ray: the same ``main.py audit`` on ``--ray-pictures`` such pictures with ``--engine local`` and
   ``--engine ray`` (a local Ray started by the run: 2 CPUs, one actor), in ``--ray-rounds`` rounds that
   alternate which engine goes first: wall time of the command and the explaining stage's time as
   ``audit.json`` reports it (for Ray it includes starting Ray and its actor), and whether both wrote the
   same ``audit.json`` (throughput aside).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_train import _run  # noqa: E402 - main.py in a child process: (seconds, VmHWM MB, stdout)

LAYOUTS = {  # how the speed section's pictures are shaped (short side 1.25x the model's input)
    "one": "one size, 4:3 (a camera's folder)",
    "mix": "4:3, 3:4 and 1:1 mixed (a phone's folder)",
    "random": "every picture its own aspect (sides 1-1.5x, drawn apart)",
}


def layout_folder(root: Path, layout: str, input_size: int, pictures: int) -> list:
    """Generated shapes pictures under ``root/<class>/``, resized as ``layout`` says; their audit items."""
    import numpy as np
    from PIL import Image

    from model.audit_scan import Item
    from tests.folders import FOUR, shapes_folder

    shapes_folder(root, per_class=max(1, pictures // len(FOUR)), size=input_size)
    rng = np.random.default_rng(0)
    short = round(input_size * 1.25)
    sizes = [(short * 4 // 3, short), (short, short * 4 // 3), (short, short)]
    paths = sorted(root.rglob("*.png"))
    for path in paths:
        size = sizes[0] if layout == "one" else sizes[int(rng.integers(3))] if layout == "mix" else None
        if size is not None:
            with Image.open(path) as opened:
                picture = opened.convert("RGB")
            picture.resize(size, Image.Resampling.BILINEAR).save(path)
    return [Item(str(p), FOUR.index(p.parent.name)) for p in paths]


def mean_batch(clf, items: list, batch_size: int) -> tuple[float, float]:
    """Pictures per network batch in the audit step (a batch stacks only equal analysed sizes): with the
    sizes grouped within each batch of the folder, and as runs of consecutive equal sizes (before issue 12)."""
    from PIL import Image

    from model import preprocess as pp

    sizes = []
    for item in items:
        with Image.open(item.path) as opened:
            sizes.append(pp.plan(opened.size, clf.preprocessing.mode, clf.input_size).analysed_size)
    chunks = [sizes[k:k + batch_size] for k in range(0, len(sizes), batch_size)]
    grouped = sum(len(set(chunk)) for chunk in chunks)
    runs = sum(1 + sum(a != b for a, b in zip(chunk, chunk[1:])) for chunk in chunks)
    return len(items) / grouped, len(items) / runs


def speed_row(args: argparse.Namespace, work: Path, name: str, clf, layout: str) -> float:
    """One model and layout's line of the speed table; returns the ratio."""
    from bench.bench_predict import interleaved_medians
    from model.audit import AuditConfig, _scan_local
    from model.audit_store import AuditStore
    from model.explain import default_layer

    folder = work / f"speed-{clf.input_size}-{layout}"
    items = layout_folder(folder, layout, clf.input_size, args.speed_pictures)
    if clf.labels[:1] != ["circle"]:  # DenseNet-121's 1000 unnamed classes: any fixed class per picture
        items = [type(item)(item.path, (7 * i) % len(clf.labels)) for i, item in enumerate(items)]
    layer = default_layer(clf.model.tap_names)
    runs = iter(range(10**6))

    def audit_step() -> None:
        out = work / "speed-out" / str(next(runs))
        cfg = AuditConfig(str(folder), str(out), batch_size=args.batch_size)
        _scan_local(clf, items, cfg, layer, AuditStore(out), lambda *_: None, lambda: False, 0, len(items))

    def loop() -> None:
        for item in items:
            clf.explain(item.path, layers=[layer], classes=[item.true])

    t = interleaved_medians({"loop": loop, "audit": audit_step}, args.runs, warmup=1)
    shutil.rmtree(work / "speed-out", ignore_errors=True)
    n = len(items)
    ratio = t["loop"] / t["audit"]
    grouped, consecutive = mean_batch(clf, items, args.batch_size)
    print(f"| {name} | {clf.input_size} px | {LAYOUTS[layout]} | {grouped:.1f} ({consecutive:.1f}) | "
          f"{n / t['loop']:.1f} | {n / t['audit']:.1f} | **{ratio:.2f}x** |", flush=True)
    return ratio


def speed(args: argparse.Namespace, work: Path) -> None:
    import torch
    import torchvision

    from model.classifier import DenseNetClassifier

    torch.manual_seed(0)
    checkpoint = work / "densenet121-seed0.pth"
    torch.save({"state_dict": torchvision.models.densenet121().state_dict(),
                "preprocessing": {"input_size": args.input_size}}, checkpoint)
    models = [("DenseNet-121, fixed-seed weights", DenseNetClassifier.load(checkpoint, device="cpu")),
              ("demo model", DenseNetClassifier.load("demo", device="cpu"))]
    layouts = [lay for lay in args.layouts.split(",") if lay]
    print(f"1. the audit's per-picture step against a loop of `clf.explain(path, layers=[deepest], "
          f"classes=[true])` ({args.speed_pictures} pictures, batches of {args.batch_size}, medians of "
          f"{args.runs} interleaved runs, {torch.get_num_threads()} threads, preprocessing `full`: the "
          f"whole picture, aspect kept; target ≥ 1.5x)\n")
    print("| model | input | pictures | pictures per network batch (consecutive only) | loop, pictures/s "
          "| audit step, pictures/s | ratio |")
    print("|---|---|---|---|---|---|---|")
    for name, clf in models:
        for layout in layouts:
            speed_row(args, work, name, clf, layout)


def square_folder(root: Path, pictures: int, side: int, seed: int) -> Path:
    """``pictures`` generated shapes over textures, ``side`` x ``side`` PNGs, under ``root/<class>/`` (8 classes)."""
    import numpy as np

    from model.shapes import CLASSES, render

    for i in range(pictures):
        k = i % len(CLASSES)
        folder = root / CLASSES[k]
        folder.mkdir(parents=True, exist_ok=True)
        render(np.random.default_rng([seed, i]), [k], (side, side)).image.save(folder / f"{CLASSES[k]}_{i:05d}.png")
    return root


def _disk_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def memory(args: argparse.Namespace, work: Path) -> None:
    from model.shapes import CLASSES

    sizes = [int(s) for s in args.pictures.split(",") if s]
    print(f"\n2. peak RSS of a whole `main.py audit` (demo model, {len(CLASSES)} classes, pictures of "
          f"{args.picture_size}x{args.picture_size} px; the first line is the fixed cost: Python, torch, "
          f"the model, scikit-learn)\n")
    print("| pictures | audit wall time | explaining stage | the rest (start, analysis, report) | output on disk "
          "| peak RSS (VmHWM) |")
    print("|---|---|---|---|---|---|")
    peaks = []
    for n in ([args.floor] if args.floor else []) + sizes:
        folder = square_folder(work / f"memory-{n}", n, args.picture_size, seed=1)
        out = work / f"memory-{n}-out"
        seconds, rss, stdout = _run(["audit", str(folder), "--out", str(out), "--model", "demo", "--device", "cpu",
                                     "--quiet", "--json"], dict(os.environ))
        summary = json.loads(stdout)
        speed = summary["throughput"]
        if n in sizes:
            peaks.append(rss)
        print(f"| {summary['images']:,} | {seconds:.0f} s | {speed['seconds']:.0f} s "
              f"({speed['pictures_per_second']:.0f} pictures/s) | {seconds - speed['seconds']:.0f} s | "
              f"{_disk_mb(out):.1f} MB | {rss:.0f} MB |", flush=True)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
    if len(peaks) > 1:
        print(f"\npeak RSS at {sizes[-1]:,} / at {sizes[0]:,} pictures: **{peaks[-1] / peaks[0]:.2f}** "
              f"({peaks[-1] - peaks[0]:+.0f} MB for {sizes[-1] / sizes[0]:.0f}x the pictures)")


def ray_overhead(args: argparse.Namespace, work: Path) -> None:
    folder = square_folder(work / "ray", args.ray_pictures, args.picture_size, seed=2)
    print(f"\n3. the same audit on one machine, local engine against Ray (demo model, {os.cpu_count()} CPUs, "
          f"{args.ray_rounds} alternating round(s))\n")
    print("| round | engine | command wall time | explaining stage | pictures/s (explaining) |")
    print("|---|---|---|---|---|")
    saved, walls = {}, {"local": [], "ray": []}
    for round_ in range(1, args.ray_rounds + 1):
        for engine in ("local", "ray") if round_ % 2 else ("ray", "local"):
            out = work / f"ray-{engine}"
            shutil.rmtree(out, ignore_errors=True)
            seconds, _, stdout = _run(["audit", str(folder), "--out", str(out), "--model", "demo", "--device", "cpu",
                                       "--quiet", "--json", "--engine", engine], dict(os.environ))
            summary = json.loads(stdout)
            speed = summary.pop("throughput")
            saved[engine] = summary
            walls[engine].append(seconds)
            print(f"| {round_} | {engine} | {seconds:.1f} s | {speed['seconds']:.1f} s | "
                  f"{speed['pictures_per_second']:.1f} |", flush=True)
    extra = statistics.median(walls["ray"]) - statistics.median(walls["local"])
    print(f"\nmedian wall time, ray minus local: {extra:+.1f} s; both wrote the same audit.json (throughput aside): "
          f"{'yes' if saved['local'] == saved['ray'] else 'NO'} ({saved['local']['images']} pictures)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-size", type=int, default=128, help="DenseNet-121's input (speed)")
    parser.add_argument("--speed-pictures", type=int, default=64)
    parser.add_argument("--layouts", default="one,mix,random", help=f"speed pictures: {', '.join(LAYOUTS)}")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=16, help="the audit's batch (run_audit's default: 16)")
    parser.add_argument("--pictures", default="1000,10000", help="folder sizes for the memory figures")
    parser.add_argument("--floor", type=int, default=8, help="a first, tiny audit for the fixed cost (0: none)")
    parser.add_argument("--picture-size", type=int, default=48, help="side of the memory and Ray pictures")
    parser.add_argument("--ray-pictures", type=int, default=500)
    parser.add_argument("--ray-rounds", type=int, default=2, help="alternating local/ray rounds")
    parser.add_argument("--skip", default="", help="comma-separated sections to skip: speed,memory,ray")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    work = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    started = time.perf_counter()
    print(f"load average at the start {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)\n", flush=True)
    try:
        if "speed" not in skip:
            speed(args, work)
        if "memory" not in skip:
            memory(args, work)
        if "ray" not in skip:
            ray_overhead(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n({time.perf_counter() - started:.0f} s; load average at the end {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
