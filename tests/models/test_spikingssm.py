"""SpikingSSM: the whole network against the independent PyTorch model of
tests/generators/make_spikingssm_reference.py (BPTT, SDN and SLTT modes, every norm
placement), whole-network finite differences in smooth-spike mode, the optimizer groups of
the official training, and config / input checks."""
import json

import numpy as np
import pytest

from conftest import ROOT
from gradcheck import assert_grads
from npsnn.models.spikingssm import SpikingSSM, resolve
from npsnn.ops.losses import cross_entropy_backward, cross_entropy_forward

REFERENCE = ROOT / "tests" / "data" / "reference_spikingssm"
CASES = ("bptt_official", "sdn_official", "bptt_post_shared_causal", "sltt_pre")


def _load_case(name):
    meta = json.loads((REFERENCE / f"{name}.json").read_text())
    with np.load(REFERENCE / f"{name}.npz") as z:
        ref = {k: z[k] for k in z.files}
    model = SpikingSSM(dtype=np.float64, **meta["config"])
    model.load_state_dict({k[6:]: v for k, v in ref.items() if k.startswith("param/")})
    return model, ref


def _rel(a, b, floor=0.0):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), floor, 1e-300))


@pytest.mark.parametrize("name", CASES)
def test_matches_independent_pytorch_model(name):
    """float64 logits, loss and every parameter gradient, within 1e-8 relative."""
    model, ref = _load_case(name)
    logits = model.forward(ref["x"])
    rates = model.firing_rates()
    assert len(rates) == model.config["n_layers"]
    assert all(0 < r < 1 for r in rates.values()), rates           # real spikes, both values
    loss, cache = cross_entropy_forward(logits[None], ref["y"])
    model.zero_grad()
    model.backward(cross_entropy_backward(cache)[0])
    assert _rel(logits, ref["logits"]) < 1e-10
    assert abs(loss - float(ref["loss"])) < 1e-12
    grads = model.named_grads()
    ref_grads = {k[5:]: v for k, v in ref.items() if k.startswith("grad/")}
    assert set(grads) == set(ref_grads)
    floor = 1e-6 * max(np.abs(g).max() for g in ref_grads.values())
    for k, g in ref_grads.items():
        assert _rel(grads[k], g, floor) < 1e-8, k


def test_the_reference_cases_depend_on_the_neuron_mode():
    """Guard: the SDN case run with the exact recurrence gives other logits and gradients,
    so the agreement above really checks the SDN path."""
    model, ref = _load_case("sdn_official")
    sdn_logits = model.forward(ref["x"])
    config = dict(model.config, neuron="bptt")
    exact = SpikingSSM(dtype=np.float64, **config)
    exact.load_state_dict(model.state_dict())
    assert _rel(exact.forward(ref["x"]), sdn_logits) > 1e-6


TINY = dict(d_model=4, n_layers=2, d_state=4, dropout=0.0, num_classes=3, smooth_spikes=True,
            seq_len=16)


@pytest.mark.parametrize("neuron,norm,extra", [
    ("bptt", "none", {}), ("sltt", "post", {}), ("sdn", "pre", {}),
    ("bptt", "post", dict(bidirectional=False, shared_vth=True)),
    ("sdn", "none", dict(learnable_vth=False, d_input=2)),
])
def test_whole_network_finite_differences(neuron, norm, extra):
    cfg = dict(TINY, neuron=neuron, norm=norm, **extra)
    model = SpikingSSM(dtype=np.float64, seed=1, **cfg)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, cfg.get("d_input", 1), 16))
    g = rng.normal(size=(2, 3))
    model.hold_neurons()
    model.forward(x)
    model.zero_grad()
    model.backward(g)
    grads = model.named_grads()
    pairs = {k: (p, grads[k]) for k, p in model.named_parameters()}
    # eps 1e-4: dt A is small (dt >= 0.001), so the loss moves little with log_A_real and
    # A_imag, and a smaller step drowns that movement in rounding (the error falls as 1/eps)
    assert_grads(lambda: float(np.sum(model.forward(x) * g)), pairs, max_checks=8, eps=1e-4)


