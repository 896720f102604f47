"""Fast path: run an :class:`IntegerNetwork` on a batch, all time steps of a layer at once.

Every value is an exact integer, carried in a float array so that the synaptic sums are
BLAS GEMMs and the per-element steps need no int64 <-> float conversions. Exactness:

* a float type with a p-bit significand (float32: p = 24, float64: p = 53) holds every
  integer of magnitude <= 2^p, and +, -, *2^k and floor of such integers are exact when
  the result is again <= 2^p in magnitude;
* GEMM: inputs are spikes (0/1) or pixels (0..255) and weights are integers, so every
  partial sum, in any order, is bounded by ``max_input * max_row sum_j |w[row, j]|``.
  The bound is computed per op; below 2^24 the GEMM runs in float32, below 2^53 in
  float64, otherwise :class:`OverflowError`;
* after the range checks every value fits its declared width (acc, mem, bias <= 24 bits
  selects the float32 work type, else float64 up to 48 bits), so a two-term ``add`` and
  the LIF update ``H = V + floor((X - V) * 2^-k)`` stay below 2^p. ``rshift(a, e)`` is
  ``floor((a + half) * 2^-e)`` (half = 2^(e-1) for e > 0, else 0; e < 0 is the left shift
  a * 2^-e); it is used per op only when |a| <= min(GEMM bound, 2^(acc-1)) proves every
  intermediate and the value (+ bias) <= 2^p, else float64, else the int64
  :func:`term_value`. Adds of more than two terms are summed in float64.

So the result equals the event-driven reference (:mod:`npsnn.golden.reference`) bit for
bit. Layouts: per image channels-last (H, W, C); arrays carry (T, B) in front ((1, B) for
the time-invariant first layer).
"""
from __future__ import annotations

import numpy as np

from ..workers import CHUNK_BYTES, for_each_chunk   # membrane bytes per group of images
from .intops import check_range, int_range, rshift
from .network import IntegerNetwork, check_images
from .terms import term_kind
EXACT64 = 2.0 ** 53        # float64 holds every integer of magnitude <= 2^53
EXACT32 = 2.0 ** 24        # float32: <= 2^24
MAX_WIDTH = 48             # widest declared register the float64 work type supports


