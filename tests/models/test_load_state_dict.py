"""Module.load_state_dict checks everything before it copies anything: one error that names
every bad key, and an unchanged model on failure (npsnn/module.py)."""
import numpy as np
import pytest

import npsnn

TINY = dict(dim=6, patch_size=8, image_size=32, depths=[1, 1], num_classes=10)


@pytest.fixture()
def model():
    return npsnn.build(TINY, seed=1)


def _changed(model, before) -> list:
    after = model.state_dict()
    return [k for k in before if not np.array_equal(before[k], after[k], equal_nan=True)]


@pytest.mark.parametrize("bad,error,match", [
    (np.array(["x"]), TypeError, r"\(<U1 into float32\)"),
    (np.complex64(1 + 1j), TypeError, r"\(complex64 into float32\)"),
    (np.array([None], dtype=object), TypeError, r"\(object into float32\)"),
    (np.nan, ValueError, r"non-finite values: .* \(\d+ NaN/inf\)"),
    (1e39, ValueError, r"NaN/inf after the cast to float32"),
])
def test_a_bad_last_tensor_changes_nothing(model, bad, error, match):
    """The last key in copy order is bad, and every other tensor differs from the model's:
    a loader that copies as it checks would have overwritten them all."""
    state = {k: v + 1 if v.dtype.kind == "f" else v + 1 for k, v in model.state_dict().items()}
    last = sorted(state)[-1]
    state[last] = np.full(state[last].shape, bad) if np.ndim(bad) == 0 else \
        np.resize(bad, state[last].shape)
    before = model.state_dict()
    with pytest.raises(error, match=match) as info:
        model.load_state_dict(state)
    assert last in str(info.value) and "nothing was loaded" in str(info.value)
    assert _changed(model, before) == []


def test_every_problem_is_named_in_one_error(model):
    state = model.state_dict()
    keys = sorted(k for k, v in state.items() if v.dtype.kind == "f")
    state[keys[0]] = np.zeros(3, np.float32)                   # mis-shaped
    state[keys[1]] = np.full(state[keys[1]].shape, np.inf)     # non-finite
    del state[keys[2]]                                         # missing
    state["extra.weight"] = np.zeros(2)                        # unexpected
    before = model.state_dict()
    with pytest.raises(ValueError) as info:
        model.load_state_dict(state)
    msg = str(info.value)
    for part in (f"mis-shaped keys: {keys[0]}", f"non-finite values: {keys[1]}",
                 f"missing keys: {keys[2]}", "unexpected keys: extra.weight"):
        assert part in msg, msg
    assert _changed(model, before) == []


def test_integers_and_casts_that_keep_the_values_load(model):
    state = {k: v.astype(np.float64) for k, v in model.state_dict().items()}
    counter = "batch_norm.num_batches_tracked"
    state[counter] = np.array(7.0)                             # integral float into int64
    model.load_state_dict(state)
    assert model.state_dict()[counter] == 7
    state[counter] = np.array(7.5)
    with pytest.raises(TypeError, match="float64 values that are no int64"):
        model.load_state_dict(state)
    with pytest.raises(TypeError, match="expected a dict of arrays, got list"):
        model.load_state_dict([1, 2])
    partial = {"batch_norm.weight": [[1.0], [2.0, 3.0]]}       # ragged
    with pytest.raises(TypeError, match=r"batch_norm\.weight \(object into float32\)"):
        model.load_state_dict(partial, strict=False)
