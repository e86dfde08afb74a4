"""Explanation speed: every figure against its reference in the same run.

    .venv/bin/python bench/bench_explain.py [--runs 9] [--fast-runs 3] [--batch-pictures 16]

Fixed-seed DenseNet-121 weights (torchvision's initialisation, seed 0; no
download), CPU, the default torch threads; medians of interleaved runs after
warm-up.  Against our own ``predict`` forward (and the references named):

1. gradients: Grad-CAM, top class at ``denseblock4`` (also against
   pytorch-grad-cam's GradCAM on torchvision's densenet121, same weights);
   top class and top-5 classes at all four dense blocks, fresh (a new
   ``ImageAnalysis``: forward pass and gradients), by the fast path and by
   the autograd path (``ImageAnalysis(autograd=True)``), and top-5 with one
   class per backward sweep instead of five; class switches on a held
   analysis (a class not computed yet each run) at ``norm5``, ``denseblock4``
   and all four blocks;
2. Score-CAM (fast) at ``denseblock4`` against Score-CAM: time and Pearson
   correlation of the raw maps (top class) on matplotlib's sample photos with
   DenseNet-121, and on the bundled samples with the demo model;
3. ``explain_batch`` (top class at ``denseblock4``, batches of 8) against a
   loop of single ``explain`` calls: pictures per second;
4. our ``predict`` forward against torchvision's eager forward in the settings
   the two earlier figures (0.57-0.65 and 0.81) may have come from, in this
   process and in a process of its own (``bench.torchvision_process``: our
   allocator setting, made for the whole process, speeds torchvision up too);
5. the arithmetic rate of the prediction, a batch of 8 and the four blocks'
   backward (convolution and matrix-product FLOPs counted by PyTorch's
   ``FlopCounterMode``, per second) against a 2048x2048 matrix product's
   rate in the same run: how far each path is from the machine's limit.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from matplotlib import cbook  # noqa: E402
from PIL import Image  # noqa: E402
from pytorch_grad_cam import GradCAM  # noqa: E402
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import model.explain as engine  # noqa: E402
from bench.bench_predict import interleaved_medians  # noqa: E402
from bench.torchvision_process import SeparateTorchvision  # noqa: E402
from model import gradients  # noqa: E402
from model.cam import SCORE_CAM_FAST_GROUPS  # noqa: E402
from model.classifier import DenseNetClassifier  # noqa: E402
from model.densenet import densenet121  # noqa: E402
from model.explain import ImageAnalysis, explain_batch  # noqa: E402
from model.paths import assets_dir, demo_model_path  # noqa: E402

BLOCKS = ["denseblock1", "denseblock2", "denseblock3", "denseblock4"]
PHOTOS = ["grace_hopper.jpg", "Minduka_Present_Blue_Pack.png"]


def row(what: str, seconds: float, predict: float, extra: str = "") -> None:
    print(f"  {what:52s} {seconds * 1e3:9.1f} ms  {seconds / predict:6.2f}x predict  {extra}")


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def gradients_section(clf, tv, prepared, runs: int) -> float:
    x = prepared.tensor[None]
    top = clf.predict(prepared.loaded, topk=1)[0].index
    reference = GradCAM(model=tv, target_layers=[tv.features.denseblock4])
    held = ImageAnalysis(clf, prepared)
    classes = itertools.count(10)  # a class the held analysis has not computed yet, every call

    def tv_forward():
        with torch.inference_mode():
            tv(x)

    def one_class_per_sweep():
        engine.CLASS_BATCH, saved = 1, engine.CLASS_BATCH
        try:
            ImageAnalysis(clf, prepared, BLOCKS).explain(BLOCKS, ["top5"])
        finally:
            engine.CLASS_BATCH = saved

    t = interleaved_medians({
        "predict": lambda: clf.logits(x),
        "tv_forward": tv_forward,
        "pgc_b4": lambda: reference(input_tensor=x, targets=[ClassifierOutputTarget(top)]),
        "b4": lambda: clf.explain(prepared, layers=["denseblock4"]),
        "all": lambda: clf.explain(prepared, layers=BLOCKS),
        "all_autograd": lambda: ImageAnalysis(clf, prepared, BLOCKS, autograd=True).explain(BLOCKS),
        "top5": lambda: clf.explain(prepared, layers=BLOCKS, classes=["top5"]),
        "top5_per_class": one_class_per_sweep,
        "top5_autograd": lambda: ImageAnalysis(clf, prepared, BLOCKS, autograd=True).explain(BLOCKS, ["top5"]),
        "switch_norm5": lambda: held.explain(["norm5"], [next(classes)]),
        "switch_b4": lambda: held.explain(["denseblock4"], [next(classes)]),
        "switch_all": lambda: held.explain(BLOCKS, [next(classes)]),
    }, runs, warmup=2)
    p = t["predict"]
    print(f"1. gradients (medians of {runs} interleaved runs)")
    row("our predict forward (reference)", p, p)
    row("torchvision densenet121 eager forward", t["tv_forward"], p, f"predict/torchvision {p / t['tv_forward']:.2f}")
    row("pytorch-grad-cam GradCAM, denseblock4", t["pgc_b4"], p)
    row("Grad-CAM, denseblock4, top class (closed form)", t["b4"], p,
        f"{t['b4'] / t['pgc_b4']:.2f} of pytorch-grad-cam")
    row("top class, four blocks (target <= 1.7x)", t["all"], p)
    row("  same, autograd path", t["all_autograd"], p, f"fast/autograd {t['all'] / t['all_autograd']:.2f}")
    row("top-5 classes, four blocks (target <= 3.5x)", t["top5"], p)
    row("  same, one class per backward sweep", t["top5_per_class"], p)
    row("  same, autograd path", t["top5_autograd"], p, f"fast/autograd {t['top5'] / t['top5_autograd']:.2f}")
    row("class switch on the held analysis, norm5", t["switch_norm5"], p)
    row("class switch on the held analysis, denseblock4", t["switch_b4"], p)
    row("class switch on the held analysis, four blocks", t["switch_all"], p)
    return p


def score_cam_section(clf, demo, fast_runs: int) -> None:
    print("2. Score-CAM (fast) against Score-CAM, top class")
    for name in PHOTOS:
        prepared = clf.prepare(Image.open(cbook.get_sample_data(name, asfileobj=False)))
        x = prepared.tensor[None]

        def fast(prepared=prepared):
            return clf.explain(prepared, layers=["denseblock4"], method="scorecam_fast")

        t = interleaved_medians({"predict": lambda x=x: clf.logits(x), "fast": fast}, fast_runs, warmup=1)
        started = time.perf_counter()
        full = clf.explain(prepared, layers=["denseblock4"], method="scorecam")
        t_full = time.perf_counter() - started
        r = correlation(full.maps[0].raw, fast().maps[0].raw)
        print(f"  DenseNet-121, {name}, denseblock4 (1024 channels, {SCORE_CAM_FAST_GROUPS} groups): "
              f"fast {t['fast']:.2f} s = "
              f"{t['fast'] / t['predict']:.0f}x predict (median of {fast_runs}); full {t_full:.1f} s = "
              f"{t_full / t['predict']:.0f}x predict; fast/full {t['fast'] / t_full:.3f}; Pearson r {r:.4f}")
    if demo is None:
        print("  demo model not bundled: skipped")
        return
    layer = demo.model.tap_names[-2]
    rs, fast_t, full_t, empty, samples = [], [], [], 0, sorted((assets_dir() / "samples").glob("*.png"))
    for path in samples:
        analysis = ImageAnalysis(demo, demo.prepare(path), [layer])
        maps = []
        for method, times in (("scorecam", full_t), ("scorecam_fast", fast_t)):
            started = time.perf_counter()
            maps.append(analysis.explain([layer], ["top1"], method).maps[0])
            times.append(time.perf_counter() - started)
        if maps[0].ok and maps[1].ok:
            rs.append(correlation(maps[0].raw, maps[1].raw))
        else:  # no positive evidence: a correlation means nothing; say whether the two agree on that
            empty += 1
            agree = "and" if maps[0].ok == maps[1].ok else "but not"
            print(f"    {path.name}: no positive evidence for Score-CAM {agree} for the fast variant")
    print(f"  demo model, {len(samples)} bundled samples, {layer} (168 channels, {SCORE_CAM_FAST_GROUPS} groups): "
          f"{empty} empty maps; "
          f"Pearson r of the others mean {np.mean(rs):.3f}, lowest {min(rs):.3f}; "
          f"time fast/full {sum(fast_t) / sum(full_t):.2f}")


def batch_section(clf, pictures: int, runs: int) -> None:
    prepared = [clf.prepare(Image.effect_noise((224, 224), 20 + 3 * i).convert("RGB")) for i in range(pictures)]
    single = [clf.explain(p) for p in prepared]
    batched = explain_batch(clf, prepared)
    worst = max(float(np.abs(a.maps[0].raw - b.maps[0].raw).max() / np.ptp(a.maps[0].raw))
                for a, b in zip(single, batched))
    t = interleaved_medians({"loop": lambda: [clf.explain(p) for p in prepared],
                             "batch": lambda: explain_batch(clf, prepared)}, runs, warmup=1)
    print(f"3. {pictures} pictures 224x224, top class at denseblock4 (median of {runs})")
    print(f"  loop of single explain calls {pictures / t['loop']:6.1f} pictures/s; explain_batch (8 a batch) "
          f"{pictures / t['batch']:6.1f} pictures/s: {t['loop'] / t['batch']:.2f}x; largest map difference "
          f"{worst:.1e} of the map's range")


def predict_section(clf, tv, runs: int) -> None:
    x = clf.prepare(Image.effect_noise((224, 224), 50).convert("RGB")).tensor[None]
    tv_cl = copy.deepcopy(tv).to(memory_format=torch.channels_last)
    x_cl = x.contiguous(memory_format=torch.channels_last)

    def forward(net, inp):
        def run():
            with torch.inference_mode():
                net(inp)
        return run

    threads = torch.get_num_threads()
    print(f"4. our predict forward / torchvision eager forward (median of {runs}, 224x224, batch 1); torchvision "
          "here (our allocator setting applies to the whole process) and in a process of its own")
    with SeparateTorchvision() as apart:
        for label, n in ((f"{threads} threads", threads), ("1 thread", 1)):
            torch.set_num_threads(n)
            t = interleaved_medians({"ours": lambda: clf.logits(x), "tv": forward(tv, x),
                                     "tv_cl": forward(tv_cl, x_cl), "apart": lambda n=n: apart.forward(n)},
                                    runs, warmup=2, self_timed=("apart",))
            print(f"  {label}: ours {t['ours'] * 1e3:.1f} ms; torchvision {t['tv'] * 1e3:.1f} ms -> "
                  f"{t['ours'] / t['tv']:.2f}; in channels_last {t['tv_cl'] * 1e3:.1f} ms -> "
                  f"{t['ours'] / t['tv_cl']:.2f}; in a process of its own {t['apart'] * 1e3:.1f} ms -> "
                  f"{t['ours'] / t['apart']:.2f}")
    torch.set_num_threads(threads)


def counted_flops(fn) -> int:
    """Convolution and matrix-product FLOPs of one call of ``fn`` (elementwise work is not counted), after a call
    that does the one-off work (a batch's check of its products, ``model.fused_layers``)."""
    fn()
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def rate_section(clf, prepared, runs: int) -> None:
    x = prepared.tensor[None]
    batch = clf.batch([prepared.tensor] * 8)
    recording = gradients.record(clf.model, x, BLOCKS, clf.gradient_plan)
    top = int(recording.logits.argmax())
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    work = {  # name: (call, pictures)
        "prediction forward, one picture": (lambda: clf.logits(x), 1),
        "prediction forward, batch of 8": (lambda: clf.logits(batch), 8),
        "four blocks' backward, top class": (lambda: gradients.tap_gradients(clf.model, recording, BLOCKS, [top]), 1),
    }
    flops = {k: counted_flops(fn) for k, (fn, _) in work.items()}
    t = interleaved_medians({"matmul": lambda: torch.mm(a, b)} | {k: fn for k, (fn, _) in work.items()}, runs)
    peak = 2 * 2048**3 / t["matmul"] / 1e9
    print(f"5. arithmetic rate (convolution and matrix-product FLOPs per second, median of {runs}); a 2048x2048 "
          f"matrix product runs at {peak:.0f} GFLOP/s")
    for k, (_, pictures) in work.items():
        rate = flops[k] / t[k] / 1e9
        print(f"  {k:34s} {flops[k] / pictures / 1e9:5.2f} GFLOP a picture {t[k] / pictures * 1e3:7.1f} ms a picture "
              f"{rate:5.0f} GFLOP/s = {rate / peak:.2f} of the matrix product's")


def first_calls(clf, tv) -> dict[str, float]:
    """The first forward pass of each network in this process (no warm-up: oneDNN builds its kernels)."""
    x = clf.prepare(Image.effect_noise((224, 224), 50).convert("RGB")).tensor[None]
    times = {}
    for name, fn in (("ours", lambda: clf.logits(x)), ("torchvision", lambda: tv(x))):
        started = time.perf_counter()
        with torch.inference_mode():
            fn()
        times[name] = time.perf_counter() - started
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--fast-runs", type=int, default=3)
    parser.add_argument("--batch-pictures", type=int, default=16)
    parser.add_argument("--skip", default="",
                        help="comma-separated sections to skip: gradients,scorecam,batch,predict,rate")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    torch.manual_seed(0)
    tv = torchvision.models.densenet121().eval()
    ours = densenet121()
    ours.load_state_dict(tv.state_dict())
    clf = DenseNetClassifier(ours, [f"class {i}" for i in range(1000)], device="cpu")
    demo = DenseNetClassifier.load("demo", device="cpu") if demo_model_path().is_file() else None
    cold = first_calls(clf, tv)
    prepared = clf.prepare(Image.effect_noise((224, 224), 50).convert("RGB"))
    started = time.perf_counter()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, bfloat16 for Score-CAM (fast): "
          f"{engine.low_precision_dtype(torch.device('cpu'))}")
    if "gradients" not in skip:
        gradients_section(clf, tv, prepared, args.runs)
    if "scorecam" not in skip:
        score_cam_section(clf, demo, args.fast_runs)
    if "batch" not in skip:
        batch_section(clf, args.batch_pictures, args.runs)
    if "predict" not in skip:
        predict_section(clf, tv, args.runs)
        print(f"  first call in this process (no warm-up): ours {cold['ours'] * 1e3:.0f} ms, torchvision "
              f"{cold['torchvision'] * 1e3:.0f} ms -> {cold['ours'] / cold['torchvision']:.2f}")
    if "rate" not in skip:
        rate_section(clf, prepared, args.runs)
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
