"""Token-mixer projection: a 1x1 convolution *across one spatial axis* (H or W).

sMLPNet's token mixer moves the H axis (or the W axis) into PyTorch's channel slot and
applies a 1x1 conv with bias there, so the weights mix positions along that axis and are
shared over channels and over the other spatial axis. Along H, on x (..., H, W, C)::

    y[..., p, w, c] = sum_h Wp[p, h] x[..., h, w, c] + b[p]          Wp: (S, S), b: (S,)

(S = H; along W the roles of h and w swap.) The tensor is viewed as (pre, S, post) around
the mixed axis, so the op is a stack of (S, S) @ (S, post) products::

    forward:   Y_n = Wp X_n + b                    n over pre (time, batch, ...)
    backward:  dX_n = Wp^T dY_n,   dWp = sum_n dY_n X_n^T,   db = sum over (n, post) of dY

The parameter is stored as PyTorch stores the 1x1 conv: weight (S, S, 1, 1), bias (S,),
so official checkpoints load by name.
"""
from __future__ import annotations

import numpy as np

from .._checks import expect_array, expect_positive_int, expect_same_shape, need_forward
from ..module import Module
from .init import uniform_fan_in


def _as3d(x: np.ndarray, axis: int) -> np.ndarray:
    """View x as (pre, S, post) around ``axis`` (a copy only if x is not contiguous)."""
    axis = axis % x.ndim
    pre = int(np.prod(x.shape[:axis], dtype=np.int64))
    return np.ascontiguousarray(x).reshape(pre, x.shape[axis], -1)


def axis_projection_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                            axis: int):
    """x: (..., S, ...) with S at ``axis``; weight (S, S) or (S, S, 1, 1); bias (S,) or None.
    -> (y same shape as x, cache)."""
    expect_array("AxisProjection", "x", x)
    w = weight.reshape(weight.shape[0], weight.shape[1])
    if not -x.ndim <= axis < x.ndim or x.shape[axis] != w.shape[1]:
        raise ValueError(f"AxisProjection({w.shape[1]}) expected x with {w.shape[1]} positions "
                         f"along axis {axis}, got x of shape {x.shape}")
    x3 = _as3d(x, axis)
    y = np.matmul(w, x3)                         # (S_out, S) @ (pre, S, post), stacked GEMMs
    if bias is not None:
        y += bias[:, None]
    shape = x.shape[:axis % x.ndim] + (w.shape[0],) + x.shape[axis % x.ndim + 1:]
    return y.reshape(shape), (x3, w, bias is not None, x.shape, shape, axis)


def axis_projection_backward(dy: np.ndarray, cache, need_dx: bool = True):
    """dy: shape of y -> (dx or None, dweight (S, S, 1, 1), dbias (S,) or None)."""
    need_forward("AxisProjection", cache)
    x3, w, has_bias, x_shape, y_shape, axis = cache
    expect_same_shape("AxisProjection.backward", "dy", dy, y_shape)
    dy3 = _as3d(dy, axis)
    # dW[p, h] = sum_{n, q} dY[n, p, q] X[n, h, q]: one GEMM after tensordot's reshape
    dweight = np.tensordot(dy3, x3, axes=([0, 2], [0, 2]))
    dbias = dy3.sum(axis=(0, 2)) if has_bias else None
    dx = np.matmul(w.T, dy3).reshape(x_shape) if need_dx else None
    return dx, dweight.reshape(w.shape + (1, 1)), dbias


class AxisProjection(Module):
    """``AxisProjection(size, axis)``: the 1x1 conv over the H or W axis, with bias.

    params weight (size, size, 1, 1), bias (size,) (PyTorch ``Conv2d(size, size, 1)``).
    x: any shape with ``x.shape[axis] == size`` -> same shape.
    """

    def __init__(self, size: int, axis: int, bias: bool = True, *, dtype=np.float32,
                 rng=None) -> None:
        super().__init__()
        self.axis = axis
        size = expect_positive_int("AxisProjection", "size", size)
        self.add_param("weight", uniform_fan_in(rng, (size, size, 1, 1), size, dtype))
        if bias:
            self.add_param("bias", uniform_fan_in(rng, (size,), size, dtype))
        self.need_input_grad = True
        self._cache = None

    def forward(self, x):
        y, cache = axis_projection_forward(x, self.params["weight"], self.params.get("bias"),
                                           self.axis)
        self._cache = cache if self.training else None
        return y

    def backward(self, dy):
        dx, dw, db = axis_projection_backward(dy, self._cache, self.need_input_grad)
        self.accumulate(weight=dw, bias=db)
        self._cache = None
        return dx
