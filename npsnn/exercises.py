"""Exercises in the tutorials: the learner's function, checked against the library.

An exercise is a *stub* cell, a function the learner completes::

    def charge(v, x, tau=2.0):
        \"\"\"One LIF charge step. v, x: (...) -> H (...).\"\"\"
        # your code here (one line)
        raise NotImplementedError

followed by a *check* cell that runs it next to a reference (a library function, or
finite differences of a loss) on a few inputs and prints one line::

    charge = check(charge, reference=charge_by_npsnn, cases=[(v, x), (v, x, 4.0)])

    charge: correct (2 cases, largest difference 0.0e+00)
    charge: not yet: max error 3.8e-01 in output (40 of 40 values out of tolerance) in
        case 2 of 2 (float64 (8, 5), float64 (8, 5), 4.0); the cells below use the reference ...
    charge: not implemented yet: ... the cells below use the reference solution ...

:func:`check` returns the function the rest of the notebook should use: the learner's once
it is correct, the reference otherwise. So a notebook always runs top to bottom, with the
stubs left empty (CI) or half done (a learner), and says which of its results come from the
reference. The verdict is the word after the name: ``correct``, ``not yet`` or
``not implemented yet`` (the :data:`VERDICTS`; tests/tutorials/test_tutorials.py reads them).
"""
from __future__ import annotations

import copy
from typing import Any, Callable, Iterable

import numpy as np

CORRECT, NOT_YET, NOT_IMPLEMENTED = "correct", "not yet", "not implemented yet"
#: every line :func:`check` prints starts with ``"<name>: <verdict>"``
VERDICTS = (CORRECT, NOT_YET, NOT_IMPLEMENTED)


class _Mismatch(Exception):
    """Raised by :func:`_compare` with a message saying where the outputs differ."""


