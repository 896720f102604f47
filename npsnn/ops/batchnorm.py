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
"""
from __future__ import annotations

import numpy as np

from .._checks import NonFiniteError, expect_array, expect_positive_int, expect_same_shape, \
    need_forward
from ..module import Module


def _as3d(x: np.ndarray, axis: int):
    axis = axis % x.ndim
    pre = int(np.prod(x.shape[:axis], dtype=np.int64))
    return x.reshape(pre, x.shape[axis], -1)


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
    if training:
        n = x3.shape[0] * x3.shape[2]
        if n < 2:
            raise ValueError(f"BatchNorm in train mode needs more than one value per "
                             f"feature, got x of shape {x.shape} (feature axis {axis})")
        with np.errstate(invalid="ignore", over="ignore"):   # NaN/inf: refused just below
            mean = np.einsum("ijk->j", x3) / dt(n)   # einsum: one SIMD pass, no temporaries
            xc = x3 - mean[:, None]
            var = np.einsum("ijk,ijk->j", xc, xc) / dt(n)
        if not (np.isfinite(mean).all() and np.isfinite(var).all()):
            # one NaN pixel would poison the running statistics for good: refuse, unchanged
            raise NonFiniteError(f"BatchNorm({weight.shape[0]}) on x of shape {x.shape}: the "
                                 f"batch statistics are not finite (NaN or inf in this "
                                 f"layer's input); the running statistics were not updated")
        inv_std = 1 / np.sqrt(var + dt(eps))
        # y = gamma xhat + beta with xhat = xc inv_std: one multiply by gamma inv_std, and
        # the cache keeps xc (xhat is never materialised: one pass less)
        y = xc * (weight * inv_std)[:, None]
        y += bias[:, None]
        unbiased = (count if count is not None else n)
        running_mean *= 1 - momentum
        running_mean += momentum * mean
        running_var *= 1 - momentum
        running_var += momentum * var * (unbiased / (unbiased - 1))
        cache = (True, xc, inv_std, weight, x.shape, axis)
    else:
        inv_std = 1 / np.sqrt(running_var + dt(eps))
        scale, shift = batchnorm_affine(weight, bias, running_mean, running_var, eps)
        y = x3 * scale[:, None]
        y += shift[:, None]
        cache = (False, x3, inv_std, weight, x.shape, axis, running_mean)
    return y.reshape(x.shape), cache


def batchnorm_backward(dy: np.ndarray, cache):
    """dy: shape of x -> (dx, dweight (F,), dbias (F,))."""
    need_forward("BatchNorm", cache)
    training, saved, inv_std, weight, shape, axis = cache[:6]
    expect_same_shape("BatchNorm.backward", "dy", dy, shape)
    dy3 = _as3d(dy, axis)
    dbias = np.einsum("ijk->j", dy3)
    if training:
        xc = saved                                   # x - mu; xhat = xc inv_std
        n = xc.shape[0] * xc.shape[2]
        dweight = np.einsum("ijk,ijk->j", dy3, xc) * inv_std
        dx = xc * (-inv_std * dweight / n)[:, None]  # - xhat dgamma / n
        dx += dy3
        dx -= (dbias / n)[:, None]
        dx *= (weight * inv_std)[:, None]
    else:
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
