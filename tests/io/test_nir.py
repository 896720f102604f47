"""NIR export (npsnn.io.nir): the exported graph, run by an independent NumPy executor
(tests/io/nir_executor.py), reproduces npsnn's spikes at every LIF and its logits; the file
round trip; from_nir; the export-nir command. Needs the optional ``nir`` package: skipped
with an install hint without it, a failure under CI=true (CI installs the extra)."""
import subprocess
import sys

import numpy as np
import pytest

from conftest import IN_CI, ROOT
import npsnn
from npsnn.ops.lif import LIF

try:
    import nir
except ModuleNotFoundError:                                # pragma: no cover
    nir = None
    if IN_CI:
        pytest.fail("CI=true but the nir package is missing: .ci/run installs "
                    "'.[test,tutorials,nir]'", pytrace=False)
    pytest.skip("the optional nir package is not installed: pip install -e '.[nir]'",
                allow_module_level=True)

import nir_executor                                         # noqa: E402
from npsnn.io.cli import export_nir_main                    # noqa: E402
from npsnn.io.nir import read_nir, to_nir, write_nir       # noqa: E402
from npsnn.models.nir_import import from_nir                  # noqa: E402

CONFIGS = {
    "spe": dict(in_channels=3, dim=6, alpha=2, num_classes=7, patch_size=4, image_size=16,
                depths=[1, 2], spe=True),
    "no-spe, 3 stages": dict(in_channels=2, dim=4, alpha=1, num_classes=5, patch_size=2,
                             image_size=16, depths=[1, 1, 1], spe=False),
    "neuron options": dict(in_channels=3, dim=6, alpha=2, num_classes=4, patch_size=4,
                           image_size=16, depths=[1, 1], spe=True,
                           neuron=dict(tau=4.0, v_threshold=0.5, v_reset=-0.25,
                                       decay_input=False)),
}


def trained(config, seed=1):
    """A float64 model whose BN statistics are not the initial ones (two train batches)."""
    model = npsnn.build(config, dtype=np.float64, seed=seed, fast=False)
    rng = np.random.default_rng(seed)
    model.train()
    for _ in range(2):
        model.forward_repeated(rng.standard_normal((4, config["in_channels"], 16, 16)), 3)
    return model.eval()


def spikes_and_logits(model, x, T):
    """npsnn's eval forward, recording every LIF layer's spikes as (T, B, C, H, W)."""
    seen = {}
    for path, module in model.named_modules():
        if isinstance(module, LIF):
            def record(z, forward=module.forward, path=path):
                seen[path] = forward(z)
                return seen[path]
            module.forward = record
    logits = model.forward_repeated(x, T)
    out = {}
    for path, s in seen.items():
        if s.ndim == 4:                                   # channel mixer tokens (T, B, N, C)
            g = int(round(np.sqrt(s.shape[2])))
            s = s.reshape(s.shape[0], s.shape[1], g, g, s.shape[3])
        out[path] = s.transpose(0, 1, 4, 2, 3)
    return out, logits


@pytest.mark.parametrize("name", list(CONFIGS))
def test_executor_reproduces_every_spike_and_the_logits(name):
    config = CONFIGS[name]
    model = trained(config)
    x = np.random.default_rng(5).standard_normal((3, config["in_channels"], 16, 16)) * 3
    T = 4
    spikes, logits = spikes_and_logits(model, x, T)
    graph = to_nir(model)
    out = nir_executor.run(graph, x, T, graph.metadata["dt"])
    assert set(spikes) <= set(out)
    for path, s in spikes.items():
        np.testing.assert_array_equal(out[path], s, err_msg=path)
    active = np.mean([s.mean() for s in spikes.values()])
    assert 0.01 < active < 0.9                        # the comparison is not all zeros
    np.testing.assert_allclose(out["output"][..., 0, 0], logits, rtol=1e-10, atol=1e-12)


def test_the_trained_tutorial_model_on_real_images():
    from npsnn.datasets import load_cifar, sample_path
    from npsnn.datasets.transforms import normalize
    from npsnn.train.checkpoint import load_model
    trained_model, _ = load_model(ROOT / "tutorials" / "assets" / "cifar10-p4-d48.npz",
                                  dtype=np.float64)
    model = npsnn.build(trained_model.config, dtype=np.float64, fast=False).eval()
    model.load_state_dict(trained_model.state_dict())
    x = normalize(load_cifar(sample_path(), "test")[0][:4], dtype=np.float64)
    spikes, logits = spikes_and_logits(model, x, 4)
    graph = to_nir(model)
    out = nir_executor.run(graph, x, 4, graph.metadata["dt"])
    for path, s in spikes.items():
        np.testing.assert_array_equal(out[path], s, err_msg=path)
    np.testing.assert_allclose(out["output"][..., 0, 0], logits, rtol=1e-9, atol=1e-12)


