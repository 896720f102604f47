"""BatchNorm over any feature axis: gradient checks in train and eval mode, the running
statistics update rules (PyTorch conventions), the ``count=`` override, and bad input."""
import numpy as np
import pytest

from opchecks import CASES, _bn_data, check_bn
from gradcheck import assert_grads
from npsnn.ops import axis_projection as ap_mod
from npsnn.ops import batchnorm as bn_mod
from npsnn.ops.batchnorm import BatchNorm


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batchnorm_gradcheck(case, training):
    shape, axis = CASES[case]
    check_bn(shape, axis, training, max_checks=200)


def _explicit(x, axis, w, b, rm, rv, eps=1e-5):
    """Per-feature statistics the slow way: move the feature axis first, flatten the rest."""
    xf = np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
    return xf.mean(1), xf.var(1), xf.var(1, ddof=1), xf.shape[1]


@pytest.mark.parametrize("case", sorted(CASES))
def test_batchnorm_forward_and_running_stats_explicit(case):
    shape, axis = CASES[case]
    x, w, b, rm, rv, _ = _bn_data(shape, axis, seed=4)
    mean, var_b, var_u, n = _explicit(x, axis, w, b, rm, rv)
    bshape = [1] * x.ndim
    bshape[axis] = -1
    rm1, rv1 = rm.copy(), rv.copy()
    y, _ = bn_mod.batchnorm_forward(x, w, b, rm1, rv1, axis=axis, training=True)
    expect = (x - mean.reshape(bshape)) / np.sqrt(var_b.reshape(bshape) + 1e-5) \
        * w.reshape(bshape) + b.reshape(bshape)
    np.testing.assert_allclose(y, expect, rtol=1e-12, atol=1e-12)
    # biased variance normalises; the running update uses the unbiased one, momentum 0.1
    np.testing.assert_allclose(rm1, 0.9 * rm + 0.1 * mean, rtol=1e-12)
    np.testing.assert_allclose(rv1, 0.9 * rv + 0.1 * var_u, rtol=1e-12)
    assert not np.allclose(rv1, 0.9 * rv + 0.1 * var_b)     # the two really differ here
    # count= overrides n in n/(n-1) only
    rm2, rv2 = rm.copy(), rv.copy()
    y2, _ = bn_mod.batchnorm_forward(x, w, b, rm2, rv2, axis=axis, training=True, count=4 * n)
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_allclose(rm2, rm1, rtol=1e-12)
    np.testing.assert_allclose(rv2, 0.9 * rv + 0.1 * var_b * (4 * n) / (4 * n - 1), rtol=1e-12)
    # eval uses the running statistics and changes nothing
    rm3, rv3 = rm.copy(), rv.copy()
    y3, _ = bn_mod.batchnorm_forward(x, w, b, rm3, rv3, axis=axis, training=False)
    expect3 = (x - rm.reshape(bshape)) / np.sqrt(rv.reshape(bshape) + 1e-5) \
        * w.reshape(bshape) + b.reshape(bshape)
    np.testing.assert_allclose(y3, expect3, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(rm3, rm)
    np.testing.assert_array_equal(rv3, rv)


def test_batchnorm_momentum_and_eps_options():
    x, w, b, rm, rv, _ = _bn_data((4, 3, 5), 1, seed=2)
    mean, var_b, var_u, n = _explicit(x, 1, w, b, rm, rv)
    rm1, rv1 = rm.copy(), rv.copy()
    y, _ = bn_mod.batchnorm_forward(x, w, b, rm1, rv1, axis=1, training=True, momentum=0.3,
                                    eps=0.5)
    np.testing.assert_allclose(rm1, 0.7 * rm + 0.3 * mean, rtol=1e-12)
    np.testing.assert_allclose(rv1, 0.7 * rv + 0.3 * var_u, rtol=1e-12)
    xhat = (x - mean[:, None]) / np.sqrt(var_b[:, None] + 0.5)
    np.testing.assert_allclose(y, xhat * w[:, None] + b[:, None], rtol=1e-12, atol=1e-12)


def test_batchnorm_layer_buffers_and_num_batches_tracked():
    rng = np.random.default_rng(0)
    bn = BatchNorm(5, axis=2, dtype=np.float64)
    assert set(bn.params) == {"weight", "bias"}
    assert set(bn.buffers) == {"running_mean", "running_var", "num_batches_tracked"}
    np.testing.assert_array_equal(bn.params["weight"], 1)
    np.testing.assert_array_equal(bn.buffers["running_var"], 1)
    assert bn.buffers["num_batches_tracked"].dtype == np.int64
    assert bn.buffers["num_batches_tracked"].shape == ()
    x = rng.normal(size=(2, 3, 5, 4))
    g = rng.normal(size=x.shape)
    for k in range(1, 4):
        bn.forward(x)
        assert int(bn.buffers["num_batches_tracked"]) == k
    bn.backward(g)
    bn.forward(x)
    bn.backward(g)
    _, cache = bn_mod.batchnorm_forward(x, bn.params["weight"], bn.params["bias"],
                                        np.zeros(5), np.ones(5), axis=2, training=True)
    _, dw, db = bn_mod.batchnorm_backward(g, cache)
    np.testing.assert_allclose(bn.grads["weight"], 2 * dw)
    np.testing.assert_allclose(bn.grads["bias"], 2 * db)
    bn.eval()
    rm = bn.buffers["running_mean"].copy()
    bn.forward(x)
    assert int(bn.buffers["num_batches_tracked"]) == 4          # eval does not count
    np.testing.assert_array_equal(bn.buffers["running_mean"], rm)
    # count= through the layer
    bn2 = BatchNorm(5, axis=2, dtype=np.float64)
    bn2.forward(x, count=1000)
    _, var_b, _, _ = _explicit(x, 2, None, None, None, None)
    np.testing.assert_allclose(bn2.buffers["running_var"], 0.9 + 0.1 * var_b * 1000 / 999,
                               rtol=1e-12)
    assert BatchNorm(3, axis=1).params["weight"].dtype == np.float32


def test_bias_before_train_mode_bn_has_zero_gradient_and_the_floor_handles_it():
    """A bias feeding a train-mode BN over the same axis (the token-mixer projections):
    its gradient is exactly zero in exact arithmetic, rounding noise in floating point.
    Checked against a floor at the scale of the other gradients."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 4, 5, 2))
    wp, bp = rng.normal(size=(4, 4, 1, 1)), rng.normal(size=4)
    w, b = 1 + rng.random(4), rng.normal(size=4)
    g = rng.normal(size=x.shape)

    def fwd():
        p, c1 = ap_mod.axis_projection_forward(x, wp, bp, axis=2)
        y, c2 = bn_mod.batchnorm_forward(p, w, b, np.zeros(4), np.ones(4), axis=2,
                                         training=True)
        return y, (c1, c2)

    def loss():
        return float(np.sum(fwd()[0] * g))

    _, (c1, c2) = fwd()
    dp, dw, db = bn_mod.batchnorm_backward(g, c2)
    dx, dwp, dbp = ap_mod.axis_projection_backward(dp, c1)
    largest = max(np.abs(d).max() for d in (dx, dwp, dw, db))
    assert np.abs(dbp).max() < 1e-12 * largest
    # The finite differences of a zero gradient are noise of order |f| 1e-16 / eps, far above
    # the default floor, so the floor for this tensor is the scale of the other gradients.
    pairs = {"x": (x, dx), "proj.weight": (wp, dwp), "bn.weight": (w, dw), "bn.bias": (b, db)}
    assert_grads(loss, pairs, max_checks=100)
    assert_grads(loss, {"proj.bias": (bp, dbp)}, floor=largest)
    with pytest.raises(AssertionError, match="proj.bias"):   # a wrong nonzero value fails
        assert_grads(loss, {"proj.bias": (bp, dbp + 1e-4 * largest)}, floor=largest)


@pytest.mark.parametrize("num_features", [0, -2, 3.5])
def test_batchnorm_num_features_must_be_positive(num_features):
    with pytest.raises(ValueError, match=fr"BatchNorm expected num_features to be a positive "
                                         fr"integer, got {num_features}"):
        BatchNorm(num_features, axis=1)


def test_batchnorm_bad_input():
    bn = BatchNorm(4, axis=2)
    with pytest.raises(ValueError, match=r"BatchNorm\(4\) expected x with 4 features along "
                                         r"axis 2, got x of shape \(2, 3, 5, 6\)"):
        bn.forward(np.zeros((2, 3, 5, 6), np.float32))
    with pytest.raises(ValueError, match=r"BatchNorm\(4\) expected x with 4 features along "
                                         r"axis 2, got x of shape \(8, 4\)"):
        bn.forward(np.zeros((8, 4), np.float32))       # axis out of range
    with pytest.raises(TypeError, match=r"BatchNorm expected x with a floating dtype .*got int32"):
        bn.forward(np.zeros((2, 3, 4), np.int32))
    with pytest.raises(ValueError, match=r"BatchNorm in train mode needs more than one value "
                                         r"per feature, got x of shape \(1, 1, 4\)"):
        bn.forward(np.zeros((1, 1, 4), np.float32))
    with pytest.raises(RuntimeError, match=r"BatchNorm.backward called before forward"):
        bn.backward(np.zeros((2, 3, 4), np.float32))
    bn.forward(np.ones((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match=r"BatchNorm.backward expected dy of shape \(2, 3, 4\).*"
                                         r"got \(2, 4, 3\)"):
        bn.backward(np.zeros((2, 4, 3), np.float32))
    bn.eval()
    bn.forward(np.zeros((1, 1, 4), np.float32))           # one value is fine in eval mode
    with pytest.raises(RuntimeError, match=r"BatchNorm.backward called before forward"):
        bn.backward(np.zeros((1, 1, 4), np.float32))       # eval keeps no cache


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_keeps_float32(training):
    x, w, b, rm, rv, g = (a.astype(np.float32) for a in _bn_data((2, 3, 4, 5), 2))
    y, cache = bn_mod.batchnorm_forward(x, w, b, rm, rv, axis=2, training=training)
    dx, dw, db = bn_mod.batchnorm_backward(g, cache)
    assert y.dtype == dx.dtype == dw.dtype == db.dtype == rm.dtype == rv.dtype == np.float32


@pytest.mark.parametrize("shape, axis", [((3, 4, 5, 5, 6), 4), ((3, 4, 9, 7), 2),
                                         ((3, 4, 5, 5, 6), 2)])
def test_blocked_batchnorm_does_not_depend_on_the_threads(monkeypatch, shape, axis):
    """BN works on blocks of rows (CHUNK_BYTES) on the worker threads: with tiny blocks the
    result is the whole-array one to rounding, and for a given block size the same bits on
    1, 2 or 3 threads (partial sums are added in block order), forward and backward,
    train and eval."""
    from npsnn import workers
    x, w, b, rm, rv, _ = _bn_data(shape, axis, seed=3)
    dy = np.random.default_rng(4).normal(size=shape)

    def run():
        out = []
        for training in (True, False):
            rm1, rv1 = rm.copy(), rv.copy()
            y, cache = bn_mod.batchnorm_forward(x, w, b, rm1, rv1, axis=axis,
                                                training=training)
            out += [y, rm1, rv1, *bn_mod.batchnorm_backward(dy, cache)]
        return out

    whole = run()
    monkeypatch.setattr(bn_mod, "CHUNK_BYTES", 8)          # one row per block
    blocked = []
    try:
        for n in (1, 2, 3):
            workers.set_workers(n)
            blocked.append(run())
    finally:
        workers.set_workers(1)
    for a, b1, b2, b3 in zip(whole, *blocked):
        np.testing.assert_allclose(b1, a, rtol=1e-13, atol=1e-13)
        np.testing.assert_array_equal(b2, b1)
        np.testing.assert_array_equal(b3, b1)
