"""Datasets: reading them, transforming them, and handing batches to a model.

* :mod:`npsnn.datasets.cifar`: CIFAR-10 / CIFAR-100 in every official format
  (:func:`load_cifar`, :func:`load_class_names`, :func:`sample_path`).
* :mod:`npsnn.datasets.download`: :func:`download` of the official archives, their
  :data:`URLS` and :data:`MD5` sums.
* :mod:`npsnn.datasets.transforms`: THE normaliser (``normalize``), random crop + flip,
  cutout, batching (was ``npsnn.augment``).
"""
from __future__ import annotations

from ..io.safe_pickle import UnsafePickleError
from .cifar import load_cifar, load_class_names, sample_path
from .download import MD5, URLS, download

__all__ = ["load_cifar", "load_class_names", "download", "sample_path", "MD5", "URLS",
           "UnsafePickleError"]
