"""Worker threads for the element-wise work of the fast paths (LIF time loops, BN passes).

NumPy runs an element-wise pass (``a * b``, ``np.tanh``) on one core, while BLAS runs
GEMMs on all of its threads; on a 2-core CPU about half of a training step is element-wise,
so half of the step leaves one core idle. NumPy releases the GIL inside every ufunc loop,
so plain Python threads can run the passes of *disjoint slices* side by side::

    for_each_chunk(kernel, n, chunk)   # kernel(start, stop) for [0, n) in pieces <= chunk,
                                       # the pieces shared out over workers() threads

Each slice gets exactly the operations it would get in one whole-array pass, so results are
bit for bit those of the serial code (the tests check it). Chunks are also kept small
enough (tens of thousands of elements) that a kernel's temporaries stay in the core's
cache across its several passes.

How many threads: one (serial) until a command calls :func:`npsnn.perf.runtime.tune_process`,
which decides from the CPUs this process may use and the load (``--threads``,
``NPSNN_THREADS``) and calls :func:`set_workers`. The waits are blocking joins, not spins,
so a busy machine costs time slices, never a spinning core.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

#: Bytes of one slice (of rows, neurons or images) that a kernel works on: large enough that
#: NumPy's per-call overhead is small, small enough that a slice's arrays stay near the core
#: through all of the kernel's passes (measured best of 128 KiB - 2 MiB on this project's
#: machines). The fast paths import it; each module's copy of the name can be patched alone.
CHUNK_BYTES = 512 * 1024

_WORKERS = 1
_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0
_LOCK = threading.Lock()


def workers() -> int:
    """The number of threads element-wise kernels may use (1 until a command sets it)."""
    return _WORKERS


def set_workers(n: int) -> None:
    """Let element-wise kernels use ``n`` threads (the calling thread and n - 1 helpers)."""
    global _WORKERS, _POOL
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_workers expected a positive int, got {n!r}")
    with _LOCK:
        _WORKERS = n
        if _POOL is not None and _POOL_SIZE < n - 1:        # grow: a new pool on next use
            _POOL.shutdown(wait=True)
            _POOL = None


def _pool() -> ThreadPoolExecutor:
    global _POOL, _POOL_SIZE
    with _LOCK:
        if _POOL is None:
            _POOL_SIZE = _WORKERS - 1
            _POOL = ThreadPoolExecutor(max_workers=_POOL_SIZE, thread_name_prefix="npsnn-worker")
        return _POOL


def plan(n: int, chunk: int, threads: int, even: bool = False) -> list[list[tuple[int, int]]]:
    """How :func:`for_each_chunk` splits ``[0, n)``: consecutive ranges of at most ``chunk``,
    grouped into at most ``threads`` contiguous runs (one per thread). ``even``: shrink the
    ranges so that their count is a multiple of ``threads`` and every run is as long."""
    chunk = max(1, chunk)
    if even and n > 0 and threads > 1:
        count = min(n, threads * -(-n // (threads * chunk)))    # a multiple of the threads
        bounds = [(n * i // count, n * (i + 1) // count) for i in range(count)]
    else:
        bounds = [(a, min(n, a + chunk)) for a in range(0, n, chunk)]
    per = -(-len(bounds) // max(1, min(threads, len(bounds)))) if bounds else 1
    return [bounds[i:i + per] for i in range(0, len(bounds), per)]


def for_each_chunk(kernel, n: int, chunk: int, even: bool = False) -> None:
    """Call ``kernel(start, stop)`` for consecutive ranges covering ``[0, n)``, each at most
    ``chunk`` long. With several workers the ranges are dealt out in contiguous runs, one run
    per thread, the first run in the calling thread (:func:`plan`); returns when every range
    is done (and re-raises the first exception of a helper). The ranges must be independent.

    even: shrink the ranges so that every thread gets the same share (when the kernel's
    result does not depend on where the ranges fall; a kernel that adds partial sums per
    range must keep ``even=False``, so that its ranges do not depend on the thread count).
    """
    runs = plan(n, chunk, _WORKERS, even)

    def run(part):
        for a, b in part:
            kernel(a, b)

    if len(runs) <= 1:
        for part in runs:
            run(part)
        return
    pending = [_pool().submit(run, part) for part in runs[1:]]
    try:
        run(runs[0])
    finally:
        errors = [f.exception() for f in pending]      # waits for every helper
    for error in errors:
        if error is not None:
            raise error
