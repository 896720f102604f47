"""Soft-target cross-entropy (the official recipe's loss): formula, finite differences,
and agreement with the hard-label cross-entropy on smoothed one-hot targets."""
import numpy as np
import pytest

from gradcheck import assert_grads
from npsnn.datasets.mixing import soft_targets
from npsnn.ops import losses


def data(T=3, B=5, K=6, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.random((B, K))
    return rng.normal(size=(T, B, K)) * 2, q / q.sum(1, keepdims=True)


def test_formula_and_gradcheck():
    logits, q = data()
    loss, cache = losses.soft_cross_entropy_forward(logits, q)
    o = logits.mean(0)
    logp = o - o.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    assert abs(loss - np.mean(-(q * logp).sum(1))) < 1e-12 * loss
    dloss = 0.7
    d = losses.soft_cross_entropy_backward(cache, dloss)
    assert d.shape == logits.shape
    assert_grads(lambda: dloss * losses.soft_cross_entropy_forward(logits, q)[0],
                 {"logits": (logits, d)})


@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_equals_cross_entropy_on_smoothed_one_hot_targets(ls):
    logits, _ = data(seed=1)
    y = np.array([0, 3, 5, 1, 1])
    hard, hard_cache = losses.cross_entropy_forward(logits, y, ls)
    soft, soft_cache = losses.soft_cross_entropy_forward(logits, soft_targets(y, 6, ls,
                                                                              np.float64))
    assert abs(hard - soft) < 1e-13
    np.testing.assert_allclose(losses.soft_cross_entropy_backward(soft_cache),
                               losses.cross_entropy_backward(hard_cache), atol=1e-16)


def test_bad_targets_are_refused():
    logits, q = data()
    with pytest.raises(ValueError, match=r"targets of shape \(5, 6\)"):
        losses.soft_cross_entropy_forward(logits, q[:4])
