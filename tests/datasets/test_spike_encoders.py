"""Rate and latency encodings (npsnn.datasets.encoding, also npsnn.encoding)."""
import numpy as np
import pytest

import npsnn
from npsnn.datasets import ArraySource, Latency, Rate, sample_path
from npsnn.datasets.cifar import load_cifar
from npsnn.train import evaluate

TINY = dict(in_channels=3, dim=6, alpha=2, num_classes=10, patch_size=4, image_size=32,
            depths=[1, 1], spe=True)


def intensities(n=3, seed=0):
    return np.random.default_rng(seed).random((n, 3, 32, 32))


def test_the_alias_is_the_same_module():
    import npsnn.encoding as alias
    assert alias.Rate is Rate and alias.Latency is Latency


def test_rate_fires_with_the_probability_of_each_value():
    x = np.linspace(0, 1, 11)[None]                                   # (1, 11)
    spikes = Rate(seed=3).encode(x, 4000)
    assert spikes.shape == (4000, 1, 11) and spikes.dtype == x.dtype
    assert set(np.unique(spikes)) <= {0.0, 1.0}
    rate = spikes.mean(axis=0)[0]
    sigma = np.sqrt(x[0] * (1 - x[0]) / 4000)
    assert np.all(np.abs(rate - x[0]) <= 4 * sigma + 1e-12)            # 0 and 1 exactly
    assert rate[0] == 0.0 and rate[-1] == 1.0


def test_rate_is_a_pure_function_of_seed_and_batch():
    x = intensities()
    a, b = Rate(seed=1).encode(x, 6), Rate(seed=1).encode(x.copy(), 6)
    assert np.array_equal(a, b)                                       # same batch: same spikes
    assert not np.array_equal(a, Rate(seed=2).encode(x, 6))            # another seed
    y = x.copy(); y[0, 0, 0, 0] = 0.5 * y[0, 0, 0, 0]
    assert not np.array_equal(a, Rate(seed=1).encode(y, 6))            # another batch
    # the steps are independent draws, not one draw repeated
    assert not all(np.array_equal(a[0], a[t]) for t in range(1, 6))


def test_latency_fires_once_brighter_earlier():
    x = np.array([[0.0, 0.05, 0.3, 0.5, 0.74, 1.0]])
    T = 5
    spikes = Latency().encode(x, T)[:, 0]                              # (T, 6)
    counts = spikes.sum(axis=0)
    assert counts.tolist() == [0, 1, 1, 1, 1, 1]                       # black: silent
    first = spikes.argmax(axis=0)[1:]
    assert first.tolist() == [4, 3, 2, 1, 0]                           # round((1 - x)(T - 1))
    assert np.all(np.diff(first) <= 0)
    silent = Latency(threshold=0.3).encode(x, T)[:, 0].sum(axis=0)
    assert silent.tolist() == [0, 0, 0, 1, 1, 1]
    assert np.array_equal(Latency().encode(x, 1)[0], (x > 0).astype(float))


@pytest.mark.parametrize("encoding", [Rate(seed=0), Latency()])
def test_spike_encodings_drive_the_model_forward_and_backward(encoding):
    x = intensities(2)
    a = npsnn.build(TINY, dtype=np.float64, seed=0)
    b = npsnn.build(TINY, dtype=np.float64, seed=0)
    got = encoding.present(a, x, 3)
    assert got.shape == (3, 2, 10)
    np.testing.assert_array_equal(got, b.forward(encoding.encode(x, 3)))
    a.backward(np.ones_like(got))
    assert any(np.any(g) for g in a.named_grads().values())


def test_bad_inputs_are_refused_with_the_fix():
    normalised = np.random.default_rng(0).normal(size=(2, 3, 4, 4))
    for encoding in (Rate(), Latency()):
        with pytest.raises(ValueError, match=r"intensities in \[0, 1\].*std=\(1, 1, 1\)"):
            encoding.encode(normalised, 4)
        with pytest.raises(ValueError, match="T to be a positive integer"):
            encoding.encode(intensities(1), 0)
        with pytest.raises(TypeError, match="floating dtype"):
            encoding.encode(np.zeros((2, 3), np.uint8), 2)
    with pytest.raises(ValueError, match="seed to be an integer >= 0"):
        Rate(seed=-1)
    with pytest.raises(ValueError, match=r"threshold in \[0, 1\)"):
        Latency(threshold=1.0)
    assert repr(Rate(seed=4)) == "Rate(seed=4)" and Latency.name == "latency"


def test_evaluation_through_a_source_with_a_spike_encoding_is_reproducible():
    images, labels = load_cifar(sample_path(), "test")
    source = ArraySource((images[:8], labels[:8]), (images[:8], labels[:8]))
    source.mean, source.std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)        # batches = pixels / 255
    source.encoding = Rate(seed=0)
    batch = source.eval_batch(images[:8])
    assert batch.min() >= 0 and batch.max() <= 1
    model = npsnn.build(TINY, dtype=np.float32, seed=0)
    first = evaluate(model, images[:8], labels[:8], T=3, source=source)
    assert first == evaluate(model, images[:8], labels[:8], T=3, source=source)
