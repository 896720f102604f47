"""Sequential CIFAR: every image a sequence of 1024 grayscale pixels (SpikingSSM's sCIFAR).

The long-sequence benchmark of the S4 family: a CIFAR image converted to grayscale and
read row by row, one pixel per time step, so that a sequence model must find the class in
a sequence of length 1024 (state-spaces/s4 ``src/dataloaders/basic.py``, class ``CIFAR10``
with ``grayscale: true``, the setting of shenshuaijie/SDN
``configs/experiment/spikingssm/cifar.yaml``)::

    gray  = (19595 R + 38470 G + 7471 B + 2^15) >> 16      PIL's convert("L"), uint8
    x     = (gray / 255 - 122.6 / 255) / (61.0 / 255)       ToTensor + Normalize
    batch = x.reshape(B, 1, 1024)                           row-major (h w), d_input = 1

The luma formula is the integer one of Pillow's ``Image.convert("L")`` (what torchvision's
``Grayscale`` calls), checked against Pillow 13 on every colour of a dense grid; the
normalisation goes through THE normaliser (:func:`~npsnn.datasets.transforms.normalize`),
in torchvision's order, so float32 batches equal the official ones bit for bit.

Samples are stored as grayscale images ``(1, 32, 32)`` uint8, converted once when a split is
read. Augmentation is off in the official sCIFAR runs (``augment: False``, the default of
state-spaces/s4); with ``augment=True`` a batch gets npsnn's random crop (zero padding 4) and
horizontal flip on the 32x32 grayscale image before it is flattened (state-spaces/s4's own
option pads symmetrically instead). Official differences to note: the official runs hold
out 10% of the training images for validation (``val_split: 0.1``); npsnn's trainer trains
on all 50,000 and reports the test split.
"""
from __future__ import annotations

import numpy as np

from .source import CIFARSource
from .transforms import cutout as _cutout
from .transforms import normalize, random_crop_flip

#: grayscale mean and standard deviation of state-spaces/s4's sequential CIFAR (0-1 scale)
GRAY_MEAN, GRAY_STD = (122.6 / 255.0,), (61.0 / 255.0,)


def to_grayscale(images: np.ndarray) -> np.ndarray:
    """RGB uint8 (N, 3, H, W) -> luma uint8 (N, 1, H, W), exactly as Pillow's
    ``convert("L")``: ``(19595 R + 38470 G + 7471 B + 32768) >> 16``."""
    if not (isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim == 4
            and images.shape[1] == 3):
        shape = getattr(images, "shape", type(images).__name__)
        raise ValueError(f"to_grayscale expected uint8 RGB images (N, 3, H, W), got {shape}")
    rgb = images.astype(np.uint32)
    luma = rgb[:, 0] * 19595 + rgb[:, 1] * 38470 + rgb[:, 2] * 7471 + 32768
    return (luma >> 16).astype(np.uint8)[:, None]


class SequentialCIFARSource(CIFARSource):
    """CIFAR-10/100 as grayscale pixel sequences: batches ``(B, 1, 1024)``.

    ``open_source("scifar", path)``; ``path`` is any CIFAR archive or folder
    (:class:`CIFARSource` reads it). ``name`` is ``"scifar10"`` or ``"scifar100"``; stored
    samples are ``(1, 32, 32)`` uint8 grayscale images; the encoding is
    :class:`~npsnn.datasets.encoding.Direct` (a sequence model has no repetition axis, so
    ``forward_repeated`` ignores T).
    """

    sample_shape = (1, 32, 32)

    def __init__(self, path, *, label: str = "fine") -> None:
        super().__init__(path, label=label)
        self.name = "s" + self.name
        self.mean, self.std = GRAY_MEAN, GRAY_STD

    def load_split(self, which: str):
        images, labels = super().load_split(which)
        return to_grayscale(images), labels

    def train_batch(self, samples: np.ndarray, rng: np.random.Generator, *,
                    augment: bool = True, cutout: int = 0, dtype=np.float32) -> np.ndarray:
        """uint8 ``(B, 1, 32, 32)`` -> ``dtype`` ``(B, 1, 1024)``: random crop + flip if
        ``augment`` (draws first), normalise, cutout if ``cutout`` > 0 (draws second), then
        read the image row by row."""
        x = random_crop_flip(samples, rng) if augment else samples
        x = normalize(x, self.mean, self.std, dtype)
        if cutout:
            x = _cutout(x, rng, cutout)
        return x.reshape(len(x), 1, -1)

    def eval_batch(self, samples: np.ndarray, dtype=np.float32) -> np.ndarray:
        """uint8 ``(B, 1, 32, 32)`` -> normalised ``dtype`` sequences ``(B, 1, 1024)``."""
        return normalize(samples, self.mean, self.std, dtype).reshape(len(samples), 1, -1)
