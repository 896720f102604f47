"""Axis projection, the parameter-free shape ops (concat, add, mean-pool over H and W, the
image <-> token rearrangements) and the losses (CE, TET, MSE): gradient checks, explicit
formulas, bad input."""
import numpy as np
import pytest

from opchecks import AP_CASES, check_axis_projection
from gradcheck import assert_grads
from npsnn.ops import axis_projection as ap_mod
from npsnn.ops import losses
from npsnn.ops import shape as shape_mod
from npsnn.ops.axis_projection import AxisProjection


# -- axis projection -------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(AP_CASES))
@pytest.mark.parametrize("bias", [True, False])
def test_axis_projection_gradcheck(case, bias):
    check_axis_projection(case, bias, max_checks=200)


def test_axis_projection_layer():
    rng = np.random.default_rng(0)
    layer = AxisProjection(4, axis=3, dtype=np.float64, rng=np.random.default_rng(1))
    assert layer.params["weight"].shape == (4, 4, 1, 1) and layer.params["bias"].shape == (4,)
    assert np.abs(layer.params["weight"]).max() <= 0.5          # U(+-1/sqrt(4))
    x = rng.normal(size=(2, 2, 3, 4, 5))
    g = rng.normal(size=x.shape)
    for _ in range(2):
        layer.forward(x)
        dx = layer.backward(g)
    _, cache = ap_mod.axis_projection_forward(x, layer.params["weight"], layer.params["bias"], 3)
    rdx, rdw, rdb = ap_mod.axis_projection_backward(g, cache)
    np.testing.assert_allclose(dx, rdx)
    np.testing.assert_allclose(layer.grads["weight"], 2 * rdw)
    np.testing.assert_allclose(layer.grads["bias"], 2 * rdb)
    layer.need_input_grad = False
    layer.forward(x)
    assert layer.backward(g) is None


def test_axis_projection_bad_input():
    with pytest.raises(ValueError, match=r"AxisProjection expected size to be a positive integer, got 0"):
        AxisProjection(0, axis=2)
    layer = AxisProjection(4, axis=2)
    with pytest.raises(ValueError, match=r"AxisProjection\(4\) expected x with 4 positions "
                                         r"along axis 2, got x of shape \(2, 3, 5, 4, 6\)"):
        layer.forward(np.zeros((2, 3, 5, 4, 6), np.float32))
    with pytest.raises(ValueError, match=r"AxisProjection\(4\) expected x with 4 positions "
                                         r"along axis 2, got x of shape \(4, 4\)"):
        layer.forward(np.zeros((4, 4), np.float32))
    with pytest.raises(TypeError, match=r"AxisProjection expected x with a floating dtype .*got int64"):
        layer.forward(np.zeros((2, 3, 4, 4, 6), np.int64))
    with pytest.raises(RuntimeError, match=r"AxisProjection.backward called before forward"):
        layer.backward(np.zeros((2, 3, 4, 4, 6), np.float32))
    layer.forward(np.zeros((2, 3, 4, 4, 6), np.float32))
    with pytest.raises(ValueError, match=r"AxisProjection.backward expected dy of shape "
                                         r"\(2, 3, 4, 4, 6\).*got \(2, 3, 4, 6, 4\)"):
        layer.backward(np.zeros((2, 3, 4, 6, 4), np.float32))


# -- concat and add --------------------------------------------------------------------------

@pytest.mark.parametrize("axis", [1, -1, 0])
def test_concat_gradcheck(axis):
    rng = np.random.default_rng(0)
    base = [2, 3, 4]
    xs = []
    for size in (2, 1, 3):
        shape = list(base)
        shape[axis] = size
        xs.append(rng.normal(size=shape))
    y, cache = shape_mod.concat_forward(xs, axis=axis)
    np.testing.assert_array_equal(y, np.concatenate(xs, axis=axis))
    g = rng.normal(size=y.shape)
    dxs = shape_mod.concat_backward(g, cache)

    def loss():
        return float(np.sum(shape_mod.concat_forward(xs, axis=axis)[0] * g))

    assert_grads(loss, {f"x{i}": (x, d) for i, (x, d) in enumerate(zip(xs, dxs))})


