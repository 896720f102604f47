"""The SpikingSSM neuron: the recurrence against the official generator's loop written out,
the piecewise-quadratic surrogate, finite differences for the three training modes in
smooth-spike mode (holding what each backward treats as constant), the BPTT/SLTT/SDN
relations, and bad input."""
import numpy as np
import pytest

from gradcheck import assert_grads
from npsnn.ops.ssm_neuron import (MODES, SSMNeuron, hard_reset_backward, hard_reset_forward,
                                  membrane_spike_backward, membrane_spike_forward,
                                  pq_derivative, pq_primitive, spike_accuracy)


def _official_loop(x, tau):
    """shenshuaijie/SDN generate.py ``hardreset``, per step: u = tau u; mem = u; u = u + x;
    s = (u >= 1); u = u (1 - s)."""
    u = np.zeros(x.shape[:-1])
    spikes, mems = [], []
    for t in range(x.shape[-1]):
        u = tau * u
        mems.append(u)
        u = u + x[..., t]
        s = (u - 1 >= 0).astype(float)
        spikes.append(s)
        u = u * (1 - s)
    return np.stack(spikes, -1), np.stack(mems, -1)


@pytest.mark.parametrize("tau,shape", [(0.125, (3, 4, 50)), (0.2, (7, 33)), (1.0, (2, 9)),
                                       (0.0, (5, 6))])
def test_recurrence_is_the_official_loop_bit_for_bit(tau, shape):
    x = np.random.default_rng(1).normal(0.3, 1.0, shape)
    S, M, _ = hard_reset_forward(x, tau, need_membrane=True)
    s_ref, m_ref = _official_loop(x, tau)
    np.testing.assert_array_equal(S, s_ref)
    np.testing.assert_array_equal(M, m_ref)
    assert 0.05 < S.mean() < 0.95
    S32, _, _ = hard_reset_forward(x.astype(np.float32), tau)
    assert S32.dtype == np.float32


def test_piecewise_quadratic_surrogate():
    z = np.linspace(-2, 2, 81)
    np.testing.assert_array_equal(pq_derivative(z), np.maximum(0, 1 - np.abs(z)))
    g = pq_primitive(z)
    assert g[0] == 0 and g[-1] == 1 and g[40] == 0.5 and np.all(np.diff(g) >= 0)
    eps = 1e-6
    num = (pq_primitive(z + eps) - pq_primitive(z - eps)) / (2 * eps)
    np.testing.assert_allclose(num, pq_derivative(z), atol=1e-6)


def _fake_sdn(x):
    """A deterministic stand-in for the SDN's prediction (any function of x will do)."""
    return 0.4 * np.tanh(np.cumsum(x, axis=-1) * 0.1)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("tau", [0.125, 0.6])
def test_every_mode_passes_finite_differences_in_smooth_mode(mode, tau):
    rng = np.random.default_rng(3)
    x, g = rng.normal(0.6, 1.0, (2, 3, 21)), rng.normal(size=(2, 3, 21))
    neuron = SSMNeuron(mode, tau, predictor=_fake_sdn, smooth=True)
    neuron.hold()
    neuron.forward(x)
    dx = neuron.backward(g)
    assert_grads(lambda: float(np.sum(neuron.forward(x) * g)), {"x": (x, dx)})


def test_the_three_modes_relate_as_documented():
    rng = np.random.default_rng(4)
    x, g = rng.normal(0.5, 1.0, (4, 5, 40)), rng.normal(size=(4, 5, 40))
    spikes = {}
    grads = {}
    for mode in MODES:
        exact_membrane = hard_reset_forward(x, 0.125, need_membrane=True)[1]
        neuron = SSMNeuron(mode, 0.125, predictor=lambda _: exact_membrane)
        spikes[mode] = neuron.forward(x)
        grads[mode] = neuron.backward(g)
    # the same forward (an SDN that predicted perfectly would be exact) ...
    np.testing.assert_array_equal(spikes["bptt"], spikes["sltt"])
    np.testing.assert_array_equal(spikes["bptt"], spikes["sdn"])
    # ... SLTT is SDN with the exact membrane; BPTT adds the path through time
    np.testing.assert_array_equal(grads["sltt"], grads["sdn"])
    assert np.abs(grads["bptt"] - grads["sltt"]).max() > 1e-3
    # BPTT's extra term by hand: dv[l] = ds g' + dv[l+1] tau (1 - s)
    S, _, cache = hard_reset_forward(x, 0.125)
    sg = cache[0].T.reshape(x.shape)                      # (L, N) -> (..., L)
    dv = np.zeros_like(x)
    later = np.zeros(x.shape[:-1])                        # dv[l+1]
    for t in range(x.shape[-1] - 1, -1, -1):
        dv[..., t] = g[..., t] * sg[..., t] + later * 0.125 * (1 - S[..., t])
        later = dv[..., t]
    np.testing.assert_allclose(grads["bptt"], dv, rtol=1e-13, atol=1e-15)


def test_hold_replays_and_release_forgets():
    rng = np.random.default_rng(5)
    x = rng.normal(0.6, 1.0, (3, 30))
    for mode in MODES:
        neuron = SSMNeuron(mode, predictor=_fake_sdn, smooth=True)
        neuron.hold()
        s0 = neuron.forward(x)
        s_held = neuron.forward(x + 0.2)
        neuron.release()
        s_free = neuron.forward(x + 0.2)
        np.testing.assert_array_equal(neuron.forward(x), s0)
        assert not np.array_equal(s_held, s_free), mode   # holding changes the forward


def test_layer_eval_mode_keeps_no_cache_and_reports_the_firing_rate():
    x = np.random.default_rng(6).normal(0.5, 1, (2, 3, 16)).astype(np.float32)
    neuron = SSMNeuron("bptt").eval()
    s = neuron.forward(x)
    assert neuron.firing_rate == pytest.approx(float(s.mean()))
    with pytest.raises(RuntimeError, match="SSMNeuron.backward called before forward"):
        neuron.backward(s)
    assert spike_accuracy(s, s) == 1.0 and spike_accuracy(s, 1 - s) == 0.0


def test_bad_input():
    with pytest.raises(ValueError, match=r"mode to be one of \['bptt', 'sdn', 'sltt'\]"):
        SSMNeuron("lif")
    with pytest.raises(ValueError, match="needs a predictor"):
        SSMNeuron("sdn")
    with pytest.raises(ValueError, match=r"decay tau in \[0, 1\]"):
        SSMNeuron("bptt", tau=1.5)
    with pytest.raises(ValueError, match=r"x of shape \(\.\.\., L\) with L >= 1"):
        hard_reset_forward(np.zeros((3, 0)))
    with pytest.raises(TypeError, match="floating dtype"):
        hard_reset_forward(np.zeros((3, 4), np.int64))
    with pytest.raises(ValueError, match=r"membrane of shape \(2, 5\)"):
        membrane_spike_forward(np.zeros((2, 5)), np.zeros((2, 4)))
    _, _, cache = hard_reset_forward(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"dspikes of shape \(2, 5\)"):
        hard_reset_backward(np.zeros((5, 2)), cache)
    _, cache = membrane_spike_forward(np.zeros((2, 5)), np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"dspikes of shape \(2, 5\)"):
        membrane_spike_backward(np.zeros((5, 2)), cache)
