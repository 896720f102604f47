"""Shared test helper: two dicts of arrays (state dicts, loaded files) are the same."""
import numpy as np


def assert_same_arrays(got: dict, want: dict) -> None:
    """Same keys, and per key the same dtype, shape and values; ``got``'s arrays are fresh
    (C-contiguous and writable, not read-only views into a file's buffer)."""
    assert sorted(got) == sorted(want)
    for k in want:
        assert got[k].dtype == want[k].dtype, k
        assert got[k].shape == want[k].shape, k
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
        assert got[k].flags.c_contiguous and got[k].flags.writeable, k
