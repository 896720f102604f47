"""Pictures of spikes: raster, membrane trace, firing-rate map, rate per layer and step.

Each function draws into a matplotlib Axes (a new figure when ``ax`` is None) and returns
it. matplotlib is imported when a function is first called, never by ``import npsnn``: it
is an optional dependency (``pip install -e ".[tutorials]"``).
"""
from __future__ import annotations

import numpy as np


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:                                    # pragma: no cover - env dependent
        raise ImportError("npsnn.viz draws with matplotlib, which is not installed: "
                          "pip install matplotlib (or pip install -e '.[tutorials]')") from None
    return plt


def _axes(ax, figsize):
    if ax is not None:
        return ax
    return _pyplot().subplots(figsize=figsize)[1]


def raster(spikes: np.ndarray, ax=None, *, neurons: int | np.ndarray | None = None,
           title: str | None = None, color: str = "k"):
    """Spike raster of one sample: a tick at (t, neuron) for every spike.

    spikes: (T, ...) 0/1 (or bool); the neurons (everything after T) are numbered in
        row-major order, e.g. n = (h * W + w) * C + c for a (T, H, W, C) map.
    neurons: which rows to draw: None (all), an int n (n neurons evenly spread over the
        layer, so every part of it shows), or an array of neuron numbers.
    """
    spikes = np.asarray(spikes)
    if spikes.ndim < 2:
        raise ValueError(f"raster expects spikes of shape (T, neurons...), got {spikes.shape}")
    flat = spikes.reshape(len(spikes), -1)
    total = flat.shape[1]
    if neurons is None:
        rows = np.arange(total)
    elif isinstance(neurons, (int, np.integer)):
        if not 1 <= neurons <= total:
            raise ValueError(f"raster(neurons=n) expects 1 <= n <= {total}, got {neurons}")
        rows = np.unique(np.linspace(0, total - 1, int(neurons)).round().astype(np.int64))
    else:
        rows = np.asarray(neurons, dtype=np.int64)
        if rows.ndim != 1 or rows.min() < 0 or rows.max() >= total:
            raise ValueError(f"raster(neurons=...) expects neuron numbers in [0, {total - 1}]")
    t, k = np.nonzero(flat[:, rows])
    ax = _axes(ax, (6, 3))
    ax.scatter(t, k, marker="|", s=max(4.0, min(80.0, 2000.0 / len(rows))), color=color,
               linewidths=1)
    ax.set_xlim(-0.5, len(flat) - 0.5)
    ax.set_ylim(-0.5, len(rows) - 0.5)
    ax.set_xlabel("time step t")
    ax.set_ylabel("neuron" if neurons is None else f"neuron ({len(rows)} of {total})")
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def membrane_path(h: np.ndarray, v: np.ndarray, v0: float = 0.0):
    """Times and values of the path V[-1] -> H[0] -> V[0] -> H[1] -> ... of one neuron:
    within step t the membrane charges from V[t-1] to H[t], then a spike resets it to V[t].
    h, v: (T,) -> (times (2T + 1,), values (2T + 1,)), V[-1] = v0 drawn at t = -0.5."""
    h, v = np.asarray(h, dtype=np.float64), np.asarray(v, dtype=np.float64)
    if h.ndim != 1 or h.shape != v.shape:
        raise ValueError(f"membrane_path expects h and v of the same shape (T,), got "
                         f"{h.shape} and {v.shape}")
    times = np.concatenate([[-0.5], np.repeat(np.arange(len(h)), 2)])
    values = np.concatenate([[v0], np.stack([h, v], axis=1).ravel()])
    return times, values


