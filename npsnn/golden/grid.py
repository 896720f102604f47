"""The integer weight grid of the golden model (docs/golden-model.md, section 5).

A folded real weight row ``w`` (one output channel of a term) is represented as
``q 2^-e / u``: ``u`` the stage's integer unit, ``q`` integers with
``|q| <= qmax = 2^(bits-1) - 1`` and ``e`` one power-of-two exponent per row, the largest
that keeps the row inside ``qmax``, so every row uses its full range::

    q = rint(u 2^e w)            (numpy rint: round half to even)

The term computes ``rshift(sum q x, e)``, which is back at the unit ``u``. Because units
are powers of two, a row on the grid at one unit is on it at every unit: that is what
:mod:`npsnn.golden.snap` relies on. Biases are rounded at the unit: ``rint(u b)``.

Pure functions of arrays; nothing here knows a model.
"""
from __future__ import annotations

import numpy as np

from .intops import int_range

E_MIN, E_MAX = -40, 40  # allowed per-row exponents (stored as 8-bit signed shifts)


def quantise_rows(w: np.ndarray, unit: float, qmax: int, where: str):
    """w: (R, ...) real weights -> (q int64 same shape, e int64 (R,)), per-row exponent.

    e = the largest integer with max |rint(unit 2^e row)| <= qmax (0 for an all-zero row).
    The test is on the rounded integers themselves, so a row already on the grid (a
    snapped checkpoint, stored in float32) keeps exactly its integers.
    """
    rows = w.reshape(w.shape[0], -1)
    peak = np.abs(rows).max(axis=1) * unit
    e = np.zeros(len(rows), np.int64)
    nz = peak > 0
    e[nz] = np.floor(np.log2(qmax / peak[nz])).astype(np.int64)

    def fits(exps):
        return np.abs(np.rint(rows * unit * np.exp2(exps.astype(np.float64))[:, None])) \
            .max(axis=1) <= qmax
    # floor(log2) is off by one at the edges (float rounding, rint to qmax): settle each
    # row on the exact criterion, one step either way
    e[nz & ~fits(e)] -= 1
    e[nz & fits(e + 1)] += 1
    if (e < E_MIN).any():
        raise ValueError(f"golden convert: weights of '{where}' are too large for the unit "
                         f"{unit} even with shift {E_MIN}; use more weight bits")
    e = np.minimum(e, E_MAX)
    q = np.rint(rows * unit * np.exp2(e.astype(np.float64))[:, None])
    return q.astype(np.int64).reshape(w.shape), e


def snap_rows(w: np.ndarray, qmax: int, where: str) -> np.ndarray:
    """The grid point of every row of ``w`` (R, ...): ``q 2^-e`` with ``q, e`` from
    :func:`quantise_rows` at unit 1 (float64, same shape). Idempotent."""
    q, e = quantise_rows(w, 1.0, qmax, where)
    return (q.reshape(len(e), -1) * np.exp2(-e.astype(np.float64))[:, None]).reshape(w.shape)


def round_bias(b: np.ndarray, unit, bits: int, where: str) -> np.ndarray:
    """rint(unit b) as int64; ValueError when a value needs more than ``bits`` bits."""
    q = np.rint(np.asarray(b, np.float64) * unit).astype(np.int64)
    cap = int_range(bits)[1]
    if np.abs(q).max(initial=0) > cap:
        raise ValueError(f"golden convert: bias of '{where}' needs more than {bits} bits at "
                         f"unit {unit}; raise bias_bits or lower the unit")
    return q


def nearest_pow2_exponent(g: np.ndarray) -> np.ndarray:
    """a = rint(log2 |g|) per gain (int64; 0 for a zero gain): |g| is closest to 2^a in
    the log domain."""
    a = np.abs(np.asarray(g, np.float64))
    return np.rint(np.log2(np.where(a != 0, a, 1.0))).astype(np.int64)


def pow2_gains(g: np.ndarray, tol: float = 2.0 ** -20) -> bool:
    """True when every nonzero gain is +-2^a for an integer a, within ``tol`` relative (a
    snapped checkpoint stored in float32 is off by float rounding)."""
    a = np.abs(np.asarray(g, np.float64))
    live = a != 0
    return bool(np.all(np.abs(a[live] / np.exp2(nearest_pow2_exponent(a[live])) - 1) <= tol))
