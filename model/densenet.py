"""DenseNet (Huang et al., CVPR 2017), written from scratch.

The module tree mirrors torchvision's so that its ``state_dict`` keys are
identical (``features.denseblock1.denselayer1.norm1.weight``,
``features.transition1.conv.weight``, ``features.norm5.*``, ``classifier.*``)
and every torchvision DenseNet checkpoint loads with ``strict=True``.

Named taps
----------
``DenseNet.forward_with_taps(x, taps)`` returns the logits and the feature
maps named in ``taps`` without module hooks.  What each tap holds:

* ``denseblockN``: the block's output, i.e. the concatenation of the block
  input and every layer's new features (before the next transition's BN).
* ``transitionN``: the transition's output after BN-ReLU-Conv1x1 and 2x2
  average pooling (the next block's input).
* ``norm5``: the final feature map that global average pooling sees, i.e.
  BN *followed by ReLU*.  Unlike torchvision, no in-place operation ever
  touches a tapped tensor (in-place ReLUs act only on fresh BN outputs inside
  a layer), so a tap is never rewritten after it was handed out.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import Tensor, nn

from model.fused_layers import ClampedBN, Pointwise
from model.zoo import MODELS, Architecture


@dataclass(frozen=True)
class DenseNetConfig:
    """Everything that determines a DenseNet's shape."""

    growth_rate: int = 32
    block_config: tuple[int, ...] = (6, 12, 24, 16)
    num_init_features: int = 64
    bn_size: int = 4
    compression: float = 0.5
    drop_rate: float = 0.0
    num_classes: int = 1000
    stem: str = "imagenet"  # "imagenet": conv7x7/2 + maxpool; "small": conv3x3/1

    def __post_init__(self) -> None:
        if self.stem not in ("imagenet", "small"):
            raise ValueError(f"stem must be 'imagenet' or 'small', not {self.stem!r}")
        if not self.block_config or min(self.block_config) < 1:
            raise ValueError("every dense block needs at least one layer")
        if not 0.0 < self.compression <= 1.0:
            raise ValueError("compression must be in (0, 1]")

    def block_channels(self) -> list[tuple[int, int]]:
        """(input channels, output channels) of each dense block."""
        channels = self.num_init_features
        result = []
        for i, layers in enumerate(self.block_config):
            out = channels + layers * self.growth_rate
            result.append((channels, out))
            channels = out if i == len(self.block_config) - 1 else int(out * self.compression)
        return result

    @property
    def num_features(self) -> int:
        """Channels of the final feature map (the classifier's input)."""
        return self.block_channels()[-1][1]


