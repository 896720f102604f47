"""Micro-benchmark of every op at CIFAR sizes: ``python -m npsnn.perf.bench ops --repeats N``.

Each op runs its pure ``forward`` and ``backward`` functions in float32 on the shapes the
``cifar10-p4-d48`` model sees with T = 4, B = 64 (dim 48, alpha 3, 8x8 tokens in stage 0);
the table gives the median wall time of each pass over ``repeats`` runs, after one
untimed warm-up run. Inputs are random (spike-like 0/1 where the op reads spikes).
"""
from __future__ import annotations

import time

import numpy as np

from ..ops.axis_projection import axis_projection_backward, axis_projection_forward
from ..ops.batchnorm import batchnorm_backward, batchnorm_forward
from ..ops.conv import conv2d_backward, conv2d_forward
from ..ops.lif import lif_backward, lif_forward
from ..ops.linear import linear_backward, linear_forward
from ..ops.losses import cross_entropy_backward, cross_entropy_forward

T, B = 4, 64
DTYPE = np.float32


def _lif(x):
    spikes, _, cache = lif_forward(x)          # sMLPNet's neuron: the defaults
    return spikes, cache


def _cases(rng: np.random.Generator):
    """-> list of (name, shape text, forward() -> (out, cache), backward(dout, cache))."""
    def normal(*shape):
        return rng.standard_normal(shape, dtype=DTYPE)

    def spikes(*shape):
        return (rng.random(shape) < 0.2).astype(DTYPE)

    def weights(*shape):
        return normal(*shape) * DTYPE(0.1)

    cases = []

    def add(name, shape, fwd, bwd):
        cases.append((name, shape, fwd, bwd))

    for shape in [(T, B, 48, 8, 8), (T, B, 8, 8, 144)]:
        x = normal(*shape) + DTYPE(0.5)
        add("LIF (sigmoid, hard reset, detach)", shape, lambda x=x: _lif(x), lif_backward)

    x, w, b = spikes(T, B, 64, 48), weights(144, 48), weights(144)
    add("Linear 48->144 (+bias)", x.shape, lambda x=x, w=w, b=b: linear_forward(x, w, b),
        lambda d, c: linear_backward(d, c))

    conv_cases = [      # name, x, weight, stride, padding (no bias, as in sMLPNet)
        ("Conv2d 4x4/s4 3->48 NHWC (patch embed)", normal(T, B, 32, 32, 3),
         weights(48, 3, 4, 4), 4, 0),
        ("Conv2d 3x3/s2/p1 48->32 NHWC (PatchCell)", spikes(T, B, 8, 8, 48),
         weights(32, 48, 3, 3), 2, 1),
        ("Conv2d 3x3/s1/p1 32->32 NHWC (PatchCell)", spikes(T, B, 4, 4, 32),
         weights(32, 32, 3, 3), 1, 1),
        ("Conv2d 1x1 144->48 NHWC (fuse)", spikes(T, B, 8, 8, 144), weights(48, 144, 1, 1), 1, 0),
    ]
    for name, x, w, stride, pad in conv_cases:
        add(name, x.shape,
            lambda x=x, w=w, s=stride, p=pad: conv2d_forward(x, w, None, s, p, "NHWC"),
            lambda d, c: conv2d_backward(d, c))

    bn_cases = [
        ("BatchNorm2d(48) channels-last, axis 4", normal(T, B, 8, 8, 48), 4),
        ("BatchNorm1d(64) over tokens, axis 2", normal(T, B, 64, 144), 2),
    ]
    for name, x, axis in bn_cases:
        F = x.shape[axis]
        gamma, beta = np.ones(F, DTYPE), np.zeros(F, DTYPE)
        rm, rv = np.zeros(F, DTYPE), np.ones(F, DTYPE)
        add(name, x.shape,
            lambda x=x, a=axis, g=gamma, b=beta, rm=rm, rv=rv:
                batchnorm_forward(x, g, b, rm, rv, axis=a, training=True),
            batchnorm_backward)

    x = spikes(T, B, 8, 8, 48)
    for label, axis in [("H", 2), ("W", 3)]:
        w, b = weights(8, 8, 1, 1), weights(8)
        add(f"AxisProjection along {label} (8x8 + bias)", x.shape,
            lambda x=x, w=w, b=b, a=axis: axis_projection_forward(x, w, b, a),
            lambda d, c: axis_projection_backward(d, c))

    logits, labels = normal(T, B, 10), rng.integers(0, 10, B)
    add("Cross-entropy on T-averaged logits", logits.shape,
        lambda: cross_entropy_forward(logits, labels),
        lambda d, c: cross_entropy_backward(c))
    return cases


def _time(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def run_ops(repeats: int = 20, seed: int = 0, verbose: bool = True) -> list[dict]:
    """Time forward and backward of every op; print a table (if verbose) and return rows
    ``{"op", "shape", "forward_ms", "backward_ms"}`` (medians over ``repeats``)."""
    if repeats < 1:
        raise ValueError(f"run_ops expected repeats >= 1, got {repeats!r}")
    rng = np.random.default_rng(seed)
    rows = []
    for name, shape, fwd, bwd in _cases(rng):
        out, cache = fwd()                                   # warm-up, and a dout shape
        dout = rng.standard_normal(np.shape(out)).astype(DTYPE) if np.ndim(out) else 1.0
        bwd(dout, cache)
        tf, tb = [], []
        for _ in range(repeats):
            t, (out, cache) = _time(fwd)
            tf.append(t)
            t, _ = _time(lambda: bwd(dout, cache))
            tb.append(t)
        rows.append(dict(op=name, shape=str(tuple(shape)), forward_ms=1e3 * float(np.median(tf)),
                         backward_ms=1e3 * float(np.median(tb))))
    if verbose:
        print(format_table(rows, repeats))
    return rows


def format_table(rows: list[dict], repeats: int) -> str:
    head = ("op", "input shape", "fwd ms", "bwd ms")
    w0 = max(len(head[0]), *(len(r["op"]) for r in rows))
    w1 = max(len(head[1]), *(len(r["shape"]) for r in rows))
    lines = [f"float32, T={T}, B={B}, median of {repeats} repeats",
             f"{head[0]:<{w0}}  {head[1]:<{w1}}  {head[2]:>8}  {head[3]:>8}",
             f"{'-' * w0}  {'-' * w1}  {'-' * 8}  {'-' * 8}"]
    for r in rows:
        lines.append(f"{r['op']:<{w0}}  {r['shape']:<{w1}}  {r['forward_ms']:8.2f}  "
                     f"{r['backward_ms']:8.2f}")
    return "\n".join(lines)
