"""Bad input to the Python API is a ValueError/TypeError that names it, and changes nothing:
empty batches, NaN/inf reaching a train-mode BatchNorm, non-finite or mixed-dtype neuron
parameters (npsnn/_checks.py, npsnn/ops/batchnorm.py, npsnn/ops/axis_lif.py)."""
import numpy as np
import pytest

import npsnn
from npsnn._checks import NonFiniteError
from npsnn.models.snnmlp import SNNMLP

TINY = dict(dim=6, patch_size=8, image_size=32, depths=[1, 1], num_classes=10)
SNN_TINY = dict(model="snn-mlp", embed_dim=8, depths=[1, 1], num_classes=10, image_size=32,
                patch_size=4, group=2)


def _same_state(a, b):
    return all(np.array_equal(a[k], b[k]) for k in a) and a.keys() == b.keys()


@pytest.mark.parametrize("config", [TINY, SNN_TINY])
def test_empty_batch_is_named(config):
    model = npsnn.build(config)
    with pytest.raises(ValueError, match=r"empty images of shape \(0, 3, 32, 32\).*empty batch"):
        model.forward_repeated(np.zeros((0, 3, 32, 32), np.float32), 2)


@pytest.mark.parametrize("where", ["nan", "inf"])
@pytest.mark.parametrize("fast", [True, False])
def test_non_finite_pixel_in_train_mode_leaves_the_bn_statistics_alone(where, fast):
    """One bad pixel: before, it poisoned every running mean downstream for good."""
    model = npsnn.build(TINY, seed=0, fast=fast)
    x = np.random.default_rng(0).random((4, 3, 32, 32)).astype(np.float32)
    model.forward_repeated(x, 2)                      # a normal step first
    before = model.state_dict()
    x[1, 2, 3, 4] = np.nan if where == "nan" else np.inf
    with pytest.raises(NonFiniteError, match=r"BatchNorm\(\d+\).*not finite.*running "
                                             r"statistics were not updated"):
        model.forward_repeated(x, 2)
    assert _same_state(model.state_dict(), before)
    assert isinstance(NonFiniteError("x"), ValueError)


def test_axis_lif_refuses_non_finite_parameters_and_mixed_dtypes():
    for bad in (np.nan, np.inf, "0.5", True):
        with pytest.raises(ValueError, match="AxisLIF expected tau to be a finite number"):
            npsnn.AxisLIF(tau=bad)
        with pytest.raises(ValueError, match="AxisLIF expected v_threshold to be a finite"):
            npsnn.AxisLIF(v_threshold=bad)
    lif = npsnn.AxisLIF(tau=0.3, dtype=np.float32)
    with pytest.raises(TypeError, match="holds float32 parameters but x is float64"):
        lif.forward(np.ones((1, 2, 4, 4)))
    lif64 = npsnn.AxisLIF(tau=0.3, dtype=np.float64)
    with pytest.raises(TypeError, match="holds float64 parameters but x is float32"):
        lif64.forward(np.ones((1, 2, 4, 4), np.float32))
    assert lif64.forward(np.ones((1, 2, 4, 4))).dtype == np.float64


def test_snn_mlp_built_directly_refuses_nan_tau():
    cfg = {k: v for k, v in npsnn.resolve_config(SNN_TINY).items() if k != "model"}
    with pytest.raises(ValueError, match="tau to be a finite number, got nan"):
        SNNMLP(**{**cfg, "lif_tau": float("nan")})
    with pytest.raises(ValueError, match="'lif_vth' must be a finite number"):
        npsnn.build({**SNN_TINY, "lif_vth": float("inf")})
