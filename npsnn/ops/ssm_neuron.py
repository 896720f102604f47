"""The SpikingSSM neuron (hard reset, threshold 1), and three ways to train it.

Every feature of every sequence carries one neuron; its input x (the scaled SSM output) is
a sequence over l = 0..L-1 (the last axis). With decay ``tau`` (0.125 in the official
model) and u[-1] = 0::

    m[l] = tau u[l-1]                 the decayed membrane, before the input arrives
    v[l] = m[l] + x[l]                charge
    s[l] = H(v[l] - 1)                fire (H(0) = 1)
    u[l] = v[l] (1 - s[l])            hard reset to 0

The reset makes each step depend on the last, so the forward is a loop over l -- the
obstacle to training in parallel over time that the SDN removes. The spike's derivative
is replaced by the piecewise-quadratic surrogate (its *primitive* is piecewise quadratic,
its derivative a triangle)::

    g(z)  = 0 (z < -1),  (z + 1)^2 / 2 (-1 <= z < 0),  1 - (1 - z)^2 / 2 (0 <= z < 1),  1 (z >= 1)
    g'(z) = max(0, 1 - |z|)

Three training modes, all with the reset spike treated as a constant (detached):

* **bptt** -- backpropagation through time through the membrane::

      dv[l] = ds[l] g'(v[l] - 1) + dv[l+1] tau (1 - s[l]),    dx[l] = dv[l]

* **sltt** -- the carried membrane is detached as well, so no gradient crosses time
  steps: ``dx[l] = ds[l] g'(v[l] - 1)``. The forward is the exact recurrence.
* **sdn** -- a frozen surrogate dynamic network (:mod:`npsnn.models.sdn`) predicts all the
  decayed membranes m^ = SDN(x) at once; the neuron then fires in parallel over l::

      s[l] = H(m^[l] + x[l] - 1),      dx[l] = ds[l] g'(m^[l] + x[l] - 1)

  (no gradient through the SDN). SLTT is the same formula with the exact m in place of m^.

Confirmed in shenshuaijie/SDN: ``src/models/spike/neuron.py`` (``BPTTNueron``,
``SLTTNueron``: ``u = u * tau + x[..., i]``, ``s = surrogate(u - vth)``,
``u = (1 - s.detach()) u + s.detach() v_r`` with tau 0.125, vth 1, v_r 0, SLTT with
``u.detach()``; ``SDNNeuron``: ``s = surrogate(mem + x - 1.0)`` with ``mem`` predicted
under ``no_grad`` from ``x.detach()``), ``src/models/spike/surrogate.py``
(``piecewise_quadratic``: forward ``x >= 0``, backward ``grad (1 - |x|)``, zero where
|x| > 1) and ``generate.py`` (``hardreset``: the SDN's training labels are ``tau u``
before the input is added, the ``m`` above).

``smooth=True`` fires with g itself instead of the step (and resets by the smooth spike),
so that finite differences through a whole network are meaningful; the spikes are then
values in [0, 1]. Finite-difference checks must also hold what the backward treats as
constant: the reset spikes (bptt) or the membrane (sltt, sdn) -- :meth:`SSMNeuron.hold`.
"""
from __future__ import annotations

import numpy as np

from .._checks import expect_array, expect_choice, expect_same_shape, need_forward
from ..module import Module

MODES = ("bptt", "sltt", "sdn")


# -- the piecewise-quadratic surrogate -------------------------------------------------------
def pq_primitive(z: np.ndarray) -> np.ndarray:
    """g(z): the smooth step whose derivative is the triangle max(0, 1 - |z|)."""
    c = np.clip(z, -1, 1)
    return np.where(c < 0, (c + 1) ** 2 / 2, 1 - (1 - c) ** 2 / 2).astype(z.dtype, copy=False)


