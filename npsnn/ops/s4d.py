"""The S4D convolution kernel: a diagonal state space model unrolled into a long filter.

S4D (Gu et al., "On the Parameterization and Initialization of Diagonal State Space
Models", 2022) runs, per feature h, N/2 complex modes of the linear recurrence
``x'(t) = A x(t) + B u(t)``, ``y(t) = C x(t)`` (B = 1), discretised with step dt (zero-order
hold). Unrolled over L steps, the whole SSM is one convolution ``y = K * u``, and its kernel
has a closed form (a Vandermonde product)::

    dt       = exp(log_dt)                                  (H,)
    A        = -exp(log_A_real) + i A_imag                  (H, N/2)
    C'       = C (exp(dt A) - 1) / A                        (c, H, N/2)  ZOH with B = 1
    K[c,h,l] = 2 Re sum_n C'[c,h,n] exp(dt A[h,n] l)        (c, H, L),  l = 0..L-1

The factor 2 and the real part stand for the conjugate half of the N modes (the state is
real, so modes come in conjugate pairs and only N/2 are stored). ``c`` is the number of
kernels per feature: 1, or 2 for a bidirectional layer (the second one is run backwards over
the sequence, see :mod:`npsnn.ops.fft_conv`).

Confirmed in the official code: ``S4DKernel.forward`` and ``S4DKernel.__init__`` in
shenshuaijie/SDN ``models/spike/ss4d.py`` (SpikingSSM's kernel, with the ``channels``
axis) and state-spaces/s4 ``models/s4/s4d.py`` (the same kernel without it). Initialisation::

    log_dt ~ U[log dt_min, log dt_max]       (dt_min 0.001, dt_max 0.1)
    C      ~ complex normal (real and imaginary parts N(0, 1/2): ``torch.randn(cfloat)``)
    log_A_real = log 0.5,   A_imag[h, n] = pi n

and ``log_dt``, ``log_A_real``, ``A_imag`` are registered with their own learning rate
(``min(lr, 0.001)`` in SDN's version) and weight decay 0 (``S4DKernel.register``); ``C`` is
an ordinary parameter. :attr:`S4DKernel.param_options` carries that declaration.

Backward (complex chain rule). For a real loss f and a complex intermediate w we write
``G_w = df/dRe(w) + i df/dIm(w)`` (PyTorch's convention); a holomorphic ``w = g(z)`` passes
``G_z = conj(g'(z)) G_w`` back, and a real parameter t gets ``df/dt = Re(conj(dw/dt) G_w)``.
With V[h,n,l] = exp(dt A l) and E = (exp(dt A) - 1) / A::

    G_C'  = 2 sum_l dK[c,h,l] conj(V[h,n,l])
    G_dtA = 2 sum_c conj(C'[c,h,n]) sum_l l dK[c,h,l] conj(V[h,n,l])
    G_C   = conj(E) G_C',          G_E = sum_c conj(C) G_C'
    G_A   = dt G_dtA + conj((dt exp(dt A) - E) / A) G_E
    df/d dt = sum_n Re(conj(A) G_dtA + conj(exp(dt A)) G_E)
    dlog_dt = dt df/d dt,   dlog_A_real = -exp(log_A_real) Re(G_A),   dA_imag = Im(G_A)
    dC[..., 0] = Re(G_C),   dC[..., 1] = Im(G_C)       (C stored as real pairs, view_as_real)

Both sums over l are GEMMs against conj(V), batched over H.

**Computing V.** ``exp(dt A l)`` for every (h, n, l) costs H N/2 L complex exponentials (the
official code's way). Here V is built from two short tables, ``exp(dt A s a)`` and
``exp(dt A b)`` with l = s a + b and s = ceil(sqrt(L)), and one complex product per entry:
about 2 sqrt(L) exponentials per mode instead of L, and one rounding more (a relative
difference of a few units in the last place, far below the 1e-8 agreement the tests ask).
V is recomputed in the backward instead of cached: it is cheap that way and would otherwise
be the largest array of the layer (H N/2 L complex numbers).
"""
from __future__ import annotations

import math

import numpy as np

from .._checks import expect_array, expect_positive_int, expect_same_shape, need_forward
from ..module import Module

KERNEL_PARAMS = ("log_dt", "log_A_real", "A_imag")   # own lr, no weight decay (official)


def _complex_dtype(dtype) -> np.dtype:
    return np.result_type(dtype, np.complex64)


