"""Recording what every LIF layer of a network does during one forward pass.

A trained network is easiest to understand by watching it over its T time steps: which
neurons fire when, how their membranes charge and reset, which positions are busy. The
layers themselves keep only what training needs (spikes, the last membrane, the firing rate
per step). :func:`record` keeps the rest, for one forward::

    with record(model, samples=4) as rec:          # hooks on every LIF layer
        logits = model.forward_repeated(images, T)  # any forward: repeated, encoded, ...
    layer = rec["token_mix_lif.0"]
    layer.spikes, layer.h, layer.v, layer.current  # (T, 4, ...) for the first 4 images
    layer.rate                                     # (T, ...) per neuron, over the whole batch
    rec.firing_rates()                             # {layer: (T,)}, in the order they ran

The spikes are the layer's own. The membranes are recomputed with
:func:`npsnn.ops.lif.lif_forward_reference`, the readable step-by-step LIF, from the current
the layer received and with the layer's spikes in the reset, so they are the layer's own
membranes: bit for bit in float64 (tests/ops/test_ops_lif.py holds the two LIFs equal), to
the last bit of rounding in float32.
Only the kept samples' traces are stored, so a forward over 500 images costs the memory of
4 of them plus one (T, ...) rate array per layer.

Every LIF input is laid out ``(T, B, ...)``: time, then the batch. Hooks are instance
attributes put in place by ``with`` and always removed on exit (also after an exception), so
the model is unchanged afterwards; the forward's outputs are bit-identical with or without
recording.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from ..ops.lif import LIF, lif_forward_reference


@dataclass
class LayerRecord:
    """One LIF layer during one forward pass.

    name: the module path (``"token_mix.0.proj_h.3"``); a layer that ran more than once in
        the forward gets ``"#2"``, ``"#3"`` ... appended for the later calls.
    options: the layer's LIF options (tau, v_threshold, v_reset, ...).
    current, h, v, spikes: (T, b, ...) input current X[t], membrane after charging H[t],
        membrane after the reset V[t], spikes S[t] (bool), for the b kept samples.
    rate: (T, ...) float64, per neuron and step, the fraction of the *whole* batch that fired.
    batch: how many samples the forward ran (the rate's denominator).
    """
    name: str
    options: dict
    current: np.ndarray
    h: np.ndarray
    v: np.ndarray
    spikes: np.ndarray
    rate: np.ndarray
    batch: int

    @property
    def threshold(self) -> float:
        return self.options["v_threshold"]

    @property
    def neuron_shape(self) -> tuple:
        """Shape of the layer's neurons for one sample and step, e.g. (8, 8, 48)."""
        return self.rate.shape[1:]

    def neuron(self, sample: int, index: Sequence[int]) -> dict:
        """The traces of one neuron: ``{current, h, v, spikes}``, each (T,), for kept sample
        ``sample`` (an index into the kept samples) and ``index`` into ``neuron_shape``."""
        index = tuple(index)
        if len(index) != len(self.neuron_shape):
            raise ValueError(f"{self.name}: a neuron index has {len(self.neuron_shape)} "
                             f"entries for neuron shape {self.neuron_shape}, got {index}")
        at = (slice(None), sample) + index
        return dict(current=self.current[at], h=self.h[at], v=self.v[at],
                    spikes=self.spikes[at])

    def spatial_rate(self) -> np.ndarray:
        """(T, S1, S2): the rate per position, averaged over channels (the last axis).

        Channels-last maps (..., H, W, C) give (H, W); the channel mixer's token layout
        (N, C) with N = S * S tokens in row-major order is shown as its S x S grid.
        """
        shape = self.neuron_shape
        if len(shape) >= 3:
            return self.rate.mean(axis=-1).reshape((len(self.rate),) + shape[-3:-1])
        if len(shape) == 2 and math.isqrt(shape[0]) ** 2 == shape[0]:
            s = math.isqrt(shape[0])
            return self.rate.mean(axis=-1).reshape(len(self.rate), s, s)
        raise ValueError(f"{self.name}: neurons of shape {shape} have no spatial layout "
                         f"(expected (H, W, C) or (N, C) with N a square number of tokens)")


@dataclass
class Recording:
    """The layers recorded during one forward, in the order they ran (network depth).

    ``rec[name]`` is a :class:`LayerRecord`; ``rec.names`` lists them; ``samples`` are the
    batch indices whose traces were kept. Use it as a context manager (see :func:`record`).
    """
    model: object
    samples: object
    only: tuple | None
    layers: dict = field(default_factory=dict)
    _hooked: list = field(default_factory=list)

    # -- access ---------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return list(self.layers)

    def __getitem__(self, name: str) -> LayerRecord:
        if name not in self.layers:
            raise KeyError(f"no layer {name!r} was recorded; recorded: {self.names[:8]}"
                           f"{' ...' if len(self.layers) > 8 else ''}")
        return self.layers[name]

    def __iter__(self):
        return iter(self.layers.values())

    def __len__(self) -> int:
        return len(self.layers)

    def firing_rates(self) -> dict[str, np.ndarray]:
        """{layer: (T,)} the fraction of the layer's neurons (whole batch) firing at each step."""
        return {name: r.rate.reshape(len(r.rate), -1).mean(axis=1)
                for name, r in self.layers.items()}

    def spike_counts(self) -> dict[str, float]:
        """{layer: spikes per sample, summed over all steps and neurons} (whole batch mean)."""
        return {name: float(r.rate.sum()) for name, r in self.layers.items()}

    # -- hooks ----------------------------------------------------------------------------
    def __enter__(self) -> "Recording":
        if self._hooked:
            raise RuntimeError("this Recording is already active; call record(...) again "
                               "for a second recording")
        self.layers.clear()
        targets = [(name, m) for name, m in self.model.named_modules() if isinstance(m, LIF)]
        if not targets:
            raise ValueError(f"{type(self.model).__name__} has no LIF layers to record "
                             f"(SNN-MLP's AxisLIF emits real values, not spikes)")
        if self.only is not None:
            unknown = sorted(set(self.only) - {name for name, _ in targets})
            if unknown:
                raise ValueError(f"record(layers=...) names no LIF layer of the model: "
                                 f"{unknown}; LIF layers: {[n for n, _ in targets][:6]} ...")
            targets = [(name, m) for name, m in targets if name in self.only]
        smooth = [name for name, m in targets if m.options["smooth"]]
        if smooth:
            raise ValueError(f"record shows real 0/1 spikes, but {smooth[0]} fires smooth "
                             f"spikes (smooth=True, for gradient checks); record a model "
                             f"without it")
        for name, module in targets:
            if "forward" in vars(module):
                self._unhook()
                raise RuntimeError(f"{name} is already being recorded (nested record())")
            module.forward = self._hook(name, module)
            self._hooked.append(module)
        return self

    def __exit__(self, *exc) -> None:
        self._unhook()

    def _unhook(self) -> None:
        for module in self._hooked:
            vars(module).pop("forward", None)          # the class's forward again
        self._hooked.clear()

    def _hook(self, name: str, module: LIF):
        def forward(x_seq: np.ndarray) -> np.ndarray:
            spikes = type(module).forward(module, x_seq)
            self._capture(name, module, x_seq, spikes)
            return spikes
        return forward

    def _capture(self, name: str, module: LIF, x_seq: np.ndarray, spikes: np.ndarray) -> None:
        if x_seq.ndim < 2:
            raise ValueError(f"record expects LIF inputs laid out (T, B, ...), got shape "
                             f"{x_seq.shape} in {name}")
        keep = _sample_indices(self.samples, x_seq.shape[1])
        current = np.ascontiguousarray(x_seq[:, keep])
        kept_spikes = spikes[:, keep]
        _, V, H = lif_forward_reference(current, reset_spikes=kept_spikes, **module.options)
        key, k = name, 1
        while key in self.layers:
            k += 1
            key = f"{name}#{k}"
        self.layers[key] = LayerRecord(
            name=key, options=dict(module.options), current=current, h=H, v=V,
            spikes=kept_spikes.astype(bool), rate=spikes.mean(axis=1, dtype=np.float64),
            batch=x_seq.shape[1])


def record(model, samples: int | Iterable[int] = 4, layers: Iterable[str] | None = None
           ) -> Recording:
    """Record every LIF layer of ``model`` (or only ``layers``, by module path) during the
    forward passes run inside ``with record(model) as rec:``.

    samples: how many samples to keep traces of (the first ``samples`` of the batch), or
        the batch indices themselves. Rates always cover the whole batch.
    -> a :class:`Recording`, filled when the ``with`` block runs a forward.
    """
    if not hasattr(model, "named_modules"):
        raise TypeError(f"record expects an npsnn model (a Module), got {type(model).__name__}")
    return Recording(model=model, samples=samples,
                     only=None if layers is None else tuple(layers))


def _sample_indices(samples, batch: int) -> np.ndarray:
    if isinstance(samples, (int, np.integer)):
        if samples < 0:
            raise ValueError(f"record(samples=...) expects a count >= 0, got {samples}")
        return np.arange(min(int(samples), batch))
    keep = np.asarray(list(samples), dtype=np.int64)
    if keep.ndim != 1 or (keep.size and (keep.min() < 0 or keep.max() >= batch)):
        raise ValueError(f"record(samples=...) expects indices in [0, {batch - 1}] for a "
                         f"batch of {batch}, got {keep.tolist()}")
    return keep
