"""Float sMLPNet -> :class:`IntegerNetwork` (BN folding, calibration, quantisation).

The design (docs/golden-model.md has the full rationale and the exact equations):

* **Units.** Stage ``i`` has one integer unit ``u_i``: the real value 1.0 is represented
  by the integer ``u_i``. Every LIF of the stage has the integer threshold
  ``theta = round(u_i * v_th)``, and every term summed into one LIF (``h + t``,
  ``h + t + ch``, PatchCell ``a3 + a1 + b3``) is produced at that unit, so sums are plain
  integer adds. Since spikes are 0/1, the next layer never sees the unit.
* **Calibration rule.** ``u_i = floor(min(M / (margin * m_i), Bmax / b_i))`` where
  ``M = 2^(mem_bits-1) - 1``, ``m_i`` = the largest |LIF input current| (real units,
  at least v_th) seen on the calibration images in stage ``i`` (the channel-mixer hidden
  LIF in its per-token units, see below), ``Bmax = 2^(bias_bits-1) - 1`` and ``b_i`` the
  largest |folded bias| of the stage. So the membranes keep a ``margin`` (default 2x)
  of headroom and every bias fits its width.
* **Weights.** Each output row (channel) of each term gets its own power-of-two exponent
  ``e``: ``q = rint(u_i * 2^e * W_eff)`` with the largest ``e`` for which
  ``max |q| <= 2^(bits-1) - 1``. The term value is ``rshift(sum q * spikes, e) + bias``.
* **First layer.** Normalisation ``(p/255 - mean)/std`` and BN are folded into the
  weights per uint8 pixel; conv(p) is computed by bit planes, once.
* **BN1d over tokens.** Hidden LIF (single input term): per-token unit
  ``U_n = u_i / |g_n|``, sign ``sign(g_n)`` (add or subtract), per-token threshold and
  per-(token, channel) bias; the shared Linear weights stay shared. Second Linear (summed
  with ``h + t``): a per-token weight table ``(N, C, alpha C)``; its memory is reported.
* **Head.** BN2d, mean-pool and Linear fold into one (classes, C) table at a single
  scale (argmax is scale-free); logits are summed over T.
"""
from __future__ import annotations

import math

import numpy as np

from ..augment import CIFAR10_MEAN, CIFAR10_STD
from ..ops.lif import LIF
from ..smlpnet import PatchCell, SMLPNet
from .grid import nearest_pow2_exponent, pow2_gains, quantise_rows, round_bias
from .intops import POLICIES
from .network import IntegerNetwork

# The input normalisation the trainer uses (npsnn.augment), folded into the first layer.
CIFAR_MEAN, CIFAR_STD = CIFAR10_MEAN, CIFAR10_STD
TINY_GAIN = 1e-12       # |BN1d gain| below this counts as zero (the token is a constant)


def _bn(bn) -> tuple[np.ndarray, np.ndarray]:
    """Eval-mode BN as y = g x + c (float64)."""
    w, b = (bn.params[k].astype(np.float64) for k in ("weight", "bias"))
    rm, rv = (bn.buffers[k].astype(np.float64) for k in ("running_mean", "running_var"))
    g = w / np.sqrt(rv + bn.eps)
    return g, b - rm * g


