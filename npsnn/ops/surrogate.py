"""Surrogate gradients: a smooth stand-in for d heaviside(x) / dx in the backward pass.

Each surrogate has a *primitive* g(x) (a smooth step) and its derivative g'(x). The
forward pass fires with the true step; the backward pass uses g'. In smooth-spike mode
(for finite-difference checks) the forward fires with g itself, so the backward is then
the exact derivative.

    Sigmoid(alpha):  g(x) = sig(alpha x)            g'(x) = alpha sig(alpha x) (1 - sig(alpha x))
    ATan(alpha):     g(x) = 1/2 + atan(pi/2 alpha x) / pi
                     g'(x) = alpha / 2 / (1 + (pi/2 alpha x)^2)

The sigmoid is evaluated through tanh, ``sig(z) = (1 + tanh(z/2)) / 2``, which never
overflows (``exp`` of a large membrane would, in float32).
"""
from __future__ import annotations

import numpy as np

DEFAULT_ALPHA = {"sigmoid": 4.0, "atan": 2.0}


def primitive(name: str, alpha: float, x: np.ndarray) -> np.ndarray:
    """The smooth step g(x), same dtype as x."""
    if name == "sigmoid":
        y = np.tanh(x * (0.5 * alpha))
        y += 1
        y *= 0.5
        return y
    y = np.arctan(x * (np.pi / 2 * alpha))
    y *= 1 / np.pi
    y += 0.5
    return y


def derivative(name: str, alpha: float, x: np.ndarray, out: np.ndarray | None = None,
               scale: float = 1.0) -> np.ndarray:
    """``scale`` g'(x), written into ``out`` if given (same dtype as x). ``scale`` rides on
    the last constant factor, so a caller's gain costs no extra pass."""
    if name == "sigmoid":
        # alpha sig (1 - sig) = alpha/4 (1 - tanh(alpha x / 2)^2)
        y = np.multiply(x, 0.5 * alpha, out=out)
        np.tanh(y, out=y)
        np.square(y, out=y)
        np.subtract(1, y, out=y)
        y *= 0.25 * alpha * scale
        return y
    y = np.multiply(x, np.pi / 2 * alpha, out=out)
    np.square(y, out=y)
    y += 1
    np.divide(0.5 * alpha * scale, y, out=y)
    return y
