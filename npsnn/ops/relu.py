"""ReLU: y = max(x, 0), dx = dy [x > 0]. Elementwise, any shape; the cache keeps the mask."""
from __future__ import annotations

import numpy as np

from .._checks import expect_array, expect_same_shape, need_forward
from ..module import Module


def relu_forward(x: np.ndarray, need_grad: bool = True):
    expect_array("ReLU", "x", x)
    y = np.maximum(x, 0)
    return y, ((x > 0) if need_grad else None)


def relu_backward(dy: np.ndarray, cache) -> np.ndarray:
    need_forward("ReLU", cache)
    expect_same_shape("ReLU.backward", "dy", dy, cache.shape)
    return dy * cache


class ReLU(Module):
    def __init__(self) -> None:
        super().__init__()
        self._cache = None

    def forward(self, x):
        y, self._cache = relu_forward(x, need_grad=self.training)
        return y

    def backward(self, dy):
        dx = relu_backward(dy, self._cache)
        self._cache = None
        return dx
