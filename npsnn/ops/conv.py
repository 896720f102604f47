"""2-D convolution (cross-correlation, zero padding) by im2col and one GEMM.

The core works channels-last: x (N, H, W, C). All kernel windows are gathered with a
strided view into a matrix ``cols`` (N*Ho*Wo, kh*kw*C) (one copy), and the convolution is
one GEMM with the weight reshaped to (kh*kw*C, O)::

    y[n, i, j, o] = sum_{a, b, c} x_pad[n, i*sh + a, j*sw + b, c] W[o, c, a, b]  (+ bias[o])

Backward: dW = dy^T cols (one GEMM); dx = overlap-add of dy W (one GEMM, then one strided
add per kernel offset, kh*kw of them; no loop over pixels or channels). Fast paths: a 1x1
stride-1 conv is a plain GEMM on the input; a kernel equal to its stride without padding
(4x4/s4, 2x2/s2: non-overlapping patches) needs a reshape only, in both directions.
``layout="NCHW"`` wraps the core with transposes; sMLPNet uses NHWC internally.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .._checks import expect_array, expect_positive_int, expect_same_shape, need_forward
from ..module import Module
from .init import uniform_fan_in


def _pair(name, v, minimum):
    pair = (v, v) if np.isscalar(v) else tuple(v)
    if len(pair) != 2 or any(int(p) != p or p < minimum for p in pair):
        raise ValueError(f"Conv2d expected {name} to be an int >= {minimum} or a pair of them, "
                         f"got {v!r}")
    return int(pair[0]), int(pair[1])


def _windows(xp, kh, kw, sh, sw, Ho, Wo):
    """Strided view (N, Ho, Wo, kh, kw, C) of all windows of the padded NHWC input."""
    N, _, _, C = xp.shape
    s0, s1, s2, s3 = xp.strides
    return as_strided(xp, (N, Ho, Wo, kh, kw, C), (s0, s1 * sh, s2 * sw, s1, s2, s3),
                      writeable=False)


def conv2d_forward(x, weight, bias=None, stride=1, padding=0, layout: str = "NCHW"):
    """x: (..., C, H, W) for NCHW or (..., H, W, C) for NHWC; weight (O, C, kh, kw).
    -> (y (..., O, Ho, Wo) or (..., Ho, Wo, O), cache)."""
    if layout not in ("NCHW", "NHWC"):
        raise ValueError(f"Conv2d expected layout 'NCHW' or 'NHWC', got {layout!r}")
    sh, sw = _pair("stride", stride, 1)
    ph, pw = _pair("padding", padding, 0)
    expect_array("Conv2d", "x", x)
    O, C, kh, kw = weight.shape
    spec = "(..., {}, H, W)".format(C) if layout == "NCHW" else "(..., H, W, {})".format(C)
    cax = -3 if layout == "NCHW" else -1
    if x.ndim < 3 or x.shape[cax] != C:
        raise ValueError(f"Conv2d expected x of shape {spec}, got {x.shape}")
    lead = x.shape[:-3]
    xn = x.reshape((-1,) + x.shape[-3:])
    if layout == "NCHW":
        xn = xn.transpose(0, 2, 3, 1)
    N, H, W, _ = xn.shape
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    if Ho < 1 or Wo < 1:
        raise ValueError(f"Conv2d input {H}x{W} (padding {ph},{pw}) is smaller than the "
                         f"kernel {kh}x{kw}")
    w2 = weight.transpose(0, 2, 3, 1).reshape(O, kh * kw * C)   # columns ordered (a, b, c)
    if (kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0):
        cols = np.ascontiguousarray(xn).reshape(-1, C)
    else:
        xp = np.pad(xn, ((0, 0), (ph, ph), (pw, pw), (0, 0))) if ph or pw else xn
        if (kh, kw) == (sh, sw) and xp.shape[1] == Ho * kh and xp.shape[2] == Wo * kw:
            cols = xp.reshape(N, Ho, kh, Wo, kw, C).transpose(0, 1, 3, 2, 4, 5)
        else:
            cols = _windows(xp, kh, kw, sh, sw, Ho, Wo)
        cols = cols.reshape(N * Ho * Wo, kh * kw * C)
    y = cols @ w2.T
    if bias is not None:
        y += bias
    y = y.reshape(N, Ho, Wo, O)
    if layout == "NCHW":
        y = np.ascontiguousarray(y.transpose(0, 3, 1, 2))
    cache = (cols, w2, bias is not None, x.shape, (N, H, W, C), (kh, kw, sh, sw, ph, pw),
             (Ho, Wo), layout, weight.shape)
    return y.reshape(lead + y.shape[1:]), cache


def conv2d_backward(dy, cache, need_dx: bool = True):
    """-> (dx (shape of x) or None, dweight (O, C, kh, kw), dbias (O,) or None)."""
    need_forward("Conv2d", cache)
    cols, w2, has_bias, x_shape, (N, H, W, C), geom, (Ho, Wo), layout, w_shape = cache
    kh, kw, sh, sw, ph, pw = geom
    O = w2.shape[0]
    out_shape = x_shape[:-3] + ((O, Ho, Wo) if layout == "NCHW" else (Ho, Wo, O))
    expect_same_shape("Conv2d.backward", "dy", dy, out_shape)
    dyn = dy.reshape((N,) + out_shape[-3:])
    if layout == "NCHW":
        dyn = dyn.transpose(0, 2, 3, 1)
    dy2 = np.ascontiguousarray(dyn).reshape(N * Ho * Wo, O)
    dweight = (dy2.T @ cols).reshape(O, kh, kw, C).transpose(0, 3, 1, 2)
    dbias = dy2.sum(axis=0) if has_bias else None
    if not need_dx:
        return None, np.ascontiguousarray(dweight), dbias
    dcols = (dy2 @ w2).reshape(N, Ho, Wo, kh, kw, C)
    Hp, Wp = H + 2 * ph, W + 2 * pw
    if (kh, kw) == (sh, sw) and Hp == Ho * kh and Wp == Wo * kw:
        dxp = dcols.transpose(0, 1, 3, 2, 4, 5).reshape(N, Hp, Wp, C)
    else:
        dxp = np.zeros((N, Hp, Wp, C), dtype=dy.dtype)
        for a in range(kh):               # overlap-add, one strided slab per kernel offset
            for b in range(kw):
                dxp[:, a:a + sh * (Ho - 1) + 1:sh, b:b + sw * (Wo - 1) + 1:sw] += dcols[:, :, :, a, b]
    dx = dxp[:, ph:ph + H, pw:pw + W]
    if layout == "NCHW":
        dx = dx.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(dx).reshape(x_shape), np.ascontiguousarray(dweight), dbias


class Conv2d(Module):
    """``Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
    layout="NCHW")`` on multi-step input (T, B, C, H, W) (or (T, B, H, W, C) for NHWC)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True, *, layout: str = "NCHW", dtype=np.float32, rng=None):
        super().__init__()
        in_channels = expect_positive_int("Conv2d", "in_channels", in_channels)
        out_channels = expect_positive_int("Conv2d", "out_channels", out_channels)
        kh, kw = _pair("kernel_size", kernel_size, 1)
        self.stride, self.padding = _pair("stride", stride, 1), _pair("padding", padding, 0)
        if layout not in ("NCHW", "NHWC"):
            raise ValueError(f"Conv2d expected layout 'NCHW' or 'NHWC', got {layout!r}")
        self.layout = layout
        fan_in = in_channels * kh * kw
        self.add_param("weight", uniform_fan_in(rng, (out_channels, in_channels, kh, kw), fan_in, dtype))
        if bias:
            self.add_param("bias", uniform_fan_in(rng, (out_channels,), fan_in, dtype))
        self.need_input_grad = True
        self._cache = None

    def forward(self, x):
        if not isinstance(x, np.ndarray) or x.ndim != 5 or \
                x.shape[2 if self.layout == "NCHW" else 4] != self.params["weight"].shape[1]:
            c = self.params["weight"].shape[1]
            spec = f"(T, B, {c}, H, W)" if self.layout == "NCHW" else f"(T, B, H, W, {c})"
            raise ValueError(f"Conv2d expected x of shape {spec}, got "
                             f"{getattr(x, 'shape', type(x).__name__)}")
        y, cache = conv2d_forward(x, self.params["weight"], self.params.get("bias"),
                                  self.stride, self.padding, self.layout)
        self._cache = cache if self.training else None
        return y

    def backward(self, dy):
        dx, dw, db = conv2d_backward(dy, self._cache, self.need_input_grad)
        self.accumulate(weight=dw, bias=db)
        self._cache = None
        return dx
