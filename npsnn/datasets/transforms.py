"""Image batch transforms: THE normaliser, random crop + flip, cutout, and batching.

:func:`normalize` is the one pixel normaliser of npsnn: training, evaluation and whatever
else turns uint8 pixels into model inputs call it, each
:class:`~npsnn.datasets.source.DataSource` with its own ``mean`` / ``std``. This module was
``npsnn.augment``; that import path still works.

Images stay ``uint8 (N, 3, 32, 32)`` in memory (50000 CIFAR images = 150 MB instead of
600 MB as float32); each batch is augmented in uint8 and only then normalised to float32.
Every random choice comes from an explicit ``np.random.Generator``, drawn in a fixed,
documented order, so a run is reproducible from its seed and a trainer can save
``rng.bit_generator.state`` and resume bit-exactly.

Training transform (the one of the official CIFAR recipe, torchvision
``RandomCrop(32, padding=4)`` + ``RandomHorizontalFlip()`` + ``Normalize``)::

    x_pad  = zero-pad x by p on each side                      (B, C, H+2p, W+2p)
    y[b]   = x_pad[b, :, dy_b : dy_b+H, dx_b : dx_b+W],  dy_b, dx_b ~ U{0..2p}
    y[b]   = y[b][..., ::-1]  with probability 1/2
    z      = (y / 255 - mean[c]) / std[c]                       float32

All of it is vectorised over the batch (one padding, one fancy-index gather), no Python
loop over samples.
"""
from __future__ import annotations

import numpy as np

from .._checks import expect_positive_int

__all__ = ["CIFAR10_MEAN", "CIFAR10_STD", "CIFAR100_MEAN", "CIFAR100_STD", "NORMALIZATION",
           "normalize", "random_crop_flip", "cutout", "train_transform", "eval_transform",
           "batches", "index_batches", "num_batches"]

# Per-channel (R, G, B) statistics used by the official training code.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
NORMALIZATION = {"cifar10": (CIFAR10_MEAN, CIFAR10_STD),
                 "cifar100": (CIFAR100_MEAN, CIFAR100_STD)}


# --------------------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------------------

def _expect_images(op: str, images, *, uint8: bool = True) -> np.ndarray:
    if not isinstance(images, np.ndarray):
        raise TypeError(f"{op} expected images to be a numpy.ndarray, got "
                        f"{type(images).__name__}")
    if uint8 and images.dtype != np.uint8:
        raise TypeError(f"{op} expected images of dtype uint8 (pixels 0..255, as returned by "
                        f"npsnn.datasets.load_cifar), got {images.dtype}; augment before "
                        f"normalising")
    if images.ndim != 4:
        raise ValueError(f"{op} expected images of shape (B, C, H, W), got {images.shape}; "
                         f"a single image needs a batch axis: images[None]")
    return images


def _expect_rng(op: str, rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{op} expected rng to be a numpy.random.Generator, got "
                        f"{type(rng).__name__}; create one with np.random.default_rng(seed)")
    return rng


def _expect_stats(op: str, name: str, values, channels: int) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (channels,):
        raise ValueError(f"{op} expected {name} with one value per channel ({channels}), "
                         f"got {values!r}")
    if name == "std" and not np.all(arr > 0):
        raise ValueError(f"{op} expected std > 0 for every channel, got {values!r}")
    return arr


# --------------------------------------------------------------------------------------
# normalisation
# --------------------------------------------------------------------------------------

def normalize(images: np.ndarray, mean=CIFAR10_MEAN, std=CIFAR10_STD,
              dtype=np.float32) -> np.ndarray:
    """uint8 pixels -> normalised floats: ``z = (x / 255 - mean[c]) / std[c]``.

    images: (B, C, H, W) uint8. Returns (B, C, H, W) ``dtype`` (float32 by default).
    Computed in ``dtype`` in the same order as torchvision's ``ToTensor`` + ``Normalize``
    (divide by 255, subtract, divide), so float32 results equal PyTorch's bit for bit.
    """
    op = "normalize"
    _expect_images(op, images)
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"{op} expected a floating dtype (float32 or float64), got {dtype}")
    c = images.shape[1]
    mean = _expect_stats(op, "mean", mean, c).astype(dtype)
    std = _expect_stats(op, "std", std, c).astype(dtype)
    z = images.astype(dtype)
    z /= dtype.type(255)
    z -= mean.reshape(1, c, 1, 1)               # in place: no extra (B, C, H, W) temporaries
    z /= std.reshape(1, c, 1, 1)
    return z


# --------------------------------------------------------------------------------------
# augmentation
# --------------------------------------------------------------------------------------

def random_crop_flip(images: np.ndarray, rng: np.random.Generator, padding: int = 4,
                     flip: bool = True) -> np.ndarray:
    """Random crop with zero padding + random horizontal flip, for a whole batch.

    images: (B, C, H, W) uint8. Returns a new (B, C, H, W) uint8 array.
    Random draws, in this order (the contract a resumed run relies on)::

        dy = rng.integers(0, 2 * padding + 1, size=B)     # crop offsets in the padded image
        dx = rng.integers(0, 2 * padding + 1, size=B)
        mirror = rng.random(B) < 0.5                       # only if flip

    Output ``y[b, c, i, j] = x_pad[b, c, dy_b + i, dx_b + j']`` with ``j' = W-1-j`` when
    mirrored: one gather with broadcast index arrays (B,1,H,1) and (B,1,1,W).
    """
    op = "random_crop_flip"
    _expect_images(op, images)
    _expect_rng(op, rng)
    if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ValueError(f"{op} expected padding to be an integer >= 0, got {padding!r}")
    b, c, h, w = images.shape
    p = int(padding)
    dy = rng.integers(0, 2 * p + 1, size=b)
    dx = rng.integers(0, 2 * p + 1, size=b)
    # Pad once for the whole batch; zero is the pad value of torchvision's RandomCrop.
    padded = np.zeros((b, c, h + 2 * p, w + 2 * p), dtype=np.uint8)
    padded[:, :, p:p + h, p:p + w] = images
    rows = dy[:, None] + np.arange(h)                                  # (B, H)
    cols = dx[:, None] + np.arange(w)                                  # (B, W)
    if flip:
        mirror = rng.random(b) < 0.5
        cols[mirror] = cols[mirror, ::-1]                              # read columns backwards
    return padded[np.arange(b)[:, None, None, None], np.arange(c)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]


