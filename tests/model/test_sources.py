"""A dense block's map split by source: the parts add up to the map, the shares to 1, and a net whose
evidence sits in one layer's channels gives that layer the whole share."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from model.cam import METHODS, get_method
from model.classifier import DenseNetClassifier
from model.densenet import densenet121
from model.explain import ImageAnalysis
from model.labels import generic_labels
from model.sources import block_sources, evidence_shares, split_sources
from model.zoo import Preprocessing
from tests.model.test_explain import brightness_net, scene

GRADIENT_METHODS = [name for name, m in METHODS.items() if m.needs_gradients]


def one_layer_net() -> torch.nn.Module:
    """``brightness_net`` whose classes read only denselayer2 of denseblock3 (channels 12..15).

    That layer copies the brightness channel into its first new channel; the "bright" logit is the mean of
    that channel, "dark" its negative.  All the evidence for "bright" at denseblock3 is denselayer2's.
    """
    model = brightness_net()
    layer = model.features.denseblock3.denselayer2
    with torch.no_grad():
        layer.conv1.weight[0, 0, 0, 0] = 1.0
        layer.conv2.weight[0, 0, 1, 1] = 1.0
        model.classifier.weight.zero_()
        model.classifier.weight[0, 12] = -1.0
        model.classifier.weight[1, 12] = 1.0
    return model


def picture(seed: int = 0, size=(150, 120)) -> Image.Image:
    """Smooth random blobs: a picture every class sees differently."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)


def whole_map(clf: DenseNetClassifier, prepared, layer: str, target: int, method: str) -> np.ndarray:
    """The method's map before ReLU, sum_c w_c * A_c over all channels at once (no split)."""
    x = clf.batch([prepared.tensor])
    with torch.enable_grad():
        logits, taps = clf.model.forward_with_taps(x, [layer], grad_taps=True)
    (g,) = torch.autograd.grad(logits[0, target], [taps[layer]])
    a = taps[layer].detach()
    return (get_method(method).weights(a, g) * a).sum(dim=1)[0].numpy()


def check_split(clf: DenseNetClassifier, prepared, methods: list[str], classes) -> None:
    blocks = [n for n in clf.model.tap_names if n.startswith("denseblock")]
    widths = {name: c_out for name, (_, c_out) in zip(blocks, clf.config.block_channels())}
    analysis = ImageAnalysis(clf, prepared, blocks, autograd=True)  # the same gradients as the split
    shared = 0
    for method in methods:
        splits = split_sources(clf, prepared, blocks, classes, method)
        assert len(splits) == len(blocks) * len(classes)
        for split in splits:
            full = whole_map(clf, prepared, split.layer, split.class_index, method)
            span = float(full.max() - full.min())
            assert span > 0
            assert np.abs(split.full - full).max() <= 1e-5 * span, (method, split.layer)
            heat = analysis.explain([split.layer], [split.class_index], method).maps[0].raw
            assert np.abs(np.maximum(split.full, 0) - heat).max() <= 1e-5 * span, (method, split.layer)
            assert split.status == ("ok" if heat.max() > 0 else "empty")  # Grad-CAM++ can see no evidence
            if split.status == "ok":
                assert sum(split.shares) == pytest.approx(1.0, abs=1e-9)
                shared += 1
            channels = [(s.start, s.end) for s in split.sources]
            assert channels[0][0] == 0 and channels[-1][1] == widths[split.layer]
            assert all(a[1] == b[0] for a, b in zip(channels, channels[1:]))
    assert shared >= len(methods) * len(blocks) * len(classes) - 1


@pytest.mark.slow
def test_parts_add_up_to_the_map_for_every_block_of_densenet121(tv_densenet121):
    net = densenet121()
    net.load_state_dict(tv_densenet121.state_dict())
    clf = DenseNetClassifier(net, generic_labels(1000), "cpu", preprocessing=Preprocessing(input_size=128))
    check_split(clf, clf.prepare(picture()), ["gradcam", "hirescam"], [0])
    assert [len(block_sources(clf.config, f"denseblock{i}")) for i in (1, 2, 3, 4)] == [7, 13, 25, 17]


def test_parts_add_up_to_the_map_for_every_block_of_the_demo_model():
    clf = DenseNetClassifier.load("demo", device="cpu")
    check_split(clf, clf.prepare(picture(1)), GRADIENT_METHODS, ["top1"])


def test_sources_follow_the_channel_order_of_the_block():
    clf = DenseNetClassifier.load("demo", device="cpu")
    c_in, c_out = clf.config.block_channels()[1]
    k = clf.config.growth_rate
    sources = block_sources(clf.config, "denseblock2")
    assert sources[0].name == "input" and (sources[0].start, sources[0].end) == (0, c_in)
    assert [s.name for s in sources[1:3]] == ["denselayer1", "denselayer2"]
    assert (sources[2].start, sources[2].end) == (c_in + k, c_in + 2 * k)
    assert sources[-1].end == c_out


def test_the_layer_that_carries_the_evidence_gets_all_of_it():
    clf = DenseNetClassifier(one_layer_net(), ["dark", "bright"], "cpu",
                             preprocessing=Preprocessing(input_size=96, mean=(0.5,) * 3, std=(0.5,) * 3))
    prepared = clf.prepare(scene((200, 120), (150, 10, 190, 50)))
    bright, dark = split_sources(clf, prepared, ["denseblock3"], ["bright", "dark"])
    assert bright.names == ["input", "denselayer1", "denselayer2"]
    assert bright.shares == [0.0, 0.0, 1.0]
    assert np.abs(bright.parts[:2]).max() == 0
    assert bright.source_map(2).ok and not bright.source_map(0).ok
    assert dark.status == "empty" and dark.shares is None
    assert dark.to_dict()["sources"][2] == {"source": "denselayer2", "channels": [12, 16], "share": None}


def test_a_source_against_the_class_gets_a_negative_share_and_the_shares_still_sum_to_one():
    parts = np.array([[[3.0, -5.0]], [[-1.0, 1.0]]])  # the map is [2, -4]: positive at the first position only
    assert evidence_shares(parts) == pytest.approx([1.5, -0.5])
    assert evidence_shares(-np.abs(parts)) is None
    assert evidence_shares(np.full((2, 1, 2), np.nan)) is None


@pytest.mark.parametrize("layer", ["transition1", "norm5", "features"])
def test_layers_other_than_dense_blocks_are_refused(layer):
    clf = DenseNetClassifier.load("demo", device="cpu")
    with pytest.raises(ValueError, match="not a dense block"):
        split_sources(clf, clf.prepare(picture()), [layer])


def test_score_cam_is_refused():
    clf = DenseNetClassifier.load("demo", device="cpu")
    with pytest.raises(ValueError, match="gradient method"):
        split_sources(clf, clf.prepare(picture()), ["denseblock1"], method="scorecam")
