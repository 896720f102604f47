"""Integer primitives shared by the fast and the event-driven paths.

Everything here works on exact integers (``int64`` arrays). Three rules are part of the
golden-model specification (docs/golden-model.md):

    rshift(a, e) = (a + 2^(e-1)) >> e    e > 0   (round half up; >> is the floor shift)
                 = a << (-e)             e <= 0
    LIF step     H = V + ((X - V) >> k)  (tau = 2^k; for tau = 2 this is (V + X) >> 1)
                 S = H >= theta,  V = 0 if S else H
    range check  every checked value must lie in [-2^(b-1), 2^(b-1) - 1] for its declared
                 width b; the check is applied to the exact result of the documented
                 operation (never to partial sums), so the order of accumulation is free.
"""
from __future__ import annotations

import numpy as np

EQUATION_VERSION = "npsnn-golden-2"
# Versions whose manifests this code still runs: 2 added the dense_shift_token term kind
# (shared weights, per-token shifts) and changed nothing else, so 1 is a subset of 2.
READABLE_VERSIONS = ("npsnn-golden-1", "npsnn-golden-2")
POLICIES = ("error", "saturate", "wrap")


class GoldenOverflowError(OverflowError):
    """A value left its declared bit width under the 'error' policy."""


def rshift(a: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Rounded arithmetic shift by a per-element exponent ``e`` (broadcast against a).

    ``e > 0``: (a + 2^(e-1)) >> e (round half up); ``e <= 0``: a << -e. Exact on int64.
    """
    a = np.asarray(a, dtype=np.int64)
    e = np.asarray(e, dtype=np.int64)
    pos = np.maximum(e, 0)
    half = np.where(pos > 0, np.left_shift(np.int64(1), np.maximum(pos - 1, 0)), 0)
    right = np.right_shift(a + half, pos)
    return np.where(e > 0, right, np.left_shift(a, np.maximum(-e, 0)))


def int_range(bits: int) -> tuple[int, int]:
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def check_range(values: np.ndarray, bits: int, policy: str, where: str, field: str,
                events: list | None, index_names=("t", "image"), t0: int = 0) -> np.ndarray:
    """Apply the overflow policy to ``values`` (int64) for a signed ``bits``-bit register.

    error: raise :class:`GoldenOverflowError` naming the layer, field, position and value;
    saturate: clamp to the range; wrap: two's complement modulo 2^bits. Saturate and wrap
    append ``{layer, field, count, first}`` to ``events`` so the caller can report them.
    ``values`` is laid out (T, B, ...) (or (1, B, ...) for time-invariant values); the
    position is reported as t, image and the index inside one image.
    """
    lo, hi = int_range(bits)
    bad = (values < lo) | (values > hi)
    if not bad.any():
        return values
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    value = int(values[first])
    first = (first[0] + t0,) + first[1:]
    pos = dict(zip(index_names, first[:2]))
    pos["index"] = first[2:]
    msg = (f"golden model overflow in layer '{where}' ({field}, {bits}-bit signed range "
           f"[{lo}, {hi}]): value {value} at t={pos.get('t')}, image={pos.get('image')}, "
           f"index={pos['index']} ({int(bad.sum())} value(s) out of range). Use a wider "
           f"width (e.g. --mem-bits/--acc-bits), a smaller unit, or policy 'saturate'/'wrap'.")
    if policy == "error":
        raise GoldenOverflowError(msg)
    if events is not None:
        events.append(dict(layer=where, field=field, count=int(bad.sum()), first=pos,
                           value=value))
    if policy == "saturate":
        return np.clip(values, lo, hi)
    if policy == "wrap":
        span = np.int64(1) << np.int64(bits)
        return ((values - lo) % span) + lo
    raise ValueError(f"golden model expected policy to be one of {POLICIES}, got {policy!r}")


def lif_step(v: np.ndarray, x: np.ndarray, theta: np.ndarray, leak_shift: int):
    """One integer LIF update: -> (spikes (bool), v_new). H = V + ((X - V) >> k)."""
    h = v + np.right_shift(x - v, leak_shift)
    s = h >= theta
    return s, np.where(s, 0, h), h
