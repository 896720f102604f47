"""Losses on multi-step logits ``(T, B, K)``; each returns ``(loss, cache)`` and its
backward returns ``dlogits (T, B, K)`` for an upstream scalar gradient ``dloss``.

Cross-entropy on the T-averaged logits (the sMLPNet training loss; the prediction is the
mean over time), with PyTorch's label smoothing ``ls``::

    o = mean_t logits[t]                 p = softmax(o)
    q = (1 - ls) onehot(y) + ls / K      (the smoothed target)
    L = mean_b  sum_k -q[b, k] log p[b, k]
    dL/dlogits[t] = (p - q) / (B T)

TET (Deng et al. 2022, "Temporal efficient training"), the loss applied at every step::

    L = mean_t [ (1 - lam) CE(logits[t], y) + lam MSE(logits[t], phi) ]

with CE averaged over the batch (label smoothing allowed) and MSE over batch x classes,
lam = 0.05, phi = 1. We *average* over t; the official code sums over t, which is the
same loss times T (equivalently, T times the learning rate).

Soft-target cross-entropy (timm's ``SoftTargetCrossEntropy``, the loss of the official
``train.py``, whose Mixup / CutMix hands it mixed, label-smoothed targets ``q`` (B, K), each
row a probability vector)::

    L = mean_b  sum_k -q[b, k] log softmax(mean_t logits)[b, k]
    dL/dlogits[t] = (p - q) / (B T)

MSE: ``L = mean((pred - target)^2)`` over every element.
"""
from __future__ import annotations

import numpy as np

from .._checks import expect_array, expect_shape, need_forward


def _check_logits(op: str, logits, labels) -> tuple[np.ndarray, np.ndarray]:
    expect_array(op, "logits", logits)
    dims = expect_shape(op, "logits", logits, ("T", "B", "K"))
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{op} expected integer class labels, got dtype {labels.dtype}")
    if labels.shape != (dims["B"],):
        raise ValueError(f"{op} expected labels of shape ({dims['B']},) (one per sample), "
                         f"got {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= dims["K"]):
        raise ValueError(f"{op} expected labels in [0, {dims['K'] - 1}], got values from "
                         f"{labels.min()} to {labels.max()}")
    return logits, labels.astype(np.int64)


def _check_smoothing(op: str, label_smoothing: float) -> float:
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op} expected label_smoothing in [0, 1], got {label_smoothing!r}")
    return float(label_smoothing)


def _softmax_ce(o: np.ndarray, labels: np.ndarray, ls: float):
    """o: (..., B, K) -> (per-row loss (..., B), p - q (..., B, K)). Stable log-softmax."""
    K = o.shape[-1]
    z = o - o.max(axis=-1, keepdims=True)
    logsumexp = np.log(np.exp(z).sum(axis=-1, keepdims=True))
    logp = z - logsumexp
    q = np.full(o.shape, ls / K, dtype=o.dtype)
    np.put_along_axis(q, np.broadcast_to(labels[..., None], o.shape[:-1] + (1,)),
                      (1 - ls) + ls / K, axis=-1)
    loss = -(q * logp).sum(axis=-1)
    return loss, np.exp(logp) - q


def cross_entropy_forward(logits: np.ndarray, labels, label_smoothing: float = 0.0):
    """logits: (T, B, K), labels: (B,) ints -> (loss float, cache)."""
    logits, labels = _check_logits("cross_entropy", logits, labels)
    ls = _check_smoothing("cross_entropy", label_smoothing)
    T, B, _ = logits.shape
    loss, p_minus_q = _softmax_ce(logits.mean(axis=0), labels, ls)
    return float(loss.mean()), (p_minus_q, T, B)


def cross_entropy_backward(cache, dloss: float = 1.0) -> np.ndarray:
    """-> dlogits (T, B, K): every step gets the same share of (p - q) / B."""
    need_forward("cross_entropy", cache)
    p_minus_q, T, B = cache
    d = p_minus_q * p_minus_q.dtype.type(dloss / (B * T))
    return np.ascontiguousarray(np.broadcast_to(d, (T,) + d.shape))


def soft_cross_entropy_forward(logits: np.ndarray, targets: np.ndarray):
    """logits: (T, B, K), targets: (B, K) probabilities -> (loss float, cache)."""
    expect_array("soft_cross_entropy", "logits", logits)
    dims = expect_shape("soft_cross_entropy", "logits", logits, ("T", "B", "K"))
    targets = np.asarray(targets)
    if targets.shape != (dims["B"], dims["K"]):
        raise ValueError(f"soft_cross_entropy expected targets of shape ({dims['B']}, "
                         f"{dims['K']}) (one distribution per sample), got {targets.shape}")
    T, B, _ = logits.shape
    o = logits.mean(axis=0)
    z = o - o.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    q = targets.astype(logits.dtype, copy=False)
    loss = -(q * logp).sum(axis=-1)
    return float(loss.mean()), (np.exp(logp) - q, T, B)


def soft_cross_entropy_backward(cache, dloss: float = 1.0) -> np.ndarray:
    """-> dlogits (T, B, K); the same form as :func:`cross_entropy_backward`."""
    return cross_entropy_backward(cache, dloss)


def mse_forward(pred: np.ndarray, target):
    """pred: any shape, target: broadcastable to it -> (loss float, cache)."""
    expect_array("mse", "pred", pred)
    target = np.asarray(target, dtype=pred.dtype)
    try:
        diff = pred - np.broadcast_to(target, pred.shape)
    except ValueError:
        raise ValueError(f"mse expected target broadcastable to pred {pred.shape}, got "
                         f"{target.shape}") from None
    return float(np.mean(diff * diff)), diff


def mse_backward(cache, dloss: float = 1.0) -> np.ndarray:
    need_forward("mse", cache)
    diff = cache
    return diff * diff.dtype.type(2.0 * dloss / diff.size)


def tet_forward(logits: np.ndarray, labels, lam: float = 0.05, phi: float = 1.0,
                label_smoothing: float = 0.0):
    """TET on logits (T, B, K), averaged over t -> (loss float, cache)."""
    logits, labels = _check_logits("tet", logits, labels)
    ls = _check_smoothing("tet", label_smoothing)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"tet expected lam in [0, 1], got {lam!r}")
    T, B, K = logits.shape
    ce, p_minus_q = _softmax_ce(logits, labels, ls)          # per (t, b)
    diff = logits - logits.dtype.type(phi)
    loss = (1 - lam) * ce.mean() + lam * np.mean(diff * diff)
    return float(loss), (p_minus_q, diff, lam)


def tet_backward(cache, dloss: float = 1.0) -> np.ndarray:
    need_forward("tet", cache)
    p_minus_q, diff, lam = cache
    T, B, K = diff.shape
    dt = diff.dtype.type
    d = p_minus_q * dt((1 - lam) * dloss / (T * B))
    d += diff * dt(lam * 2.0 * dloss / diff.size)
    return d


LOSSES = {"ce": (cross_entropy_forward, cross_entropy_backward),
          "tet": (tet_forward, tet_backward)}
