"""How a batch reaches the model: an :class:`Encoding` turns a float batch into logits.

A :class:`~npsnn.datasets.source.DataSource` gives float batches (``train_batch`` /
``eval_batch``); its ``encoding`` says how the model sees them over time::

    logits = source.encoding.present(model, batch, T)          # (T', B, K)

The trainer then takes the loss of ``logits`` and calls ``model.backward(dlogits)`` with
``dlogits`` of the same shape: an encoding has no parameters and nothing to differentiate.

Direct encoding (:class:`Direct`, the choice of the sMLPNet and SNN-MLP papers): the
analogue image itself is the input of the first layer at every one of the T time steps,

    x_t = x          for t = 1 .. T,

and the first spiking layer turns it into spikes. The model does this in
``model.forward_repeated(x, T)``, which runs the time-independent first layer once and
repeats its output (the same numbers as ``forward`` on ``T`` stacked copies), so Direct
simply calls it. A model without a time axis (SNN-MLP) returns ``(1, B, K)``: T' = 1.

Rate and latency encoders (spikes drawn from the pixel values) are added to this file later;
each is one subclass with its own :meth:`Encoding.present`.
"""
from __future__ import annotations

import numpy as np

__all__ = ["Encoding", "Direct"]


class Encoding:
    """Base class: how a float batch is presented to a model over time."""

    name: str = "encoding"

    def present(self, model, batch: np.ndarray, T: int) -> np.ndarray:
        """Run ``model`` on ``batch`` for ``T`` time steps -> logits ``(T', B, K)``.

        batch: a float batch as ``DataSource.train_batch`` / ``eval_batch`` return it,
        e.g. ``(B, 3, 32, 32)``. T' is ``T`` for models with a time axis, 1 without.
        """
        raise NotImplementedError(f"{type(self).__name__} does not define present()")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Direct(Encoding):
    """The image repeated over T: ``x_t = x`` for every step (``model.forward_repeated``)."""

    name = "direct"

    def present(self, model, batch: np.ndarray, T: int) -> np.ndarray:
        return model.forward_repeated(batch, T)
