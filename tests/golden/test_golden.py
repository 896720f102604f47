"""Integer golden model: fast path == event-driven path, counts, overflow, fidelity, CLI."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cifar_files import write_dataset
from golden_models import images, tiny_config, tiny_model
from npsnn.golden import GoldenOverflowError, convert, run
from npsnn.golden.convert import CIFAR_MEAN, CIFAR_STD, normalise
from npsnn.golden.counts import count_ops, format_report
from npsnn.golden.intops import check_range, rshift
from npsnn.golden.reference import run_reference

T = 3
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", params=[True, False], ids=["spe", "plain"])
def tiny(request):
    model = tiny_model(spe=request.param)
    net = convert(model, images(16, seed=5), T=T)
    return model, net


def _assert_traces_equal(a, b):
    n = 0
    for name, fields in a.items():
        for field, v in fields.items():
            w = b[name][field]
            assert v.shape == w.shape, (name, field)
            assert np.array_equal(v, w), f"{name}.{field} differs"
            n += v.size
    return n


def test_rshift_rounding_is_half_up_and_left_for_negative_e():
    a = np.array([3, -3, 5, -5, 4, 7])
    assert rshift(a, 1).tolist() == [2, -1, 3, -2, 2, 4]
    assert rshift(a, 0).tolist() == a.tolist()
    assert rshift(a, -2).tolist() == (a * 4).tolist()
    assert rshift(np.array([-6]), 2).tolist() == [-1]          # (-6 + 2) >> 2 = -1


def test_overflow_policies_on_single_values():
    v = np.array([[[2047, 2048, -2049, -2048, 4096 + 5]]])
    assert check_range(v, 12, "saturate", "x", "acc", []).tolist() == \
        [[[2047, 2047, -2048, -2048, 2047]]]
    assert check_range(v, 12, "wrap", "x", "acc", []).tolist() == [[[2047, -2048, 2047, -2048, 5]]]
    with pytest.raises(OverflowError, match=r"layer 'x' \(acc, 12-bit .*value 2048 at t=0, "
                                            r"image=0, index=\(1,\)"):
        check_range(v, 12, "error", "x", "acc", [])


def test_fast_path_is_bit_identical_to_event_driven_path(tiny):
    _, net = tiny
    x = images(3, seed=11)
    fast = run(net, x, T, record=True)
    ref = run_reference(net, x, T)
    n = _assert_traces_equal(fast["trace"], ref["trace"])
    assert n > 50_000
    assert np.array_equal(fast["logits"], ref["logits"])
    # the network is not trivial: every LIF layer fires somewhere, not everywhere
    for name in net.lif_names():
        rate = fast["trace"][name]["spikes"].mean()
        assert 0 < rate < 1 or name.endswith(("lif_h", "lif_w")), (name, rate)


def test_counts_match_the_additions_of_the_event_driven_path(tiny):
    _, net = tiny
    x = images(2, seed=12)
    fast = run(net, x, T, record=True)
    ref = run_reference(net, x, T)
    counts = count_ops(net, fast["trace"], T)
    by_name = {r["name"]: r for r in counts["rows"]}
    for name, adds in ref["synaptic_adds"].items():
        np.testing.assert_allclose(by_name[name]["syn_ac"] * len(x), adds, err_msg=name)
    assert counts["totals"]["mac"] == 0
    assert counts["totals"]["syn_ac"] > 0 and counts["totals"]["ann_mac"] > 0
    text = format_report(counts, net.memory())
    assert "ANN / SNN" in text and "b0.fc2" in text and "per-token BN1d" in text


def test_integer_predictions_agree_with_the_float_model(tiny):
    """8-bit weights: most predictions agree (random tiny models have many near-ties);
    with 16-bit weights and 24-bit membranes the integer model converges to the float one."""
    model, _ = tiny
    x = images(128, seed=21)
    floats = model.forward_repeated(normalise(x, CIFAR_MEAN, CIFAR_STD, np.float64), T)
    fpred = floats.mean(axis=0).argmax(axis=1)
    agree = {}
    for bits, mem in ((8, 16), (16, 24)):
        net = convert(model, images(16, seed=5), bits=bits, mem_bits=mem, bias_bits=mem,
                      acc_bits=32, T=T)
        agree[bits] = (run(net, x, T)["pred"] == fpred).mean()
    print(f"prediction agreement integer vs float: {agree}")
    assert agree[8] >= 0.75
    assert agree[16] >= 0.97


def test_spikes_mostly_agree_with_the_float_model():
    """Layer by layer, the integer spikes are the float spikes up to rare rounding flips."""
    model = tiny_model(spe=True)
    net = convert(model, images(16, seed=5), T=T)
    x = images(8, seed=22)
    trace = run(net, x, T, record=True)["trace"]
    model.forward_repeated(normalise(x, CIFAR_MEAN, CIFAR_STD, np.float64), T)
    # first LIF: identical input at every step, float spikes recomputed from the rates
    rate_float = model.firing_rates()["to_patch_embedding_lif.0"]
    rate_int = trace["s0.lif"]["spikes"].reshape(T, -1).mean(axis=1)
    np.testing.assert_allclose(rate_int, rate_float, atol=0.02)


def test_thresholds_units_and_widths_are_declared(tiny):
    _, net = tiny
    units = net.meta["units"]
    assert len(units) == 2 and all(u >= 2 for u in units)
    qmax = 2 ** (net.bits["weight"] - 1) - 1
    for name, arr in net.params.items():
        # weights in the narrowest type of their width (int8 here: a per-token table of an
        # ImageNet model is 1.5 GB, not 12 GB), the rest int64
        assert arr.dtype == (np.int8 if name.endswith(".weight") else np.int64), name
        if name.endswith(".weight"):
            assert np.abs(arr).max() <= qmax, name
            assert np.abs(arr).max() >= qmax // 2, name      # rows use their range
    assert int(net.params["s0.lif.threshold"].ravel()[0]) == units[0]
    hid = net.params["b0.lif_hid.threshold"]
    assert hid.shape == (4, 4, 1) and (hid >= 1).all()
    mem = net.memory()
    # per-token tables (N, C, 3C) at 8 bits: stage 0 N=16, C=6; stage 1 N=4, C=12
    assert mem["per_token_table_bytes"] == 16 * 6 * 18 + 4 * 12 * 36
    assert mem["per_token_table_if_shared_bytes"] == 6 * 18 + 12 * 36


def test_overflow_error_names_layer_and_position():
    model = tiny_model()
    x = images(2, seed=3)
    net = convert(model, x, T=T, mem_bits=12, units=[400, 400])
    with pytest.raises(GoldenOverflowError, match=r"layer '[^']+' .*t=\d+, image=\d+, "
                                                  r"index=\(\d+, \d+, \d+\)"):
        run(net, x, T)
    for policy in ("saturate", "wrap"):
        fast = run(net, x, T, record=True, policy=policy)
        ref = run_reference(net, x, T, policy=policy)
        assert fast["events"] and ref["events"]
        _assert_traces_equal(fast["trace"], ref["trace"])
        lim = 2 ** 11
        for name in net.lif_names():
            cur = fast["trace"][name]["current"]
            assert cur.min() >= -lim and cur.max() < lim
    events = run(net, x, T, policy="saturate")["events"]
    sat = run(net, x, T, record=True, policy="saturate")["trace"]
    first = events[0]
    cur = sat[first["layer"]]["current" if first["field"] == "current" else first["field"]]
    assert cur.max() == 2 ** 11 - 1 or cur.min() == -2 ** 11      # clamped at the edge


def test_export_reloads_into_the_same_network(tiny, tmp_path):
    from npsnn.golden.export import export, load_export
    _, net = tiny
    x = images(2, seed=13)
    summary = export(net, x, T, tmp_path, hex_files=False)
    again = load_export(tmp_path)
    assert np.array_equal(run(again, x, T)["logits"], summary["logits"])
    assert again.manifest()["ops"] == net.manifest()["ops"]
    # version 1 manifests (no dense_shift_token) still load; unknown versions are refused
    manifest_file = tmp_path / "manifest.json"
    m = json.loads(manifest_file.read_text())
    for version, ok in (("npsnn-golden-1", True), ("npsnn-golden-9", False)):
        m["equation_version"] = version
        manifest_file.write_text(json.dumps(m))
        if ok:
            assert np.array_equal(run(load_export(tmp_path), x, T)["logits"], summary["logits"])
        else:
            with pytest.raises(ValueError, match="npsnn-golden-9"):
                load_export(tmp_path)


def _fresh_python(code: str) -> list[str]:
    """Run ``code`` in a new interpreter that imports this checkout -> its stdout lines."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.splitlines()


