"""The integer LIF of the fast path (golden/run.py: _lif) runs images in groups on the
worker threads; every split must give the documented equation's integers exactly."""
import importlib

import numpy as np
import pytest

from npsnn import workers

golden_run = importlib.import_module("npsnn.golden.run")   # the module (npsnn.golden.run is
                                                           # also the function it exports)


def _lif_by_the_equation(X, theta, k, T):
    """H = V + ((X - V) >> k); S = H >= theta; V = 0 if S else H, in int64, step by step."""
    X = X.astype(np.int64)
    v = np.zeros(X.shape[1:], np.int64)
    S, H, V = [], [], []
    for t in range(T):
        h = v + ((X[t if X.shape[0] > 1 else 0] - v) >> k)
        s = h >= theta
        v = np.where(s, 0, h)
        S.append(s), H.append(h), V.append(v)
    return np.stack(S), np.stack(H), np.stack(V)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("chunk_bytes", [1, 40_000, 1 << 30])      # 1 image, some, all
@pytest.mark.parametrize("repeated_input", [False, True])          # X of T steps or of one
def test_grouped_lif_is_the_equation(monkeypatch, threads, chunk_bytes, repeated_input):
    rng = np.random.default_rng(5)
    X = np.floor(rng.normal(0, 300, (1 if repeated_input else 4, 7, 5, 3, 16)))
    theta = np.floor(rng.uniform(20, 400, 16)).astype(np.int64)
    monkeypatch.setattr(golden_run, "CHUNK_BYTES", chunk_bytes)
    before = workers.workers()
    workers.set_workers(threads)
    try:
        S, H, V = golden_run._lif(X, theta, 2, 4, record=True)
    finally:
        workers.set_workers(before)
    S_ref, H_ref, V_ref = _lif_by_the_equation(X, theta, 2, 4)
    assert S_ref.any() and not S_ref.all()         # some neurons fire, some do not
    assert np.array_equal(S, S_ref)
    assert np.array_equal(H, H_ref) and np.array_equal(V, V_ref)
