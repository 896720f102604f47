"""Schedules: explicit values (PyTorch OneCycleLR's, recorded once), state round trip."""
import math

import numpy as np
import pytest

from npsnn.train.schedules import Constant, OneCycle, WarmupCosine


class _Opt:
    """The two attributes a schedule writes."""

    def __init__(self, adam=False):
        self.lr = 123.0
        if adam:
            self.betas = (0.9, 0.999)
        else:
            self.momentum = 0.9


def _run(sched, opt, steps):
    lrs, moms = [], []
    for _ in range(steps):
        lrs.append(opt.lr)
        moms.append(opt.betas[0] if hasattr(opt, "betas") else opt.momentum)
        sched.step()
    lrs.append(opt.lr)
    moms.append(opt.betas[0] if hasattr(opt, "betas") else opt.momentum)
    return lrs, moms


# torch.optim.lr_scheduler.OneCycleLR(SGD(lr=0.1, momentum=0.9), max_lr=0.1,
# total_steps=20, pct_start=0.15): group lr / momentum before each of the 20 steps and
# after the last sched.step() (PyTorch 2.x, CPU).
TORCH_LR_20 = [
    0.0040000000000000036, 0.052000000000000005, 0.1, 0.09914865838957516,
    0.09662362497577191, 0.09251088674305356, 0.08695049805924951, 0.08013181129203556,
    0.07228702864115577, 0.06368329477100614, 0.05461359951949321, 0.0453868004805068,
    0.036317105228993875, 0.02771337135884425, 0.019868588707964464, 0.013049901940750496,
    0.007489513256946447, 0.003376775024228096, 0.0008517416104248475, 4e-07,
    0.0008517416104248475]
TORCH_MOM_20 = [
    0.95, 0.8999999999999999, 0.85, 0.8508513450158048, 0.8533763885297821,
    0.8574891432135192, 0.863049554138967, 0.8698682681810371, 0.8777130822111731,
    0.8863168504963959, 0.8953865820268349, 0.9046134179731651, 0.9136831495036041,
    0.9222869177888269, 0.9301317318189628, 0.9369504458610329, 0.9425108567864806,
    0.9466236114702178, 0.9491486549841951, 0.95, 0.9491486549841951]
# total_steps=7, pct_start=0.5 (a non-integer phase boundary, e1 = 2.5)
TORCH_LR_7 = [0.0040000000000000036, 0.037167184270002526, 0.09083281572999748,
              0.09504846320134738, 0.06112620219362893, 0.0188258346050237, 4e-07,
              0.01882583460502369]
TORCH_MOM_7 = [0.95, 0.9154508497187474, 0.8595491502812526, 0.854951556604879,
               0.8888739533021842, 0.9311744900929366, 0.95, 0.9311744900929366]
# total_steps=10, pct_start=0.3, three_phase=True
TORCH_LR_3P = [0.0040000000000000036, 0.052000000000000005, 0.1, 0.052000000000000005, 0.004,
               0.0036180721853510196, 0.0026181721853510195, 0.0013822278146489802,
               0.0003823278146489803, 4e-07, 0.00038232781464897985]


def test_onecycle_matches_torch_values_exactly():
    opt = _Opt()
    lrs, moms = _run(OneCycle(opt, max_lr=0.1, total_steps=20, pct_start=0.15), opt, 20)
    assert lrs == TORCH_LR_20          # bit-exact float64, same expression as PyTorch
    assert moms == TORCH_MOM_20


def test_onecycle_fractional_boundary_and_three_phase():
    opt = _Opt()
    lrs, moms = _run(OneCycle(opt, 0.1, 7, pct_start=0.5), opt, 7)
    assert lrs == TORCH_LR_7 and moms == TORCH_MOM_7
    opt = _Opt()
    lrs, _ = _run(OneCycle(opt, 0.1, 10, pct_start=0.3, three_phase=True), opt, 10)
    assert lrs == TORCH_LR_3P


def test_onecycle_cycles_adam_beta1_and_keeps_beta2():
    opt = _Opt(adam=True)
    _, moms = _run(OneCycle(opt, 0.1, 20, pct_start=0.15), opt, 20)
    assert moms == TORCH_MOM_20 and opt.betas[1] == 0.999


