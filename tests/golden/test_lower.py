"""Lowering a float sMLPNet (npsnn.golden.lower): BN folds, LIF taps, setters."""
import numpy as np
import pytest

from golden_models import images, tiny_model
from npsnn.golden.convert import CIFAR_MEAN, CIFAR_STD, calibrate
from npsnn.golden.lower import bn_affine, lower
from npsnn.golden.network import OP_TYPES
from npsnn.golden.terms import TERM_KINDS
from npsnn.ops.lif import LIF


@pytest.fixture(params=[True, False], ids=["spe", "plain"])
def model(request):
    return tiny_model(spe=request.param)


def test_bn_fold_is_gamma_over_sqrt_var_plus_eps(model):
    """The one BN fold (ops.batchnorm.batchnorm_affine) on float64 copies gives exactly
    g = w / sqrt(rv + eps), c = b - rm g."""
    bn = model.channel_mix[0].net[4]
    w, b = (bn.params[k].astype(np.float64) for k in ("weight", "bias"))
    rm, rv = (bn.buffers[k].astype(np.float64) for k in ("running_mean", "running_var"))
    g, c = bn_affine(bn)
    assert g.dtype == c.dtype == np.float64
    assert np.array_equal(g, w / np.sqrt(rv + bn.eps)) and np.array_equal(c, b - rm * g)


def test_graph_uses_known_ops_and_taps_every_neuron_once(model):
    ops = lower(model)
    assert {op["op"] for op in ops} <= set(OP_TYPES)
    assert {op["kind"] for op in ops if op["op"] == "term"} <= set(TERM_KINDS)
    taps = [id(op["_lif"]) for op in ops if op["op"] == "lif"]
    lifs = [id(m) for _, m in model.named_modules() if isinstance(m, LIF)]
    assert sorted(taps) == sorted(lifs)          # calibration records every LIF, once
    names = [op["name"] for op in ops]
    assert len(set(names)) == len(names)
    produced = {"input"}
    for op in ops:                               # every op reads what came before it
        srcs = op["src"] if isinstance(op["src"], list) else [op["src"]]
        assert set(srcs) <= produced, op["name"]
        produced.add(op["name"])


def test_setters_write_what_lowering_reads_back(model):
    """``_set(W)`` makes the next lowering give ``_w == W``; ``_set_token_gain(g)`` gives
    the token gain g. These are what snapping relies on."""
    rng = np.random.default_rng(0)
    targets = {}
    for op in lower(model):
        if "_set" in op:
            w = op["_shared"] if "_shared" in op else op["_w"]
            targets[op["name"]] = w * rng.uniform(0.5, 1.5, w.shape)
            op["_set"](targets[op["name"]])
        if "_set_token_gain" in op:
            targets[op["name"] + ".gain"] = -op["_token_gain"] * 2.0
            op["_set_token_gain"](targets[op["name"] + ".gain"])
    again = {op["name"]: op for op in lower(model)}
    assert len(targets) > 10
    for name, target in targets.items():
        if name.endswith(".gain"):
            got = again[name[:-len(".gain")]]["_token_gain"]
        else:
            op = again[name]
            got = op["_shared"] if "_shared" in op else op["_w"]
        np.testing.assert_allclose(got, target, rtol=1e-12, atol=1e-15, err_msg=name)


@pytest.mark.parametrize("spe", [True, False], ids=["spe", "plain"])
def test_calibration_records_every_lif_of_the_plain_and_the_fast_model(spe):
    """Calibration wraps each tapped LIF's forward: every LIF must run its own forward in
    eval mode, in the plain model and in its fused twin, and both see the same currents."""
    x = images(4, seed=2)
    maxima = [calibrate(tiny_model(spe=spe, fast=fast), x, 2, CIFAR_MEAN, CIFAR_STD)
              for fast in (False, True)]
    names = [op["name"] for op in lower(tiny_model(spe=spe)) if op["op"] == "lif"]
    for m in maxima:
        assert list(m) == names and min(m.values()) > 0, m
    for name in names:
        np.testing.assert_allclose(maxima[1][name], maxima[0][name], rtol=1e-9, err_msg=name)
