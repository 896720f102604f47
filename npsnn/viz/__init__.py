"""Seeing spikes: record what the LIF layers of a network do over time, and draw it.

* :func:`record` (``npsnn/viz/record.py``): per-layer input currents, membranes (after
  charging and after the reset) and spikes of one forward pass, plus per-neuron firing
  rates over the whole batch.
* ``npsnn/viz/plots.py``: :func:`raster`, :func:`membrane_trace`, :func:`rate_map` and
  :func:`layer_rates` (matplotlib, imported only when a plot is drawn).

Tutorial 7 shows them on the trained checkpoint.
"""
from .plots import layer_rates, membrane_path, membrane_trace, rate_map, raster
from .record import LayerRecord, Recording, record

__all__ = ["LayerRecord", "Recording", "layer_rates", "membrane_path", "membrane_trace",
           "rate_map", "raster", "record"]