def test_float32_training_interface_and_dropout():
    model = SpikingSSM(d_model=8, n_layers=2, d_state=4, dropout=0.25, neuron="bptt", seed=0,
                       seq_len=32)
    x = np.random.default_rng(0).normal(size=(3, 1, 32)).astype(np.float32)
    logits = model.forward_repeated(x, T=4)
    assert logits.shape == (1, 3, 10) and logits.dtype == np.float32
    model.backward(np.ones_like(logits))
    grads = model.named_grads()
    assert all(g.dtype == np.float32 and np.isfinite(g).all() for g in grads.values())
    assert np.abs(grads["s4_layers.0.kernel.log_dt"]).sum() > 0
    # dropout draws new masks each training forward, none in eval mode
    assert not np.array_equal(model.forward(x), model.forward(x))
    model.eval()
    np.testing.assert_array_equal(model.forward(x), model.forward(x))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        SpikingSSM(d_model=4, n_layers=1, d_state=2, neuron="bptt").backward(np.ones((1, 10)))


def test_parameter_names_and_optimizer_groups_follow_the_official_code():
    model = SpikingSSM(d_model=8, n_layers=2, d_state=4, neuron="bptt", norm="post")
    names = dict(model.named_parameters())
    assert names["s4_layers.1.kernel.C"].shape == (2, 8, 2, 2)
    assert names["s4_layers.0.D"].shape == (1, 8) and names["s4_layers.0.ln_vth"].shape == (8, 1)
    assert names["s4_layers.0.output_linear.0.weight"].shape == (16, 8, 1)
    assert names["encoder.weight"].shape == (8, 1) and names["decoder.weight"].shape == (10, 8)
    options = model.optimizer_options()
    for i in range(2):
        for p in ("log_dt", "log_A_real", "A_imag"):
            assert options[f"s4_layers.{i}.kernel.{p}"] == {"lr": 0.001, "weight_decay": 0.0}
        assert options[f"s4_layers.{i}.output_linear.0.bias"] == {"weight_decay": 0.0}
        assert options[f"norms.{i}.weight"] == {"weight_decay": 0.0}
        for p in ("D", "ln_vth", "kernel.C", "output_linear.0.weight"):
            assert f"s4_layers.{i}.{p}" not in options
    assert not any(k.startswith(("encoder", "decoder")) for k in options)
    assert not any(k.startswith("norms") for k in dict(SpikingSSM(
        d_model=8, n_layers=1, d_state=4, neuron="bptt").named_parameters()))   # norm none


def test_sdn_mode_uses_the_shipped_network_and_refuses_a_mismatched_tau():
    model = SpikingSSM(d_model=4, n_layers=1, d_state=4)
    assert model.config["neuron"] == "sdn" and model.sdn.meta["tau"] == 0.125
    with pytest.raises(ValueError, match=r"ships a trained SDN for tau in \[0.125\], not 0.2"):
        SpikingSSM(d_model=4, n_layers=1, d_state=4, tau=0.2)


@pytest.mark.parametrize("config,match", [
    (dict(d_state=5), "'d_state' must be even"),
    (dict(d_model=0), "'d_model' must be a positive integer"),
    (dict(neuron="lif"), r"'neuron' must be one of \['bptt', 'sltt', 'sdn'\]"),
    (dict(norm="batch"), r"'norm' must be one of \['none', 'post', 'pre'\]"),
    (dict(dropout=1.0), r"'dropout' must be in \[0, 1\)"),
    (dict(tau=2.0), r"'tau' must be in \[0, 1\]"),
    (dict(bidirectional="yes"), "'bidirectional' must be true or false"),
    (dict(dt_min=0.1, dt_max=0.01), "dt_min <= dt_max"),
    (dict(sdn=3), "'sdn' must be null"),
    (dict(layers=6), "unknown SpikingSSM config keys"),
    (dict(model="smlpnet"), "expected 'spikingssm'"),
])
def test_bad_configs(config, match):
    with pytest.raises(ValueError, match=match):
        resolve(config)


def test_wrong_input_is_named():
    model = SpikingSSM(d_model=4, n_layers=1, d_state=4, neuron="bptt")
    for shape in [(2, 1024), (2, 1, 1000), (2, 3, 1024)]:
        with pytest.raises(ValueError, match=r"SpikingSSM expected x of shape \(B, 1, 1024\) "
                                             r"\(d_input, seq_len\), got"):
            model.forward(np.zeros(shape, np.float32))
    with pytest.raises(TypeError, match="built with dtype float32 but x has dtype float64"):
        model.forward(np.zeros((2, 1, 1024)))
