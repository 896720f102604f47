"""Dropout with one mask per (sample, feature), shared by every step of the sequence.

On x: (B, H, L), with keep probability k = 1 - p and m[b, h] ~ Bernoulli(k)::

    y[b, h, l] = x[b, h, l] m[b, h] / k          dx = dy m / k

so a feature is either present for the whole sequence or absent for all of it (dropping
single time steps would just add noise to a long convolution). Identity in eval mode or
for p = 0. This is ``DropoutNd`` with ``tie=True`` of state-spaces/s4
(``src/models/nn/dropout.py``), the dropout SpikingSSM uses after each neuron and on each
residual branch (shenshuaijie/SDN ``models/spike/ss4d.py``). It is drop path
(:mod:`npsnn.ops.drop_path`) with a finer mask, so it shares drop path's backward and layer.
The draws come from an explicit ``np.random.Generator``.
"""
from __future__ import annotations

import numpy as np

from .._checks import expect_array
from .drop_path import DropPath, drop_path_backward


def sequence_dropout_forward(x: np.ndarray, p: float, rng: np.random.Generator,
                             training: bool = True):
    """x: (B, H, ...) -> (y, cache). cache: (the scaled mask (B, H, 1, ...), shape) or None."""
    expect_array("SequenceDropout", "x", x)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"SequenceDropout expected a drop probability p in [0, 1), got {p!r}")
    if x.ndim < 2:
        raise ValueError(f"SequenceDropout expected x of shape (B, H, ...), got {x.shape}")
    if not training or p == 0.0:
        return x, None
    keep = rng.random(x.shape[:2]) < 1.0 - p
    # m / k is exactly 1/k or 0, so x (m / k) rounds as the official (x m) (1 / k)
    scale = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    scale = scale.reshape(x.shape[:2] + (1,) * (x.ndim - 2))
    return x * scale, (scale, x.shape)


#: dx = dy m / k: the same as drop path's backward (same cache: the scaled mask and the shape)
sequence_dropout_backward = drop_path_backward


class SequenceDropout(DropPath):
    """``SequenceDropout(p, rng)``: identity in eval mode; the rng is owned by the model."""

    def __init__(self, p: float, rng: np.random.Generator | None = None) -> None:
        if not 0.0 <= p < 1.0:
            raise ValueError(f"SequenceDropout expected a drop probability p in [0, 1), "
                             f"got {p!r}")
        super().__init__(p, rng)

    def forward(self, x):
        y, self._cache = sequence_dropout_forward(x, self.p, self.rng, self.training)
        self._ran = True
        return y
