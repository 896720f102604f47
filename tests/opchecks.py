"""Finite-difference checks of single ops, shared by the op tests (tests/ops/) and the
whole-network test (tests/models/test_network_gradcheck.py), which re-runs them as its
sabotage baseline. Each ``check_*`` builds a random float64 case, runs the op's forward
and backward and compares every gradient with central differences
(:func:`gradcheck.assert_grads`); it returns ``{name: relative error}``.
"""
import numpy as np

from gradcheck import assert_grads, weighted_pairs
from npsnn.ops import axis_projection as ap_mod
from npsnn.ops import batchnorm as bn_mod
from npsnn.ops import conv as conv_mod
from npsnn.ops import lif as lif_mod
from npsnn.ops import linear as linear_mod


# name: (shape, feature axis)
CASES = {
    "bn1d-tokens (T,B,N,C) axis 2": ((3, 2, 5, 7), 2),
    "bn2d channels-last (T,B,H,W,C) axis 4": ((2, 3, 3, 5, 4), 4),
    "bn2d channels-last axis -1": ((2, 3, 3, 5, 4), -1),
    "bn2d channels-first (T,B,C,H,W) axis 2": ((2, 3, 4, 3, 5), 2),
    "bn over H of (T,B,H,W,C) axis 2": ((2, 2, 5, 3, 4), 2),
    "bn over W of (T,B,H,W,C) axis 3": ((2, 2, 3, 5, 4), 3),
    "2-D (N,F) axis 1": ((9, 4), 1),
}


def _bn_data(shape, axis, seed=0):
    rng = np.random.default_rng(seed)
    F = shape[axis]
    x = rng.normal(size=shape) * 2 + rng.normal(size=(1,) * len(shape)) + 0.5
    return (x, 1 + 0.5 * rng.normal(size=F), rng.normal(size=F),
            rng.normal(size=F), 0.5 + rng.random(F), rng.normal(size=shape))


def check_bn(shape, axis, training, seed=0, **kwargs):
    x, w, b, rm, rv, g = _bn_data(shape, axis, seed)

    def fwd():
        # running stats are updated in place in train mode: give each call fresh copies
        # (train-mode outputs do not depend on them anyway)
        return bn_mod.batchnorm_forward(x, w, b, rm.copy(), rv.copy(), axis=axis,
                                        training=training)

    def loss():
        return float(np.sum(fwd()[0] * g))

    _, cache = fwd()
    dx, dw, db = bn_mod.batchnorm_backward(g, cache)
    return assert_grads(loss, {"x": (x, dx), "weight": (w, dw), "bias": (b, db)}, **kwargs)


def check_linear(lead, fin, fout, bias, seed=0, **kwargs):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=lead + (fin,))
    w = rng.normal(size=(fout, fin))
    b = rng.normal(size=fout) if bias else None
    g = rng.normal(size=lead + (fout,))

    def loss():
        return float(np.sum(linear_mod.linear_forward(x, w, b)[0] * g))

    y, cache = linear_mod.linear_forward(x, w, b)
    expect = x @ w.T + (b if bias else 0)
    np.testing.assert_allclose(y, expect, rtol=1e-12, atol=1e-12)
    dx, dw, db = linear_mod.linear_backward(g, cache)
    return assert_grads(loss, weighted_pairs(x, dx, w, dw, b if bias else None, db), **kwargs)


# (C, O, H, W, kernel, stride, padding)
GEOMETRIES = {
    "4x4s4": (3, 4, 8, 8, (4, 4), (4, 4), (0, 0)),
    "4x4s4-untiled": (2, 3, 9, 10, (4, 4), (4, 4), (0, 0)),   # H, W not multiples of 4
    "2x2s2": (3, 4, 6, 6, (2, 2), (2, 2), (0, 0)),
    "2x2s2-odd": (3, 2, 5, 7, (2, 2), (2, 2), (0, 0)),        # last row/column dropped
    "2x2s2-p1": (2, 3, 6, 4, (2, 2), (2, 2), (1, 1)),          # padded, still tiles exactly
    "3x3s2p1": (3, 4, 7, 8, (3, 3), (2, 2), (1, 1)),
    "3x3s1p1": (3, 5, 5, 6, (3, 3), (1, 1), (1, 1)),
    "1x1": (5, 3, 4, 5, (1, 1), (1, 1), (0, 0)),
    "1x1s2": (3, 2, 5, 5, (1, 1), (2, 2), (0, 0)),
    "3x2-s21-p10": (2, 3, 7, 5, (3, 2), (2, 1), (1, 0)),
    "2x3-s12-p02": (3, 2, 5, 6, (2, 3), (1, 2), (0, 2)),
    "5x5s3p2": (2, 2, 9, 7, (5, 5), (3, 3), (2, 2)),
}


