"""The model registry: presets, config resolution, neuron options, time axis."""
import numpy as np
import pytest

import npsnn
from npsnn.models import MODELS, PRESETS, build, resolve_config, spec_of


def test_every_preset_names_a_registered_model_and_resolves():
    assert set(MODELS) >= {"smlpnet", "snn-mlp"}
    for name, config in PRESETS.items():
        assert config["model"] in MODELS, name
        cfg = resolve_config(name)
        assert cfg["model"] == config["model"]
        assert resolve_config(cfg) == cfg               # resolving is idempotent
        assert name in spec_of(name).presets


def test_time_axis_is_declared_by_the_model():
    assert spec_of("cifar10-p4-d48").time_axis is True
    assert spec_of("cifar10-snn-mlp").time_axis is False
    model = build("cifar10-snn-mlp")
    logits = model.forward_repeated(np.zeros((2, 3, 32, 32), np.float32), T=4)
    assert logits.shape == (1, 2, 10)                # no time axis: T does not apply


def test_smlpnet_config_records_neuron_options_and_old_configs_get_the_defaults():
    old = dict(dim=6, alpha=2, num_classes=3, patch_size=4, image_size=16, depths=[1, 1])
    cfg = resolve_config(old)                         # a config written before "neuron"
    assert cfg["model"] == "smlpnet"
    assert cfg["neuron"] == dict(tau=2.0, v_threshold=1.0, v_reset=0.0, decay_input=True,
                                 detach_reset=True, surrogate="sigmoid", alpha=4.0,
                                 smooth=False)
    model = build(old)
    assert model.config == cfg
    lifs = [m for _, m in model.named_modules() if isinstance(m, npsnn.LIF)]
    assert lifs and all(lif.options == cfg["neuron"] for lif in lifs)


def test_neuron_options_reach_every_lif():
    cfg = dict(dim=6, alpha=2, num_classes=3, patch_size=4, image_size=16, depths=[1, 1],
               neuron=dict(tau=4.0, v_threshold=0.5, surrogate="atan"))
    for fast in (True, False):
        model = build(cfg, fast=fast)
        lifs = [m for _, m in model.named_modules() if isinstance(m, npsnn.LIF)]
        assert len(lifs) == 2 + 2 * 5 + 2        # per stage, 5 per block, the PatchCell
        for lif in lifs:
            assert lif.options["tau"] == 4.0 and lif.options["v_threshold"] == 0.5
            assert lif.options["surrogate"] == "atan" and lif.options["alpha"] == 2.0
    assert model.config["neuron"]["alpha"] == 2.0        # the surrogate's own default


@pytest.mark.parametrize("neuron,match", [
    (dict(tau=0), "tau > 0"),
    (dict(v_threshold=float("nan")), "finite v_threshold"),
    (dict(surrogate="relu"), "surrogate"),
    (dict(leak=1), "unknown neuron options"),
    (dict(detach_reset="yes"), "true or false"),
    (dict(tau="2"), "must be a number"),
    ("lif", "must be a dict"),
])
def test_bad_neuron_options_fail_at_build(neuron, match):
    cfg = dict(dim=6, alpha=2, num_classes=3, patch_size=4, image_size=16, depths=[1, 1],
               neuron=neuron)
    with pytest.raises(ValueError, match=match):
        build(cfg)


def test_unknown_model_and_bad_types():
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        build(dict(model="resnet"))
    with pytest.raises(TypeError, match="preset name or a config dict"):
        build(42)
    with pytest.raises(TypeError, match="float32 or float64"):
        build("cifar10-p4-d48", dtype=np.int32)


def test_building_a_model_leaves_process_settings_alone(monkeypatch):
    from npsnn.perf import runtime
    calls = []
    monkeypatch.setattr(runtime, "reuse_freed_memory", lambda: calls.append(1) or True)
    build("cifar10-p4-d48")
    assert calls == []                                 # the commands tune, build() never does
    assert runtime.tune_process(threads=1)["malloc_tuned"] is True and calls == [1]
