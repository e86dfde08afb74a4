"""The architecture report behind ``main.py info`` and the GUI's "Explore DenseNet" view.

``describe`` needs only the shape of a network (its config); ``feature_reuse`` reads its weights: the
DenseNet paper's figure of average absolute filter weights, which shows how much each layer of a dense
block uses the features of every earlier layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

from model.densenet import DenseNet, DenseNetConfig
from model.fused_layers import ClampedBN


def direct_connections(num_layers: int) -> int:
    """Direct connections inside a dense block of L layers: L(L+1)/2."""
    return num_layers * (num_layers + 1) // 2


def plain_chain_parameters(widths: Sequence[int]) -> int:
    """Parameters of a plain CNN through ``widths``: BN-ReLU-Conv3x3 from each width to the next, no concatenation.

    A dense block holding ``k0, k0+k, ..., k0+Lk`` channels after each layer only *computes* k new channels
    per layer and reuses the rest; a plain chain of convolutions with the same widths has to compute every
    channel of every width itself (the comparison of the DenseNet paper).
    """
    return sum(2 * c_in + 9 * c_in * c_out for c_in, c_out in zip(widths, widths[1:]))


def source_channels(in_channels: int, growth_rate: int, source: int) -> tuple[int, int]:
    """Channel range ``[start, stop)`` that ``source`` occupies in a dense block's concatenation.

    Source 0 is the block's input (``in_channels`` channels); source ``s >= 1`` is layer s's k new channels.
    """
    if source == 0:
        return 0, in_channels
    start = in_channels + (source - 1) * growth_rate
    return start, start + growth_rate


@dataclass(frozen=True)
class StageReport:
    name: str
    kind: str  # "stem", "denseblock", "transition", "head"
    in_channels: int
    out_channels: int
    height: int
    width: int
    parameters: int
    layers: int = 0
    growth_rate: int = 0
    connections: int = 0
    plain_parameters: int = 0  # dense blocks: a plain CNN of the same widths (plain_chain_parameters)

    @property
    def channel_growth(self) -> list[int]:
        """Channels a dense block holds after each layer: k0 + l*k."""
        return [self.in_channels + i * self.growth_rate for i in range(self.layers + 1)]


@dataclass(frozen=True)
class ArchitectureReport:
    growth_rate: int
    block_config: tuple[int, ...]
    num_init_features: int
    bn_size: int
    compression: float
    num_classes: int
    stem: str
    input_size: tuple[int, int]
    parameters: int
    stages: tuple[StageReport, ...]

    def to_dict(self) -> dict:
        d = asdict(self)
        for stage, out in zip(self.stages, d["stages"]):
            if stage.kind == "denseblock":
                out["channel_growth"] = stage.channel_growth
        return d

    def to_text(self) -> str:
        h, w = self.input_size
        lines = [
            f"DenseNet-BC  k={self.growth_rate}  blocks={list(self.block_config)}  "
            f"init features={self.num_init_features}  bn_size={self.bn_size}  "
            f"compression={self.compression}  classes={self.num_classes}  stem={self.stem}",
            f"parameters: {self.parameters:,}   input: {w}x{h}",
            "",
            f"{'stage':<12} {'in':>6} {'out':>6} {'map':>9} {'layers':>6} {'links':>6} {'params':>12}",
        ]
        for s in self.stages:
            fmap = f"{s.width}x{s.height}"
            layers = str(s.layers) if s.layers else ""
            links = str(s.connections) if s.connections else ""
            lines.append(f"{s.name:<12} {s.in_channels:>6} {s.out_channels:>6} {fmap:>9} "
                         f"{layers:>6} {links:>6} {s.parameters:>12,}")
        return "\n".join(lines)


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def describe(model: DenseNet | DenseNetConfig, input_size: tuple[int, int] = (224, 224)) -> ArchitectureReport:
    """Per-stage channels, feature-map sizes, parameters and dense connections.

    Given a config, the network is built on the meta device (no memory, no
    initialisation), so describing DenseNet-161 is instant.
    """
    if isinstance(model, DenseNetConfig):
        with torch.device("meta"):
            model = DenseNet(model)
    cfg = model.config
    h, w = input_size
    stages: list[StageReport] = []
    f = model.features
    if cfg.stem == "imagenet":
        stem_out = ((h + 6 - 7) // 2 + 1, (w + 6 - 7) // 2 + 1)
        stem_out = ((stem_out[0] - 1) // 2 + 1, (stem_out[1] - 1) // 2 + 1)
        stem_params = sum(_params(getattr(f, n)) for n in ("conv0", "norm0"))
    else:
        stem_out, stem_params = (h, w), _params(f.conv0)
    h, w = stem_out
    stages.append(StageReport("stem", "stem", 3, cfg.num_init_features, h, w, stem_params))
    for i, (layers, (c_in, c_out)) in enumerate(zip(cfg.block_config, cfg.block_channels())):
        block = getattr(f, f"denseblock{i + 1}")
        widths = [c_in + j * cfg.growth_rate for j in range(layers + 1)]
        stages.append(StageReport(f"denseblock{i + 1}", "denseblock", c_in, c_out, h, w,
                                  _params(block), layers, cfg.growth_rate,
                                  direct_connections(layers), plain_chain_parameters(widths)))
        if hasattr(f, f"transition{i + 1}"):
            t = getattr(f, f"transition{i + 1}")
            h, w = h // 2, w // 2
            stages.append(StageReport(f"transition{i + 1}", "transition", c_out,
                                      t.conv.out_channels, h, w, _params(t)))
    stages.append(StageReport("norm5", "head", cfg.num_features, cfg.num_features, h, w,
                              _params(f.norm5)))
    stages.append(StageReport("classifier", "head", cfg.num_features, cfg.num_classes, 1, 1,
                              _params(model.classifier)))
    return ArchitectureReport(cfg.growth_rate, cfg.block_config, cfg.num_init_features,
                              cfg.bn_size, cfg.compression, cfg.num_classes, cfg.stem,
                              tuple(input_size), _params(model), tuple(stages))


@dataclass(frozen=True)
class BlockReuse:
    """How much each consumer of one dense block weighs each source of it (mean absolute weight).

    ``grid[s][l - 1]`` is the mean |weight| that layer l's first (1x1) convolution gives to the channels of
    source s (0: the block input, s >= 1: layer s); ``None`` where s >= l (layer l cannot see source s).
    ``exit_use[s]`` is the same for the block's consumer: the next transition's convolution, or the
    classifier after the last block (``exit``).
    """

    block: str
    exit: str
    in_channels: int
    growth_rate: int
    grid: tuple[tuple[float | None, ...], ...]  # (L + 1) sources x L target layers
    exit_use: tuple[float, ...]  # L + 1 sources

    @property
    def layers(self) -> int:
        return len(self.grid) - 1

    def to_dict(self) -> dict:
        d = asdict(self)
        d["grid"] = [list(row) for row in self.grid]
        d["exit_use"] = list(self.exit_use)
        return d


def _per_input_channel(weight: torch.Tensor) -> list[float]:
    """Mean |weight| of each input channel (dimension 1) of a convolution or linear weight."""
    w = weight.detach().abs()
    dims = [d for d in range(w.dim()) if d != 1]
    return w.float().mean(dim=dims).cpu().tolist()


def _source_means(per_channel: list[float], in_channels: int, growth_rate: int, sources: int) -> list[float]:
    means = []
    for s in range(sources):
        start, stop = source_channels(in_channels, growth_rate, s)
        means.append(sum(per_channel[start:stop]) / (stop - start))
    return means


def _unfolded(weight, norm):
    """A 1x1 weight as trained: the fused network folds its BN-ReLU's scale into the columns."""
    return norm.unfold(weight) if isinstance(norm, ClampedBN) else weight