def test_integer_network_runs_without_the_float_model(tiny, tmp_path):
    """run, reference, export and counts import no float-model code, and neither the
    converter nor the lowering: a chip team's script that loads an export and runs it
    never loads sMLPNet (checked in a fresh interpreter)."""
    from npsnn.golden.export import export
    _, net = tiny
    x = images(2, seed=13)
    export(net, x, T, tmp_path / "export", hex_files=False)
    np.save(tmp_path / "images.npy", x)
    code = f"""if True:
        import sys
        import numpy as np
        import npsnn.golden.run, npsnn.golden.reference, npsnn.golden.export, npsnn.golden.counts
        from npsnn.golden import count_ops, export, run, run_reference
        from npsnn.golden.export import load_export
        net = load_export({str(tmp_path / "export")!r})
        x = np.load({str(tmp_path / "images.npy")!r})
        res = run(net, x, {T}, record=True)
        count_ops(net, res["trace"], {T})
        run_reference(net, x[:1], 1)
        export(net, x, {T}, {str(tmp_path / "again")!r})
        print(npsnn.__file__)
        print(*sorted(sys.modules))
    """
    out = _fresh_python(code)
    assert Path(out[0]).resolve() == ROOT / "npsnn" / "__init__.py"   # this checkout ran
    modules = set(out[1].split())
    assert {"npsnn.golden.run", "npsnn.golden.export", "npsnn.ops.conv"} <= modules
    float_side = ("npsnn.smlpnet", "npsnn.models", "npsnn.snnmlp", "npsnn.golden.convert",
                  "npsnn.golden.lower", "npsnn.golden.snap")
    loaded = sorted(m for m in modules if m in float_side or m.startswith("npsnn.models."))
    assert not loaded, f"running an integer network imported {loaded}"


