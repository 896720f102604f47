"""The fast twin (npsnn/models/smlpnet_fast.py) against the plain model, in float64.

Same tree, same names, same initialisation; every output, gradient and BN running statistic
equal to rounding, in train and eval mode, through ``forward`` and ``forward_repeated``.
(Both are also held to PyTorch to 1e-8 by tests/models/test_smlpnet.py.)
"""
import numpy as np
import pytest

import npsnn
from npsnn.models.smlpnet import ChannelMixer, ConvBN, PatchCell, SMLPNet, TokenMixer
from npsnn.models.smlpnet_fast import (FastChannelMixer, FastConvBN, FastPatchCell, FastSMLPNet,
                                       FastTokenMixer)

CONFIGS = {
    "spe": dict(dim=6, alpha=2, num_classes=5, patch_size=4, image_size=16, depths=[1, 2],
                spe=True),
    "no-spe": dict(dim=4, alpha=3, num_classes=3, patch_size=2, image_size=8, depths=[2, 1],
                   spe=False),
}
TOL = dict(rtol=1e-11, atol=1e-12)


def _pair(config, seed=0):
    plain = npsnn.build(config, dtype=np.float64, seed=seed, fast=False)
    fast = npsnn.build(config, dtype=np.float64, seed=seed)
    # BN affine parameters and running statistics away from their defaults, so folding matters
    rng = np.random.default_rng(seed + 7)
    state = {}
    for name, value in plain.state_dict().items():
        if name.endswith(("weight", "bias")) and value.ndim == 1:
            value = value + 0.3 * rng.normal(size=value.shape)
        elif name.endswith("running_mean"):
            value = 0.2 * rng.normal(size=value.shape)
        elif name.endswith("running_var"):
            value = rng.uniform(0.5, 2.0, size=value.shape)
        state[name] = value
    plain.load_state_dict(state)
    fast.load_state_dict(state)
    return plain, fast


def test_fast_is_the_default_and_swaps_only_blocks():
    plain, fast = _pair(CONFIGS["spe"])
    assert type(plain) is SMLPNet and type(fast) is FastSMLPNet and isinstance(fast, SMLPNet)
    assert type(plain.to_patch_embedding[1]) is PatchCell
    assert type(fast.to_patch_embedding[1]) is FastPatchCell
    assert type(fast.token_mix[0]) is FastTokenMixer and type(plain.token_mix[0]) is TokenMixer
    assert type(fast.channel_mix[0]) is FastChannelMixer
    assert type(plain.channel_mix[0]) is ChannelMixer
    assert type(fast.to_patch_embedding[0]) is FastConvBN
    assert type(plain.to_patch_embedding[0]) is ConvBN
    assert [k for k, _ in plain.named_parameters()] == [k for k, _ in fast.named_parameters()]
    fresh_plain = npsnn.build(CONFIGS["spe"], seed=4, fast=False).state_dict()
    fresh_fast = npsnn.build(CONFIGS["spe"], seed=4).state_dict()
    for k in fresh_plain:                       # the same initialisation, draw for draw
        np.testing.assert_array_equal(fresh_plain[k], fresh_fast[k], err_msg=k)


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("repeated", [False, True], ids=["forward", "forward_repeated"])
def test_train_mode_outputs_gradients_and_statistics_agree(name, repeated):
    config = CONFIGS[name]
    plain, fast = _pair(config)
    rng = np.random.default_rng(1)
    s = config["image_size"]
    images = rng.normal(size=(3, 3, s, s)) * 1.5
    x = np.repeat(images[None], 4, axis=0) + 0.1 * rng.normal(size=(4, 3, 3, s, s))
    g = rng.normal(size=(4, 3, config["num_classes"]))
    outs = []
    for model in (plain, fast):
        model.train()
        model.zero_grad()
        logits = model.forward_repeated(images, 4) if repeated else model.forward(x)
        model.backward(g)
        outs.append((logits, model.named_grads(), model.state_dict()))
    (lp, gp, sp), (lf, gf, sf) = outs
    np.testing.assert_allclose(lf, lp, **TOL)
    largest = max(np.abs(v).max() for v in gp.values())
    for k in gp:
        np.testing.assert_allclose(gf[k], gp[k], rtol=1e-9, atol=1e-12 * largest, err_msg=k)
    for k in sp:
        np.testing.assert_allclose(sf[k], sp[k], **TOL, err_msg=k)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_eval_mode_folding_agrees_with_plain_batchnorm(name):
    config = CONFIGS[name]
    plain, fast = _pair(config, seed=2)
    rng = np.random.default_rng(3)
    s = config["image_size"]
    images = rng.normal(size=(4, 3, s, s))
    lp = plain.eval().forward_repeated(images, 3)
    lf = fast.eval().forward_repeated(images, 3)
    np.testing.assert_allclose(lf, lp, **TOL)
    assert np.abs(lp).max() > 0.1            # not a trivially zero output


def test_fast_blocks_are_opt_in_per_block():
    """Each fast block is a drop-in for its plain block on its own (the tree is the same)."""
    rng = np.random.default_rng(0)
    x = (rng.random((2, 3, 4, 4, 6)) < 0.4).astype(np.float64)
    dy = rng.normal(size=(2, 3, 4, 4, 6))
    for plain_cls, fast_cls, args in [(TokenMixer, FastTokenMixer, (4, 6)),
                                      (ChannelMixer, FastChannelMixer, (4, 6, 2))]:
        a = plain_cls(*args, dtype=np.float64, rng=np.random.default_rng(5))
        b = fast_cls(*args, dtype=np.float64, rng=np.random.default_rng(5))
        np.testing.assert_allclose(b.forward(x), a.forward(x), **TOL)
        np.testing.assert_allclose(b.backward(dy), a.backward(dy), **TOL)
