"""Drop path (stochastic depth): in training, drop a whole residual branch per sample.

For sample b with keep probability k = 1 - p and m_b ~ Bernoulli(k)::

    y[b] = x[b] m_b / k                 dx[b] = dy[b] m_b / k

so the expected output equals the input; in eval mode (or p = 0) it is the identity. The
random draws come from an explicit ``np.random.Generator`` (reproducible, resumable).
"""
from __future__ import annotations

import numpy as np

from .._checks import expect_array, expect_same_shape, need_forward
from ..module import Module


def drop_path_forward(x: np.ndarray, p: float, rng: np.random.Generator, training: bool = True):
    """x: (B, ...) -> (y, cache). cache is the per-sample scale (B, 1, ..., 1) or None."""
    expect_array("DropPath", "x", x)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"DropPath expected a drop probability p in [0, 1), got {p!r}")
    if not training or p == 0.0:
        return x, None
    keep = 1.0 - p
    scale = (rng.random(x.shape[0]) < keep).astype(x.dtype) / x.dtype.type(keep)
    scale = scale.reshape((-1,) + (1,) * (x.ndim - 1))
    return x * scale, (scale, x.shape)


def drop_path_backward(dy: np.ndarray, cache) -> np.ndarray:
    if cache is None:                     # identity in the forward
        return dy
    scale, shape = cache
    expect_same_shape("DropPath.backward", "dy", dy, shape)
    return dy * scale


class DropPath(Module):
    """``DropPath(p, rng)``: identity in eval mode; the rng is owned by the model."""

    def __init__(self, p: float, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"DropPath expected a drop probability p in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self._cache = None
        self._ran = False

    def forward(self, x):
        y, self._cache = drop_path_forward(x, self.p, self.rng, self.training)
        self._ran = True
        return y

    def backward(self, dy):
        need_forward("DropPath", True if self._ran else None)
        dx = drop_path_backward(dy, self._cache)
        self._cache, self._ran = None, False
        return dx