def _lif_spec(model: SMLPNet) -> tuple[int, float]:
    """Check every LIF is realisable with shifts; -> (leak shift k, v_threshold)."""
    ks, vths = set(), set()
    for path, m in model.named_modules():
        if not isinstance(m, LIF):
            continue
        o = m.options
        k = math.log2(o["tau"]) if o["tau"] > 0 else -1
        if k != int(k) or k < 1:
            raise ValueError(f"golden convert: LIF '{path}' has tau={o['tau']}, but the integer "
                             f"leak is an arithmetic shift, so tau must be a power of two >= 2 "
                             f"(2, 4, 8, ...); retrain with such a tau")
        if o["v_reset"] != 0.0:
            raise ValueError(f"golden convert: LIF '{path}' has v_reset={o['v_reset']}; the "
                             f"golden model implements the hard reset to 0 only")
        if not o["decay_input"]:
            raise ValueError(f"golden convert: LIF '{path}' has decay_input=False; the golden "
                             f"model implements decay_input=True only")
        if o["v_threshold"] <= 0:
            raise ValueError(f"golden convert: LIF '{path}' has v_threshold={o['v_threshold']}; "
                             f"a positive threshold is needed")
        ks.add(int(k))
        vths.add(o["v_threshold"])
    if len(ks) != 1 or len(vths) != 1:
        raise ValueError(f"golden convert: all LIFs must share tau and v_threshold, found tau "
                         f"in {sorted(2 ** k for k in ks)}, v_th in {sorted(vths)}")
    return ks.pop(), vths.pop()


def normalise(images: np.ndarray, mean, std, dtype) -> np.ndarray:
    """uint8 (B, 3, H, W) -> float (p/255 - mean)/std, the float model's input."""
    x = images.astype(np.float64) / 255.0
    x = (x - np.asarray(mean)[:, None, None]) / np.asarray(std)[:, None, None]
    return x.astype(dtype)


def float_predictions(model, images: np.ndarray, T: int, mean, std,
                      batch: int = 100) -> np.ndarray:
    """The float model's classes (argmax of the T-averaged logits) for uint8 ``images``
    (B, 3, H, W), in batches. The model should be in eval mode."""
    return np.concatenate([
        model.forward_repeated(normalise(images[s:s + batch], mean, std, model.dtype), T)
        .mean(axis=0).argmax(axis=1) for s in range(0, len(images), batch)])


def check_images(op: str, images, input_shape) -> np.ndarray:
    if not isinstance(images, np.ndarray):
        raise TypeError(f"{op} expected images to be a numpy.ndarray, got "
                        f"{type(images).__name__}")
    if images.dtype != np.uint8:
        raise TypeError(f"{op} expected uint8 images (raw pixels 0..255), got {images.dtype}; "
                        f"pass the undecoded uint8 array, not normalised floats")
    H, W, C = input_shape
    if images.ndim != 4 or images.shape[1:] != (C, H, W):
        raise ValueError(f"{op} expected images of shape (B, {C}, {H}, {W}), got "
                         f"{images.shape}")
    return images


# -- calibration ------------------------------------------------------------------------
def _lif_names(model: SMLPNet) -> dict:
    """id(LIF module) -> (golden op name, stage, hidden-layer BN gain or None)."""
    names, j = {}, 0
    for i, depth in enumerate(model.depths):
        names[id(model.to_patch_embedding_lif[i])] = (f"s{i}.lif", i, None)
        embed = model.to_patch_embedding[i]
        if isinstance(embed, PatchCell):
            names[id(embed.lif[0])] = (f"s{i}.lif0", i, None)
            names[id(embed.lif[1])] = (f"s{i}.lif1", i, None)
        for _ in range(depth):
            tm, cm = model.token_mix[j], model.channel_mix[j]
            names[id(tm.proj_h[3])] = (f"b{j}.lif_h", i, None)
            names[id(tm.proj_w[3])] = (f"b{j}.lif_w", i, None)
            names[id(model.token_mix_lif[j])] = (f"b{j}.lif_t", i, None)
            names[id(cm.net[2])] = (f"b{j}.lif_hid", i, _bn(cm.net[1])[0])
            names[id(model.channel_mix_lif[j])] = (f"b{j}.lif_c", i, None)
            j += 1
    return names


