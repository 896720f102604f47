"""Snapping a float model onto the golden weight grid (npsnn.golden.snap)."""
import copy
import json
import re

import numpy as np
import pytest

from cifar_files import write_dataset
from golden_models import images, tiny_config, tiny_model
from npsnn.golden import convert, count_ops, format_report, run
from npsnn.golden.convert import CIFAR_MEAN, CIFAR_STD, normalise
from npsnn.golden.lower import bn_affine, lower
from npsnn.golden.snap import pow2_token_gains, snap_to_grid

T = 3


def _state(model):
    return {k: np.array(v, np.float64) for k, v in model.state_dict().items()}


def _weight_rounding_error(model, net):
    """Largest |dequantised integer weight - folded float weight| / row peak over every term
    of ``net`` (0 when conversion did not round any weight)."""
    worst = 0.0
    kinds = {o["name"]: o.get("kind") for o in net.ops}
    for op in lower(model, CIFAR_MEAN, CIFAR_STD):
        if op["op"] != "term":
            continue
        u = net.meta["units"][op["stage"]]
        q = net.params[f"{op['name']}.weight"].astype(np.float64)
        e = net.params[f"{op['name']}.shift"].astype(np.float64)
        if kinds[op["name"]] == "dense_shift_token":     # table row (n, o) = sign_n q_o 2^-e[n, o]
            sign = net.params[f"{op['name']}.sign"].astype(np.float64)
            q = sign[:, None, None] * np.broadcast_to(q, (len(sign),) + q.shape)
        w = op["_w"].reshape(e.size, -1)
        deq = q.reshape(e.size, -1) * np.exp2(-e.reshape(-1, 1)) / u
        peak = np.abs(w).max(axis=1, keepdims=True)
        worst = max(worst, float((np.abs(deq - w) / np.where(peak > 0, peak, 1)).max()))
    return worst


@pytest.mark.parametrize("spe", [True, False], ids=["spe", "plain"])
def test_snapped_weights_convert_without_rounding(spe):
    model = tiny_model(spe=spe)
    calib = images(16, seed=5)
    before = _weight_rounding_error(model, convert(model, calib, T=T))
    assert before > 1e-3                  # an unsnapped model does lose weight precision
    snap_to_grid(model)
    after = _weight_rounding_error(model, convert(model, calib, T=T))
    assert after < 1e-12, after


def test_snapping_is_idempotent_and_keeps_token_shifts():
    model = snap_to_grid(tiny_model(spe=True))
    shifts = [bn_affine(cm.net[4])[1] for cm in model.channel_mix]
    once = _state(model)
    snap_to_grid(model)
    for k, v in _state(model).items():
        np.testing.assert_allclose(v, once[k], rtol=1e-12, atol=0, err_msg=k)
    for cm, c in zip(model.channel_mix, shifts):
        g, c_now = bn_affine(cm.net[4])
        np.testing.assert_allclose(np.log2(np.abs(g)), np.rint(np.log2(np.abs(g))), atol=1e-12)
        np.testing.assert_allclose(c_now, c, rtol=1e-12, atol=1e-12)


def test_power_of_two_gains_keep_sign_and_nearest_power():
    model = tiny_model(spe=False)
    bn = model.channel_mix[0].net[4]
    bn.params["weight"][:3] = [-0.3, 0.7, 3.0]
    bn.buffers["running_var"][:3] = 1.0 - bn.eps
    assert pow2_token_gains(model) == len(model.channel_mix)
    np.testing.assert_allclose(bn_affine(bn)[0][:3], [-0.25, 0.5, 4.0], rtol=1e-12)


def test_snapped_integer_model_matches_its_float_twin():
    """With the weights on the grid and wide membranes, the only rounding left is that of
    biases, thresholds and the leak at unit ~2^28: the integer and the float predictions
    and firing rates agree; an unsnapped 8-bit conversion does not reach that."""
    model = tiny_model(spe=True)
    calib, x = images(16, seed=5), images(128, seed=21)
    wide = dict(mem_bits=32, bias_bits=32, acc_bits=40, T=T)

    def agreement(m):
        fpred = m.forward_repeated(normalise(x, CIFAR_MEAN, CIFAR_STD, np.float64), T) \
            .mean(axis=0).argmax(axis=1)
        rates = m.firing_rates()
        res = run(convert(m, calib, **wide), x, T, record=True)
        rate_int = res["trace"]["b1.lif_c"]["spikes"].reshape(T, -1).mean(axis=1)   # per step
        gap = np.abs(rate_int - np.asarray(rates["channel_mix_lif.1"])).max()
        return (res["pred"] == fpred).mean(), gap

    raw_agree, _ = agreement(copy.deepcopy(model))
    snapped_agree, rate_gap = agreement(snap_to_grid(model))
    print(f"agreement unsnapped {raw_agree:.3f}, snapped {snapped_agree:.3f}")
    assert snapped_agree >= 0.99
    assert rate_gap < 1e-3
    assert snapped_agree > raw_agree