def gemm_bound(weight: np.ndarray, max_input: int, fan_in: int) -> float:
    """Bound on |every partial sum| of a GEMM of integer ``weight`` with inputs in
    [0, max_input], in any accumulation order: ``max_input * max_row sum_j |w[row, j]|``,
    a row being the ``fan_in`` weights summed into one output element. Computed a few
    million weights at a time (a per-token table is 57 million)."""
    rows = weight.reshape(-1, fan_in)
    step = max(1, (1 << 22) // max(fan_in, 1))
    peak = 0.0
    for a in range(0, len(rows), step):
        chunk = np.abs(rows[a:a + step].astype(np.float64))
        peak = max(peak, float(chunk.sum(axis=1).max(initial=0)))
    return peak * max_input


def op_gemm_bound(net: IntegerNetwork, op: dict) -> float:
    """:func:`gemm_bound` of a term op's weight, remembered by the network (its weights do
    not change, and the bound is asked for at every run)."""
    bounds = net.gemm_bounds
    if op["name"] not in bounds:
        w, row = net.params[op["weight"]], term_kind(op)
        bounds[op["name"]] = gemm_bound(w, row.max_input, row.fan_in(w))
    return bounds[op["name"]]


def gemm_dtype(weight: np.ndarray, max_input: int, fan_in: int, name: str) -> type:
    """The float type in which the GEMM of ``weight`` with inputs in [0, max_input] is exact:
    float32 if :func:`gemm_bound` < 2^24, float64 if < 2^53, else OverflowError (raised,
    not asserted: -O safe)."""
    return _exact_dtype(gemm_bound(weight, max_input, fan_in), name)


def _exact_dtype(bound: float, name: str) -> type:
    if bound < EXACT32:
        return np.float32
    if bound < EXACT64:
        return np.float64
    raise OverflowError(f"golden fast path: op '{name}' could reach {bound:.3g} >= 2^53, "
                        f"where float64 sums stop being exact")


def _to_int(y: np.ndarray) -> np.ndarray:
    return np.rint(y).astype(np.int64)


def _int64(a: np.ndarray) -> np.ndarray:
    """Exact integer-valued float (or bool/int) array -> int64 (for traces and detours)."""
    return _to_int(a) if a.dtype.kind == "f" else a.astype(np.int64)


def synaptic_sum(net: IntegerNetwork, op: dict, x: np.ndarray) -> np.ndarray:
    """acc = the integer weighted sum of ``x`` (T, B, H, W, C_in) for term ``op``: the GEMM
    form of its kind (:mod:`npsnn.golden.terms`).

    ``x`` holds exact integers (spikes 0/1; uint8 pixels for ``conv_bitplane``) in any
    dtype. -> acc as exact integers in float32 or float64 (see :func:`gemm_dtype`)."""
    kind = term_kind(op)
    dt = _exact_dtype(op_gemm_bound(net, op), op["name"])
    return kind.gemm(op, net.params[op["weight"]].astype(dt), x.astype(dt, copy=False))


def term_value(net: IntegerNetwork, op: dict, acc: np.ndarray) -> np.ndarray:
    """value = (sign *) rshift(acc, e) + bias (int64), with the broadcasting of the op's kind."""
    e, b, sign = term_kind(op).post(op, net.params)
    r = rshift(_int64(acc), e)
    return (r if sign is None else sign * r) + b


def _term_value_float(net: IntegerNetwork, op: dict, acc: np.ndarray, wd,
                      acc_max: float) -> np.ndarray | None:
    """value = rshift(acc, e) + bias computed in the float type ``wd``, or None when that
    could be inexact (the caller then uses the int64 :func:`term_value`).

    rshift(a, e) = floor((a + half) * 2^-e) with half = 2^(e-1) for e > 0, else 0 (for
    e <= 0 this is the left shift a * 2^-e). With |a| <= acc_max every intermediate is an
    integer or an exact dyadic fraction; require all of them <= 2^p in magnitude:
    acc_max + max half and acc_max * 2^max(-e) + max |bias| (the sign is +1, -1 or 0)."""
    e, b, sign = term_kind(op).post(op, net.params)
    limit = 2.0 ** (np.finfo(wd).nmant + 1)
    ef = e.astype(np.float64)
    half = np.where(ef > 0, np.exp2(ef - 1), 0.0)
    scale = np.exp2(-ef)
    if e.size and not (half.max() <= limit and scale.max() <= limit and   # finite in wd
                       acc_max + half.max() <= limit and
                       acc_max * scale.max() + float(np.abs(b).max(initial=0)) <= limit):
        return None
    v = acc.astype(wd, copy=False) + half.astype(wd)      # new array: acc stays untouched
    v *= scale.astype(wd)
    np.floor(v, out=v)
    if sign is not None:
        v *= sign.astype(wd)
    v += b.astype(wd)
    return v


def _check(values: np.ndarray, bits: int, policy: str, where: str, field: str, events: list,
           wd=None, t0: int = 0) -> np.ndarray:
    """:func:`check_range` for exact integer-valued arrays of any dtype, with a fast exit.

    In range (the usual case): returned as is (cast to ``wd`` if given). Otherwise the
    exact int64 values go through ``check_range`` (same error / events / clamping), and
    the in-range result is cast back to ``wd`` (exact: it fits the declared width)."""
    lo, hi = int_range(bits)
    if values.size == 0 or (values.min() >= lo and values.max() <= hi):
        return values if wd is None else values.astype(wd, copy=False)
    out = check_range(_int64(values), bits, policy, where, field, events, t0=t0)
    return out.astype(wd if wd is not None else values.dtype)


def _lif(X: np.ndarray, theta: np.ndarray, k: int, T: int, record: bool):
    """Integer LIF over T steps on exact integers in float X (T|1, B, H, W, C).

    H = V + floor((X - V) * 2^-k) (= V + ((X - V) >> k)); S = H >= theta; V = 0 if S else H.
    The images are taken a few at a time (about :data:`CHUNK_BYTES` of membrane each), all
    T steps per group while its arrays are in cache, the groups shared out over the worker
    threads (:mod:`npsnn.workers`); each neuron sees the same operations either way.
    -> (spikes (T, B, ...) in X's float type, H, V traces (int64) or None)."""
    wd = X.dtype
    shape = (T,) + X.shape[1:]
    S = np.empty(shape, wd)
    Hs = np.empty(shape, np.int64) if record else None
    Vs = np.empty(shape, np.int64) if record else None
    theta = theta.astype(wd)
    scale = wd.type(2.0 ** -k)

    def images(a, b):                                   # images a..b-1, all T steps
        v = np.zeros((b - a,) + X.shape[2:], wd)
        h = np.empty_like(v)
        fire = np.empty(v.shape, bool)
        for t in range(T):
            np.subtract(X[t if X.shape[0] > 1 else 0, a:b], v, out=h)
            h *= scale
            np.floor(h, out=h)
            h += v
            np.greater_equal(h, theta, out=fire)
            S[t, a:b] = fire
            if record:
                Hs[t, a:b] = h
            np.copyto(h, 0, where=fire)
            v, h = h, v
            if record:
                Vs[t, a:b] = v

    per_image = max(1, int(np.prod(X.shape[2:])) * wd.itemsize)
    for_each_chunk(images, X.shape[1], max(1, CHUNK_BYTES // per_image), even=True)
    return S, Hs, Vs


def _last_uses(ops: list) -> list[list[str]]:
    """For each op, the tensors no later op reads (freed right after it runs)."""
    last = {}
    for i, op in enumerate(ops):
        srcs = op.get("src", [])
        for s in ([srcs] if isinstance(srcs, str) else srcs):
            last[s] = i
        last.setdefault(op["name"], i)
    freed = [[] for _ in ops]
    for name, i in last.items():
        freed[i].append(name)
    return freed


def run(net: IntegerNetwork, images: np.ndarray, T: int, *, record: bool = False,
        policy: str | None = None, on_op=None) -> dict:
    """Integer inference. images: uint8 (B, C, H, W) raw pixels; T time steps.

    -> dict(logits (B, classes) int64 (summed over T), pred (B,), events (overflows
    handled by saturate/wrap), trace {op name: {field: array (T|1, B, ...)}} if record).

    on_op: called as ``on_op(op, fields)`` with each op's fields (the arrays a trace
    holds) right after the op runs, and nothing is kept: export and the operation counts
    stream a big network's values out this way (a trace of one 224-pixel image of
    mlp-spe-t would be about 4 GB). A tensor is freed as soon as no later op reads it.
    """
    check_images("golden run", images, net.input_shape)
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"golden run expected T to be a positive integer, got {T!r}")
    policy = policy or net.policy
    bits, p = net.bits, net.params
    if max(bits["acc"], bits["mem"], bits["bias"]) > MAX_WIDTH:
        raise ValueError(f"golden run supports declared widths up to {MAX_WIDTH} bits, got "
                         f"{bits}; narrow the widths (convert(..., acc_bits=...))")
    # work type: float32 holds every checked value exactly when the widths fit 24 bits
    wd = np.float32 if max(bits["acc"], bits["mem"], bits["bias"]) <= 24 else np.float64
    events: list = []
    x_in = np.ascontiguousarray(images.transpose(0, 2, 3, 1))[None]     # (1, B, H, W, 3) uint8
    tensors = {"input": x_in}
    trace: dict = {}
    keep = record or on_op is not None
    freed = _last_uses(net.ops)

    def emit(op, fields):
        if on_op is not None:
            on_op(op, fields)
        if record:
            trace[op["name"]] = fields

    logits = None
    for i, op in enumerate(net.ops):
        name, kind = op["name"], op["op"]
        if kind == "term":
            x = np.concatenate([tensors[s] for s in op["src"]], axis=-1) \
                if len(op["src"]) > 1 else tensors[op["src"][0]]
            acc = _check(synaptic_sum(net, op, x), bits["acc"], policy, name, "acc", events)
            # |acc| <= the GEMM bound, and <= 2^(acc-1) once checked (clamped / wrapped)
            acc_max = min(op_gemm_bound(net, op), 2.0 ** (bits["acc"] - 1))
            value = _term_value_float(net, op, acc, wd, acc_max)
            if value is None and wd is np.float32:
                value = _term_value_float(net, op, acc, np.float64, acc_max)
            if value is None:                       # huge left shifts: exact int64 detour
                value = term_value(net, op, acc)
            value = _check(value, bits["acc"], policy, name, "value", events, wd)
            tensors[name] = value
            if keep:
                emit(op, dict(input=_int64(x), acc=_int64(acc), value=_int64(value)))
            del x, acc
        elif kind == "add":
            srcs = [tensors[s] for s in op["src"]]
            if len(srcs) == 2:      # |a|, |b| <= 2^(p-1) after their checks: exact in wd
                value = srcs[0] + srcs[1]
            else:                   # more terms: sum in float64 (exact below 2^53)
                value = sum(np.broadcast_arrays(*[s.astype(np.float64) for s in srcs]))
            value = _check(value, bits["mem"], policy, name, "value", events, wd)
            tensors[name] = value
            if keep:
                emit(op, dict(value=_int64(value)))
        elif kind == "concat":
            tensors[name] = np.concatenate(np.broadcast_arrays(*[tensors[s] for s in op["src"]]),
                                           axis=-1)
            if keep:
                emit(op, dict(value=_int64(tensors[name])))
        elif kind == "lif":
            X = _check(tensors[op["src"]], bits["mem"], policy, name, "current", events, wd)
            S, Hs, Vs = _lif(X, p[op["threshold"]], net.leak_shift, T, keep)
            tensors[name] = S
            if keep:
                cur = _int64(np.broadcast_to(X, (T,) + X.shape[1:]))
                emit(op, dict(current=cur, h=Hs, v=Vs, spikes=_int64(S)))
                del cur, Hs, Vs
        elif kind == "head":
            s = tensors[op["src"]]
            w = p[op["weight"]]
            dt = gemm_dtype(w, s.shape[2] * s.shape[3], w.shape[1], name)
            counts = s.sum(axis=(2, 3), dtype=dt)              # (T, B, C) spikes per channel
            step = _to_int(counts @ w.astype(dt).T) + p[op["bias"]]
            step = check_range(step, bits["acc"], policy, name, "step", events)
            run_sum = np.empty_like(step)
            total = np.zeros(step.shape[1:], np.int64)
            for t in range(T):        # L[t] = L[t-1] + step[t], each result range-checked
                total = check_range((total + step[t])[None], bits["acc"], policy, name,
                                    "logits", events, t0=t)[0]
                run_sum[t] = total
            logits = total
            if keep:
                emit(op, dict(input=_int64(s), step=step, logits=run_sum))
        else:
            raise ValueError(f"golden run: unknown op {kind!r} ('{name}')")
        for done in freed[i]:
            tensors.pop(done, None)
    out = dict(logits=logits, pred=np.argmax(logits, axis=1), events=events)
    if record:
        out["trace"] = trace
    return out
