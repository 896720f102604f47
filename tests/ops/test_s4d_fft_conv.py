"""The SSM half of a SpikingSSM layer: the S4D kernel, the FFT convolution with its D skip,
and the learnable threshold -- each against a direct (slow, obvious) computation, float64
finite differences for every input and parameter, and bad input."""
import math

import numpy as np
import pytest

from gradcheck import assert_grads
from npsnn.ops.fft_conv import fft_conv_backward, fft_conv_forward
from npsnn.ops.s4d import S4DKernel, s4d_kernel_backward, s4d_kernel_forward, vandermonde
from npsnn.ops.threshold_scale import threshold_scale_backward, threshold_scale_forward


def _kernel_params(rng, H, N2, c):
    """Parameters away from the initialisation (dt spread, A with varied real parts)."""
    log_dt = rng.uniform(math.log(1e-3), math.log(0.1), H)
    log_A_real = np.log(rng.uniform(0.2, 0.9, (H, N2)))
    A_imag = math.pi * np.arange(N2) + rng.normal(0, 0.3, (H, N2))
    C = rng.normal(0, 1, (c, H, N2, 2))
    return log_dt, log_A_real, A_imag, C


def _direct_kernel(log_dt, log_A_real, A_imag, C, L):
    """K[c,h,l] = 2 Re sum_n C[c,h,n] (exp(dt A) - 1)/A exp(dt A l), one exp per (h, n, l)."""
    dt = np.exp(log_dt)[:, None]
    A = -np.exp(log_A_real) + 1j * A_imag
    Cp = (C[..., 0] + 1j * C[..., 1]) * (np.exp(dt * A) - 1) / A
    return 2 * np.einsum("chn,hnl->chl", Cp, np.exp((dt * A)[..., None] * np.arange(L))).real


@pytest.mark.parametrize("H,N2,c,L", [(3, 4, 1, 37), (2, 5, 2, 16), (1, 1, 1, 1), (4, 3, 2, 50)])
def test_s4d_kernel_matches_the_direct_formula(H, N2, c, L):
    rng = np.random.default_rng(H * 10 + L)
    params = _kernel_params(rng, H, N2, c)
    K, _ = s4d_kernel_forward(*params, L)
    ref = _direct_kernel(*params, L)
    assert K.shape == (c, H, L)
    np.testing.assert_allclose(K, ref, rtol=0, atol=1e-13 * np.abs(ref).max())


