"""Atomic writes and pickle-free .npz state dicts (npsnn.io.files)."""
import os
import stat

import numpy as np
import pytest

from array_checks import assert_same_arrays
import npsnn
from npsnn.io import atomic_write, load_npz, load_state, save_npz, save_state

TINY = dict(in_channels=3, dim=6, alpha=3, num_classes=10, patch_size=4, image_size=16,
            depths=[1, 1], spe=True)


# -- atomic_write ---------------------------------------------------------------------------
def test_atomic_write_replaces_whole_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "f.txt"                   # missing parent folders are created
    with atomic_write(path, "w") as f:
        f.write("first")
    with atomic_write(path, "w") as f:
        f.write("second")
        assert path.read_text() == "first"              # not visible before the rename
    assert path.read_text() == "second"
    assert [p.name for p in path.parent.iterdir()] == ["f.txt"]


def test_atomic_write_failure_keeps_the_old_file(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="crash"):
        with atomic_write(path) as f:
            f.write(b"half of the new con")
            raise RuntimeError("crash in the middle of a write")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_atomic_write_gives_the_permissions_of_a_plain_open(tmp_path):
    umask = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "a") as f:
            f.write(b"x")
        with open(tmp_path / "b", "wb") as f:
            f.write(b"x")
    finally:
        os.umask(umask)
    mode = lambda name: stat.S_IMODE((tmp_path / name).stat().st_mode)  # noqa: E731
    assert mode("a") == mode("b") == 0o644              # not mkstemp's 0600


# -- npz files --------------------------------------------------------------------------------
def test_npz_round_trip_keeps_every_dtype_and_shape(tmp_path):
    arrays = {"f16": np.arange(6, dtype=np.float16).reshape(2, 3), "i64": np.array(-3),
              "flag": np.array([True, False]), "empty": np.zeros((0, 4), np.float32),
              "names": np.array(["a", "bc"])}
    save_npz(tmp_path / "a.npz", arrays)
    assert_same_arrays(load_npz(tmp_path / "a.npz"), arrays)


def test_npz_never_holds_pickles(tmp_path):
    with pytest.raises(TypeError, match="'obj' is an object array, which would need pickle"):
        save_npz(tmp_path / "o.npz", {"obj": np.array([{"a": 1}], dtype=object)})
    assert not (tmp_path / "o.npz").exists()
    np.savez(tmp_path / "p.npz", obj=np.array([{"a": 1}], dtype=object))   # written elsewhere
    with pytest.raises(ValueError, match=r"p\.npz is not a readable \.npz file"):
        load_npz(tmp_path / "p.npz")


def test_npz_bad_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_npz(tmp_path / "missing.npz")
    (tmp_path / "t.npz").write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match=r"t\.npz is not a readable \.npz file .*truncated"):
        load_npz(tmp_path / "t.npz")


# -- model state dicts ----------------------------------------------------------------------
def test_state_round_trip_is_exact(tmp_path):
    model = npsnn.build(TINY, dtype=np.float64, seed=1)
    save_state(tmp_path / "m.npz", model)
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]   # no temp files left
    state = load_state(tmp_path / "m.npz")
    assert_same_arrays(state, model.state_dict())
    other = npsnn.build(TINY, dtype=np.float64, seed=2)
    assert not np.array_equal(other.state_dict()["mlp_head.1.weight"],
                              state["mlp_head.1.weight"])
    other.load_state_dict(state)
    assert_same_arrays(other.state_dict(), model.state_dict())
    with pytest.raises(TypeError, match="save_state expected"):
        save_state(tmp_path / "x.npz", {"a": [1, 2]})
    with pytest.raises(TypeError, match="save_state expected a model .* got list"):
        save_state(tmp_path / "x.npz", [np.zeros(2)])
