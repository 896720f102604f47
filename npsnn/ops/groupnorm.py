"""Group normalisation (``torch.nn.GroupNorm``), on channels-last input.

x: (B, ..., C) with C split into G groups of C/G channels. Statistics per sample and group,
over all positions and the channels of the group; the affine map is per channel::

    mu[b, g] = mean x[b, ..., c in g],   var[b, g] = mean (x - mu)^2      (biased)
    xhat = (x - mu) / sqrt(var + eps),   y = gamma[c] xhat + beta[c]

Backward, with n values per (b, g) and dxhat = dy gamma::

    dgamma = sum_{b, ...} dy xhat,   dbeta = sum_{b, ...} dy
    dx = (dxhat - mean_g(dxhat) - xhat mean_g(dxhat xhat)) / sqrt(var + eps)

There are no running statistics: train and eval mode compute the same thing. SNN-MLP uses
G = 1 (each sample normalised over all of (H, W, C)).
"""
from __future__ import annotations

import numpy as np

from .._checks import expect_array, expect_same_shape, need_forward
from ..module import Module


def _grouped(x: np.ndarray, groups: int) -> np.ndarray:
    """(B, ..., C) -> view (B, S, G, C/G) with S the product of the middle axes."""
    return x.reshape(x.shape[0], -1, groups, x.shape[-1] // groups)


def groupnorm_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, groups: int,
                      eps: float = 1e-5):
    """x: (B, ..., C); weight, bias: (C,) -> (y, cache)."""
    expect_array("GroupNorm", "x", x)
    C = weight.shape[0]
    if x.ndim < 2 or x.shape[-1] != C:
        raise ValueError(f"GroupNorm({groups}, {C}) expected x of shape (B, ..., {C}) "
                         f"(channels last), got {x.shape}")
    dt = x.dtype.type
    x4 = _grouped(np.ascontiguousarray(x), groups)
    mean = x4.mean(axis=(1, 3), keepdims=True)
    xhat = x4 - mean
    var = np.mean(xhat * xhat, axis=(1, 3), keepdims=True)
    inv_std = 1 / np.sqrt(var + dt(eps))
    xhat *= inv_std
    xhat = xhat.reshape(x.shape)
    y = xhat * weight
    y += bias
    return y, (xhat, inv_std, weight, groups)


def groupnorm_backward(dy: np.ndarray, cache):
    """dy: shape of x -> (dx, dweight (C,), dbias (C,))."""
    need_forward("GroupNorm", cache)
    xhat, inv_std, weight, groups = cache
    expect_same_shape("GroupNorm.backward", "dy", dy, xhat.shape)
    C = weight.shape[0]
    dy2, xhat2 = dy.reshape(-1, C), xhat.reshape(-1, C)
    dbias = dy2.sum(axis=0)
    dweight = np.einsum("nc,nc->c", dy2, xhat2)
    dxhat = _grouped(dy * weight, groups)
    xh4 = _grouped(xhat, groups)
    dx = dxhat - dxhat.mean(axis=(1, 3), keepdims=True)
    dx -= xh4 * np.mean(dxhat * xh4, axis=(1, 3), keepdims=True)
    dx *= inv_std
    return dx.reshape(xhat.shape), dweight, dbias


class GroupNorm(Module):
    """``GroupNorm(groups, channels)`` on channels-last input; params weight (ones), bias (zeros)."""

    def __init__(self, groups: int, channels: int, *, eps: float = 1e-5,
                 dtype=np.float32) -> None:
        super().__init__()
        if groups < 1 or channels % groups:
            raise ValueError(f"GroupNorm expected groups >= 1 dividing channels, got "
                             f"groups={groups}, channels={channels}")
        self.groups, self.eps = groups, eps
        self.add_param("weight", np.ones(channels, dtype))
        self.add_param("bias", np.zeros(channels, dtype))
        self._cache = None

    def forward(self, x):
        y, cache = groupnorm_forward(x, self.params["weight"], self.params["bias"],
                                     self.groups, self.eps)
        self._cache = cache if self.training else None
        return y

    def backward(self, dy):
        dx, dw, db = groupnorm_backward(dy, self._cache)
        self.accumulate(weight=dw, bias=db)
        self._cache = None
        return dx