def test_golden_convert_is_the_function_whichever_import_comes_first():
    """The submodule npsnn.golden.convert is loaded lazily; importing it first must not
    turn the package attribute ``convert`` into the module."""
    out = _fresh_python("from npsnn.golden.convert import normalise\n"
                        "from npsnn.golden import convert\n"
                        "import npsnn.golden\n"
                        "print(callable(convert), npsnn.golden.convert is convert, "
                        "convert.__module__)")
    assert out == ["True True npsnn.golden.convert"]


def test_conversion_refuses_what_shifts_cannot_do():
    with pytest.raises(ValueError, match=r"tau=3.0.*power of two"):
        convert(tiny_model(neuron=dict(tau=3.0)), images(2))
    with pytest.raises(ValueError, match="hard reset"):
        convert(tiny_model(neuron=dict(v_reset=None)), images(2))
    with pytest.raises(ValueError, match="decay_input=True only"):
        convert(tiny_model(neuron=dict(decay_input=False)), images(2))
    model = tiny_model()                     # a LIF changed behind the config's back
    model.token_mix_lif[0].options["tau"] = 4.0
    with pytest.raises(ValueError, match=r"LIF 'token_mix_lif.0' has \{'tau': 4.0\}"):
        convert(model, images(2))


def test_tau_four_uses_a_two_bit_leak_shift():
    model = tiny_model(neuron=dict(tau=4.0))
    net = convert(model, images(4), T=T)
    assert net.leak_shift == 2
    x = images(2, seed=9)
    _assert_traces_equal(run(net, x, T, record=True)["trace"], run_reference(net, x, T)["trace"])


def test_bad_inputs_are_explained(tiny):
    _, net = tiny
    with pytest.raises(TypeError, match="uint8"):
        run(net, images(1).astype(np.float32), T)
    with pytest.raises(ValueError, match=r"\(B, 3, 16, 16\)"):
        run(net, images(1, size=8), T)
    with pytest.raises(ValueError, match="T to be a positive integer"):
        run(net, images(1), 0)
    with pytest.raises(ValueError, match="bits"):
        convert(tiny_model(), images(2), bits=1)
    with pytest.raises(ValueError, match="policy"):
        convert(tiny_model(), images(2), policy="ignore")


# -- CLI ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cli_setup(tmp_path_factory):
    from npsnn.io import save_npz
    root = tmp_path_factory.mktemp("golden_cli")
    cfg = tiny_config(spe=True, image_size=32, patch_size=8)
    model = tiny_model(spe=True, dtype=np.float32, image_size=32, patch_size=8)
    save_npz(root / "model.npz", model.state_dict())
    (root / "config.json").write_text(json.dumps(cfg))
    write_dataset(root / "data", "cifar10", "binary", n_train=20, n_test=20)
    return root


