"""SGD and AdamW: the update formulas by hand, PyTorch's numbers (a recorded fixture made
once by the dev-only tests/generators/make_optim_reference.py), exact state round trips."""
from pathlib import Path

import numpy as np
import pytest

from npsnn.module import Module
from npsnn.train.optim import SGD, AdamW

REF = Path(__file__).resolve().parents[1] / "data" / "optim_reference.npz"


class Params(Module):
    """A bare module holding the given arrays as parameters p0, p1, ..."""

    def __init__(self, arrays):
        super().__init__()
        for i, a in enumerate(arrays):
            self.add_param(f"p{i}", np.array(a))

    def set_grads(self, grads):
        for i, g in enumerate(grads):
            self.grads[f"p{i}"][...] = g


def test_sgd_nesterov_formula_by_hand():
    m = Params([np.array([1.0, -2.0])])
    opt = SGD(m, lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)
    p = np.array([1.0, -2.0])
    g1, g2 = np.array([0.5, 0.25]), np.array([-1.0, 2.0])
    # step 1: d = g + wd p; b = d; p -= lr (d + mu b)
    d = g1 + 0.01 * p
    b = d.copy()
    p = p - 0.1 * (d + 0.9 * b)
    m.set_grads([g1])
    opt.step()
    np.testing.assert_allclose(m.params["p0"], p, rtol=0, atol=1e-15)
    # step 2: b = mu b + d
    d = g2 + 0.01 * p
    b = 0.9 * b + d
    p = p - 0.1 * (d + 0.9 * b)
    m.set_grads([g2])
    opt.step()
    np.testing.assert_allclose(m.params["p0"], p, rtol=0, atol=1e-15)


def test_sgd_plain_and_heavy_ball_by_hand():
    m = Params([np.array([3.0])])
    SGD(m, lr=0.5).step()                             # zero gradient, no decay: no change
    assert m.params["p0"][0] == 3.0
    m.set_grads([np.array([2.0])])
    opt = SGD(m, lr=0.5, momentum=0.5)
    opt.step()                                        # b = 2, p = 3 - 1 = 2
    opt.step()                                        # b = 0.5*2 + 2 = 3, p = 2 - 1.5
    assert m.params["p0"][0] == pytest.approx(0.5)


def test_adamw_formula_by_hand():
    m = Params([np.array([1.0, -1.0])])
    lr, wd, b1, b2, eps = 0.01, 0.1, 0.9, 0.999, 1e-8
    opt = AdamW(m, lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
    p = np.array([1.0, -1.0])
    mom = np.zeros(2)
    v = np.zeros(2)
    for k, g in enumerate([np.array([0.3, -0.2]), np.array([0.1, 0.4])], start=1):
        p = p * (1 - lr * wd)                         # decoupled decay first
        mom = b1 * mom + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (mom / (1 - b1 ** k)) / (np.sqrt(v / (1 - b2 ** k)) + eps)
        m.set_grads([g])
        opt.step()
        np.testing.assert_allclose(m.params["p0"], p, rtol=1e-14, atol=0)
    assert opt.step_count == 2


@pytest.mark.parametrize("case", ["sgd_plain", "sgd_momentum_wd", "sgd_nesterov_wd", "adamw"])
def test_matches_pytorch_with_scheduled_lr_and_momentum(case):
    ref = np.load(REF, allow_pickle=False)
    n = 2
    m = Params([ref[f"{case}/p{i}/init"] for i in range(n)])
    if case == "adamw":
        opt = AdamW(m, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05)
    else:
        mom = 0.0 if case == "sgd_plain" else 0.9
        opt = SGD(m, lr=0.1, momentum=mom, weight_decay=0.0 if case == "sgd_plain" else 5e-4,
                  nesterov=case == "sgd_nesterov_wd")
    lrs, moms = ref[f"{case}/lr"], ref[f"{case}/momentum"]
    for k in range(len(lrs)):
        opt.lr = float(lrs[k])                     # as a schedule sets them before a step
        if case == "adamw":
            opt.betas = (float(moms[k]), 0.999)
        elif case != "sgd_plain":
            opt.momentum = float(moms[k])
        m.set_grads([ref[f"{case}/p{i}/grads"][k] for i in range(n)])
        opt.step()
        for i in range(n):
            np.testing.assert_allclose(m.params[f"p{i}"], ref[f"{case}/p{i}/after"][k],
                                       rtol=1e-13, atol=1e-15, err_msg=f"{case} step {k}")


@pytest.mark.parametrize("make", [
    lambda m: SGD(m, lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True),
    lambda m: AdamW(m, lr=1e-3, weight_decay=0.05),
])
def test_state_round_trip_continues_bit_exactly(make):
    rng = np.random.default_rng(0)
    init = [rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal(3).astype(
        np.float32)]
    grads = [[rng.standard_normal(a.shape).astype(np.float32) for a in init] for _ in range(6)]
    a = Params(init)
    oa = make(a)
    for g in grads:
        a.set_grads(g)
        oa.step()
    b = Params(init)
    ob = make(b)
    for g in grads[:3]:
        b.set_grads(g)
        ob.step()
    state = {k: v.copy() for k, v in ob.state_dict().items()}
    c = Params([b.params["p0"].copy(), b.params["p1"].copy()])
    oc = make(c)
    oc.load_state_dict(state)
    for g in grads[3:]:
        c.set_grads(g)
        oc.step()
    for k in ("p0", "p1"):
        assert c.params[k].dtype == np.float32
        assert np.array_equal(a.params[k], c.params[k])
    assert all(v.dtype == np.float32 for k, v in oc.state.items())


def test_float32_stays_float32():
    m = Params([np.ones(3, np.float32)])
    m.set_grads([np.full(3, 0.5, np.float32)])
    for opt in (SGD(m, lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True),
                AdamW(m, lr=0.1)):
        opt.step()
        assert m.params["p0"].dtype == np.float32
        assert all(v.dtype == np.float32 for v in opt.state.values())


def test_bad_hyper_parameters():
    m = Params([np.ones(2)])
    with pytest.raises(ValueError, match="lr >= 0"):
        SGD(m, lr=-1)
    with pytest.raises(ValueError, match="weight_decay >= 0"):
        SGD(m, lr=0.1, weight_decay=-1)
    with pytest.raises(ValueError, match="nesterov=True needs momentum > 0"):
        SGD(m, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas in"):
        AdamW(m, betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="eps > 0"):
        AdamW(m, eps=0)
