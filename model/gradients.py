"""Gradients of the logits with respect to the taps, without autograd.

In eval mode a DenseNet is linear from any tap to the logits once the ReLU
masks of the forward pass are fixed (BN is an affine map, average pooling and
convolutions are linear).  So ``d logit_c / d tap`` is a fixed linear map
applied to the classifier's row ``W_c``, and this module applies it by hand:

* ``record`` runs the network once in inference mode and keeps what that map
  needs: the ReLU outputs the forward computes anyway (their sign is the
  mask), nothing else.  It runs the very operations of
  ``DenseNet.forward_with_taps``, so every number and every mask is the
  autograd path's.  In the fused network ``DenseNetClassifier`` runs, each
  BN-ReLU before a 1x1 convolution is a clamp (``model.fused_layers``) and a
  block writes into one buffer instead of concatenating: a clamp only selects
  values, so the numbers are those of the concatenating path autograd runs,
  and the clamp's margin ``sign(s) (c - t)`` gives the mask (in a dense block
  ``sign(s) (x - t)`` of the block's features ``x``, the same mask: the
  clamps themselves are not kept; where every scale is positive, simply
  ``x > t`` as 0/1, multiplied and accumulated in one pass).
* Closed form at the head: below ``norm5`` there is only global average
  pooling and the linear classifier, so ``d logit_c / d norm5 = W_c / (h w)`` at
  every position; through ``norm5``'s ReLU and BN it is that times the BN scale
  ``gamma / sqrt(var + eps)`` where the BN output is positive.  The gradients at
  ``norm5`` and at the last dense block cost no pass through any layer.
* ``tap_gradients`` carries the gradient further down, transposed layer by
  transposed layer (a 3x3 convolution's transpose is a convolution with the
  kernel flipped and the channel axes swapped; a 1x1 convolution's is a matrix
  product; BN scales fold into those weights), for several classes at once:
  the classes are the batch of the backward, the masks are shared.

``supports`` says whether a network has exactly the structure this assumes
(the fused copy ``DenseNetClassifier`` runs, or an unfused eval-mode DenseNet);
anything else goes through autograd (``model.explain``).  Everything here runs
in the network's memory format (channels_last) and works on ``(N, H, W, C)``
views of it, so a 1x1 convolution is a plain matrix product.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.densenet import DenseNet, _DenseBlock, _DenseLayer, _Transition
from model.fused_layers import ClampedBN, Pointwise

_threshold = torch.ops.aten.threshold_backward  # grad where the ReLU output is > 0, else 0 (autograd's own op)


def _threshold_into(grad: Tensor, out: Tensor) -> Tensor:
    """``_threshold(grad, out, 0)`` written over ``grad`` (a fresh tensor): no new memory to fault in."""
    return torch.ops.aten.threshold_backward.grad_input(grad, out, 0, grad_input=grad)


def _nhwc(t: Tensor) -> Tensor:
    """``(N, C, H, W)`` -> ``(N, H, W, C)``: a view, contiguous for a channels_last tensor."""
    return t.permute(0, 2, 3, 1)


def _nchw(t: Tensor) -> Tensor:
    return t.permute(0, 3, 1, 2)


def _eval_bn(m: nn.Module) -> bool:
    return isinstance(m, nn.BatchNorm2d) and not m.training and m.running_var is not None


def _plain_conv(m: nn.Module, kernel: int, padding: int) -> bool:
    if isinstance(m, Pointwise):
        return kernel == 1
    return (isinstance(m, nn.Conv2d) and m.kernel_size == (kernel, kernel) and m.stride == (1, 1)
            and m.padding == (padding, padding) and m.dilation == (1, 1) and m.groups == 1)


def _bn_relu(norm: nn.Module, relu: nn.Module) -> bool:
    """A BN-ReLU pair: eval-mode BN then ReLU, or its fused clamp (``model.fused_layers``)."""
    return ((_eval_bn(norm) and isinstance(relu, nn.ReLU))
            or (isinstance(norm, ClampedBN) and isinstance(relu, nn.Identity)))


def _supported_layer(layer: nn.Module) -> bool:
    return (isinstance(layer, _DenseLayer) and _bn_relu(layer.norm1, layer.relu1)
            and _plain_conv(layer.conv1, 1, 0) and (_eval_bn(layer.norm2) or isinstance(layer.norm2, nn.Identity))
            and isinstance(layer.relu2, nn.ReLU) and _plain_conv(layer.conv2, 3, 1) and layer.conv2.bias is None)


def _supported_transition(t: nn.Module) -> bool:
    names = list(t._modules)
    return (isinstance(t, _Transition) and names[:2] == ["norm", "relu"] and sorted(names[2:]) == ["conv", "pool"]
            and _bn_relu(t.norm, t.relu) and _plain_conv(t.conv, 1, 0)
            and (t.conv.bias is None or isinstance(t.norm, ClampedBN)) and isinstance(t.pool, nn.AvgPool2d))


def supports(model: nn.Module) -> bool:
    """True for an eval-mode DenseNet with the structure ``model.densenet`` builds (fused or not)."""
    if not isinstance(model, DenseNet) or model.training:
        return False
    f = model.features
    if not (_eval_bn(getattr(f, "norm5", None)) and isinstance(model.classifier, nn.Linear)):
        return False
    for name, module in f.named_children():
        if name.startswith("denseblock") and not (isinstance(module, _DenseBlock)
                                                  and all(_supported_layer(m) for m in module.values())):
            return False
        if name.startswith("transition") and not _supported_transition(module):
            return False
    return True


@dataclass
class Recording:
    """One recorded forward pass: logits, the requested taps, and the ReLU outputs the backward needs.

    ``saved`` maps each block and transition after ``start`` (the earliest
    tap) to its ReLU outputs (a dense block: ``(h1, h2)`` per layer; a
    transition: its ReLU output; where a fused network has a clamp instead of
    BN-ReLU, the clamp's margin, > 0 where gradients pass, takes the ReLU
    output's place: a transition keeps it, a dense block keeps its features
    and computes each layer's margins from them in the backward);
    ``norm5`` is the head's post-ReLU map.
    """

    logits: Tensor
    taps: dict[str, Tensor]
    start: str | None
    norm5: Tensor
    saved: dict[str, object] = field(default_factory=dict)
    plan: Plan | None = None  # the network checked and transposed once (else looked up by its weights)
    transposed: _Transposed | None = None  # the layers transposed, looked up once per recording


def _block_forward(block: _DenseBlock, x: Tensor, keep: bool) -> tuple[Tensor, tuple[Tensor | None, list]]:
    """``_DenseBlock.forward`` op for op (so every number equals the autograd path's), keeping the ReLU outputs.

    Kept: ``(features, [(h1, h2) per layer])``.  In a fused block ``h1`` is None: the clamp's mask comes from
    ``features``, the block's output (``ClampedBN.margin_rows``); in a plain block ``features`` is None.
    """
    if block.clamped:
        hidden: list = []
        out = block.forward_rows(x, hidden if keep else None)
        return out, (out, [(None, h2) for h2 in hidden])
    features, kept = [x], []
    for layer in block.values():
        h1 = layer.relu1(layer.norm1(torch.cat(features, 1)))
        h2 = layer.relu2(layer.norm2(layer.conv1(h1)))
        features.append(layer.conv2(h2))
        if keep:
            kept.append((h1, h2))
    return torch.cat(features, 1), (None, kept)


def _transition_forward(t: _Transition, x: Tensor, keep: bool) -> tuple[Tensor, Tensor | None]:
    relu_out = None
    for name, module in t.named_children():
        x = module(x)
        if name == "relu" and keep:  # the ReLU's output, or for a fused transition the clamp's margin
            relu_out = t.norm.margin(x) if isinstance(t.norm, ClampedBN) else x
    return x, relu_out


def record(model: DenseNet, x: Tensor, taps: Sequence[str], plan: Plan | None = None) -> Recording:
    """Run ``model`` on ``x`` (inference mode) keeping ``taps`` and the masks for gradients down to the earliest.

    ``plan``: ``model``'s ``Plan``, if the caller keeps one.
    """
    wanted = set(taps)
    order = model.tap_names
    unknown = wanted - set(order)
    if unknown:
        raise KeyError(f"unknown tap(s) {sorted(unknown)}; valid: {order}")
    start = next((n for n in order if n in wanted), None)
    captured: dict[str, Tensor] = {}
    saved: dict[str, object] = {}
    keep = False
    with torch.inference_mode():
        for name, module in model.features.named_children():
            if isinstance(module, _DenseBlock):
                x, kept = _block_forward(module, x, keep)
            elif isinstance(module, _Transition):
                x, kept = _transition_forward(module, x, keep)
            else:
                x, kept = module(x), None
            if name == "norm5":
                x = F.relu(x)
            if keep and kept is not None:
                saved[name] = kept
            if name in wanted:
                captured[name] = x
            keep = keep or name == start
        logits = model.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
    return Recording(logits, captured, start, x, saved, plan)


def _bn_scale(bn: nn.Module) -> Tensor | None:
    if not isinstance(bn, nn.BatchNorm2d):
        return None
    inv = torch.rsqrt(bn.running_var + bn.eps)
    return inv * bn.weight if bn.weight is not None else inv


def _input_scale(weight: Tensor, norm: nn.Module) -> Tensor:
    """A 1x1 weight ``(out, in)`` with the BN before it folded into its columns (a clamp's is folded already)."""
    return weight if isinstance(norm, ClampedBN) else weight * _bn_scale(norm)[None, :]


class _Transposed:
    """The network's layers transposed, BN scales folded in."""

    def __init__(self, model: DenseNet) -> None:
        f = model.features
        self.head = _bn_scale(f.norm5)
        self.blocks: dict[nn.Module, list[_Step]] = {}  # per dense block, its layers' steps, first to last
        self.transitions: dict[nn.Module, Tensor] = {}
        self.quartered: dict[nn.Module, Tensor] = {}  # the weight with a 2x2 pooling's 1/4 folded in
        with torch.inference_mode():
            for module in f.modules():
                if isinstance(module, _DenseBlock):
                    self.blocks[module] = [_step(layer) for layer in module.values()]
                elif isinstance(module, _Transition):
                    weight = _input_scale(module.conv.weight[:, :, 0, 0], module.norm)
                    self.transitions[module] = weight.contiguous()
                    pool = module.pool
                    if (_pair(pool.kernel_size) == [2, 2] and _pair(pool.stride or 2) == [2, 2]
                            and _pair(pool.padding) == [0, 0] and not pool.ceil_mode and pool.divisor_override is None):
                        self.quartered[module] = (weight * 0.25).contiguous()


class _Step(NamedTuple):
    """One dense layer's transpose: its 3x3 and 1x1 weights transposed, its input width, its clamp's mask."""

    w2: Tensor  # the 3x3 convolution's weight, transposed and flipped (channels_last)
    w1: Tensor  # the 1x1 convolution's (out, in) weight with the BNs around it folded in
    inputs: int
    clamp: ClampedBN | None  # a fused layer's clamp (its mask comes from the block's features)
    threshold: Tensor | None  # the clamp's thresholds ``t`` where every scale is positive (mask ``x > t``)


def _step(layer: _DenseLayer) -> _Step:
    w2 = layer.conv2.weight.transpose(0, 1).flip(2, 3)
    w1 = _input_scale(layer.conv1.weight[:, :, 0, 0], layer.norm1)
    s2 = _bn_scale(layer.norm2)
    if s2 is not None:
        w1 = w1 * s2[:, None]
    clamp = layer.norm1 if isinstance(layer.norm1, ClampedBN) else None
    threshold = clamp.t.view(-1) if clamp is not None and clamp.increasing else None
    return _Step(w2.contiguous(memory_format=torch.channels_last), w1.contiguous(), layer.conv1.in_channels, clamp,
                 threshold)


def _weights_key(model: DenseNet) -> tuple:
    tensors = [*model.parameters(), *model.buffers()]
    return tuple((t.device, t.dtype, t.data_ptr(), t._version) for t in tensors)


_TRANSPOSED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _transposed(model: DenseNet) -> _Transposed:
    """``model``'s layers transposed, rebuilt when its weights changed (a walk over every tensor to tell)."""
    key = _weights_key(model)
    cached = _TRANSPOSED.get(model)
    if cached is None or cached[0] != key:
        cached = _TRANSPOSED[model] = (key, _Transposed(model))
    return cached[1]


class Plan:
    """A network checked (``supports``) and transposed once, for a caller that keeps it as it is.

    ``DenseNetClassifier`` holds one per network and device: a recording made with the plan skips the
    check for changed weights (about 2 ms of walking DenseNet-121's modules, 5% of a prediction).
    """

    def __init__(self, model: DenseNet) -> None:
        self.model = model
        self.supported = supports(model)

    @cached_property
    def transposed(self) -> _Transposed:
        return _Transposed(self.model)


def _rows(t: Tensor, samples: Tensor | None) -> Tensor:
    """The recorded tensor for each gradient row: itself (broadcast) for one picture, else picked per row."""
    return t if samples is None else t.index_select(0, samples)


def tap_gradients(model: DenseNet, rec: Recording, layers: Sequence[str], classes: Sequence[int],
                  samples: Sequence[int] | None = None) -> dict[str, Tensor]:
    """``d logits[samples[r], classes[r]] / d tap`` for each tap in ``layers``: ``{layer: (R, C, h, w)}``.

    ``samples`` (default: every row is picture 0) says which recorded picture
    each row belongs to.  The backward runs once for all rows, from the head
    down to the earliest layer asked for; ``norm5`` and the last dense block
    need no pass through any layer.
    """
    wanted = set(layers)
    order = [name for name, _ in model.features.named_children()]
    head = order.index("norm5")
    earliest = min(order.index(name) for name in wanted)
    if earliest < order.index(rec.start):
        raise ValueError(f"the recording reaches down to {rec.start}, not to {order[earliest]}")
    index = None
    if rec.norm5.shape[0] > 1:
        if samples is None or len(samples) != len(classes):
            raise ValueError("a recording of several pictures needs the picture of every row (samples)")
        index = torch.as_tensor(list(samples), device=rec.norm5.device)
    if rec.transposed is None:
        rec.transposed = rec.plan.transposed if rec.plan is not None else _transposed(model)
    tr = rec.transposed
    out: dict[str, Tensor] = {}
    with torch.inference_mode():
        weight = model.classifier.weight[torch.as_tensor(list(classes), device=rec.norm5.device)]  # (R, C)
        rows, channels = weight.shape
        _, _, h, w = rec.norm5.shape
        if "norm5" in wanted:
            out["norm5"] = (weight / (h * w))[:, :, None, None].expand(rows, channels, h, w)
        grad = _threshold((weight * tr.head / (h * w))[:, None, None, :].expand(rows, h, w, channels),
                          _nhwc(_rows(rec.norm5, index)), 0)  # (R, h, w, C) at the last block's output
        for position in range(head - 1, earliest - 1, -1):
            name = order[position]
            module = getattr(model.features, name)
            keep = name in wanted
            if position == earliest:
                out[name] = _nchw(grad)
                break
            if isinstance(module, _DenseBlock):
                grad = _block_backward(module, grad, rec.saved[name], tr, index, keep)
                if keep:
                    grad, out[name] = grad
            elif isinstance(module, _Transition):
                if keep:
                    out[name] = _nchw(grad)
                grad = _transition_backward(module, grad, rec.saved[name], tr, index)
            else:  # nothing but blocks and transitions lies between two taps
                raise ValueError(f"cannot differentiate through {name}")
    return out


def _block_backward(block: _DenseBlock, grad: Tensor, saved: tuple[Tensor | None, list], tr: _Transposed,
                    index: Tensor | None, keep: bool):
    """Gradient at the block's input from the gradient at its output ``(R, H, W, C_out)``."""
    steps = tr.blocks[block]
    features, kept = saved
    rows, height, width, _ = grad.shape
    pixels = rows * height * width
    c0, widest = steps[0].inputs, steps[-1].inputs
    k = grad.shape[-1] - widest  # the growth rate: the last layer's new channels
    total = grad.contiguous()
    if keep:
        output_grad = _nchw(total)
        total = total.clone()
    products = total.new_empty(pixels * widest)  # one scratch for every layer's 1x1 product
    if features is not None:  # one scratch for the clamps' masks, recomputed from the block's features
        features = _nhwc(features)
        scratch = features.new_empty(features.shape[0] * height * width * widest)
    for step, (h1, h2) in zip(reversed(steps), reversed(kept)):
        cin = step.inputs
        new = _nchw(total[..., cin:cin + k]).contiguous(memory_format=torch.channels_last)
        g2 = _threshold_into(_nhwc(F.conv2d(new, step.w2, padding=1)), _nhwc(_rows(h2, index)))
        g1 = torch.mm(g2.view(pixels, -1), step.w1, out=products[:pixels * cin].view(pixels, cin))
        g1 = g1.view(rows, height, width, cin)
        if h1 is None:
            inputs = features[..., :cin]
            out = scratch[:inputs.numel()].view(-1, height, width, cin)
            if step.threshold is not None:  # a 0/1 mask, x > t, multiplied and accumulated in one pass
                total[..., :cin].addcmul_(g1, _rows(torch.gt(inputs, step.threshold, out=out), index))
                continue
            mask = step.clamp.margin_rows(inputs, out=out)
        else:
            mask = _nhwc(h1)
        total[..., :cin] += _threshold_into(g1, _rows(mask, index))
    result = total[..., :c0]
    return (result, output_grad) if keep else result


def _transition_backward(t: _Transition, grad: Tensor, relu_out: Tensor, tr: _Transposed,
                         index: Tensor | None) -> Tensor:
    """Gradient at the transition's input from the gradient at its output ``(R, h, w, C_out)``.

    The 1x1 convolution and the pooling are both linear, so their transposes
    apply in either order: the convolution first, on the pooled grid.  A 2x2
    pooling of even-sized maps is transposed by broadcasting each cell over its
    four pixels (its 1/4 folded into the weight) inside the ReLU mask, one pass.
    """
    rows, height, width, c_out = grad.shape
    relu_out = _nhwc(_rows(relu_out, index))
    n, full_h, full_w, c_in = relu_out.shape
    pool = t.pool
    if t in tr.quartered and (full_h, full_w) == (2 * height, 2 * width):
        pooled = (grad.reshape(-1, c_out) @ tr.quartered[t]).view(rows, height, 1, width, 1, c_in)
        spread = pooled.expand(rows, height, 2, width, 2, c_in)
        return _threshold(spread, relu_out.reshape(n, height, 2, width, 2, c_in), 0).view(rows, full_h, full_w, c_in)
    pooled = (grad.reshape(-1, c_out) @ tr.transitions[t]).view(rows, height, width, c_in)
    unpooled = torch.ops.aten.avg_pool2d_backward(
        _nchw(pooled), _nchw(relu_out).expand(rows, -1, -1, -1), _pair(pool.kernel_size),
        _pair(pool.stride or pool.kernel_size), _pair(pool.padding), pool.ceil_mode, pool.count_include_pad,
        pool.divisor_override)
    return _threshold(_nhwc(unpooled), relu_out, 0)


def _pair(v) -> list[int]:
    return [v, v] if isinstance(v, int) else list(v)
