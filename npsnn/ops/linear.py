"""Fully connected layer on the last axis: ``y = x W^T + b``.

x: (..., in) -> y: (..., out); weight (out, in) (PyTorch layout), bias (out,) or None.
All leading axes (T, B, tokens) are folded into one GEMM.
"""
from __future__ import annotations

import numpy as np

from .._checks import (expect_array, expect_positive_int, expect_same_shape, expect_shape,
                       need_forward)
from ..module import Module
from .init import uniform_fan_in


def linear_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None):
    """-> (y (..., out), cache)."""
    expect_array("Linear", "x", x)
    expect_shape("Linear", "x", x, (weight.shape[1],), leading=True)
    x2 = x.reshape(-1, x.shape[-1])
    y = x2 @ weight.T
    if bias is not None:
        y += bias
    return y.reshape(x.shape[:-1] + (weight.shape[0],)), (x2, weight, bias is not None, x.shape)


def linear_backward(dy: np.ndarray, cache, need_dx: bool = True):
    """dy: (..., out) -> (dx (..., in) or None, dweight (out, in), dbias (out,) or None)."""
    need_forward("Linear", cache)
    x2, weight, has_bias, x_shape = cache
    expect_same_shape("Linear.backward", "dy", dy, x_shape[:-1] + (weight.shape[0],))
    dy2 = dy.reshape(-1, weight.shape[0])
    dweight = dy2.T @ x2
    dbias = dy2.sum(axis=0) if has_bias else None
    dx = (dy2 @ weight).reshape(x_shape) if need_dx else None
    return dx, dweight, dbias


class Linear(Module):
    """``Linear(in_features, out_features, bias=True)``; params "weight", "bias"."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 dtype=np.float32, rng=None) -> None:
        super().__init__()
        in_features = expect_positive_int("Linear", "in_features", in_features)
        out_features = expect_positive_int("Linear", "out_features", out_features)
        self.add_param("weight", uniform_fan_in(rng, (out_features, in_features), in_features, dtype))
        if bias:
            self.add_param("bias", uniform_fan_in(rng, (out_features,), in_features, dtype))
        self.need_input_grad = True
        self._cache = None

    def forward(self, x):
        y, cache = linear_forward(x, self.params["weight"], self.params.get("bias"))
        self._cache = cache if self.training else None
        return y

    def backward(self, dy):
        dx, dw, db = linear_backward(dy, self._cache, self.need_input_grad)
        self.accumulate(weight=dw, bias=db)
        self._cache = None
        return dx
