"""Every term kind of the golden model (npsnn.golden.terms.TERM_KINDS), one row at a time.

For each kind, on random small inputs: the GEMM form (the fast path's accumulator and its
broadcast shift / bias / sign) equals the event form (one image and one step at a time,
every event adding a weight column, every output element picking its own shift, bias and
sign) bit for bit; the kind's synaptic-op count equals the additions the event form
performs; its ANN MAC count equals the additions of an all-ones input where no padding is
involved. A kind without a case here fails ``test_every_kind_has_cases``.
"""
import numpy as np
import pytest

from npsnn.golden.counts import ann_macs
from npsnn.golden.intops import rshift
from npsnn.golden.network import IntegerNetwork
from npsnn.golden.run import synaptic_sum, term_value
from npsnn.golden.terms import TERM_KINDS, term_kind

T, B, H, W, C, O = 2, 2, 4, 4, 3, 5
N = H * W


def _conv(kernel, stride, padding):
    kh, kw = kernel
    Ho = (H + 2 * padding[0] - kh) // stride[0] + 1
    Wo = (W + 2 * padding[1] - kw) // stride[1] + 1
    return dict(stride=list(stride), padding=list(padding), out_shape=[Ho, Wo, O],
                weight=(O, C, kh, kw), shift=(O,), bias=(O,))


# kind -> {case id: op attributes, out_shape and parameter shapes}
CASES = {
    "conv": {"k3-s2-p1": _conv((3, 3), (2, 2), (1, 1)),
             "k2-s12-p0": _conv((2, 2), (1, 2), (0, 0))},
    "conv_bitplane": {"k2-s2-p0": _conv((2, 2), (2, 2), (0, 0)),
                      "k3-s1-p1": _conv((3, 3), (1, 1), (1, 1))},
    "axis": {ax: dict(axis=ax, out_shape=[H, W, C], weight=(H, H), shift=(H,), bias=(H,))
             for ax in ("H", "W")},
    "dense": {"": dict(out_shape=[H, W, O], weight=(O, C), shift=(O,), bias=(O,))},
    "dense_signed_token": {"": dict(out_shape=[H, W, O], weight=(O, C), shift=(O,),
                                    bias=(N, O), sign=(N,))},
    "dense_token": {"": dict(out_shape=[H, W, O], weight=(N, O, C), shift=(N, O),
                             bias=(N, O))},
    "dense_shift_token": {"": dict(out_shape=[H, W, O], weight=(O, C), shift=(N, O),
                                   bias=(N, O), sign=(N,))},
}
PARAMS = ("weight", "shift", "bias", "sign")


def _build(kind: str, case: str, seed: int = 0):
    """-> (IntegerNetwork holding the one term op, op, input x (T', B, H, W, C) int64)."""
    rng = np.random.default_rng(seed)
    spec = CASES[kind][case]
    name = f"t.{kind}"
    op = dict(op="term", name=name, kind=kind, src=["input" if kind == "conv_bitplane" else "s"],
              **{k: v for k, v in spec.items() if k not in PARAMS})
    params = {}
    for field in PARAMS:
        if field in spec:
            lo, hi = dict(weight=(-127, 128), shift=(-3, 7), bias=(-999, 1000),
                          sign=(-1, 2))[field]
            arr = rng.integers(lo, hi, spec[field]).astype(np.int64)
            if field in ("shift", "sign"):    # right, no and left shifts; signs -1, 0, +1
                arr.reshape(-1)[:3] = (-2, 0, 3) if field == "shift" else (-1, 0, 1)
            params[f"{name}.{field}"] = arr
            op[field] = f"{name}.{field}"
    net = IntegerNetwork(ops=[op], params=params, bits=dict(weight=8, bias=24, acc=24, mem=24),
                         leak_shift=1, input_shape=(H, W, C), num_classes=0)
    if TERM_KINDS[kind].max_input == 255:          # pixels, time-invariant
        x = rng.integers(0, 256, (1, B, H, W, C)).astype(np.int64)
    else:
        x = (rng.random((T, B, H, W, C)) < 0.4).astype(np.int64)
    return net, op, x


ALL = [(kind, case) for kind in CASES for case in CASES[kind]]
IDS = [f"{kind}-{case}" if case else kind for kind, case in ALL]


def test_every_kind_has_cases():
    assert set(CASES) == set(TERM_KINDS)


@pytest.mark.parametrize("kind,case", ALL, ids=IDS)
def test_gemm_form_equals_event_form(kind, case):
    net, op, x = _build(kind, case)
    row = term_kind(op)
    acc = synaptic_sum(net, op, x)                            # GEMM form, all (t, b) at once
    assert acc.dtype.kind == "f"
    value = term_value(net, op, acc)
    adds = np.zeros(x.shape[0], np.int64)
    for t in range(x.shape[0]):
        for b in range(B):
            acc_e, n = row.events(op, net.params[op["weight"]], x[t, b])     # event form
            adds[t] += n
            assert acc_e.dtype == np.int64 and acc_e.shape == tuple(op["out_shape"])
            assert np.array_equal(acc[t, b], acc_e), f"acc differs at t={t}, b={b}"
            assert np.abs(acc_e).max() > 0
            for h, w, o in np.ndindex(acc_e.shape):               # one neuron at a time
                e, bias, sign = row.element(op, net.params, h, w, o)
                v = sign * int(rshift(np.int64(acc_e[h, w, o]), np.int64(e))) + bias
                assert value[t, b, h, w, o] == v, (t, b, h, w, o)
    # op counts: the additions the events performed, per step, summed over the images
    assert np.array_equal(row.synaptic_ops(op, net.params[op["weight"]], x), adds)
    assert adds.min() > 0


UNPADDED = [(k, c) for k, c in ALL if not any(CASES[k][c].get("padding", [0]))]


@pytest.mark.parametrize("kind,case", UNPADDED, ids=[IDS[ALL.index(kc)] for kc in UNPADDED])
def test_ann_macs_are_the_additions_of_an_all_ones_input(kind, case):
    """Without padding, every weight of every output window meets one input event."""
    net, op, _ = _build(kind, case)
    _, adds = term_kind(op).events(op, net.params[op["weight"]], np.ones((H, W, C), np.int64))
    assert ann_macs(op, net.params) == adds > 0


def test_unknown_kind_is_one_clear_error():
    op = dict(op="term", name="b0.fc9", kind="dense_magic", src=["x"], out_shape=[1, 1, 1],
              weight="w", shift="e", bias="b")
    with pytest.raises(ValueError, match=r"'b0\.fc9' has unknown kind 'dense_magic'; the "
                                         r"known kinds are conv, conv_bitplane, axis, dense"):
        term_kind(op)
    with pytest.raises(ValueError, match="dense_magic"):
        IntegerNetwork(ops=[op], params={}, bits=dict(weight=8, bias=24, acc=24, mem=24),
                       leak_shift=1, input_shape=(1, 1, 1), num_classes=1)
    with pytest.raises(ValueError, match=r"dense_signed_token term 'b0.fc1' lacks its "
                                         r"parameter\(s\) sign"):
        IntegerNetwork(ops=[dict(op, name="b0.fc1", kind="dense_signed_token")],
                       params=dict(w=np.zeros((1, 1)), e=np.zeros(1), b=np.zeros((1, 1))),
                       bits=dict(weight=8, bias=24, acc=24, mem=24), leak_shift=1,
                       input_shape=(1, 1, 1), num_classes=1)
