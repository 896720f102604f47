"""GELU, the exact (erf) form used by ``torch.nn.GELU()``.

    y = x Phi(x) = x/2 (1 + erf(x / sqrt(2)))
    dy/dx = Phi(x) + x phi(x),      phi(x) = exp(-x^2 / 2) / sqrt(2 pi)

Elementwise, so any shape; the cache keeps only the input.
"""
from __future__ import annotations

import numpy as np
from scipy.special import erf

from .._checks import expect_array, expect_same_shape, need_forward
from ..module import Module

_INV_SQRT2 = 1.0 / np.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


def gelu_forward(x: np.ndarray):
    """x: any shape -> (y, cache)."""
    expect_array("GELU", "x", x)
    dt = x.dtype.type
    cdf = erf(x * dt(_INV_SQRT2))
    cdf += 1
    cdf *= dt(0.5)                                # Phi(x)
    return x * cdf, (x, cdf)


def gelu_backward(dy: np.ndarray, cache) -> np.ndarray:
    need_forward("GELU", cache)
    x, cdf = cache
    expect_same_shape("GELU.backward", "dy", dy, x.shape)
    dt = x.dtype.type
    pdf = np.exp(x * x * dt(-0.5))
    pdf *= dt(_INV_SQRT_2PI)                      # phi(x)
    pdf *= x
    pdf += cdf                                    # Phi(x) + x phi(x)
    pdf *= dy
    return pdf


class GELU(Module):
    def __init__(self) -> None:
        super().__init__()
        self._cache = None

    def forward(self, x):
        y, cache = gelu_forward(x)
        self._cache = cache if self.training else None
        return y

    def backward(self, dy):
        dx = gelu_backward(dy, self._cache)
        self._cache = None
        return dx
