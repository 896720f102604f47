"""Fast path: run an :class:`IntegerNetwork` on a batch, all time steps of a layer at once.

Every synaptic sum is an exact integer. It is computed with float64 GEMMs on
integer-valued arrays, which is exact as long as every partial sum stays below 2^53;
that bound is asserted per op from the weights (sum of |row| times the largest input),
so the result equals the event-driven reference (:mod:`npsnn.golden.reference`) bit for
bit. Layouts: per image channels-last (H, W, C); arrays carry (T, B) in front
((1, B) for the time-invariant first layer).
"""
from __future__ import annotations

import numpy as np

from ..ops.conv import conv2d_forward
from .convert import check_images
from .intops import check_range, lif_step, rshift
from .network import IntegerNetwork

EXACT = 2.0 ** 53


def _exact_bound(weight: np.ndarray, max_input: int, name: str) -> None:
    """Every float64 partial sum is bounded by max_input * sum_j |w[row, j]|; require it
    below 2^53 so the GEMM result is the exact integer (raise, not assert: -O safe)."""
    rows = np.abs(weight).reshape(weight.shape[0], -1) if weight.ndim == 4 else \
        np.abs(weight).reshape(-1, weight.shape[-1])
    bound = float(rows.sum(axis=1).max(initial=0)) * max_input
    if not bound < EXACT:
        raise OverflowError(f"golden fast path: op '{name}' could reach {bound:.3g} >= 2^53, "
                            f"where float64 sums stop being exact")


def _f64(a):
    return a.astype(np.float64)


def _to_int(y: np.ndarray) -> np.ndarray:
    return np.rint(y).astype(np.int64)


def synaptic_sum(net: IntegerNetwork, op: dict, x: np.ndarray) -> np.ndarray:
    """acc = the integer weighted sum of ``x`` (T, B, H, W, C_in) for term ``op``."""
    p = net.params
    w = p[op["weight"]]
    kind = op["kind"]
    lead = x.shape[:2]
    if kind in ("conv", "conv_bitplane"):
        _exact_bound(w, 1, op["name"])
        wf = _f64(w)

        def conv(z):
            y, _ = conv2d_forward(_f64(z).reshape((-1,) + z.shape[2:]), wf, None,
                                  op["stride"], op["padding"], layout="NHWC")
            return _to_int(y)
        if kind == "conv":
            acc = conv(x)
        else:     # x = sum_k 2^k b_k:  conv(x) = sum_k conv(b_k) << k
            acc = sum(np.left_shift(conv((x >> k) & 1), k) for k in range(8))
        return acc.reshape(lead + acc.shape[1:])
    if kind == "axis":
        _exact_bound(w, 1, op["name"])
        T, B, H, W, C = x.shape
        wf = _f64(w)
        if op["axis"] == "H":      # acc[p, w, c] = sum_h Wp[p, h] x[h, w, c]
            y = np.matmul(wf, _f64(x).reshape(T * B, H, W * C))
        else:                      # acc[h, p, c] = sum_w Wp[p, w] x[h, w, c]
            y = np.matmul(wf, _f64(x).reshape(T * B * H, W, C))
        return _to_int(y).reshape(x.shape[:4] + (C,)) if op["axis"] == "W" else \
            _to_int(y).reshape(T, B, H, W, C)
    if kind in ("dense", "dense_signed_token"):
        _exact_bound(w, 1, op["name"])
        return _to_int(_f64(x) @ _f64(w).T)
    if kind == "dense_token":    # acc[n, o] = sum_k W[n, o, k] x[n, k]
        _exact_bound(w, 1, op["name"])
        T, B, H, W, K = x.shape
        xn = _f64(x).reshape(T * B, H * W, K).transpose(1, 0, 2)       # (N, TB, K)
        y = np.matmul(xn, _f64(w).transpose(0, 2, 1))                   # (N, TB, O)
        return _to_int(y.transpose(1, 0, 2)).reshape(T, B, H, W, w.shape[1])
    raise ValueError(f"golden run: unknown term kind {kind!r} in op '{op['name']}'")


