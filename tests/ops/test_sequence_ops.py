"""The small ops around the SSM: GLU, LayerNorm over the feature axis, sequence dropout,
ReLU, depthwise and pointwise 1-D convolutions and the smooth L1 loss -- each against its
formula (or PyTorch's definition written out), float64 finite differences, bad input."""
import numpy as np
import pytest

from gradcheck import assert_grads
from npsnn.ops.conv1d import (DepthwiseConv1d, PointwiseConv1d, depthwise_conv1d_backward,
                              depthwise_conv1d_forward)
from npsnn.ops.glu import GLU, glu_backward, glu_forward
from npsnn.ops.layernorm import LayerNorm, layernorm_backward, layernorm_forward
from npsnn.ops.relu import relu_backward, relu_forward
from npsnn.ops.sequence_dropout import (SequenceDropout, sequence_dropout_backward,
                                        sequence_dropout_forward)
from npsnn.ops.smooth_l1 import smooth_l1_backward, smooth_l1_forward


def _loss(forward, g):
    return lambda: float(np.sum(forward()[0] * g))


@pytest.mark.parametrize("axis,shape", [(1, (2, 6, 5)), (-1, (3, 4)), (0, (4, 3, 2))])
def test_glu_formula_and_gradients(axis, shape):
    rng = np.random.default_rng(len(shape))
    x = rng.normal(size=shape) * 3
    y, cache = glu_forward(x, axis)
    a, b = np.split(x, 2, axis=axis)
    np.testing.assert_allclose(y, a / (1 + np.exp(-b)), rtol=1e-14)
    g = rng.normal(size=y.shape)
    assert_grads(_loss(lambda: glu_forward(x, axis), g), {"x": (x, glu_backward(g, cache))})
    layer = GLU(axis)
    np.testing.assert_array_equal(layer.forward(x), y)
    np.testing.assert_array_equal(layer.backward(g), glu_backward(g, cache))


@pytest.mark.parametrize("axis,shape", [(1, (2, 5, 7)), (-1, (3, 4, 6)), (0, (6, 3))])
def test_layernorm_per_position_and_gradients(axis, shape):
    rng = np.random.default_rng(len(shape) + axis)
    x = rng.normal(size=shape) * 2 + 1
    C = shape[axis]
    w, b = rng.normal(size=C), rng.normal(size=C)
    y, cache = layernorm_forward(x, w, b, axis=axis)
    xm = np.moveaxis(x, axis, -1)                          # torch: LayerNorm over the last axis
    ref = (xm - xm.mean(-1, keepdims=True)) / np.sqrt(xm.var(-1, keepdims=True) + 1e-5) * w + b
    np.testing.assert_allclose(y, np.moveaxis(ref, -1, axis), rtol=1e-12, atol=1e-12)
    g = rng.normal(size=shape)
    dx, dw, db = layernorm_backward(g, cache)
    assert_grads(_loss(lambda: layernorm_forward(x, w, b, axis=axis), g),
                 {"x": (x, dx), "weight": (w, dw), "bias": (b, db)})


def test_layernorm_layer_accumulates_and_checks_features():
    layer = LayerNorm(4, axis=1, dtype=np.float64)
    x = np.random.default_rng(0).normal(size=(2, 4, 3))
    layer.forward(x)
    layer.backward(np.ones_like(x))
    layer.forward(x)
    layer.backward(np.ones_like(x))
    np.testing.assert_allclose(layer.grads["bias"], 2 * 2 * 3)
    with pytest.raises(ValueError, match=r"LayerNorm\(4\) expected x with 4 features along "
                                         r"axis 1, got x of shape \(2, 3, 4\)"):
        layer.forward(np.zeros((2, 3, 4)))


def test_sequence_dropout_one_mask_per_feature_for_the_whole_sequence():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 30, 17)) + 3
    y, cache = sequence_dropout_forward(x, 0.3, np.random.default_rng(1))
    kept = np.all(y != 0, axis=2)
    dropped = np.all(y == 0, axis=2)
    assert np.all(kept | dropped)                          # never part of a sequence
    assert 0.6 < kept.mean() < 0.8
    np.testing.assert_allclose(y[kept], x[kept] / 0.7, rtol=1e-15)
    g = rng.normal(size=x.shape)
    np.testing.assert_array_equal(sequence_dropout_backward(g, cache), g * cache[0])
    assert sequence_dropout_forward(x, 0.3, rng, training=False)[0] is x
    assert sequence_dropout_forward(x, 0.0, rng)[0] is x
    layer = SequenceDropout(0.5, np.random.default_rng(2)).eval()
    assert layer.forward(x) is x and layer.backward(g) is g
    with pytest.raises(ValueError, match="SequenceDropout expected a drop probability"):
        SequenceDropout(1.0)
    with pytest.raises(ValueError, match=r"SequenceDropout expected x of shape \(B, H, \.\.\.\)"):
        sequence_dropout_forward(np.zeros(3), 0.1, rng)