def pq_derivative(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """g'(z) = max(0, 1 - |z|), written into ``out`` if given."""
    y = np.abs(z, out=out)
    np.subtract(1, y, out=y)
    np.maximum(y, 0, out=y)
    return y


# -- the exact recurrence (bptt, sltt) -------------------------------------------------------
def _transpose(a: np.ndarray) -> np.ndarray:
    """A contiguous copy of the 2-D transpose, written in blocks of 64 rows: each block reads
    whole cache lines and writes a compact tile (4-5x faster than ``ascontiguousarray(a.T)``
    on (6400, 1024), which strides across memory for every element)."""
    out = np.empty(a.shape[::-1], dtype=a.dtype)
    for i in range(0, a.shape[0], 64):
        out[:, i:i + 64] = a[i:i + 64].T
    return out


def _time_major(x: np.ndarray) -> np.ndarray:
    """(..., L) -> (L, N) contiguous: each step of the loop reads one contiguous row."""
    return _transpose(x.reshape(-1, x.shape[-1]))


def _time_last(a: np.ndarray, shape) -> np.ndarray:
    return _transpose(a).reshape(shape)


def _check_x(op: str, x):
    expect_array(op, "x", x)
    if x.ndim < 1 or x.shape[-1] < 1:
        raise ValueError(f"{op} expected x of shape (..., L) with L >= 1 steps, got {x.shape}")


def _check_tau(tau):
    if not (np.isfinite(tau) and 0 <= tau <= 1):
        raise ValueError(f"SSMNeuron expected a decay tau in [0, 1] (the membrane keeps tau of "
                         f"itself per step; 0.125 in the official model), got {tau!r}")
    return float(tau)


def hard_reset_forward(x: np.ndarray, tau: float = 0.125, *, smooth: bool = False,
                       through_time: bool = True, need_grad: bool = True,
                       need_membrane: bool = False, reset_spikes: np.ndarray | None = None):
    """The exact recurrence. x: (..., L), time last.

    -> (spikes (..., L), membrane m (..., L) or None, cache or None). ``through_time``:
    True keeps what the BPTT backward needs, False what SLTT's needs. ``reset_spikes``
    (..., L): values used for s[l] inside the reset instead of the fired spikes (finite
    differences with a detached reset; see :meth:`SSMNeuron.hold`).
    """
    _check_x("SSMNeuron", x)
    tau = _check_tau(tau)
    if reset_spikes is not None:
        expect_same_shape("SSMNeuron", "reset_spikes", reset_spikes, x.shape)
    dt = x.dtype.type
    X = _time_major(x)                              # (L, N)
    held = None if reset_spikes is None else _time_major(reset_spikes)
    V = np.empty_like(X)                            # charged membranes v[l]
    keep = np.empty_like(X)                         # 1 - s[l] as used by the reset
    u = np.zeros(X.shape[1], dtype=x.dtype)
    for t in range(X.shape[0]):
        v = V[t]
        np.multiply(u, dt(tau), out=v)              # m = tau u[l-1]
        v += X[t]                                   # v = m + x   (official: u * tau + x)
        if held is not None:
            np.subtract(1, held[t], out=keep[t])
        elif smooth:
            keep[t] = 1 - pq_primitive(v - 1)
        else:
            np.less(v, 1, out=keep[t])              # 1 - H(v - 1)
        np.multiply(v, keep[t], out=u)              # hard reset to 0
    if smooth:
        S = pq_primitive(V - 1)
    elif held is None:
        S = np.subtract(1, keep, out=np.empty_like(keep))   # s = 1 - (1 - s)
    else:
        S = np.greater_equal(V, 1, out=np.empty_like(V))
    M = None
    if need_membrane:                               # m[l] = tau u[l-1], the same products
        M = np.zeros_like(X)
        np.multiply(V[:-1], keep[:-1], out=M[1:])
        M[1:] *= dt(tau)
        M = _time_last(M, x.shape)
    cache = None
    if need_grad:
        V -= 1
        sg = pq_derivative(V, out=V)                # g'(v - 1), in V's memory
        carry = None
        if through_time:
            carry = np.multiply(keep, dt(tau), out=keep)    # dv[l+1] / dv[l] = tau (1 - s)
        cache = (sg, carry, x.shape)
    return _time_last(S, x.shape), M, cache


def hard_reset_backward(dspikes: np.ndarray, cache) -> np.ndarray:
    """dspikes: (..., L) -> dx (..., L). BPTT if the forward ran with through_time=True,
    SLTT (no path across steps) otherwise."""
    need_forward("SSMNeuron", cache)
    sg, carry, shape = cache
    expect_same_shape("SSMNeuron.backward", "dspikes", dspikes, shape)
    dX = _time_major(dspikes)
    dX *= sg                                        # ds g'(v - 1): the direct path
    if carry is not None:
        for t in range(dX.shape[0] - 2, -1, -1):    # dv[l] += dv[l+1] tau (1 - s[l])
            dX[t] += dX[t + 1] * carry[t]
    return _time_last(dX, shape)


# -- firing from a given membrane (sdn; sltt with the exact membrane) ---------------------
def membrane_spike_forward(x: np.ndarray, membrane: np.ndarray, *, smooth: bool = False,
                           need_grad: bool = True):
    """s = H(membrane + x - 1), elementwise (any shape). -> (spikes, cache or None)."""
    _check_x("SSMNeuron", x)
    expect_array("SSMNeuron", "membrane", membrane)
    expect_same_shape("SSMNeuron", "membrane", membrane, x.shape)
    z = membrane + x
    z -= 1                                          # official: mem + x - 1.0
    S = pq_primitive(z) if smooth else (z >= 0).astype(x.dtype)
    return S, (pq_derivative(z, out=z) if need_grad else None)


def membrane_spike_backward(dspikes: np.ndarray, cache) -> np.ndarray:
    need_forward("SSMNeuron", cache)
    expect_same_shape("SSMNeuron.backward", "dspikes", dspikes, cache.shape)
    return dspikes * cache


def spike_accuracy(predicted: np.ndarray, exact: np.ndarray) -> float:
    """Fraction of (sequence, step) positions where two spike trains agree."""
    return float(np.mean((predicted >= 0.5) == (exact >= 0.5)))


class SSMNeuron(Module):
    """``SSMNeuron(mode="sdn", tau=0.125, predictor=None, smooth=False)`` on (B, H, L).

    mode: "bptt", "sltt" or "sdn"; ``predictor``: for "sdn", a callable x -> predicted
    decayed membrane of the same shape (a frozen :class:`npsnn.models.sdn.SDN`'s
    ``predict``). ``firing_rate`` is the fraction of ones after each forward.
    """

    def __init__(self, mode: str = "sdn", tau: float = 0.125, predictor=None,
                 smooth: bool = False) -> None:
        super().__init__()
        expect_choice("SSMNeuron", "mode", mode, MODES)
        if mode == "sdn" and predictor is None:
            raise ValueError("SSMNeuron in mode 'sdn' needs a predictor (the trained SDN's "
                             "predict, e.g. npsnn.models.sdn.load_sdn().predict)")
        self.mode, self.tau, self.predictor, self.smooth = mode, _check_tau(tau), predictor, \
            bool(smooth)
        self.firing_rate = None
        self._cache = None
        self._hold, self._held = False, None

    def hold(self) -> None:
        """Finite-difference checks: record, at the next forward, what the backward treats
        as constant (reset spikes for bptt, the membrane for sltt and sdn) and replay it in
        every later forward until :meth:`release`."""
        self._hold, self._held = True, None

    def release(self) -> None:
        self._hold, self._held = False, None

    def forward(self, x: np.ndarray) -> np.ndarray:
        need = self.training
        if self.mode != "sdn" and self._held is None:
            # the exact recurrence; sltt keeps no path across steps in its cache
            S, membrane, self._cache = hard_reset_forward(
                x, self.tau, smooth=self.smooth, through_time=self.mode == "bptt",
                need_grad=need, need_membrane=self._hold and self.mode == "sltt")
            held = S if self.mode == "bptt" else membrane
        elif self.mode == "bptt":
            S, _, self._cache = hard_reset_forward(
                x, self.tau, smooth=self.smooth, need_grad=need, reset_spikes=self._held)
            held = S
        else:
            membrane = self.predictor(x) if self._held is None else self._held
            S, self._cache = membrane_spike_forward(x, membrane, smooth=self.smooth,
                                                    need_grad=need)
            held = membrane
        if self._hold and self._held is None:
            self._held = held.copy()
        self.firing_rate = float(S.mean())
        return S

    def backward(self, dspikes: np.ndarray) -> np.ndarray:
        if isinstance(self._cache, tuple):          # from the recurrence (bptt, sltt)
            dx = hard_reset_backward(dspikes, self._cache)
        else:                                       # from a membrane (sdn, held sltt)
            dx = membrane_spike_backward(dspikes, self._cache)
        self._cache = None
        return dx

    def __repr__(self) -> str:
        return f"SSMNeuron(mode={self.mode!r}, tau={self.tau!r}, smooth={self.smooth!r})"
