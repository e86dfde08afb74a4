"""The fast explanation paths give the plain paths' maps (issue 14).

* Gradients: ``ImageAnalysis`` takes them in closed form at ``norm5`` and the
  last dense block and from a hand-written backward further down
  (``model.gradients``); ``ImageAnalysis(..., autograd=True)`` asks autograd.
  Every gradient method's maps must agree within 1e-5 of their range, on
  DenseNet-121 with fixed-seed weights and on the bundled demo model.
* Score-CAM (fast) masks the input with channel groups in bfloat16: its maps
  must correlate with Score-CAM's (Pearson) on the bundled sample pictures.
* ``explain_batch`` must give each picture the map a single ``explain`` gives.
"""

from __future__ import annotations

import copy
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib import cbook
from PIL import Image

from model import gradients
from model.cam import METHODS, channel_groups, get_method, gradient_cam
from model.classifier import DenseNetClassifier
from model.densenet import densenet121
from model.explain import ImageAnalysis, explain, explain_batch
from model.fused_layers import Pointwise, one_product_per_batch
from model.paths import assets_dir, demo_model_path
from model.zoo import Preprocessing
from tests.conftest import make_tiny

GRADIENT_METHODS = [name for name, m in METHODS.items() if m.needs_gradients]
needs_demo = pytest.mark.skipif(not demo_model_path().is_file(), reason="the demo model is not bundled")


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal within 1e-5 of the map's range."""
    return np.abs(a - b).max() <= 1e-5 * max(float(np.ptp(a)), 1e-30)


def _samples() -> list:
    return sorted((assets_dir() / "samples").glob("*.png"))


@pytest.fixture(scope="module")
def densenet(tv_densenet121) -> DenseNetClassifier:
    net = densenet121()
    net.load_state_dict(tv_densenet121.state_dict())
    return DenseNetClassifier(net, [f"c{i}" for i in range(1000)], "cpu")


@pytest.fixture(scope="module")
def demo() -> DenseNetClassifier:
    if not demo_model_path().is_file():
        pytest.skip("the demo model is not bundled")
    return DenseNetClassifier.load("demo", device="cpu")


def _float64_maps(clf: DenseNetClassifier, prepared, classes: list[int], method: str) -> dict:
    """The maps computed in float64 throughout (network, autograd, formula): what both paths approximate."""
    net = copy.deepcopy(clf.model).double()
    taps = net.tap_names
    with torch.enable_grad():
        logits, acts = net.forward_with_taps(clf.batch([prepared.tensor]).double(), taps, grad_taps=True)
    maps = {}
    for c in classes:
        grads = torch.autograd.grad(logits[0, c], [acts[t] for t in taps], retain_graph=True)
        for t, g in zip(taps, grads):
            maps[(t, c)] = gradient_cam(method, acts[t].detach(), g)[0].numpy()
    return maps


def _term_scale(analysis: ImageAnalysis, method: str, layer: str, c: int) -> float:
    """``max_ij sum_k |w_k A_k|``: the size of the terms a map sums before they cancel and ReLU cuts."""
    a, g = analysis._activations[layer].detach(), analysis._gradients[(layer, c)]
    return float((get_method(method).weights(a, g) * a).abs().sum(dim=1).max())


def assert_fast_equals_autograd(clf: DenseNetClassifier, picture, classes, strict: bool = True) -> None:
    """Gradients within 1e-5 of their range at every tap; so are the maps of every gradient method.

    Both paths compute in float32, and a map formula can amplify the last bits
    in which their gradients differ (the paths sum in different orders).  With
    ``strict=False`` a map may differ by 1e-5 of the terms it sums when they
    nearly cancel, and a Grad-CAM++ map (it divides by sums that nearly cancel)
    must be about as close to the map computed in float64 as autograd's is
    (10 times its distance, plus 1e-3 of the map's range).
    """
    prepared = clf.prepare(picture)
    taps = clf.model.tap_names
    fast, plain = ImageAnalysis(clf, prepared), ImageAnalysis(clf, prepared, autograd=True)
    assert not fast.autograd and plain.autograd
    assert torch.equal(fast.scores, plain.scores)
    for method in GRADIENT_METHODS:
        a, b = fast.explain(taps, classes, method), plain.explain(taps, classes, method)
        targets = list(dict.fromkeys(m.class_index for m in a.maps))
        assert len(a.maps) == len(taps) * len(targets) == len(b.maps)
        reference = None
        for x, y in zip(a.maps, b.maps):
            assert (x.layer, x.class_index, x.status) == (y.layer, y.class_index, y.status), method
            if _close(y.raw, x.raw):
                continue
            what = (method, x.layer, x.label, np.abs(x.raw - y.raw).max(), np.ptp(y.raw))
            assert not strict, what
            if method != "gradcam++":
                assert np.abs(x.raw - y.raw).max() <= 1e-5 * _term_scale(plain, method, x.layer, x.class_index), what
                continue
            reference = reference or _float64_maps(clf, prepared, targets, method)
            exact = reference[(x.layer, x.class_index)]
            # (the retrained demo: fast 1.7e-5 from float64 on a map of range 0.037 where autograd was 1.0e-6
            # from it, with gradients equal within 3e-7 of their range)
            assert np.abs(x.raw - exact).max() <= 10 * np.abs(y.raw - exact).max() + 1e-3 * np.ptp(exact), what
    for (layer, c), g in fast._gradients.items():
        reference = plain._gradients[(layer, c)]
        assert (g - reference).abs().max() <= 1e-5 * (reference.max() - reference.min()), (layer, c)