def test_lif_parameters_follow_the_documented_mapping():
    model = trained(CONFIGS["neuron options"])
    graph = to_nir(model, dt=1e-3)
    lif = graph.nodes["token_mix_lif.0"]
    assert isinstance(lif, nir.LIF) and lif.tau.shape == (6, 4, 4)
    np.testing.assert_allclose(lif.tau, 4.0 * 1e-3)
    np.testing.assert_allclose(lif.r, 4.0)                # decay_input=False: r = tau_sj
    np.testing.assert_array_equal(lif.v_leak, -0.25)
    np.testing.assert_array_equal(lif.v_reset, -0.25)
    np.testing.assert_array_equal(lif.v_threshold, 0.5)
    assert graph.metadata["dt"] == 1e-3
    kinds = {type(n).__name__ for n in graph.nodes.values()}
    assert kinds == {"Input", "Output", "Conv2d", "Scale", "LIF", "AvgPool2d"}
    assert all(n.groups == 1 for n in graph.nodes.values() if isinstance(n, nir.Conv2d))


def test_file_round_trip_type_checks_and_runs_the_same(tmp_path):
    model = trained(CONFIGS["spe"])
    graph = to_nir(model)
    write_nir(tmp_path / "m.nir", graph)
    back = read_nir(tmp_path / "m.nir")                   # nir.read type-checks the graph
    assert set(back.nodes) == set(graph.nodes) and sorted(back.edges) == sorted(graph.edges)
    x = np.random.default_rng(2).standard_normal((2, 3, 16, 16))
    a = nir_executor.run(graph, x, 3, 1e-4)["output"]
    b = nir_executor.run(back, x, 3, float(back.metadata["dt"]))["output"]
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_from_nir_gives_back_the_eval_function(name):
    model = trained(CONFIGS[name])
    x = np.random.default_rng(3).standard_normal((2, CONFIGS[name]["in_channels"], 16, 16))
    back = from_nir(to_nir(model))
    assert back.config == model.config and back.dtype == np.float64
    np.testing.assert_allclose(back.forward_repeated(x, 3), model.forward_repeated(x, 3),
                               rtol=1e-12, atol=1e-13)
    again = to_nir(back)                                   # and it exports to the same graph
    for key, node in to_nir(model).nodes.items():
        for field in ("weight", "bias", "scale"):
            if hasattr(node, field):
                np.testing.assert_allclose(getattr(again.nodes[key], field),
                                           getattr(node, field), rtol=1e-12, atol=1e-15,
                                           err_msg=key)


def test_refusals_are_clear():
    with pytest.raises(ValueError, match="hard reset only"):
        to_nir(npsnn.build(dict(CONFIGS["spe"], neuron=dict(v_reset=None))))
    with pytest.raises(ValueError, match="exports sMLPNet"):
        to_nir(npsnn.build("cifar10-snn-mlp"))
    foreign = nir.NIRGraph.from_list(nir.Affine(weight=np.eye(2), bias=np.zeros(2)))
    with pytest.raises(ValueError, match="graphs written by npsnn.to_nir"):
        from_nir(foreign)


def test_export_nir_command(tmp_path, capsys):
    from npsnn.train.checkpoint import save_checkpoint
    model = trained(CONFIGS["spe"])
    save_checkpoint(tmp_path / "c.npz", model=model.state_dict(), config=model.config)
    assert export_nir_main([str(tmp_path / "c.npz"), str(tmp_path / "c.nir"), "--dt", "1e-3",
                            "--dtype", "float64"]) == 0
    assert "nodes (" in capsys.readouterr().out
    back = read_nir(tmp_path / "c.nir")
    assert float(back.metadata["dt"]) == 1e-3
    assert export_nir_main([str(tmp_path / "missing.npz"), str(tmp_path / "x.nir")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_package_imports_and_explains_without_nir(tmp_path):
    script = ("import sys; sys.modules['nir'] = None\n"
              "import npsnn, numpy as np\n"
              "m = npsnn.build('cifar10-p4-d48')\n"
              "try:\n    npsnn.to_nir(m)\nexcept ModuleNotFoundError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=ROOT, env={"PYTHONPATH": str(ROOT)}, timeout=120)
    assert "pip install 'npsnn[nir]'" in out.stdout, out.stderr