def test_bad_inputs_are_explained():
    with pytest.raises(TypeError, match="SMLPNet"):
        snap_to_grid(object())
    with pytest.raises(ValueError, match="bits"):
        snap_to_grid(tiny_model(), bits=1)
    # units so large that the left shifts leave int64: refused at conversion
    with pytest.raises(ValueError, match="left shift"):
        convert(tiny_model(), images(4), mem_bits=48, bias_bits=48, acc_bits=48, T=T)


def test_cli_snap_and_eval(tmp_path, capsys):
    ckpt_mod = pytest.importorskip("npsnn.train.checkpoint")
    from npsnn.__main__ import main
    cfg = tiny_config(spe=True, image_size=32, patch_size=8)
    model = tiny_model(spe=True, dtype=np.float32, image_size=32, patch_size=8)
    ckpt_mod.save_checkpoint(tmp_path / "ckpt.npz", model=model.state_dict(), config=cfg,
                             args={"note": "kept"})
    data = tmp_path / "data"
    write_dataset(data, "cifar10", "binary", n_train=20, n_test=20)
    assert main(["golden", "snap", "--checkpoint", str(tmp_path / "ckpt.npz"),
                 "--out", str(tmp_path / "snapped.npz")]) == 0
    assert main(["golden", "snap", "--checkpoint", str(tmp_path / "ckpt.npz"), "--bits", "1",
                 "--out", str(tmp_path / "bad.npz")]) == 2
    assert "bits to be an integer in [2, 24]" in capsys.readouterr().err
    assert not (tmp_path / "bad.npz").exists()
    snapped = ckpt_mod.load_checkpoint(tmp_path / "snapped.npz")
    assert snapped["golden_snap"]["bits"] == 8 and snapped["args"] == {"note": "kept"}
    assert "optimizer" not in snapped
    loaded, _ = ckpt_mod.load_model(tmp_path / "snapped.npz", dtype=np.float64)
    calib = images(8, size=32, seed=3)
    assert _weight_rounding_error(loaded, convert(loaded, calib, T=T)) < 1e-6   # float32 file
    capsys.readouterr()
    assert main(["golden", "eval", "--checkpoint", str(tmp_path / "snapped.npz"), "--data",
                 str(data), "--T", "2", "--calib", "8", "--images", "0:4", "--bits", "6"]) == 0
    assert "snapped to 8-bit weights; with --bits 6" in capsys.readouterr().err
    assert main(["golden", "eval", "--checkpoint", str(tmp_path / "ckpt.npz"), "--data",
                 str(data), "--T", "3", "--calib", "16", "--snap"]) == 0
    out = capsys.readouterr().out
    assert "checkpoint as given" in out and "snapped to the 8-bit grid" in out
    assert re.search(r"agreement with the snapped float model: [\d.]+%", out)
    # a plain state dict needs its config, and is written back as a plain state dict
    from npsnn.io import save_npz
    save_npz(tmp_path / "plain.npz", model.state_dict())
    assert main(["golden", "snap", "--checkpoint", str(tmp_path / "plain.npz"),
                 "--out", str(tmp_path / "p2.npz")]) == 2
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    assert main(["golden", "snap", "--checkpoint", str(tmp_path / "plain.npz"), "--config",
                 str(tmp_path / "cfg.json"), "--out", str(tmp_path / "p2.npz")]) == 0
    assert set(np.load(tmp_path / "p2.npz").files) == set(model.state_dict())


def test_snapped_fc2_is_shared_weights_with_token_shifts():
    """Power-of-two token gains: fc2 keeps one shared 8-bit matrix and a per-(token,
    channel) shift instead of an (N, C, hidden) table; fast path == event-driven path."""
    from npsnn.golden.reference import run_reference
    model = tiny_model(spe=True)
    table = convert(model, images(16, seed=5), T=T)
    shared = convert(snap_to_grid(model), images(16, seed=5), T=T)
    op = next(o for o in shared.ops if o["name"] == "b0.fc2")
    assert op["kind"] == "dense_shift_token"
    w, e = shared.params["b0.fc2.weight"], shared.params["b0.fc2.shift"]
    N = op["out_shape"][0] * op["out_shape"][1]
    assert w.shape == model.channel_mix[0].net[3].params["weight"].shape and e.shape == (N, w.shape[0])
    assert shared.memory()["total_bytes"] < table.memory()["total_bytes"]
    assert shared.memory()["per_token_table_bytes"] == 0
    x = images(2, seed=9)
    fast, ref = run(shared, x, 2, record=True), run_reference(shared, x, 2)
    for name, fields in fast["trace"].items():
        for field, v in fields.items():
            assert np.array_equal(v, ref["trace"][name][field]), (name, field)
    counts = {r["name"]: r for r in count_ops(shared, fast["trace"], 2)["rows"]}
    for name, adds in ref["synaptic_adds"].items():
        np.testing.assert_allclose(counts[name]["syn_ac"] * len(x), adds, err_msg=name)
    assert "no per-token weight tables" in format_report(count_ops(shared, fast["trace"], 2),
                                                         shared.memory())
