"""Reading PyTorch checkpoints without torch (npsnn.io.pth, npsnn.io.pth_pickle) and the
convert-pth command (npsnn.io.cli): exact arrays, refusal of code, clear errors.

The .pth files in tests/data/pth/ were written once by PyTorch with the dev-only
tests/generators/make_pth_files.py; torch is not imported here. Files that PyTorch cannot be asked to
write (bad strides, hostile pickles, damaged archives) are built byte by byte below.
"""
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import tarfile
import zipfile

import numpy as np
import pytest

from array_checks import assert_same_arrays
from hostile_files import p_dict, p_str, p_tensor, zip_pth
from conftest import ROOT
import npsnn
from npsnn.io import load_state
from npsnn.io.cli import main
from npsnn.models.smlpnet import infer_config
from npsnn.io.pth import (PickledNamespace, PthFormatError, load_checkpoint,
                          load_pth)
from npsnn.io.safe_pickle import UnsafePickleError

DATA = ROOT / "tests" / "data" / "pth"
MARKER = "npsnn-pth-pwned"   # the file malicious.pth would create with os.system


@pytest.fixture(scope="module")
def expected():
    with np.load(DATA / "expected.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def config():
    return json.loads((DATA / "config.json").read_text())


# -- files written by PyTorch -------------------------------------------------------------------
@pytest.mark.parametrize("name", ["bare_state_dict.pth", "bare_state_dict_legacy.pth",
                                  "train_checkpoint.pth"])
def test_state_dict_files_equal_expected_arrays(name, expected):
    assert_same_arrays(load_pth(DATA / name), expected)


def test_loads_into_model_strictly_and_reproduces_torch_logits(expected, config):
    model = npsnn.build(config, dtype=np.float32, seed=123)
    model.load_state_dict(load_pth(DATA / "train_checkpoint.pth"), strict=True)
    assert_same_arrays(model.state_dict(), expected)
    with np.load(DATA / "expected_logits.npz") as z:
        images, T, logits = z["images"], int(z["T"]), z["logits"]
    model.eval()
    out = model.forward_repeated(images, T)
    np.testing.assert_allclose(out, logits, rtol=1e-5, atol=1e-6)


def test_train_checkpoint_keeps_training_state_as_plain_data(expected):
    ckpt = load_checkpoint(DATA / "train_checkpoint.pth")
    assert set(ckpt) == {"model", "optimizer", "lr_scheduler", "epoch", "args",
                         "max_test_acc1", "scaler"}
    assert ckpt["epoch"] == 1 and ckpt["max_test_acc1"] == 12.5
    args = ckpt["args"]
    assert isinstance(args, PickledNamespace)
    assert args.lr == 0.1 and args.T == 4 and vars(args)["img_size"] == (16, 16)
    assert "Namespace(model='mixers_sparse_patchcell_origin'" in repr(args)
    opt = ckpt["optimizer"]
    group = opt["param_groups"][0]
    assert group["momentum"] == 0.9 and group["initial_lr"] == 0.1
    assert group["lr"] == ckpt["lr_scheduler"]["_last_lr"][0] < 0.1   # one cosine step
    # one SGD step was taken: every parameter has a momentum buffer of its own shape
    params = [k for k in expected if not k.endswith(("running_mean", "running_var",
                                                     "num_batches_tracked"))]
    assert len(group["params"]) == len(params) == len(opt["state"])
    shapes = sorted(v["momentum_buffer"].shape for v in opt["state"].values())
    assert shapes == sorted(expected[k].shape for k in params)
    assert ckpt["lr_scheduler"]["T_max"] == 300 and ckpt["lr_scheduler"]["last_epoch"] == 1


@pytest.mark.parametrize("name", ["dtypes_strides.pth", "dtypes_strides_legacy.pth",
                                  "dtypes_strides_bigendian.pth"])
def test_dtypes_views_and_byte_order(name):
    with np.load(DATA / "expected_dtypes.npz", allow_pickle=False) as z:
        want = {k: z[k] for k in z.files}
    if name.endswith("_legacy.pth"):
        del want["uint16"]   # torch cannot read untyped storages from that format
    got = load_checkpoint(DATA / name)
    assert_same_arrays(got, want)
    assert got["bfloat16"].dtype == np.float32          # widened exactly
    assert got["float16"].dtype == np.float16 and got["float64"].dtype == np.float64
    assert got["transposed"].shape == (7, 5) and got["empty"].shape == (0, 3)
    np.testing.assert_array_equal(got["transposed"], got["contiguous"].T)
    np.testing.assert_array_equal(got["offset_view"], got["contiguous"][1:4, 2:6])
    np.testing.assert_array_equal(got["stepped"], got["contiguous"][::2, 1::3])
    got["shared_a"][0] = -1.0                           # independent copies, not views
    assert got["shared_b"][0] == 1.0


# -- refusing code --------------------------------------------------------------------------
def test_malicious_file_is_refused_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)          # where `touch npsnn-pth-pwned` would land
    with pytest.raises(UnsafePickleError, match=r"'(posix|os)\.system'") as err:
        load_pth(DATA / "malicious.pth")
    assert isinstance(err.value, ValueError) and "nothing was executed" in str(err.value)
    assert not (tmp_path / MARKER).exists()
    assert main([str(DATA / "malicious.pth"), str(tmp_path / "out.npz")]) == 2
    assert not (tmp_path / MARKER).exists() and not (tmp_path / "out.npz").exists()


