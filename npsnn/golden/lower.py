"""Float sMLPNet -> the folded float term graph: the only golden file that knows the
float model's children.

:func:`lower` walks a float :class:`~npsnn.SMLPNet` (eval mode: BN with its running
statistics) and returns the op graph of the integer network (docs/golden-model.md,
section 4) with **real** numbers still in it: every BN folded into the weights before it,
the input normalisation folded into the first layer, float64 throughout. Quantisation
(:mod:`npsnn.golden.convert`) turns it into integers; snapping (:mod:`npsnn.golden.snap`)
writes grid values back into the model through the setters. Nothing else in
``npsnn.golden`` reads a float model's children.

A lowered op is a dict: the integer op's own fields (``op``, ``name``, ``kind``, ``src``,
``stage``, ``out_shape``, ``stride``, ``padding``, ``static``, ``axis``; section 4 of the
docs) plus float-side entries whose keys start with ``_`` (conversion drops them):

* ``_w``, ``_b`` (terms, head): the effective weight ``W_eff`` and bias ``b_eff``;
* ``_set(w_eff)``: writes the model's parameter so that lowering again gives ``_w ==
  w_eff`` (the BN gain divided out again);
* ``_unit_gain`` (the channel mixer's ``fc1`` term and the LIF it feeds): the BN1d gain
  ``g_n`` per token; token ``n`` works at the unit ``u / |g_n|`` (docs, "BN1d over tokens");
* ``_token_gain``, ``_shared`` (``fc2``): ``W_eff[n] = g_n * _shared``, built only when
  asked for (:class:`TokenTerm`); ``_set_token_gain(g)`` rewrites that BN1d so that its gain
  is ``g`` (shift kept);
* ``_lif`` (lif ops): the float LIF module the integer LIF implements (calibration
  records its input currents).
"""
from __future__ import annotations

import math

import numpy as np

from ..datasets.transforms import CIFAR10_MEAN, CIFAR10_STD
from ..ops.batchnorm import batchnorm_affine
from ..ops.lif import LIF
from ..models.smlpnet import PatchCell, SMLPNet


def expect_smlpnet(where: str, model) -> None:
    """TypeError unless ``model`` is an npsnn sMLPNet (the golden model covers no other)."""
    if not isinstance(model, SMLPNet):
        name = getattr(model, "config", {}).get("model", type(model).__name__) \
            if isinstance(getattr(model, "config", None), dict) else type(model).__name__
        raise TypeError(f"{where} expected an npsnn SMLPNet, got {type(model).__name__} (model "
                        f"'{name}'): the golden model covers sMLPNet only")


def bn_affine(bn) -> tuple[np.ndarray, np.ndarray]:
    """Eval-mode BN as ``y = g x + c``, in float64 (the one BN fold on float64 copies)."""
    w, b = (bn.params[k].astype(np.float64) for k in ("weight", "bias"))
    rm, rv = (bn.buffers[k].astype(np.float64) for k in ("running_mean", "running_var"))
    return batchnorm_affine(w, b, rm, rv, bn.eps)


def neuron_spec(model: SMLPNet) -> tuple[int, float]:
    """The neuron the integer model implements, from the model's config (``neuron``, the
    options every LIF was built with) -> (leak shift k with tau = 2^k, v_threshold).

    Refuses what shifts and compares cannot do (tau not a power of two >= 2, a reset other
    than the hard reset to 0, decay_input=False, a threshold <= 0), and a model whose LIF
    layers were changed after building so that they no longer match its config."""
    o = model.config["neuron"]
    for path, m in model.named_modules():
        if isinstance(m, LIF):
            differ = {k: v for k, v in m.options.items() if o.get(k) != v and k != "smooth"}
            if differ:
                raise ValueError(f"golden convert: LIF '{path}' has {differ}, but the model's "
                                 f"config says neuron={o}: every LIF of sMLPNet shares the "
                                 f"config's options; rebuild the model from a config")
    k = math.log2(o["tau"]) if o["tau"] > 0 else -1
    if k != int(k) or k < 1:
        raise ValueError(f"golden convert: the neurons have tau={o['tau']}, but the integer leak "
                         f"is an arithmetic shift, so tau must be a power of two >= 2 "
                         f"(2, 4, 8, ...); retrain with such a tau")
    if o["v_reset"] != 0.0:
        raise ValueError(f"golden convert: the neurons have v_reset={o['v_reset']}; the golden "
                         f"model implements the hard reset to 0 only")
    if not o["decay_input"]:
        raise ValueError("golden convert: the neurons have decay_input=False; the golden model "
                         "implements decay_input=True only")
    if o["v_threshold"] <= 0:
        raise ValueError(f"golden convert: the neurons have v_threshold={o['v_threshold']}; a "
                         f"positive threshold is needed")
    return int(k), float(o["v_threshold"])