def calibrate(model: SMLPNet, images: np.ndarray, T: int, mean, std, batch: int = 64) -> dict:
    """Largest |input current| of every LIF over the calibration images (eval mode, real
    units; the hidden channel-mixer LIF in per-token units |X / g_n|). -> {op name: max}."""
    names = _lif_names(model)
    maxima = {name: 0.0 for name, _, _ in names.values()}
    lifs = [m for m in (mod for _, mod in model.named_modules()) if id(m) in names]

    def recorder(lif):
        name, _, gain = names[id(lif)]
        original = lif.forward

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
        for lif in lifs:
            lif.forward = recorder(lif)
        for s in range(0, len(images), batch):
            model.forward_repeated(normalise(images[s:s + batch], mean, std, model.dtype), T)
    finally:
        for lif in lifs:
            lif.__dict__.pop("forward", None)
        model.train(was_training)
    return maxima


# -- structure ------------------------------------------------------------------------------
def _conv_eff(convbn):
    """ConvBN -> (W_eff (O, C, kh, kw), bias (O,), stride, padding)."""
    conv, bn = convbn[0], convbn[1]
    g, c = _bn(bn)
    w = conv.params["weight"].astype(np.float64) * g[:, None, None, None]
    return w, c, list(conv.stride), list(conv.padding)


def _unfold(param: np.ndarray, w_eff: np.ndarray, gain: np.ndarray | None = None) -> None:
    """Write ``w_eff / gain`` (per output row; ``gain`` None: no fold) into ``param`` in
    place: the inverse of a BN fold, used by :mod:`npsnn.golden.snap`. Rows with a zero
    gain are left alone (their effective weights are zero whatever the parameter holds)."""
    if gain is None:
        gain = np.ones(len(w_eff))
    rows = w_eff.reshape(len(gain), -1)
    old = param.reshape(len(gain), -1)
    live = gain != 0
    new = old.astype(np.float64)
    new[live] = rows[live] / gain[live, None]
    param[...] = new.reshape(param.shape).astype(param.dtype)


def _conv_setter(convbn, factor=None):
    """-> function(W_eff) that writes the conv weight for which ``_conv_eff`` gives W_eff.
    ``factor`` (broadcast over W_eff) is an extra fold to undo (the first layer's pixel
    normalisation)."""
    def write(w_eff):
        w = w_eff if factor is None else w_eff / factor
        _unfold(convbn[0].params["weight"], w, _bn(convbn[1])[0])
    return write


def _axis_eff(seq):
    """proj_h / proj_w Sequential -> (W_eff (S, S), bias (S,))."""
    proj, bn = seq[1], seq[2]
    g, c = _bn(bn)
    w = proj.params["weight"].astype(np.float64).reshape(proj.params["weight"].shape[:2])
    return w * g[:, None], g * proj.params["bias"].astype(np.float64) + c