def test_fast_gradients_equal_autograd_on_densenet121(densenet):
    photo = Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    # The top two classes and an unlikely one, at every tap (blocks, transitions, norm5).
    assert_fast_equals_autograd(densenet, photo, ["top2", 0])


@needs_demo
def test_fast_gradients_equal_autograd_on_the_demo_model(demo):
    for path in _samples():
        assert_fast_equals_autograd(demo, path, list(range(len(demo.labels))), strict=False)


def test_fast_gradients_equal_autograd_on_an_unfused_network_of_odd_size():
    # An unfused eval-mode network (BN after every 1x1 convolution, transitions convolve before pooling) on a
    # picture whose maps have odd sizes (the pooling drops a row and a column).
    clf = DenseNetClassifier(make_tiny(), ["ant", "bee", "cat", "dog"], "cpu")
    clf.model = make_tiny().to(memory_format=torch.channels_last).requires_grad_(False)
    assert gradients.supports(clf.model)
    assert_fast_equals_autograd(clf, Image.effect_noise((75, 61), 60).convert("RGB"), ["top4"], strict=False)


def test_head_gradients_are_in_closed_form_with_no_pass_through_any_layer(densenet, monkeypatch):
    prepared = densenet.prepare(Image.effect_noise((224, 224), 40).convert("RGB"))
    analysis = ImageAnalysis(densenet, prepared, ["denseblock4", "norm5"])
    passes = []
    monkeypatch.setattr(gradients, "_block_backward", lambda *a, **k: passes.append(a))
    monkeypatch.setattr(torch.autograd, "grad", lambda *a, **k: passes.append(a))
    analysis.explain(["denseblock4", "norm5"], ["top5"], "hirescam")  # element-wise: the gradient itself
    assert passes == []
    w = densenet.model.classifier.weight
    bn = densenet.model.features.norm5
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    post = analysis._activations["norm5"]
    for c in [p.index for p in analysis.predictions(5)]:
        g5, g4 = analysis._gradients[("norm5", c)], analysis._gradients[("denseblock4", c)]
        assert torch.allclose(g5, (w[c] / 49)[None, :, None, None].expand_as(g5), rtol=1e-6, atol=0)
        expected = torch.where(post > 0, (w[c] * scale / 49)[None, :, None, None], 0)
        assert torch.allclose(g4, expected, rtol=1e-5, atol=1e-12)


def test_held_analysis_records_once_and_sweeps_once_per_request(densenet, monkeypatch):
    records, sweeps = [], []
    real_record, real_sweep = gradients.record, gradients.tap_gradients
    monkeypatch.setattr(gradients, "record", lambda *a, **k: records.append(1) or real_record(*a, **k))
    monkeypatch.setattr(gradients, "tap_gradients", lambda m, r, layers, classes, *a, **k: sweeps.append(
        (list(layers), list(classes))) or real_sweep(m, r, layers, classes, *a, **k))
    analysis = ImageAnalysis(densenet, densenet.prepare(Image.effect_noise((160, 160), 40).convert("RGB")))
    blocks = ["denseblock1", "denseblock2", "denseblock3", "denseblock4"]
    analysis.explain(blocks, ["top5"], "gradcam")  # five classes, one sweep
    analysis.explain(blocks, [7], "gradcam")  # class switch: one sweep, no forward
    analysis.explain(blocks, ["top5", 7], "layercam")  # method switch: gradients are held
    top = analysis.predictions(1)[0].index
    assert records == [1] and sweeps == [(blocks, [p.index for p in analysis.predictions(5)]), (blocks, [7])]
    assert top == sweeps[0][1][0]


