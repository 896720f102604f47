"""Long convolution by FFT, with the state space model's skip term D: y = K * u + D u.

u: (B, H, L) one sequence per feature; K: (c, H, L) the SSM kernel of each feature
(:mod:`npsnn.ops.s4d`); c = 1 causal, c = 2 bidirectional. Written out::

    causal:         y[b,h,l] = sum_{j<=l} K[0,h,l-j] u[b,h,j]                         + D[h] u[b,h,l]
    bidirectional:  y[b,h,l] = sum_{j<=l} K[0,h,l-j] u[b,h,j] + sum_{d>=1} K[1,h,d-1] u[b,h,l+d]
                                                                                      + D[h] u[b,h,l]

A direct sum costs L^2 per sequence; by FFT it is L log L. Both sequences are zero-padded
to 2L so that the circular convolution of the FFT equals the linear one on the first L
outputs::

    k2 = [K0, 0]  (+ [0, reverse(K1)] if bidirectional)                   (H, 2L)
    y  = irfft(rfft(u, 2L) rfft(k2, 2L), 2L)[..., :L] + D u

The bidirectional layout is the official one (shenshuaijie/SDN ``models/spike/ss4d.py``,
``SS4D.forward``: ``k = F.pad(k0, (0, L)) + F.pad(k1.flip(-1), (L, 0))``): the reversed
second kernel sits in the upper half of the 2L circle, where index 2L - d means "d steps
in the future", so K1[0] weighs u[l+1], never u[l] itself.

Backward, also by FFT. Convolution is a product in frequency, so its adjoints are products
with the conjugate (a correlation); with U, K2, dY the rffts (length 2L, dy zero-padded)::

    du  = irfft(dY conj(K2), 2L)[..., :L] + D dy
    dk2 = irfft(sum_b dY conj(U), 2L)           (summed over the batch in frequency: one irfft)
    dK0 = dk2[:, :L],   dK1 = reverse(dk2[:, L:])
    dD  = sum_{b,l} dy u

scipy.fft computes in the input's precision (float32 stays float32, complex64) and is
several times faster than numpy.fft for the padded transforms here.
"""
from __future__ import annotations

import numpy as np
import scipy.fft

from .._checks import expect_array, expect_same_shape, need_forward


def _padded_kernel(K: np.ndarray) -> np.ndarray:
    """(c, H, L) -> (H, 2L): the causal kernel, plus the reversed anti-causal one."""
    c, H, L = K.shape
    k2 = np.zeros((H, 2 * L), dtype=K.dtype)
    k2[:, :L] = K[0]
    if c == 2:
        k2[:, L:] = K[1, :, ::-1]
    return k2


def fft_conv_forward(u: np.ndarray, K: np.ndarray, D: np.ndarray, need_grad: bool = True):
    """u: (B, H, L); K: (1 or 2, H, L); D: (H,). -> (y (B, H, L), cache)."""
    expect_array("FFTConv", "u", u)
    expect_array("FFTConv", "K", K)
    expect_array("FFTConv", "D", D)
    if u.ndim != 3 or K.ndim != 3 or K.shape[0] not in (1, 2) or K.shape[1:] != u.shape[1:] \
            or D.shape != (u.shape[1],):
        raise ValueError(f"FFTConv expected u (B, H, L), K (1 or 2, H, L) with the same H and "
                         f"L, and D (H,), got u {u.shape}, K {K.shape}, D {D.shape}")
    L = u.shape[-1]
    Kf = scipy.fft.rfft(_padded_kernel(K), n=2 * L)                 # (H, L+1)
    Uf = scipy.fft.rfft(u, n=2 * L)                                 # (B, H, L+1)
    y = scipy.fft.irfft(Uf * Kf, n=2 * L)[..., :L]
    y = y + u * D[:, None]                                          # the skip term D u
    cache = (u, Uf, Kf, D, K.shape[0]) if need_grad else None
    return y, cache


def fft_conv_backward(dy: np.ndarray, cache, need_du: bool = True):
    """dy: (B, H, L) -> (du (B, H, L) or None, dK (c, H, L), dD (H,))."""
    need_forward("FFTConv", cache)
    u, Uf, Kf, D, c = cache
    expect_same_shape("FFTConv.backward", "dy", dy, u.shape)
    L = u.shape[-1]
    dYf = scipy.fft.rfft(dy, n=2 * L)
    du = None
    if need_du:
        du = scipy.fft.irfft(dYf * np.conj(Kf), n=2 * L)[..., :L]
        du += dy * D[:, None]
    dk2 = scipy.fft.irfft(np.einsum("bhf,bhf->hf", dYf, np.conj(Uf)), n=2 * L)   # (H, 2L)
    dK = np.empty((c,) + dk2.shape[:1] + (L,), dtype=dy.dtype)
    dK[0] = dk2[:, :L]
    if c == 2:
        dK[1] = dk2[:, L:][:, ::-1]
    dD = np.einsum("bhl,bhl->h", dy, u)
    return du, dK, dD
