"""Layer normalisation over the feature axis, per position (``torch.nn.LayerNorm(C)``).

For every position (every b and l of (B, C, L), say) the C features are normalised by
their own mean and (biased) variance, then scaled and shifted per feature::

    mu = mean_c x,   var = mean_c (x - mu)^2,   xhat = (x - mu) / sqrt(var + eps)
    y  = gamma xhat + beta

Backward (n = C values per position)::

    dbeta = sum_positions dy,   dgamma = sum_positions dy xhat
    dx = (gamma dy - mean_c(gamma dy) - xhat mean_c(gamma dy xhat)) / sqrt(var + eps)

Unlike batch norm the statistics never mix samples or positions, so train and eval are
the same computation. ``axis`` says where the features are: SpikingSSM keeps activations
as (B, H, L) and normalises over H (axis 1), which is what the official
``norm(z.transpose(-1, -2)).transpose(-1, -2)`` computes
(shenshuaijie/SDN ``models/spike/ss4d.py``, ``SpikingSSM.forward``).
"""
from __future__ import annotations

import numpy as np

from .._checks import expect_array, expect_positive_int, expect_same_shape, need_forward
from ..module import Module


def _feature_shape(x: np.ndarray, axis: int):
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    return tuple(shape)


def layernorm_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, *, axis: int = -1,
                      eps: float = 1e-5, need_grad: bool = True):
    """x: any shape with C = x.shape[axis]; weight, bias: (C,). -> (y, cache)."""
    expect_array("LayerNorm", "x", x)
    if not -x.ndim <= axis < x.ndim or x.shape[axis] != weight.shape[0]:
        raise ValueError(f"LayerNorm({weight.shape[0]}) expected x with {weight.shape[0]} "
                         f"features along axis {axis}, got x of shape {x.shape}")
    axis %= x.ndim
    dt = x.dtype.type
    fshape = _feature_shape(x, axis)
    mu = x.mean(axis=axis, keepdims=True)
    xc = x - mu
    var = np.mean(xc * xc, axis=axis, keepdims=True)
    inv_std = 1 / np.sqrt(var + dt(eps))
    xhat = xc * inv_std
    y = xhat * weight.reshape(fshape) + bias.reshape(fshape)
    return y, ((xhat, inv_std, weight.reshape(fshape), axis) if need_grad else None)


def layernorm_backward(dy: np.ndarray, cache):
    """dy: shape of x -> (dx, dweight (C,), dbias (C,))."""
    need_forward("LayerNorm", cache)
    xhat, inv_std, w, axis = cache
    expect_same_shape("LayerNorm.backward", "dy", dy, xhat.shape)
    others = tuple(i for i in range(dy.ndim) if i != axis)
    dbias = dy.sum(axis=others)
    dweight = (dy * xhat).sum(axis=others)
    g = dy * w                                       # gradient w.r.t. xhat
    dx = g - g.mean(axis=axis, keepdims=True)
    dx -= xhat * np.mean(g * xhat, axis=axis, keepdims=True)
    dx *= inv_std
    return dx, dweight, dbias


class LayerNorm(Module):
    """``LayerNorm(num_features, axis=-1, eps=1e-5)``: params weight (ones), bias (zeros)."""

    def __init__(self, num_features: int, axis: int = -1, eps: float = 1e-5, *,
                 dtype=np.float32) -> None:
        super().__init__()
        num_features = expect_positive_int("LayerNorm", "num_features", num_features)
        self.axis, self.eps = axis, float(eps)
        self.add_param("weight", np.ones(num_features, dtype))
        self.add_param("bias", np.zeros(num_features, dtype))
        self._cache = None

    def forward(self, x):
        y, self._cache = layernorm_forward(x, self.params["weight"], self.params["bias"],
                                           axis=self.axis, eps=self.eps,
                                           need_grad=self.training)
        return y

    def backward(self, dy):
        dx, dw, db = layernorm_backward(dy, self._cache)
        self.accumulate(weight=dw, bias=db)
        self._cache = None
        return dx
