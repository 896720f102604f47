"""Leaky integrate-and-fire neuron, multi-step, with surrogate-gradient BPTT.

SpikingJelly's ``LIFNode`` semantics (SPEC). For t = 0..T-1, V[-1] = V_reset (0 if soft)::

    charge  H[t] = V[t-1] + (X[t] - (V[t-1] - V_reset)) / tau      decay_input=True
            H[t] = V[t-1] - (V[t-1] - V_reset) / tau + X[t]        decay_input=False
    fire    S[t] = heaviside(H[t] - V_th)          heaviside(0) = 1
    reset   V[t] = H[t] (1 - S[t]) + V_reset S[t]  hard reset (v_reset a number)
            V[t] = H[t] - V_th S[t]                soft reset (v_reset None)

Backward (exact BPTT through the membrane). With sg[t] = g'(H[t] - V_th) the surrogate
derivative standing in for dS/dH, and k[t] = dV[t]/dH[t]::

    k[t] = (1 - S[t]) + (V_reset - H[t]) sg[t]     hard reset  (second term only if the
    k[t] = 1 - V_th sg[t]                          soft reset   reset is not detached)
    dH[t] = dS[t] sg[t] + dV[t] k[t],     dV[t] = dH[t+1] (1 - 1/tau),   dV[T-1] = 0
    dX[t] = dH[t] / tau  (decay_input)   or  dH[t]  (otherwise)

Two implementations of the same equations live here:

* :func:`lif_forward_reference` / :func:`lif_backward_reference`: the equations above, one
  line each, step by step; read these first. They keep every H[t] and V[t].
* :func:`lif_forward` / :func:`lif_backward`: the fast path every layer uses. Only time is
  looped over (the recurrence needs it), on slices of neurons small enough to stay in
  cache through all T steps and shared out over worker threads (:mod:`npsnn.workers`); the
  forward computes sg[t] and k[t] right after step t, writes into preallocated buffers
  instead of allocating, and stores sg already multiplied by dX/dH, so the backward is two
  passes per step. The tests hold the fast forward equal to the reference bit for bit in
  float64, and the fast backward to the reference's within rounding.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import expect_array, expect_choice, expect_same_shape, need_forward
from ..module import Module
from ..workers import CHUNK_BYTES, for_each_chunk   # CHUNK_BYTES: one neuron slice's step
from . import surrogate as _surrogate


@dataclass
class LIFCache:
    sg: np.ndarray         # (T, ...) input_gain * g'(H - V_th), the surrogate derivative
    k: np.ndarray          # (T, ...) dV/dH
    decay: float           # dH[t+1]/dV[t] = 1 - 1/tau
    input_gain: float      # dH/dX: 1/tau (decay_input) or 1, already folded into sg
    shape: tuple


def check_options(tau, v_threshold, v_reset, surrogate, alpha):
    if not np.isfinite(tau) or tau <= 0:
        raise ValueError(f"LIF expected tau > 0 (the membrane time constant; SpikingJelly "
                         f"uses tau > 1 so that the leak 1/tau is below 1), got {tau!r}")
    if not np.isfinite(v_threshold):
        raise ValueError(f"LIF expected a finite v_threshold, got {v_threshold!r}")
    if v_reset is not None and not np.isfinite(v_reset):
        raise ValueError(f"LIF expected v_reset to be a number (hard reset) or None (soft "
                         f"reset), got {v_reset!r}")
    expect_choice("LIF", "surrogate", surrogate, _surrogate.DEFAULT_ALPHA)
    alpha = _surrogate.DEFAULT_ALPHA[surrogate] if alpha is None else alpha
    if not np.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"LIF expected alpha > 0 (surrogate sharpness), got {alpha!r}")
    return float(alpha)


def _charge(x_t, v, tau, v_reset, decay_input):
    """H[t] from V[t-1] and X[t], in SpikingJelly's four algebraic forms (so float64
    rounding agrees with it exactly)."""
    if decay_input:
        return v + (x_t - v) / tau if v_reset == 0.0 else v + (x_t - (v - v_reset)) / tau
    return v * (1.0 - 1.0 / tau) + x_t if v_reset == 0.0 else v - (v - v_reset) / tau + x_t


def lif_forward_reference(x: np.ndarray, *, tau: float = 2.0, v_threshold: float = 1.0,
                          v_reset: float | None = 0.0, decay_input: bool = True,
                          detach_reset: bool = True, surrogate: str = "sigmoid",
                          alpha: float | None = None, smooth: bool = False,
                          reset_spikes: np.ndarray | None = None):
    """The LIF equations written out, one time step at a time (the readable version).

    x: (T, ...) input current. -> (S spikes (T, ...), V membranes after reset (T, ...),
    H membranes after charging (T, ...)). Same options as :func:`lif_forward`; the
    backward of this forward is :func:`lif_backward_reference`.
    """
    alpha = check_options(tau, v_threshold, v_reset, surrogate, alpha)
    expect_array("LIF", "x", x)
    dt = x.dtype.type
    tau, vth = dt(tau), dt(v_threshold)
    vr = dt(0.0 if v_reset is None else v_reset)
    S, V, H = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    v = np.full(x.shape[1:], vr, dtype=x.dtype)              # V[-1] = V_reset (0 if soft)
    for t in range(x.shape[0]):
        h = _charge(x[t], v, tau, vr, decay_input)                          # charge
        if smooth:
            s = _surrogate.primitive(surrogate, alpha, h - vth)             # fire (smooth)
        else:
            s = (h >= vth).astype(x.dtype)                                  # fire: heaviside
        r = s if reset_spikes is None else reset_spikes[t]
        v = h - vth * r if v_reset is None else h * (1 - r) + vr * r        # reset
        S[t], V[t], H[t] = s, v, h
    return S, V, H


def lif_backward_reference(dspikes: np.ndarray, x: np.ndarray, *, tau: float = 2.0,
                           v_threshold: float = 1.0, v_reset: float | None = 0.0,
                           decay_input: bool = True, detach_reset: bool = True,
                           surrogate: str = "sigmoid", alpha: float | None = None,
                           smooth: bool = False,
                           reset_spikes: np.ndarray | None = None) -> np.ndarray:
    """BPTT through the membrane, the equations of the module docstring one step at a time
    (the readable version of :func:`lif_backward`). Re-runs the forward on ``x`` to get H.

    dspikes, x: (T, ...) -> dx (T, ...).
    """
    options = dict(tau=tau, v_threshold=v_threshold, v_reset=v_reset, decay_input=decay_input,
                   detach_reset=detach_reset, surrogate=surrogate, alpha=alpha, smooth=smooth)
    S, _, H = lif_forward_reference(x, reset_spikes=reset_spikes, **options)
    alpha = check_options(tau, v_threshold, v_reset, surrogate, alpha)
    vr = 0.0 if v_reset is None else v_reset
    dX = np.empty_like(dspikes)
    dV = np.zeros(dspikes.shape[1:], dtype=dspikes.dtype)     # dV[T-1] = 0
    for t in range(dspikes.shape[0] - 1, -1, -1):
        sg = _surrogate.derivative(surrogate, alpha, H[t] - v_threshold)   # stands in for dS/dH
        s = S[t] if reset_spikes is None else reset_spikes[t]
        if v_reset is None:
            k = 1 - (0 if detach_reset else v_threshold * sg)              # dV[t]/dH[t], soft
        else:
            k = (1 - s) + (0 if detach_reset else (vr - H[t]) * sg)        # dV[t]/dH[t], hard
        dH = dspikes[t] * sg + dV * k
        dX[t] = dH / tau if decay_input else dH                            # dH[t]/dX[t]
        dV = dH * (1 - 1 / tau)                                             # dH[t]/dV[t-1]
    return dX


def lif_forward(x: np.ndarray, *, tau: float = 2.0, v_threshold: float = 1.0,
                v_reset: float | None = 0.0, decay_input: bool = True,
                detach_reset: bool = True, surrogate: str = "sigmoid",
                alpha: float | None = None, smooth: bool = False, need_grad: bool = True,
                reset_spikes: np.ndarray | None = None):
    """x: (T, ...) input current -> (spikes (T, ...), v_final (...), cache or None).

    smooth: fire with the surrogate's primitive instead of the step (gradient checks).
    need_grad: False skips everything the backward would need (eval mode).
    reset_spikes: (T, ...) values to use for S[t] *inside the reset equation* instead of
        the fired spikes. For finite-difference checks with detach_reset=True only: the
        backward treats the reset spike as a constant, so a check must hold it fixed.

    Neurons are independent, so the work is split into slices of neurons
    (:data:`CHUNK_BYTES` each) that run all T steps while in cache, shared out over the
    worker threads (:mod:`npsnn.workers`); every element sees the same operations as in
    one whole-array pass, so the result does not depend on the split.
    """
    alpha = check_options(tau, v_threshold, v_reset, surrogate, alpha)
    expect_array("LIF", "x", x)
    if x.ndim < 1 or x.shape[0] < 1:
        raise ValueError(f"LIF expected x of shape (T, ...) with T >= 1, got {x.shape}")
    if reset_spikes is not None:
        expect_same_shape("LIF", "reset_spikes", reset_spikes, x.shape)
    T = x.shape[0]
    x2 = x.reshape(T, -1)                  # a view for contiguous or time-broadcast input
    N = x2.shape[1]
    vr = 0.0 if v_reset is None else float(v_reset)
    gain = 1.0 / tau if decay_input else 1.0
    S = np.empty(x2.shape, dtype=x.dtype)                  # spikes
    v = np.full(N, vr, dtype=x.dtype)                      # V[-1] = V_reset
    sg = np.empty_like(S) if need_grad else None           # gain * g'(H - V_th)
    k = np.empty_like(S) if need_grad else None            # dV/dH
    held = None if reset_spikes is None else reset_spikes.reshape(T, -1)
    options = (tau, v_threshold, v_reset, vr, decay_input, detach_reset, surrogate, alpha,
               smooth, gain)

    def kernel(a, b):
        part = slice(a, b)
        _lif_forward_slice(x2[:, part], S[:, part], v[part],
                           None if sg is None else sg[:, part],
                           None if k is None else k[:, part],
                           None if held is None else held[:, part], *options)

    for_each_chunk(kernel, N, max(1, CHUNK_BYTES // x.dtype.itemsize), even=True)
    S, v = S.reshape(x.shape), v.reshape(x.shape[1:])
    if not need_grad:
        return S, v, None
    return S, v, LIFCache(sg, k, 1.0 - 1.0 / tau, gain, x.shape)


def _lif_forward_slice(x, S, v, sg, k, held, tau, v_threshold, v_reset, vr, decay_input,
                       detach_reset, surrogate, alpha, smooth, gain):
    """The time loop of :func:`lif_forward` on one slice of neurons: x, S, sg, k (T, n),
    v (n,) the membrane (in: V_reset, out: V[T-1]); sg and k None in eval mode. Every
    per-step quantity the backward needs is computed right after step t, while the slice
    is in cache, into the output arrays (no full-size H, no masks)."""
    dt = x.dtype.type
    vth = dt(v_threshold)
    h = np.empty_like(v)                   # membrane after charging, this step only
    for t in range(x.shape[0]):
        # charge: the same algebraic forms as SpikingJelly, so float64 rounding agrees
        if decay_input:
            if vr == 0.0:
                np.subtract(x[t], v, out=h)            # H = V + (X - V) / tau
            else:
                np.subtract(x[t], v - vr, out=h)       # H = V + (X - (V - V_reset)) / tau
            h /= dt(tau)
            h += v
        else:
            if vr == 0.0:
                np.multiply(v, dt(1.0 - 1.0 / tau), out=h)   # H = V (1 - 1/tau) + X
            else:
                np.subtract(v, (v - vr) / dt(tau), out=h)     # H = V - (V - V_reset)/tau + X
            h += x[t]
        # fire
        if smooth:
            S[t] = _surrogate.primitive(surrogate, alpha, h - vth)
        else:
            np.greater_equal(h, vth, out=S[t])         # 0/1 written straight as floats
        s = S[t] if held is None else held[t]
        if sg is not None:
            g = sg[t]
            np.subtract(h, vth, out=g)
            # sg = gain g'(H - V_th); with a detached reset nothing else needs g' itself,
            # so the gain rides on the derivative's own last scaling (one pass less)
            _surrogate.derivative(surrogate, alpha, g, out=g,
                                  scale=gain if detach_reset else 1.0)
        # reset
        if v_reset is None:
            np.multiply(s, vth, out=v)                 # V = H - V_th S
            np.subtract(h, v, out=v)
            if k is not None:
                if detach_reset:
                    k[t] = 1
                else:
                    np.multiply(g, -vth, out=k[t])      # k = 1 - V_th g'
                    k[t] += 1
        else:
            # V = H (1 - S) + V_reset S; for S in {0, 1} this is exactly H or V_reset
            kt = k[t] if k is not None else v
            np.subtract(1, s, out=kt)                  # 1 - S is also dV/dH (detached)
            if k is not None:
                np.multiply(h, kt, out=v)
            else:
                v *= h
            if vr != 0.0:
                v += vr * s
            if k is not None and not detach_reset:
                kt += (vr - h) * g                     # the reset's own path through S
        if k is not None and not detach_reset and gain != 1.0:
            g *= dt(gain)                              # fold dX/dH into the stored sg


def lif_backward(dspikes: np.ndarray, cache: LIFCache) -> np.ndarray:
    """dspikes: (T, ...) -> dx (T, ...), exact BPTT through the membrane.

    Works with dX = gain dH directly (the recurrence is linear, and sg already carries the
    gain), so no final scaling pass is needed; slices of neurons as in :func:`lif_forward`.
    """
    need_forward("LIF", cache)
    expect_same_shape("LIF.backward", "dspikes", dspikes, cache.shape)
    dt = dspikes.dtype.type
    T = cache.shape[0]
    d2 = dspikes.reshape(T, -1)
    dX = np.empty(d2.shape, dtype=dspikes.dtype)
    decay = dt(cache.decay)

    def kernel(a, b):
        part = slice(a, b)
        dx, k = dX[:, part], cache.k[:, part]
        np.multiply(d2[:, part], cache.sg[:, part], out=dx)    # direct path: gain dS sg
        carry = np.empty(b - a, dtype=dX.dtype)
        for t in range(T - 2, -1, -1):
            # dV[t] = dH[t+1] (1 - 1/tau) flows into H[t] through k[t] = dV[t]/dH[t]
            np.multiply(dx[t + 1], decay, out=carry)
            carry *= k[t]
            dx[t] += carry

    for_each_chunk(kernel, dX.shape[1], max(1, CHUNK_BYTES // dX.dtype.itemsize), even=True)
    return dX.reshape(cache.shape)


class LIF(Module):
    """Multi-step LIF layer, the public neuron entry point (signature kept stable).

    ``LIF(tau=2.0, v_threshold=1.0, v_reset=0.0, decay_input=True, detach_reset=True,
    surrogate="sigmoid", alpha=None, smooth=False)``; ``spikes = lif.forward(x_seq)`` for
    x_seq (T, ...), ``dx = lif.backward(dspikes)``; ``lif.v`` is the membrane after the
    last step and ``lif.firing_rate`` the fraction of neurons firing at each step (T,).
    Every forward starts from a fresh membrane (V[-1] = v_reset), as SpikingJelly after
    ``reset_net``. ``detach_reset`` defaults to True because sMLPNet uses it everywhere
    (SpikingJelly's own default is False). ``alpha=None``: sigmoid 4, atan 2.
    """

    def __init__(self, tau: float = 2.0, v_threshold: float = 1.0,
                 v_reset: float | None = 0.0, decay_input: bool = True,
                 detach_reset: bool = True, surrogate: str = "sigmoid",
                 alpha: float | None = None, smooth: bool = False) -> None:
        super().__init__()
        alpha = check_options(tau, v_threshold, v_reset, surrogate, alpha)
        self.options = dict(tau=float(tau), v_threshold=float(v_threshold),
                            v_reset=None if v_reset is None else float(v_reset),
                            decay_input=bool(decay_input), detach_reset=bool(detach_reset),
                            surrogate=surrogate, alpha=alpha, smooth=bool(smooth))
        self.v = None
        self.firing_rate = None
        self._cache = None
        # Finite-difference checks with detach_reset=True: the backward treats the spike in
        # the reset as a constant, so perturbed forwards must reuse the reset spikes of the
        # unperturbed one. ``hold_reset()`` records them at the next forward and replays
        # them until ``release_reset()``.
        self._hold = False
        self._held = None

    def hold_reset(self) -> None:
        self._hold, self._held = True, None

    def release_reset(self) -> None:
        self._hold, self._held = False, None

    def forward(self, x_seq: np.ndarray) -> np.ndarray:
        spikes, self.v, self._cache = lif_forward(x_seq, need_grad=self.training,
                                                  reset_spikes=self._held, **self.options)
        if self._hold and self._held is None:
            self._held = spikes.copy()
        self.firing_rate = spikes.reshape(spikes.shape[0], -1).mean(axis=1)
        return spikes

    def backward(self, dspikes: np.ndarray) -> np.ndarray:
        dx = lif_backward(dspikes, self._cache)
        self._cache = None
        return dx

    def __repr__(self) -> str:
        return "LIF(" + ", ".join(f"{k}={v!r}" for k, v in self.options.items()) + ")"
