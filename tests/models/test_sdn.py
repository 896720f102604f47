"""The surrogate dynamic network: its backward (train-mode BN included) against finite
differences, the fused predictor against the layer-by-layer eval pass, strict causality,
the official BN-before-cut detail, the shipped weights' spike accuracy against the exact
recurrence, a short training run, and file checks."""
import numpy as np
import pytest

from gradcheck import assert_grads, numeric_grad
from npsnn.io import save_npz
from npsnn.models.sdn import PACKAGED, SDN, evaluate_sdn, load_sdn, synthetic_batch
from npsnn.train.sdn import train_sdn


def test_backward_matches_finite_differences_in_train_mode():
    sdn = SDN(dtype=np.float64, seed=1)
    rng = np.random.default_rng(0)
    x, g = rng.normal(size=(3, 1, 20)), rng.normal(size=(3, 20))
    sdn.forward(x)
    sdn.zero_grad()
    sdn.backward(g)
    grads = sdn.named_grads()

    def loss():
        return float(np.sum(sdn.forward(x) * g))

    # a bias right before a train-mode BN has no effect at all: its gradient is exactly 0
    pre_bn = ("spatial_layers.0.0.bias", "feature_layers.0.0.bias")
    assert_grads(loss, {k: (p, grads[k]) for k, p in sdn.named_parameters() if k not in pre_bn})
    for k in pre_bn:
        assert np.abs(grads[k]).max() < 1e-12
        assert np.abs(numeric_grad(loss, dict(sdn.named_parameters())[k])).max() < 1e-7


def _with_running_stats(sdn, rng):
    for k, b in sdn.named_buffers():
        if k.endswith("running_var"):
            b[...] = rng.uniform(0.5, 2.0, b.shape)
        elif k.endswith("running_mean"):
            b[...] = rng.normal(size=b.shape)
    return sdn.eval()


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_fused_predict_equals_the_eval_forward(n_layers):
    rng = np.random.default_rng(n_layers)
    sdn = _with_running_stats(SDN(n_layers=n_layers, dtype=np.float64, seed=n_layers), rng)
    x = rng.normal(size=(5, 1, 37))
    np.testing.assert_allclose(sdn.predict(x[:, 0], chunk=2), sdn.forward(x), rtol=1e-12,
                               atol=1e-13)
    np.testing.assert_allclose(sdn.predict(x[:, 0, :1]), sdn.forward(x[:, :, :1]), atol=1e-13)
    x3 = rng.normal(size=(2, 3, 40)).astype(np.float32)    # any leading shape, dtype kept
    assert sdn.predict(x3).shape == (2, 3, 40) and sdn.predict(x3).dtype == np.float32


def test_prediction_is_strictly_causal():
    """m[l] = tau u[l-1] depends on x[< l] only: the first spatial conv is padded by k on
    both sides and cut to L (official model.py)."""
    sdn = _with_running_stats(SDN(dtype=np.float64), np.random.default_rng(0))
    x = np.random.default_rng(1).normal(size=(4, 50))
    bumped = x.copy()
    bumped[:, 20] += 3.0
    changed = np.nonzero(np.abs(sdn.predict(bumped) - sdn.predict(x)).max(axis=0))[0]
    np.testing.assert_array_equal(changed, np.arange(21, 29))   # receptive field k = 8


def test_train_mode_bn_sees_the_whole_padded_conv_output():
    sdn = SDN(dtype=np.float64)
    x = np.random.default_rng(2).normal(size=(3, 1, 30))
    sdn.forward(x)
    conv = sdn.spatial_layers[0][0]
    z = sdn.encoder.params["weight"][:, 0, 0][None, :, None] * x     # encoder output
    full = np.pad(z, ((0, 0), (0, 0), (8, 8)))
    out = sum(full[:, :, a:a + 30 + 9] * conv.params["weight"][:, :, a] for a in range(8))
    out += conv.params["bias"][:, None]                                # length L + k + 1
    np.testing.assert_allclose(sdn.spatial_layers[0][1].buffers["running_mean"],
                               0.1 * out.mean(axis=(0, 2)), rtol=1e-12)


def test_shipped_sdn_predicts_spikes_of_the_exact_recurrence():
    sdn = load_sdn()
    assert sdn.meta["tau"] == 0.125 and sdn.meta["metrics"]["spike_accuracy"] > 0.99
    x, membrane, spikes = synthetic_batch(np.random.default_rng(123), 64, 1024, 0.125)
    metrics = evaluate_sdn(sdn, x, membrane, spikes)
    assert metrics["spike_accuracy"] > 0.99
    assert 0.1 < metrics["firing_rate"] < 0.25
    assert metrics["spike_recall"] > 0.95 and metrics["spike_precision"] > 0.95


def test_a_short_training_run_learns(tmp_path):
    sdn, metrics = train_sdn(steps=60, batch=8, L=128, eval_sequences=32, progress=False)
    untrained = evaluate_sdn(SDN().eval(), *synthetic_batch(np.random.default_rng([0, 2]), 32,
                                                             128, 0.125))
    assert metrics["loss"] < 0.5 * untrained["loss"]
    assert metrics["spike_accuracy"] > untrained["spike_accuracy"]


def test_load_refuses_wrong_files(tmp_path):
    with pytest.raises(ValueError, match="ships a trained SDN for tau"):
        load_sdn(tau=0.3)
    save_npz(tmp_path / "x.npz", {"a": np.zeros(3)})
    with pytest.raises(ValueError, match="not an SDN file written by npsnn"):
        load_sdn(tmp_path / "x.npz")
    with pytest.raises(ValueError, match=r"trained for tau=0.125, but the neuron uses tau=0.2"):
        load_sdn(PACKAGED[0.125], tau=0.2)
    with pytest.raises(FileNotFoundError):
        load_sdn(tmp_path / "missing.npz")
    good = {k: v for k, v in np.load(PACKAGED[0.125]).items()}
    for meta, match in [("{not json", "unreadable SDN metadata"),
                        ('{"tau": 0.125}', "unreadable SDN metadata .*KeyError"),
                        ('{"tau": 0.125, "config": {"d_model": 8, "depth": 3}}',
                         "unreadable SDN metadata .*TypeError")]:
        save_npz(tmp_path / "bad.npz", dict(good, meta=np.array(meta)))
        with pytest.raises(ValueError, match=match):
            load_sdn(tmp_path / "bad.npz")
    save_npz(tmp_path / "short.npz", {k: v for k, v in good.items() if k != "decoder.bias"})
    with pytest.raises(ValueError, match="missing keys: decoder.bias"):
        load_sdn(tmp_path / "short.npz")
    with pytest.raises(ValueError, match=r"SDN expected x of shape \(N, 1, L\)"):
        SDN().forward(np.zeros((2, 10), np.float32))
