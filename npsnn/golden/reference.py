"""Event-driven reference path: for every spike, add its weight column. Slow; tiny inputs.

It follows the documented semantics literally, one image and one time step at a time:
each nonzero input (a spike, or a set bit of a pixel's bit plane) is an event, and the
event adds the weights it reaches (a column of the weight matrix, or for a conv the
weights of every output position whose window covers it) into integer accumulators.
Nothing is multiplied. Tested bit-identical to the fast path :func:`npsnn.golden.run`;
it also counts the additions it performs (``synaptic_adds``), which the analytic
operation counts of :mod:`npsnn.golden.counts` must reproduce.
"""
from __future__ import annotations

import numpy as np

from .intops import check_range, rshift
from .network import IntegerNetwork, check_images
from .terms import term_kind

MAX_NEURONS = 200_000     # per image; beyond that the Python loops take minutes


def _accumulate(net: IntegerNetwork, op: dict, x: np.ndarray):
    """One image, one time step: x (H, W, C_in) -> (acc (H', W', C_out), additions), by the
    event form of the op's kind (:mod:`npsnn.golden.terms`)."""
    return term_kind(op).events(op, net.params[op["weight"]], x)


def _finish(net: IntegerNetwork, op: dict, acc: np.ndarray) -> np.ndarray:
    """value = sign * rshift(acc, e) + bias, neuron by neuron with Python integers, each
    output element picking its own shift, bias and sign (sign = 1 for unsigned kinds)."""
    kind = term_kind(op)
    out = np.empty(tuple(op["out_shape"]), np.int64)
    for h, w, c in np.ndindex(out.shape):
        e, b, s = kind.element(op, net.params, h, w, c)
        out[h, w, c] = s * int(rshift(np.int64(acc[h, w, c]), np.int64(e))) + b
    return out


def run_reference(net: IntegerNetwork, images: np.ndarray, T: int, *,
                  policy: str | None = None) -> dict:
    """Event-driven integer inference; same outputs and trace layout as ``run(...,
    record=True)``, plus ``synaptic_adds`` {op name: (T,) additions summed over images}."""
    check_images("golden run_reference", images, net.input_shape)
    policy = policy or net.policy
    bits, p = net.bits, net.params
    neurons = sum(int(np.prod(op["out_shape"])) for op in net.ops if "out_shape" in op)
    if neurons > MAX_NEURONS:
        raise ValueError(f"golden run_reference is the slow event-driven path for tiny inputs; "
                         f"this network has {neurons} neurons per image (limit {MAX_NEURONS}). "
                         f"Use npsnn.golden.run (bit-identical) instead")
    B = len(images)
    events: list = []
    adds = {op["name"]: np.zeros(T, np.int64) for op in net.ops if op["op"] in ("term", "head")}
    per_image = []
    for b in range(B):
        pixels = images[b].transpose(1, 2, 0).astype(np.int64)
        state = {op["name"]: np.zeros(op["out_shape"], np.int64)
                 for op in net.ops if op["op"] == "lif"}
        static: dict = {}
        steps = []
        logit_sum = np.zeros(net.num_classes, np.int64)
        for t in range(T):
            ten = {"input": pixels}
            rec: dict = {}
            for op in net.ops:
                name, kind = op["name"], op["op"]
                if kind == "term":
                    if op.get("static") and name in static:
                        ten[name], rec[name] = static[name]
                        continue
                    x = np.concatenate([ten[s] for s in op["src"]], axis=-1)
                    acc, n = _accumulate(net, op, x)
                    adds[name][t] += n
                    acc = check_range(acc[None, None], bits["acc"], policy, name, "acc", events,
                                      t0=t)[0, 0]
                    val = check_range(_finish(net, op, acc)[None, None], bits["acc"], policy,
                                      name, "value", events, t0=t)[0, 0]
                    ten[name], rec[name] = val, dict(input=x, acc=acc, value=val)
                    if op.get("static"):
                        static[name] = (val, rec[name])
                elif kind == "add":
                    val = sum(ten[s] for s in op["src"])
                    val = check_range(val[None, None], bits["mem"], policy, name, "value", events,
                                      t0=t)[0, 0]
                    ten[name], rec[name] = val, dict(value=val)
                elif kind == "concat":
                    ten[name] = np.concatenate([ten[s] for s in op["src"]], axis=-1)
                    rec[name] = dict(value=ten[name])
                elif kind == "lif":
                    X = check_range(ten[op["src"]][None, None], bits["mem"], policy, name,
                                    "current", events, t0=t)[0, 0]
                    theta = np.broadcast_to(p[op["threshold"]], X.shape)
                    V = state[name]
                    Hm = np.empty_like(X)
                    S = np.zeros_like(X)
                    for idx in np.ndindex(X.shape):          # one neuron at a time
                        v, xv = int(V[idx]), int(X[idx])
                        hv = v + ((xv - v) >> net.leak_shift)  # Python >> floors, as hardware
                        Hm[idx] = hv
                        if hv >= int(theta[idx]):
                            S[idx], V[idx] = 1, 0
                        else:
                            V[idx] = hv
                    ten[name] = S
                    rec[name] = dict(current=X, h=Hm, v=V.copy(), spikes=S)
                elif kind == "head":
                    s = ten[op["src"]]
                    w = p[op["weight"]]
                    step = p[op["bias"]].copy()
                    for h, ww, c in zip(*np.nonzero(s)):
                        step += w[:, c]
                        adds[name][t] += w.shape[0]
                    step = check_range(step[None, None], bits["acc"], policy, name, "step",
                                       events, t0=t)[0, 0]
                    logit_sum = check_range((logit_sum + step)[None, None], bits["acc"], policy,
                                            name, "logits", events, t0=t)[0, 0]
                    rec[name] = dict(input=s, step=step, logits=logit_sum.copy())
            steps.append(rec)
        per_image.append(steps)
    # stack into the fast path's layout: (T, B, ...) ((1, B, ...) for static terms)
    trace = {}
    for op in net.ops:
        name = op["name"]
        fields = per_image[0][0][name].keys()
        trace[name] = {}
        for f in fields:
            steps = range(1) if op.get("static") or (op["op"] == "term" and f == "input"
                                                      and op["src"] == ["input"]) else range(T)
            trace[name][f] = np.stack([np.stack([per_image[b][t][name][f] for b in range(B)])
                                       for t in steps])
    logits = trace["head"]["logits"][-1]
    return dict(logits=logits, pred=np.argmax(logits, axis=1), events=events, trace=trace,
                synaptic_adds=adds)
