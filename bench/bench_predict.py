"""Prediction speed: ours against torchvision's DenseNet-121 in the same run.

    .venv/bin/python bench/bench_predict.py [--runs 15] [--images 64]

Figures are ratios (this machine is noisy; absolute times drift):
* single-image latency: our ``predict`` (PIL image in, top-5 out) and our
  forward alone, against torchvision's eager ``densenet121`` forward on the
  same 224x224 input and the same fixed-seed weights; the runs interleave;
* folder throughput: ``predict_paths`` over generated JPEGs of mixed sizes,
  against a plain sequential load-preprocess-forward loop with torchvision;
* achieved GFLOP/s against this machine's fp32 matmul peak; peak RSS.
"""

from __future__ import annotations

import argparse
import platform
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torchvision  # noqa: E402
import torchvision.transforms as T  # noqa: E402
from PIL import Image  # noqa: E402

from model.classifier import DenseNetClassifier  # noqa: E402
from model.densenet import densenet121  # noqa: E402


def interleaved_medians(fns: dict, runs: int, warmup: int = 3, self_timed: tuple[str, ...] = ()) -> dict[str, float]:
    """Median seconds of each function, the runs interleaved; those named in ``self_timed`` return their own
    seconds (a call timed in another process)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {k: [] for k in fns}
    for _ in range(runs):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            own = fn()
            times[k].append(own if k in self_timed else time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def matmul_peak_gflops(n: int = 2048, runs: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    t = interleaved_medians({"mm": lambda: torch.mm(a, b)}, runs)["mm"]
    return 2 * n**3 / t / 1e9


def forward_flops(model: torch.nn.Module, x: torch.Tensor) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops()


def make_images(folder: Path, count: int) -> list[Path]:
    rng = random.Random(0)
    sizes = [(320, 240), (640, 480), (1024, 768), (1600, 1200), (500, 500), (1200, 400), (300, 900)]
    paths = []
    for i in range(count):
        w, h = sizes[i % len(sizes)]
        img = Image.effect_noise((w // 4, h // 4), 40 + rng.randint(0, 40)).convert("RGB")
        img = img.resize((w, h), Image.Resampling.BICUBIC)
        path = folder / f"img{i:03d}.jpg"
        img.save(path, quality=90)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--images", type=int, default=64)
    args = parser.parse_args()

    torch.manual_seed(0)
    tv = torchvision.models.densenet121().eval()
    ours = densenet121()
    ours.load_state_dict(tv.state_dict())
    labels = [f"class {i}" for i in range(1000)]
    clf = DenseNetClassifier(ours, labels, device="cpu")
    pil = Image.effect_noise((224, 224), 50).convert("RGB")
    x = clf.prepare(pil).tensor[None]
    with torch.inference_mode():
        diff = (tv(x) - clf.logits(x)).abs().max().item()

    def tv_forward():
        with torch.inference_mode():
            tv(x)

    lat = interleaved_medians({
        "torchvision": tv_forward,
        "ours_forward": lambda: clf.logits(x),
        "ours_predict": lambda: clf.predict(pil, topk=5),
    }, args.runs)

    flops = forward_flops(densenet121().eval(), x)
    peak = matmul_peak_gflops()
    achieved = flops / lat["ours_forward"] / 1e9

    tfm = T.Compose([T.Resize(224), T.ToTensor(), T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_images(Path(tmp), args.images)

        def baseline():
            with torch.inference_mode():
                for p in paths:
                    tv(tfm(Image.open(p).convert("RGB"))[None]).softmax(1).topk(5)

        def ours_folder():
            results = list(clf.predict_paths(paths, topk=5))
            assert all(r.error is None for r in results)

        folder_runs = max(3, args.runs // 5)
        thr = interleaved_medians({"baseline": baseline, "ours": ours_folder}, folder_runs, warmup=1)

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}, torchvision {torchvision.__version__}, python {platform.python_version()}")
    print(f"max |logit difference| ours vs torchvision: {diff:.2e}")
    print(f"latency median of {args.runs} (224x224, batch 1):")
    print(f"  torchvision densenet121 forward   {lat['torchvision'] * 1e3:7.1f} ms   1.00")
    print(f"  ours forward                      {lat['ours_forward'] * 1e3:7.1f} ms   "
          f"{lat['ours_forward'] / lat['torchvision']:.2f}")
    print(f"  ours predict (PIL in, top-5 out)  {lat['ours_predict'] * 1e3:7.1f} ms   "
          f"{lat['ours_predict'] / lat['torchvision']:.2f}")
    print(f"folder of {args.images} mixed-size JPEGs, median of {folder_runs}:")
    print(f"  sequential torchvision loop       {args.images / thr['baseline']:7.1f} img/s  1.00")
    print(f"  ours predict_paths                {args.images / thr['ours']:7.1f} img/s  "
          f"{thr['baseline'] / thr['ours']:.2f}x")
    print(f"compute: {flops / 1e9:.2f} GFLOP per forward, achieved {achieved:.1f} GFLOP/s = "
          f"{achieved / peak * 100:.0f}% of fp32 matmul peak {peak:.0f} GFLOP/s")
    print(f"peak RSS: {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
