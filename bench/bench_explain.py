"""Explanation speed: ours against pytorch-grad-cam and against our own predict, in one run.

    .venv/bin/python bench/bench_explain.py [--runs 7] [--scorecam-runs 1]

Same fixed-seed DenseNet-121 weights and 224x224 input on the CPU; medians of
interleaved runs after warm-up:
* our Grad-CAM, top class at denseblock4, against pytorch-grad-cam's GradCAM
  on torchvision's densenet121 with the same weights and layer;
* our top class at all four dense blocks (one forward pass) against our
  plain ``predict`` forward;
* top-5 classes at all four dense blocks (reported against predict);
* Score-CAM at denseblock4 (reported against predict).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torchvision  # noqa: E402
from PIL import Image  # noqa: E402
from pytorch_grad_cam import GradCAM  # noqa: E402
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

from bench.bench_predict import interleaved_medians  # noqa: E402
from model.classifier import DenseNetClassifier  # noqa: E402
from model.densenet import densenet121  # noqa: E402

BLOCKS = ["denseblock1", "denseblock2", "denseblock3", "denseblock4"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--scorecam-runs", type=int, default=1)
    args = parser.parse_args()

    torch.manual_seed(0)
    tv = torchvision.models.densenet121().eval()
    ours = densenet121()
    ours.load_state_dict(tv.state_dict())
    clf = DenseNetClassifier(ours, [f"class {i}" for i in range(1000)], device="cpu")
    prepared = clf.prepare(Image.effect_noise((224, 224), 50).convert("RGB"))
    x = prepared.tensor[None]
    top = clf.predict(prepared.loaded, topk=1)[0].index
    reference = GradCAM(model=tv, target_layers=[tv.features.denseblock4])

    def tv_forward():
        with torch.inference_mode():
            tv(x)

    t = interleaved_medians({
        "predict": lambda: clf.logits(x),
        "tv_forward": tv_forward,
        "pgc_gradcam_b4": lambda: reference(input_tensor=x, targets=[ClassifierOutputTarget(top)]),
        "ours_gradcam_b4": lambda: clf.explain(prepared, layers=["denseblock4"]),
        "ours_all_blocks": lambda: clf.explain(prepared, layers=BLOCKS),
        "ours_top5_all_blocks": lambda: clf.explain(prepared, layers=BLOCKS, classes=["top5"]),
    }, args.runs, warmup=2)

    score_times = []
    for _ in range(args.scorecam_runs):
        t0 = time.perf_counter()
        clf.explain(prepared, layers=["denseblock4"], method="scorecam")
        score_times.append(time.perf_counter() - t0)
    score = sorted(score_times)[len(score_times) // 2]

    p = t["predict"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; medians of {args.runs} interleaved runs")
    print(f"  our predict forward                     {p * 1e3:8.1f} ms")
    print(f"  torchvision densenet121 forward         {t['tv_forward'] * 1e3:8.1f} ms  "
          f"{t['tv_forward'] / p:5.2f}x predict")
    print(f"  pytorch-grad-cam GradCAM, denseblock4   {t['pgc_gradcam_b4'] * 1e3:8.1f} ms  "
          f"{t['pgc_gradcam_b4'] / p:5.2f}x predict")
    print(f"  ours Grad-CAM, denseblock4, top class   {t['ours_gradcam_b4'] * 1e3:8.1f} ms  "
          f"{t['ours_gradcam_b4'] / p:5.2f}x predict   ratio to pytorch-grad-cam "
          f"{t['ours_gradcam_b4'] / t['pgc_gradcam_b4']:.2f}")
    print(f"  ours top class, all four dense blocks   {t['ours_all_blocks'] * 1e3:8.1f} ms  "
          f"{t['ours_all_blocks'] / p:5.2f}x predict   {t['ours_all_blocks'] / t['tv_forward']:.2f}x "
          "torchvision forward")
    print(f"  ours top-5 classes, all four blocks     {t['ours_top5_all_blocks'] * 1e3:8.1f} ms  "
          f"{t['ours_top5_all_blocks'] / p:5.2f}x predict")
    print(f"  ours Score-CAM, denseblock4 (1024 ch)   {score:8.2f} s   {score / p:5.0f}x predict "
          f"(median of {args.scorecam_runs})")


if __name__ == "__main__":
    main()