@pytest.mark.parametrize("a_shape,b_shape", [
    ((2, 3, 4), (2, 3, 4)),
    ((2, 3, 4), (4,)),                 # leading axes added by broadcasting
    ((2, 3, 4), (3, 1)),               # leading and size-1 axes
    ((2, 1, 4), (5, 1)),               # both sides broadcast
    ((1, 3, 1), (2, 1, 4)),
])
def test_add_gradcheck_with_broadcasting(a_shape, b_shape):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=a_shape), rng.normal(size=b_shape)
    y, cache = shape_mod.add_forward(a, b)
    np.testing.assert_array_equal(y, a + b)
    g = rng.normal(size=y.shape)
    da, db = shape_mod.add_backward(g, cache)

    def loss():
        return float(np.sum(shape_mod.add_forward(a, b)[0] * g))

    assert_grads(loss, {"a": (a, da), "b": (b, db)})


def test_concat_and_add_bad_input():
    with pytest.raises(ValueError, match=r"concat expected xs\[1\] to match xs\[0\] \(2, 3\) on "
                                         r"every axis but -1, got \(3, 3\)"):
        shape_mod.concat_forward([np.zeros((2, 3)), np.zeros((3, 3))])
    with pytest.raises(ValueError, match=r"concat expected xs\[1\] to match xs\[0\] \(2, 3\) .*"
                                         r"got \(2, 3, 1\)"):
        shape_mod.concat_forward([np.zeros((2, 3)), np.zeros((2, 3, 1))])
    with pytest.raises(TypeError, match=r"concat expected xs\[0\] with a floating dtype .*got int64"):
        shape_mod.concat_forward([np.zeros((2, 3), np.int64)])
    with pytest.raises(ValueError, match=r"concat expected at least one array, got none"):
        shape_mod.concat_forward([])
    _, cache = shape_mod.concat_forward([np.zeros((2, 3)), np.zeros((2, 1))])
    with pytest.raises(ValueError, match=r"concat.backward expected dy of shape \(2, 4\).*"
                                         r"got \(2, 5\)"):
        shape_mod.concat_backward(np.zeros((2, 5)), cache)
    with pytest.raises(RuntimeError, match=r"concat.backward called before forward"):
        shape_mod.concat_backward(np.zeros((2, 4)), None)
    with pytest.raises(ValueError, match=r"add expected broadcastable shapes, got \(2, 3\) and \(4,\)"):
        shape_mod.add_forward(np.zeros((2, 3)), np.zeros(4))
    _, cache = shape_mod.add_forward(np.zeros((2, 3)), np.zeros(3))
    with pytest.raises(ValueError, match=r"add.backward expected dy of shape \(2, 3\).*got \(4, 3\)"):
        shape_mod.add_backward(np.zeros((4, 3)), cache)
    with pytest.raises(RuntimeError, match=r"add.backward called before forward"):
        shape_mod.add_backward(np.zeros((2, 3)), None)


# -- mean pool and rearrangements ------------------------------------------------------------

@pytest.mark.parametrize("channels_last", [True, False])
def test_mean_pool_hw_gradcheck(channels_last):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 3, 5, 4) if channels_last else (2, 3, 4, 3, 5))
    y, cache = shape_mod.mean_pool_hw_forward(x, channels_last)
    explicit = x.mean(axis=(2, 3)) if channels_last else x.mean(axis=(3, 4))
    np.testing.assert_allclose(y, explicit, rtol=1e-12)
    assert y.shape == (2, 3, 4)
    g = rng.normal(size=y.shape)
    dx = shape_mod.mean_pool_hw_backward(g, cache)

    def loss():
        return float(np.sum(shape_mod.mean_pool_hw_forward(x, channels_last)[0] * g))

    assert_grads(loss, {"x": (x, dx)})


def test_image_tokens_rearrangement_and_its_backward():
    rng = np.random.default_rng(0)
    T, B, C, H, W = 2, 3, 4, 3, 5
    x = rng.normal(size=(T, B, C, H, W))
    tok = shape_mod.image_to_tokens(x)
    assert tok.shape == (T, B, H * W, C)
    h, w, c = 2, 3, 1                           # row-major token index n = h W + w
    np.testing.assert_array_equal(tok[:, :, h * W + w, c], x[:, :, c, h, w])
    np.testing.assert_array_equal(shape_mod.tokens_to_image(tok, H, W), x)
    # the backward of image_to_tokens is tokens_to_image (and vice versa)
    g = rng.normal(size=tok.shape)
    assert_grads(lambda: float(np.sum(shape_mod.image_to_tokens(x) * g)),
                 {"x": (x, shape_mod.tokens_to_image(g, H, W))})
    g2 = rng.normal(size=x.shape)
    assert_grads(lambda: float(np.sum(shape_mod.tokens_to_image(tok, H, W) * g2)),
                 {"tokens": (tok, shape_mod.image_to_tokens(g2))})