def test_relu():
    x = np.array([-1.0, 0.0, 2.0])
    y, cache = relu_forward(x)
    np.testing.assert_array_equal(y, [0, 0, 2])
    np.testing.assert_array_equal(relu_backward(np.ones(3), cache), [0, 0, 1])


@pytest.mark.parametrize("k,padding,L", [(8, 8, 20), (3, 2, 9), (4, 0, 4), (1, 0, 5)])
def test_depthwise_conv1d_against_loops_and_gradients(k, padding, L):
    rng = np.random.default_rng(k + padding)
    x = rng.normal(size=(2, 3, L))
    layer = DepthwiseConv1d(3, k, padding, dtype=np.float64, rng=rng)
    w, b = layer.params["weight"], layer.params["bias"]
    y, cache = depthwise_conv1d_forward(x, w, b, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding)))
    ref = np.array([[[np.dot(xp[n, c, l:l + k], w[c, 0]) + b[c]
                      for l in range(L + 2 * padding - k + 1)] for c in range(3)]
                    for n in range(2)])
    np.testing.assert_allclose(y, ref, rtol=1e-13, atol=1e-14)
    g = rng.normal(size=y.shape)
    dx, dw, db = depthwise_conv1d_backward(g, cache)
    assert_grads(_loss(lambda: depthwise_conv1d_forward(x, w, b, padding), g),
                 {"x": (x, dx), "weight": (w, dw), "bias": (b, db)})


@pytest.mark.parametrize("layout,shape", [("conv", (5, 3, 1)), ("linear", (5, 3))])
def test_pointwise_conv1d_is_a_matrix_at_every_position(layout, shape):
    rng = np.random.default_rng(0)
    layer = PointwiseConv1d(3, 5, layout=layout, dtype=np.float64, rng=rng)
    assert layer.params["weight"].shape == shape
    x = rng.normal(size=(2, 3, 7))
    y = layer.forward(x)
    W = layer.params["weight"].reshape(5, 3)
    np.testing.assert_allclose(y, np.einsum("oc,bcl->bol", W, x) + layer.params["bias"][:, None],
                               rtol=1e-13)
    g = rng.normal(size=y.shape)
    dx = layer.backward(g)
    params = {k: (v, layer.grads[k]) for k, v in layer.params.items()}

    def loss():
        out = layer.forward(x)
        layer._cache = None
        return float(np.sum(out * g))

    assert_grads(loss, dict(params, x=(x, dx)))
    with pytest.raises(ValueError, match=r"PointwiseConv1d\(3, 5\) expected x of shape "
                                         r"\(B, 3, L\), got \(2, 4, 7\)"):
        layer.forward(np.zeros((2, 4, 7)))


def test_smooth_l1_is_torchs_definition_and_gradient():
    rng = np.random.default_rng(0)
    pred, target = rng.normal(size=(4, 9)) * 2, rng.normal(size=(4, 9))
    loss, cache = smooth_l1_forward(pred, target)
    d = np.abs(pred - target)
    assert loss == pytest.approx(np.mean(np.where(d < 1, 0.5 * d ** 2, d - 0.5)), rel=1e-14)
    dpred = smooth_l1_backward(cache)
    assert_grads(lambda: smooth_l1_forward(pred, target)[0], {"pred": (pred, dpred)})
    with pytest.raises(ValueError, match=r"smooth_l1 expected target of shape \(4, 9\)"):
        smooth_l1_forward(pred, target[:, :3])


def test_depthwise_conv1d_bad_input():
    with pytest.raises(ValueError, match=r"DepthwiseConv1d expected x of shape \(B, 3, L\)"):
        DepthwiseConv1d(3, 2).forward(np.zeros((2, 4, 5)))
    with pytest.raises(ValueError, match="shorter than the kernel"):
        DepthwiseConv1d(3, 8).forward(np.zeros((2, 3, 5)))
    with pytest.raises(ValueError, match="padding >= 0"):
        DepthwiseConv1d(3, 2, padding=-1)