# -- folds and their inverses ---------------------------------------------------------------
def _unfold(param: np.ndarray, w_eff: np.ndarray, gain: np.ndarray | None = None) -> None:
    """Write ``w_eff / gain`` (per output row; ``gain`` None: no fold) into ``param`` in
    place: the inverse of a BN fold. Rows with a zero gain are left alone (their
    effective weights are zero whatever the parameter holds)."""
    if gain is None:
        gain = np.ones(len(w_eff))
    rows = w_eff.reshape(len(gain), -1)
    old = param.reshape(len(gain), -1)
    live = gain != 0
    new = old.astype(np.float64)
    new[live] = rows[live] / gain[live, None]
    param[...] = new.reshape(param.shape).astype(param.dtype)


def _conv_eff(convbn):
    """ConvBN -> (W_eff (O, C, kh, kw), bias (O,), stride, padding)."""
    conv, bn = convbn[0], convbn[1]
    g, c = bn_affine(bn)
    w = conv.params["weight"].astype(np.float64) * g[:, None, None, None]
    return w, c, list(conv.stride), list(conv.padding)


def _conv_setter(convbn, factor=None):
    """-> function(W_eff) that writes the conv weight for which ``_conv_eff`` gives W_eff.
    ``factor`` (broadcast over W_eff) is an extra fold to undo (the first layer's pixel
    normalisation)."""
    def write(w_eff):
        w = w_eff if factor is None else w_eff / factor
        _unfold(convbn[0].params["weight"], w, bn_affine(convbn[1])[0])
    return write


def _axis_eff(seq):
    """proj_h / proj_w Sequential -> (W_eff (S, S), bias (S,))."""
    proj, bn = seq[1], seq[2]
    g, c = bn_affine(bn)
    w = proj.params["weight"].astype(np.float64).reshape(proj.params["weight"].shape[:2])
    return w * g[:, None], g * proj.params["bias"].astype(np.float64) + c


def _gain_setter(bn):
    """-> function(g) that rewrites ``bn`` so that its eval-mode gain is ``g`` and its shift
    ``c = beta - mean g`` stays what it is."""
    def write(g_new):
        _, c = bn_affine(bn)
        std = np.sqrt(bn.buffers["running_var"].astype(np.float64) + bn.eps)
        bn.params["weight"][...] = (g_new * std).astype(bn.params["weight"].dtype)
        bn.params["bias"][...] = (c + bn.buffers["running_mean"] * g_new) \
            .astype(bn.params["bias"].dtype)
    return write


class TokenTerm(dict):
    """A lowered ``fc2`` term: its effective weight is the per-token table
    ``W_eff[n] = g_n * _shared`` (N, O, K), which for the paper's ImageNet models holds 57
    million numbers per block (458 MB in float64; 12 GB for mlp-spe-t). It is never
    stored: ``op["_w"]`` builds the whole table when asked, :meth:`table` a slice of tokens
    (what conversion quantises, a chunk at a time), and a snapped model (power-of-two
    gains) needs none of it."""

    def table(self, tokens: slice = slice(None)) -> np.ndarray:
        """``W_eff[tokens]``: (n, O, K) float64."""
        return self["_token_gain"][tokens, None, None] * self["_shared"][None]

    def __missing__(self, key):
        if key == "_w":
            return self.table()
        raise KeyError(key)