def test_a_classifier_checks_and_transposes_its_network_once(densenet, monkeypatch):
    prepared = densenet.prepare(Image.effect_noise((96, 96), 40).convert("RGB"))
    plan = densenet.gradient_plan
    ImageAnalysis(densenet, prepared).explain(["denseblock3"])
    monkeypatch.setattr(gradients, "supports", lambda *a: pytest.fail("checked again"))
    monkeypatch.setattr(gradients, "_weights_key", lambda *a: pytest.fail("weights walked again"))
    ImageAnalysis(densenet, prepared).explain(["denseblock2"], ["top3"])
    explain_batch(densenet, [prepared, prepared])
    assert densenet.gradient_plan is plan and "transposed" in vars(plan)


def test_a_new_network_or_device_gets_a_new_plan():
    clf = DenseNetClassifier(make_tiny(), ["ant", "bee", "cat", "dog"], "cpu")
    first = clf.gradient_plan
    clf._move_to(torch.device("cpu"))  # what running out of memory on an accelerator does
    second = clf.gradient_plan
    clf.model = make_tiny().to(memory_format=torch.channels_last).requires_grad_(False)
    assert second is not first and clf.gradient_plan is not second and clf.gradient_plan.model is clf.model


def test_a_network_of_another_structure_goes_through_autograd():
    clf = DenseNetClassifier(make_tiny(), ["ant", "bee", "cat", "dog"], "cpu")
    clf.model.features.transition1.pool = torch.nn.MaxPool2d(2)  # not linear: no hand-written transpose
    assert not gradients.supports(clf.model)
    analysis = ImageAnalysis(clf, clf.prepare(Image.effect_noise((64, 64), 60).convert("RGB")))
    assert analysis.autograd
    maps = analysis.explain(["denseblock1", "norm5"], ["top2"]).maps
    assert len(maps) == 4 and maps[0].raw.shape == tuple(analysis.x.shape[-2:])


def test_fast_score_cam_is_listed_before_score_cam_and_both_are_slow():
    names = list(METHODS)
    assert names.index("scorecam_fast") == names.index("scorecam") - 1
    fast, full = METHODS["scorecam_fast"], METHODS["scorecam"]
    assert fast.title == "Score-CAM (fast)" and fast.kind == full.kind == "perturbation"
    assert fast.slow and full.slow  # several seconds on DenseNet-121 at four blocks: progress and Cancel
    assert fast.passes(1024) == 96 and fast.passes(24) == 24 and full.passes(1024) == 1024


@needs_demo
def test_fast_score_cam_agrees_with_score_cam_on_the_sample_pictures(demo):
    layer = demo.model.tap_names[-2]  # the deepest dense block, where the app opens
    r = []
    for path in _samples():
        analysis = ImageAnalysis(demo, demo.prepare(path), [layer])
        full, fast = (analysis.explain([layer], ["top1"], method).maps[0] for method in ("scorecam", "scorecam_fast"))
        assert full.ok == fast.ok, path.name  # both find positive evidence, or neither does
        if full.ok:
            r.append(np.corrcoef(full.raw.ravel(), fast.raw.ravel())[0, 1])
    # Measured with the third demo: 3 of 10 samples have no positive evidence at denseblock3 (its block
    # features can sum below zero); the other 7: mean 0.995, lowest 0.984 (64 groups: 0.966, 0.809).
    assert len(r) >= 5 and np.mean(r) >= 0.98 and min(r) >= 0.95, np.round(r, 3)


@pytest.mark.slow
def test_fast_score_cam_agrees_with_score_cam_on_photos(tv_densenet121):
    # DenseNet-121 (fixed-seed weights) at 128 px, so that Score-CAM's 1,024 masked passes stay affordable;
    # bench/bench_explain.py measures both photos at 224 px (r 0.9987 and 0.9999)
    net = densenet121()
    net.load_state_dict(tv_densenet121.state_dict())
    clf = DenseNetClassifier(net, [f"c{i}" for i in range(1000)], "cpu", preprocessing=Preprocessing(input_size=128))
    analysis = ImageAnalysis(clf, clf.prepare(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)),
                             ["denseblock4"])
    full, fast = (analysis.explain(["denseblock4"], ["top1"], m).maps[0] for m in ("scorecam", "scorecam_fast"))
    assert full.ok and fast.ok and full.raw.size >= 16
    assert np.corrcoef(full.raw.ravel(), fast.raw.ravel())[0, 1] >= 0.95