def test_whole_pickled_model_is_refused_with_advice():
    with pytest.raises(UnsafePickleError, match=r"torch_smlpnet\.SMLPNet.*state_dict\(\)"):
        load_pth(DATA / "whole_model.pth")


def test_torchscript_archive_is_refused():
    with pytest.raises(PthFormatError, match="TorchScript"):
        load_pth(DATA / "torchscript.pt")


# -- hand-made files: a torch.save zip written byte by byte (tests/hostile_files.py) ---------
def test_handmade_strided_tensor_and_any_folder_name(tmp_path):
    storage = np.arange(6, dtype=np.float32)
    pkl = p_dict({"w": p_tensor(1, (2, 2), (1, 2), 6),
                  "s": p_tensor(5, (), (), 6)})
    got = load_pth(zip_pth(tmp_path / "x.pth", pkl, {"0": storage.tobytes()},
                           folder="whatever-name"))
    np.testing.assert_array_equal(got["w"], [[1.0, 3.0], [2.0, 4.0]])
    assert got["s"].shape == () and got["s"] == 5.0


def test_ddp_module_prefix_is_removed_and_gpu_location_ignored(tmp_path):
    pkl = p_dict({"module.a": p_tensor(0, (2,), (1,), 2, where="cuda:0"),
                        "module.b": p_tensor(0, (1,), (1,), 2, where="cuda:0")})
    got = load_pth(zip_pth(tmp_path / "d.pth", pkl, {"0": np.ones(2, np.float32).tobytes()}))
    assert sorted(got) == ["a", "b"]


@pytest.mark.parametrize("offset,size,stride,numel,nbytes,match", [
    (0, (3, 3), (3, 3), 6, 24, "reaches element 12 of storage '0', which has only 6"),
    (0, (2,), (1,), 6, 20, "has 20 bytes, expected 24"),
    (-1, (2,), (1,), 6, 24, "offset must be a non-negative integer"),
])
def test_handmade_inconsistent_tensor_is_a_clear_error(tmp_path, offset, size, stride, numel,
                                                       nbytes, match):
    pkl = p_dict({"w": p_tensor(offset, size, stride, numel)})
    path = zip_pth(tmp_path / "bad.pth", pkl, {"0": bytes(nbytes)})
    with pytest.raises(PthFormatError, match=match):
        load_pth(path)


class _Eval:
    def __reduce__(self):
        return (eval, (f"__import__('os').system('touch {MARKER}')",))


@pytest.mark.parametrize("protocol", [2, 4])
def test_builtins_eval_is_refused(tmp_path, monkeypatch, protocol):
    monkeypatch.chdir(tmp_path)
    pkl = pickle.dumps({"model": _Eval()}, protocol=protocol)   # GLOBAL / STACK_GLOBAL
    path = zip_pth(tmp_path / "e.pth", pkl, {})
    with pytest.raises(UnsafePickleError, match=r"'(__builtin__|builtins)\.eval'"):
        load_pth(path)
    assert not (tmp_path / MARKER).exists()


@pytest.mark.parametrize("target", ["torch\nFloatStorage", "torch\nfloat32",
                                    "torch._utils\n_rebuild_tensor_v2", "argparse\nNamespace",
                                    "collections\nOrderedDict"])
@pytest.mark.parametrize("attr", ["dtype", "__defaults__", "__setstate__"])
def test_pickle_cannot_alter_the_allowed_stand_ins(tmp_path, expected, target, attr):
    # GLOBAL <target>; BUILD with slot state {attr: None} would be setattr(target, attr, None)
    pkl = (b"\x80\x02c" + target.encode() + b"\n" + b"N}" + p_str(attr) + b"Ns\x86b.")
    with pytest.raises(PthFormatError, match=r"tries to set attribute|corrupt"):
        load_checkpoint(zip_pth(tmp_path / "b.pth", pkl, {}))
    assert_same_arrays(load_pth(DATA / "bare_state_dict.pth"), expected)   # unharmed


def test_file_that_is_not_a_state_dict(tmp_path):
    path = zip_pth(tmp_path / "n.pth", pickle.dumps({"epoch": 3, "note": "x"}, 2), {})
    with pytest.raises(PthFormatError, match=r"not a state dict: entries 'epoch': int"):
        load_pth(path)


# -- damaged and foreign files ----------------------------------------------------------------
@pytest.mark.parametrize("name", ["bare_state_dict.pth", "bare_state_dict_legacy.pth"])
def test_truncated_file_is_a_clear_error(tmp_path, name):
    data = (DATA / name).read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        load_pth(path)