def _conv_data(C, O, H, W, kernel, seed):
    rng = np.random.default_rng(seed)
    T, B = 2, 3
    return (rng.normal(size=(T, B, C, H, W)), rng.normal(size=(O, C) + kernel),
            rng.normal(size=O))


def check_conv(name, layout, bias, seed=0, **kwargs):
    C, O, H, W, kernel, stride, padding = GEOMETRIES[name]
    x_nchw, w, b = _conv_data(C, O, H, W, kernel, seed)
    b = b if bias else None
    x = x_nchw if layout == "NCHW" else np.ascontiguousarray(x_nchw.transpose(0, 1, 3, 4, 2))

    def fwd():
        return conv_mod.conv2d_forward(x, w, b, stride, padding, layout)

    y, cache = fwd()
    g = np.random.default_rng(seed + 1).normal(size=y.shape)

    def loss():
        return float(np.sum(fwd()[0] * g))

    dx, dw, db = conv_mod.conv2d_backward(g, cache)
    return assert_grads(loss, weighted_pairs(x, dx, w, dw, b if bias else None, db), **kwargs)


# name: (x shape, axis, S_out)
AP_CASES = {
    "H of (T,B,H,W,C)": ((2, 3, 5, 4, 3), 2, 5),
    "W of (T,B,H,W,C)": ((2, 3, 4, 5, 3), 3, 5),
    "W as axis -2": ((2, 3, 4, 5, 3), -2, 5),
    "H of (T,B,C,H,W)": ((2, 2, 3, 5, 4), 3, 5),
    "rectangular S_out != S": ((2, 2, 3, 4, 2), 2, 6),
}


def check_axis_projection(case, bias, seed=0, **kwargs):
    shape, axis, s_out = AP_CASES[case]
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape)
    w = rng.normal(size=(s_out, shape[axis], 1, 1))
    b = rng.normal(size=s_out) if bias else None

    def fwd():
        return ap_mod.axis_projection_forward(x, w, b, axis)

    y, cache = fwd()
    # the definition: y[..., p, ...] = sum_h W[p, h] x[..., h, ...] + b[p]
    xm = np.moveaxis(x, axis, -1)
    ref = np.moveaxis(xm @ w[:, :, 0, 0].T + (b if bias else 0), -1, axis)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
    g = rng.normal(size=y.shape)

    def loss():
        return float(np.sum(fwd()[0] * g))

    dx, dw, db = ap_mod.axis_projection_backward(g, cache)
    return assert_grads(loss, weighted_pairs(x, dx, w, dw, b if bias else None, db), **kwargs)


# T >= 6 so the carry term dV[t] = dH[t+1] (1 - 1/tau) k[t] is exercised over many steps.
SHAPE = (7, 3, 5)


def _input(shape=SHAPE, seed=0, mean=0.9, std=1.0):
    """Currents around the threshold, so membranes cross it often (smooth spikes near 0.5)."""
    rng = np.random.default_rng(seed)
    return rng.normal(mean, std, size=shape), rng.normal(size=shape)


def check_lif(options, shape=SHAPE, seed=0, **kwargs):
    """Gradient check of lif_backward for one option set; returns {name: error}."""
    x, g = _input(shape, seed)
    options = dict(options, smooth=True)
    s0, _, cache = lif_mod.lif_forward(x, **options)
    held = s0.copy() if options.get("detach_reset", True) else None

    def loss():
        s, _, _ = lif_mod.lif_forward(x, reset_spikes=held, need_grad=False, **options)
        return float(np.sum(s * g))

    dx = lif_mod.lif_backward(g, cache)
    return assert_grads(loss, {"x": (x, dx)}, **kwargs)
