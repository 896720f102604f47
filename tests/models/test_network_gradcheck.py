"""The whole sMLPNet backward against finite differences, and proof that the checks fail.

Network check: a tiny float64 model in train mode with every LIF in smooth-spike mode
(the spike is the surrogate's primitive, so the network is differentiable and the
backward is its exact derivative) and the reset spikes held at their unperturbed values
(``detach_reset=True`` makes the backward treat them as constants). BN running statistics
change at every forward, which does not matter: train-mode outputs use batch statistics.
Sampled coordinates of *every* parameter tensor are compared with central differences.
"""
import numpy as np
import pytest

import npsnn
from gradcheck import TOL, assert_grads, numeric_grad, rel_error
from npsnn.ops import batchnorm as bn_mod
from npsnn.ops import axis_projection as ap_mod
from npsnn.ops import conv as conv_mod
from npsnn.ops import lif as lif_mod
from npsnn.ops import linear as linear_mod
from npsnn.ops import losses
from opchecks import check_axis_projection, check_bn, check_conv, check_linear, check_lif

TINY = dict(dim=6, alpha=2, num_classes=3, patch_size=4, image_size=16, depths=[1, 1])
# Biases that feed a train-mode BN over the same axis: zero gradient in exact arithmetic,
# rounding noise on both sides, so they are compared against the network's gradient scale.
ZERO_GRAD_SUFFIXES = ("proj_h.1.bias", "proj_w.1.bias")
SAMPLES = 6
# Central differences of a loss of size ~1 carry absolute noise ~1e-10 (rounding 1e-16 / eps
# 1e-6); the floor (a fraction of the network's largest gradient) keeps that noise from
# failing tensors with small gradients. Image 16, not 8: with image 8 stage 1 is a 1x1 grid,
# where the axis projections are a single scalar in front of a BN (scale-invariant up to
# eps, gradient ~1e-5 of the largest, i.e. pure noise level) and the PatchCell's 3x3 convs
# see only padding outside their centre tap.
FLOOR = 1e-6


