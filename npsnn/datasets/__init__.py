"""Datasets: reading them, transforming them, and handing batches to a model.

* :mod:`npsnn.datasets.source`: the seam, :class:`DataSource` (splits, normalisation,
  train / eval batches, encoding), and :class:`~npsnn.datasets.source.CIFARSource`;
  :data:`DATASETS` below lists every source and :func:`open_source` opens one by name.
* :mod:`npsnn.datasets.encoding`: how a batch reaches the model (:class:`Direct`: the
  image repeated over T; :class:`Rate` and :class:`Latency`: spikes drawn from it).
* :mod:`npsnn.datasets.transforms`: THE normaliser (``normalize``), random crop + flip,
  cutout, batching (was ``npsnn.augment``).
* :mod:`npsnn.datasets.cifar`: CIFAR-10 / CIFAR-100 in every official format
  (:func:`load_cifar`, :func:`load_class_names`, :func:`sample_path`), with
  :mod:`~npsnn.datasets.cifar_batches` decoding one batch file.
* :mod:`npsnn.datasets.download`: :func:`download` of the official archives, their
  :data:`URLS` and :data:`MD5` sums.
"""
from __future__ import annotations

from ..io.safe_pickle import UnsafePickleError
from .cifar import load_cifar, load_class_names, sample_path
from .download import MD5, URLS, download
from .encoding import Direct, Encoding, Latency, Rate
from .sequential import SequentialCIFARSource
from .source import ArraySource, CIFARSource, DataSource

__all__ = ["load_cifar", "load_class_names", "download", "sample_path", "MD5", "URLS",
           "UnsafePickleError", "DataSource", "CIFARSource", "ArraySource", "DATASETS", "open_source",
           "Encoding", "Direct", "Rate", "Latency", "SequentialCIFARSource"]

#: data source name -> class; a new data set adds its file and one line here
#: (see npsnn/datasets/source.py)
DATASETS: dict[str, type[DataSource]] = {
    "cifar": CIFARSource,
    "scifar": SequentialCIFARSource,
}


def open_source(name: str, path, **options) -> DataSource:
    """The data source ``name`` (a key of :data:`DATASETS`) reading ``path``.

    ``options`` go to the source's constructor, e.g. ``open_source("cifar", p,
    label="coarse")`` for CIFAR-100's 20 super-classes.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data source {name!r}; known data sources: "
                         f"{', '.join(sorted(DATASETS))}")
    return DATASETS[name](path, **options)
