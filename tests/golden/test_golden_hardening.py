"""The golden model's commands with bad input and bad luck: an export is a whole folder or
none (no stale hex files, a full disk or a kill -9 leaves the previous export), the
saturate / wrap policies count what they changed, verify refuses malformed dumps and never
rounds a value it reports, and every bad option is one line with exit code 2."""
import json
import resource
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from cifar_files import write_dataset
from golden_models import tiny_config, tiny_model
from limited import env
from npsnn.__main__ import main
from npsnn.golden.export import BadDump, from_hex, to_hex, verify
from npsnn.train.checkpoint import save_checkpoint
from train_runs import kill9, spawn, wait_paused


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("golden_hard")
    model = tiny_model(spe=True, dtype=np.float32, image_size=32, patch_size=8)
    save_checkpoint(root / "ckpt.npz", model=model.state_dict(), config=model.config)
    write_dataset(root / "data", "cifar10", "binary", n_train=20, n_test=20)
    return root


def common(root, data=True):
    return ["--checkpoint", str(root / "ckpt.npz"),
            *(["--data", str(root / "data")] if data else []), "--T", "2", "--calib", "8"]


def export(root, out, *extra):
    return main(["golden", "export", *common(root), "--images", "0:2", "--out", str(out),
                 *map(str, extra)])


def one_line_error(capsys, code, expected_code=2, match=""):
    err = capsys.readouterr().err
    assert code == expected_code, err
    assert err.count("\n") == 1 and ": error: " in err and "Traceback" not in err, err
    assert match in err, err


# -- the export folder ------------------------------------------------------------------------
def test_export_replaces_a_previous_export_whole(setup, tmp_path, capsys):
    out = tmp_path / "vec"
    assert export(setup, out) == 0
    assert (out / "params_hex").is_dir() and (out / "vectors_hex").is_dir()
    assert export(setup, out, "--no-hex", "--images", "0:1") == 0      # replaces it
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "params.npz", "vectors"]
    assert sorted(p.name for p in (out / "vectors").iterdir()) == ["img0000.npz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vec"]        # no temporary left
    capsys.readouterr()


@pytest.mark.parametrize("what", ["a file", "a folder of other files"])
def test_export_refuses_to_replace_what_is_not_an_export(setup, tmp_path, capsys, what):
    out = tmp_path / "out"
    if what == "a file":
        out.write_text("mine")
    else:
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    one_line_error(capsys, export(setup, out), match="is not a golden export")
    assert (out.read_text() if what == "a file" else (out / "notes.txt").read_text()) == "mine"


def _fsize_limit(nbytes):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    return apply


def test_a_full_disk_leaves_the_previous_export_as_it_was(setup, tmp_path, capsys):
    out = tmp_path / "vec"
    assert export(setup, out) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    argv = [sys.executable, "-m", "npsnn", "golden", "export", *common(setup), "--images",
            "0:2", "--out", str(out), "--T", "3"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env(),
                          preexec_fn=_fsize_limit(32 << 10))      # files over 32 KiB fail
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "File too large" in done.stderr, done.stderr
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vec"]


