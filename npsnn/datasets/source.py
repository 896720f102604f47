"""The DataSource seam: everything the trainer and the evaluator ask of a data set.

::

    source = npsnn.datasets.open_source("cifar", "data/cifar-10-python.tar.gz")
    source.name, source.num_classes           # "cifar10", 10  (detected from the files)
    images, labels = source.split("train")    # uint8 (N, 3, 32, 32), int64 (N,); cached
    x = source.train_batch(images[idx], rng)  # float32 (B, 3, 32, 32): augmented, normalised
    x = source.eval_batch(images[idx])        # float32, normalised, no randomness
    logits = source.encoding.present(model, x, T)      # (T', B, K)

A :class:`DataSource` has

* ``name`` (``"cifar10"``, ...), ``num_classes``, ``sample_shape`` (one stored sample, e.g.
  ``(3, 32, 32)`` uint8), ``mean`` / ``std`` (per-channel normalisation statistics, applied
  by THE normaliser :func:`npsnn.datasets.transforms.normalize`), and ``encoding`` (how a
  batch reaches the model, :mod:`npsnn.datasets.encoding`; :class:`~.encoding.Direct` by
  default: the image repeated over T);
* ``split(which)`` -> ``(samples, labels)`` for ``"train"`` / ``"test"``: read on first use
  by :meth:`DataSource.load_split`, checked against ``sample_shape``, then cached;
* ``train_batch(samples, rng, *, augment=True, cutout=0, dtype=float32)`` and
  ``eval_batch(samples, dtype=float32)``: stored samples -> the float batch the encoding
  presents. Every random number comes from ``rng``, in a documented order, so a training
  run is reproducible from its seed and resumes bit-exactly.

Adding a data set is one new file, ``npsnn/datasets/<name>.py``, plus its line in
``DATASETS`` (``npsnn/datasets/__init__.py``, which imports every source; the registry is
not in this file so that a source module can import :class:`DataSource` from here without
an import cycle). The new class subclasses :class:`DataSource` (or :class:`CIFARSource`)
and overrides:

* ``load_split(which)`` (read the files), ``train_batch`` and ``eval_batch``, and sets
  ``name``, ``num_classes``, ``sample_shape``, ``mean``, ``std`` in ``__init__``;
* ``encoding`` only if batches do not reach the model as a repeated image.

Two examples: sequential CIFAR for SpikingSSM (``sequential.py``: a
:class:`CIFARSource` whose ``load_split`` converts each image to grayscale,
``sample_shape = (1024,)``, and whose batches are ``(B, 1, 1024)`` normalised sequences)
and CIFAR10-DVS (``cifar10_dvs.py``: event frames, ``train_batch`` / ``eval_batch`` ->
``(T, B, 2, H, W)``, with an encoding that feeds frame t at step t instead of repeating).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from .._checks import expect_choice
from . import transforms
from .cifar import detect_dataset, load_cifar
from .encoding import Direct, Encoding
from .transforms import NORMALIZATION, normalize, random_crop_flip

__all__ = ["DataSource", "CIFARSource", "ArraySource"]


class DataSource(ABC):
    """A data set as training and evaluation see it (the seam; see the module docstring).

    Subclasses set ``name``, ``num_classes``, ``sample_shape``, ``mean`` and ``std`` and
    define :meth:`load_split`, :meth:`train_batch` and :meth:`eval_batch`.
    """

    name: str
    num_classes: int
    sample_shape: tuple
    mean: tuple
    std: tuple
    encoding: Encoding = Direct()
    splits: tuple = ("train", "test")

    def __init__(self) -> None:
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def split(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        """``(samples (N, *sample_shape), labels (N,) int64)`` of split ``which``.

        Read by :meth:`load_split` on first use and kept: later calls return the same
        arrays, made read-only so that no caller can change what the next one gets
        (batches taken with fancy indexing, ``samples[idx]``, are fresh writable copies).
        """
        expect_choice(f"{type(self).__name__}.split", "which", which, self.splits)
        if which not in self._cache:
            samples, labels = self.load_split(which)
            self._check_split(which, samples, labels)
            samples.setflags(write=False)
            labels.setflags(write=False)
            self._cache[which] = samples, labels
        return self._cache[which]

    @abstractmethod
    def load_split(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        """Read split ``which`` from disk (not cached: :meth:`split` caches it)."""

    @abstractmethod
    def train_batch(self, samples: np.ndarray, rng: np.random.Generator, *,
                    augment: bool = True, cutout: int = 0, dtype=np.float32) -> np.ndarray:
        """Stored samples ``(B, *sample_shape)`` -> the float training batch (random)."""

    @abstractmethod
    def eval_batch(self, samples: np.ndarray, dtype=np.float32) -> np.ndarray:
        """Stored samples ``(B, *sample_shape)`` -> the float evaluation batch."""

    def _check_split(self, which: str, samples, labels) -> None:
        """A source's promise, checked once per split: a wrong shape here is a bug in the
        source, better named now than as a broadcasting error deep inside a model."""
        where = f"{type(self).__name__}.load_split({which!r})"
        if not (isinstance(samples, np.ndarray) and samples.shape[1:] == tuple(self.sample_shape)):
            got = samples.shape if isinstance(samples, np.ndarray) else type(samples).__name__
            raise ValueError(f"{where} returned samples of shape {got}, expected "
                             f"(N, {', '.join(map(str, self.sample_shape))})")
        if not (isinstance(labels, np.ndarray) and labels.shape == (len(samples),)
                and labels.dtype == np.int64):
            got = (f"{labels.dtype} {labels.shape}" if isinstance(labels, np.ndarray)
                   else type(labels).__name__)
            raise ValueError(f"{where} returned labels {got}, expected int64 "
                             f"({len(samples)},), one per sample")

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.name}: {self.num_classes} classes, samples "
                f"{tuple(self.sample_shape)}, {self.encoding!r}>")


class CIFARSource(DataSource):
    """CIFAR-10 or CIFAR-100 from any official archive or folder (:func:`load_cifar`).

    path: the archive or folder; which CIFAR it is comes from the file names (checked
        here, so a wrong path fails now, not at the first epoch).
    label: CIFAR-100 only: ``"fine"`` (100 classes, default) or ``"coarse"`` (20).

    ``name`` is ``"cifar10"`` or ``"cifar100"``; ``mean`` / ``std`` are that data set's
    statistics (:data:`npsnn.datasets.transforms.NORMALIZATION`). Samples are
    ``(3, 32, 32)`` uint8 images; the encoding is :class:`~.encoding.Direct`.
    """

    sample_shape = (3, 32, 32)

    def __init__(self, path, *, label: str = "fine") -> None:
        super().__init__()
        op = "CIFARSource"
        if path is None:
            raise ValueError(f"{op}: no data given: pass --data PATH (a CIFAR archive or "
                             f"folder)")
        expect_choice(op, "label", label, ("fine", "coarse"))
        self.path = Path(path).expanduser()
        self.label = label
        self.name = detect_dataset(self.path, op=op)
        if self.name == "cifar10" and label == "coarse":
            raise ValueError(f"{op}: {self.path} is CIFAR-10, which has no coarse labels; "
                             f"use label='fine' (the default), or pass CIFAR-100")
        self.num_classes = 10 if self.name == "cifar10" else (20 if label == "coarse" else 100)
        self.mean, self.std = NORMALIZATION[self.name]

    def load_split(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        return load_cifar(self.path, which, label=self.label)

    def train_batch(self, samples: np.ndarray, rng: np.random.Generator, *,
                    augment: bool = True, cutout: int = 0, dtype=np.float32) -> np.ndarray:
        """uint8 ``(B, 3, 32, 32)`` -> ``dtype`` ``(B, 3, 32, 32)``, the official recipe:

        random crop (zero padding 4) + horizontal flip (if ``augment``), normalise, then
        cutout of a ``cutout`` x ``cutout`` square (if ``cutout`` > 0; on normalised values,
        so the hole is the data set's mean). Random draws from ``rng``, in this order:
        crop offsets and flips (:func:`~.transforms.random_crop_flip`), then cutout
        centres (:func:`~.transforms.cutout`); the order of
        :func:`~.transforms.train_transform`, so a seed gives the same batches as before.
        """
        x = random_crop_flip(samples, rng) if augment else samples
        x = normalize(x, self.mean, self.std, dtype)
        return transforms.cutout(x, rng, cutout) if cutout else x

    def eval_batch(self, samples: np.ndarray, dtype=np.float32) -> np.ndarray:
        """uint8 ``(B, 3, 32, 32)`` -> normalised ``dtype`` batch, no randomness."""
        return normalize(samples, self.mean, self.std, dtype)

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", label {self.label!r}, from '{self.path}'>"


class ArraySource(CIFARSource):
    """CIFAR-style images already in memory (tests, notebooks, hand-made subsets).

    train, test: ``(images uint8 (N, C, H, W), labels int (N,))`` pairs; name: whose
    normalisation statistics and class count to use (``"cifar10"`` or ``"cifar100"``).
    Batches are made exactly as :class:`CIFARSource` makes them. The arrays are not
    copied; the read-only views :meth:`split` returns leave the caller's arrays writable.
    """

    def __init__(self, train, test, *, name: str = "cifar10") -> None:
        DataSource.__init__(self)
        expect_choice("ArraySource", "name", name, tuple(NORMALIZATION))
        self.name, self.label, self.path = name, "fine", None
        self.num_classes = 10 if name == "cifar10" else 100
        self.mean, self.std = NORMALIZATION[name]
        self._arrays = {"train": train, "test": test}
        images = train[0]
        if not (isinstance(images, np.ndarray) and images.ndim == 4):
            raise ValueError(f"ArraySource expected train images of shape (N, C, H, W), got "
                             f"{getattr(images, 'shape', type(images).__name__)}")
        if images.shape[1] != len(self.mean):
            raise ValueError(f"ArraySource: the {name} normalisation is for {len(self.mean)} "
                             f"channels, but the images have {images.shape[1]} "
                             f"(shape {images.shape}); pass (N, {len(self.mean)}, H, W) images")
        self.sample_shape = images.shape[1:]

    def load_split(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        images, labels = self._arrays[which]
        labels = np.asarray(labels)
        if labels.dtype.kind not in "iu":
            raise ValueError(f"ArraySource: {which} labels must be integers, got {labels.dtype}")
        return images.view(), labels.astype(np.int64)

    def __repr__(self) -> str:
        return DataSource.__repr__(self)[:-1] + ", in memory>"