def _structure(model: SMLPNet, mean, std):
    """The op graph with real (float64) weights; units are filled in afterwards."""
    cfg = model.config
    grid = cfg["image_size"] // cfg["patch_size"]
    ops, j = [], 0

    def term(name, kind, src, w, b, stage, shape, **attrs):
        ops.append(dict(op="term", name=name, kind=kind, src=src, stage=stage,
                        out_shape=list(shape), _w=w, _b=b, **attrs))

    prev = "input"
    for i, depth in enumerate(model.depths):
        c, size = cfg["dim"] * 2 ** i, grid // 2 ** i
        shape = (size, size, c)
        embed = model.to_patch_embedding[i]
        if i == 0:
            w, b, stride, pad = _conv_eff(embed)
            std_a, mean_a = np.asarray(std, np.float64), np.asarray(mean, np.float64)
            # x_norm = p / (255 std) - mean / std: a weight per pixel value and a constant
            b = b - (w * (mean_a / std_a)[None, :, None, None]).sum(axis=(1, 2, 3))
            w = w / (255.0 * std_a)[None, :, None, None]
            term(f"s{i}.embed", "conv_bitplane", [prev], w, b, i, shape, stride=stride,
                 padding=pad, static=True,
                 _set=_conv_setter(embed, 1 / (255.0 * std_a)[None, :, None, None]))
            h = f"s{i}.embed"
        elif isinstance(embed, PatchCell):
            n = embed.node_width
            nshape = (size, size, n)
            for k in range(3):
                w, b, stride, pad = _conv_eff(embed.cell2node[k])
                term(f"s{i}.a{k + 1}", "conv", [prev], w, b, i, nshape, stride=stride,
                     padding=pad, _set=_conv_setter(embed.cell2node[k]))
            ops.append(dict(op="lif", name=f"s{i}.lif0", src=f"s{i}.a1", stage=i,
                            out_shape=list(nshape)))
            w, b, stride, pad = _conv_eff(embed.node1_node2)
            term(f"s{i}.b2", "conv", [f"s{i}.lif0"], w, b, i, nshape, stride=stride, padding=pad,
                 _set=_conv_setter(embed.node1_node2))
            ops.append(dict(op="add", name=f"s{i}.n2", src=[f"s{i}.a2", f"s{i}.b2"], stage=i,
                            out_shape=list(nshape)))
            ops.append(dict(op="lif", name=f"s{i}.lif1", src=f"s{i}.n2", stage=i,
                            out_shape=list(nshape)))
            w, b, stride, pad = _conv_eff(embed.node2_node3)
            term(f"s{i}.b3", "conv", [f"s{i}.lif1"], w, b, i, nshape, stride=stride, padding=pad,
                 _set=_conv_setter(embed.node2_node3))
            ops.append(dict(op="add", name=f"s{i}.n3", src=[f"s{i}.a3", f"s{i}.a1", f"s{i}.b3"],
                            stage=i, out_shape=list(nshape)))
            ops.append(dict(op="concat", name=f"s{i}.h", src=[f"s{i}.a1", f"s{i}.n2", f"s{i}.n3"],
                            stage=i, out_shape=list(shape)))
            h = f"s{i}.h"
        else:
            w, b, stride, pad = _conv_eff(embed)
            term(f"s{i}.embed", "conv", [prev], w, b, i, shape, stride=stride, padding=pad,
                 _set=_conv_setter(embed))
            h = f"s{i}.embed"
        ops.append(dict(op="lif", name=f"s{i}.lif", src=h, stage=i, out_shape=list(shape)))
        x = f"s{i}.lif"
        for _ in range(depth):
            tm, cm = model.token_mix[j], model.channel_mix[j]
            for ax, seq in (("H", tm.proj_h), ("W", tm.proj_w)):
                w, b = _axis_eff(seq)
                tag = ax.lower()
                term(f"b{j}.p{tag}", "axis", [x], w, b, i, shape, axis=ax,
                     _set=lambda w_eff, seq=seq: _unfold(seq[1].params["weight"], w_eff,
                                                         _bn(seq[2])[0]))
                ops.append(dict(op="lif", name=f"b{j}.lif_{tag}", src=f"b{j}.p{tag}", stage=i,
                                out_shape=list(shape)))
            w, b, _, _ = _conv_eff(tm.fuse)
            term(f"b{j}.fuse", "dense", [x, f"b{j}.lif_h", f"b{j}.lif_w"], w[:, :, 0, 0], b, i,
                 shape, _set=_conv_setter(tm.fuse))
            ops.append(dict(op="add", name=f"b{j}.u", src=[h, f"b{j}.fuse"], stage=i,
                            out_shape=list(shape)))
            ops.append(dict(op="lif", name=f"b{j}.lif_t", src=f"b{j}.u", stage=i,
                            out_shape=list(shape)))
            fc1, bn1, fc2, bn2 = cm.net[0], cm.net[1], cm.net[3], cm.net[4]
            g1, c1 = _bn(bn1)
            w1, b1 = (fc1.params[k].astype(np.float64) for k in ("weight", "bias"))
            hidden = w1.shape[0]
            term(f"b{j}.fc1", "dense_signed_token", [f"b{j}.lif_t"], w1,
                 g1[:, None] * b1[None, :] + c1[:, None], i, (size, size, hidden), _g=g1,
                 _set=lambda w_eff, fc1=fc1: _unfold(fc1.params["weight"], w_eff))
            ops.append(dict(op="lif", name=f"b{j}.lif_hid", src=f"b{j}.fc1", stage=i,
                            out_shape=[size, size, hidden]))
            g2, c2 = _bn(bn2)
            w2, b2 = (fc2.params[k].astype(np.float64) for k in ("weight", "bias"))
            term(f"b{j}.fc2", "dense_token", [f"b{j}.lif_hid"], g2[:, None, None] * w2[None],
                 g2[:, None] * b2[None, :] + c2[:, None], i, shape, _g=g2, _shared=w2,
                 _set=lambda w_eff, fc2=fc2: _unfold(fc2.params["weight"], w_eff))
            ops.append(dict(op="add", name=f"b{j}.v", src=[f"b{j}.u", f"b{j}.fc2"], stage=i,
                            out_shape=list(shape)))
            ops.append(dict(op="lif", name=f"b{j}.lif_c", src=f"b{j}.v", stage=i,
                            out_shape=list(shape)))
            x = f"b{j}.lif_c"
            j += 1
        prev = x
    # head: logits = Wl mean_hw(g s + c) + bl = sum_{hw,c} (Wl g / HW) s + (Wl c + bl)
    g, c = _bn(model.batch_norm)
    lin = model.mlp_head[1]
    wl, bl = (lin.params[k].astype(np.float64) for k in ("weight", "bias"))
    hw = shape[0] * shape[1]
    ops.append(dict(op="head", name="head", src=x, _w=wl * g[None, :] / hw, _b=wl @ c + bl,
                    _set=lambda w_eff: _unfold(lin.params["weight"].T, (w_eff * hw).T, g)))
    return ops