def term_value(net: IntegerNetwork, op: dict, acc: np.ndarray) -> np.ndarray:
    """value = rshift(acc, e) + bias, with the broadcasting of each term kind."""
    p = net.params
    e, b = p[op["shift"]], p[op["bias"]]
    kind = op["kind"]
    H, W, _ = op["out_shape"]
    if kind == "axis":
        if op["axis"] == "H":
            return rshift(acc, e[:, None, None]) + b[:, None, None]
        return rshift(acc, e[:, None]) + b[:, None]
    if kind == "dense_token":
        O = e.shape[1]
        return rshift(acc, e.reshape(H, W, O)) + b.reshape(H, W, O)
    if kind == "dense_signed_token":
        sign = p[op["sign"]].reshape(H, W, 1)
        return sign * rshift(acc, e) + b.reshape(H, W, -1)
    return rshift(acc, e) + b


def run(net: IntegerNetwork, images: np.ndarray, T: int, *, record: bool = False,
        policy: str | None = None) -> dict:
    """Integer inference. images: uint8 (B, C, H, W) raw pixels; T time steps.

    -> dict(logits (B, classes) int64 (summed over T), pred (B,), events (overflows
    handled by saturate/wrap), trace {op name: {field: array (T|1, B, ...)}} if record).
    """
    check_images("golden run", images, net.input_shape)
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"golden run expected T to be a positive integer, got {T!r}")
    policy = policy or net.policy
    bits, p = net.bits, net.params
    events: list = []
    x_in = np.ascontiguousarray(images.transpose(0, 2, 3, 1)).astype(np.int64)[None]
    tensors = {"input": x_in}
    trace: dict = {}
    logits = None
    for op in net.ops:
        name, kind = op["name"], op["op"]
        if kind == "term":
            x = np.concatenate([tensors[s] for s in op["src"]], axis=-1) \
                if len(op["src"]) > 1 else tensors[op["src"][0]]
            acc = check_range(synaptic_sum(net, op, x), bits["acc"], policy, name, "acc", events)
            value = check_range(term_value(net, op, acc), bits["acc"], policy, name, "value",
                                events)
            tensors[name] = value
            if record:
                trace[name] = dict(input=x, acc=acc, value=value)
        elif kind == "add":
            value = sum(np.broadcast_arrays(*[tensors[s] for s in op["src"]]))
            value = check_range(value, bits["mem"], policy, name, "value", events)
            tensors[name] = value
            if record:
                trace[name] = dict(value=value)
        elif kind == "concat":
            tensors[name] = np.concatenate(np.broadcast_arrays(*[tensors[s] for s in op["src"]]),
                                           axis=-1)
            if record:
                trace[name] = dict(value=tensors[name])
        elif kind == "lif":
            X = check_range(tensors[op["src"]], bits["mem"], policy, name, "current", events)
            X = np.broadcast_to(X, (T,) + X.shape[1:])
            theta = p[op["threshold"]]
            v = np.zeros(X.shape[1:], np.int64)
            S = np.empty(X.shape, np.int64)
            Hs = np.empty(X.shape, np.int64)
            V = np.empty(X.shape, np.int64)
            for t in range(T):
                s, v, h = lif_step(v, X[t], theta, net.leak_shift)
                S[t], Hs[t], V[t] = s, h, v
            tensors[name] = S
            if record:
                trace[name] = dict(current=np.ascontiguousarray(X), h=Hs, v=V, spikes=S)
        elif kind == "head":
            s = tensors[op["src"]]
            w = p[op["weight"]]
            _exact_bound(w, s.shape[2] * s.shape[3], name)
            counts = s.sum(axis=(2, 3))                         # (T, B, C) spikes per channel
            step = _to_int(_f64(counts) @ _f64(w).T) + p[op["bias"]]
            step = check_range(step, bits["acc"], policy, name, "step", events)
            run_sum = np.empty_like(step)
            total = np.zeros(step.shape[1:], np.int64)
            for t in range(T):        # L[t] = L[t-1] + step[t], each result range-checked
                total = check_range((total + step[t])[None], bits["acc"], policy, name,
                                    "logits", events, t0=t)[0]
                run_sum[t] = total
            logits = total
            if record:
                trace[name] = dict(input=s, step=step, logits=run_sum)
        else:
            raise ValueError(f"golden run: unknown op {kind!r} ('{name}')")
    out = dict(logits=logits, pred=np.argmax(logits, axis=1), events=events)
    if record:
        out["trace"] = trace
    return out