def test_kill_9_inside_an_export_leaves_one_whole_export(setup, tmp_path):
    """Paused and killed at every crash point of a re-export (its files and its folder
    swap): the folder is then the old export or the new one, whole, never a mix."""
    out, crash = tmp_path / "vec", tmp_path / "crash"
    argv = ["python", "-m", "npsnn", "golden", "export", *common(setup), "--images", "0:1",
            "--out", str(out), "--no-hex"]
    assert subprocess.run([sys.executable] + argv[1:], env=env(), timeout=300).returncode == 0
    old = json.loads((out / "manifest.json").read_text())
    new_argv = argv + ["--T", "3"]                              # a different export
    k = 1
    while True:
        shutil.rmtree(crash, ignore_errors=True)
        proc = spawn(new_argv, crash, pause_at=k)
        if wait_paused(proc, crash) is None:
            assert proc.wait(timeout=300) == 0
            break
        kill9(proc)
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["vectors"]["T"] in (2, 3)
        assert manifest == old or manifest["vectors"]["T"] == 3
        files = sorted(p.name for p in (out / "vectors").iterdir())
        assert files == ["img0000.npz"]
        k += 1
    assert k > 5                                               # it did pass crash points
    assert json.loads((out / "manifest.json").read_text())["vectors"]["T"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crash", "vec"]   # stale ones gone


# -- overflow policies --------------------------------------------------------------------------
@pytest.mark.parametrize("policy,verb", [("saturate", "clamped"), ("wrap", "wrapped")])
def test_saturate_and_wrap_are_counted_per_layer(setup, tmp_path, capsys, policy, verb):
    out = tmp_path / "vec"
    assert export(setup, out, "--policy", policy, "--acc-bits", "12", "--no-hex") == 0
    stdout = capsys.readouterr().out
    overflow = json.loads((out / "manifest.json").read_text())["overflow"]
    assert overflow["policy"] == policy and overflow["total"] > 0
    assert overflow["total"] == sum(n for f in overflow["layers"].values() for n in f.values())
    assert f"overflow policy '{policy}': {overflow['total']} values {verb}" in stdout
    layer, fields = next(iter(overflow["layers"].items()))
    assert f"  {layer}: " in stdout
    assert export(setup, out, "--policy", policy, "--no-hex") == 0            # nothing to do
    assert json.loads((out / "manifest.json").read_text())["overflow"] == dict(
        policy=policy, total=0, layers={})
    assert "(none left its width)" in capsys.readouterr().out


# -- verify ---------------------------------------------------------------------------------------
def test_hex_words_wider_than_their_field_or_not_hex_are_refused():
    assert from_hex(to_hex(np.array([-1, 5]), 24), 24, True, (2,)).tolist() == [-1, 5]
    assert to_hex(np.array([-1, 5]), 24) == "ffffff\n000005\n"
    with pytest.raises(ValueError, match=r"line 2: the word '100c3e4' has 7 hex digits, more "
                                         r"than the 6 of a 24-bit field"):
        from_hex("// c\n100c3e4\n", 24, True, (1,))
    with pytest.raises(ValueError, match="line 1: the word 'f' does not fit a 3-bit field"):
        from_hex("f\n", 3, False, (1,))
    with pytest.raises(ValueError, match="line 1: 'zz' is not a hex word"):
        from_hex("zz\n", 8, True, (1,))
    big = np.arange(3_000_000) % 256 - 128
    assert from_hex(to_hex(big, 8), 8, True, big.shape).tolist() == big.tolist()


@pytest.fixture(scope="module")
def exported(setup, tmp_path_factory):
    out = tmp_path_factory.mktemp("exported") / "vec"
    assert export(setup, out) == 0
    return out


def _their_copy(exported, tmp_path):
    theirs = tmp_path / "theirs"
    shutil.copytree(exported, theirs)
    return theirs


def test_verify_refuses_a_wide_hex_word_with_exit_2(exported, tmp_path, capsys):
    theirs = _their_copy(exported, tmp_path)
    shutil.rmtree(theirs / "vectors")                        # compare the hex files
    f = theirs / "vectors_hex" / "img0000" / "b0.lif_c.v.hex"
    lines = f.read_text().splitlines()
    lines[1] = "1" + lines[1]                                # 7 digits in a 24-bit field
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(BadDump, match="line 2: the word .* has 7 hex digits"):
        verify(exported, theirs)
    code = main(["golden", "verify", "--ours", str(exported), "--theirs", str(theirs)])
    one_line_error(capsys, code, match="has 7 hex digits")


@pytest.mark.parametrize("value,shown", [(0.25, "which is not an integer"),
                                         (np.nan, "got nan, which is not an integer")])
def test_verify_says_a_value_is_not_an_integer(exported, tmp_path, value, shown):
    theirs = _their_copy(exported, tmp_path)
    path = theirs / "vectors" / "img0000.npz"
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    v = arrays["b0.lif_c/v"].astype(np.float64)
    v.flat[3] += value
    arrays["b0.lif_c/v"] = v
    np.savez(path, **arrays)
    ok, msg = verify(exported, theirs)
    assert not ok and shown in msg
    if value == 0.25:
        expected = int(np.load(exported / "vectors" / "img0000.npz")["b0.lif_c/v"].flat[3])
        assert f"expected {expected}, got {expected + 0.25}, which is not an integer" in msg


def test_verify_reads_their_npz_within_bounds(exported, tmp_path, capsys):
    import hostile_files as H
    theirs = _their_copy(exported, tmp_path)
    H.npz_of(theirs / "vectors" / "img0000.npz",
             {"b0.lif_c/v.npy": H.npy_bytes((1 << 40,), data=bytes(8))})
    code = main(["golden", "verify", "--ours", str(exported), "--theirs", str(theirs)])
    one_line_error(capsys, code, match="8.0 TiB")


# -- bad options -------------------------------------------------------------------------------
@pytest.mark.parametrize("argv,match", [
    (["export", "--calib", "-5", "--images", "0:2", "--out", "{tmp}/o"], "--calib must be a "
                                                                         "positive integer"),
    (["export", "--bits", "44", "--images", "0:2", "--out", "{tmp}/o"], "beyond 2^53"),
    (["export", "--std", "inf", "inf", "inf", "--images", "0:2", "--out", "{tmp}/o"],
     "std to be finite"),
    (["export", "--mean", "nan", "0", "0", "--images", "0:2", "--out", "{tmp}/o"],
     "mean to be finite"),
    (["eval", "--batch", "0"], "--batch must be a positive integer"),
    (["eval", "--T", "0"], "--T must be a positive integer"),
    (["report", "--images", "0:100000000", "--no-data"], "without --data, 'golden report' "
                                                         "draws random images"),
    (["report", "--images", "0:100000000"], "outside the 20 images available"),
    (["report", "--images", "9:3"], "outside"),
])
def test_bad_options_are_one_line_exit_2(setup, tmp_path, capsys, argv, match):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    data = "--no-data" not in argv
    argv = [a for a in argv if a != "--no-data"]
    code = main(["golden", argv[0], *common(setup, data), *argv[1:]])
    one_line_error(capsys, code, match=match)
    assert not (tmp_path / "o").exists()


def test_snap_with_a_zero_std_and_an_snn_mlp_checkpoint(setup, tmp_path, capsys):
    code = main(["golden", "snap", "--checkpoint", str(setup / "ckpt.npz"), "--out",
                 str(tmp_path / "s.npz"), "--std", "0", "0", "0"])
    one_line_error(capsys, code, match="std > 0")
    assert not (tmp_path / "s.npz").exists()
    import npsnn
    snn = npsnn.build(dict(model="snn-mlp", embed_dim=8, depths=[1, 1], num_classes=10,
                           image_size=32, patch_size=4, group=2))
    save_checkpoint(tmp_path / "snn.npz", model=snn.state_dict(), config=snn.config)
    code = main(["golden", "report", "--checkpoint", str(tmp_path / "snn.npz")])
    one_line_error(capsys, code, match="covers sMLPNet only")


def test_report_counts_the_same_in_batches_as_at_once(setup):
    """Batched counting (memory bounded by the batch) gives the counts of one big run."""
    from npsnn.golden import convert
    from npsnn.golden.counts import count_ops, count_ops_batched
    from npsnn.golden.run import run
    model = tiny_model(spe=True, image_size=16)
    images = np.random.default_rng(0).integers(0, 256, (7, 3, 16, 16), np.uint8)
    net = convert(model, images, T=2)
    whole = count_ops(net, run(net, images, 2, record=True)["trace"], 2)
    parts = count_ops_batched(net, [images[:3], images[3:5], images[5:]], 2)
    assert parts["images"] == 7
    for a, b in zip(whole["rows"], parts["rows"]):
        for k in ("syn_ac", "other_ac", "shifts", "compares", "mac"):
            np.testing.assert_allclose(a[k], b[k], rtol=1e-12)
        if a["rate"] is not None:
            np.testing.assert_allclose(a["rate"], b["rate"], rtol=1e-12)
    assert parts["totals"] == pytest.approx(whole["totals"], rel=1e-12)
    assert tiny_config()["dim"] == 6


# -- scale: chunked tables and streamed values change no number --------------------------
def test_tables_quantised_in_chunks_equal_the_whole_table(monkeypatch):
    """convert quantises a per-token table a few tokens at a time (the whole float64 table
    of mlp-spe-t is 12 GB); chunks of one token give the integers of the whole table."""
    import importlib
    convert_module = importlib.import_module("npsnn.golden.convert")   # not the function
    from npsnn.golden.grid import quantise_rows
    from npsnn.golden.lower import TokenTerm, lower
    model = tiny_model(spe=True, image_size=16)
    images = np.random.default_rng(0).integers(0, 256, (6, 3, 16, 16), np.uint8)
    monkeypatch.setattr(convert_module, "TABLE_CHUNK", 1)
    net = convert_module.convert(model, images, T=2)
    fc2 = [op for op in lower(model) if isinstance(op, TokenTerm)]
    assert fc2 and all(net.params[f"{op['name']}.weight"].dtype == np.int8 for op in fc2)
    for op in fc2:
        u = net.meta["units"][op["stage"]]
        N, O, K = op["_w"].shape                           # the whole table, when asked
        q, e = quantise_rows(op["_w"].reshape(N * O, K), u, 127, op["name"])
        assert np.array_equal(net.params[f"{op['name']}.weight"], q.reshape(N, O, K))
        assert np.array_equal(net.params[f"{op['name']}.shift"], e.reshape(N, O))


def test_streamed_values_equal_the_recorded_trace():
    """run(..., on_op=...) hands out every op's fields as record=True keeps them."""
    from npsnn.golden import convert
    from npsnn.golden.run import run
    model = tiny_model(spe=False, image_size=16)
    images = np.random.default_rng(1).integers(0, 256, (3, 3, 16, 16), np.uint8)
    net = convert(model, images, T=3)
    whole = run(net, images, 3, record=True)
    streamed = {}
    out = run(net, images, 3, on_op=lambda op, fields: streamed.setdefault(op["name"], fields))
    assert "trace" not in out and np.array_equal(out["logits"], whole["logits"])
    assert streamed.keys() == whole["trace"].keys()
    for name, fields in whole["trace"].items():
        for field, a in fields.items():
            assert np.array_equal(streamed[name][field], a), (name, field)