def _sample(grad, k, rng):
    """Half the coordinates with the largest analytic gradient (so a tensor whose gradient
    is mostly exactly zero, like 3x3 taps that only ever see padding, is not checked only
    where both sides are 0), half uniformly at random among the others."""
    flat = np.abs(grad).reshape(-1)
    top = np.argsort(flat)[::-1][:(k + 1) // 2]
    rest = np.setdiff1d(np.arange(flat.size), top)
    extra = rng.choice(rest, size=min(k - top.size, rest.size), replace=False)
    return np.concatenate([top, extra])


def _smooth_held_model(config, seed=0, fast=True):
    # the config's smooth-spike option: every LIF fires with the surrogate's primitive
    config = dict(config, neuron=dict(config.get("neuron", {}), smooth=True))
    model = npsnn.build(config, dtype=np.float64, seed=seed, fast=fast)
    lifs = [m for _, m in model.named_modules() if isinstance(m, npsnn.LIF)]
    assert lifs and all(lif.options["smooth"] for lif in lifs)
    for lif in lifs:
        lif.hold_reset()                     # record at the next forward, replay afterwards
    # BN affine parameters away from (1, 0) so their gradients are generic
    rng = np.random.default_rng(seed + 100)
    for name, p in model.named_parameters():
        if ".running_" not in name and p.ndim == 1 and "weight" in name:
            p[...] = 1 + 0.3 * rng.normal(size=p.shape)
    return model.train(), lifs


def network_gradcheck(config, seed=0, T=3, B=3, samples=SAMPLES, fast=True):
    """-> {param name: error}; asserts every error < TOL."""
    model, lifs = _smooth_held_model(config, seed, fast)
    rng = np.random.default_rng(seed)
    s = config["image_size"]
    x = rng.normal(size=(T, B, 3, s, s)) * 1.5
    y = rng.integers(0, config["num_classes"], B)

    def loss():
        return losses.cross_entropy_forward(model.forward(x), y, label_smoothing=0.1)[0]

    logits = model.forward(x)                    # unperturbed: records the reset spikes
    _, cache = losses.cross_entropy_forward(logits, y, label_smoothing=0.1)
    model.zero_grad()
    model.backward(losses.cross_entropy_backward(cache))
    grads = {k: g.copy() for k, g in model.named_grads().items()}
    params = dict(model.named_parameters())
    assert set(grads) == set(params)
    # the smooth network really spikes somewhere in between 0 and 1
    rates = [float(l.firing_rate.mean()) for l in lifs]
    assert 0.02 < np.mean(rates) < 0.98, rates

    largest = max(np.abs(g).max() for g in grads.values())
    pick = np.random.default_rng(seed + 1)
    errors = {}
    for name, p in params.items():
        idx = _sample(grads[name], samples, pick)
        num = numeric_grad(loss, p, eps=1e-6, indices=idx)
        if name.endswith(ZERO_GRAD_SUFFIXES):
            assert np.abs(grads[name]).max() < 1e-12 * largest, name
            errors[name] = rel_error(grads[name], num, floor=largest)
        else:
            errors[name] = rel_error(grads[name], num, floor=FLOOR * largest)
    for lif in lifs:
        lif.release_reset()
    bad = {k: v for k, v in errors.items() if not v < TOL}
    assert not bad, f"network gradient check failed (tol {TOL}): {bad}"
    return errors


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain-model"])
@pytest.mark.parametrize("spe", [True, False], ids=["spe", "no-spe"])
def test_network_gradcheck_every_parameter(spe, fast):
    config = dict(TINY, spe=spe)
    errors = network_gradcheck(config, fast=fast)
    n_params = len(list(npsnn.build(config, dtype=np.float64).named_parameters()))
    assert len(errors) == n_params
    # every kind of layer is covered
    for part in ("to_patch_embedding.0.0.weight", "token_mix.0.proj_h.1.weight",
                 "token_mix.1.fuse.0.weight", "channel_mix.1.1.net.0.bias",
                 "channel_mix.0.1.net.4.weight", "batch_norm.bias", "mlp_head.1.weight"):
        assert part in errors, part
    if spe:
        assert "to_patch_embedding.1.node2_node3.0.weight" in errors


def test_network_gradcheck_deeper_stage():
    """Two blocks in a stage: h is re-used by both, its gradient accumulates."""
    network_gradcheck(dict(TINY, depths=[2, 1], spe=True), seed=1, T=2, B=2, samples=4)


# -- the checks can fail ---------------------------------------------------------------------

def _scaled(fn, index, factor=1.001):
    """Wrap a backward so that its output ``index`` is scaled by ``factor``."""
    def wrapper(*args, **kwargs):
        out = fn(*args, **kwargs)
        if index is None:
            return out * factor
        out = list(out)
        out[index] = out[index] * factor
        return tuple(out)
    return wrapper


def _no_carry(fn):
    """Wrap lif_forward so that the backward drops the BPTT carry dV[t] -> H[t+1]."""
    def wrapper(*args, **kwargs):
        s, v, cache = fn(*args, **kwargs)
        if cache is not None:
            cache.decay = 0.0
        return s, v, cache
    return wrapper


SABOTAGE = {
    "lif: BPTT carry dropped": (
        lif_mod, "lif_forward", _no_carry, lambda: check_lif(dict(detach_reset=False))),
    "lif: dx x1.001": (
        lif_mod, "lif_backward", lambda f: _scaled(f, None), lambda: check_lif({})),
    "linear: dW x1.001": (
        linear_mod, "linear_backward", lambda f: _scaled(f, 1),
        lambda: check_linear((3, 2), 5, 4, True)),
    "linear: db x1.001": (
        linear_mod, "linear_backward", lambda f: _scaled(f, 2),
        lambda: check_linear((3,), 5, 4, True)),
    "conv 3x3/s2/p1: dx x1.001": (
        conv_mod, "conv2d_backward", lambda f: _scaled(f, 0),
        lambda: check_conv("3x3s2p1", "NHWC", False)),
    "conv 4x4/s4: dW x1.001": (
        conv_mod, "conv2d_backward", lambda f: _scaled(f, 1),
        lambda: check_conv("4x4s4", "NCHW", True)),
    "batchnorm train: dx x1.001": (
        bn_mod, "batchnorm_backward", lambda f: _scaled(f, 0),
        lambda: check_bn((3, 2, 5, 4), 2, True)),
    "batchnorm eval: dgamma x1.001": (
        bn_mod, "batchnorm_backward", lambda f: _scaled(f, 1),
        lambda: check_bn((3, 2, 5, 4), 2, False)),
    "axis projection: db x1.001": (
        ap_mod, "axis_projection_backward", lambda f: _scaled(f, 2),
        lambda: check_axis_projection("H of (T,B,H,W,C)", True)),
    "network: one LIF carry dropped": (
        lif_mod, "lif_forward", _no_carry,
        lambda: network_gradcheck(dict(TINY, spe=True), samples=2)),
    "network: BN dgamma x1.001": (
        bn_mod, "batchnorm_backward", lambda f: _scaled(f, 1),
        lambda: network_gradcheck(dict(TINY, spe=False), samples=2)),
}


@pytest.mark.parametrize("case", sorted(SABOTAGE))
def test_gradient_checks_catch_a_slightly_wrong_backward(case, monkeypatch):
    module, attr, breaker, run_check = SABOTAGE[case]
    run_check()                                          # passes as written ...
    monkeypatch.setattr(module, attr, breaker(getattr(module, attr)))
    with pytest.raises(AssertionError, match="gradient check failed"):
        run_check()                                      # ... and fails when broken


def test_loss_gradient_check_catches_a_wrong_scale():
    logits = np.random.default_rng(0).normal(size=(3, 4, 5))
    y = np.array([0, 1, 2, 4])
    _, cache = losses.cross_entropy_forward(logits, y)
    d = losses.cross_entropy_backward(cache)

    def loss():
        return losses.cross_entropy_forward(logits, y)[0]

    assert_grads(loss, {"logits": (logits, d)})
    with pytest.raises(AssertionError, match="gradient check failed"):
        assert_grads(loss, {"logits": (logits, d * 1.001)})
    with pytest.raises(AssertionError, match="gradient check failed"):
        assert_grads(loss, {"logits": (logits, d * logits.shape[0])})   # sum over t, not mean