def check(candidate: Callable, reference: Callable, cases: Iterable, *, rtol: float = 1e-9,
          atol: float = 1e-12, name: str | None = None) -> Callable:
    """Run ``candidate`` and ``reference`` on every case and print the verdict.

    cases: each case is a tuple (positional arguments), a dict (keyword arguments) or any
        other value (the single positional argument). Every call gets its own deep copy,
        so a function that writes into its inputs cannot spoil the next call.
    rtol, atol: an output value passes when ``|got - expected| <= atol + rtol |expected|``
        (so integer and boolean outputs must match exactly). Outputs may be arrays,
        numbers, or tuples/lists/dicts of them; shapes and structure must match.
    -> ``candidate`` when it is correct on every case, else ``reference``.
    """
    name = name or getattr(candidate, "__name__", "your function")
    cases = list(cases)
    if not cases:
        raise ValueError(f"check({name}) needs at least one case to run")
    if rtol < 0 or atol < 0:
        raise ValueError(f"check({name}) expected rtol, atol >= 0, got {rtol}, {atol}")
    worst = 0.0
    for i, case in enumerate(cases, start=1):
        args, kwargs = _arguments(case)
        expected = reference(*copy.deepcopy(args), **copy.deepcopy(kwargs))
        where = f"case {i} of {len(cases)} ({_describe(args, kwargs)})"
        try:
            got = candidate(*copy.deepcopy(args), **copy.deepcopy(kwargs))
        except NotImplementedError:
            print(f"{name}: {NOT_IMPLEMENTED}: the cells below use the reference solution "
                  f"({_qualname(reference)}). Fill in the stub, then run it and this cell "
                  f"again.")
            return reference
        except Exception as error:                      # the learner's bug, reported
            print(f"{name}: {NOT_YET}: your function raised {type(error).__name__}: {error} "
                  f"in {where}; the cells below use the reference solution.")
            return reference
        try:
            worst = max(worst, _compare(got, expected, rtol, atol, "output"))
        except _Mismatch as mismatch:
            print(f"{name}: {NOT_YET}: {mismatch} in {where}; the cells below use the "
                  f"reference solution.")
            return reference
    print(f"{name}: {CORRECT} ({len(cases)} case{'s' * (len(cases) > 1)}, largest "
          f"difference {worst:.1e})")
    return candidate


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray,
                       eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar ``f(x)`` for every element of ``x``::

        df/dx[i] ~ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)

    x: float64 array (any shape) -> gradient, same shape. The reference of gradient
    exercises: ``check(my_grad, reference=lambda x: numerical_gradient(loss, x), ...)``.
    """
    x = np.asarray(x)
    if x.dtype != np.float64:
        raise TypeError(f"numerical_gradient expects float64 (finite differences in float32 "
                        f"lose about half their digits), got {x.dtype}; use x.astype(np.float64)")
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = eps
        grad[i] = (f(x + step) - f(x - step)) / (2 * eps)
    return grad


def _arguments(case) -> tuple[tuple, dict]:
    if isinstance(case, tuple):
        return case, {}
    if isinstance(case, dict):
        return (), case
    return (case,), {}


def _compare(got: Any, expected: Any, rtol: float, atol: float, what: str) -> float:
    """-> the largest |got - expected| over every number; raises _Mismatch if any value
    is out of tolerance or the shapes/structure differ."""
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            raise _Mismatch(f"{what} should be a dict with keys {sorted(expected)}, got "
                            f"{sorted(got) if isinstance(got, dict) else type(got).__name__}")
        return max([_compare(got[k], expected[k], rtol, atol, f"{what}[{k!r}]")
                    for k in expected], default=0.0)
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            count = len(got) if isinstance(got, (tuple, list)) else "not a tuple"
            raise _Mismatch(f"{what} should be {len(expected)} values, got {count}")
        return max([_compare(g, e, rtol, atol, f"{what}[{k}]")
                    for k, (g, e) in enumerate(zip(got, expected))], default=0.0)
    expected = np.asarray(expected)
    try:
        got = np.asarray(got, dtype=np.result_type(expected.dtype, np.float64)
                         if expected.dtype.kind in "fc" else None)
    except (TypeError, ValueError):
        raise _Mismatch(f"{what} should be a number or an array, got "
                        f"{type(got).__name__}") from None
    if got.shape != expected.shape:
        raise _Mismatch(f"{what} has shape {got.shape} but should have shape {expected.shape}")
    if got.dtype.kind not in "biufc" or expected.dtype.kind not in "biufc":
        if not np.array_equal(got, expected):
            raise _Mismatch(f"{what} differs")
        return 0.0
    g, e = got.astype(np.float64), expected.astype(np.float64)
    if not np.isfinite(g[np.isfinite(e)]).all():
        raise _Mismatch(f"{what} has nan or inf where the reference is finite")
    both_finite = np.isfinite(e)
    if not np.array_equal(g[~both_finite], e[~both_finite], equal_nan=True):
        raise _Mismatch(f"{what} differs where the reference is nan or inf")
    diff = np.abs(g - e)[both_finite]
    if diff.size == 0:
        return 0.0
    bad = diff > atol + rtol * np.abs(e[both_finite])
    if bad.any():
        raise _Mismatch(f"max error {diff.max():.1e} in {what} ({int(bad.sum())} of "
                        f"{diff.size} values out of tolerance)")
    return float(diff.max())


def _describe(args: tuple, kwargs: dict) -> str:
    """Short description of a case's arguments: arrays by dtype and shape, the rest by repr."""
    def one(value) -> str:
        if isinstance(value, np.ndarray):
            return f"{value.dtype} {value.shape}"
        text = repr(value)
        return text if len(text) <= 30 else text[:27] + "..."
    parts = [one(a) for a in args] + [f"{k}={one(v)}" for k, v in kwargs.items()]
    return ", ".join(parts) or "no arguments"


def _qualname(function: Callable) -> str:
    module = getattr(function, "__module__", None)
    qualname = getattr(function, "__qualname__", None) or repr(function)
    if module in (None, "__main__", "builtins") or "<lambda>" in qualname:
        return qualname if "<lambda>" not in qualname else "defined in the check cell"
    return f"{module}.{qualname}"
