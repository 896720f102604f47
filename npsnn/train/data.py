"""Where a run's data comes from, and the check that model and data fit each other.

The trainer and ``eval`` ask only the model's :class:`~npsnn.models.ModelSpec` and a
:class:`~npsnn.datasets.DataSource`: the source turns stored samples into float batches and
its encoding presents them to the model. :func:`check_fits` compares the two before the
first step, so a model built for other images or another number of classes is refused with
one line instead of failing inside the first forward.
"""
from __future__ import annotations

import numpy as np

from ..datasets import ArraySource, DataSource, open_source


def open_data(data, *, dataset: str | None, path, spec, config: dict) -> DataSource:
    """The run's :class:`DataSource`.

    data: None (open ``dataset`` (default: the model's, ``spec.dataset``) at ``path``), a
        DataSource, or the arrays ``(train images, train labels, test images, test labels)``
        (an :class:`~npsnn.datasets.ArraySource` with the CIFAR-10 statistics, CIFAR-100's
        for a 100-class model).
    """
    if data is None:
        return open_source(dataset or spec.dataset, path)
    if isinstance(data, DataSource):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 4:
        name = "cifar100" if config.get("num_classes") == 100 else "cifar10"
        return ArraySource((data[0], data[1]), (data[2], data[3]), name=name)
    raise TypeError(f"expected the data as a DataSource or as (train images, train labels, "
                    f"test images, test labels), got {type(data).__name__}")


def check_fits(spec, config: dict, source: DataSource, splits=("train", "test")) -> None:
    """Raise ValueError naming the mismatch if the data cannot feed a model of ``config``:
    the shape of one presented sample, and the number of classes (every label must be a
    class of the model, and the model must have exactly the data's classes)."""
    name = config.get("model", "the model")
    want = spec.sample_shape(config)
    for which in splits:
        samples, labels = source.split(which)
        if len(samples) == 0:
            raise ValueError(f"the {which} split of {source.name} is empty")
        got = source.eval_batch(samples[:1]).shape[1:]
        if tuple(got) != tuple(want):
            raise ValueError(f"the {name} model takes samples of shape {tuple(want)}, but the "
                             f"{source.name} data give {tuple(got)}: build the model for this "
                             f"data (in_channels / image_size in the config) or pass other data")
        top = int(labels.max())
        if top >= config["num_classes"]:
            raise ValueError(f"the {which} labels of {source.name} go up to {top}, but the model "
                             f"has only {config['num_classes']} classes: wrong data set, or set "
                             f"num_classes to {source.num_classes} in the config")
    if source.num_classes != config["num_classes"]:
        raise ValueError(f"{source.name} has {source.num_classes} classes but the model has "
                         f"{config['num_classes']}: set num_classes to {source.num_classes}")


def subset(samples, labels, n, seed):
    """A seeded random subset of ``n`` samples (kept in file order); all when n is None."""
    if n is None or n >= len(samples):
        return samples, labels
    keep = np.sort(np.random.default_rng(np.random.SeedSequence([seed, 0x5B5E7])).choice(
        len(samples), n, replace=False))
    return samples[keep], labels[keep]
