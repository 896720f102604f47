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

Spike encodings turn the image into 0/1 spikes *before* the first layer, so that layer only
accumulates too (and runs at every step, since its input changes). They take intensities in
[0, 1] (pixels / 255, not normalised) and present ``(T, B, C, H, W)`` spikes to
``model.forward``, so they need a model with a time axis (sMLPNet):

* :class:`Rate` (rate, "Poisson" or Bernoulli coding): at every step each value fires with
  probability equal to it, ``s_t ~ Bernoulli(x)``, independently over t; the spike *count*
  carries the value, to about ``sqrt(x (1 - x) / T)``.
* :class:`Latency` (time-to-first-spike coding): each value fires exactly once, the brighter
  the earlier, ``t(x) = round((1 - x) (T - 1))``; values at or below ``threshold`` never fire.

Also importable as ``npsnn.encoding``.
"""
from __future__ import annotations

import hashlib

import numpy as np

from .._checks import expect_array, expect_positive_int

__all__ = ["Encoding", "Direct", "Rate", "Latency"]


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


def _intensities(op: str, batch: np.ndarray) -> np.ndarray:
    """Check that ``batch`` holds intensities in [0, 1], with an error that names the fix."""
    expect_array(op, "batch", batch)
    if batch.ndim < 2:
        raise ValueError(f"{op} expected a batch of shape (B, ...), got {batch.shape}")
    lo, hi = (float(batch.min()), float(batch.max())) if batch.size else (0.0, 0.0)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo >= 0.0 and hi <= 1.0):
        raise ValueError(f"{op} encodes intensities in [0, 1] (pixels / 255), got values from "
                         f"{lo:.3g} to {hi:.3g}; normalised images do not fit: make the batch "
                         f"with transforms.normalize(images, mean=(0, 0, 0), std=(1, 1, 1))")
    return batch


class Rate(Encoding):
    """Rate coding: ``s_t = [u_t < x]`` with fresh uniform ``u_t`` at every step t, i.e. each
    value fires with probability x at every step, independently (a Bernoulli process, the
    discrete-time version of a Poisson spike train with rate x per step).

    seed: the spikes of a batch are drawn from a generator seeded with ``seed`` and the
        batch's bytes. The same batch (and T) always gives the same spikes, so evaluation is
        reproducible and a resumed training run redraws exactly the spikes it would have
        drawn; different batches (e.g. after augmentation) get different draws.
    """

    name = "rate"

    def __init__(self, seed: int = 0) -> None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"Rate expected seed to be an integer >= 0, got {seed!r}")
        self.seed = int(seed)

    def encode(self, batch: np.ndarray, T: int) -> np.ndarray:
        """batch: (B, ...) intensities in [0, 1] -> spikes (T, B, ...), batch's dtype."""
        batch = _intensities("Rate", batch)
        T = expect_positive_int("Rate.encode", "T", T)
        digest = hashlib.blake2b(np.ascontiguousarray(batch).tobytes(), digest_size=8)
        digest.update(f"{batch.dtype}{batch.shape}{T}".encode())
        rng = np.random.default_rng([self.seed, int.from_bytes(digest.digest(), "little")])
        return (rng.random((T,) + batch.shape, dtype=np.float64) < batch).astype(batch.dtype)

    def present(self, model, batch: np.ndarray, T: int) -> np.ndarray:
        return model.forward(self.encode(batch, T))

    def __repr__(self) -> str:
        return f"Rate(seed={self.seed})"


class Latency(Encoding):
    """Latency (time-to-first-spike) coding: one spike per value, at step
    ``t(x) = round((1 - x) (T - 1))`` (x = 1 fires at t = 0, the darkest firing values at
    T - 1), none for ``x <= threshold``. Deterministic: no randomness, no parameters to learn.

    threshold: values at or below it stay silent (default 0: black pixels send nothing).
    """

    name = "latency"

    def __init__(self, threshold: float = 0.0) -> None:
        if not 0.0 <= threshold < 1.0:
            raise ValueError(f"Latency expected a threshold in [0, 1), got {threshold!r}")
        self.threshold = float(threshold)

    def encode(self, batch: np.ndarray, T: int) -> np.ndarray:
        """batch: (B, ...) intensities in [0, 1] -> spikes (T, B, ...), batch's dtype."""
        batch = _intensities("Latency", batch)
        T = expect_positive_int("Latency.encode", "T", T)
        when = np.rint((1.0 - batch.astype(np.float64)) * (T - 1)).astype(np.int64)
        when[batch <= self.threshold] = T                      # T: never (past the last step)
        return (np.arange(T).reshape((T,) + (1,) * batch.ndim) == when).astype(batch.dtype)

    def present(self, model, batch: np.ndarray, T: int) -> np.ndarray:
        return model.forward(self.encode(batch, T))

    def __repr__(self) -> str:
        return f"Latency(threshold={self.threshold})"
