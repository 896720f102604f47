"""LIF neuron: gradient checks of the BPTT backward, agreement with SpikingJelly, bad input.

Finite differences need a differentiable forward, so every check runs in smooth-spike mode
(``smooth=True``: the forward fires with the surrogate's primitive, whose derivative is
exactly what the backward uses). With ``detach_reset=True`` the backward treats the spike
inside the reset equation as a constant, so the perturbed forwards replay the reset spikes
of the unperturbed one (``reset_spikes=S0``); the check is then exact, not approximate.
"""
import itertools
import json

import numpy as np
import pytest

import npsnn
from conftest import need_fixture
from opchecks import _input, check_lif
from gradcheck import assert_grads
from npsnn.ops import lif as lif_mod
from npsnn.ops import surrogate as sur


COMBOS = list(itertools.product([True, False], [0.0, None, -0.3], [True, False],
                                ["sigmoid", "atan"]))


@pytest.mark.parametrize("decay_input,v_reset,detach_reset,surrogate", COMBOS)
def test_lif_gradcheck_every_combination(decay_input, v_reset, detach_reset, surrogate):
    errors = check_lif(dict(decay_input=decay_input, v_reset=v_reset,
                            detach_reset=detach_reset, surrogate=surrogate))
    assert errors["x"] < 1e-6