def test_cli_export_verify_report_eval(cli_setup, capsys):
    from npsnn.__main__ import main
    from npsnn.golden.export import from_hex
    root = cli_setup
    common = ["--checkpoint", str(root / "model.npz"), "--config", str(root / "config.json"),
              "--data", str(root / "data"), "--T", "3", "--calib", "16"]
    out = root / "vec"
    assert main(["golden", "export", *common, "--images", "0:2", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["equation_version"] == "npsnn-golden-2"
    assert [im["index"] for im in manifest["vectors"]["images"]] == [0, 1]
    # hex and npz hold the same numbers
    with np.load(out / "vectors" / "img0001.npz") as z:
        spikes = z["b1.lif_c/spikes"]
        v = z["b0.lif_c/v"]
    f = manifest["vectors"]["fields"]
    text = (out / "vectors_hex" / "img0001" / "b0.lif_c.v.hex").read_text()
    assert np.array_equal(from_hex(text, f["b0.lif_c"]["v"]["bits"], True, v.shape), v)
    w = np.load(out / "params.npz")["b0.fuse.weight"]
    assert np.array_equal(from_hex((out / "params_hex" / "b0.fuse.weight.hex").read_text(), 8,
                                   True, w.shape), w)
    capsys.readouterr()
    assert main(["golden", "verify", "--ours", str(out), "--theirs", str(out)]) == 0
    assert re.search(r"all \d+ values match", capsys.readouterr().out)
    # a simulator that differs in one spike: first mismatch reported, exit 1
    theirs = root / "theirs" / "vectors"
    theirs.mkdir(parents=True)
    for k in range(2):
        with np.load(out / "vectors" / f"img{k:04d}.npz") as z:
            arrays = {key: z[key] for key in z.files}
        if k == 1:
            arrays["b1.lif_c/spikes"] = spikes.copy()
            arrays["b1.lif_c/spikes"][2, 1, 0, 3] ^= 1
        np.savez(theirs / f"img{k:04d}.npz", **arrays)
    assert main(["golden", "verify", "--ours", str(out), "--theirs", str(root / "theirs")]) == 1
    msg = capsys.readouterr().out
    assert "layer 'b1.lif_c', field 'spikes', t=2, index=(1, 0, 3)" in msg
    assert f"expected {spikes[2, 1, 0, 3]}, got {spikes[2, 1, 0, 3] ^ 1}" in msg
    assert main(["golden", "verify", "--ours", str(out), "--theirs", str(root / "nope")]) == 2
    assert main(["golden", "report", *common, "--images", "0:4"]) == 0
    rep = capsys.readouterr().out
    assert "ANN / SNN" in rep and re.search(r"total .* 0 ", rep)
    assert main(["golden", "eval", *common, "--images", "0:20"]) == 0
    ev = capsys.readouterr().out
    m = re.search(r"prediction agreement: ([\d.]+)%", ev)
    assert m and float(m.group(1)) >= 50
    assert main(["golden", "export", "--checkpoint", str(root / "model.npz"), "--data",
                 str(root / "data"), "--out", str(root / "x")]) == 2     # no config given


def test_cli_reads_a_training_checkpoint(cli_setup, capsys):
    """A checkpoint written by npsnn.train needs no --config (skipped if training absent)."""
    ckpt_mod = pytest.importorskip("npsnn.train.checkpoint")
    from npsnn.__main__ import main
    root = cli_setup
    cfg = json.loads((root / "config.json").read_text())
    model = tiny_model(spe=True, dtype=np.float32, image_size=32, patch_size=8)
    ckpt_mod.save_checkpoint(root / "ckpt.npz", model=model.state_dict(), config=cfg)
    capsys.readouterr()
    assert main(["golden", "report", "--checkpoint", str(root / "ckpt.npz"), "--images", "0:2",
                 "--T", "2", "--calib", "8"]) == 0
    out = capsys.readouterr().out
    assert "random uint8 images" in out and "b1.fc2" in out


def test_cli_config_is_the_shared_parser(cli_setup, tmp_path, capsys):
    """--config is npsnn.cli.config_arg: a JSON object or a .json file; bad ones are one
    line and exit code 2, never a traceback."""
    from npsnn.__main__ import main
    from npsnn.cli import UsageError, config_arg
    root = cli_setup
    snap = ["golden", "snap", "--checkpoint", str(root / "model.npz"), "--out"]
    inline = (root / "config.json").read_text()
    assert main([*snap, str(tmp_path / "a.npz"), "--config", inline]) == 0
    assert (tmp_path / "a.npz").is_file()
    for config in (str(tmp_path / "missing.json"), "[1, 2]", "{'dim': 6}"):
        with pytest.raises(UsageError) as expected:
            config_arg(config)
        capsys.readouterr()
        assert main([*snap, str(tmp_path / "b.npz"), "--config", config]) == 2
        assert capsys.readouterr().err == f"npsnn golden snap: error: {expected.value}\n"
    assert not (tmp_path / "b.npz").exists()