@pytest.mark.parametrize("network", ["densenet", "demo"])
def test_fast_score_cams_reduced_precision_copy_gives_autocasts_numbers_and_is_made_once(network, request):
    clf = request.getfixturevalue(network)
    x = torch.randn(3, 3, 96, 96).contiguous(memory_format=torch.channels_last)
    copy16 = clf.reduced_precision_model(torch.bfloat16)
    with torch.inference_mode(), one_product_per_batch():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast = clf.model(x)
        ours = copy16(x.to(torch.bfloat16))
    # norm5's BN statistics stay float32, as under autocast (in bfloat16 they moved the demo's logits by 4e-3)
    assert ours.dtype == torch.bfloat16 and torch.equal(ours, autocast)
    assert next(clf.model.parameters()).dtype == torch.float32  # the float32 network is untouched
    assert clf.reduced_precision_model(torch.bfloat16) is copy16
    assert clf.reduced_precision_model(torch.float16) is not copy16
    clf = DenseNetClassifier(make_tiny(), ["ant", "bee", "cat", "dog"], "cpu")
    first = clf.reduced_precision_model(torch.bfloat16)
    clf._move_to(torch.device("cpu"))  # what running out of memory on an accelerator does
    assert clf.reduced_precision_model(torch.bfloat16) is not first


