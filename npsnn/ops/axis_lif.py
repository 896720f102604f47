"""SNN-MLP's full-precision LIF that runs *across patches* along H or W (no time axis).

From "Brain-inspired Multilayer Perceptron with Spiking Neurons" (Li W. et al., CVPR 2022).
Along the chosen axis, positions are taken in consecutive groups of ``s``; inside a group
the position index plays the role of time. For j = 0..s-1 (x: (B, C, H, W))::

    u_j = tau * o_j + x_j            o_0 = 0
    f_j = u_j > Vth                  (strict)
    y_j = u_j  if f_j  else  Vth
    o_{j+1} = 0  if f_j  else  u_j

Rows past the last full group pass through unchanged (y = x). ``tau`` and ``Vth`` are
learnable scalars. The backward treats the fire decision f_j as a constant (as the
official CUDA kernel does), so with g_j = dL/du_j::

    g_j   = dy_j * f_j + g_{j+1} * tau * (1 - f_j)          (g_s = 0)
    dx_j  = g_j
    dtau  = sum_j g_j * o_j                                  (u_j depends on tau via tau*o_j)
    dVth  = sum_j dy_j * (1 - f_j)

The loop runs over the s positions of a group only; groups, batch, channels and the other
spatial axis are one vectorised slab.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import expect_array, expect_choice, expect_finite_number, expect_positive_int, \
    expect_same_shape, expect_shape, need_forward
from ..module import Module

# Position of the H and W axes in each layout: (B, C, H, W) or channels-last (B, H, W, C).
_AXES = {"NCHW": {"h": 2, "w": 3}, "NHWC": {"h": 1, "w": 2}}


def _grouped(x: np.ndarray, axis: int, group: int):
    """View the full groups of ``x`` along ``axis`` as (s, ...) with the in-group index first.

    Returns (view (s, B, C, n_groups, other), n_full) where n_full = rows in full groups.
    """
    x = np.moveaxis(x, axis, -1)                          # (B, C, other, L)
    n_full = (x.shape[-1] // group) * group
    g = x[..., :n_full].reshape(x.shape[:-1] + (n_full // group, group))
    return np.moveaxis(g, -1, 0), n_full                  # (s, B, C, other, groups)


@dataclass
class AxisLIFCache:
    axis: int
    group: int
    tau: float
    shape: tuple
    fired: np.ndarray       # (s, ...) bool: f_j
    carried: np.ndarray     # (s, ...) o_j, the membrane carried into step j


def axis_lif_forward(x: np.ndarray, tau, v_threshold, *, axis: str = "h", group: int = 4,
                     layout: str = "NCHW"):
    """x: (B, C, H, W) (or (B, H, W, C) for layout "NHWC") -> (y same shape, cache).
    tau, v_threshold: scalars (or 1-element arrays)."""
    expect_choice("AxisLIF", "layout", layout, _AXES)
    expect_choice("AxisLIF", "axis", axis, _AXES[layout])
    group = expect_positive_int("AxisLIF", "group", group)
    expect_array("AxisLIF", "x", x)
    expect_shape("AxisLIF", "x", x, tuple(layout.replace("N", "B")))
    ax = _AXES[layout][axis]
    tau = x.dtype.type(np.asarray(tau).reshape(-1)[0])
    vth = x.dtype.type(np.asarray(v_threshold).reshape(-1)[0])
    y = x.copy()                                          # remainder rows pass through
    xg, n_full = _grouped(x, ax, group)
    yg, _ = _grouped(y, ax, group)
    fired = np.empty(xg.shape, dtype=bool)
    carried = np.empty(xg.shape, dtype=x.dtype)
    o = np.zeros(xg.shape[1:], dtype=x.dtype)
    for j in range(group):
        carried[j] = o
        u = tau * o + xg[j]
        np.greater(u, vth, out=fired[j])
        yg[j] = np.where(fired[j], u, vth)
        o = np.where(fired[j], 0, u)
    return y, AxisLIFCache(ax, group, float(tau), x.shape, fired, carried)


def axis_lif_backward(dy: np.ndarray, cache: AxisLIFCache):
    """dy: (B, C, H, W) -> (dx, dtau (1,), dv_threshold (1,))."""
    need_forward("AxisLIF", cache)
    expect_same_shape("AxisLIF.backward", "dy", dy, cache.shape)
    dx = dy.copy()
    dyg, _ = _grouped(dy, cache.axis, cache.group)
    dxg, _ = _grouped(dx, cache.axis, cache.group)
    f, o = cache.fired, cache.carried
    g_next = np.zeros(dyg.shape[1:], dtype=dy.dtype)
    dtau = 0.0
    for j in reversed(range(cache.group)):
        g = np.where(f[j], dyg[j], cache.tau * g_next)
        dxg[j] = g
        dtau += float(np.vdot(g, o[j]))
        g_next = g
    dvth = float(np.sum(dyg, where=~f))
    return dx, np.array([dtau], dtype=dy.dtype), np.array([dvth], dtype=dy.dtype)


class AxisLIF(Module):
    """``AxisLIF(axis="h" | "w", group=4, tau=0.25, v_threshold=-1.0)``.

    ``y = lif.forward(x)`` for x (B, C, H, W); ``dx = lif.backward(dy)``;
    ``lif.named_grads()`` -> ``{"tau": (1,), "v_threshold": (1,)}``. Set ``train_tau`` or
    ``train_threshold`` False to freeze a scalar (its gradient stays zero).
    """

    def __init__(self, axis: str = "h", group: int = 4, tau: float = 0.25,
                 v_threshold: float = -1.0, *, train_tau: bool = True,
                 train_threshold: bool = True, layout: str = "NCHW", dtype=np.float32) -> None:
        super().__init__()
        expect_choice("AxisLIF", "layout", layout, _AXES)
        expect_choice("AxisLIF", "axis", axis, _AXES[layout])
        self.group = expect_positive_int("AxisLIF", "group", group)
        tau = expect_finite_number("AxisLIF", "tau", tau)
        v_threshold = expect_finite_number("AxisLIF", "v_threshold", v_threshold)
        if not train_tau and tau < 0:
            raise ValueError(f"AxisLIF: a frozen tau must be >= 0 (a negative leak flips the "
                             f"sign of the carried membrane every step), got {tau}")
        self.axis, self.layout = axis, layout
        self.train_tau, self.train_threshold = train_tau, train_threshold
        self.add_param("tau", np.array([tau], dtype=dtype))
        self.add_param("v_threshold", np.array([v_threshold], dtype=dtype))
        self._cache = None

    def forward(self, x):
        expect_array("AxisLIF", "x", x)
        if x.dtype != self.params["tau"].dtype:
            # the scalars would be rounded to x's dtype and their gradients to theirs
            raise TypeError(f"AxisLIF holds {self.params['tau'].dtype} parameters but x is "
                            f"{x.dtype}; convert x with x.astype(np.{self.params['tau'].dtype})"
                            f" or build the layer with dtype=np.{x.dtype}")
        y, cache = axis_lif_forward(x, self.params["tau"], self.params["v_threshold"],
                                    axis=self.axis, group=self.group, layout=self.layout)
        self._cache = cache if self.training else None
        return y

    def backward(self, dy):
        dx, dtau, dvth = axis_lif_backward(dy, self._cache)
        if self.train_tau:
            self.grads["tau"] += dtau
        if self.train_threshold:
            self.grads["v_threshold"] += dvth
        self._cache = None
        return dx
