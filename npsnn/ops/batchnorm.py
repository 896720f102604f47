"""Batch normalisation over any feature axis (PyTorch conventions).

One function serves every BN of sMLPNet: BN2d over channels (statistics per channel over
T, B, H, W), BN1d over the *token* axis of (T, B, N, C) (statistics per token over T, B,
C; the official choice), and BN over the H or W axis in the token mixer. The tensor is
viewed as (pre, F, post) around the feature axis and reduced over pre and post::

    train:  mu = mean(x),  var = mean((x - mu)^2)                (biased, to normalise)
            y = gamma (x - mu) / sqrt(var + eps) + beta
            running_mean <- (1 - m) running_mean + m mu
            running_var  <- (1 - m) running_var  + m var n / (n - 1)   (unbiased)
    eval:   y = gamma (x - running_mean) / sqrt(running_var + eps) + beta

Backward (train), with xhat the normalised input and n the count per feature::

    dbeta = sum dy,  dgamma = sum dy xhat,
    dx = gamma / sqrt(var + eps) (dy - dbeta / n - xhat dgamma / n)

How it runs: the (pre, F, post) view is cut into blocks of rows along ``pre`` small enough
to stay in cache (:data:`CHUNK_BYTES`), shared out over the worker threads
(:mod:`npsnn.workers`). A statistic is the sum of the blocks' partial sums (in block order,
so the result does not depend on the threads), and each block does all its work while in
cache: the forward reads x twice (sum; centre + sum of squares) and writes y from xc once;
the backward reads dy and xc once for both sums and once more to write dx. ``xhat`` is
never materialised: the cache keeps xc and 1/std.
"""
from __future__ import annotations

import numpy as np

from .._checks import NonFiniteError, expect_array, expect_positive_int, expect_same_shape, \
    need_forward
from ..module import Module
from ..workers import CHUNK_BYTES, for_each_chunk   # CHUNK_BYTES: bytes of one block of rows


def _expect_finite_statistics(stat: np.ndarray, weight: np.ndarray, x: np.ndarray) -> None:
    """Refuse a train-mode batch whose mean or variance is NaN/inf (before any update)."""
    if not np.isfinite(stat).all():
        raise NonFiniteError(f"BatchNorm({weight.shape[0]}) on x of shape {x.shape}: the "
                             f"batch statistics are not finite (NaN or inf in this "
                             f"layer's input); the running statistics were not updated")


def _as3d(x: np.ndarray, axis: int):
    axis = axis % x.ndim
    pre = int(np.prod(x.shape[:axis], dtype=np.int64))
    return x.reshape(pre, x.shape[axis], -1)


