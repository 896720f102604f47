"""Compare npsnn's sMLPNet with a PyTorch + SpikingJelly reference case (float64).

A reference case is an ``.npz`` in the layout of ``../shared/fixtures/smlpnet_*.npz``
(``param/<key>``, ``x``, ``y``, ``T``, ``train_logits``, ``train_loss``, ``grad/<key>``,
``after_train/<key>``, ``eval_logits``) plus its config. Every tensor is compared with
``max|a-b| / max(max|b|, floor)`` where the floor for gradients is 1e-6 x the largest
gradient of the network (fixtures README): gradients that are zero in exact arithmetic
(a bias feeding a train-mode BN) hold only rounding noise on both sides.
"""
from __future__ import annotations

import numpy as np

import npsnn
from npsnn.ops.losses import cross_entropy_backward, cross_entropy_forward

TOL = 1e-8
# Gradients that are exactly zero in exact arithmetic: the token-mixer H/W projection
# biases feed a train-mode BN over that same axis, which subtracts any per-position
# constant. Both sides hold only rounding noise there (the fixtures show up to 5e-14 of
# the largest gradient, which is above the 1e-8 x 1e-6 floor), so for these tensors we
# check that both are noise: below NOISE x the largest gradient.
ZERO_GRAD_SUFFIXES = ("proj_h.1.bias", "proj_w.1.bias")
NOISE = 1e-12


def rel(a, b, floor=1e-12) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), floor))


def compare_case(ref, config, tol=TOL, fast=True) -> dict:
    """Run every comparison; returns {name: relative error}; asserts all < tol.
    fast: the fused twin (npsnn's default) or the plain model (``fast=False``)."""
    params = {k[len("param/"):]: ref[k] for k in ref.files if k.startswith("param/")}
    T = int(ref["T"])
    x, y = ref["x"], ref["y"]
    model = npsnn.build(config, dtype=np.float64, fast=fast)
    model.load_state_dict(params)
    errors = {}

    model.train()
    logits = model.forward(np.repeat(x[None], T, axis=0))
    loss, cache = cross_entropy_forward(logits, y)
    model.zero_grad()
    model.backward(cross_entropy_backward(cache))
    errors["train_logits"] = rel(logits, ref["train_logits"])
    errors["train_loss"] = rel(loss, ref["train_loss"])
    grads = model.named_grads()
    ref_grads = {k[len("grad/"):]: ref[k] for k in ref.files if k.startswith("grad/")}
    assert set(ref_grads) == set(grads), sorted(set(ref_grads) ^ set(grads))
    largest = max(np.abs(g).max() for g in ref_grads.values())
    for k, g in ref_grads.items():
        if k.endswith(ZERO_GRAD_SUFFIXES):
            noise = max(np.abs(grads[k]).max(), np.abs(g).max()) / largest
            assert noise < NOISE, f"grad/{k} should be rounding noise, is {noise:.1e} of the largest"
        else:
            errors["grad/" + k] = rel(grads[k], g, 1e-6 * largest)
    state = model.state_dict()
    for k in ref.files:
        if k.startswith("after_train/"):
            name = k[len("after_train/"):]
            errors[k] = rel(state[name], ref[k])

    model.load_state_dict(params)       # original running statistics
    model.eval()
    errors["eval_logits"] = rel(model.forward(np.repeat(x[None], T, axis=0)),
                                ref["eval_logits"])
    bad = {k: v for k, v in errors.items() if not v < tol}
    assert not bad, f"{len(bad)} tensors differ from the reference (tol {tol}): " + \
        ", ".join(f"{k}: {v:.2e}" for k, v in sorted(bad.items(), key=lambda kv: -kv[1])[:10])
    return errors