def test_mean_pool_and_rearrangement_bad_input():
    with pytest.raises(ValueError, match=r"mean_pool_hw expected x of shape \(T, B, H, W, C\), "
                                         r"got \(2, 3, 4, 5\)"):
        shape_mod.mean_pool_hw_forward(np.zeros((2, 3, 4, 5)))
    with pytest.raises(TypeError, match=r"mean_pool_hw expected x with a floating dtype .*got int64"):
        shape_mod.mean_pool_hw_forward(np.zeros((1, 1, 2, 2, 3), np.int64))
    _, cache = shape_mod.mean_pool_hw_forward(np.zeros((2, 3, 4, 4, 5)))
    with pytest.raises(ValueError, match=r"mean_pool_hw.backward expected dy of shape \(2, 3, 5\)"
                                         r".*got \(2, 3, 4\)"):
        shape_mod.mean_pool_hw_backward(np.zeros((2, 3, 4)), cache)
    with pytest.raises(RuntimeError, match=r"mean_pool_hw.backward called before forward"):
        shape_mod.mean_pool_hw_backward(np.zeros((2, 3, 5)), None)
    with pytest.raises(ValueError, match=r"image_to_tokens expected x of shape \(T, B, C, H, W\), "
                                         r"got \(3, 4, 5, 6\)"):
        shape_mod.image_to_tokens(np.zeros((3, 4, 5, 6)))
    with pytest.raises(ValueError, match=r"tokens_to_image expected x of shape \(T, B, 12, C\), "
                                         r"got \(2, 3, 10, 4\)"):
        shape_mod.tokens_to_image(np.zeros((2, 3, 10, 4)), 3, 4)
    with pytest.raises(TypeError, match=r"tokens_to_image expected x with a floating dtype"):
        shape_mod.tokens_to_image(np.zeros((2, 3, 12, 4), np.int32), 3, 4)


# -- losses ----------------------------------------------------------------------------------

def _log_softmax(o):
    o = o - o.max(-1, keepdims=True)
    return o - np.log(np.exp(o).sum(-1, keepdims=True))


def _smoothed(labels, K, ls):
    q = np.full((labels.size, K), ls / K)
    q[np.arange(labels.size), labels] += 1 - ls
    return q


def _loss_data(T=4, B=5, K=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(T, B, K)) * 2, rng.integers(0, K, B)


@pytest.mark.parametrize("ls", [0.0, 0.1, 0.3])
def test_cross_entropy_formula_and_gradcheck(ls):
    logits, y = _loss_data()
    loss, cache = losses.cross_entropy_forward(logits, y, label_smoothing=ls)
    o = logits.mean(axis=0)
    explicit = -np.mean(np.sum(_smoothed(y, 6, ls) * _log_softmax(o), axis=-1))
    assert abs(loss - explicit) < 1e-12 * abs(explicit)
    if ls == 0.0:                        # the textbook form: -log p_y
        assert abs(loss - np.mean(-_log_softmax(o)[np.arange(5), y])) < 1e-12
    dloss = 1.7
    d = losses.cross_entropy_backward(cache, dloss)
    assert d.shape == logits.shape
    assert_grads(lambda: dloss * losses.cross_entropy_forward(logits, y, ls)[0],
                 {"logits": (logits, d)})


@pytest.mark.parametrize("ls,lam,phi", [(0.0, 0.05, 1.0), (0.1, 0.05, 1.0), (0.0, 0.3, -0.5),
                                        (0.0, 0.0, 1.0), (0.2, 1.0, 0.0)])
def test_tet_formula_and_gradcheck(ls, lam, phi):
    logits, y = _loss_data(seed=1)
    T = logits.shape[0]
    loss, cache = losses.tet_forward(logits, y, lam=lam, phi=phi, label_smoothing=ls)
    q = _smoothed(y, 6, ls)
    explicit = np.mean([(1 - lam) * np.mean(-np.sum(q * _log_softmax(logits[t]), -1))
                        + lam * np.mean((logits[t] - phi) ** 2) for t in range(T)])
    assert abs(loss - explicit) < 1e-12 * abs(explicit)
    dloss = 0.6
    d = losses.tet_backward(cache, dloss)
    assert_grads(lambda: dloss * losses.tet_forward(logits, y, lam, phi, ls)[0],
                 {"logits": (logits, d)})


