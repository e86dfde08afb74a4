"""The from-scratch DenseNet: sizes, torchvision equivalence, taps and fusion."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from model import gradients
from model.architecture import describe
from model.checkpoints import build_model, read_checkpoint
from model.densenet import DenseNet, densenet, densenet121, densenet161, densenet169, densenet201
from tests.conftest import make_tiny, randomize_batchnorm


@pytest.mark.parametrize("factory, expected", [
    (densenet121, 7_978_856), (densenet161, 28_681_000),
    (densenet169, 14_149_480), (densenet201, 20_013_928),
])
def test_factories_have_torchvision_parameter_counts(factory, expected):
    with torch.device("meta"):
        model = factory()
    assert sum(p.numel() for p in model.parameters()) == expected


def test_bc_100_k12_is_about_0_8m_parameters():
    with torch.device("meta"):
        model = densenet(12, (16, 16, 16), 24, num_classes=10, stem="small")
    assert 0.75e6 < sum(p.numel() for p in model.parameters()) < 0.82e6


def test_describe_reports_connections_growth_and_sizes():
    report = describe(densenet121().config, (224, 224))
    blocks = {s.name: s for s in report.stages}
    assert report.parameters == 7_978_856
    assert [blocks[f"denseblock{i}"].connections for i in range(1, 5)] == [21, 78, 300, 136]
    assert blocks["denseblock1"].channel_growth[:3] == [64, 96, 128]
    assert [(blocks[n].out_channels, blocks[n].height) for n in
            ("denseblock1", "denseblock2", "denseblock3", "denseblock4")] == \
        [(256, 56), (512, 28), (1024, 14), (1024, 7)]
    assert sum(s.parameters for s in report.stages) == report.parameters


def _real_input() -> torch.Tensor:
    from matplotlib import cbook
    from PIL import Image

    from model.preprocess import analysed_image, plan, to_tensor

    img = Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")
    return to_tensor(analysed_image(img, plan(img.size, "center-crop")))[None]


def _assert_same_logits(tv, ours: DenseNet, tol=1e-4):
    x = _real_input()
    with torch.no_grad():
        expected = tv(x)
        got = ours.eval()(x)
    assert (expected - got).abs().max().item() <= tol


def test_loads_torchvision_state_dict_strictly_and_matches_logits(tv_densenet121):
    ours = densenet121()
    ours.load_state_dict(tv_densenet121.state_dict(), strict=True)
    assert list(ours.state_dict()) == list(tv_densenet121.state_dict())
    _assert_same_logits(tv_densenet121, ours)


def test_pth_file_matches_torchvision(tv_densenet121, densenet121_pth):
    _assert_same_logits(tv_densenet121, build_model(read_checkpoint(densenet121_pth)))


def test_safetensors_file_matches_torchvision(tv_densenet121, tmp_path):
    path = tmp_path / "m.safetensors"
    save_file({k: v.contiguous() for k, v in tv_densenet121.state_dict().items()}, str(path))
    _assert_same_logits(tv_densenet121, build_model(read_checkpoint(path)))


def test_legacy_key_checkpoint_loads(tv_densenet121, tmp_path):
    legacy = {}
    for k, v in tv_densenet121.state_dict().items():
        for part in ("norm1", "norm2", "conv1", "conv2"):
            k = k.replace(f".{part}.", f".{part[:-1]}.{part[-1]}.")
        legacy[k] = v
    assert "features.denseblock1.denselayer1.norm.1.weight" in legacy
    path = tmp_path / "legacy.pth"
    torch.save(legacy, path)
    _assert_same_logits(tv_densenet121, build_model(read_checkpoint(path)))


def assert_fused_copy_matches(plain: DenseNet) -> None:
    fused = plain.fused_for_inference().to(memory_format=torch.channels_last)
    assert fused is not plain
    x = torch.randn(2, 3, 64, 80)
    with torch.no_grad():
        a, ta = plain.forward_with_taps(x, plain.tap_names)
        b, tb = fused.forward_with_taps(x.to(memory_format=torch.channels_last), fused.tap_names)
    assert (a - b).abs().max() <= 1e-4
    for name in plain.tap_names:
        assert torch.allclose(ta[name], tb[name], atol=1e-4), name


def test_fused_copy_matches_logits_and_taps():
    # the ImageNet stem, so that norm0, every norm2 and the transitions are all rewritten in the copy
    torch.manual_seed(0)
    assert_fused_copy_matches(randomize_batchnorm(densenet(6, (2, 3, 2), 16, 2, num_classes=5, stem="imagenet")).eval())


def test_fused_copy_pools_before_the_stems_relu():
    torch.manual_seed(0)
    plain = randomize_batchnorm(densenet(6, (2, 3, 2), 16, 2, num_classes=5, stem="imagenet")).eval()
    fused = plain.fused_for_inference()
    seen = []
    fused.features.relu0.register_forward_hook(lambda module, args, out: seen.append(tuple(out.shape)))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(fused(x), plain(x), atol=1e-5)
    assert seen == [(1, 16, 16, 16)]  # the pooled map (the convolution's output is 32x32)
    assert [name for name, _ in plain.features.named_children()][:4] == ["conv0", "norm0", "relu0", "pool0"]


def signed_batchnorm(model: DenseNet) -> DenseNet:
    """BN scales of both signs, and one exactly zero in every BN (a pruned channel)."""
    randomize_batchnorm(model, seed=3)
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.mul_(torch.where(torch.rand(m.num_features, generator=g) < 0.3, -1.0, 1.0))
                m.weight[0] = 0.0
    return model


def test_fused_clamps_equal_bn_relu_for_negative_and_zero_scales():
    torch.manual_seed(0)
    assert_fused_copy_matches(signed_batchnorm(densenet(6, (2, 3, 2), 16, 2, num_classes=5, stem="imagenet")).eval())


def test_fused_block_without_concatenation_gives_the_very_same_numbers():
    torch.manual_seed(0)
    fused = signed_batchnorm(densenet(6, (3, 4), 16, 2, num_classes=5, stem="imagenet")).eval()
    fused = fused.fused_for_inference().to(memory_format=torch.channels_last)
    block = fused.features.denseblock2
    x = torch.randn(2, block.denselayer1.conv1.in_channels, 9, 7).contiguous(memory_format=torch.channels_last)
    assert block.clamped
    with torch.no_grad():
        rows = block.forward_rows(x)
    features = [x]  # the concatenating path, as autograd runs it
    for layer in block.values():
        features.append(layer(features))
    assert torch.equal(rows, torch.cat(features, 1))


def test_gradients_through_the_fused_clamps_equal_the_plain_networks():
    torch.manual_seed(0)
    plain = signed_batchnorm(densenet(6, (2, 3, 2), 16, 2, num_classes=5, stem="imagenet")).eval()
    plain.requires_grad_(False)
    fused = plain.fused_for_inference().to(memory_format=torch.channels_last)
    x = torch.randn(1, 3, 64, 64)
    grads = []
    for net, picture in ((plain, x), (fused, x.to(memory_format=torch.channels_last))):
        logits, taps = net.forward_with_taps(picture, ["denseblock1", "transition2"], grad_taps=True)
        grads.append(torch.autograd.grad(logits[0, 3], [taps["denseblock1"], taps["transition2"]]))
    for g_plain, g_fused in zip(*grads):
        assert g_plain.abs().max() > 0
        assert (g_plain - g_fused).abs().max() <= 1e-5 * g_plain.abs().max()


def test_hand_written_gradients_through_signed_clamps_equal_autograd_on_the_plain_network():
    # The backward recomputes each clamp's mask from the block's features (``ClampedBN.margin_rows``): with
    # scales of both signs and zero it must pass gradients exactly where autograd's ReLUs do, for one picture
    # and for each picture of a batch.
    torch.manual_seed(0)
    plain = signed_batchnorm(densenet(6, (2, 3, 2), 16, 2, num_classes=5, stem="imagenet")).eval()
    plain.requires_grad_(False)
    fused = plain.fused_for_inference().to(memory_format=torch.channels_last)
    taps = ["denseblock1", "transition1", "denseblock2", "denseblock3"]
    x = torch.randn(2, 3, 64, 64)
    rec = gradients.record(fused, x.contiguous(memory_format=torch.channels_last), taps)
    batched = gradients.tap_gradients(fused, rec, taps, [3, 1, 4], samples=[0, 1, 1])
    for row, (picture, target) in enumerate([(0, 3), (1, 1), (1, 4)]):
        logits, maps = plain.forward_with_taps(x[picture:picture + 1], taps, grad_taps=True)
        expected = torch.autograd.grad(logits[0, target], [maps[t] for t in taps])
        single = gradients.tap_gradients(
            fused, gradients.record(fused, x[picture:picture + 1].contiguous(memory_format=torch.channels_last),
                                    taps), taps, [target])
        for tap, want in zip(taps, expected):
            assert want.abs().max() > 0
            for got in (batched[tap][row], single[tap][0]):
                assert (got - want[0]).abs().max() <= 1e-5 * want.abs().max()


def test_fused_copy_leaves_the_callers_model_untouched():
    model = make_tiny().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modules_before = [name for name, _ in model.named_modules()]
    fused = model.fused_for_inference()
    assert model.training and not fused.training
    assert [name for name, _ in model.named_modules()] == modules_before
    after = model.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(after[k], before[k]) for k in before)
    assert all(p.requires_grad for p in model.parameters())
    assert not any(p.requires_grad for p in fused.parameters())
    ours = {p.data_ptr() for p in model.parameters()}
    assert not ours & {p.data_ptr() for p in fused.parameters()}  # nothing shared
    fresh = make_tiny(seed=1).state_dict()  # torchvision's layout
    model.load_state_dict(fresh, strict=True)
    assert torch.equal(model.state_dict()["classifier.weight"], fresh["classifier.weight"])


def test_taps_have_documented_shapes_and_norm5_is_post_relu():
    model = make_tiny()
    x = torch.randn(2, 3, 32, 48)
    logits, taps = model.forward_with_taps(x, model.tap_names)
    assert model.tap_names == ["denseblock1", "transition1", "denseblock2", "transition2",
                               "denseblock3", "norm5"]
    assert taps["denseblock1"].shape == (2, 16, 32, 48)  # 8 + 2 * 4 channels
    assert taps["transition1"].shape == (2, 8, 16, 24)
    assert taps["norm5"].min() >= 0
    pooled = taps["norm5"].mean(dim=(2, 3))
    assert torch.allclose(model.classifier(pooled), logits, atol=1e-6)


def test_taps_are_not_rewritten_by_later_layers():
    model = make_tiny()
    x = torch.randn(1, 3, 32, 32)
    _, taps = model.forward_with_taps(x, ["denseblock3", "norm5"])
    snapshot = {k: v.clone() for k, v in taps.items()}
    _, again = model.forward_with_taps(x, ["denseblock3", "norm5"])
    for k in taps:
        assert torch.equal(taps[k], snapshot[k]) and torch.equal(again[k], snapshot[k])


def test_grad_taps_give_gradients_without_touching_parameters():
    model = make_tiny()
    for p in model.parameters():
        p.requires_grad_(False)
    logits, taps = model.forward_with_taps(torch.randn(1, 3, 32, 32), ["denseblock2", "norm5"],
                                           grad_taps=True)
    grads = torch.autograd.grad(logits[0, 1], [taps["denseblock2"], taps["norm5"]])
    assert grads[0].shape == taps["denseblock2"].shape and grads[0].abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())


def test_unknown_tap_is_rejected():
    with pytest.raises(KeyError, match="valid"):
        make_tiny().forward_with_taps(torch.randn(1, 3, 32, 32), ["denseblock9"])


def test_memory_efficient_training_gives_the_same_gradients():
    torch.manual_seed(0)
    a = densenet(4, (3, 3), 8, 2, num_classes=3, stem="small").train()
    b = densenet(4, (3, 3), 8, 2, num_classes=3, stem="small", memory_efficient=True).train()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 16, 16)
    a(x).sum().backward()
    b(x).sum().backward()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(pa.grad, pb.grad, atol=1e-5), name