def feature_reuse(model: DenseNet) -> tuple[BlockReuse, ...]:
    """The feature-reuse grid of every dense block of ``model``, from its weights.

    Only the input-channel axis of each first convolution matters here, so a network whose dense layers
    have ``norm2`` folded into ``conv1`` (``DenseNet.fused_for_inference``) gives each target layer the same
    pattern over its sources (its output rows are rescaled; the BN scales folded into its input columns are
    divided out again).
    """
    cfg = model.config
    f = model.features
    result = []
    for i, (layers, (c_in, _)) in enumerate(zip(cfg.block_config, cfg.block_channels())):
        block = getattr(f, f"denseblock{i + 1}")
        k = cfg.growth_rate
        grid: list[list[float | None]] = [[None] * layers for _ in range(layers + 1)]
        for l_index, layer in enumerate(block.values()):
            means = _source_means(_per_input_channel(_unfolded(layer.conv1.weight, layer.norm1)), c_in, k,
                                  l_index + 1)
            for s, value in enumerate(means):
                grid[s][l_index] = value
        if hasattr(f, f"transition{i + 1}"):
            transition = getattr(f, f"transition{i + 1}")
            exit_name, exit_weight = f"transition{i + 1}", _unfolded(transition.conv.weight, transition.norm)
        else:
            exit_name, exit_weight = "classifier", model.classifier.weight
        exit_use = _source_means(_per_input_channel(exit_weight), c_in, k, layers + 1)
        result.append(BlockReuse(f"denseblock{i + 1}", exit_name, c_in, k,
                                 tuple(tuple(row) for row in grid), tuple(exit_use)))
    return tuple(result)