def test_fast_score_cam_reports_its_group_passes_and_can_be_cancelled(demo):
    seen = []
    prepared = demo.prepare(_samples()[0])
    explain(demo, prepared, ["denseblock1", "denseblock3"], method="scorecam_fast",
            progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (192, 192) and seen == sorted(seen)  # 96 groups of 96 and of 168 channels
    from model.errors import Cancelled
    with pytest.raises(Cancelled):
        explain(demo, prepared, method="scorecam_fast", cancelled=lambda: True)


def _products(monkeypatch) -> list[tuple]:
    """``("addmm", rows)`` or ``("baddbmm", pictures, rows)`` for every product started from now on."""
    calls, addmm, baddbmm = [], torch.addmm, torch.baddbmm

    def counting_addmm(bias, matrix, weight, **kw):
        calls.append(("addmm", matrix.shape[0]))
        return addmm(bias, matrix, weight, **kw)

    def counting_baddbmm(bias, batch, weight, **kw):
        calls.append(("baddbmm", *batch.shape[:2]))
        return baddbmm(bias, batch, weight, **kw)

    monkeypatch.setattr(torch, "addmm", counting_addmm)
    monkeypatch.setattr(torch, "baddbmm", counting_baddbmm)
    return calls


@pytest.mark.parametrize("batched_products_match", [True, False])
def test_a_picture_gets_the_same_numbers_alone_and_in_any_batch(batched_products_match, monkeypatch):
    # 992 inputs: one product that long, MKL splits among threads (then a batched picture got other numbers).
    # Where batched products would sum in another order than a picture's own, a batch runs picture by picture.
    import model.fused_layers as fused

    torch.manual_seed(0)
    pointwise = Pointwise(torch.randn(128, 992, 1, 1), torch.randn(128))
    pictures = torch.randn(5, 992, 7, 7).contiguous(memory_format=torch.channels_last)
    if not batched_products_match:
        monkeypatch.setattr(fused, "_batched_products_match", lambda *_: False)
    rows = _products(monkeypatch)
    with torch.inference_mode():
        alone = torch.cat([pointwise(pictures[i:i + 1]) for i in range(5)])
        assert torch.equal(pointwise(pictures), alone) and torch.equal(pointwise(pictures[1:3]), alone[1:3])
        assert torch.allclose(alone, F.conv2d(pictures, pointwise.weight, pointwise.bias), rtol=1e-4, atol=1e-4)
    assert any(r[0] == "baddbmm" for r in rows) == (batched_products_match and fused._batched_products_match(
        (5, 49, 992), pointwise.matrix))


def test_batched_products_are_checked_once_per_shape(monkeypatch):
    import model.fused_layers as fused

    monkeypatch.setattr(fused, "_MATCHES", {})
    matrix = torch.randn(600, 64)
    with torch.inference_mode():
        found = fused._batched_products_match((4, 49, 600), matrix)
        assert fused._MATCHES and isinstance(found, bool)
        rows = _products(monkeypatch)
        assert fused._batched_products_match((4, 49, 600), matrix) is found and rows == []


def test_score_cam_scores_each_batch_of_masked_pictures_with_one_product_per_layer(densenet, monkeypatch):
    pointwise = densenet.model.features.denseblock4.denselayer1.conv1
    batch = torch.randn(3, pointwise.in_channels, 7, 7).contiguous(memory_format=torch.channels_last)
    import model.fused_layers as fused

    with torch.inference_mode():
        pointwise(batch)  # checks once whether batched products give each picture its own numbers here
    batched = fused._batched_products_match((3, 49, pointwise.in_channels), pointwise.matrix)
    per_picture = [("baddbmm", 3, 49)] if batched else [("addmm", 49)] * 3
    rows = _products(monkeypatch)
    with torch.inference_mode():
        apart = pointwise(batch)
        assert rows == per_picture  # each picture gets the numbers it gets alone
        with one_product_per_batch():
            together = pointwise(batch)
            assert rows[len(per_picture):] == [("addmm", 3 * 49)]
            worker = threading.Thread(target=pointwise, args=(batch,))  # the setting is this thread's only
            worker.start()
            worker.join()
        pointwise(batch)
    assert rows[len(per_picture) + 1:] == per_picture * 2 and torch.allclose(apart, together, atol=1e-5)
    analysis = ImageAnalysis(densenet, densenet.prepare(Image.effect_noise((64, 64), 20).convert("RGB")),
                             ["denseblock4"])
    rows.clear()
    analysis.explain(["denseblock4"], ["top1"], "scorecam_fast")  # 96 groups: 6 batches of 16 masked pictures
    # block 4's 16 layers and transition 3's pooled convolution at 7x7: one product of 16 pictures per layer
    # and batch, none of one picture
    assert rows.count(("addmm", 16 * 49)) == 6 * (16 + 1)
    assert ("addmm", 49) not in rows and not [r for r in rows if r[0] == "baddbmm"]


def test_channel_groups_gather_alike_channels_deterministically():
    g = torch.Generator().manual_seed(0)
    prototypes = torch.rand(3, 49, generator=g)
    members = torch.tensor([0] * 10 + [1] * 5 + [2] * 20)
    masks = prototypes[members] + 0.01 * torch.rand(35, 49, generator=g)
    energy = torch.rand(35, generator=g) + 0.5
    assign, centres = channel_groups(masks, energy, 3)
    assert len(set(zip(assign.tolist(), members.tolist()))) == 3  # one group per prototype
    assert torch.equal(channel_groups(masks, energy, 3)[0], assign)
    assert torch.allclose(centres[assign[0]], prototypes[0], atol=0.01)
    every, same = channel_groups(masks, energy, 64)
    assert torch.equal(every, torch.arange(35)) and same is masks


def _assert_same_explanations(batched, single) -> None:
    assert len(batched) == len(single)
    for b, s in zip(batched, single):
        assert [p.index for p in b.predictions] == [p.index for p in s.predictions]
        assert np.allclose([p.probability for p in b.predictions], [p.probability for p in s.predictions],
                           atol=1e-6)
        (mb,), (ms,) = b.maps, s.maps
        assert (mb.layer, mb.class_index, mb.status) == (ms.layer, ms.class_index, ms.status)
        assert _close(ms.raw, mb.raw) and b.prepared is s.prepared


@needs_demo
def test_batched_explanations_equal_single_ones_on_the_demo_model(demo):
    # Sizes change along the list ("full" keeps the aspect): same-size runs are batched, in order.
    pictures = [demo.prepare(p) for p in _samples()]
    pictures.insert(4, demo.prepare(Image.open(_samples()[0]).resize((256, 128))))
    for method in ("gradcam", "layercam"):
        single = [explain(demo, p, method=method, topk=3) for p in pictures]
        _assert_same_explanations(explain_batch(demo, pictures, method, topk=3, batch_size=4), single)


def test_batched_explanations_equal_single_ones_on_densenet121(densenet):
    pictures = [densenet.prepare(Image.effect_noise((224, 224), 20 + 15 * i).convert("RGB")) for i in range(3)]
    _assert_same_explanations(explain_batch(densenet, pictures), [explain(densenet, p) for p in pictures])


def test_batched_explanations_serve_the_closed_form_layers_and_gradient_methods_only(densenet):
    picture = [densenet.prepare(Image.effect_noise((64, 64), 20).convert("RGB"))]
    with pytest.raises(ValueError, match="norm5"):
        explain_batch(densenet, picture, layer="denseblock3")
    with pytest.raises(ValueError, match="gradient method"):
        explain_batch(densenet, picture, method="scorecam")


def test_batched_explanations_of_chosen_classes_equal_single_ones(densenet):
    pictures = [densenet.prepare(Image.effect_noise((224, 224), 30 + 10 * i).convert("RGB")) for i in range(3)]
    chosen = [7, None, 123]
    batched = explain_batch(densenet, pictures, classes=chosen)
    single = [explain(densenet, p, classes=None if c is None else [c]) for p, c in zip(pictures, chosen)]
    _assert_same_explanations(batched, single)
    assert batched[0].maps[0].class_index == 7 and batched[2].maps[0].class_index == 123
