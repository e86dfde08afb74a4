"""The architecture report behind ``main.py info`` and the GUI's "Explore DenseNet" view."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from model.densenet import DenseNet, DenseNetConfig


def direct_connections(num_layers: int) -> int:
    """Direct connections inside a dense block of L layers: L(L+1)/2."""
    return num_layers * (num_layers + 1) // 2


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
        stages.append(StageReport(f"denseblock{i + 1}", "denseblock", c_in, c_out, h, w,
                                  _params(block), layers, cfg.growth_rate,
                                  direct_connections(layers)))
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
