"""Writing PyTorch checkpoints without torch (npsnn.io.pth_write) and export-pth.

torch is not imported here: every file is read back with npsnn's own torch.save reader
(npsnn.io.pth), and its pickle is scanned for the globals it names (``weights_only=True``
accepts only tensors and plain data). The load into PyTorch and the official model, and the
logits comparison, are the dev-only tests/generators/check_pth_export.py.
"""
import collections
import pickletools
import zipfile

import numpy as np
import pytest

from array_checks import assert_same_arrays
from conftest import ROOT
import npsnn
from npsnn.io.cli import export_pth_main
from npsnn.io.pth import load_checkpoint, load_pth
from npsnn.io.pth_write import official_order, save_pth, torch_state_dict, train_checkpoint
from npsnn.train.checkpoint import save_checkpoint

TINY = dict(in_channels=3, dim=6, alpha=3, num_classes=10, patch_size=4, image_size=16,
            depths=[1, 1], spe=True)
#: the globals torch.load(weights_only=True) must meet in our files, and no others
ALLOWED = {"collections OrderedDict", "torch._utils _rebuild_tensor_v2", "torch FloatStorage",
           "torch DoubleStorage", "torch LongStorage"}


def globals_named(path) -> set:
    with zipfile.ZipFile(path) as zf:
        pkl = next(n for n in zf.namelist() if n.endswith("/data.pkl"))
        return {arg for op, arg, _ in pickletools.genops(zf.read(pkl)) if op.name == "GLOBAL"}


def trained_model(seed=3):
    """A tiny model whose weights and BN statistics are not the initial ones."""
    model = npsnn.build(TINY, dtype=np.float64, seed=seed)
    model.train()
    x = np.random.default_rng(seed).standard_normal((2, 3, 16, 16))
    model.forward_repeated(x, 2)
    return model


def trained_state(seed=3):
    return trained_model(seed).state_dict()


def test_round_trip_is_bit_exact_in_official_order_and_dtypes(tmp_path):
    model = trained_model()
    state = model.state_dict()
    save_pth(tmp_path / "m.pth", torch_state_dict(model))
    back = load_pth(tmp_path / "m.pth")
    assert list(back) == official_order(model)
    want = {k: (v.astype(np.float32) if v.dtype.kind == "f" else v.astype(np.int64))
            for k, v in state.items()}
    assert_same_arrays(back, want)
    assert back["batch_norm.num_batches_tracked"].shape == ()
    npsnn.build(TINY, dtype=np.float32).load_state_dict(back, strict=True)
    # float64 kept on request: the round trip is then exact for float64 weights too
    save_pth(tmp_path / "m64.pth", torch_state_dict(model, np.float64))
    assert_same_arrays(load_pth(tmp_path / "m64.pth"),
                       {k: v if v.dtype.kind == "f" else v.astype(np.int64)
                        for k, v in state.items()})
    assert globals_named(tmp_path / "m64.pth") <= ALLOWED


def test_official_order_puts_proj_w_before_proj_h_and_params_before_buffers():
    order = official_order(npsnn.build(TINY))
    block = [k for k in order if k.startswith("token_mix.0.")]
    assert block[:4] == ["token_mix.0.proj_w.1.weight", "token_mix.0.proj_w.1.bias",
                         "token_mix.0.proj_w.2.weight", "token_mix.0.proj_w.2.bias"]
    assert block.index("token_mix.0.proj_w.2.num_batches_tracked") < \
        block.index("token_mix.0.proj_h.1.weight") < block.index("token_mix.0.fuse.0.weight")
    assert order[0] == "to_patch_embedding.0.0.weight" and order[-1] == "mlp_head.1.bias"
    bn = [k for k in order if k.startswith("to_patch_embedding.0.1.")]
    assert [k.rsplit(".", 1)[1] for k in bn] == ["weight", "bias", "running_mean",
                                                 "running_var", "num_batches_tracked"]
    assert sorted(order) == sorted(npsnn.build(TINY).state_dict())


