"""Smooth L1 (Huber with beta) loss, averaged over every element (``torch.nn.SmoothL1Loss``).

With d = pred - target::

    loss = mean( d^2 / (2 beta)   if |d| < beta
                 |d| - beta / 2   otherwise )
    dpred = clip(d / beta, -1, 1) / n

Quadratic near zero (smooth gradients for small errors), linear far away (robust to the
rare large error). The SDN is trained with it, beta = 1 (shenshuaijie/SDN ``train.py``:
``criterion = nn.SmoothL1Loss()``).
"""
from __future__ import annotations

import numpy as np

from .._checks import expect_array, expect_same_shape, need_forward


def smooth_l1_forward(pred: np.ndarray, target: np.ndarray, beta: float = 1.0):
    """pred, target: same shape -> (loss float, cache)."""
    expect_array("smooth_l1", "pred", pred)
    expect_array("smooth_l1", "target", target)
    expect_same_shape("smooth_l1", "target", target, pred.shape)
    if not beta > 0:
        raise ValueError(f"smooth_l1 expected beta > 0, got {beta!r}")
    d = pred - target
    a = np.abs(d)
    loss = np.where(a < beta, 0.5 * d * d / beta, a - 0.5 * beta)
    return float(loss.mean()), (d, beta)


def smooth_l1_backward(cache, dloss: float = 1.0) -> np.ndarray:
    """-> dpred (shape of pred)."""
    need_forward("smooth_l1", cache)
    d, beta = cache
    g = np.clip(d / d.dtype.type(beta), -1, 1)
    g *= d.dtype.type(dloss / d.size)
    return g