def cutout(images: np.ndarray, rng: np.random.Generator, length: int = 16,
           value=0) -> np.ndarray:
    """Cutout (DeVries & Taylor 2017): zero one ``length`` x ``length`` square per image.

    images: (B, C, H, W), any dtype (usually applied after normalisation). Returns a new
    array. The square's centre is uniform over the image and the square is clipped at the
    borders, so it may be smaller near an edge. Random draws, in this order::

        cy = rng.integers(0, H, size=B);  cx = rng.integers(0, W, size=B)

    mask[b, i, j] = (cy_b - L//2 <= i < cy_b + L - L//2) and (same for j, cx_b)
    """
    op = "cutout"
    _expect_images(op, images, uint8=False)
    _expect_rng(op, rng)
    length = expect_positive_int(op, "length", length)
    b, _, h, w = images.shape
    cy = rng.integers(0, h, size=b)
    cx = rng.integers(0, w, size=b)
    lo, hi = length // 2, length - length // 2
    i, j = np.arange(h), np.arange(w)
    in_rows = (i >= (cy - lo)[:, None]) & (i < (cy + hi)[:, None])      # (B, H)
    in_cols = (j >= (cx - lo)[:, None]) & (j < (cx + hi)[:, None])      # (B, W)
    mask = in_rows[:, None, :, None] & in_cols[:, None, None, :]        # (B, 1, H, W)
    return np.where(mask, np.asarray(value, dtype=images.dtype), images)


def train_transform(images: np.ndarray, rng: np.random.Generator, *, mean=CIFAR10_MEAN,
                    std=CIFAR10_STD, padding: int = 4, flip: bool = True, cutout_length: int = 0,
                    dtype=np.float32) -> np.ndarray:
    """uint8 batch -> augmented, normalised float batch (B, C, H, W).

    crop + flip (uint8) -> normalise -> cutout (if ``cutout_length`` > 0, on the normalised
    values, as in the Cutout paper, so the hole is 0 = the dataset mean).
    """
    x = random_crop_flip(images, rng, padding=padding, flip=flip)
    x = normalize(x, mean, std, dtype)
    if cutout_length:
        x = cutout(x, rng, cutout_length)
    return x


def eval_transform(images: np.ndarray, *, mean=CIFAR10_MEAN, std=CIFAR10_STD,
                   dtype=np.float32) -> np.ndarray:
    """uint8 batch -> normalised float batch, no randomness."""
    return normalize(images, mean, std, dtype)


# --------------------------------------------------------------------------------------
# batching
# --------------------------------------------------------------------------------------

def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    """Number of batches :func:`index_batches` yields for ``n`` samples."""
    return n // batch_size if drop_last else -(-n // batch_size)


def index_batches(n: int, batch_size: int, rng: np.random.Generator | None = None, *,
                  shuffle: bool = True, drop_last: bool = False, start: int = 0):
    """Index arrays (int64) covering ``range(n)`` in batches, one epoch.

    With ``shuffle`` the order is ``rng.permutation(n)``, drawn once, *when this function
    is called* (not lazily at the first ``next``), so the rng's state after the call is
    known: a trainer that saved ``rng.bit_generator.state`` before the call and the number
    of batches already done resumes mid-epoch bit-exactly with ``start=done``. Skipped
    batches cost nothing and draw nothing. Without ``shuffle`` no rng is needed.
    The last batch is smaller when ``batch_size`` does not divide ``n``, unless
    ``drop_last``.
    """
    op = "index_batches"
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"{op} expected n to be an integer >= 0, got {n!r}")
    batch_size = expect_positive_int(op, "batch_size", batch_size)
    total = num_batches(n, batch_size, drop_last)
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or \
            not 0 <= start <= total:
        raise ValueError(f"{op} expected start between 0 and the number of batches "
                         f"({total}), got {start!r}")
    if shuffle:
        order = _expect_rng(op, rng).permutation(n)
    else:
        order = np.arange(n)

    def generate():
        for k in range(int(start), total):
            yield order[k * batch_size:(k + 1) * batch_size]

    return generate()


def batches(images: np.ndarray, labels: np.ndarray, batch_size: int,
            rng: np.random.Generator | None = None, shuffle: bool = True,
            drop_last: bool = False, start: int = 0):
    """Yield ``(images[idx], labels[idx])`` for one epoch; see :func:`index_batches`.

    images: (N, ...) and labels: (N,), any dtypes (typically uint8 images, int64 labels);
    the batches are copies (fancy indexing), safe to augment in place.
    """
    op = "batches"
    if not isinstance(images, np.ndarray) or not isinstance(labels, np.ndarray):
        raise TypeError(f"{op} expected images and labels to be numpy arrays, got "
                        f"{type(images).__name__} and {type(labels).__name__}")
    if labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{op} expected labels of shape (N,) with N = len(images) = "
                         f"{len(images)}, got labels of shape {labels.shape}")
    order = index_batches(len(images), batch_size, rng, shuffle=shuffle,
                          drop_last=drop_last, start=start)
    return ((images[idx], labels[idx]) for idx in order)