def test_archive_layout_is_torch_saves(tmp_path):
    path = save_pth(tmp_path / "weights.pth", torch_state_dict(trained_model()))
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        assert names[:4] == ["weights/data.pkl", "weights/.format_version",
                             "weights/.storage_alignment", "weights/byteorder"]
        assert names[-2:] == ["weights/version", "weights/.data/serialization_id"]
        assert zf.read("weights/byteorder") == b"little"
        assert zf.read("weights/version") == b"3\n"
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
        data = [i for i in infos if "/data/" in i.filename]
        assert [i.filename for i in data] == [f"weights/data/{k}" for k in range(len(data))]
        with open(path, "rb") as f:
            for info in data:                       # every storage starts 64-byte aligned
                f.seek(info.header_offset + 26)
                n, m = np.frombuffer(f.read(4), "<u2")
                assert (info.header_offset + 30 + n + m) % 64 == 0, info.filename
    assert globals_named(path) == {"collections OrderedDict", "torch._utils _rebuild_tensor_v2",
                                   "torch FloatStorage", "torch LongStorage"}


def test_a_torch_written_file_survives_a_read_write_read(tmp_path):
    first = load_pth(ROOT / "tests" / "data" / "pth" / "bare_state_dict.pth")
    save_pth(tmp_path / "again.pth", first)
    assert_same_arrays(load_pth(tmp_path / "again.pth"), first)


def test_plain_data_trees_and_edge_values_round_trip(tmp_path):
    tree = {"ints": [0, 255, 256, -1, 2 ** 31, -2 ** 40, 10 ** 30], "f": 1.5e-300,
            "flags": (True, False, None), "text": "µ-ünïcode", "nested": {"e": np.zeros((0, 3))},
            "scalar": np.array(2.5), "strided": np.arange(12.0).reshape(3, 4).T,
            "big_endian": np.arange(3, dtype=">i8")}
    save_pth(tmp_path / "t.pth", tree)
    back = load_checkpoint(tmp_path / "t.pth")
    assert back["ints"] == tree["ints"] and back["f"] == tree["f"] and back["text"] == tree["text"]
    assert back["flags"] == (True, False, None)
    assert back["nested"]["e"].shape == (0, 3) and back["scalar"].shape == ()
    np.testing.assert_array_equal(back["strided"], tree["strided"])
    np.testing.assert_array_equal(back["big_endian"], [0, 1, 2])
    assert type(back) is dict


def test_unstorable_objects_are_refused_and_leave_no_file(tmp_path):
    with pytest.raises(TypeError, match="cannot store a set"):
        save_pth(tmp_path / "x.pth", {"a": {1, 2}})
    with pytest.raises(TypeError, match="dtype complex128"):
        save_pth(tmp_path / "x.pth", {"a": np.zeros(2, complex)})
    assert list(tmp_path.iterdir()) == []


def test_train_layout_of_bare_weights_starts_a_new_official_run():
    model = trained_model()
    state = model.state_dict()
    ckpt = train_checkpoint(model)
    assert set(ckpt) == {"model", "optimizer", "lr_scheduler", "epoch", "args", "max_test_acc1"}
    assert isinstance(ckpt["model"], collections.OrderedDict)
    assert ckpt["epoch"] == -1 and ckpt["max_test_acc1"] == -1.0
    assert ckpt["optimizer"]["state"] == {}
    group = ckpt["optimizer"]["param_groups"][0]
    n_params = sum(1 for k in state if not k.endswith(("running_mean", "running_var",
                                                       "num_batches_tracked")))
    assert group["params"] == list(range(n_params)) and group["nesterov"] is False
    assert ckpt["lr_scheduler"]["last_epoch"] == 0
    assert ckpt["args"]["model"] == "mixer_sparse"


