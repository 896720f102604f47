"""Per-parameter lr and weight decay (PyTorch's parameter groups), declared by a model in
``optimizer_options()`` and passed on by the recipe: each parameter with its own settings
moves exactly as a separate optimizer with those settings would, with its lr following the
schedule in proportion."""
import numpy as np
import pytest

from npsnn.models.spikingssm import SpikingSSM
from npsnn.module import Module
from npsnn.train.args import TrainArgs
from npsnn.train.optim import SGD, AdamW
from npsnn.train.recipe import make_optimizer


class Params(Module):
    def __init__(self, arrays):
        super().__init__()
        for i, a in enumerate(arrays):
            self.add_param(f"p{i}", np.array(a, dtype=float))


@pytest.mark.parametrize("make", [
    lambda m, lr, wd, **kw: AdamW(m, lr=lr, weight_decay=wd, **kw),
    lambda m, lr, wd, **kw: SGD(m, lr=lr, momentum=0.9, weight_decay=wd, nesterov=True, **kw),
])
def test_a_parameter_with_its_own_settings_moves_as_its_own_optimizer(make):
    rng = np.random.default_rng(0)
    init = [rng.normal(size=(3, 2)), rng.normal(size=4)]
    grads = [[rng.normal(size=a.shape) for a in init] for _ in range(5)]
    lrs = [0.01, 0.008, 0.005, 0.002, 0.001]                 # a schedule sets opt.lr per step
    both = Params(init)
    opt = make(both, 0.01, 0.05, param_options={"p1": {"lr": 0.001, "weight_decay": 0.0}})
    alone0, alone1 = Params(init[:1]), Params(init[1:])
    opt0, opt1 = make(alone0, 0.01, 0.05), make(alone1, 0.001, 0.0)
    for lr, (g0, g1) in zip(lrs, grads):
        both.grads["p0"][...], both.grads["p1"][...] = g0, g1
        alone0.grads["p0"][...], alone1.grads["p0"][...] = g0, g1
        opt.lr, opt0.lr, opt1.lr = lr, lr, lr * 0.1           # in proportion to the base lr
        for o in (opt, opt0, opt1):
            o.step()
    np.testing.assert_array_equal(both.params["p0"], alone0.params["p0"])
    np.testing.assert_allclose(both.params["p1"], alone1.params["p0"], rtol=1e-15)


def test_the_recipe_passes_the_models_declaration():
    model = SpikingSSM(d_model=4, n_layers=1, d_state=4, neuron="bptt", seq_len=16)
    opt = make_optimizer(model, TrainArgs(preset=None, config=model.config, optimizer="adamw",
                                          lr=0.01, wd=0.01))
    assert opt.param_options == model.optimizer_options()
    assert opt.param_options["s4_layers.0.kernel.log_dt"] == {"lr": 0.001, "weight_decay": 0.0}
    assert make_optimizer(Params([np.ones(2)]), TrainArgs()).param_options == {}


def test_bad_param_options():
    m = Params([np.ones(2)])
    with pytest.raises(ValueError, match=r"name parameters the model does not have: \['p9'\]"):
        AdamW(m, param_options={"p9": {"lr": 0.1}})
    with pytest.raises(ValueError, match="may set 'lr' and 'weight_decay' only"):
        AdamW(m, param_options={"p0": {"momentum": 0.1}})
    with pytest.raises(ValueError, match="must be >= 0"):
        SGD(m, lr=0.1, param_options={"p0": {"weight_decay": -1.0}})
    with pytest.raises(ValueError, match="with lr 0 cannot scale"):
        SGD(m, lr=0.0, param_options={"p0": {"lr": 0.1}})
