"""npsnn.viz plots draw what they are given, and matplotlib loads only when one is drawn."""
import subprocess
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from npsnn.viz import layer_rates, membrane_path, membrane_trace, rate_map, raster  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_importing_npsnn_viz_does_not_import_matplotlib():
    code = "import sys, npsnn.viz; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"


def test_raster_draws_one_tick_per_spike():
    spikes = np.random.default_rng(0).random((6, 4, 5)) < 0.3          # (T, 4, 5): 20 neurons
    ax = raster(spikes)
    offsets = ax.collections[0].get_offsets()
    assert len(offsets) == spikes.sum()
    t, n = np.nonzero(spikes.reshape(6, -1))
    assert np.array_equal(np.asarray(offsets), np.stack([t, n], axis=1))
    ax = raster(spikes, neurons=5)                                       # evenly spread rows
    assert len(ax.collections[0].get_offsets()) == spikes.reshape(6, -1)[:, [0, 5, 10, 14, 19]].sum()
    with pytest.raises(ValueError, match="1 <= n <= 20"):
        raster(spikes, neurons=50)
    with pytest.raises(ValueError, match=r"\(T, neurons...\)"):
        raster(np.zeros(4))


def test_membrane_path_and_trace():
    h = np.array([0.75, 1.125, 0.75]); v = np.array([0.75, 0.0, 0.75]); s = h >= 1
    times, values = membrane_path(h, v)
    assert np.array_equal(times, [-0.5, 0, 0, 1, 1, 2, 2])
    assert np.array_equal(values, [0.0, 0.75, 0.75, 1.125, 0.0, 0.75, 0.75])
    ax = membrane_trace(h, v, s, threshold=1.0)
    line = ax.lines[0]
    assert np.array_equal(line.get_ydata(), values)
    assert np.array_equal(ax.lines[2].get_xdata(), [1])                 # one spike marker
    axes = membrane_trace(h, v, s, threshold=1.0, current=np.full(3, 1.5), title="one")
    assert len(axes) == 2 and axes[0].get_title() == "one"
    with pytest.raises(ValueError, match="one neuron"):
        membrane_trace(np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((3, 2)), threshold=1.0)
    with pytest.raises(ValueError, match="ax=\\(current_ax, membrane_ax\\)"):
        fig, ax1 = plt.subplots()
        membrane_trace(h, v, s, threshold=1.0, current=np.ones(3), ax=ax1)


def test_rate_map_and_layer_rates():
    rate = np.arange(12.0).reshape(3, 4) / 12
    ax = rate_map(rate, title="r")
    assert np.array_equal(ax.images[0].get_array(), rate)
    with pytest.raises(ValueError, match=r"shape \(H, W\)"):
        rate_map(np.zeros((2, 3, 4)))
    rates = {"first": np.array([0.0, 0.1]), "second": np.array([0.2, 0.3])}
    ax = layer_rates(rates)
    assert np.array_equal(ax.images[0].get_array(), [[0.0, 0.1], [0.2, 0.3]])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["first", "second"]
    with pytest.raises(ValueError, match="no layers"):
        layer_rates({})