def test_train_layout_of_an_official_recipe_run_carries_its_optimizer_state(tmp_path):
    model = trained_model()
    state = model.state_dict()
    params = [k for k in official_order(model)
              if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    momentum = {f"state/momentum/{k}": np.full(state[k].shape, i, np.float32)
                for i, k in enumerate(params)}
    args = dict(optimizer="sgd", schedule="epoch-cosine", warmup_epochs=0, lr=0.1,
                momentum=0.9, nesterov=False, wd=0.0, epochs=10, T=4)
    ckpt = dict(config=TINY, args=args, model=state,
                optimizer={**momentum, "step_count": np.array(30)},
                progress=dict(epoch=3, step_in_epoch=0, best_acc=41.5))
    out = train_checkpoint(model, checkpoint=ckpt)
    assert out["epoch"] == 2 and out["max_test_acc1"] == 41.5
    assert out["lr_scheduler"]["last_epoch"] == 3
    np.testing.assert_allclose(out["optimizer"]["param_groups"][0]["lr"],
                               0.1 * (1 + np.cos(np.pi * 3 / 10)) / 2)
    for i, key in enumerate(params):        # indexed by the official parameter order
        np.testing.assert_array_equal(out["optimizer"]["state"][i]["momentum_buffer"],
                                      np.full(state[key].shape, i, np.float32))
    # mid-epoch: the official train.py resumes at epoch boundaries only -> a fresh start
    ckpt["progress"] = dict(epoch=3, step_in_epoch=5, best_acc=41.5)
    assert train_checkpoint(model, checkpoint=ckpt)["epoch"] == -1
    save_pth(tmp_path / "t.pth", out)
    assert globals_named(tmp_path / "t.pth") <= ALLOWED


# -- the command ------------------------------------------------------------------------------
def test_export_pth_command_from_a_training_checkpoint(tmp_path, capsys):
    model = trained_model()
    state = model.state_dict()
    save_checkpoint(tmp_path / "c.npz", model=state, config=npsnn.resolve_config(TINY),
                    args=dict(T=2, epochs=1))
    assert export_pth_main([str(tmp_path / "c.npz"), str(tmp_path / "c.pth")]) == 0
    assert "layout state_dict" in capsys.readouterr().out
    assert list(load_pth(tmp_path / "c.pth")) == official_order(model)
    assert export_pth_main([str(tmp_path / "c.npz"), str(tmp_path / "t.pth"),
                            "--layout", "train", "-q"]) == 0
    assert capsys.readouterr().out == ""
    assert load_checkpoint(tmp_path / "t.pth")["epoch"] == -1
    npsnn.io.save_state(tmp_path / "bare.npz", state)            # a bare state dict too
    assert export_pth_main([str(tmp_path / "bare.npz"), str(tmp_path / "b.pth"), "-q"]) == 0
    assert_same_arrays(load_pth(tmp_path / "b.pth"), load_pth(tmp_path / "c.pth"))


def test_export_pth_command_errors_are_one_line(tmp_path, capsys):
    assert export_pth_main([str(tmp_path / "missing.npz"), str(tmp_path / "o.pth")]) == 2
    assert "no such file" in capsys.readouterr().err
    np.savez(tmp_path / "foreign.npz", a=np.zeros(3))
    assert export_pth_main([str(tmp_path / "foreign.npz"), str(tmp_path / "o.pth")]) == 2
    err = capsys.readouterr().err
    assert "neither an npsnn checkpoint nor an sMLPNet state dict" in err
    assert len(err.strip().splitlines()) == 1
    state = trained_state()
    del state["mlp_head.1.bias"]
    npsnn.io.save_state(tmp_path / "cut.npz", state)
    assert export_pth_main([str(tmp_path / "cut.npz"), str(tmp_path / "o.pth")]) == 2
    assert "mlp_head.1.bias" in capsys.readouterr().err
    assert not (tmp_path / "o.pth").exists()