class _DenseLayer(nn.Module):
    """BN-ReLU-Conv1x1 bottleneck to ``bn_size * k`` channels, then BN-ReLU-Conv3x3 to ``k``."""

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int, drop_rate: float,
                 memory_efficient: bool) -> None:
        super().__init__()
        inter = bn_size * growth_rate
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)  # on fresh BN outputs only, never on a tap
        self.conv1 = nn.Conv2d(in_channels, inter, kernel_size=1, bias=False)
        self.norm2 = nn.BatchNorm2d(inter)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(inter, growth_rate, kernel_size=3, padding=1, bias=False)
        self.drop_rate = drop_rate
        self.memory_efficient = memory_efficient

    def bottleneck(self, *inputs: Tensor) -> Tensor:
        return self.conv1(self.relu1(self.norm1(torch.cat(inputs, 1))))

    def fold_norm2(self) -> None:
        """Fold ``norm2`` into ``conv1`` (inference only: BN in eval mode is affine)."""
        self.conv1 = _fold_bn(self.conv1, self.norm2)
        self.norm2 = nn.Identity()

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        if self.memory_efficient and self.training and any(t.requires_grad for t in features):
            # Recompute concatenation + BN + ReLU + conv1 in backward instead of
            # storing them (Pleiss et al. 2017): memory grows linearly with depth.
            out = cp.checkpoint(self.bottleneck, *features, use_reentrant=False)
        else:
            out = self.bottleneck(*features)
        out = self.conv2(self.relu2(self.norm2(out)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return out


class _DenseBlock(nn.ModuleDict):
    """Each layer sees the concatenation of the block input and all earlier outputs."""

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int, bn_size: int,
                 drop_rate: float, memory_efficient: bool) -> None:
        super().__init__()
        for i in range(num_layers):
            self[f"denselayer{i + 1}"] = _DenseLayer(
                in_channels + i * growth_rate, growth_rate, bn_size, drop_rate, memory_efficient
            )

    def forward(self, x: Tensor) -> Tensor:
        if self.clamped and not (torch.is_grad_enabled() and x.requires_grad):
            return self.forward_rows(x)
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)

    @property
    def clamped(self) -> bool:
        """True once ``DenseNet.fused_for_inference`` made every BN-ReLU before a 1x1 convolution a clamp
        (``model.fused_layers``) and folded every other BN into its convolution."""
        return all(isinstance(layer.norm1, ClampedBN) and isinstance(layer.conv1, Pointwise)
                   and isinstance(layer.norm2, nn.Identity) and isinstance(layer.relu2, nn.ReLU)
                   for layer in self.values())

    def forward_rows(self, x: Tensor, keep: list | None = None) -> Tensor:
        """The fused block without concatenating: every layer writes its new channels into one buffer and
        clamps the channels before them as rows of a matrix (the same numbers as ``forward``; no gradient).

        The clamps go into one scratch buffer the layers share.  ``keep`` receives each layer's ReLU output
        after ``conv1``; a clamp's mask needs nothing kept, it comes from the returned features
        (``ClampedBN.margin_rows``, the masks ``model.gradients`` needs).
        """
        n, c0, h, w = x.shape
        m = n * h * w
        layers = list(self.values())
        total = layers[-1].conv1.in_channels + layers[-1].conv2.out_channels
        buffer = x.new_empty((n, h, w, total))
        rows = buffer.view(m, total)
        rows[:, :c0].view(n, h, w, c0).copy_(x.permute(0, 2, 3, 1))
        scratch = x.new_empty(m * layers[-1].conv1.in_channels)
        channels = c0
        # Direct calls where a layer's modules are known (norm2 folded, relu2 a ReLU, conv2 a plain
        # convolution): a module call and an indexed assignment each cost more than the small maps' kernels.
        for layer in layers:
            clamped = layer.norm1.rows(rows[:, :channels], out=scratch[:m * channels].view(m, channels))
            hidden = torch.relu_(layer.conv1.from_rows(clamped, n, h, w))
            conv = layer.conv2
            new = F.conv2d(hidden, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)
            if keep is not None:
                keep.append(hidden)
            k = new.shape[1]
            rows[:, channels:channels + k].view(n, h, w, k).copy_(new.permute(0, 2, 3, 1))
            channels += k
        return buffer.permute(0, 3, 1, 2)


