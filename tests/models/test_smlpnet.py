"""sMLPNet: exactness against PyTorch + SpikingJelly, parameter counts, config checks."""
import json

import numpy as np
import pytest

import npsnn
from conftest import ROOT, need_fixture
from reference_check import compare_case

# Parameter counts: ../shared/fixtures/README.md (paper models) and the model issue (CIFAR).
COUNTS = {
    "mlp-spe-t": 25_229_180,
    "mlp-s": 34_490_128,
    "mlp-spe-s": 37_975_568,
    "cifar10-p4-d48": 826_894,
    "cifar10-p4-d96": 4_702_306,
    "cifar10-p2-d48": 1_182_778,
}


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain-model"])
@pytest.mark.parametrize("name", ["smlpnet_spe", "smlpnet_plain"])
def test_matches_pytorch_fixture(name, fast):
    path = need_fixture(f"{name}.npz")
    config = json.loads(path.with_suffix(".json").read_text())["config"]
    with np.load(path) as ref:
        errors = compare_case(ref, config, fast=fast)
    assert len(errors) > 50            # logits, loss, every gradient, every BN buffer


REFERENCE_CASES = sorted((ROOT / "tests" / "data" / "reference").glob("*.npz"))


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain-model"])
@pytest.mark.parametrize("path", REFERENCE_CASES, ids=[p.stem for p in REFERENCE_CASES])
def test_matches_pytorch_on_other_configs(path, fast):
    """Cases made by tests/generators/make_reference_cases.py: other widths, patches, T, B,
    seeds."""
    config = json.loads(path.with_suffix(".json").read_text())["config"]
    with np.load(path) as ref:
        compare_case(ref, config, fast=fast)


def test_reference_cases_are_present():
    assert len(REFERENCE_CASES) >= 3


@pytest.mark.parametrize("name,count", sorted(COUNTS.items()))
def test_preset_parameter_counts(name, count):
    assert npsnn.build(name).num_parameters() == count


@pytest.mark.parametrize("dim,count", [(78, 22_927_972), (80, 24_096_112)])
def test_paper_counts_without_spe(dim, count):
    cfg = dict(npsnn.PRESETS["mlp-s"], dim=dim)
    assert npsnn.build(cfg).num_parameters() == count


@pytest.mark.parametrize("config,match", [
    (dict(dim=16, num_classes=10, patch_size=4, image_size=32, depths=[1, 1]), "divisible by 3"),
    (dict(dim=24, num_classes=10, patch_size=4, image_size=36, depths=[1, 1, 1]), "image_size 36"),
    (dict(dim=24, num_classes=10, patch_size=4, image_size=32, depths=[]), "depths"),
    (dict(dim=0, num_classes=10, patch_size=4, image_size=32, depths=[1]), "'dim'"),
    (dict(dim=24, num_classes=10, patch_size=4, image_size=32, depths=[1], colour=1), "colour"),
    ("cifar10-tiny", "unknown preset"),
])
def test_bad_configs_fail_at_build(config, match):
    with pytest.raises(ValueError, match=match):
        npsnn.build(config)


def test_forward_repeated_equals_forward_on_repeated_input():
    cfg = dict(dim=12, alpha=2, num_classes=10, patch_size=4, image_size=16, depths=[1, 1],
               spe=True)
    a = npsnn.build(cfg, dtype=np.float64, seed=3)
    b = npsnn.build(cfg, dtype=np.float64, seed=3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3, 16, 16)) * 2
    g = rng.normal(size=(4, 5, 10))
    la = a.forward(np.repeat(x[None], 4, axis=0))
    lb = b.forward_repeated(x, 4)
    np.testing.assert_allclose(lb, la, rtol=1e-12, atol=1e-12)
    a.backward(g)
    b.backward(g)
    ga, gb = a.named_grads(), b.named_grads()
    for k in ga:
        np.testing.assert_allclose(gb[k], ga[k], rtol=1e-9, atol=1e-12, err_msg=k)
    sa, sb = a.state_dict(), b.state_dict()
    for k in sa:       # running statistics, including the unbiased n = T*B*H*W correction
        np.testing.assert_allclose(sb[k], sa[k], rtol=1e-12, atol=1e-14, err_msg=k)


def test_input_checks_name_the_problem():
    model = npsnn.build("cifar10-p4-d48")
    with pytest.raises(ValueError, match=r"x_seq of shape \(T, B, 3, 32, 32\), got \(4, 3, 32, 32\)"):
        model.forward(np.zeros((4, 3, 32, 32), np.float32))
    with pytest.raises(TypeError, match="dtype float32"):
        model.forward(np.zeros((2, 1, 3, 32, 32), np.float64))