def test_corrupted_storage_bytes_fail_the_crc(tmp_path):
    src = DATA / "bare_state_dict.pth"
    with zipfile.ZipFile(src) as z:
        info = z.getinfo(next(n for n in z.namelist() if n.endswith("/data/0")))
    data = bytearray(src.read_bytes())
    # the entry's data starts after its 30-byte local header, name and extra field
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:
                                                    info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    data[start] ^= 0xFF
    path = tmp_path / "flip.pth"
    path.write_bytes(bytes(data))
    with pytest.raises(PthFormatError, match=r"data/0' is unreadable .*truncated or corrupt"):
        load_pth(path)


def test_foreign_files_are_named(tmp_path):
    cases = {"empty.pth": b"", "text.pth": b"hello world\n"}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(PthFormatError, match="not a torch.save file"):
            load_pth(tmp_path / name)
    np.savez(tmp_path / "w.npz", a=np.zeros(2))
    with pytest.raises(PthFormatError, match=r"NumPy \.npz archive.*load_state"):
        load_pth(tmp_path / "w.npz")
    with tarfile.open(tmp_path / "old.pth", "w") as t:
        info = tarfile.TarInfo("sys_info")
        info.size = 4
        t.addfile(info, io.BytesIO(b"abcd"))
    with pytest.raises(PthFormatError, match="tar-based .* PyTorch < 0.4"):
        load_pth(tmp_path / "old.pth")
    with pytest.raises(FileNotFoundError):
        load_pth(tmp_path / "missing.pth")


# -- the checkpoint and the model ------------------------------------------------------------
def test_load_state_dict_names_missing_unexpected_and_misshaped_keys(expected, config):
    state = dict(expected)
    del state["batch_norm.weight"]
    state["head.extra"] = np.zeros(3, np.float32)
    state["mlp_head.1.bias"] = np.zeros(11, np.float32)
    with pytest.raises(ValueError) as err:
        npsnn.build(config).load_state_dict(state)
    msg = str(err.value)
    assert "missing keys: batch_norm.weight" in msg
    assert "unexpected keys: head.extra" in msg
    assert "mlp_head.1.bias: expected (10,), got (11,)" in msg


def test_infer_config_reads_the_architecture_from_shapes(config):
    guess = infer_config(load_pth(DATA / "bare_state_dict.pth"))
    assert npsnn.resolve_config(guess) == npsnn.resolve_config(config)
    assert infer_config({"a": np.zeros(2)}) is None


# -- the convert-pth command --------------------------------------------------------------------
def test_convert_cli_round_trip_and_model_check(tmp_path, expected, capsys):
    out = tmp_path / "w.npz"
    assert main([str(DATA / "train_checkpoint.pth"), str(out),
                 "--config", str(DATA / "config.json")]) == 0
    assert "epoch 1" in capsys.readouterr().out
    assert main([str(DATA / "bare_state_dict.pth"), str(out)]) == 0
    assert '"dim": 6' in capsys.readouterr().out          # the guessed config is shown
    assert_same_arrays(load_state(out), expected)
    assert main([str(DATA / "bare_state_dict.pth"), str(out), "-q",
                 "--config", (DATA / "config.json").read_text()]) == 0
    assert capsys.readouterr().out == ""


def test_convert_cli_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    out = tmp_path / "w.npz"
    cut = tmp_path / "cut.pth"
    cut.write_bytes((DATA / "bare_state_dict.pth").read_bytes()[:1000])
    cases = [
        ([str(cut), str(out)], "truncated or corrupt"),
        ([str(tmp_path / "nope.pth"), str(out)], "no such file"),
        ([str(DATA / "bare_state_dict.pth"), str(out), "--preset", "cifar10-p4-d48"],
         "does not fit cifar10-p4-d48: 98 missing: channel_mix.2.1.net.0.bias"),
        ([str(DATA / "bare_state_dict.pth"), str(out), "--preset", "cifar10-p4-d48"],
         'mis-shaped (file vs model): batch_norm.bias (12,) vs (192,)'),
        ([str(DATA / "bare_state_dict.pth"), str(out), "--preset", "cifar10-p4-d48"],
         'looks like the config {"in_channels": 3, "dim": 6,'),
        ([str(DATA / "bare_state_dict.pth"), str(out), "--preset", "nope"], "unknown preset"),
        ([str(DATA / "bare_state_dict.pth"), str(out), "--config", "{not json"],
         "neither a JSON object"),
    ]
    for argv, match in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("npsnn convert-pth: error: ") and match in err, err
        assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_convert_cli_is_wired_into_python_m_npsnn(tmp_path):
    run = subprocess.run([sys.executable, "-m", "npsnn", "convert-pth", "--help"],
                         capture_output=True, text=True, cwd=ROOT, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    assert "--preset" in run.stdout and "--config" in run.stdout
    assert "torch is not needed" in run.stdout