def convert(model: SMLPNet, calibration_images: np.ndarray, bits: int = 8, *,
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
    if not isinstance(model, SMLPNet):
        raise TypeError(f"golden convert expected an npsnn SMLPNet, got {type(model).__name__}")
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
    if min(std) <= 0:
        raise ValueError(f"golden convert expected std > 0, got {std}")
    leak_shift, vth = _lif_spec(model)
    check_images("golden convert", calibration_images, input_shape)
    if len(calibration_images) == 0:
        raise ValueError("golden convert needs at least one calibration image")

    ops = _structure(model, mean, std)
    stages = len(model.depths)
    maxima = calibrate(model, calibration_images, T, mean, std)
    m = [vth] * stages
    bmax = [0.0] * stages
    for op in ops:
        st = op.get("stage")
        if op["op"] == "lif":
            m[st] = max(m[st], maxima[op["name"]])
        if op["op"] == "term":
            b = op["_b"]
            if op["kind"] == "dense_signed_token":
                g = np.abs(op["_g"])
                keep = g > TINY_GAIN
                b = b[keep] / g[keep, None]
                if keep.any():   # the threshold v_th / |g_n| is a membrane value too
                    m[st] = max(m[st], vth / g[keep].min())
            bmax[st] = max(bmax[st], float(np.abs(b).max(initial=0)))
    mem_cap, bias_cap, qmax = (1 << (mem_bits - 1)) - 1, (1 << (bias_bits - 1)) - 1, \
        (1 << (bits - 1)) - 1
    if units is None:
        units = []
        for st in range(stages):
            u = mem_cap / (margin * m[st])
            if bmax[st] > 0:
                u = min(u, bias_cap / bmax[st])
            units.append(1 << int(math.floor(math.log2(u))) if u >= 1 else 0)
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

    params = {}
    out_ops = []
    for op in ops:
        op = dict(op)
        w, b, g = op.pop("_w", None), op.pop("_b", None), op.pop("_g", None)
        op.pop("_set", None)
        shared = op.pop("_shared", None)      # fc2's shared weights (before the token gain)
        name = op["name"]
        if op["op"] == "head":
            peak = np.abs(w).max()
            scale = qmax / peak if peak > 0 else 1.0
            if np.abs(b).max(initial=0) > 0:
                scale = min(scale, bias_cap / np.abs(b).max())
            params[f"{name}.weight"] = np.rint(w * scale).astype(np.int64)
            params[f"{name}.bias"] = round_bias(b, scale, bias_bits, name)
            op.update(weight=f"{name}.weight", bias=f"{name}.bias", scale=float(scale))
            out_ops.append(op)
            continue
        st = op.pop("stage")
        u = units[st]
        op["stage"] = st
        if op["op"] == "lif":
            if name.endswith(".lif_hid"):
                pass       # per-token threshold set with its fc1 term below
            else:
                params[f"{name}.threshold"] = np.full((1, 1, 1), int(round(u * vth)), np.int64)
            op["threshold"] = f"{name}.threshold"
            out_ops.append(op)
            continue
        if op["op"] != "term":
            out_ops.append(op)
            continue
        kind = op["kind"]
        if kind == "dense_token" and pow2_gains(g):
            # g_n = +-2^a_n (a snapped model): the table g_n W is the shared rows shifted,
            # so keep one shared weight matrix and a per-(token, channel) shift
            q, e_shared = quantise_rows(shared, u, qmax, name)
            e = e_shared[None, :] - nearest_pow2_exponent(g)[:, None]      # (N, O)
            sign = np.sign(g).astype(np.int64)
            bias = round_bias(b, u, bias_bits, name)
            params[f"{name}.sign"] = sign
            op.update(kind="dense_shift_token", sign=f"{name}.sign")
        elif kind == "dense_token":
            Nt, O, K = w.shape
            q, e = quantise_rows(w.reshape(Nt * O, K), u, qmax, name)
            q, e = q.reshape(Nt, O, K), e.reshape(Nt, O)
            bias = round_bias(b, u, bias_bits, name)
        elif kind == "dense_signed_token":
            q, e = quantise_rows(w, u, qmax, name)
            gabs = np.abs(g)
            keep = gabs > TINY_GAIN
            sign = np.where(keep, np.sign(g), 0).astype(np.int64)
            unit_n = np.where(keep, u / np.where(keep, gabs, 1.0), float(u))   # U_n = u/|g_n|
            bias = round_bias(b * unit_n[:, None], 1.0, bias_bits, name)
            theta = np.maximum(1, np.rint(unit_n * vth)).astype(np.int64)
            H, W_, _ = op["out_shape"]
            lif_name = name.replace(".fc1", ".lif_hid")
            params[f"{lif_name}.threshold"] = theta.reshape(H, W_, 1)
            params[f"{name}.sign"] = sign
            op["sign"] = f"{name}.sign"
        else:
            q, e = quantise_rows(w, u, qmax, name)
            bias = round_bias(b, u, bias_bits, name)
        if e.size and not -128 <= int(e.min()) <= int(e.max()) <= 127:
            raise ValueError(f"golden convert: '{name}' needs shifts in [{int(e.min())}, "
                             f"{int(e.max())}], outside the 8-bit shift field")
        if e.size and int(e.min()) < acc_bits - 62:
            # rshift(acc, e) with e < 0 is acc << -e; keep it inside int64 for any checked acc
            raise ValueError(f"golden convert: '{name}' needs a left shift of {-int(e.min())} "
                             f"bits, more than int64 allows with {acc_bits}-bit accumulators; "
                             f"lower mem_bits (the unit) or acc_bits")
        params[f"{name}.weight"], params[f"{name}.shift"], params[f"{name}.bias"] = q, e, bias
        op.update(weight=f"{name}.weight", shift=f"{name}.shift", bias=f"{name}.bias")
        out_ops.append(op)

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
