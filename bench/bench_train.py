"""Training on a labelled folder: the three modes end to end, and one training step against torchvision.

    .venv/bin/python bench/bench_train.py [--per-class 100] [--epochs 4] [--input-size 128] [--runs 5]

1. A generated 4-class folder (``tests/folders.py``: shapes over textures, pictures of 96-143 px) of
   ``--per-class`` pictures per class, and a separate generated folder of the same classes as the
   held-out set.  Each mode runs ``main.py train`` in its own process (so its peak RSS, VmHWM, is its
   own): ``head`` and ``finetune`` from a fixed-seed DenseNet-121 state dict placed in a private torch
   hub cache (standing in for the ImageNet weights, which cannot be downloaded here), ``full`` from
   scratch with the demo model's architecture at 96 px, and ``head`` from the demo model (whose features
   were trained on shapes, so its accuracy means something).  Reported: wall time, held-out accuracy
   (``main.py evaluate`` on the held-out folder), peak RSS.  Random-weight DenseNet-121 features are
   poor features, so the head/finetune accuracies here say nothing about ImageNet fine-tuning; the
   times and memory do.
2. Training throughput: pictures per second of one forward+backward+AdamW step of our DenseNet-121
   against torchvision's ``densenet121`` (same weights, same batch, channels-last both), interleaved
   medians in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _run(argv: list[str], env: dict) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MB, stdout) of ``main.py argv`` measured from inside the child."""
    code = ("import runpy, sys, re, atexit\n"
            "def hwm():\n"
            "    kb = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)\n"
            "    sys.stderr.write(f'\\nVMHWM {kb}\\n')\n"
            "atexit.register(hwm)\n"
            f"sys.argv = ['main.py'] + {argv!r}\n"
            f"runpy.run_path({str(ROOT / 'main.py')!r}, run_name='__main__')\n")
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"main.py {' '.join(argv)} failed:\n{done.stderr[-3000:]}")
    rss = int(re.findall(r"VMHWM (\d+)", done.stderr)[-1]) / 1024
    return seconds, rss, done.stdout


def modes(args: argparse.Namespace, work: Path) -> None:
    import torch
    import torchvision

    from model.zoo import MODELS
    from tests.folders import FOUR, shapes_folder

    data = shapes_folder(work / "train", per_class=args.per_class, size=96)
    held_out = shapes_folder(work / "held-out", per_class=max(10, args.per_class // 4), size=96, seed=77)
    hub = work / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.densenet121().state_dict(), hub / MODELS["densenet121"].weights_file)
    env = {**os.environ, "TORCH_HOME": str(work / "torch"), "DENSELENS_CACHE": str(work / "cache"),
           "DENSELENS_WEIGHTS_URL": "http://127.0.0.1:9/"}
    runs = [
        ("head", ["--init", "densenet121", "--mode", "head", "--input-size", str(args.input_size)]),
        ("finetune", ["--init", "densenet121", "--mode", "finetune", "--input-size", str(args.input_size)]),
        ("full", ["--init", "scratch", "--mode", "full", "--input-size", "96"]),
        ("head", ["--init", "demo", "--mode", "head"]),  # features trained on shapes: a meaningful accuracy
    ]
    runs = [r for r in runs if f"{r[0]}:{r[1][1]}" in args.runs_of or not args.runs_of]
    print(f"{len(FOUR)} classes x {args.per_class} pictures (20% held for validation), {args.epochs} epochs; "
          f"held-out folder {len(FOUR)} x {max(10, args.per_class // 4)}\n")
    print("| mode | start | input | wall time | held-out accuracy | best val accuracy | peak RSS |")
    print("|---|---|---|---|---|---|---|")
    for name, extra in runs:
        out = work / f"{name}.pth"
        seconds, rss, stdout = _run(["train", "--data", str(data), "--out", str(out), "--epochs", str(args.epochs),
                                     "--device", "cpu", "--json", *extra], env)
        summary = json.loads(stdout)
        _, _, report = _run(["evaluate", str(held_out), "--model", str(out), "--json", "--device", "cpu"], env)
        accuracy = json.loads(report)["accuracy"]
        print(f"| {name} | {summary['init']} | {summary['input_size']} | {seconds:.0f} s | {accuracy * 100:.1f}% | "
              f"{summary['val_accuracy'] * 100:.1f}% | {rss:.0f} MB |")
    if runs[0][1][1] != "densenet121":
        return
    cached_seconds, _, _ = _run(["train", "--data", str(data), "--out", str(work / "head2.pth"), "--epochs",
                                 str(args.epochs), "--device", "cpu", *runs[0][1]], env)
    print(f"\nhead mode again with every feature vector cached: {cached_seconds:.0f} s")


def throughput(args: argparse.Namespace) -> None:
    import torch
    import torchvision

    from bench.bench_predict import interleaved_medians
    from model.densenet import densenet121

    torch.manual_seed(0)
    tv = torchvision.models.densenet121()
    ours = densenet121()
    ours.load_state_dict(tv.state_dict())
    batch = 16
    x = torch.randn(batch, 3, args.input_size, args.input_size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,))

    def stepper(model: torch.nn.Module):
        model.train().to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step() -> None:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return step

    t = interleaved_medians({"ours": stepper(ours), "torchvision": stepper(tv)}, args.runs, warmup=1)
    print(f"\nTraining step, DenseNet-121, batch {batch} at {args.input_size} px, CPU ({torch.get_num_threads()} "
          f"threads), medians of {args.runs}:\n")
    print("| network | pictures/s | ratio |")
    print("|---|---|---|")
    for name in ("torchvision", "ours"):
        print(f"| {name} | {batch / t[name]:.1f} | {t['torchvision'] / t[name]:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--input-size", type=int, default=128, help="DenseNet-121 runs (head, finetune, step)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", dest="runs_of", default="", help="e.g. head:demo,full:scratch (default: all)")
    parser.add_argument("--skip-step", action="store_true", help="leave out the training-step comparison")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    try:
        modes(args, work)
        if not args.skip_step:
            throughput(args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