@pytest.mark.parametrize("target_shape", [(3, 4, 5), (5,), ()])
def test_mse_formula_and_gradcheck(target_shape):
    rng = np.random.default_rng(0)
    pred, target = rng.normal(size=(3, 4, 5)), rng.normal(size=target_shape)
    loss, cache = losses.mse_forward(pred, target)
    assert abs(loss - np.mean((pred - target) ** 2)) < 1e-12
    d = losses.mse_backward(cache, 2.5)
    assert_grads(lambda: 2.5 * losses.mse_forward(pred, target)[0], {"pred": (pred, d)})


def test_losses_are_stable_for_large_logits_and_keep_float32():
    logits = np.array([[[1000.0, -1000.0, 0.0]], [[1200.0, -900.0, 5.0]]])
    loss, cache = losses.cross_entropy_forward(logits, np.array([1]))
    assert np.isfinite(loss) and abs(loss - 2050.0) < 1e-9       # o = (1100, -950, 2.5)
    assert np.all(np.isfinite(losses.cross_entropy_backward(cache)))
    loss, _ = losses.tet_forward(logits, np.array([0]))
    assert np.isfinite(loss)
    l32, _ = _loss_data()
    _, cache = losses.cross_entropy_forward(l32.astype(np.float32), np.zeros(5, int))
    assert losses.cross_entropy_backward(cache).dtype == np.float32
    _, cache = losses.tet_forward(l32.astype(np.float32), np.zeros(5, int))
    assert losses.tet_backward(cache).dtype == np.float32


@pytest.mark.parametrize("fn", ["cross_entropy", "tet"])
def test_loss_bad_input(fn):
    forward = getattr(losses, f"{fn}_forward")
    logits, y = _loss_data()
    with pytest.raises(ValueError, match=fr"{fn} expected labels in \[0, 5\], got values from 0 to 6"):
        forward(logits, np.array([0, 1, 2, 3, 6]))
    with pytest.raises(ValueError, match=fr"{fn} expected labels in \[0, 5\], got values from -1"):
        forward(logits, np.array([-1, 1, 2, 3, 4]))
    with pytest.raises(TypeError, match=fr"{fn} expected integer class labels, got dtype float64"):
        forward(logits, y.astype(float))
    with pytest.raises(ValueError, match=fr"{fn} expected labels of shape \(5,\) \(one per sample\), "
                                         r"got \(4,\)"):
        forward(logits, y[:4])
    with pytest.raises(ValueError, match=fr"{fn} expected logits of shape \(T, B, K\), got \(5, 6\)"):
        forward(logits[0], y)
    with pytest.raises(TypeError, match=fr"{fn} expected logits with a floating dtype .*got int64"):
        forward(logits.astype(np.int64), y)
    with pytest.raises(ValueError, match=fr"{fn} expected label_smoothing in \[0, 1\], got 1.5"):
        forward(logits, y, label_smoothing=1.5)
    backward = getattr(losses, f"{fn}_backward")
    with pytest.raises(RuntimeError, match=fr"{fn}.backward called before forward"):
        backward(None)


def test_tet_and_mse_bad_options():
    logits, y = _loss_data()
    with pytest.raises(ValueError, match=r"tet expected lam in \[0, 1\], got 1.2"):
        losses.tet_forward(logits, y, lam=1.2)
    with pytest.raises(ValueError, match=r"mse expected target broadcastable to pred \(4, 5, 6\), "
                                         r"got \(5,\)"):
        losses.mse_forward(logits, np.zeros(5))
    with pytest.raises(TypeError, match=r"mse expected pred with a floating dtype .*got int64"):
        losses.mse_forward(np.zeros(3, np.int64), 0.0)
    with pytest.raises(RuntimeError, match=r"mse.backward called before forward"):
        losses.mse_backward(None)


def test_float32_is_kept_by_axis_projection_and_shape_ops():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 2, 4, 3, 5)).astype(np.float32)
    w, b = rng.normal(size=(4, 4, 1, 1)).astype(np.float32), np.zeros(4, np.float32)
    y, cache = ap_mod.axis_projection_forward(x, w, b, 2)
    dx, dw, db = ap_mod.axis_projection_backward(y, cache)
    assert y.dtype == dx.dtype == dw.dtype == db.dtype == np.float32
    p, cache = shape_mod.mean_pool_hw_forward(x)
    assert p.dtype == shape_mod.mean_pool_hw_backward(p, cache).dtype == np.float32
