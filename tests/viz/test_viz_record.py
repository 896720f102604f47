"""npsnn.viz.record: per-layer spikes and membranes of one forward, without changing it."""
import numpy as np
import pytest

import npsnn
from npsnn.ops.lif import LIF
from npsnn.viz import record

TINY = dict(dim=12, depths=[1, 1], patch_size=4, image_size=16, num_classes=5, alpha=2,
            spe=True)


@pytest.fixture
def model():
    return npsnn.build(TINY, dtype=np.float64, seed=0)


@pytest.fixture
def images():
    return np.random.default_rng(0).normal(size=(6, 3, 16, 16))


def lif_paths(model):
    return [name for name, m in model.named_modules() if isinstance(m, LIF)]


def test_recording_changes_nothing_and_sees_every_lif_in_depth_order(model, images):
    model.eval()
    plain = model.forward_repeated(images, 3)
    rates_plain = model.firing_rates()
    with record(model, samples=2) as rec:
        logits = model.forward_repeated(images, 3)
    assert np.array_equal(logits, plain)
    assert sorted(rec.names) == sorted(lif_paths(model))
    # the order the layers ran: stage 0's embedding LIF first, the head's input LIF last
    assert rec.names[0] == "to_patch_embedding_lif.0"
    assert rec.names[-1] == "channel_mix_lif.1"
    assert rec.names.index("channel_mix_lif.0") < rec.names.index("to_patch_embedding.1.lif.0")
    for name, rate in rec.firing_rates().items():
        np.testing.assert_allclose(rate, rates_plain[name], rtol=1e-12)
    # hooks are gone: the modules use their class's forward again
    assert all("forward" not in vars(m) for _, m in model.named_modules())


def test_traces_follow_the_lif_equations(model, images):
    model.eval()
    with record(model, samples=[4, 1]) as rec:
        model.forward_repeated(images, 4)
    for layer in rec:
        T, b = layer.current.shape[:2]
        assert (T, b) == (4, 2) and layer.spikes.dtype == bool
        assert layer.h.shape == layer.v.shape == layer.spikes.shape == layer.current.shape
        assert layer.rate.shape == (4,) + layer.neuron_shape and layer.batch == 6
        v_prev = np.zeros_like(layer.v[0])
        for t in range(T):                       # tau = 2, V_th = 1, hard reset to 0
            np.testing.assert_allclose(layer.h[t], v_prev + (layer.current[t] - v_prev) / 2,
                                       rtol=1e-12, atol=1e-12)
            assert np.array_equal(layer.spikes[t], layer.h[t] >= 1.0)
            assert np.array_equal(layer.v[t], np.where(layer.spikes[t], 0.0, layer.h[t]))
            v_prev = layer.v[t]
    # the kept samples' spikes are part of the whole-batch rate
    cm = rec["channel_mix_lif.0"]
    assert cm.rate.max() <= 1.0 and cm.spikes.mean() <= 1.0


def test_kept_samples_are_the_requested_ones(model, images):
    model.eval()
    with record(model, samples=6) as everyone:
        model.forward_repeated(images, 2)
    with record(model, samples=[5, 0]) as two:
        model.forward_repeated(images, 2)
    for name in everyone.names:
        assert np.array_equal(two[name].v, everyone[name].v[:, [5, 0]])
        np.testing.assert_allclose(two[name].rate, everyone[name].spikes.mean(axis=1))


def test_training_forward_and_backward_still_work_while_recording(model, images):
    labels = np.arange(6) % 5
    from npsnn.ops.losses import cross_entropy_backward, cross_entropy_forward
    reference = npsnn.build(TINY, dtype=np.float64, seed=0)
    for m, recorded in ((model, True), (reference, False)):
        m.zero_grad()
        if recorded:
            with record(m, samples=1):
                logits = m.forward(np.repeat(images[None], 2, axis=0))
        else:
            logits = m.forward(np.repeat(images[None], 2, axis=0))
        _, cache = cross_entropy_forward(logits, labels)
        m.backward(cross_entropy_backward(cache))
    for name, g in reference.named_grads().items():
        assert np.array_equal(model.named_grads()[name], g), name


def test_layers_option_spatial_rates_and_neuron_traces(model, images):
    model.eval()
    with record(model, layers=["token_mix_lif.0", "channel_mix.0.1.net.2"]) as rec:
        model.forward_repeated(images, 3)
    assert rec.names == ["token_mix_lif.0", "channel_mix.0.1.net.2"]
    grid = rec["token_mix_lif.0"].spatial_rate()              # (T, 4, 4): 16 / patch 4
    np.testing.assert_allclose(grid, rec["token_mix_lif.0"].rate.mean(axis=-1))
    tokens = rec["channel_mix.0.1.net.2"]                     # (N, alpha C) token layout
    assert tokens.neuron_shape == (16, 24)
    np.testing.assert_allclose(tokens.spatial_rate().reshape(3, 16), tokens.rate.mean(axis=-1))
    one = rec["token_mix_lif.0"].neuron(1, (2, 3, 5))
    assert set(one) == {"current", "h", "v", "spikes"} and one["h"].shape == (3,)
    with pytest.raises(ValueError, match="neuron index has 3 entries"):
        rec["token_mix_lif.0"].neuron(0, (2, 3))
    assert rec.spike_counts()["token_mix_lif.0"] == pytest.approx(
        rec["token_mix_lif.0"].rate.sum())


def test_hooks_are_removed_after_an_exception(model, images):
    with pytest.raises(RuntimeError, match="boom"):
        with record(model):
            raise RuntimeError("boom")
    assert all("forward" not in vars(m) for _, m in model.named_modules())


def test_clear_errors(model, images):
    with pytest.raises(ValueError, match="names no LIF layer"):
        with record(model, layers=["token_mix_lif.9"]):
            pass
    with pytest.raises(ValueError, match=r"indices in \[0, 5\]"):
        with record(model, samples=[6]):
            model.eval().forward_repeated(images, 2)
    with pytest.raises(KeyError, match="no layer 'nope'"):
        with record(model) as rec:
            model.forward_repeated(images, 2)
        rec["nope"]
    with pytest.raises(ValueError, match="has no LIF layers"):
        with record(npsnn.build("cifar10-snn-mlp", dtype=np.float32, seed=0)):
            pass
    with pytest.raises(TypeError, match="expects an npsnn model"):
        record(np.zeros(3))
    lif = dict(model.named_modules())["token_mix_lif.0"]
    lif.options["smooth"] = True
    with pytest.raises(ValueError, match="smooth spikes"):
        with record(model):
            pass
    lif.options["smooth"] = False
    with pytest.raises(RuntimeError, match="nested record"):
        with record(model):
            with record(model):
                pass
    assert all("forward" not in vars(m) for _, m in model.named_modules())


def test_float32_membranes_are_the_layers_own():
    model = npsnn.build(TINY, dtype=np.float32, seed=0).eval()
    images = np.random.default_rng(1).normal(size=(5, 3, 16, 16)).astype(np.float32)
    with record(model, samples=[3, 1]) as rec:
        model.forward_repeated(images, 4)
    layers = dict(model.named_modules())
    for layer in rec:
        assert layer.v.dtype == layer.h.dtype == np.float32
        # the layer keeps its own last membrane for the whole batch: the recording's last step
        np.testing.assert_allclose(layer.v[-1], layers[layer.name].v[[3, 1]], rtol=1e-6,
                                   atol=1e-6)
