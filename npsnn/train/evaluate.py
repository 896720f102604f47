"""Evaluation: top-1 accuracy and cross-entropy of a model on a labelled split."""
from __future__ import annotations

from typing import Callable

from .. import augment
from ..ops import losses


def evaluate(model, images, labels, T: int, mean, std, batch: int = 250,
             should_stop: Callable[[], bool] | None = None):
    """Top-1 accuracy (%) and mean cross-entropy (no smoothing) of the T-averaged logits.

    images: (N, 3, H, W) uint8, labels: (N,). Runs in eval mode (BN running statistics)
    and restores the previous mode. -> (accuracy %, loss), or None if stopped.
    """
    was_training = model.training
    model.eval()
    correct, loss_sum = 0, 0.0
    try:
        for i in range(0, len(images), batch):
            if should_stop is not None and should_stop():
                return None
            x = augment.eval_transform(images[i:i + batch], mean=mean, std=std, dtype=model.dtype)
            y = labels[i:i + batch]
            logits = model.forward_repeated(x, T)
            loss, _ = losses.cross_entropy_forward(logits, y)
            loss_sum += loss * len(y)
            correct += int((logits.mean(axis=0).argmax(axis=1) == y).sum())
    finally:
        model.train(was_training)
    n = max(len(images), 1)
    return 100.0 * correct / n, loss_sum / n