def membrane_trace(h: np.ndarray, v: np.ndarray, spikes: np.ndarray, *, threshold: float,
                   v_reset: float | None = 0.0, current: np.ndarray | None = None, ax=None,
                   title: str | None = None):
    """The saw-tooth membrane of one neuron, its threshold and its spikes.

    h, v, spikes: (T,) membrane after charging, after the reset, and the spikes (a
        :class:`~npsnn.viz.record.LayerRecord` gives them: ``layer.neuron(sample, index)``).
    v_reset: the rest value the path starts from (None, the soft reset, rests at 0).
    current: (T,) optional input current, drawn in a panel above the membrane.
    ax: one Axes (membrane only), or a pair (current, membrane); None makes a new figure.
    -> the Axes drawn into (a pair when the current is drawn).
    """
    h, v, spikes = np.asarray(h), np.asarray(v), np.asarray(spikes)
    if not (h.shape == v.shape == spikes.shape and h.ndim == 1):
        raise ValueError(f"membrane_trace expects h, v and spikes of one neuron, each (T,); "
                         f"got {h.shape}, {v.shape}, {spikes.shape} (pick one neuron with "
                         f"layer.neuron(sample, index))")
    if ax is None:
        plt = _pyplot()
        if current is None:
            ax = plt.subplots(figsize=(6, 2.4))[1]
        else:
            ax = plt.subplots(2, 1, sharex=True, figsize=(6, 3.2),
                              gridspec_kw={"height_ratios": [1, 2]})[1]
    if current is not None:
        if not isinstance(ax, (tuple, list, np.ndarray)) or len(ax) != 2:
            raise ValueError("membrane_trace with a current needs ax=(current_ax, membrane_ax)")
        ax_in, ax_mem = ax
        current = np.asarray(current)
        ax_in.step(np.arange(len(current)), current, where="mid", color="tab:gray")
        ax_in.axhline(0, color="k", lw=0.5)
        ax_in.set_ylabel("input X")
    else:
        ax_mem = ax
    fired = np.flatnonzero(spikes)
    ax_mem.plot(*membrane_path(h, v, 0.0 if v_reset is None else v_reset), color="tab:blue",
                label="membrane")
    ax_mem.axhline(threshold, color="tab:red", ls="--", lw=1, label="threshold")
    ax_mem.plot(fired, h[fired], "v", color="tab:red", label="spike")
    ax_mem.set_xlabel("time step t")
    ax_mem.set_ylabel("membrane")
    ax_mem.legend(loc="lower right", fontsize=7)
    if title:
        (ax[0] if current is not None else ax_mem).set_title(title, fontsize=10)
    return ax


def rate_map(rate: np.ndarray, ax=None, *, title: str | None = None,
             vmax: float | None = None, colorbar: bool = True, cmap: str = "viridis"):
    """Firing rate per position as an image. rate: (H, W), spikes per neuron and step
    (:meth:`~npsnn.viz.record.LayerRecord.spatial_rate` averages a layer over channels)."""
    rate = np.asarray(rate)
    if rate.ndim != 2:
        raise ValueError(f"rate_map expects rates of shape (H, W), got {rate.shape}; "
                         f"average over channels first (layer.spatial_rate())")
    ax = _axes(ax, (3, 2.6))
    image = ax.imshow(rate, cmap=cmap, vmin=0, vmax=vmax if vmax is not None else
                      max(float(rate.max()), 1e-9), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="rate")
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def layer_rates(rates, ax=None, *, title: str | None = "firing rate per LIF layer",
                fontsize: float = 7):
    """Heatmap of the firing rate of every layer (rows, top = first to run) at every time
    step (columns). rates: a :class:`~npsnn.viz.record.Recording` (its layers in the order
    they ran, i.e. by depth) or a dict {layer: (T,)}."""
    if hasattr(rates, "firing_rates"):
        rates = rates.firing_rates()
    names = list(rates)
    if not names:
        raise ValueError("layer_rates got no layers")
    grid = np.array([np.asarray(rates[k], dtype=np.float64) for k in names])   # (layers, T)
    ax = _axes(ax, (6, max(2.0, 0.2 * len(names) + 1)))
    image = ax.imshow(grid, aspect="auto", cmap="viridis", vmin=0, interpolation="nearest")
    ax.set_yticks(range(len(names)), names, fontsize=fontsize)
    ax.set_xticks(range(grid.shape[1]))
    ax.set_xlabel("time step t")
    ax.figure.colorbar(image, ax=ax, label="firing rate")
    if title:
        ax.set_title(title, fontsize=10)
    return ax