def _blocks(x3: np.ndarray) -> int:
    """Rows of x3 (pre, F, post) per block."""
    return max(1, CHUNK_BYTES // max(1, x3.shape[1] * x3.shape[2] * x3.itemsize))


def _block_sums(spec: str, rows: int, *arrays) -> np.ndarray:
    """``sum over blocks of einsum(spec, block of each array)``: per-feature sums, the
    blocks' partial sums added in block order -> (F,)."""
    pre = arrays[0].shape[0]
    partial = np.empty((-(-pre // rows), arrays[0].shape[1]), dtype=arrays[0].dtype)

    def kernel(a, b):
        partial[a // rows] = np.einsum(spec, *(x[a:b] for x in arrays))

    for_each_chunk(kernel, pre, rows)
    return partial.sum(axis=0)


def batchnorm_affine(weight, bias, running_mean, running_var, eps: float = 1e-5):
    """Eval-mode BN as a per-feature affine map ``y = scale x + shift``: the one BN fold.

    ``scale = weight / sqrt(running_var + eps)``, ``shift = bias - running_mean scale``,
    computed in the arrays' own dtype (pass float64 arrays for a float64 fold). Eval-mode
    :func:`batchnorm_forward`, the models' folding of BN into the conv or Linear before
    it (``W' = scale W``, ``b' = scale b + shift``) and the golden model's integer
    conversion all use it. -> (scale (F,), shift (F,)).
    """
    scale = weight / np.sqrt(running_var + running_var.dtype.type(eps))
    return scale, bias - running_mean * scale


def batchnorm_forward(x, weight, bias, running_mean, running_var, *, axis: int,
                      training: bool, momentum: float = 0.1, eps: float = 1e-5,
                      count: int | None = None):
    """x: any shape with ``x.shape[axis] == F``; weight, bias, running stats: (F,).

    In training the running statistics are updated in place. ``count`` overrides n in the
    unbiased running-variance factor n/(n-1): pass T*B*H*W when x holds one time step of
    an input that is repeated T times (the statistics are identical, only n differs).
    -> (y, cache).
    """
    expect_array("BatchNorm", "x", x)
    if not -x.ndim <= axis < x.ndim or x.shape[axis] != weight.shape[0]:
        raise ValueError(f"BatchNorm({weight.shape[0]}) expected x with {weight.shape[0]} "
                         f"features along axis {axis}, got x of shape {x.shape}")
    x3 = _as3d(x, axis)
    dt = x.dtype.type
    rows = _blocks(x3)
    y = np.empty(x3.shape, dtype=x.dtype)
    if training:
        n = x3.shape[0] * x3.shape[2]
        if n < 2:
            raise ValueError(f"BatchNorm in train mode needs more than one value per "
                             f"feature, got x of shape {x.shape} (feature axis {axis})")
        with np.errstate(invalid="ignore", over="ignore"):   # NaN/inf: refused just below
            mean = _block_sums("ijk->j", rows, x3) / dt(n)   # einsum: one SIMD pass, no temporaries
        xc = np.empty_like(y)
        partial = np.empty((-(-x3.shape[0] // rows), x3.shape[1]), dtype=x.dtype)

        def centre(a, b):                           # xc = x - mu and its squares, in cache
            with np.errstate(invalid="ignore", over="ignore"):   # errstate is per thread
                np.subtract(x3[a:b], mean[:, None], out=xc[a:b])
                partial[a // rows] = np.einsum("ijk,ijk->j", xc[a:b], xc[a:b])

        # one NaN pixel would poison the running statistics for good: refuse, unchanged.
        # A finite mean means every x is finite (NaN and inf propagate through a sum).
        _expect_finite_statistics(mean, weight, x)
        for_each_chunk(centre, x3.shape[0], rows)
        with np.errstate(over="ignore"):
            var = partial.sum(axis=0) / dt(n)
        _expect_finite_statistics(var, weight, x)  # finite x, but squares beyond the dtype
        inv_std = 1 / np.sqrt(var + dt(eps))
        # y = gamma xhat + beta with xhat = xc inv_std: one multiply by gamma inv_std, and
        # the cache keeps xc (xhat is never materialised: one pass less)
        _scale_shift(xc, (weight * inv_std)[:, None], bias[:, None], y, rows)
        unbiased = (count if count is not None else n)
        running_mean *= 1 - momentum
        running_mean += momentum * mean
        running_var *= 1 - momentum
        running_var += momentum * var * (unbiased / (unbiased - 1))
        cache = (True, xc, inv_std, weight, x.shape, axis)
    else:
        inv_std = 1 / np.sqrt(running_var + dt(eps))
        scale, shift = batchnorm_affine(weight, bias, running_mean, running_var, eps)
        _scale_shift(x3, scale[:, None], shift[:, None], y, rows)
        cache = (False, x3, inv_std, weight, x.shape, axis, running_mean)
    return y.reshape(x.shape), cache


def _scale_shift(x3, scale, shift, out, rows) -> None:
    """out = x3 scale + shift, block by block (scale, shift: (F, 1))."""
    def kernel(a, b):
        np.multiply(x3[a:b], scale, out=out[a:b])
        out[a:b] += shift

    for_each_chunk(kernel, x3.shape[0], rows)


def batchnorm_backward(dy: np.ndarray, cache):
    """dy: shape of x -> (dx, dweight (F,), dbias (F,))."""
    need_forward("BatchNorm", cache)
    training, saved, inv_std, weight, shape, axis = cache[:6]
    expect_same_shape("BatchNorm.backward", "dy", dy, shape)
    dy3 = _as3d(dy, axis)
    if training:
        xc = saved                                   # x - mu; xhat = xc inv_std
        n = xc.shape[0] * xc.shape[2]
        rows = _blocks(xc)
        partial = np.empty((-(-xc.shape[0] // rows), 2, xc.shape[1]), dtype=xc.dtype)

        def sums(a, b):                              # dbeta and dgamma from one read
            partial[a // rows, 0] = np.einsum("ijk->j", dy3[a:b])
            partial[a // rows, 1] = np.einsum("ijk,ijk->j", dy3[a:b], xc[a:b])

        for_each_chunk(sums, xc.shape[0], rows)
        dbias, dweight = partial.sum(axis=0)
        dweight = dweight * inv_std
        c_xc = (-inv_std * dweight / n)[:, None]     # - xhat dgamma / n
        c_mean, c_out = (dbias / n)[:, None], (weight * inv_std)[:, None]
        dx = np.empty_like(xc)

        def grad(a, b):
            d = dx[a:b]
            np.multiply(xc[a:b], c_xc, out=d)
            d += dy3[a:b]
            d -= c_mean
            d *= c_out

        for_each_chunk(grad, xc.shape[0], rows)
    else:
        dbias = np.einsum("ijk->j", dy3)
        running_mean = cache[6]
        dweight = np.einsum("ijk,ijk->j", dy3, saved) * inv_std \
            - dbias * running_mean * inv_std
        dx = dy3 * (weight * inv_std)[:, None]
    return dx.reshape(shape), dweight, dbias


class BatchNorm(Module):
    """``BatchNorm(num_features, axis)``: params weight (ones), bias (zeros); buffers
    running_mean, running_var, num_batches_tracked (0-d int64), as PyTorch."""

    def __init__(self, num_features: int, axis: int, *, momentum: float = 0.1,
                 eps: float = 1e-5, dtype=np.float32) -> None:
        super().__init__()
        num_features = expect_positive_int("BatchNorm", "num_features", num_features)
        self.axis, self.momentum, self.eps = axis, momentum, eps
        self.add_param("weight", np.ones(num_features, dtype))
        self.add_param("bias", np.zeros(num_features, dtype))
        self.add_buffer("running_mean", np.zeros(num_features, dtype))
        self.add_buffer("running_var", np.ones(num_features, dtype))
        self.add_buffer("num_batches_tracked", np.zeros((), np.int64))
        self._cache = None

    def forward(self, x, count: int | None = None):
        y, cache = batchnorm_forward(
            x, self.params["weight"], self.params["bias"], self.buffers["running_mean"],
            self.buffers["running_var"], axis=self.axis, training=self.training,
            momentum=self.momentum, eps=self.eps, count=count)
        if self.training:
            self.buffers["num_batches_tracked"] += 1
        self._cache = cache if self.training else None
        return y

    def backward(self, dy):
        dx, dw, db = batchnorm_backward(dy, self._cache)
        self.accumulate(weight=dw, bias=db)
        self._cache = None
        return dx
