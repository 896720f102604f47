"""Float sMLPNet -> :class:`IntegerNetwork`: calibration, units and quantisation.

:mod:`npsnn.golden.lower` folds the float model into a float64 term graph;
:mod:`npsnn.golden.grid` is the integer weight grid. This file picks the integers
(docs/golden-model.md, section 5, has the full rationale and the exact rules):

* **Units.** Stage ``i`` has one integer unit ``u_i``: the real value 1.0 is represented
  by the integer ``u_i``. Every LIF of the stage has the integer threshold
  ``theta = round(u_i * v_th)``, and every term summed into one LIF (``h + t``,
  ``h + t + ch``, PatchCell ``a3 + a1 + b3``) is produced at that unit, so sums are plain
  integer adds. Since spikes are 0/1, the next layer never sees the unit.
* **Calibration rule.** ``u_i`` = the largest power of two not above
  ``min(M / (margin * m_i), Bmax / b_i)`` where ``M = 2^(mem_bits-1) - 1``, ``m_i`` = the
  largest |LIF input current| (real units, at least v_th) seen on the calibration images
  in stage ``i`` (the channel-mixer hidden LIF in its per-token units, see below),
  ``Bmax = 2^(bias_bits-1) - 1`` and ``b_i`` the largest |folded bias| of the stage. So the
  membranes keep a ``margin`` (default 2x) of headroom and every bias fits its width.
* **Weights.** Each output row (channel) of each term gets its own power-of-two exponent
  ``e`` (:func:`~npsnn.golden.grid.quantise_rows`). The term value is
  ``rshift(sum q * spikes, e) + bias``.
* **BN1d over tokens.** Hidden LIF (single input term): per-token unit
  ``U_n = u_i / |g_n|``, sign ``sign(g_n)`` (add or subtract), per-token threshold and
  per-(token, channel) bias; the shared Linear weights stay shared. Second Linear (summed
  with ``h + t``): a per-token weight table ``(N, C, alpha C)``, or, when every ``g_n`` is a
  signed power of two (a snapped model), the shared weights with per-token shifts.
* **Head.** BN2d, mean-pool and Linear fold into one (classes, C) table at a single
  scale (argmax is scale-free); logits are summed over T.
"""
from __future__ import annotations

import math

import numpy as np

from ..datasets.transforms import CIFAR10_MEAN, CIFAR10_STD, normalize
from .grid import nearest_pow2_exponent, pow2_gains, quantise_rows, round_bias
from .intops import POLICIES, int_range
from .lower import expect_smlpnet, lower, neuron_spec
from .network import IntegerNetwork, check_images, storage_dtype

# The input normalisation the trainer uses (npsnn.datasets), folded into the first layer;
# the float model sees its inputs through the data pipeline's one normaliser, as in training.
CIFAR_MEAN, CIFAR_STD = CIFAR10_MEAN, CIFAR10_STD
normalise = normalize      # the name this module has always exported (tutorial 8 uses it)
TINY_GAIN = 1e-12       # |BN1d gain| below this counts as zero (the token is a constant)


def float_predictions(model, images: np.ndarray, T: int, mean, std,
                      batch: int = 100) -> np.ndarray:
    """The float model's classes (argmax of the T-averaged logits) for uint8 ``images``
    (B, 3, H, W), in batches. The model should be in eval mode."""
    return np.concatenate([
        model.forward_repeated(normalize(images[s:s + batch], mean, std, model.dtype), T)
        .mean(axis=0).argmax(axis=1) for s in range(0, len(images), batch)])


