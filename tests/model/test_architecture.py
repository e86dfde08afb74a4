"""The architecture report's connections and plain-CNN comparison, and the weight-based feature-reuse grid."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from model.architecture import describe, direct_connections, feature_reuse, plain_chain_parameters, source_channels
from model.densenet import DenseNetConfig, densenet, densenet121
from tests.conftest import randomize_batchnorm


def tiny(block_config=(2, 3), k=2, k0=3, classes=2):
    torch.manual_seed(0)
    return densenet(growth_rate=k, block_config=block_config, num_init_features=k0, bn_size=1,
                    num_classes=classes, stem="small")


def test_five_layer_block_has_fifteen_direct_connections_counted_in_the_network():
    net = densenet(growth_rate=4, block_config=(5,), num_init_features=6, bn_size=2, stem="small")
    block = describe(net.config, (32, 32)).stages[1]
    assert block.name == "denseblock1" and block.connections == 15 == direct_connections(5)
    # Independently: layer l's first convolution reads the block input and l - 1 earlier layers.
    sources = [(layer.conv1.in_channels - 6) // 4 + 1 for layer in net.features.denseblock1.values()]
    assert sources == [1, 2, 3, 4, 5] and sum(sources) == 15
    assert block.channel_growth == [6, 10, 14, 18, 22, 26]


def plain_cnn(widths: list[int]) -> nn.Sequential:
    """The comparison network, built: BN-ReLU-Conv3x3 from each width to the next, nothing concatenated."""
    layers = []
    for c_in, c_out in zip(widths, widths[1:]):
        layers += [nn.BatchNorm2d(c_in), nn.ReLU(), nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)]
    return nn.Sequential(*layers)


@pytest.mark.parametrize("block_config, k, k0", [((6, 12, 24, 16), 32, 64), ((5,), 4, 6), ((6, 8, 8), 12, 24)])
def test_block_parameters_next_to_a_plain_cnn_of_the_same_widths(block_config, k, k0):
    with torch.device("meta"):
        net = densenet(growth_rate=k, block_config=block_config, num_init_features=k0)
    report = describe(net.config, (224, 224))
    for i, stage in enumerate(s for s in report.stages if s.kind == "denseblock"):
        block = getattr(net.features, f"denseblock{i + 1}")
        assert stage.parameters == sum(p.numel() for p in block.parameters())
        with torch.device("meta"):
            plain = plain_cnn(stage.channel_growth)
        assert stage.plain_parameters == sum(p.numel() for p in plain.parameters())
        assert stage.plain_parameters > stage.parameters


def test_densenet121_first_block_against_numbers_worked_out_by_hand():
    block = describe(DenseNetConfig(), (224, 224)).stages[1]  # the default config is DenseNet-121
    widths = [64, 96, 128, 160, 192, 224, 256]
    # Plain: BN (2 c_in) + 3x3 conv (9 c_in c_out) per step.
    assert block.plain_parameters == sum(2 * a + 9 * a * b for a, b in zip(widths, widths[1:])) == 1_531_584
    assert plain_chain_parameters([3, 5]) == 2 * 3 + 9 * 3 * 5
    # Dense: BN(c) + 1x1 c->128 + BN(128) + 3x3 128->32 per layer.
    assert block.parameters == sum(2 * c + c * 128 + 256 + 9 * 128 * 32 for c in widths[:-1]) == 335_040


def test_report_with_plain_parameters_is_json():
    d = describe(DenseNetConfig(), (224, 224)).to_dict()  # DenseNet-121
    json.dumps(d)
    assert d["stages"][1]["plain_parameters"] == 1_531_584 and d["stages"][0]["plain_parameters"] == 0


def test_source_channels_partition_the_concatenation():
    ranges = [source_channels(64, 32, s) for s in range(7)]
    assert ranges[0] == (0, 64) and ranges[1] == (64, 96) and ranges[-1] == (224, 256)
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))


def test_feature_reuse_grid_shape_for_densenet121():
    torch.manual_seed(0)
    reuse = feature_reuse(densenet121())
    assert [r.block for r in reuse] == ["denseblock1", "denseblock2", "denseblock3", "denseblock4"]
    assert [r.exit for r in reuse] == ["transition1", "transition2", "transition3", "classifier"]
    for r, layers in zip(reuse, (6, 12, 24, 16)):
        assert r.layers == layers and len(r.grid) == layers + 1 and all(len(row) == layers for row in r.grid)
        assert len(r.exit_use) == layers + 1
        for s in range(layers + 1):
            for t in range(1, layers + 1):
                assert (r.grid[s][t - 1] is None) == (s >= t)
    json.dumps([r.to_dict() for r in reuse])


def set_weights(net) -> None:
    """Weights whose means are easy by hand: |w[o, c]| = (c + 1) * scale, with signs that differ over o."""
    with torch.no_grad():
        for i, block in enumerate((net.features.denseblock1, net.features.denseblock2)):
            for l_index, layer in enumerate(block.values()):
                w = layer.conv1.weight
                sign = torch.tensor([(-1) ** o for o in range(w.shape[0])], dtype=w.dtype).view(-1, 1, 1, 1)
                c = torch.arange(1, w.shape[1] + 1, dtype=w.dtype).view(1, -1, 1, 1)
                w.copy_(sign * c * (10 * (i + 1) + l_index + 1))  # scale 11, 12 in block 1; 21, 22, 23 in block 2
        t = net.features.transition1.conv.weight
        t.copy_(-torch.arange(1, t.shape[1] + 1, dtype=t.dtype).view(1, -1, 1, 1).expand_as(t))
        net.classifier.weight.copy_(torch.tensor([[1.0, -2, 3, 4, 5, 6, 7, 8, 9], [-1, 2, 3, 4, 5, 6, 7, 8, 9]]))


def test_feature_reuse_values_against_a_hand_computation():
    # Blocks of 2 and 3 layers, k = 2, 3 initial features: block 1's sources are channels [0-2 | 3-4 | 5-6];
    # transition1 compresses its 7 channels to 3, so block 2's are [0-2 | 3-4 | 5-6 | 7-8], 9 for the classifier.
    net = tiny()
    assert net.features.transition1.conv.weight.shape[:2] == (3, 7) and net.classifier.in_features == 9
    set_weights(net)
    first, second = feature_reuse(net)
    # Block 1, scale 11 (layer 1) and 12 (layer 2): source 0 = channels 1..3 -> mean 2; source 1 = 4, 5 -> 4.5.
    assert first.grid == ((11 * 2.0, 12 * 2.0), (None, 12 * 4.5), (None, None))
    # transition1 reads all 7: |w| = 1..7 -> sources mean 2, 4.5, 6.5.
    assert first.exit == "transition1" and first.exit_use == (2.0, 4.5, 6.5)
    # Block 2 (3 layers, scales 21, 22, 23): source 0 -> 2, source 1 (4, 5) -> 4.5, source 2 (6, 7) -> 6.5.
    assert second.grid == ((21 * 2.0, 22 * 2.0, 23 * 2.0), (None, 22 * 4.5, 23 * 4.5), (None, None, 23 * 6.5),
                           (None, None, None))
    # The classifier: |w| rows (1 2 3 4 5 6 7 8 9) twice: sources [1-3] 2, [4-5] 4.5, [6-7] 6.5, [8-9] 8.5.
    assert second.exit == "classifier" and second.exit_use == (2.0, 4.5, 6.5, 8.5)


def test_feature_reuse_reads_the_fused_network_too():
    """The engine keeps only the fused copy: norm2 folded into conv1 rescales its output rows, not its inputs."""
    net = randomize_batchnorm(tiny(), seed=1).eval()
    fused = net.fused_for_inference()
    plain, folded = feature_reuse(net), feature_reuse(fused)
    for a, b in zip(plain, folded):
        assert len(a.grid) == len(b.grid) and a.exit_use == pytest.approx(b.exit_use)
        assert [[v is None for v in row] for row in a.grid] == [[v is None for v in row] for row in b.grid]
    # With a unit norm2 (scale 1 / sqrt(1 + eps)), folding changes nothing beyond rounding.
    net = tiny().eval()
    for a, b in zip(feature_reuse(net), feature_reuse(net.fused_for_inference())):
        for row_a, row_b in zip(a.grid, b.grid):
            assert [v for v in row_a if v is not None] == pytest.approx([v for v in row_b if v is not None], rel=1e-4)
