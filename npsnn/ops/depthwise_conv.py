"""Depthwise 2-D convolution (``Conv2d(C, C, k, groups=C)``), channels-last, zero padding.

Each channel is filtered by its own kernel; x: (N, H, W, C), weight (C, 1, kh, kw) (PyTorch
layout), bias (C,)::

    y[n, i, j, c] = sum_{a, b} x_pad[n, i*sh + a, j*sw + b, c] W[c, 0, a, b]  + bias[c]

There is no GEMM to feed (one weight per channel and offset), so the sum runs as kh*kw
whole-tensor multiply-adds, one per kernel offset (9 for 3x3), each vectorised over
N, H, W and C. Backward mirrors it::

    dW[c, 0, a, b] = sum_{n, i, j} dy[n, i, j, c] x_pad[n, i*sh + a, j*sw + b, c]
    dx_pad[n, i*sh + a, j*sw + b, c] += dy[n, i, j, c] W[c, 0, a, b]
"""
from __future__ import annotations

import numpy as np

from .._checks import expect_array, expect_same_shape, need_forward
from ..module import Module
from .conv import _pair
from .init import uniform_fan_in


def _tap(xp, a, b, sh, sw, Ho, Wo):
    """The (N, Ho, Wo, C) slab of the padded input seen by kernel offset (a, b)."""
    return xp[:, a:a + sh * (Ho - 1) + 1:sh, b:b + sw * (Wo - 1) + 1:sw]


def depthwise_conv2d_forward(x, weight, bias=None, stride=1, padding=0):
    """x: (N, H, W, C); weight (C, 1, kh, kw); bias (C,) or None -> (y (N, Ho, Wo, C), cache)."""
    expect_array("DepthwiseConv2d", "x", x)
    C, one, kh, kw = weight.shape
    if one != 1 or x.ndim != 4 or x.shape[-1] != C:
        raise ValueError(f"DepthwiseConv2d expected x of shape (N, H, W, {C}) and weight "
                         f"({C}, 1, kh, kw), got x {x.shape} and weight {weight.shape}")
    sh, sw = _pair("stride", stride, 1)
    ph, pw = _pair("padding", padding, 0)
    N, H, W, _ = x.shape
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    if Ho < 1 or Wo < 1:
        raise ValueError(f"DepthwiseConv2d input {H}x{W} (padding {ph},{pw}) is smaller than "
                         f"the kernel {kh}x{kw}")
    xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0))) if ph or pw else x
    y = np.zeros((N, Ho, Wo, C), dtype=x.dtype)
    for a in range(kh):
        for b in range(kw):
            y += _tap(xp, a, b, sh, sw, Ho, Wo) * weight[:, 0, a, b]
    if bias is not None:
        y += bias
    return y, (xp, weight, bias is not None, x.shape, (sh, sw, ph, pw))


def depthwise_conv2d_backward(dy, cache):
    """dy: (N, Ho, Wo, C) -> (dx (N, H, W, C), dweight (C, 1, kh, kw), dbias (C,) or None)."""
    need_forward("DepthwiseConv2d", cache)
    xp, weight, has_bias, x_shape, (sh, sw, ph, pw) = cache
    C, _, kh, kw = weight.shape
    N, H, W, _ = x_shape
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    expect_same_shape("DepthwiseConv2d.backward", "dy", dy, (N, Ho, Wo, C))
    dweight = np.empty_like(weight)
    dxp = np.zeros(xp.shape, dtype=dy.dtype)
    dy2 = dy.reshape(-1, C)
    for a in range(kh):
        for b in range(kw):
            tap = _tap(xp, a, b, sh, sw, Ho, Wo)
            dweight[:, 0, a, b] = np.einsum("nc,nc->c", dy2, tap.reshape(-1, C))
            _tap(dxp, a, b, sh, sw, Ho, Wo)[...] += dy * weight[:, 0, a, b]
    dbias = dy2.sum(axis=0) if has_bias else None
    return np.ascontiguousarray(dxp[:, ph:ph + H, pw:pw + W]), dweight, dbias


class DepthwiseConv2d(Module):
    """``DepthwiseConv2d(channels, kernel_size, stride=1, padding=0, bias=True)`` on
    channels-last (N, H, W, C); params weight (C, 1, kh, kw), bias (C,)."""

    def __init__(self, channels: int, kernel_size, stride=1, padding=0, bias: bool = True, *,
                 dtype=np.float32, rng=None) -> None:
        super().__init__()
        kh, kw = _pair("kernel_size", kernel_size, 1)
        self.stride, self.padding = _pair("stride", stride, 1), _pair("padding", padding, 0)
        self.add_param("weight", uniform_fan_in(rng, (channels, 1, kh, kw), kh * kw, dtype))
        if bias:
            self.add_param("bias", uniform_fan_in(rng, (channels,), kh * kw, dtype))
        self._cache = None

    def forward(self, x):
        y, cache = depthwise_conv2d_forward(x, self.params["weight"], self.params.get("bias"),
                                            self.stride, self.padding)
        self._cache = cache if self.training else None
        return y

    def backward(self, dy):
        dx, dw, db = depthwise_conv2d_backward(dy, self._cache)
        self.accumulate(weight=dw, bias=db)
        self._cache = None
        return dx
