"""Process-level tuning that makes NumPy training steps faster on Linux.

This is the one place where npsnn touches process-wide state, kept apart so that it is
visible and can be switched off (``NPSNN_MALLOC_TUNING=0``). Building a model never
changes it: the commands that run long jobs (``train``, ``eval``, ``quickstart``, the
benchmarks) call :func:`tune_process` once at their start. A library user who wants the
same speed calls it too.
"""
from __future__ import annotations

import ctypes
import os
import sys


def reuse_freed_memory() -> bool:
    """Ask glibc to keep freed activation arrays for reuse instead of unmapping them.

    A training step allocates and frees the same large arrays every step (activations,
    caches, gradients: tens of MB each). By default glibc serves every block above its
    mmap threshold (at most 32 MB, adapted dynamically) with a fresh ``mmap`` and returns it
    to the OS on free, so the next step pays a page fault and a kernel zeroing for every
    4 KiB (or 2 MiB) page again: about a fifth of a step on a 2-core CPU. Raising the
    mmap and trim thresholds to 1 GiB keeps freed blocks in the heap, where the next
    step's arrays of the same sizes reuse them. Peak memory is unchanged (the same arrays
    are alive at the peak); memory is held a little longer. Applied once per process (later
    calls return the first answer); a no-op off glibc/Linux.
    ``NPSNN_MALLOC_TUNING=0`` in the environment switches it off. Returns whether it applied.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED is not None:
        return _MALLOC_TUNED
    _MALLOC_TUNED = False
    if os.environ.get("NPSNN_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3                  # glibc's <malloc.h>
    _MALLOC_TUNED = bool(mallopt(M_MMAP_THRESHOLD, 1 << 30)) and \
        bool(mallopt(M_TRIM_THRESHOLD, 1 << 30))
    return _MALLOC_TUNED


_MALLOC_TUNED: bool | None = None


def tune_process() -> dict:
    """Apply npsnn's process-wide tuning (called by the commands, never by ``build``).
    -> what was applied, for the command to report."""
    return dict(malloc_tuned=reuse_freed_memory())