# -- calibration ------------------------------------------------------------------------
def calibrate(model, images: np.ndarray, T: int, mean, std, batch: int = 64, *,
              ops: list | None = None) -> dict:
    """Largest |input current| of every LIF over the calibration images (eval mode, real
    units; the hidden channel-mixer LIF in per-token units |X / g_n|). -> {op name: max}.

    ops: the model's lowered graph (:func:`npsnn.golden.lower.lower`) if already at hand.
    batch: images per forward, at most; fewer for big images (see :func:`_calibration_batch`).
    """
    ops = lower(model, mean, std) if ops is None else ops
    lifs = [op for op in ops if op["op"] == "lif"]
    maxima = {op["name"]: 0.0 for op in lifs}
    batch = _calibration_batch(ops, T, model.dtype, batch)

    def recorder(op):
        name, gain, original = op["name"], op.get("_unit_gain"), op["_lif"].forward

        def forward(x):
            a = np.abs(x.astype(np.float64))
            if gain is not None:                      # x: (T, B, N, hidden), BN gain per token
                keep = np.abs(gain) > TINY_GAIN
                a = a[:, :, keep] / np.abs(gain[keep])[:, None]
            if a.size:
                maxima[name] = max(maxima[name], float(a.max()))
            return original(x)
        return forward

    was_training = model.training
    model.eval()
    try:
        for op in lifs:
            op["_lif"].forward = recorder(op)
        for s in range(0, len(images), batch):
            model.forward_repeated(normalize(images[s:s + batch], mean, std, model.dtype), T)
    finally:
        for op in lifs:
            op["_lif"].__dict__.pop("forward", None)
        model.train(was_training)
    return maxima


#: memory the float forwards of the calibration may take at once
CALIBRATION_BYTES = 1 << 30