def test_vandermonde_from_two_tables_is_the_exponential_at_length_1024():
    rng = np.random.default_rng(0)
    dtA = (-rng.uniform(0.0005, 0.05, (4, 32)) + 1j * math.pi * np.arange(32) *
           rng.uniform(0.001, 0.1, (4, 1)))
    V = vandermonde(dtA, 1024)
    ref = np.exp(dtA[..., None] * np.arange(1024))
    assert np.abs(V - ref).max() / np.abs(ref).max() < 1e-12
    for L in (1, 2, 3, 31, 32, 33):
        np.testing.assert_allclose(vandermonde(dtA, L), np.exp(dtA[..., None] * np.arange(L)),
                                   rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("c", [1, 2])
def test_s4d_kernel_gradients_through_the_complex_arithmetic(c):
    rng = np.random.default_rng(c)
    log_dt, log_A_real, A_imag, C = _kernel_params(rng, 3, 4, c)
    L = 23
    K, cache = s4d_kernel_forward(log_dt, log_A_real, A_imag, C, L)
    g = rng.normal(size=K.shape)
    grads = s4d_kernel_backward(g, cache)

    def loss():
        return float(np.sum(s4d_kernel_forward(log_dt, log_A_real, A_imag, C, L)[0] * g))

    assert_grads(loss, {"log_dt": (log_dt, grads[0]), "log_A_real": (log_A_real, grads[1]),
                        "A_imag": (A_imag, grads[2]), "C": (C, grads[3])})


def test_s4d_kernel_layer_initialisation_and_optimizer_options():
    layer = S4DKernel(64, d_state=16, channels=2, rng=np.random.default_rng(0))
    p = layer.params
    assert p["C"].shape == (2, 64, 8, 2) and p["C"].dtype == np.float32
    assert 0.6 < p["C"].std() / math.sqrt(0.5) < 1.4            # complex normal, var 1
    assert np.all((p["log_dt"] >= math.log(1e-3)) & (p["log_dt"] <= math.log(0.1)))
    np.testing.assert_allclose(p["log_A_real"], math.log(0.5))
    np.testing.assert_allclose(p["A_imag"][5], math.pi * np.arange(8), rtol=1e-6)
    assert layer.param_options == {name: {"lr": 0.001, "weight_decay": 0.0}
                                   for name in ("log_dt", "log_A_real", "A_imag")}
    assert S4DKernel(4, 4, lr=0.01).param_options["A_imag"]["lr"] == 0.001   # min(lr, 1e-3)
    frozen = S4DKernel(4, 4, lr=0.0)                              # lr 0: buffers, as official
    assert set(frozen.params) == {"C"} and set(frozen.buffers) == {"log_dt", "log_A_real",
                                                                   "A_imag"}
    K = frozen.forward(10)
    frozen.backward(np.ones_like(K))
    assert np.abs(frozen.grads["C"]).sum() > 0
    K = layer.forward(12)
    assert K.shape == (2, 64, 12) and K.dtype == np.float32
    layer.backward(np.ones_like(K))
    assert all(np.isfinite(g).all() and np.abs(g).sum() > 0 for g in layer.grads.values())


@pytest.mark.parametrize("make,match", [
    (lambda: S4DKernel(4, 5), "even d_state"),
    (lambda: S4DKernel(4, 4, dt_min=0.1, dt_max=0.01), "dt_min <= dt_max"),
    (lambda: S4DKernel(0, 4), "d_model"),
    (lambda: S4DKernel(4, 4).forward(0), "L to be a positive integer"),
    (lambda: s4d_kernel_forward(np.zeros(3), np.zeros((3, 2)), np.zeros((3, 2)),
                                np.zeros((1, 3, 2)), 5), r"C \(channels, H, N/2, 2\)"),
])
def test_s4d_kernel_bad_input(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# -- the FFT convolution --------------------------------------------------------------------
def _direct_conv(u, K, D):
    B, H, L = u.shape
    y = u * D[:, None]
    for l in range(L):
        for j in range(L):
            if j <= l:
                y[..., l] += K[0, :, l - j] * u[..., j]
            elif K.shape[0] == 2:
                y[..., l] += K[1, :, j - l - 1] * u[..., j]        # d = j - l steps ahead
    return y


@pytest.mark.parametrize("c,L", [(1, 13), (2, 13), (2, 1), (1, 8)])
def test_fft_conv_is_the_direct_convolution_and_its_gradients(c, L):
    rng = np.random.default_rng(c + L)
    u, K, D = rng.normal(size=(2, 3, L)), rng.normal(size=(c, 3, L)), rng.normal(size=3)
    y, cache = fft_conv_forward(u, K, D)
    np.testing.assert_allclose(y, _direct_conv(u, K, D), rtol=0, atol=1e-13)
    g = rng.normal(size=y.shape)
    du, dK, dD = fft_conv_backward(g, cache)
    assert_grads(lambda: float(np.sum(fft_conv_forward(u, K, D)[0] * g)),
                 {"u": (u, du), "K": (K, dK), "D": (D, dD)})
    assert fft_conv_backward(g, cache, need_du=False)[0] is None


def test_fft_conv_keeps_float32():
    rng = np.random.default_rng(0)
    u = rng.normal(size=(2, 3, 64)).astype(np.float32)
    K, D = rng.normal(size=(2, 3, 64)).astype(np.float32), np.ones(3, np.float32)
    y, cache = fft_conv_forward(u, K, D)
    grads = fft_conv_backward(np.ones_like(y), cache)
    assert y.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
    np.testing.assert_allclose(y, fft_conv_forward(u.astype(float), K.astype(float),
                                                   D.astype(float))[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("u,K,D", [
    (np.zeros((2, 3, 8)), np.zeros((3, 3, 8)), np.zeros(3)),
    (np.zeros((2, 3, 8)), np.zeros((1, 3, 7)), np.zeros(3)),
    (np.zeros((3, 8)), np.zeros((1, 3, 8)), np.zeros(3)),
    (np.zeros((2, 3, 8)), np.zeros((1, 3, 8)), np.zeros((1, 3))),
])
def test_fft_conv_bad_shapes(u, K, D):
    with pytest.raises(ValueError, match=r"FFTConv expected u \(B, H, L\), K \(1 or 2, H, L\)"):
        fft_conv_forward(u, K, D)


# -- the learnable threshold ----------------------------------------------------------------
@pytest.mark.parametrize("shape", [(3, 1), (1,)])
def test_threshold_scale_divides_by_exp_and_its_gradients(shape):
    rng = np.random.default_rng(len(shape))
    x, ln_vth = rng.normal(size=(2, 3, 9)), rng.normal(0, 0.5, shape)
    y, cache = threshold_scale_forward(x, ln_vth)
    np.testing.assert_array_equal(y, x / np.exp(ln_vth))
    g = rng.normal(size=y.shape)
    dx, dln = threshold_scale_backward(g, cache)
    assert dln.shape == shape
    assert_grads(lambda: float(np.sum(threshold_scale_forward(x, ln_vth)[0] * g)),
                 {"x": (x, dx), "ln_vth": (ln_vth, dln)})


def test_threshold_scale_bad_shape():
    with pytest.raises(ValueError, match=r"ln_vth \(H, 1\) or \(1,\), got x \(2, 3, 9\) and "
                                         r"ln_vth \(3,\)"):
        threshold_scale_forward(np.zeros((2, 3, 9)), np.zeros(3))
