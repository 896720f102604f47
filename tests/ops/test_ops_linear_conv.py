"""Linear and Conv2d: gradient checks (input, weight, bias), a naive reference for the conv
forward, the layer classes, and bad input."""
import numpy as np
import pytest

from opchecks import GEOMETRIES, _conv_data, check_conv, check_linear
from npsnn.ops import conv as conv_mod
from npsnn.ops import linear as linear_mod
from npsnn.ops.conv import Conv2d
from npsnn.ops.linear import Linear


# -- Linear ----------------------------------------------------------------------------------


@pytest.mark.parametrize("lead", [(), (5,), (3, 2), (2, 3, 5)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradcheck(lead, bias):
    check_linear(lead, 7, 4, bias)


def test_linear_layer_accumulates_and_needs_no_input_grad():
    rng = np.random.default_rng(1)
    layer = Linear(6, 3, dtype=np.float64, rng=np.random.default_rng(0))
    bound = 1 / np.sqrt(6)
    assert np.abs(layer.params["weight"]).max() <= bound and layer.params["bias"].shape == (3,)
    x, g = rng.normal(size=(2, 4, 6)), rng.normal(size=(2, 4, 3))
    layer.forward(x)
    dx = layer.backward(g)
    layer.forward(x)
    layer.backward(g)
    _, cache = linear_mod.linear_forward(x, layer.params["weight"], layer.params["bias"])
    rdx, rdw, rdb = linear_mod.linear_backward(g, cache)
    np.testing.assert_allclose(dx, rdx)
    np.testing.assert_allclose(layer.grads["weight"], 2 * rdw)   # += over two backwards
    np.testing.assert_allclose(layer.grads["bias"], 2 * rdb)
    layer.need_input_grad = False
    layer.forward(x)
    assert layer.backward(g) is None
    assert Linear(6, 3, bias=False).params.keys() == {"weight"}
    assert Linear(6, 3).params["weight"].dtype == np.float32


def test_linear_bad_input():
    layer = Linear(6, 3)
    with pytest.raises(ValueError, match=r"Linear expected x of shape \(\.\.\., 6\), got \(4, 5\)"):
        layer.forward(np.zeros((4, 5), np.float32))
    with pytest.raises(TypeError, match=r"Linear expected x with a floating dtype .*got int64"):
        layer.forward(np.zeros((4, 6), np.int64))
    with pytest.raises(TypeError, match=r"Linear expected x to be a numpy.ndarray, got list"):
        layer.forward([[0.0] * 6])
    with pytest.raises(RuntimeError, match=r"Linear.backward called before forward"):
        layer.backward(np.zeros((4, 3), np.float32))
    layer.forward(np.zeros((4, 6), np.float32))
    with pytest.raises(ValueError, match=r"Linear.backward expected dy of shape \(4, 3\).*got \(4, 6\)"):
        layer.backward(np.zeros((4, 6), np.float32))


# -- Conv2d ----------------------------------------------------------------------------------

def naive_conv(x, w, b, stride, padding):
    """x (N, C, H, W), w (O, C, kh, kw): the definition, one output pixel at a time."""
    sh, sw = stride
    ph, pw = padding
    N, C, H, W = x.shape
    O, _, kh, kw = w.shape
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw))
    xp[:, :, ph:ph + H, pw:pw + W] = x
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    y = np.zeros((N, O, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            patch = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            y[:, :, i, j] = np.einsum("ncab,ocab->no", patch, w)
    if b is not None:
        y += b[None, :, None, None]
    return y


@pytest.mark.parametrize("name", sorted(GEOMETRIES))
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("bias", [True, False])
def test_conv_gradcheck(name, layout, bias):
    check_conv(name, layout, bias, max_checks=150)


@pytest.mark.parametrize("name", ["4x4s4-untiled", "2x2s2-p1", "3x3s2p1", "3x2-s21-p10",
                                  "1x1", "5x5s3p2"])
def test_conv_forward_matches_naive_loops_both_layouts(name):
    C, O, H, W, kernel, stride, padding = GEOMETRIES[name]
    x, w, b = _conv_data(C, O, H, W, kernel, seed=5)
    ref = naive_conv(x.reshape(-1, C, H, W), w, b, stride, padding)
    ref = ref.reshape(x.shape[:2] + ref.shape[1:])
    y, _ = conv_mod.conv2d_forward(x, w, b, stride, padding, "NCHW")
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
    y_nhwc, _ = conv_mod.conv2d_forward(np.ascontiguousarray(x.transpose(0, 1, 3, 4, 2)), w, b,
                                        stride, padding, "NHWC")
    np.testing.assert_allclose(y_nhwc, ref.transpose(0, 1, 3, 4, 2), rtol=1e-12, atol=1e-12)


def test_conv_single_image_without_time_axes_and_float32_kept():
    x, w, b = _conv_data(3, 4, 6, 6, (3, 3), seed=2)
    y, cache = conv_mod.conv2d_forward(x[0, 0], w, b, 1, 1)
    np.testing.assert_allclose(y, naive_conv(x[0, :1], w, b, (1, 1), (1, 1))[0], rtol=1e-12)
    dx, _, _ = conv_mod.conv2d_backward(np.ones_like(y), cache)
    assert dx.shape == (3, 6, 6)
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    y32, cache = conv_mod.conv2d_forward(x32, w32, None, 2, 1)
    dx32, dw32, _ = conv_mod.conv2d_backward(np.ones_like(y32), cache)
    assert y32.dtype == dx32.dtype == dw32.dtype == np.float32


def test_conv_layer_nhwc_accumulates_grads():
    rng = np.random.default_rng(0)
    layer = Conv2d(3, 4, 3, stride=2, padding=1, layout="NHWC", dtype=np.float64,
                   rng=np.random.default_rng(0))
    assert layer.params["weight"].shape == (4, 3, 3, 3)
    assert np.abs(layer.params["weight"]).max() <= 1 / np.sqrt(27)
    x = rng.normal(size=(2, 2, 7, 7, 3))
    y = layer.forward(x)
    assert y.shape == (2, 2, 4, 4, 4)
    g = rng.normal(size=y.shape)
    layer.backward(g)
    layer.forward(x)
    layer.backward(g)
    _, cache = conv_mod.conv2d_forward(x, layer.params["weight"], layer.params["bias"], 2, 1, "NHWC")
    _, dw, db = conv_mod.conv2d_backward(g, cache)
    np.testing.assert_allclose(layer.grads["weight"], 2 * dw)
    np.testing.assert_allclose(layer.grads["bias"], 2 * db)
    layer.need_input_grad = False
    layer.forward(x)
    assert layer.backward(g) is None


@pytest.mark.parametrize("kwargs,match", [
    (dict(kernel_size=0), r"Conv2d expected kernel_size to be an int >= 1 or a pair of them, got 0"),
    (dict(kernel_size=(3, 2, 1)), r"Conv2d expected kernel_size .*got \(3, 2, 1\)"),
    (dict(kernel_size=2.5), r"Conv2d expected kernel_size .*got 2.5"),
    (dict(stride=0), r"Conv2d expected stride to be an int >= 1 or a pair of them, got 0"),
    (dict(stride=(1, -1)), r"Conv2d expected stride .*got \(1, -1\)"),
    (dict(padding=-1), r"Conv2d expected padding to be an int >= 0 or a pair of them, got -1"),
    (dict(padding=(1, 0.5)), r"Conv2d expected padding .*got \(1, 0.5\)"),
    (dict(layout="CHWN"), r"Conv2d expected layout 'NCHW' or 'NHWC', got 'CHWN'"),
])
def test_conv_bad_options(kwargs, match):
    args = dict(in_channels=3, out_channels=4, kernel_size=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        Conv2d(**args)
    fn_args = dict(stride=args.get("stride", 1), padding=args.get("padding", 0),
                   layout=args.get("layout", "NCHW"))
    if "kernel_size" not in kwargs:               # the functional form takes the kernel from w
        with pytest.raises(ValueError, match=match):
            conv_mod.conv2d_forward(np.zeros((1, 3, 5, 5)), np.zeros((4, 3, 3, 3)), **fn_args)


def test_conv_bad_input():
    layer = Conv2d(3, 4, 3, padding=1)
    with pytest.raises(ValueError, match=r"Conv2d expected x of shape \(T, B, 3, H, W\), got \(4, 3, 8, 8\)"):
        layer.forward(np.zeros((4, 3, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"Conv2d expected x of shape \(T, B, 3, H, W\), got \(2, 1, 8, 8, 3\)"):
        layer.forward(np.zeros((2, 1, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r"Conv2d expected x of shape \(T, B, H, W, 3\), got list"):
        Conv2d(3, 4, 3, layout="NHWC").forward([1.0])
    with pytest.raises(TypeError, match=r"Conv2d expected x with a floating dtype .*got int64"):
        layer.forward(np.zeros((2, 1, 3, 8, 8), np.int64))
    with pytest.raises(ValueError, match=r"Conv2d input 2x2 \(padding 0,0\) is smaller than the kernel 3x3"):
        Conv2d(3, 4, 3).forward(np.zeros((1, 1, 3, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"Conv2d expected x of shape \(\.\.\., H, W, 3\), got \(1, 5, 5, 4\)"):
        conv_mod.conv2d_forward(np.zeros((1, 5, 5, 4)), np.zeros((2, 3, 1, 1)), layout="NHWC")
    with pytest.raises(RuntimeError, match=r"Conv2d.backward called before forward"):
        layer.backward(np.zeros((2, 1, 4, 8, 8), np.float32))
    layer.forward(np.zeros((2, 1, 3, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"Conv2d.backward expected dy of shape \(2, 1, 4, 8, 8\).*got \(2, 1, 8, 8, 4\)"):
        layer.backward(np.zeros((2, 1, 8, 8, 4), np.float32))


@pytest.mark.parametrize("make,match", [
    (lambda: Linear(0, 3), r"Linear expected in_features to be a positive integer, got 0"),
    (lambda: Linear(-1, 3), r"Linear expected in_features to be a positive integer, got -1"),
    (lambda: Linear(4, 0), r"Linear expected out_features to be a positive integer, got 0"),
    (lambda: Linear(2.5, 3), r"Linear expected in_features to be a positive integer, got 2.5"),
    (lambda: Conv2d(0, 3, 3), r"Conv2d expected in_channels to be a positive integer, got 0"),
    (lambda: Conv2d(3, 0, 3), r"Conv2d expected out_channels to be a positive integer, got 0"),
])
def test_layer_sizes_must_be_positive_integers(make, match):
    with pytest.raises(ValueError, match=match):
        make()