def _calibration_batch(ops: list, T: int, dtype, most: int) -> int:
    """Images per calibration forward: ``most``, or fewer when one image's activations are
    big (an eval forward keeps a few arrays of the largest layer alive: counted as 12),
    so that an ImageNet model at 224 pixels calibrates a few images at a time."""
    largest = max(math.prod(op["out_shape"]) for op in ops if "out_shape" in op)
    per_image = 12 * largest * T * np.dtype(dtype).itemsize
    return max(1, min(most, CALIBRATION_BYTES // per_image))


def _stage_bounds(ops: list, maxima: dict, vth: float, stages: int):
    """-> (m, bmax): per stage the largest |current| (at least v_th) and |folded bias|, in
    the units the calibration rule compares (per-token units for a per-token term)."""
    m = [vth] * stages
    bmax = [0.0] * stages
    for op in ops:
        st = op.get("stage")
        if op["op"] == "lif":
            m[st] = max(m[st], maxima[op["name"]])
        if op["op"] == "term":
            b = op["_b"]
            if "_unit_gain" in op:
                g = np.abs(op["_unit_gain"])
                keep = g > TINY_GAIN
                b = b[keep] / g[keep, None]
                if keep.any():   # the threshold v_th / |g_n| is a membrane value too
                    m[st] = max(m[st], vth / g[keep].min())
            bmax[st] = max(bmax[st], float(np.abs(b).max(initial=0)))
    return m, bmax


def _power_of_two_units(m, bmax, mem_bits: int, bias_bits: int, margin: float) -> list[int]:
    """The calibration rule: per stage the largest power of two below
    min(M / (margin m_i), Bmax / b_i) (0 when that is below 1)."""
    mem_cap, bias_cap = int_range(mem_bits)[1], int_range(bias_bits)[1]
    units = []
    for st in range(len(m)):
        u = mem_cap / (margin * m[st])
        if bmax[st] > 0:
            u = min(u, bias_cap / bmax[st])
        units.append(1 << int(math.floor(math.log2(u))) if u >= 1 else 0)
    return units


# -- quantisation -------------------------------------------------------------------------
def _quantise_head(low: dict, bits: int, bias_bits: int) -> tuple[dict, dict]:
    """Head table at one scale for all classes. -> (integer op fields, params)."""
    name, w, b = low["name"], low["_w"], low["_b"]
    qmax, bias_cap = int_range(bits)[1], int_range(bias_bits)[1]
    peak = np.abs(w).max()
    scale = qmax / peak if peak > 0 else 1.0
    if np.abs(b).max(initial=0) > 0:
        scale = min(scale, bias_cap / np.abs(b).max())
    params = {f"{name}.weight": np.rint(w * scale).astype(storage_dtype(bits)),
              f"{name}.bias": round_bias(b, scale, bias_bits, name)}
    return dict(weight=f"{name}.weight", bias=f"{name}.bias", scale=float(scale)), params


#: float64 numbers of a per-token table quantised at a time (64 MiB)
TABLE_CHUNK = 1 << 23


def _quantise_table(low, u: int, bits: int):
    """The per-token table (N, O, K) of ``fc2`` on the grid, one row per (n, o), quantised a
    chunk of tokens at a time into ``bits``-bit storage (int8 for 8 bits), so that the
    float64 table (12 GB for mlp-spe-t) never exists whole. -> (q (N, O, K), e (N, O))."""
    g, shared = low["_token_gain"], low["_shared"]
    n_tokens, (O, K) = len(g), shared.shape
    q = np.empty((n_tokens, O, K), storage_dtype(bits))
    e = np.empty((n_tokens, O), np.int64)
    step = max(1, TABLE_CHUNK // (O * K))
    for a in range(0, n_tokens, step):
        tokens = slice(a, min(a + step, n_tokens))
        qa, ea = quantise_rows(low.table(tokens).reshape(-1, K), u, int_range(bits)[1],
                               low["name"])
        q[tokens] = qa.reshape(-1, O, K)
        e[tokens] = ea.reshape(-1, O)
    return q, e


def _quantise_term(low: dict, u: int, bits: int, bias_bits: int, vth: float, feeds: dict):
    """One term at its stage unit ``u``. -> (q, e, bias, extra op fields, extra params):
    the extras (token signs, a fed LIF's per-token thresholds) come before the weights."""
    name, b = low["name"], low["_b"]
    qmax = int_range(bits)[1]
    if "_token_gain" in low and pow2_gains(low["_token_gain"]):
        # g_n = +-2^a_n (a snapped model): the table g_n W is the shared rows shifted,
        # so keep one shared weight matrix and a per-(token, channel) shift
        g = low["_token_gain"]
        q, e_shared = quantise_rows(low["_shared"], u, qmax, name)
        e = e_shared[None, :] - nearest_pow2_exponent(g)[:, None]      # (N, O)
        sign = np.sign(g).astype(np.int64)
        return (q, e, round_bias(b, u, bias_bits, name),
                dict(kind="dense_shift_token", sign=f"{name}.sign"), {f"{name}.sign": sign})
    if "_token_gain" in low:         # the per-token table (N, O, K): one row per (n, o)
        q, e = _quantise_table(low, u, bits)
        return q, e, round_bias(b, u, bias_bits, name), {}, {}
    w = low["_w"]
    if "_unit_gain" in low:          # per-token units U_n = u / |g_n| and signs sign(g_n)
        g = low["_unit_gain"]
        q, e = quantise_rows(w, u, qmax, name)
        gabs = np.abs(g)
        keep = gabs > TINY_GAIN
        sign = np.where(keep, np.sign(g), 0).astype(np.int64)
        unit_n = np.where(keep, u / np.where(keep, gabs, 1.0), float(u))   # U_n = u/|g_n|
        bias = round_bias(b * unit_n[:, None], 1.0, bias_bits, name)
        theta = np.maximum(1, np.rint(unit_n * vth)).astype(np.int64)
        H, W_, _ = low["out_shape"]
        return q, e, bias, dict(sign=f"{name}.sign"), {
            f"{feeds[name]}.threshold": theta.reshape(H, W_, 1), f"{name}.sign": sign}
    q, e = quantise_rows(w, u, qmax, name)
    return q, e, round_bias(b, u, bias_bits, name), {}, {}


def check_normalisation(where: str, mean, std) -> None:
    """ValueError unless ``mean`` and ``std`` are finite numbers per channel and std > 0 (an
    inf std made every input 0 and a zero std every weight inf, without a word)."""
    for name, values in (("mean", mean), ("std", std)):
        a = np.asarray(values, dtype=object)
        if a.ndim != 1 or not all(isinstance(v, (int, float, np.integer, np.floating))
                                  and not isinstance(v, bool) and math.isfinite(v) for v in a):
            raise ValueError(f"{where} expected {name} to be finite numbers, one per input "
                             f"channel, got {list(values)}")
    if min(std) <= 0:
        raise ValueError(f"{where} expected std > 0, got {list(std)}")


def _check_exact(ops: list, params: dict, bits: int) -> None:
    """ValueError unless every GEMM of the fast path sums exactly (float64: below 2^53):
    with wide weights (--bits 44) the bound of a layer's sums passes 2^53."""
    from .run import EXACT64, gemm_bound
    from .terms import term_kind
    shapes = {op["name"]: op.get("out_shape") for op in ops}
    for op in ops:
        if op["op"] == "term":
            w, row = params[op["weight"]], term_kind(op)
            bound = gemm_bound(w, row.max_input, row.fan_in(w))
        elif op["op"] == "head":                # inputs: spike counts over the last H x W
            w = params[op["weight"]]
            H, W = shapes[op["src"]][:2]
            bound = gemm_bound(w, H * W, w.shape[1])
        else:
            continue
        if bound >= EXACT64:
            fewer = bits - math.ceil(math.log2(bound / EXACT64)) - 1
            raise ValueError(f"golden convert: with {bits}-bit weights the sums of '{op['name']}' "
                             f"can reach {bound:.3g}, beyond 2^53 where the fast path's float64 "
                             f"GEMM stops being exact; use --bits {fewer} or fewer")


def convert(model, calibration_images: np.ndarray, bits: int = 8, *,
            bias_bits: int = 24, acc_bits: int = 24, mem_bits: int = 24,
            mean=CIFAR_MEAN, std=CIFAR_STD, T: int = 4, margin: float = 2.0,
            units=None, policy: str = "error") -> IntegerNetwork:
    """Fold, calibrate and quantise a float sMLPNet into an :class:`IntegerNetwork`.

    model: a built (or trained) :class:`~npsnn.SMLPNet`; BN uses its running statistics.
    calibration_images: uint8 (B, 3, H, W) raw pixels (a few hundred training images).
    bits: weight width (signed); bias_bits, acc_bits, mem_bits: widths of biases, term
        accumulators and LIF currents/membranes (all signed two's complement).
    mean, std: the input normalisation the float model was trained with (per channel).
    T: time steps used for calibration. margin: membrane headroom factor.
    units: optional list of integer units per stage (skips the calibration rule).
    policy: default overflow policy of the network ('error', 'saturate', 'wrap').
    """
    expect_smlpnet("golden convert", model)
    for name, val, lo in (("bits", bits, 2), ("bias_bits", bias_bits, 2),
                          ("acc_bits", acc_bits, 4), ("mem_bits", mem_bits, 4)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or not lo <= val <= 48:
            raise ValueError(f"golden convert expected {name} to be an integer in [{lo}, 48], "
                             f"got {val!r}")
    if policy not in POLICIES:
        raise ValueError(f"golden convert expected policy to be one of {POLICIES}, got "
                         f"{policy!r}")
    cfg = model.config
    input_shape = (cfg["image_size"], cfg["image_size"], cfg["in_channels"])
    if len(mean) != cfg["in_channels"] or len(std) != cfg["in_channels"]:
        raise ValueError(f"golden convert expected mean and std with {cfg['in_channels']} "
                         f"entries (one per input channel), got {len(mean)} and {len(std)}")
    check_normalisation("golden convert", mean, std)
    leak_shift, vth = neuron_spec(model)
    check_images("golden convert", calibration_images, input_shape)
    if len(calibration_images) == 0:
        raise ValueError("golden convert needs at least one calibration image")

    ops = lower(model, mean, std)
    stages = len(model.depths)
    maxima = calibrate(model, calibration_images, T, mean, std, ops=ops)
    m, bmax = _stage_bounds(ops, maxima, vth, stages)
    if units is None:
        units = _power_of_two_units(m, bmax, mem_bits, bias_bits, margin)
    units = [int(u) for u in units]
    if len(units) != stages:
        raise ValueError(f"golden convert expected {stages} units (one per stage), got "
                         f"{len(units)}")
    for st, u in enumerate(units):
        if u < 2 or round(u * vth) < 1:
            raise ValueError(f"golden convert: stage {st} gets unit {u} (largest |current| "
                             f"{m[st]:.3g}, largest |bias| {bmax[st]:.3g}); the membranes are "
                             f"too narrow: raise mem_bits (now {mem_bits}) or bias_bits "
                             f"(now {bias_bits})")

    feeds = {low["src"]: low["name"] for low in ops if low["op"] == "lif"}   # term -> its LIF
    params = {}
    out_ops = []
    for low in ops:
        op = {k: v for k, v in low.items() if not k.startswith("_")}   # the integer op's fields
        name = op["name"]
        if op["op"] == "head":
            fields, head_params = _quantise_head(low, bits, bias_bits)
            params.update(head_params)
            op.update(fields)
            out_ops.append(op)
            continue
        st = op.pop("stage")
        u = units[st]
        op["stage"] = st
        if op["op"] == "lif":
            if f"{name}.threshold" not in params:      # (per-token ones come with their term)
                params[f"{name}.threshold"] = np.full((1, 1, 1), int(round(u * vth)), np.int64)
            op["threshold"] = f"{name}.threshold"
            out_ops.append(op)
            continue
        if op["op"] != "term":
            out_ops.append(op)
            continue
        q, e, bias, fields, extra = _quantise_term(low, u, bits, bias_bits, vth, feeds)
        params.update(extra)
        op.update(fields)
        if e.size and not -128 <= int(e.min()) <= int(e.max()) <= 127:
            raise ValueError(f"golden convert: '{name}' needs shifts in [{int(e.min())}, "
                             f"{int(e.max())}], outside the 8-bit shift field")
        if e.size and int(e.min()) < acc_bits - 62:
            # rshift(acc, e) with e < 0 is acc << -e; keep it inside int64 for any checked acc
            raise ValueError(f"golden convert: '{name}' needs a left shift of {-int(e.min())} "
                             f"bits, more than int64 allows with {acc_bits}-bit accumulators; "
                             f"lower mem_bits (the unit) or acc_bits")
        params[f"{name}.weight"] = q.astype(storage_dtype(bits), copy=False)   # int8 for 8 bits
        params[f"{name}.shift"], params[f"{name}.bias"] = e, bias
        op.update(weight=f"{name}.weight", shift=f"{name}.shift", bias=f"{name}.bias")
        out_ops.append(op)

    _check_exact(out_ops, params, bits)
    mem_cap = int_range(mem_bits)[1]
    for name, arr in params.items():
        if name.endswith(".threshold") and arr.max() > mem_cap:
            raise ValueError(f"golden convert: threshold '{name}' = {int(arr.max())} does not fit "
                             f"mem_bits={mem_bits}; lower the unit or raise mem_bits")
    meta = dict(config=dict(cfg), units=units, v_threshold=vth, tau=2 ** leak_shift,
                margin=margin, calibration=dict(images=int(len(calibration_images)), T=T,
                                                max_current=[float(v) for v in m],
                                                max_bias=[float(v) for v in bmax]),
                mean=[float(v) for v in mean], std=[float(v) for v in std],
                weight_rounding="round half to even (numpy.rint) at conversion")
    return IntegerNetwork(ops=out_ops, params=params,
                          bits=dict(weight=bits, bias=bias_bits, acc=acc_bits, mem=mem_bits),
                          leak_shift=leak_shift, input_shape=input_shape,
                          num_classes=cfg["num_classes"], meta=meta, policy=policy)
