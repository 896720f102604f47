"""Gated linear unit along one axis: the first half gated by the sigmoid of the second.

x: (..., 2C, ...) with 2C at ``axis``; a, b = the two halves (a first, as ``torch.nn.GLU``)::

    y  = a sig(b)                               (..., C, ...)
    da = dy sig(b),    db = dy a sig(b) (1 - sig(b))

SpikingSSM closes every layer with a 1x1 convolution H -> 2H followed by GLU over the
channel axis (shenshuaijie/SDN ``models/spike/ss4d.py``, ``SS4D.output_linear``:
``nn.Conv1d(h, 2h, 1)``, ``nn.GLU(dim=-2)`` on (B, 2H, L)). The sigmoid is scipy's
``expit``, exact and overflow-free in float32 and float64.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit

from .._checks import expect_array, expect_same_shape, need_forward
from ..module import Module


def _halves(x: np.ndarray, axis: int):
    axis = axis % x.ndim
    C = x.shape[axis] // 2
    index = [slice(None)] * x.ndim
    index[axis] = slice(0, C)
    a = x[tuple(index)]
    index[axis] = slice(C, 2 * C)
    return a, x[tuple(index)], axis


def glu_forward(x: np.ndarray, axis: int = 1, need_grad: bool = True):
    """x: (..., 2C, ...) -> (y (..., C, ...), cache)."""
    expect_array("GLU", "x", x)
    if not -x.ndim <= axis < x.ndim or x.shape[axis] % 2:
        raise ValueError(f"GLU expected x with an even number of channels along axis {axis} "
                         f"(two halves: value and gate), got x of shape {x.shape}")
    a, b, axis = _halves(x, axis)
    gate = expit(b)
    y = a * gate
    return y, ((a, gate, axis, x.shape) if need_grad else None)


def glu_backward(dy: np.ndarray, cache) -> np.ndarray:
    """dy: (..., C, ...) -> dx (..., 2C, ...)."""
    need_forward("GLU", cache)
    a, gate, axis, shape = cache
    expect_same_shape("GLU.backward", "dy", dy, a.shape)
    dx = np.empty(shape, dtype=dy.dtype)
    da, db, _ = _halves(dx, axis)
    np.multiply(dy, gate, out=da)                   # dy sig(b)
    np.subtract(1, gate, out=db)
    db *= da                                        # dy sig(b) (1 - sig(b))
    db *= a
    return dx


class GLU(Module):
    """``GLU(axis=1)``: no parameters; halves the size of ``axis``."""

    def __init__(self, axis: int = 1) -> None:
        super().__init__()
        self.axis = axis
        self._cache = None

    def forward(self, x):
        y, self._cache = glu_forward(x, self.axis, need_grad=self.training)
        return y

    def backward(self, dy):
        dx = glu_backward(dy, self._cache)
        self._cache = None
        return dx
