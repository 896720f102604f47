"""1-D convolutions over sequences (B, C, L), PyTorch ``Conv1d`` layout: the two kinds the
surrogate dynamic network and SpikingSSM use.

**Depthwise** (``Conv1d(C, C, k, padding=p, groups=C)``): every channel filtered by its own
k taps, zero padding p on both sides, Lout = L + 2p - k + 1::

    y[b, c, l] = sum_a x_pad[b, c, l + a] w[c, 0, a] + bias[c]
    dw[c, 0, a] = sum_{b,l} dy[b, c, l] x_pad[b, c, l + a],   dx_pad[b, c, l + a] += dy w[c, 0, a]

The sum runs as k whole-tensor multiply-adds, one per tap. With p = k and the output cut
to its first L values the filter is *strictly causal*: y[l] sees x[l-k .. l-1], never x[l]
(the SDN's first layer, which predicts the membrane *before* step l's input arrives).

**Pointwise** (``Conv1d(Cin, Cout, 1)``, or ``Linear(Cin, Cout)`` applied at every position):
one (Cout, Cin) matrix mixing channels at every position,
``y[b, :, l] = W x[b, :, l] + bias``. It is the axis projection of
:mod:`npsnn.ops.axis_projection` along the channel axis (one stacked GEMM per sample);
this layer only stores the weight in Conv1d's (Cout, Cin, 1) or Linear's (Cout, Cin) shape,
so official state dicts load by name.
"""
from __future__ import annotations

import numpy as np

from .._checks import expect_array, expect_positive_int, expect_same_shape, need_forward
from ..module import Module
from .axis_projection import axis_projection_backward, axis_projection_forward
from .init import uniform_fan_in


def depthwise_conv1d_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                             padding: int = 0, need_grad: bool = True):
    """x: (B, C, L); weight (C, 1, k); bias (C,) or None -> (y (B, C, Lout), cache)."""
    expect_array("DepthwiseConv1d", "x", x)
    C, one, k = weight.shape
    if one != 1 or x.ndim != 3 or x.shape[1] != C:
        raise ValueError(f"DepthwiseConv1d expected x of shape (B, {C}, L) and weight "
                         f"({C}, 1, k), got x {x.shape} and weight {weight.shape}")
    Lout = x.shape[2] + 2 * padding - k + 1
    if Lout < 1:
        raise ValueError(f"DepthwiseConv1d input of length {x.shape[2]} (padding {padding}) "
                         f"is shorter than the kernel ({k} taps)")
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding))) if padding else x
    y = np.zeros((x.shape[0], C, Lout), dtype=x.dtype)
    for a in range(k):
        y += xp[:, :, a:a + Lout] * weight[:, :, a]
    if bias is not None:
        y += bias[:, None]
    return y, ((xp, weight, bias is not None, x.shape, padding) if need_grad else None)


def depthwise_conv1d_backward(dy: np.ndarray, cache):
    """dy: (B, C, Lout) -> (dx (B, C, L), dweight (C, 1, k), dbias (C,) or None)."""
    need_forward("DepthwiseConv1d", cache)
    xp, weight, has_bias, x_shape, padding = cache
    C, _, k = weight.shape
    Lout = xp.shape[2] - k + 1
    expect_same_shape("DepthwiseConv1d.backward", "dy", dy, (x_shape[0], C, Lout))
    dweight = np.empty_like(weight)
    dxp = np.zeros(xp.shape, dtype=dy.dtype)
    for a in range(k):
        dweight[:, 0, a] = np.einsum("bcl,bcl->c", dy, xp[:, :, a:a + Lout])
        dxp[:, :, a:a + Lout] += dy * weight[:, :, a]
    dbias = dy.sum(axis=(0, 2)) if has_bias else None
    return dxp[:, :, padding:padding + x_shape[2]], dweight, dbias


class DepthwiseConv1d(Module):
    """``DepthwiseConv1d(channels, kernel_size, padding=0, bias=True)`` on (B, C, L);
    params weight (C, 1, k), bias (C,)."""

    def __init__(self, channels: int, kernel_size: int, padding: int = 0, bias: bool = True,
                 *, dtype=np.float32, rng=None) -> None:
        super().__init__()
        channels = expect_positive_int("DepthwiseConv1d", "channels", channels)
        k = expect_positive_int("DepthwiseConv1d", "kernel_size", kernel_size)
        if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) \
                or padding < 0:
            raise ValueError(f"DepthwiseConv1d expected padding >= 0, got {padding!r}")
        self.padding = int(padding)
        self.add_param("weight", uniform_fan_in(rng, (channels, 1, k), k, dtype))
        if bias:
            self.add_param("bias", uniform_fan_in(rng, (channels,), k, dtype))
        self._cache = None

    def forward(self, x):
        y, self._cache = depthwise_conv1d_forward(x, self.params["weight"],
                                                  self.params.get("bias"), self.padding,
                                                  need_grad=self.training)
        return y

    def backward(self, dy):
        dx, dw, db = depthwise_conv1d_backward(dy, self._cache)
        self.accumulate(weight=dw, bias=db)
        self._cache = None
        return dx


class PointwiseConv1d(Module):
    """``PointwiseConv1d(in_channels, out_channels, bias=True, layout="conv")`` on (B, C, L).

    layout "conv": weight (Cout, Cin, 1) as ``Conv1d(Cin, Cout, 1)``; "linear": weight
    (Cout, Cin) as ``Linear(Cin, Cout)`` (PyTorch's default initialisation either way).
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True,
                 layout: str = "conv", *, dtype=np.float32, rng=None) -> None:
        super().__init__()
        cin = expect_positive_int("PointwiseConv1d", "in_channels", in_channels)
        cout = expect_positive_int("PointwiseConv1d", "out_channels", out_channels)
        if layout not in ("conv", "linear"):
            raise ValueError(f"PointwiseConv1d expected layout 'conv' or 'linear', got "
                             f"{layout!r}")
        shape = (cout, cin, 1) if layout == "conv" else (cout, cin)
        self.add_param("weight", uniform_fan_in(rng, shape, cin, dtype))
        if bias:
            self.add_param("bias", uniform_fan_in(rng, (cout,), cin, dtype))
        self.need_input_grad = True
        self._cache = None

    def forward(self, x):
        expect_array("PointwiseConv1d", "x", x)
        w = self.params["weight"]
        if x.ndim != 3 or x.shape[1] != w.shape[1]:
            raise ValueError(f"PointwiseConv1d({w.shape[1]}, {w.shape[0]}) expected x of shape "
                             f"(B, {w.shape[1]}, L), got {x.shape}")
        y, cache = axis_projection_forward(x, w, self.params.get("bias"), 1)
        self._cache = cache if self.training else None
        return y

    def backward(self, dy):
        dx, dw, db = axis_projection_backward(dy, self._cache, self.need_input_grad)
        self.accumulate(weight=dw.reshape(self.params["weight"].shape), bias=db)
        self._cache = None
        return dx
