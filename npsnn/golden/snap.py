"""Snap a float sMLPNet onto the golden model's weight grid.

:func:`npsnn.golden.convert` rounds every folded weight to ``q * 2^-E`` (an integer
``|q| <= 2^(bits-1) - 1`` and a power-of-two scale per output row). A float model whose
folded weights already lie on that grid converts **without any weight rounding**, so the
integer network computes the same function as the float network up to the rounding of
biases, thresholds and the leak at the membrane unit, which wide membranes make
negligible. :func:`snap_to_grid` moves a model onto the grid (in place); quantisation-
aware fine-tuning would snap after every optimiser step, so that training sees exactly the
weights the integer model will use.

What is snapped (folded weights, with the eval-mode BN gain ``g`` undone afterwards so
that folding the snapped parameters gives the grid value):

* every ``term`` of the integer network: SPE/stage convolutions (the first one on raw
  pixels, normalisation included), token-mixer projections and fuse, channel-mixer
  ``fc1``; each output row on its own grid ``q * 2^-E``, as ``convert`` quantises it;
* the channel mixer's second BN1d: its per-token gain ``g_n`` (``gamma_n /
  sqrt(var_n + eps)``) becomes the nearest power of two (sign kept, the shift
  ``c_n = beta_n - mean_n g_n`` kept), and ``fc2``'s shared weights are snapped on their
  own rows. Then the per-token table ``g_n W`` that ``convert`` builds is the same 8-bit
  integers shifted, i.e. exact. A gain that is not a power of two would make every
  token's table round differently, which no shared float weight can reproduce;
* the head (BN, mean pool and Linear folded into one table with one scale).

Biases, thresholds and BN statistics are not snapped: ``convert`` rounds them at the
membrane unit (power-of-two units, ``2^-20`` of the threshold or finer at 24-bit
membranes).
"""
from __future__ import annotations

import numpy as np

from .convert import CIFAR_MEAN, CIFAR_STD, check_normalisation
from .grid import nearest_pow2_exponent, snap_rows
from .intops import int_range
from .lower import expect_smlpnet, lower


def pow2_token_gains(model) -> int:
    """Make the gain of every channel mixer's second BN1d a signed power of two (in place).

    g_n = gamma_n / sqrt(var_n + eps) -> sign(g_n) 2^round(log2 |g_n|); the BN shift
    c_n = beta_n - mean_n g_n is kept by adjusting beta. -> number of BN layers changed."""
    expect_smlpnet("pow2_token_gains", model)
    changed = 0
    for op in lower(model):
        if "_set_token_gain" in op:
            g = op["_token_gain"]
            op["_set_token_gain"](np.sign(g) * np.exp2(nearest_pow2_exponent(g)))   # 0 stays 0
            changed += 1
    return changed


def snap_to_grid(model, bits: int = 8, *, mean=CIFAR_MEAN, std=CIFAR_STD):
    """Move ``model``'s parameters onto the golden weight grid of ``bits``-bit weights
    (in place; returns the model). Idempotent: snapping a snapped model changes nothing
    beyond float rounding. See the module docstring for what is snapped."""
    expect_smlpnet("snap_to_grid", model)
    check_normalisation("snap_to_grid", mean, std)
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 2 <= bits <= 24:
        raise ValueError(f"snap_to_grid expected bits to be an integer in [2, 24], got {bits!r}")
    qmax = int_range(bits)[1]
    pow2_token_gains(model)
    for op in lower(model, mean, std):
        if op["op"] == "head":
            w = op["_w"]
            peak = np.abs(w).max()
            if peak > 0:              # one scale for the whole table (argmax is scale-free)
                op["_set"](np.rint(w * (qmax / peak)) * (peak / qmax))
            continue
        if op["op"] != "term":
            continue
        # fc2: snap the shared weights; with power-of-two token gains the table is exact
        w = op["_shared"] if "_shared" in op else op["_w"]
        op["_set"](snap_rows(w, qmax, op["name"]))
    return model
