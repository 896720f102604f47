"""Evaluation: top-1 accuracy and cross-entropy of a model on a labelled split."""
from __future__ import annotations

from typing import Callable

from ..datasets.encoding import Direct
from ..datasets.transforms import CIFAR10_MEAN, CIFAR10_STD, eval_transform
from ..ops import losses


def evaluate(model, images, labels, T: int, mean=CIFAR10_MEAN, std=CIFAR10_STD,
             batch: int = 250, should_stop: Callable[[], bool] | None = None, *,
             source=None):
    """Top-1 accuracy (%) and mean cross-entropy (no smoothing) of the T-averaged logits.

    images: (N, ...) stored samples (uint8), labels: (N,). source: the
    :class:`~npsnn.datasets.DataSource` whose ``eval_batch`` and encoding present them;
    without one, images are normalised with ``mean`` / ``std`` and shown directly at every
    step. Runs in eval mode (BN running statistics) and restores the previous mode.
    -> (accuracy %, loss), or None if ``should_stop()`` said so between batches.
    """
    encoding = source.encoding if source is not None else Direct()
    was_training = model.training
    model.eval()
    correct, loss_sum = 0, 0.0
    try:
        for i in range(0, len(images), batch):
            if should_stop is not None and should_stop():
                return None
            chunk = images[i:i + batch]
            x = source.eval_batch(chunk, dtype=model.dtype) if source is not None else \
                eval_transform(chunk, mean=mean, std=std, dtype=model.dtype)
            y = labels[i:i + batch]
            logits = encoding.present(model, x, T)
            loss, _ = losses.cross_entropy_forward(logits, y)
            loss_sum += loss * len(y)
            correct += int((logits.mean(axis=0).argmax(axis=1) == y).sum())
    finally:
        model.train(was_training)
    n = max(len(images), 1)
    return 100.0 * correct / n, loss_sum / n