# -- the walk -------------------------------------------------------------------------------
def lower(model: SMLPNet, mean=CIFAR10_MEAN, std=CIFAR10_STD) -> list[dict]:
    """The op graph of ``model`` with real (float64) weights, in execution order.

    mean, std: the input normalisation the model was trained with (folded into the first
    layer). Stage units are not known yet: conversion picks them."""
    cfg = model.config
    grid = cfg["image_size"] // cfg["patch_size"]
    ops, j = [], 0

    def term(name, kind, src, w, b, stage, shape, **attrs):
        ops.append(dict(op="term", name=name, kind=kind, src=src, stage=stage,
                        out_shape=list(shape), _w=w, _b=b, **attrs))

    def lif(name, src, stage, shape, module, **attrs):
        ops.append(dict(op="lif", name=name, src=src, stage=stage, out_shape=list(shape),
                        _lif=module, **attrs))

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
            lif(f"s{i}.lif0", f"s{i}.a1", i, nshape, embed.lif[0])
            w, b, stride, pad = _conv_eff(embed.node1_node2)
            term(f"s{i}.b2", "conv", [f"s{i}.lif0"], w, b, i, nshape, stride=stride, padding=pad,
                 _set=_conv_setter(embed.node1_node2))
            ops.append(dict(op="add", name=f"s{i}.n2", src=[f"s{i}.a2", f"s{i}.b2"], stage=i,
                            out_shape=list(nshape)))
            lif(f"s{i}.lif1", f"s{i}.n2", i, nshape, embed.lif[1])
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
        lif(f"s{i}.lif", h, i, shape, model.to_patch_embedding_lif[i])
        x = f"s{i}.lif"
        for _ in range(depth):
            tm, cm = model.token_mix[j], model.channel_mix[j]
            for ax, seq in (("H", tm.proj_h), ("W", tm.proj_w)):
                w, b = _axis_eff(seq)
                tag = ax.lower()
                term(f"b{j}.p{tag}", "axis", [x], w, b, i, shape, axis=ax,
                     _set=lambda w_eff, seq=seq: _unfold(seq[1].params["weight"], w_eff,
                                                         bn_affine(seq[2])[0]))
                lif(f"b{j}.lif_{tag}", f"b{j}.p{tag}", i, shape, seq[3])
            w, b, _, _ = _conv_eff(tm.fuse)
            term(f"b{j}.fuse", "dense", [x, f"b{j}.lif_h", f"b{j}.lif_w"], w[:, :, 0, 0], b, i,
                 shape, _set=_conv_setter(tm.fuse))
            ops.append(dict(op="add", name=f"b{j}.u", src=[h, f"b{j}.fuse"], stage=i,
                            out_shape=list(shape)))
            lif(f"b{j}.lif_t", f"b{j}.u", i, shape, model.token_mix_lif[j])
            fc1, bn1, hidden_lif, fc2, bn2 = (cm.net[k] for k in range(5))
            g1, c1 = bn_affine(bn1)
            w1, b1 = (fc1.params[k].astype(np.float64) for k in ("weight", "bias"))
            hidden = w1.shape[0]
            term(f"b{j}.fc1", "dense_signed_token", [f"b{j}.lif_t"], w1,
                 g1[:, None] * b1[None, :] + c1[:, None], i, (size, size, hidden), _unit_gain=g1,
                 _set=lambda w_eff, fc1=fc1: _unfold(fc1.params["weight"], w_eff))
            lif(f"b{j}.lif_hid", f"b{j}.fc1", i, (size, size, hidden), hidden_lif, _unit_gain=g1)
            g2, c2 = bn_affine(bn2)
            w2, b2 = (fc2.params[k].astype(np.float64) for k in ("weight", "bias"))
            ops.append(TokenTerm(op="term", name=f"b{j}.fc2", kind="dense_token",
                                 src=[f"b{j}.lif_hid"], stage=i, out_shape=list(shape),
                                 _b=g2[:, None] * b2[None, :] + c2[:, None], _token_gain=g2,
                                 _shared=w2,
                                 _set=lambda w_eff, fc2=fc2: _unfold(fc2.params["weight"], w_eff),
                                 _set_token_gain=_gain_setter(bn2)))
            ops.append(dict(op="add", name=f"b{j}.v", src=[f"b{j}.u", f"b{j}.fc2"], stage=i,
                            out_shape=list(shape)))
            lif(f"b{j}.lif_c", f"b{j}.v", i, shape, model.channel_mix_lif[j])
            x = f"b{j}.lif_c"
            j += 1
        prev = x
    # head: logits = Wl mean_hw(g s + c) + bl = sum_{hw,c} (Wl g / HW) s + (Wl c + bl)
    g, c = bn_affine(model.batch_norm)
    lin = model.mlp_head[1]
    wl, bl = (lin.params[k].astype(np.float64) for k in ("weight", "bias"))
    hw = shape[0] * shape[1]
    ops.append(dict(op="head", name="head", src=x, _w=wl * g[None, :] / hw, _b=wl @ c + bl,
                    _set=lambda w_eff: _unfold(lin.params["weight"].T, (w_eff * hw).T, g)))
    return ops
