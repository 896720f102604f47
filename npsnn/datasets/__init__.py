"""Datasets: reading them, transforming them, and handing batches to a model.

* :mod:`npsnn.datasets.cifar`: CIFAR-10 / CIFAR-100 in every official format
  (:func:`load_cifar`, :func:`load_class_names`, :func:`sample_path`) and :func:`download`.
* :mod:`npsnn.datasets.transforms`: THE normaliser (``normalize``), random crop + flip,
  cutout, batching (was ``npsnn.augment``).
"""
from __future__ import annotations

from ..io.safe_pickle import UnsafePickleError
from .cifar import MD5, URLS, download, load_cifar, load_class_names, sample_path

__all__ = ["load_cifar", "load_class_names", "download", "sample_path", "MD5", "URLS",
           "UnsafePickleError"]