def vandermonde(dtA: np.ndarray, L: int) -> np.ndarray:
    """V[..., l] = exp(dtA l) for l = 0..L-1, from two tables of ~sqrt(L) exponentials.

    dtA: (...) complex -> V (..., L), same complex dtype.
    """
    s = math.isqrt(L - 1) + 1                                    # ceil(sqrt(L)), L >= 1
    blocks = -(-L // s)                                          # ceil(L / s) <= s
    steps = np.arange(s, dtype=dtA.real.dtype)
    inner = np.exp(dtA[..., None] * steps)                       # exp(dtA b),    b < s
    outer = np.exp(dtA[..., None] * (steps[:blocks] * s))        # exp(dtA s a),  a < blocks
    V = outer[..., :, None] * inner[..., None, :]                # exp(dtA (s a + b))
    return V.reshape(dtA.shape + (blocks * s,))[..., :L]


def _check(log_dt, log_A_real, A_imag, C, L):
    for name, a in (("log_dt", log_dt), ("log_A_real", log_A_real), ("A_imag", A_imag),
                    ("C", C)):
        expect_array("S4DKernel", name, a)
    H = log_dt.shape[0] if log_dt.ndim == 1 else None
    if H is None or log_A_real.ndim != 2 or log_A_real.shape[0] != H \
            or A_imag.shape != log_A_real.shape or C.ndim != 4 \
            or C.shape[1:] != log_A_real.shape + (2,):
        raise ValueError(f"S4DKernel expected log_dt (H,), log_A_real and A_imag (H, N/2) and "
                         f"C (channels, H, N/2, 2), got log_dt {log_dt.shape}, log_A_real "
                         f"{log_A_real.shape}, A_imag {A_imag.shape}, C {C.shape}")
    return expect_positive_int("S4DKernel", "L", L)


def s4d_kernel_forward(log_dt: np.ndarray, log_A_real: np.ndarray, A_imag: np.ndarray,
                       C: np.ndarray, L: int, need_grad: bool = True):
    """The kernel of L taps. log_dt (H,), log_A_real and A_imag (H, N/2), C (c, H, N/2, 2)
    (real and imaginary parts, as ``torch.view_as_real``). -> (K (c, H, L), cache)."""
    L = _check(log_dt, log_A_real, A_imag, C, L)
    cdt = _complex_dtype(log_dt.dtype)
    dt = np.exp(log_dt)                                              # (H,)
    A = (-np.exp(log_A_real) + 1j * A_imag).astype(cdt)             # (H, N2)
    dtA = A * dt[:, None]
    expdtA = np.exp(dtA)
    E = (expdtA - 1.0) / A                                           # ZOH factor, B = 1
    Cc = (C[..., 0] + 1j * C[..., 1]).astype(cdt)                   # (c, H, N2)
    Cp = Cc * E                                                      # C'
    V = vandermonde(dtA, L)                                          # (H, N2, L)
    # K = 2 Re(C' V): one complex GEMM per feature, (c, N2) @ (N2, L)
    K = 2 * np.matmul(Cp.transpose(1, 0, 2), V).real                # (H, c, L)
    K = np.ascontiguousarray(K.transpose(1, 0, 2))
    cache = (dt, A, dtA, expdtA, E, Cc, Cp, L) if need_grad else None
    return K, cache


def s4d_kernel_backward(dK: np.ndarray, cache):
    """dK: (c, H, L) -> (dlog_dt (H,), dlog_A_real (H, N/2), dA_imag (H, N/2),
    dC (c, H, N/2, 2)), in the real dtype of the parameters."""
    need_forward("S4DKernel", cache)
    dt, A, dtA, expdtA, E, Cc, Cp, L = cache
    expect_same_shape("S4DKernel.backward", "dK", dK, (Cc.shape[0], A.shape[0], L))
    c = Cc.shape[0]
    real = dt.dtype.type
    Vc = np.conj(vandermonde(dtA, L))                               # (H, N2, L)
    # [dK ; l dK] (H, 2c, L) @ conj(V)^T (H, L, N2): both sums over l in one batched GEMM
    ell = np.arange(L, dtype=dK.dtype)
    lhs = np.concatenate([dK, dK * ell], axis=0).transpose(1, 0, 2)   # (H, 2c, L)
    sums = 2 * np.matmul(lhs.astype(Vc.dtype), Vc.transpose(0, 2, 1))  # (H, 2c, N2)
    G_Cp = sums[:, :c].transpose(1, 0, 2)                           # (c, H, N2)
    G_dtA = np.sum(np.conj(Cp) * sums[:, c:].transpose(1, 0, 2), axis=0)   # (H, N2)
    G_C = np.conj(E) * G_Cp
    G_E = np.sum(np.conj(Cc) * G_Cp, axis=0)
    dE_dA = (dt[:, None] * expdtA - E) / A
    G_A = dt[:, None] * G_dtA + np.conj(dE_dA) * G_E
    d_dt = np.sum((np.conj(A) * G_dtA + np.conj(expdtA) * G_E).real, axis=1)
    dlog_dt = (dt * d_dt).astype(real)
    dlog_A_real = (A.real * G_A.real).astype(real)                 # A.real = -exp(log_A_real)
    dA_imag = G_A.imag.astype(real)
    dC = np.stack([G_C.real, G_C.imag], axis=-1).astype(real)
    return dlog_dt, dlog_A_real, dA_imag, dC


class S4DKernel(Module):
    """``S4DKernel(d_model, d_state=64, channels=1, dt_min=0.001, dt_max=0.1, lr=0.001)``.

    params ``C`` (channels, H, N/2, 2), ``log_dt`` (H,), ``log_A_real`` and ``A_imag``
    (H, N/2) -- the official names and shapes. ``forward(L)`` -> K (channels, H, L);
    ``backward(dK)`` accumulates the four gradients (there is no input).
    ``lr``: learning rate of ``log_dt``, ``log_A_real`` and ``A_imag``, which also get no
    weight decay (:attr:`param_options`, read by the optimizer); as in the official code
    ``min(lr, 0.001)`` is used, and ``lr=0`` freezes them (they become buffers).
    """

    def __init__(self, d_model: int, d_state: int = 64, channels: int = 1,
                 dt_min: float = 0.001, dt_max: float = 0.1, lr: float = 0.001, *,
                 dtype=np.float32, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        H = expect_positive_int("S4DKernel", "d_model", d_model)
        N = expect_positive_int("S4DKernel", "d_state", d_state)
        channels = expect_positive_int("S4DKernel", "channels", channels)
        if N % 2:
            raise ValueError(f"S4DKernel expected an even d_state (N/2 complex modes and "
                             f"their conjugates), got {d_state}")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"S4DKernel expected 0 < dt_min <= dt_max, got dt_min="
                             f"{dt_min!r}, dt_max={dt_max!r}")
        if not lr >= 0:
            raise ValueError(f"S4DKernel expected a kernel learning rate lr >= 0, got {lr!r}")
        rng = np.random.default_rng(0) if rng is None else rng
        lo, hi = math.log(dt_min), math.log(dt_max)
        log_dt = rng.random(H) * (hi - lo) + lo
        C = rng.normal(0.0, math.sqrt(0.5), size=(channels, H, N // 2, 2))
        log_A_real = np.full((H, N // 2), math.log(0.5))
        A_imag = np.broadcast_to(math.pi * np.arange(N // 2), (H, N // 2)).copy()
        self.add_param("C", C.astype(dtype))
        self.lr = min(float(lr), 0.001)
        self.param_options: dict[str, dict] = {}
        for name, value in zip(KERNEL_PARAMS, (log_dt, log_A_real, A_imag)):
            if self.lr == 0.0:
                self.add_buffer(name, value.astype(dtype))
            else:
                self.add_param(name, value.astype(dtype))
                self.param_options[name] = {"lr": self.lr, "weight_decay": 0.0}
        self._cache = None

    def _get(self, name):
        return self.params[name] if name in self.params else self.buffers[name]

    def forward(self, L: int) -> np.ndarray:
        K, self._cache = s4d_kernel_forward(self._get("log_dt"), self._get("log_A_real"),
                                            self._get("A_imag"), self.params["C"], L,
                                            need_grad=self.training)
        return K

    def backward(self, dK: np.ndarray) -> None:
        dlog_dt, dlog_A_real, dA_imag, dC = s4d_kernel_backward(dK, self._cache)
        self.accumulate(C=dC)
        if self.lr != 0.0:
            self.accumulate(log_dt=dlog_dt, log_A_real=dlog_A_real, A_imag=dA_imag)
        self._cache = None
