"""Finite-difference gradient checking in float64.

Error per tensor: ``max|a - n| / max(max|a| + max|n|, floor)``; the floor keeps
gradients that are zero in exact arithmetic (a bias feeding a train-mode BN) from
failing on rounding noise. Central differences with step ``eps``.

Usage pattern (see tests/test_ops_*.py):

    def loss():                       # scalar function of the arrays being checked
        y, _ = conv2d_forward(x, w, b, stride, pad)
        return float(np.sum(y * g))   # g: a fixed random upstream gradient
    y, cache = conv2d_forward(x, w, b, stride, pad)
    dx, dw, db = conv2d_backward(g, cache)
    assert_grads(loss, {"x": (x, dx), "w": (w, dw), "b": (b, db)})
"""
from __future__ import annotations

import numpy as np

TOL = 1e-6


def numeric_grad(f, x: np.ndarray, eps: float = 1e-6, indices=None) -> np.ndarray:
    """Central-difference gradient of scalar ``f()`` w.r.t. ``x`` (perturbed in place).

    indices: optional iterable of flat indices to check (others stay NaN); default all.
    """
    assert x.dtype == np.float64, "gradient checks run in float64"
    grad = np.full(x.shape, np.nan) if indices is not None else np.zeros(x.shape)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    assert np.shares_memory(flat, x), "x must be contiguous so it can be perturbed in place"
    for i in (range(x.size) if indices is None else indices):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return grad


def rel_error(analytic: np.ndarray, numeric: np.ndarray, floor: float = 1e-8) -> float:
    mask = ~np.isnan(numeric)
    a, n = np.asarray(analytic)[mask], numeric[mask]
    if a.size == 0:
        return 0.0
    scale = max(np.abs(a).max() + np.abs(n).max(), floor)
    return float(np.abs(a - n).max() / scale)


def assert_grads(f, pairs: dict, *, eps: float = 1e-6, tol: float = TOL, floor: float = 1e-8,
                 max_checks: int | None = 400, seed: int = 0) -> dict:
    """Check every ``name: (array, analytic_grad)`` in ``pairs`` against finite differences.

    Arrays larger than ``max_checks`` are checked at that many random entries.
    Returns ``{name: error}``; raises AssertionError naming the worst tensor.
    """
    rng = np.random.default_rng(seed)
    errors = {}
    for name, (x, analytic) in pairs.items():
        assert analytic is not None, f"no analytic gradient for {name}"
        assert analytic.shape == x.shape, f"{name}: grad shape {analytic.shape} != {x.shape}"
        idx = None
        if max_checks is not None and x.size > max_checks:
            idx = rng.choice(x.size, size=max_checks, replace=False)
        errors[name] = rel_error(analytic, numeric_grad(f, x, eps, idx), floor)
    bad = {k: v for k, v in errors.items() if not v < tol}
    assert not bad, f"gradient check failed (tol {tol}): {bad}"
    return errors


def weighted_pairs(x, dx, w, dw, b=None, db=None) -> dict:
    """``assert_grads`` pairs for an op with input x, weight w and optional bias b; checks
    that an op without bias returns no bias gradient."""
    pairs = {"x": (x, dx), "w": (w, dw)}
    if b is not None:
        pairs["b"] = (b, db)
    else:
        assert db is None, "an op without bias must return db=None"
    return pairs
