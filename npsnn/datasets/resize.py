"""Resizing image batches, and a DataSource that hands out batches at another size.

Fine-tuning a model at another resolution (the official code fine-tunes on CIFAR images
upsampled to 224 x 224) needs the data at the model's size. :func:`resize` is bilinear
interpolation with pixel centres aligned (``align_corners=False``, the convention of
torchvision's ``Resize`` and of PIL), separable and vectorised over the whole batch::

    src(i) = (i + 1/2) * n_in / n_out - 1/2, clamped to [0, n_in - 1]
    y[.., i, j] = sum of the 2 x 2 neighbours of (src(i), src(j)), weighted bilinearly

Upsampling (the fine-tuning case) is exactly that; downsampling does no anti-aliasing
(PIL's filter widens its support when shrinking), so small images are not the same as a
PIL-shrunk copy. Interpolation is linear, so resizing a normalised batch equals
normalising a resized one (to rounding): the wrapper resizes the float batches its source
makes, after the source's own augmentation.
"""
from __future__ import annotations

import numpy as np

from .source import DataSource

__all__ = ["resize", "Resized"]


def _axis_weights(n_in: int, n_out: int, dtype):
    """Index pairs and weights of 1-D bilinear interpolation from n_in to n_out samples."""
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0, n_in - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    w = (src - lo).astype(dtype)
    return lo, hi, w


def resize(images: np.ndarray, size) -> np.ndarray:
    """Bilinear resize of a batch: (B, C, H, W) float -> (B, C, S_h, S_w) of the same dtype.

    size: an int S (square) or ``(S_h, S_w)``.
    """
    if not isinstance(images, np.ndarray) or images.ndim != 4 or images.dtype.kind != "f":
        raise ValueError(f"resize expected a float batch (B, C, H, W), got "
                         f"{getattr(images, 'dtype', type(images).__name__)} "
                         f"{getattr(images, 'shape', '')}")
    sh, sw = (size, size) if np.isscalar(size) else tuple(size)
    if not all(isinstance(s, (int, np.integer)) and s >= 1 for s in (sh, sw)):
        raise ValueError(f"resize expected positive integer sizes, got {size!r}")
    _, _, h, w = images.shape
    out = images
    if sh != h:
        lo, hi, t = _axis_weights(h, sh, images.dtype)
        t = t[:, None]
        out = out[:, :, lo, :] * (1 - t) + out[:, :, hi, :] * t
    if sw != w:
        lo, hi, t = _axis_weights(w, sw, images.dtype)
        out = out[..., lo] * (1 - t) + out[..., hi] * t
    return np.ascontiguousarray(out) if out is not images else images.copy()


class Resized(DataSource):
    """``source``'s batches resized to ``size`` x ``size`` (everything else is the source's).

    ``train_batch`` augments at the stored size (crop, flip, cutout; the source's draws)
    and then resizes; ``eval_batch`` normalises and resizes. No random numbers are drawn
    here, so a run's random streams are the source's.
    """

    def __init__(self, source: DataSource, size: int) -> None:
        super().__init__()
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"Resized expected a positive image size, got {size!r}")
        self.source, self.size = source, int(size)
        for name in ("name", "num_classes", "sample_shape", "mean", "std", "encoding",
                     "splits"):
            setattr(self, name, getattr(source, name))

    def split(self, which: str):
        return self.source.split(which)

    def load_split(self, which: str):          # pragma: no cover - split() delegates
        return self.source.load_split(which)

    def train_batch(self, samples, rng, *, augment=True, cutout=0, dtype=np.float32):
        x = self.source.train_batch(samples, rng, augment=augment, cutout=cutout, dtype=dtype)
        return resize(x, self.size)

    def eval_batch(self, samples, dtype=np.float32):
        return resize(self.source.eval_batch(samples, dtype), self.size)

    def __repr__(self) -> str:
        return f"<Resized to {self.size}x{self.size}: {self.source!r}>"
