"""Input validation with error messages that name the problem and the fix.

Every public op checks its inputs here, so a wrong shape fails with
``Conv2d expected x of shape (T, B, 3, H, W), got (4, 3, 32, 32)`` instead of a
broadcasting error from deep inside NumPy.
"""
from __future__ import annotations

import numpy as np


def _fmt(spec) -> str:
    return "(" + ", ".join(str(s) for s in spec) + ")"


def expect_array(op: str, name: str, x, *, floating: bool = True) -> np.ndarray:
    """Check that ``x`` is an ndarray (of a floating dtype when ``floating``)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{op} expected {name} to be a numpy.ndarray, got {type(x).__name__}")
    if floating and x.dtype.kind != "f":
        raise TypeError(f"{op} expected {name} with a floating dtype (float32 or float64), "
                        f"got {x.dtype}; convert with {name}.astype(np.float32)")
    return x


def expect_shape(op: str, name: str, x: np.ndarray, spec, *, leading: bool = False) -> dict:
    """Check ``x.shape`` against ``spec``.

    ``spec`` is a tuple whose entries are ints (must match) or strings (any size; the
    same string twice must be the same size). With ``leading=True`` any number of
    extra leading axes is allowed, written ``...`` in the message.
    Returns the sizes bound to the string names.
    """
    spec = tuple(spec)
    shape = tuple(x.shape)
    shown = ("...",) + spec if leading else spec
    ok = len(shape) >= len(spec) if leading else len(shape) == len(spec)
    bound: dict = {}
    if ok:
        tail = shape[len(shape) - len(spec):] if spec else ()
        for want, got in zip(spec, tail):
            if isinstance(want, str):
                if bound.setdefault(want, got) != got:
                    ok = False
            elif want != got:
                ok = False
    if not ok:
        raise ValueError(f"{op} expected {name} of shape {_fmt(shown)}, got {shape}")
    if 0 in shape:
        raise ValueError(f"{op} got an empty {name} of shape {shape}: every axis needs at "
                         f"least one element (an empty batch?)")
    return bound


def expect_same_shape(op: str, name: str, x: np.ndarray, shape) -> None:
    if tuple(x.shape) != tuple(shape):
        raise ValueError(f"{op} expected {name} of shape {tuple(shape)} (the shape of the "
                         f"forward output), got {tuple(x.shape)}")


class NonFiniteError(ValueError):
    """NaN or inf where a finite number is needed (nothing was changed)."""


def expect_finite_number(op: str, name: str, value) -> float:
    """A real, finite number (not a bool) -> float."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value):
        raise ValueError(f"{op} expected {name} to be a finite number, got {value!r}")
    return float(value)


def expect_positive_int(op: str, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{op} expected {name} to be a positive integer, got {value!r}")
    return int(value)


def expect_choice(op: str, name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{op} expected {name} to be one of {sorted(map(str, choices))}, "
                         f"got {value!r}")


def need_forward(op: str, cache) -> None:
    if cache is None:
        raise RuntimeError(f"{op}.backward called before forward (or twice after one "
                           f"forward): run forward in train mode first")
