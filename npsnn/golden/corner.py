"""Corner-case test vectors: a small integer network built to exercise every rule.

The default exports of a trained network (8-bit weights, 24-bit membranes) never reach
the rules where RTL and software usually disagree: all their shifts are left shifts,
their token signs are +1, nothing overflows. This suite is a hand-built
:class:`~npsnn.golden.network.IntegerNetwork` (every op and term kind of the golden
model, widths that are not multiples of 4, non-square maps, strided and padded convs)
whose integer parameters are chosen so that, on a few chosen images, every rule of
docs/golden-model.md happens: rounded right shifts with positive and negative ties,
left shifts and shifts by 0, token signs +1, -1 and 0, membranes exactly at the
threshold and one below it, spikes above it (hard reset differs from a soft one), the
floor of the leak on a negative odd difference, empty and full spike steps, and
overflows of every checked field under the saturate and the wrap policy.

The suite is one directory with one golden export per policy::

    DIR/suite.json        format "npsnn-golden-corner", members, coverage table
    DIR/saturate/         narrow widths (weight 6, bias 10, acc 11, mem 10 bits): every
                          checked field saturates somewhere
    DIR/wrap/             the same network and images: every checked field wraps
    DIR/error/            the same network with the narrowest acc and mem widths that
                          hold every value (the error policy must stay silent; many
                          values sit in the top half of their range)

Every member's manifest carries its own counts (``meta.corner``). :func:`export_corner`
refuses to write a suite when any rule was never exercised.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .export import export
from .intops import int_range
from .network import IntegerNetwork
from .run import run
from .terms import term_kind

SUITE_FORMAT = "npsnn-golden-corner"
INPUT_SHAPE = (4, 6, 3)                  # H, W, C: non-square on purpose
NARROW = dict(weight=6, bias=10, acc=11, mem=10)
POLICY_MEMBERS = ("saturate", "wrap", "error")
CHECKED = (("term", "acc"), ("term", "value"), ("lif", "current"), ("add", "value"),
           ("head", "step"), ("head", "logits"))

#: rule -> what it means (the rows of the coverage table)
RULES = {
    "shift_right": "rshift with e > 0 (rounded right shift)",
    "shift_right_tie_positive": "rshift tie (acc mod 2^e = 2^(e-1)) with acc > 0: rounds up",
    "shift_right_tie_negative": "rshift tie with acc < 0: rounds up, towards zero",
    "shift_right_negative": "rshift with e > 0 of a negative acc (arithmetic shift)",
    "shift_left": "rshift with e < 0 of a nonzero acc (left shift)",
    "shift_zero": "rshift with e = 0",
    "sign_plus": "token sign +1 on a nonzero value",
    "sign_minus": "token sign -1 on a nonzero value",
    "sign_zero": "token sign 0 on a nonzero value (the term is dropped)",
    "threshold_equal": "membrane H exactly at the threshold: fires (>=)",
    "threshold_below": "membrane H one below the threshold: silent",
    "spike_above_threshold": "spike with H > threshold (hard reset to 0 differs from soft)",
    "leak_floor_negative": "leak (X - V) >> k of a negative X - V that is not a multiple of "
                           "2^k (floor, not truncation)",
    "empty_step": "a term or head input with no spike at all in a time step",
    "full_step": "a term or head input with every spike set in a time step",
    **{f"{pol}_{kind}_{field}": f"{pol} of an out-of-range {kind} {field}"
       for pol in ("saturate", "wrap") for kind, field in CHECKED},
    "error_upper_half": "error policy, tight widths: a checked value v with abs(v) >= "
                        "2^(bits-2) that must not be flagged",
}


def corner_images() -> np.ndarray:
    """The suite's images, uint8 (5, 3, 4, 6): black, white, dark noise, full-range noise
    and a checkerboard of 0 and 255 (bit planes all clear / all set / mixed)."""
    H, W, C = INPUT_SHAPE
    rng = np.random.default_rng(11)
    yy, xx = np.mgrid[:H, :W]
    checker = np.where((yy + xx) % 2 == 0, 255, 0).astype(np.uint8)
    return np.stack([np.zeros((C, H, W), np.uint8), np.full((C, H, W), 255, np.uint8),
                     rng.integers(0, 32, (C, H, W), dtype=np.uint8),
                     rng.integers(0, 256, (C, H, W), dtype=np.uint8),
                     np.broadcast_to(checker, (C, H, W)).copy()])


def corner_network(policy: str = "saturate", bits: dict | None = None) -> IntegerNetwork:
    """The suite's network (same parameters for every policy; ``bits`` overrides widths).

    Layout (H x W x C): input 4x6x3 -> bit-plane conv 2x2/2 -> 2x3x6; a token-mixer
    block (axis H and W, dense fuse of three spike maps, add), a channel-mixer block
    (dense_signed_token with signs +1/-1/0, per-token thresholds, dense_token and
    dense_shift_token summed by a three-way add); a PatchCell-like stage (3x3 convs,
    stride 2 and 1, padding 1 -> 1x2x4, adds, a concat); a 3-class head."""
    rng = np.random.default_rng(2023)
    ops, params = [], {}

    def w(shape, lo=-32, hi=31):
        return rng.integers(lo, hi + 1, shape).astype(np.int64)

    def term(name, kind, src, out_shape, weight, shift, bias, stage, **extra):
        params[f"{name}.weight"] = np.asarray(weight, np.int64)
        params[f"{name}.shift"] = np.asarray(shift, np.int64)
        params[f"{name}.bias"] = np.asarray(bias, np.int64)
        op = dict(op="term", name=name, kind=kind, src=list(src), out_shape=list(out_shape),
                  stage=stage, weight=f"{name}.weight", shift=f"{name}.shift",
                  bias=f"{name}.bias")
        if "sign" in extra:
            params[f"{name}.sign"] = np.asarray(extra.pop("sign"), np.int64)
            op["sign"] = f"{name}.sign"
        op.update(extra)
        ops.append(op)

    def lif(name, src, out_shape, theta, stage):
        params[f"{name}.threshold"] = np.asarray(theta, np.int64).reshape(
            (1, 1, 1) if np.size(theta) == 1 else (out_shape[0], out_shape[1], 1))
        ops.append(dict(op="lif", name=name, src=src, out_shape=list(out_shape), stage=stage,
                        threshold=f"{name}.threshold"))

    def add(name, src, out_shape, stage):
        ops.append(dict(op="add", name=name, src=list(src), out_shape=list(out_shape),
                        stage=stage))

    # stage 0: bit-plane conv of the pixels (static), shifts right (ties), 0 and left.
    # On the black image every value is its bias b in [27, 39], so s0.lif (threshold 20)
    # gets H = b >> 1 < 20 at t = 0 (an empty map) and (b >> 1) + b >> 1 >= 20 at t = 1
    # (a full map), and so on: its consumers see empty and full spike steps.
    term("s0.embed", "conv_bitplane", ["input"], (2, 3, 6), w((6, 3, 2, 2), -8, 7),
         [3, 1, 0, -1, 2, 4], [28, 30, 33, 35, 37, 39], 0, stride=[2, 2],
         padding=[0, 0], static=True)
    lif("s0.lif", "s0.embed", (2, 3, 6), 20, 0)
    # token mixer: axis H (S = 2) and axis W (S = 3), then a dense fuse of three maps
    term("b0.ph", "axis", ["s0.lif"], (2, 3, 6), w((2, 2)), [1, -1], [5, -9], 0, axis="H")
    lif("b0.lif_h", "b0.ph", (2, 3, 6), 6, 0)
    term("b0.pw", "axis", ["s0.lif"], (2, 3, 6), w((3, 3)), [0, 2, 1], [3, -4, 8], 0,
         axis="W")
    lif("b0.lif_w", "b0.pw", (2, 3, 6), 5, 0)
    term("b0.fuse", "dense", ["s0.lif", "b0.lif_h", "b0.lif_w"], (2, 3, 6), w((6, 18)),
         [1, 2, 0, -1, 3, 1], [-20, 15, 30, -6, 11, 0], 0)
    add("b0.u", ["s0.embed", "b0.fuse"], (2, 3, 6), 0)
    lif("b0.lif_t", "b0.u", (2, 3, 6), 24, 0)
    # channel mixer: per-token signs +1, -1, 0; per-token thresholds; the two token kinds
    term("b0.fc1", "dense_signed_token", ["b0.lif_t"], (2, 3, 8), w((8, 6)),
         [1, 0, 2, -1, 1, 3, 0, 1], rng.integers(-30, 31, (6, 8)), 0,
         sign=[1, -1, 0, 1, -1, 1])
    lif("b0.lif_hid", "b0.fc1", (2, 3, 8), [4, 9, 3, 12, 7, 5], 0)
    term("b0.fc2", "dense_token", ["b0.lif_hid"], (2, 3, 6), w((6, 6, 8)),
         rng.integers(-1, 3, (6, 6)), rng.integers(-40, 41, (6, 6)), 0)
    term("b0.fc3", "dense_shift_token", ["b0.lif_hid"], (2, 3, 6), w((6, 8)),
         rng.integers(-2, 3, (6, 6)), rng.integers(-40, 41, (6, 6)), 0,
         sign=[-1, 1, 1, 0, -1, 1])
    add("b0.v", ["b0.u", "b0.fc2", "b0.fc3"], (2, 3, 6), 0)
    lif("b0.lif_c", "b0.v", (2, 3, 6), 30, 0)
    # stage 1: strided and padded 3x3 convs, adds and a concat of two adds
    term("s1.a1", "conv", ["b0.lif_c"], (1, 2, 6), w((6, 6, 3, 3)), [2, 0, -1, 1, 0, 1],
         [10, -10, 25, -3, 40, 20], 1, stride=[2, 2], padding=[1, 1])
    term("s1.a2", "conv", ["b0.lif_c"], (1, 2, 6), w((6, 6, 3, 3)), [1, 1, 0, -2, 1, 0],
         [-5, 30, 0, 12, 35, 18], 1, stride=[2, 2], padding=[1, 1])
    lif("s1.lif0", "s1.a1", (1, 2, 6), 8, 1)
    term("s1.b2", "conv", ["s1.lif0"], (1, 2, 6), w((6, 6, 3, 3)), [0, 1, -1, 2, 0, 1],
         [4, -8, 16, -2, 30, 25], 1, stride=[1, 1], padding=[1, 1])
    add("s1.n2", ["s1.a2", "s1.b2"], (1, 2, 6), 1)
    lif("s1.lif1", "s1.n2", (1, 2, 6), 10, 1)
    term("s1.b3", "conv", ["s1.lif1"], (1, 2, 6), w((6, 6, 3, 3)), [1, -1, 0, 2, 1, 0],
         [80, 90, 70, 60, 28, 33], 1, stride=[1, 1], padding=[1, 1])
    add("s1.n3", ["s1.a1", "s1.b3"], (1, 2, 6), 1)
    ops.append(dict(op="concat", name="s1.h", src=["s1.n2", "s1.n3"],
                    out_shape=[1, 2, 12], stage=1))
    lif("s1.lif", "s1.h", (1, 2, 12), 1, 1)
    # head: extreme weights and biases for classes 0 and 1, so that with 17 or more of
    # the 24 input spikes a step leaves the 11-bit acc range, and running logits do
    params["head.weight"] = np.stack([np.full(12, 31), np.full(12, -32), w(12)])
    params["head.bias"] = np.array([511, -512, 60], np.int64)
    ops.append(dict(op="head", name="head", src="s1.lif", weight="head.weight",
                    bias="head.bias", scale=1.0))
    widths = dict(NARROW if bits is None else bits)
    return IntegerNetwork(ops=ops, params=params, bits=widths, leak_shift=1,
                          input_shape=INPUT_SHAPE, num_classes=3,
                          meta=dict(corner=dict(note="hand-built corner-case network")),
                          policy=policy)


def coverage(net: IntegerNetwork, res: dict, T: int) -> dict:
    """{rule: count} for one run (``res`` from ``run(..., record=True)``), see RULES."""
    tr, counts = res["trace"], dict.fromkeys(RULES, 0)
    k = net.leak_shift
    for op in net.ops:
        name, kind = op["name"], op["op"]
        if kind in ("term", "head") and op["src"] != ["input"]:
            x = tr[name]["input"]                       # (T, B, H, W, C) spikes
            per_step = x.reshape(x.shape[0], x.shape[1], -1)
            counts["empty_step"] += int((per_step.sum(axis=2) == 0).sum())
            counts["full_step"] += int((per_step.min(axis=2) == 1).sum())
        if kind == "term":
            acc = tr[name]["acc"]
            e, _, sign = term_kind(op).post(op, net.params)   # views onto (..., H, W, O)
            e = np.broadcast_to(e, acc.shape)
            right = e > 0
            half = np.where(right, np.left_shift(1, np.maximum(e - 1, 0)), 0)
            tie = right & (np.mod(acc, np.left_shift(1, np.maximum(e, 0))) == half)
            counts["shift_right"] += int(right.sum())
            counts["shift_right_tie_positive"] += int((tie & (acc > 0)).sum())
            counts["shift_right_tie_negative"] += int((tie & (acc < 0)).sum())
            counts["shift_right_negative"] += int((right & (acc < 0)).sum())
            counts["shift_left"] += int(((e < 0) & (acc != 0)).sum())
            counts["shift_zero"] += int((e == 0).sum())
            if sign is not None:
                s = np.broadcast_to(sign, acc.shape)
                nz = acc != 0
                counts["sign_plus"] += int(((s == 1) & nz).sum())
                counts["sign_minus"] += int(((s == -1) & nz).sum())
                counts["sign_zero"] += int(((s == 0) & nz).sum())
        elif kind == "lif":
            X, Hm, V, S = (tr[name][f] for f in ("current", "h", "v", "spikes"))
            theta = net.params[op["threshold"]]
            v_prev = np.concatenate([np.zeros_like(V[:1]), V[:-1]])
            d = X - v_prev
            counts["threshold_equal"] += int((Hm == theta).sum())
            counts["threshold_below"] += int((Hm == theta - 1).sum())
            counts["spike_above_threshold"] += int(((S == 1) & (Hm > theta)).sum())
            counts["leak_floor_negative"] += int(((d < 0) & (np.mod(d, 1 << k) != 0)).sum())
    kinds = {op["name"]: op["op"] for op in net.ops}
    if net.policy in ("saturate", "wrap"):
        for ev in res["events"]:
            key = f"{net.policy}_{kinds[ev['layer']]}_{ev['field']}"
            counts[key] += ev["count"]
    elif net.policy == "error":
        for op in net.ops:
            for field, values in tr[op["name"]].items():
                width = _checked_width(net, op, field)
                if width:
                    counts["error_upper_half"] += int((np.abs(values) >= 1 << (width - 2)).sum())
    return counts


def _checked_width(net: IntegerNetwork, op: dict, field: str) -> int | None:
    """Declared width of a range-checked field (None for unchecked fields)."""
    if (op["op"], field) not in CHECKED:
        return None
    return net.bits["mem"] if (op["op"], field) in (("lif", "current"), ("add", "value")) \
        else net.bits["acc"]


def tight_bits(net: IntegerNetwork, images: np.ndarray, T: int) -> dict:
    """The narrowest acc and mem widths that hold every value of ``images`` (error policy):
    run with 40-bit registers and size each class to its largest magnitude."""
    wide = IntegerNetwork(ops=net.ops, params=net.params,
                          bits=dict(net.bits, acc=40, mem=40), leak_shift=net.leak_shift,
                          input_shape=net.input_shape, num_classes=net.num_classes,
                          policy="error")
    tr = run(wide, images, T, record=True)["trace"]
    acc_max = mem_max = 0
    for op in net.ops:
        for field, values in tr[op["name"]].items():
            m = int(np.abs(values).max(initial=0))
            if op["op"] == "lif" or (op["op"], field) in (("add", "value"),) or \
                    op["op"] == "concat":
                mem_max = max(mem_max, m)
            elif field != "input":
                acc_max = max(acc_max, m)
    for name, arr in net.params.items():
        if name.endswith(".threshold"):
            mem_max = max(mem_max, int(np.abs(arr).max()))
    return dict(net.bits, acc=acc_max.bit_length() + 1, mem=mem_max.bit_length() + 1)


def build_suite(T: int = 4) -> dict:
    """{policy: (network, images, run result, coverage)} of the three members."""
    images = corner_images()
    members = {}
    for policy in POLICY_MEMBERS:
        net = corner_network(policy)
        if policy == "error":
            net = corner_network(policy, bits=tight_bits(net, images, T))
        res = run(net, images, T, record=True)
        members[policy] = (net, images, res, coverage(net, res, T))
    return members


def export_corner(out, T: int = 4, hex_files: bool = True) -> dict:
    """Write the corner-case suite to ``out`` (see the module docstring).

    Raises ValueError, writing nothing, if any rule of the coverage table has count 0.
    -> the suite description (also ``out/suite.json``)."""
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 2:
        raise ValueError(f"golden corner expected T >= 2 (time dynamics are part of the "
                         f"suite), got {T!r}")
    members = build_suite(T)
    table = {rule: {pol: members[pol][3][rule] for pol in POLICY_MEMBERS} for rule in RULES}
    zero = [rule for rule, per in table.items() if sum(per.values()) == 0]
    if zero:
        raise ValueError(f"not a corner suite: these rules are never exercised: "
                         f"{', '.join(zero)}")
    out = Path(out)
    summary = dict(format=SUITE_FORMAT, version=1, T=int(T), rules=RULES,
                   members={pol: dict(dir=pol, bits=members[pol][0].bits, policy=pol,
                                      values=0) for pol in POLICY_MEMBERS},
                   coverage=table,
                   totals={rule: sum(per.values()) for rule, per in table.items()})
    for pol, (net, images, res, cov) in members.items():
        lo, hi = int_range(net.bits["acc"])
        s = export(net, images, T, out / pol, ids=list(range(len(images))),
                   hex_files=hex_files,
                   extra_meta=dict(corner=dict(suite=SUITE_FORMAT, policy=pol, coverage=cov,
                                               rules=RULES, acc_range=[lo, hi])))
        summary["members"][pol]["values"] = s["values"]
    from ..io import atomic_write
    with atomic_write(out / "suite.json", "w") as f:     # last: marks a complete suite
        f.write(json.dumps(summary, indent=1))
    return summary


def format_coverage(summary: dict) -> str:
    """The coverage table as text: one row per rule, one column per member."""
    cols = list(summary["members"])
    width = max(len(r) for r in summary["coverage"])
    lines = [f"{'rule':<{width}}" + "".join(f"{c:>10}" for c in cols) + f"{'total':>10}"]
    for rule, per in summary["coverage"].items():
        lines.append(f"{rule:<{width}}" + "".join(f"{per[c]:>10}" for c in cols) +
                     f"{sum(per.values()):>10}")
    return "\n".join(lines)
