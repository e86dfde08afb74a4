"""BN followed by ReLU, for inference, as one clamp whose affine rest folds into the next convolution.

In eval mode a BN is the per-channel affine map ``s x + b`` with ``s = gamma / sqrt(var + eps)`` and
``b = beta - s * mean``, and per channel

    relu(s x + b) = s * clamp(x, t) + b,    t = -b / s,

where ``clamp(x, t)`` is ``max(x, t)`` for ``s > 0`` and ``min(x, t)`` for ``s < 0`` (for ``s = 0`` the
output is the constant ``relu(b)``: the clamp to ``[0, 0]`` then gives ``s * 0 + relu(b)``).  A DenseNet
always follows this BN-ReLU with a 1x1 convolution (or, in a transition, a 2x2 average pooling and then a
1x1 convolution, which commute with the affine map), so ``W relu(s x + b) = (W diag(s)) clamp(x, t) + W b``:
the convolution takes ``W diag(s)`` and the bias ``W b``, and the elementwise work is one clamp, one pass
over memory instead of BN's and ReLU's two.  A clamp only selects values (no rounding), so clamping a
block's features in place of a concatenated copy gives the very same numbers.

Gradients pass where the clamp is not active, ``c != t`` for the output ``c`` (``ClampFunction``): the same
rule the hand-written backward in ``model.gradients`` applies (through ``ClampedBN.margin``), so both agree
bit for bit.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CONVOLUTION_PIXELS = 1024  # a map of more pixels runs its 1x1 convolutions as oneDNN convolutions
DEPTH = 512  # the most inputs one matrix product of ``Pointwise`` sums (see ``_chunked_product``)

_ONE_PRODUCT = contextvars.ContextVar("one_product_per_batch", default=False)


@contextlib.contextmanager
def one_product_per_batch() -> Iterator[None]:
    """Within (this thread): a batch's 1x1 convolutions on small maps are one matrix product over all its rows.

    Faster for the batches of masked pictures Score-CAM scores (0.73 of the time of Score-CAM (fast) on
    DenseNet-121), but a picture's numbers then depend on its batch (the product sums in another order),
    which only passes whose pictures are never compared with a single pass may accept.
    """
    token = _ONE_PRODUCT.set(True)
    try:
        yield
    finally:
        _ONE_PRODUCT.reset(token)


class ClampFunction(torch.autograd.Function):
    """``clamp(x, lo, hi)`` whose gradient passes where the output differs from the threshold ``t``."""

    @staticmethod
    def forward(ctx, x: Tensor, lo: Tensor, hi: Tensor, t: Tensor) -> Tensor:
        out = torch.clamp(x, lo, hi)
        ctx.save_for_backward(out, t)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        out, t = ctx.saved_tensors
        return grad.masked_fill(out == t, 0), None, None, None


class ClampedBN(nn.Module):
    """``relu(bn(x))`` less its affine part ``s``, ``b`` (folded into the next convolution by ``fold``)."""

    def __init__(self, bn: nn.BatchNorm2d) -> None:
        super().__init__()
        with torch.no_grad():
            s = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).double()
            b = bn.bias.double() - s * bn.running_mean.double()
            zero = s == 0
            t = torch.where(zero, torch.zeros_like(b), -b / torch.where(zero, torch.ones_like(s), s))
            inf = torch.full_like(t, float("inf"))
            lo = torch.where(zero, 0.0, torch.where(s > 0, t, -inf))
            hi = torch.where(zero, 0.0, torch.where(s < 0, t, inf))
            dtype = bn.weight.dtype
            shape = (-1, 1, 1)  # broadcast over (N, C, H, W)
            self.register_buffer("lo", lo.to(dtype).view(shape))
            self.register_buffer("hi", hi.to(dtype).view(shape))
            self.register_buffer("t", torch.where(zero, 0.0, t).to(dtype).view(shape))
            sign = torch.sign(s)
            self.register_buffer("sign", sign.to(dtype).view(shape))
            self.register_buffer("neg_sign_t", (-sign * torch.where(zero, 0.0, t)).to(dtype).view(shape))
            self.register_buffer("scale", s.to(dtype))
            self.register_buffer("shift", torch.where(zero, b.clamp_min(0), b).to(dtype))
            self.increasing = bool((s > 0).all())  # every channel passes gradients where x > t

    def forward(self, x: Tensor) -> Tensor:
        """``clamp(x, lo, hi)``; where every scale is positive ``max(x, lo)`` (the same numbers; ``hi`` is
        +inf), which PyTorch runs 1.5x as fast in float32 and 2x in bfloat16 as a clamp between two tensors."""
        if torch.is_grad_enabled() and x.requires_grad:
            return ClampFunction.apply(x, self.lo, self.hi, self.t)
        lo, hi = self._bounds(x.dtype)
        if self.increasing:
            return torch.clamp_min(x, lo)
        return torch.clamp(x, lo, hi)

    def _bounds(self, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """``lo``, ``hi`` in ``dtype`` (a bfloat16 input stays bfloat16 instead of promoting)."""
        if dtype == self.lo.dtype:
            return self.lo, self.hi
        return self.lo.to(dtype), self.hi.to(dtype)

    def margin(self, out: Tensor) -> Tensor:
        """``sign(s) (out - t)`` for a clamp output ``out``: > 0 exactly where gradients pass, else 0.

        (``sign(s)`` is +-1 or 0, so the product is exact, and a float difference is 0 only for equal
        numbers.)  It plays a ReLU output's part in ``model.gradients``, whose masks are
        ``threshold_backward(grad, margin, 0)``.
        """
        return torch.addcmul(self.neg_sign_t, out, self.sign)

    def rows(self, x: Tensor, out: Tensor) -> Tensor:
        """The clamp of an ``(M, C)`` matrix (a block's features as rows; no gradient), into ``out``."""
        lo, hi = self._bounds(x.dtype)
        if self.increasing:
            return torch.clamp_min(x, lo.view(-1), out=out)
        return torch.clamp(x, lo.view(-1), hi.view(-1), out=out)

    def margin_rows(self, x: Tensor, out: Tensor | None = None) -> Tensor:
        """``sign(s) (x - t)`` for inputs ``x`` with channels last: > 0 exactly where ``margin`` of their clamp is.

        (For ``s > 0`` both are > 0 iff ``x > t``, for ``s < 0`` iff ``x < t``, for ``s = 0`` never.)  So the
        mask of a block's clamp comes from the block's features, and the clamp itself need not be kept.
        """
        return torch.addcmul(self.neg_sign_t.view(-1), x, self.sign.view(-1), out=out)

    def fold(self, conv: nn.Conv2d) -> Pointwise:
        """``conv`` applied after this clamp: ``(W diag(s)) c + W b + bias`` for a 1x1 ``conv``."""
        w = conv.weight.detach().double()
        bias = w[:, :, 0, 0] @ self.shift.double()
        if conv.bias is not None:
            bias = bias + conv.bias.double()
        dtype = conv.weight.dtype
        return Pointwise((w * self.scale.double().view(1, -1, 1, 1)).to(dtype), bias.to(dtype))

    def unfold(self, weight: Tensor) -> Tensor:
        """A folded 1x1 weight's ``W`` again (columns of channels with ``s = 0`` come back as 0)."""
        s = self.scale.view(1, -1, *([1] * (weight.dim() - 2)))
        return torch.where(s == 0, torch.zeros_like(weight), weight / torch.where(s == 0, 1, s))


class Pointwise(nn.Module):
    """A 1x1 convolution with bias, as one matrix product on the ``(N H W, C)`` rows of a channels_last map.

    It takes the place of ``nn.Conv2d`` after a clamp: PyTorch picks a 1x1 convolution's kernel by batch
    size, map size and thread count, and for one picture's maps on one thread it picks a slow one; a matrix
    product is faster there on maps up to ``CONVOLUTION_PIXELS``; larger maps keep oneDNN's convolution
    (as fast for one picture, faster for a batch).  A batch of small maps runs one product per picture
    (MKL's batch GEMM, ``_chunked_products``), so that a picture gets the very numbers it gets alone (a product over
    the whole batch's rows, or the convolution for a batch and the product alone, sum in other orders: on
    some CPUs a batched map then differed from the single one by 5e-5 of its range); within
    ``one_product_per_batch`` it runs one product for the batch.  The kernel depends on the shape only, so
    a block computed with or without concatenation gives the same numbers.
    """

    kernel_size, stride, padding, dilation, groups = (1, 1), (1, 1), (0, 0), (1, 1), 1

    def __init__(self, weight: Tensor, bias: Tensor) -> None:
        super().__init__()
        self.out_channels, self.in_channels = weight.shape[:2]
        matrix = weight.detach().reshape(self.out_channels, self.in_channels).t().contiguous()  # (in, out)
        self.matrix = nn.Parameter(matrix, requires_grad=False)
        self.bias = nn.Parameter(bias.detach().clone(), requires_grad=False)

    @property
    def weight(self) -> Tensor:
        """The convolution's ``(out, in, 1, 1)`` weight (a view of the matrix)."""
        return self.matrix.t()[:, :, None, None]

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        if h * w > CONVOLUTION_PIXELS:  # large maps: oneDNN's convolution, for one picture as for a batch
            return F.conv2d(x, self.weight, self.bias)
        return self.from_rows(x.permute(0, 2, 3, 1).reshape(n * h * w, c), n, h, w)  # a view of channels_last

    def from_rows(self, rows: Tensor, n: int, h: int, w: int) -> Tensor:
        """This convolution of ``n`` ``h`` x ``w`` maps given as ``(n h w, in)`` rows: ``(n, out, h, w)``, channels
        last (what ``forward`` gives for the map those rows are a view of, with fewer steps between)."""
        if h * w > CONVOLUTION_PIXELS:
            return F.conv2d(rows.view(n, h, w, -1).permute(0, 3, 1, 2), self.weight, self.bias)
        if _ONE_PRODUCT.get():
            out = torch.addmm(self.bias, rows, self.matrix)
        elif n == 1:
            out = _chunked_product(self.bias, rows, self.matrix)
        elif _batched_products_match((n, h * w, rows.shape[1]), self.matrix):
            out = _chunked_products(self.bias, rows.view(n, h * w, -1), self.matrix)
        else:
            out = torch.cat([_chunked_product(self.bias, picture, self.matrix) for picture in rows.split(h * w)])
        return out.view(n, h, w, self.out_channels).permute(0, 3, 1, 2)


def _chunked_product(bias: Tensor, rows: Tensor, matrix: Tensor) -> Tensor:
    """``bias + rows @ matrix`` for one picture's ``(m, in)`` rows, summed ``DEPTH`` inputs at a time.

    The chunks keep every product short enough that MKL does not split its sum among threads (on this
    machine's CPU it does from about 800 inputs on two threads, and then a picture's numbers depend on the
    thread count and on its batch).
    """
    c = rows.shape[1]
    if c <= DEPTH:
        return torch.addmm(bias, rows, matrix)
    out = torch.addmm(bias, rows[:, :DEPTH], matrix[:DEPTH])
    for start in range(DEPTH, c, DEPTH):
        out.addmm_(rows[:, start:start + DEPTH], matrix[start:start + DEPTH])
    return out


def _chunked_products(bias: Tensor, rows: Tensor, matrix: Tensor) -> Tensor:
    """``bias + rows[i] @ matrix`` for each picture of ``(N, m, in)`` rows: batched products (MKL's batch GEMM,
    one picture per thread), ``DEPTH`` inputs at a time as in ``_chunked_product``: ``(N m, out)``."""
    n, m, c = rows.shape
    batched = matrix.expand(n, -1, -1)
    out = torch.baddbmm(bias, rows[..., :DEPTH], batched[:, :DEPTH])
    for start in range(DEPTH, c, DEPTH):
        out.baddbmm_(rows[..., start:start + DEPTH], batched[:, start:start + DEPTH])
    return out.view(n * m, -1)


_MATCHES: dict[tuple, bool] = {}


def _batched_products_match(shape: tuple[int, int, int], matrix: Tensor) -> bool:
    """Whether batched products give each picture of a batch of ``shape`` the very numbers of its own.

    Checked once per shape, thread count and device on random numbers (the order of a sum depends on the
    shapes and the threads, not on the values): on a CPU whose BLAS sums a batch in another order, batches
    run picture by picture, slower but with each picture's own numbers.
    """
    key = (tuple(shape), tuple(matrix.shape), matrix.dtype, matrix.device, torch.get_num_threads())
    found = _MATCHES.get(key)
    if found is None:
        generator = torch.Generator().manual_seed(0)
        rows = torch.rand(tuple(shape), generator=generator).to(matrix)
        weights = torch.rand(tuple(matrix.shape), generator=generator).to(matrix)
        bias = torch.rand(matrix.shape[1], generator=generator).to(matrix)
        alone = torch.cat([_chunked_product(bias, picture, weights) for picture in rows])
        found = _MATCHES[key] = torch.equal(_chunked_products(bias, rows, weights), alone)
    return found
