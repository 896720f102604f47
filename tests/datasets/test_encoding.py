"""How a batch reaches the model (npsnn.datasets.encoding): Direct is forward_repeated."""
import numpy as np
import pytest

import npsnn
from npsnn.datasets import CIFARSource, Direct, Encoding, sample_path

SMLPNET = dict(in_channels=3, dim=6, alpha=3, num_classes=10, patch_size=4, image_size=32,
               depths=[1, 1], spe=True)
SNNMLP = dict(model="snn-mlp", embed_dim=4, depths=[1], num_classes=3, image_size=8,
              patch_size=2, group=2)


def load_four():
    return CIFARSource(sample_path()).split("test")[0][:4]


@pytest.mark.parametrize("training", [False, True])
def test_direct_is_forward_repeated_on_smlpnet(training):
    x = CIFARSource(sample_path()).eval_batch(load_four(), dtype=np.float64)
    a = npsnn.build(SMLPNET, dtype=np.float64, seed=5).train(training)
    b = npsnn.build(SMLPNET, dtype=np.float64, seed=5).train(training)
    got = Direct().present(a, x, 3)
    want = b.forward_repeated(x, 3)
    assert got.shape == (3, 4, 10)                     # (T, B, K)
    np.testing.assert_array_equal(got, want)
    # ... and the same as presenting T stacked copies of the image to forward()
    c = npsnn.build(SMLPNET, dtype=np.float64, seed=5).train(training)
    np.testing.assert_allclose(got, c.forward(np.repeat(x[None], 3, axis=0)), rtol=1e-10,
                               atol=1e-12)
    if training:                                       # backward takes dlogits of that shape
        a.backward(np.ones_like(got))
        grads = a.named_grads()
        assert all(np.isfinite(g).all() for g in grads.values())
        assert any(np.any(g) for g in grads.values())


def test_direct_on_a_model_without_time_axis_gives_one_step():
    model = npsnn.build(SNNMLP, dtype=np.float64, seed=1).eval()
    x = np.random.default_rng(0).normal(size=(2, 3, 8, 8))
    got = Direct().present(model, x, 4)
    assert got.shape == (1, 2, 3)                      # T' = 1: T does not apply
    np.testing.assert_array_equal(got, model.forward_repeated(x, 4))


def test_the_base_class_names_what_is_missing():
    class Half(Encoding):
        name = "half"
    with pytest.raises(NotImplementedError, match="Half does not define present"):
        Half().present(None, np.zeros((1, 3, 32, 32)), 2)
    assert repr(Direct()) == "Direct()" and Direct.name == "direct"