@pytest.mark.parametrize("options", [
    dict(tau=3.5, v_threshold=0.6),
    dict(tau=1.5, v_threshold=1.3, v_reset=None),
    dict(tau=4.0, v_reset=0.2, detach_reset=False, alpha=2.5),
    dict(surrogate="atan", alpha=5.0, decay_input=False, v_threshold=0.8),
    dict(surrogate="sigmoid", alpha=1.0, tau=1.2, v_reset=None, detach_reset=False),
], ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_lif_gradcheck_nondefault_options(options):
    check_lif(options, shape=(9, 4, 3), seed=1)


def test_lif_gradcheck_single_step_and_float32_dtype_kept():
    check_lif(dict(v_reset=None), shape=(1, 6))
    x = np.random.default_rng(0).normal(size=(6, 4, 3)).astype(np.float32)
    s, v, cache = lif_mod.lif_forward(x)
    dx = lif_mod.lif_backward(np.ones_like(s), cache)
    assert s.dtype == v.dtype == dx.dtype == np.float32


def test_smooth_spike_is_the_surrogate_primitive_and_its_derivative_matches():
    """The premise of the smooth-mode checks: g' is the derivative of g, for both."""
    xs = np.linspace(-3, 3, 61)
    for name, alpha in [("sigmoid", 4.0), ("atan", 2.0), ("sigmoid", 1.5), ("atan", 3.0)]:
        eps = 1e-6
        num = (sur.primitive(name, alpha, xs + eps) - sur.primitive(name, alpha, xs - eps)) / (2 * eps)
        np.testing.assert_allclose(sur.derivative(name, alpha, xs), num, rtol=1e-7, atol=1e-10)
    # explicit formulas from SPEC
    z = 4.0 * xs
    np.testing.assert_allclose(sur.primitive("sigmoid", 4.0, xs), 1 / (1 + np.exp(-z)), rtol=1e-10)
    np.testing.assert_allclose(sur.derivative("atan", 2.0, xs),
                               2.0 / 2 / (1 + (np.pi / 2 * 2.0 * xs) ** 2), rtol=1e-12)


ALL_OPTIONS = [dict(decay_input=di, v_reset=vr, detach_reset=dr, surrogate=sur, smooth=sm,
                    tau=tau, v_threshold=vth)
               for di, vr, dr, sur, sm, (tau, vth) in itertools.product(
                   [True, False], [0.0, None, -0.3], [True, False], ["sigmoid", "atan"],
                   [False, True], [(2.0, 1.0), (1.7, 0.8)])]


def test_fast_lif_equals_the_readable_reference_bit_for_bit():
    """lif_forward (fused, in-place) against lif_forward_reference (the equations one line
    each): identical spikes and membranes in float64, for all 96 option sets; the fast
    backward against the reference backward within rounding."""
    x, g = _input(seed=3)
    for options in ALL_OPTIONS:
        s, v, cache = lif_mod.lif_forward(x, **options)
        S, V, H = lif_mod.lif_forward_reference(x, **options)
        np.testing.assert_array_equal(s, S, err_msg=str(options))
        np.testing.assert_array_equal(v, V[-1], err_msg=str(options))
        dx = lif_mod.lif_backward(g, cache)
        ref = lif_mod.lif_backward_reference(g, x, **options)
        np.testing.assert_allclose(dx, ref, rtol=1e-13, atol=1e-14 * np.abs(ref).max(),
                                   err_msg=str(options))


@pytest.mark.parametrize("n_workers", [1, 2, 3])
def test_fast_lif_does_not_depend_on_how_neurons_are_sliced(monkeypatch, n_workers):
    """The fast path runs slices of neurons (CHUNK_BYTES) on worker threads: tiny slices
    over several threads give the same bits as one whole-array slice, forward (spikes,
    membrane, sg, k) and backward, in float64 and float32, with and without grad, for
    time-broadcast input (stage 0 of sMLPNet) too."""
    from npsnn import workers
    x, g = _input(seed=4)
    x = x.reshape(x.shape[0], 3, -1)
    g = g.reshape(x.shape)
    broadcast = np.broadcast_to(x[:1], x.shape)
    cases = [(x, g), (x.astype(np.float32), g.astype(np.float32)), (broadcast, g)]
    for options in ALL_OPTIONS[::5]:
        whole = []
        for xx, gg in cases:
            s, v, cache = lif_mod.lif_forward(xx, **options)
            whole.append((s, v, cache.sg, cache.k, lif_mod.lif_backward(gg, cache),
                          lif_mod.lif_forward(xx, need_grad=False, **options)[:2]))
        monkeypatch.setattr(lif_mod, "CHUNK_BYTES", 3 * x.dtype.itemsize)
        workers.set_workers(n_workers)
        try:
            for (xx, gg), expect in zip(cases, whole):
                s, v, cache = lif_mod.lif_forward(xx, **options)
                got = (s, v, cache.sg, cache.k, lif_mod.lif_backward(gg, cache),
                       lif_mod.lif_forward(xx, need_grad=False, **options)[:2])
                for a, b in zip(got[:5] + got[5], expect[:5] + expect[5]):
                    assert a.shape == b.shape and a.dtype == b.dtype
                    np.testing.assert_array_equal(a, b, err_msg=str(options))
        finally:
            workers.set_workers(1)
            monkeypatch.undo()


def test_reference_lif_is_the_spec_and_its_backward_passes_finite_differences():
    rng = np.random.default_rng(3)
    x = rng.normal(0.8, 1.0, size=(8, 20))
    for decay_input, v_reset, tau, vth in [(True, 0.0, 2.0, 1.0), (False, None, 3.0, 0.7),
                                           (True, -0.3, 1.7, 1.1), (False, 0.2, 2.5, 0.9)]:
        S, V, H = lif_mod.lif_forward_reference(x, tau=tau, v_threshold=vth, v_reset=v_reset,
                                                decay_input=decay_input)
        vr = 0.0 if v_reset is None else v_reset
        v_prev = np.vstack([np.full((1, 20), vr), V[:-1]])
        charge = v_prev + (x - (v_prev - vr)) / tau if decay_input else \
            v_prev - (v_prev - vr) / tau + x
        np.testing.assert_allclose(H, charge, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(S, (H >= vth).astype(float))
        reset = H - vth * S if v_reset is None else H * (1 - S) + vr * S
        np.testing.assert_allclose(V, reset, rtol=1e-12, atol=1e-12)
    for options in ALL_OPTIONS[::7]:
        x, g = _input(seed=5)
        options = dict(options, smooth=True)
        held = lif_mod.lif_forward_reference(x, **options)[0] if options["detach_reset"] \
            else None

        def loss():
            return float(np.sum(lif_mod.lif_forward_reference(x, reset_spikes=held,
                                                              **options)[0] * g))

        dx = lif_mod.lif_backward_reference(g, x, reset_spikes=held, **options)
        assert_grads(loss, {"x": (x, dx)})


def test_lif_layer_hold_reset_replays_the_recorded_spikes():
    rng = np.random.default_rng(0)
    x = rng.normal(0.9, 1.0, size=(6, 10))
    lif = npsnn.LIF(smooth=True)
    lif.hold_reset()
    s0 = lif.forward(x)
    s0_ref, _, _ = lif_mod.lif_forward(x, smooth=True)
    np.testing.assert_array_equal(s0, s0_ref)
    x2 = x + 0.3
    s_held = lif.forward(x2)
    s_expect, _, _ = lif_mod.lif_forward(x2, smooth=True, reset_spikes=s0)
    np.testing.assert_array_equal(s_held, s_expect)
    s_free, _, _ = lif_mod.lif_forward(x2, smooth=True)
    assert not np.array_equal(s_held, s_free)        # holding really changes the forward
    lif.release_reset()
    np.testing.assert_array_equal(lif.forward(x2), s_free)


def test_lif_layer_backward_and_firing_rate():
    rng = np.random.default_rng(0)
    x = rng.normal(0.9, 1.0, size=(6, 4, 5))
    g = rng.normal(size=x.shape)
    lif = npsnn.LIF(surrogate="atan", v_reset=None)
    s = lif.forward(x)
    s_ref, v_ref, cache = lif_mod.lif_forward(x, surrogate="atan", v_reset=None)
    np.testing.assert_array_equal(s, s_ref)
    np.testing.assert_array_equal(lif.v, v_ref)
    np.testing.assert_allclose(lif.firing_rate, s_ref.reshape(6, -1).mean(1))
    np.testing.assert_array_equal(lif.backward(g), lif_mod.lif_backward(g, cache))
    with pytest.raises(RuntimeError, match="LIF.backward called before forward"):
        lif.backward(g)                                # the cache is consumed


# -- agreement with SpikingJelly ------------------------------------------------------------

def _fixture_cases():
    path = need_fixture("lif.npz")
    meta = json.loads(path.with_suffix(".json").read_text())
    return path, meta


def _parse_case(case: str) -> dict:
    out = {}
    for item in case.split(","):
        key, value = item.split("=")
        out[key] = {"True": True, "False": False, "None": None}.get(value, value)
    if out["v_reset"] is not None:
        out["v_reset"] = float(out["v_reset"])
    return out


def _rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def test_lif_matches_spikingjelly_fixture():
    path, meta = _fixture_cases()
    assert len(meta["cases"]) == 16
    with np.load(path) as ref:
        for case in meta["cases"]:
            opts = _parse_case(case)
            lif = npsnn.LIF(tau=meta["tau"], v_threshold=meta["v_threshold"], **opts)
            x = ref[f"{case}|x"]
            assert x.dtype == np.float64 and x.shape == (meta["T"], meta["N"])
            spikes = lif.forward(x)
            np.testing.assert_array_equal(spikes, ref[f"{case}|spikes"], err_msg=case)
            assert 0 < spikes.mean() < 1, case        # the case exercises both branches
            assert _rel(lif.v, ref[f"{case}|v_final"]) < 1e-9, case
            dx = lif.backward(ref[f"{case}|grad_out"])
            assert _rel(dx, ref[f"{case}|grad_x"]) < 1e-9, case
            # the readable reference agrees with SpikingJelly as well
            options = dict(lif.options)
            S, V, _ = lif_mod.lif_forward_reference(x, **options)
            np.testing.assert_array_equal(S, ref[f"{case}|spikes"], err_msg=case)
            assert _rel(V[-1], ref[f"{case}|v_final"]) < 1e-9, case
            dx = lif_mod.lif_backward_reference(ref[f"{case}|grad_out"], x, **options)
            assert _rel(dx, ref[f"{case}|grad_x"]) < 1e-9, case


def test_detach_reset_changes_the_gradient_in_the_fixture():
    """Guard against a fixture comparison that would pass whatever detach_reset does."""
    path, meta = _fixture_cases()
    case_t = "decay_input=True,v_reset=0.0,detach_reset=True,surrogate=sigmoid"
    case_f = case_t.replace("detach_reset=True", "detach_reset=False")
    with np.load(path) as ref:
        assert _rel(ref[f"{case_t}|grad_x"], ref[f"{case_f}|grad_x"]) > 1e-3


# -- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,match", [
    (dict(tau=0.0), r"LIF expected tau > 0.*got 0.0"),
    (dict(tau=-2.0), r"LIF expected tau > 0.*got -2.0"),
    (dict(tau=float("nan")), r"LIF expected tau > 0"),
    (dict(v_threshold=float("inf")), r"LIF expected a finite v_threshold, got inf"),
    (dict(v_reset=float("nan")), r"LIF expected v_reset to be a number .* or None"),
    (dict(surrogate="relu"), r"LIF expected surrogate to be one of \['atan', 'sigmoid'\], got 'relu'"),
    (dict(alpha=0.0), r"LIF expected alpha > 0 .*got 0.0"),
    (dict(alpha=-1.0), r"LIF expected alpha > 0"),
])
def test_lif_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        npsnn.LIF(**kwargs)
    with pytest.raises(ValueError, match=match):
        lif_mod.lif_forward(np.zeros((4, 3)), **kwargs)