def test_onecycle_endpoints_from_the_formula():
    opt = _Opt()
    s = OneCycle(opt, max_lr=0.4, total_steps=100, pct_start=0.25, div_factor=10,
                 final_div_factor=100)
    assert s.lr_at(0) == pytest.approx(0.04) and s.lr_at(24) == pytest.approx(0.4)
    assert s.lr_at(99) == pytest.approx(0.04 / 100)
    mid = 24 + (99 - 24) / 2   # half-way through the anneal: the mean of max and min
    assert s.lr_at(int(mid)) == pytest.approx(
        0.0004 + (0.4 - 0.0004) / 2 * (math.cos(math.pi * (int(mid) - 24) / 75) + 1))
    assert s.momentum_at(24) == pytest.approx(0.85) and s.momentum_at(99) == pytest.approx(0.95)


def test_onecycle_short_runs_like_torch():
    opt = _Opt()
    s = OneCycle(opt, 0.1, 5, pct_start=0.15)     # e1 = -0.25: warm-up before step 0
    # PyTorch 2.x gives 0.09914865838957516 here (anneal 0.1 -> 4e-7 at pct 0.25 / 4.25)
    assert s.lr_at(0) == 4e-07 + (0.1 - 4e-07) / 2.0 * (math.cos(math.pi * 0.25 / 4.25) + 1)
    assert s.lr_at(4) == pytest.approx(4e-7)
    s = OneCycle(opt, 0.1, 20, pct_start=0.05)    # e1 = 0: PyTorch divides by zero
    assert s.lr_at(0) == 0.1 and s.lr_at(19) == pytest.approx(4e-7)


def test_onecycle_without_momentum_cycling_leaves_momentum():
    opt = _Opt()
    s = OneCycle(opt, 0.1, 20, pct_start=0.15, cycle_momentum=False)
    s.step()
    assert opt.momentum == 0.9


def test_warmup_cosine_values():
    opt = _Opt()
    s = WarmupCosine(opt, base_lr=0.2, total_steps=10, warmup_steps=4, min_lr=0.02)
    lrs, moms = _run(s, opt, 10)
    assert lrs[:4] == pytest.approx([0.05, 0.1, 0.15, 0.2])
    assert lrs[4] == pytest.approx(0.2)                                   # cosine start
    assert lrs[7] == pytest.approx(0.02 + 0.18 * (1 + math.cos(math.pi * 3 / 6)) / 2)
    assert lrs[7] == pytest.approx(0.11)
    assert lrs[10] == pytest.approx(0.02)                                 # end of schedule
    assert set(moms) == {0.9}                                             # untouched
    opt = _Opt()
    s = WarmupCosine(opt, 1.0, 4)                                        # no warm-up
    assert _run(s, opt, 4)[0] == pytest.approx([1.0, 0.8535533905932737, 0.5,
                                                0.14644660940672627, 0.0])


def test_constant():
    opt = _Opt()
    s = Constant(opt, 0.3, 5)
    assert _run(s, opt, 5)[0] == [0.3] * 6


@pytest.mark.parametrize("make", [
    lambda o: OneCycle(o, 0.1, 20, pct_start=0.15),
    lambda o: WarmupCosine(o, 0.1, 20, warmup_steps=3),
])
def test_state_round_trip_resumes_the_curve(make):
    a, b = _Opt(), _Opt()
    sa = make(a)
    for _ in range(7):
        sa.step()
    sb = make(b)
    sb.load_state_dict(sa.state_dict())
    assert (b.lr, b.momentum) == (a.lr, a.momentum)
    assert _run(sa, a, 13) == _run(sb, b, 13)


def test_state_of_another_length_is_refused():
    a, b = _Opt(), _Opt()
    state = OneCycle(a, 0.1, 20, pct_start=0.15).state_dict()
    with pytest.raises(ValueError, match="total_steps 20"):
        OneCycle(b, 0.1, 30, pct_start=0.15).load_state_dict(state)


def test_stepping_past_the_end_and_bad_arguments():
    opt = _Opt()
    s = Constant(opt, 0.1, 2)
    s.step(), s.step()
    with pytest.raises(ValueError, match="total_steps is 2"):
        s.step()
    with pytest.raises(ValueError, match="pct_start"):
        OneCycle(opt, 0.1, 20, pct_start=1.5)
    with pytest.raises(ValueError, match="warmup_steps"):
        WarmupCosine(opt, 0.1, 5, warmup_steps=5)
    with pytest.raises(ValueError, match="total_steps"):
        Constant(opt, 0.1, 0)
    with pytest.raises(ValueError, match="momentum"):
        OneCycle(object.__new__(type("NoMomentum", (), {})), 0.1, 20, pct_start=0.15)
    assert isinstance(np.asarray(s.state_dict()["step_count"]).item(), int)
