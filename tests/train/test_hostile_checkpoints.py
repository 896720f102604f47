"""Checkpoints that are damaged or hostile: one CheckpointError (a ValueError) naming the
file and the problem, from the reader, `eval` and `slim` alike (npsnn/train/checkpoint.py)."""
import json

import numpy as np
import pytest

import npsnn
from npsnn.train.checkpoint import (CheckpointError, load_checkpoint, load_model,
                                    save_checkpoint, slim_main)
from npsnn.train.cli import eval_main

TINY = dict(dim=6, patch_size=8, image_size=32, depths=[1, 1], num_classes=10)


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    model = npsnn.build(TINY, seed=0)
    path = tmp_path_factory.mktemp("ck") / "good.npz"
    save_checkpoint(path, model=model.state_dict(), config=model.config)
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _hostile(tmp_path, good, **changes):
    arrays = dict(good)
    for k, v in changes.items():
        if v is None:
            del arrays[k]
        else:
            arrays[k] = v
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


def _weight(good):
    return next(k for k in sorted(good) if k.startswith("model/") and good[k].dtype.kind == "f")


@pytest.mark.parametrize("change,match", [
    (lambda g: {_weight(g): np.array(["x"] * g[_weight(g)].size)},
     r"model/.* \(<U1\) is not real numbers"),
    (lambda g: {_weight(g): g[_weight(g)].astype(np.complex64)},
     r"\(complex64\) is not real numbers"),
    (lambda g: {"config": np.array("[" * 100_000 + "]" * 100_000)},
     r"entry 'config' nests JSON more deeply"),
    (lambda g: {"config": np.array(json.dumps([1, 2]))}, r"'config' part is a list"),
    (lambda g: {"format_version": np.array("one")}, r"'format_version' entry is missing or "
                                                     r"not an integer"),
    (lambda g: {"history": np.array("{")}, r"entry 'history' is not valid JSON"),
])
def test_damaged_checkpoint_is_one_clear_error(tmp_path, good, change, match):
    path = _hostile(tmp_path, good, **change(good))
    with pytest.raises(CheckpointError, match=match) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("value,match", [(np.nan, "non-finite values"),
                                         (1e39, "NaN/inf after the cast to float32")])
def test_non_finite_weights_are_refused_by_load_model(tmp_path, good, value, match):
    key = _weight(good)
    path = _hostile(tmp_path, good, **{key: np.full(good[key].shape, value)})
    with pytest.raises(CheckpointError, match=match):
        load_model(path)


def test_slim_and_eval_refuse_a_string_array_with_exit_2(tmp_path, good, capsys):
    key = _weight(good)
    path = _hostile(tmp_path, good, **{key: np.array(["x"] * good[key].size)})
    assert slim_main([str(path), str(tmp_path / "slim.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("npsnn slim: error: ") and "not real numbers" in err
    assert err.count("\n") == 1
    assert not (tmp_path / "slim.npz").exists()
    assert eval_main(["--checkpoint", str(path), "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("npsnn eval: error: ") and "not real numbers" in err
    assert err.count("\n") == 1


def test_slim_refuses_weights_beyond_float16_instead_of_writing_inf(tmp_path, capsys):
    model = npsnn.build(TINY, seed=0)
    state = model.state_dict()
    state["batch_norm.weight"][0] = 1e5                      # fine in float32
    save_checkpoint(tmp_path / "big.npz", model=state, config=model.config)
    assert slim_main([str(tmp_path / "big.npz"), str(tmp_path / "s.npz")]) == 2
    err = capsys.readouterr().err
    assert "batch_norm.weight hold values beyond the range of float16" in err
    assert not (tmp_path / "s.npz").exists()
    assert slim_main([str(tmp_path / "big.npz"), str(tmp_path / "s.npz"),
                      "--dtype", "float32"]) == 0
    assert slim_main([str(tmp_path / "big.npz"), str(tmp_path)]) == 2      # a folder
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("npsnn slim: error: ") and "Errno" not in err


def test_optimizer_state_is_checked_before_it_is_loaded():
    from npsnn.train.optim import SGD, AdamW
    model = npsnn.build(TINY, seed=0)
    sgd = SGD(model, lr=0.1, momentum=0.9)
    name = next(n for n, _ in model.named_parameters())
    p = dict(model.named_parameters())[name]
    good = {"step_count": np.array(3), f"state/momentum/{name}": np.ones_like(p)}
    sgd.load_state_dict(good)
    assert sgd.step_count == 3
    for arrays, match in [
        ({**good, f"state/momentum/{name}": np.ones(1, p.dtype)}, r"\(float32 \(1,\), the "
                                                                  r"parameter is float32"),
        ({**good, f"state/momentum/{name}": np.full_like(p, np.nan)}, r"\(NaN/inf\)"),
        ({**good, "state/momentum/no.such": np.ones(2)}, "not a state of this optimizer"),
        ({**good, f"state/exp_avg/{name}": np.ones_like(p)}, "not a state of this optimizer"),
        ({f"state/momentum/{name}": np.ones_like(p)}, "'step_count' is missing"),
        ({**good, "step_count": np.array(-1)}, "non-negative integer"),
    ]:
        with pytest.raises(ValueError, match=match):
            sgd.load_state_dict(arrays)
        assert sgd.step_count == 3                  # unchanged
        assert np.array_equal(sgd.state[f"momentum/{name}"], np.ones_like(p))
    AdamW(model).load_state_dict({"step_count": np.array(0)})
