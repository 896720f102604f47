"""Mixup and CutMix as batch operations: mixed images and soft targets.

The official mixer-snn ``train.py`` mixes every training batch with timm's ``Mixup`` in its
default ``mode="batch"``: one mixing decision and one ``lam`` per batch, and each image is
mixed with its partner in the *reversed* batch (``x.flip(0)``)::

    mixup    x'[b] = lam x[b] + (1 - lam) x[B-1-b]                      lam ~ Beta(a_m, a_m)
    cutmix   x'[b] = x[b] with the box [y0:y1, x0:x1] taken from x[B-1-b]   lam ~ Beta(a_c, a_c)
             box: side ratio r = sqrt(1 - lam), cut = (int(H r), int(W r)), centre uniform,
             clipped at the borders; then lam = 1 - box area / (H W)      (the true share)
    targets  q[b] = lam y[b] + (1 - lam) y[B-1-b],
             y = one-hot smoothed: (1 - ls) + ls/K on the label, ls/K elsewhere

With probability ``1 - prob`` the batch is left as it is (``lam = 1``: only the label
smoothing). When both alphas are positive, CutMix is chosen with probability
``switch_prob``, Mixup otherwise. The loss is the cross-entropy against ``q``
(:func:`npsnn.ops.losses.soft_cross_entropy_forward`).

**Random draws**, from the generator passed in, in this order (the contract exact resume
relies on; the trainer passes its augmentation generator, after the crop/flip/cutout
draws of the batch)::

    u = rng.random()                     mix this batch if u < prob
    s = rng.random()                     only if both alphas > 0: CutMix if s < switch_prob
    lam = rng.beta(alpha, alpha)         alpha of the chosen method
    cy = rng.integers(0, H); cx = rng.integers(0, W)       CutMix only: the box centre

Nothing is drawn after ``u`` when the batch is not mixed. Everything is one vectorised
operation on the batch (a reversed view and one slice assignment, or one blend).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Mixing", "mix_batch", "soft_targets", "cutmix_box"]


@dataclass(frozen=True)
class Mixing:
    """The mixing settings of a run (the official recipe: Mixing(0.8, 1.0, 1.0, 0.5))."""

    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    prob: float = 1.0
    switch_prob: float = 0.5

    def __post_init__(self):
        for name in ("mixup_alpha", "cutmix_alpha"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("prob", "switch_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")

    @property
    def active(self) -> bool:
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0


def soft_targets(labels: np.ndarray, num_classes: int, label_smoothing: float = 0.0,
                 dtype=np.float32) -> np.ndarray:
    """One-hot targets ``(B, K)`` with label smoothing: ``(1 - ls) + ls/K`` on the label,
    ``ls/K`` elsewhere (PyTorch's and timm's convention)."""
    labels = np.asarray(labels)
    off = label_smoothing / num_classes
    q = np.full((len(labels), num_classes), off, dtype=dtype)
    q[np.arange(len(labels)), labels] = 1.0 - label_smoothing + off
    return q


def cutmix_box(height: int, width: int, lam: float, rng: np.random.Generator):
    """The CutMix box ``(y0, y1, x0, x1)`` for ``lam`` (two draws: centre row, column)."""
    ratio = np.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy = int(rng.integers(0, height))
    cx = int(rng.integers(0, width))
    y0, y1 = np.clip([cy - cut_h // 2, cy + (cut_h + 1) // 2], 0, height)
    x0, x1 = np.clip([cx - cut_w // 2, cx + (cut_w + 1) // 2], 0, width)
    return int(y0), int(y1), int(x0), int(x1)


def mix_batch(x: np.ndarray, labels: np.ndarray, num_classes: int, rng: np.random.Generator,
              mixing: Mixing, label_smoothing: float = 0.0):
    """Mix one batch (see the module docstring) -> ``(x', q, lam, method)``.

    x: (B, C, H, W) float batch (normalised; not changed); labels: (B,) ints.
    Returns the mixed batch (a new array), soft targets q (B, K) in x's dtype, the
    effective ``lam`` and the method (``"none"``, ``"mixup"`` or ``"cutmix"``).
    """
    if x.ndim != 4 or len(x) != len(labels):
        raise ValueError(f"mix_batch expected x (B, C, H, W) and labels (B,), got {x.shape} "
                         f"and {np.shape(labels)}")
    if not mixing.active:
        raise ValueError("mix_batch: mixing is off (both alphas are 0)")
    y = soft_targets(labels, num_classes, label_smoothing, x.dtype)
    if not rng.random() < mixing.prob:
        return x.copy(), y, 1.0, "none"
    if mixing.mixup_alpha > 0 and mixing.cutmix_alpha > 0:
        cutmix = bool(rng.random() < mixing.switch_prob)
    else:
        cutmix = mixing.cutmix_alpha > 0
    alpha = mixing.cutmix_alpha if cutmix else mixing.mixup_alpha
    lam = float(rng.beta(alpha, alpha))
    partner = x[::-1]
    if cutmix:
        H, W = x.shape[-2:]
        y0, y1, x0, x1 = cutmix_box(H, W, lam, rng)
        out = x.copy()
        out[:, :, y0:y1, x0:x1] = partner[:, :, y0:y1, x0:x1]
        lam = 1.0 - (y1 - y0) * (x1 - x0) / float(H * W)
    else:
        out = x * x.dtype.type(lam)
        out += partner * x.dtype.type(1.0 - lam)
    q = y * y.dtype.type(lam)
    q += y[::-1] * y.dtype.type(1.0 - lam)
    return out, q, lam, "cutmix" if cutmix else "mixup"
