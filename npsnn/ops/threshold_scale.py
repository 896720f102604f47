"""Learnable firing threshold, as a scaling of the neuron's input: y = x / exp(ln_vth).

A neuron with threshold V_th fires when its membrane reaches V_th; dividing its input by
V_th gives a neuron with threshold 1 and the same spikes (the membrane recurrence is
linear between resets). SpikingSSM learns the threshold in log form, one per feature or
one shared by all (``ln_vth`` (H, 1) or (1,), zeros at initialisation, so V_th starts at 1)::

    y[b,h,l] = x[b,h,l] / exp(ln_vth[h])
    dx       = dy / exp(ln_vth)
    dln_vth  = -sum_{b,l} dy y             (d/dz of x e^{-z} is -x e^{-z} = -y)

Confirmed in shenshuaijie/SDN ``models/spike/ss4d.py``, ``SS4D.__init__`` (``ln_vth``
zeros of shape (d_model, 1), or (1,) with ``shared_vth``) and ``SS4D.forward``
(``y = y / torch.exp(self.ln_vth)``, a division: kept here so float64 rounding agrees).
"""
from __future__ import annotations

import numpy as np

from .._checks import expect_array, expect_same_shape, need_forward
from .shape import sum_to_shape


def threshold_scale_forward(x: np.ndarray, ln_vth: np.ndarray, need_grad: bool = True):
    """x: (B, H, L); ln_vth: (H, 1) per feature or (1,) shared. -> (y (B, H, L), cache)."""
    expect_array("ThresholdScale", "x", x)
    expect_array("ThresholdScale", "ln_vth", ln_vth)
    if x.ndim != 3 or ln_vth.shape not in ((x.shape[1], 1), (1,)):
        raise ValueError(f"ThresholdScale expected x (B, H, L) and ln_vth (H, 1) or (1,), got "
                         f"x {x.shape} and ln_vth {ln_vth.shape}")
    vth = np.exp(ln_vth)
    y = x / vth
    return y, ((y, vth, ln_vth.shape) if need_grad else None)


def threshold_scale_backward(dy: np.ndarray, cache):
    """dy: (B, H, L) -> (dx (B, H, L), dln_vth (shape of ln_vth))."""
    need_forward("ThresholdScale", cache)
    y, vth, shape = cache
    expect_same_shape("ThresholdScale.backward", "dy", dy, y.shape)
    dln_vth = -sum_to_shape(np.einsum("bhl,bhl->h", dy, y)[:, None], shape)
    return dy / vth, dln_vth.astype(y.dtype)