class _Transition(nn.Sequential):
    """BN-ReLU-Conv1x1 (compression) then 2x2 average pooling."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


def _fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A convolution with bias equal to ``bn(conv(x))`` for a BN in eval mode."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                      conv.padding, bias=True).to(conv.weight.device)
    with torch.no_grad():
        fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        fused.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
    return fused


class DenseNet(nn.Module):
    """A configurable DenseNet-BC with torchvision's parameter names."""

    def __init__(self, config: DenseNetConfig | None = None, memory_efficient: bool = False) -> None:
        super().__init__()
        self.config = config = config or DenseNetConfig()
        k0 = config.num_init_features
        self.features = nn.Sequential()
        if config.stem == "imagenet":
            self.features.add_module("conv0", nn.Conv2d(3, k0, 7, stride=2, padding=3, bias=False))
            self.features.add_module("norm0", nn.BatchNorm2d(k0))
            self.features.add_module("relu0", nn.ReLU(inplace=True))
            self.features.add_module("pool0", nn.MaxPool2d(3, stride=2, padding=1))
        else:
            self.features.add_module("conv0", nn.Conv2d(3, k0, 3, padding=1, bias=False))
        last = len(config.block_config) - 1
        for i, (num_layers, (c_in, c_out)) in enumerate(zip(config.block_config, config.block_channels())):
            self.features.add_module(
                f"denseblock{i + 1}",
                _DenseBlock(num_layers, c_in, config.growth_rate, config.bn_size,
                            config.drop_rate, memory_efficient),
            )
            if i != last:
                self.features.add_module(
                    f"transition{i + 1}", _Transition(c_out, int(c_out * config.compression))
                )
        self.features.add_module("norm5", nn.BatchNorm2d(config.num_features))
        self.classifier = nn.Linear(config.num_features, config.num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.constant_(m.bias, 0)

    @property
    def tap_names(self) -> list[str]:
        """Every feature map a heatmap can use, in forward order."""
        return [n for n, _ in self.features.named_children()
                if n.startswith(("denseblock", "transition"))] + ["norm5"]

    def fused_for_inference(self) -> DenseNet:
        """An equivalent, faster copy for eval mode; this network is left untouched.

        The copy folds each BN that directly follows a convolution into it
        (``norm0``, every dense layer's ``norm2``), turns each BN-ReLU before a
        1x1 convolution into one clamp with its affine part folded into that
        convolution (``model.fused_layers``; a dense block then needs no
        concatenation per layer), and pools before the transition's 1x1
        convolution (both are linear, so the order does not change the result
        but the convolution runs on a quarter of the pixels).  Its outputs and
        every tap equal this network's up to float rounding; its
        ``state_dict`` is not torchvision's, so it is for inference only (its
        parameters do not require grad).
        """
        fused = copy.deepcopy(self).eval()
        f = fused.features
        if fused.config.stem == "imagenet" and isinstance(f.norm0, nn.BatchNorm2d):
            f.conv0 = _fold_bn(f.conv0, f.norm0)
            f.norm0 = nn.Identity()
            # max pooling then ReLU: the same numbers (both keep order), the ReLU on a quarter of the pixels
            order = list(f._modules)
            i = order.index("relu0")
            order[i:i + 2] = ["pool0", "relu0"]
            fused.features = f = nn.Sequential(OrderedDict((name, f._modules[name]) for name in order))
        for m in fused.modules():
            if isinstance(m, _DenseLayer) and isinstance(m.norm2, nn.BatchNorm2d):
                m.fold_norm2()
            if isinstance(m, _DenseLayer) and isinstance(m.norm1, nn.BatchNorm2d):
                m.norm1 = ClampedBN(m.norm1)
                m.relu1 = nn.Identity()
                m.conv1 = m.norm1.fold(m.conv1)
            elif isinstance(m, _Transition) and list(m._modules) == ["norm", "relu", "conv", "pool"]:
                conv = m._modules.pop("conv")
                m.norm = ClampedBN(m.norm)
                m.relu = nn.Identity()
                m.add_module("conv", m.norm.fold(conv))  # now clamp, pool, conv
        for p in fused.parameters():
            p.requires_grad_(False)
        return fused

    def forward_with_taps(self, x: Tensor, taps: Sequence[str] = (),
                          grad_taps: bool = False) -> tuple[Tensor, dict[str, Tensor]]:
        """Run the network and return ``(logits, {tap: feature map})``.

        With ``grad_taps`` the earliest requested tap is cut from the graph
        and made a leaf that requires grad, so autograd can differentiate the
        logits with respect to every requested tap and nothing earlier: no
        gradient flows into parameters or the input.
        """
        wanted = set(taps)
        unknown = wanted - set(self.tap_names)
        if unknown:
            raise KeyError(f"unknown tap(s) {sorted(unknown)}; valid: {self.tap_names}")
        captured: dict[str, Tensor] = {}

        def capture(name: str, t: Tensor) -> Tensor:
            if name in wanted:
                if grad_taps and not captured:
                    t = t.detach().requires_grad_(True)
                captured[name] = t
            return t

        for name, module in self.features.named_children():
            x = module(x)
            if name == "norm5":
                x = F.relu(x)
            x = capture(name, x)
        logits = self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
        return logits, captured

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_taps(x)[0]

    def pooled_features(self, x: Tensor) -> Tensor:
        """What the classifier sees: ``norm5``'s ReLU output, globally average-pooled (N, features)."""
        return torch.flatten(F.adaptive_avg_pool2d(F.relu(self.features(x)), 1), 1)


def densenet(growth_rate: int = 32, block_config: Sequence[int] = (6, 12, 24, 16),
             num_init_features: int = 64, bn_size: int = 4, compression: float = 0.5,
             drop_rate: float = 0.0, num_classes: int = 1000, stem: str = "imagenet",
             memory_efficient: bool = False) -> DenseNet:
    """General DenseNet-BC constructor (e.g. L=100, k=12: ``densenet(12, (16, 16, 16), 24, stem="small")``)."""
    config = DenseNetConfig(growth_rate, tuple(block_config), num_init_features, bn_size,
                            compression, drop_rate, num_classes, stem)
    return DenseNet(config, memory_efficient)


def _factory(arch: Architecture):
    def build(num_classes: int = 1000, **kw) -> DenseNet:
        return densenet(arch.growth_rate, arch.block_config, arch.num_init_features, num_classes=num_classes, **kw)
    return build


# One factory per registered architecture (model.zoo): densenet121, densenet161, densenet169, densenet201.
FACTORIES = {name: _factory(e.architecture) for name, e in MODELS.items() if e.architecture is not None}
densenet121 = FACTORIES["densenet121"]
densenet161 = FACTORIES["densenet161"]
densenet169 = FACTORIES["densenet169"]
densenet201 = FACTORIES["densenet201"]