def test_lif_bad_inputs():
    with pytest.raises(TypeError, match=r"LIF expected x with a floating dtype .*got int64"):
        npsnn.LIF().forward(np.zeros((4, 3), dtype=np.int64))
    with pytest.raises(TypeError, match=r"LIF expected x to be a numpy.ndarray, got list"):
        npsnn.LIF().forward([[0.5, 1.5]])
    with pytest.raises(ValueError, match=r"LIF expected x of shape \(T, \.\.\.\) with T >= 1, got \(0, 3\)"):
        npsnn.LIF().forward(np.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"LIF expected x of shape \(T, \.\.\.\) .*got \(\)"):
        npsnn.LIF().forward(np.zeros(()))
    with pytest.raises(ValueError, match=r"LIF expected reset_spikes of shape \(4, 3\).*got \(4, 2\)"):
        lif_mod.lif_forward(np.zeros((4, 3)), reset_spikes=np.zeros((4, 2)))


def test_lif_bad_backward():
    lif = npsnn.LIF()
    with pytest.raises(RuntimeError, match=r"LIF.backward called before forward"):
        lif.backward(np.zeros((4, 3)))
    lif.forward(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"LIF.backward expected dspikes of shape \(4, 3\).*got \(3, 4\)"):
        lif.backward(np.zeros((3, 4)))
    lif.eval()
    lif.forward(np.ones((4, 3)))                         # eval mode keeps no cache
    with pytest.raises(RuntimeError, match=r"LIF.backward called before forward"):
        lif.backward(np.zeros((4, 3)))
