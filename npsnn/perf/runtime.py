"""Process-level tuning that makes NumPy training steps faster on Linux.

This is the one place where npsnn touches process-wide state, kept apart so that it is
visible and can be switched off. Building a model never changes it: the commands that run
long jobs (``train``, ``eval``, ``quickstart``, the benchmarks) call :func:`tune_process`
once at their start and print :func:`describe` of what it did. A library user who wants the
same speed calls it too. Two settings:

* **threads** (:func:`choose_threads`): how many threads BLAS (through ``threadpoolctl``)
  and npsnn's element-wise kernels (:mod:`npsnn.workers`) use. By default one per CPU this
  process may use that is not busy with other work, decided at the start of the run; the
  ``--threads N`` flag of the commands or ``NPSNN_THREADS=N`` override it
  (``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS``, if set, are honoured too). Why: OpenBLAS's
  threads spin while they wait, so with one other CPU-bound process on a 2-core machine a
  two-thread run waits for a descheduled partner at every GEMM and becomes several times
  slower, while a one-thread run keeps its core (``benchmarks/compare_torch.py --busy 1``).
* **malloc** (:func:`reuse_freed_memory`): keep freed activation buffers for reuse
  (``NPSNN_MALLOC_TUNING=0`` switches it off).
"""
from __future__ import annotations

import ctypes
import math
import os
import sys
import time


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


# -- threads ----------------------------------------------------------------------------------
THREADS_ENV = "NPSNN_THREADS"
_BLAS_ENVS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup v2 CPU quota
    (``cpu.max``, as containers set it)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):                  # not Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def _cpu_jiffies(cpus: set[int], stat: str | None = None) -> tuple[int, int] | None:
    """(busy, total) jiffies summed over the given CPUs, from /proc/stat (or the text
    ``stat``); None off Linux. Niced processes count as busy: a low priority does not keep
    them from taking the time slices a spinning BLAS partner waits for (measured: two
    threads among niced jobs, 9.5 s per step instead of 1)."""
    try:
        lines = (open("/proc/stat").read() if stat is None else stat).splitlines()
    except OSError:
        return None
    busy = total = 0
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cpus:
            continue
        user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in fields[:8])
        total += user + nice + system + idle + iowait + irq + softirq + steal
        busy += user + nice + system + irq + softirq + steal
    return (busy, total) if total else None


def busy_cpus(sample_s: float = 0.25) -> float | None:
    """How many of this process's CPUs other processes keep busy, measured over
    ``sample_s`` seconds while this process sleeps (this process's own CPU time in that
    window is subtracted), niced work included. None where /proc/stat is unavailable."""
    try:
        cpus = set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None
    before, own0, t0 = _cpu_jiffies(cpus), time.process_time(), time.perf_counter()
    if before is None:
        return None
    time.sleep(sample_s)
    after, own1, t1 = _cpu_jiffies(cpus), time.process_time(), time.perf_counter()
    if after is None or after[1] <= before[1]:
        return None
    share = (after[0] - before[0]) / (after[1] - before[1])    # fraction of these CPUs busy
    return max(0.0, share * len(cpus) - (own1 - own0) / (t1 - t0))


def parse_threads(value, source: str) -> int | None:
    """'auto' / '' / None -> None (decide); a positive int -> itself; else ValueError."""
    if value is None or str(value).strip().lower() in ("", "auto"):
        return None
    try:
        n = int(str(value).strip())
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{source} must be a positive number of threads or 'auto', "
                         f"got {value!r}")
    return n


def choose_threads(requested=None, *, environ=None, usable: int | None = None,
                   busy: float | None | str = "measure") -> tuple[int, str]:
    """How many threads this run should use, and why -> (n, reason).

    ``requested`` (the ``--threads`` flag: an int, 'auto' or None) wins; then
    ``NPSNN_THREADS``; then ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` if the user set
    them; otherwise ``auto``: one thread per usable CPU that other processes leave free
    (``usable - busy``, rounded, at least 1). The keywords let tests fix the environment,
    the CPU count and the measured load.
    """
    environ = os.environ if environ is None else environ
    n = parse_threads(requested, "--threads")
    if n is not None:
        return n, "--threads"
    n = parse_threads(environ.get(THREADS_ENV), THREADS_ENV)
    if n is not None:
        return n, THREADS_ENV
    for name in _BLAS_ENVS:
        if environ.get(name, "").strip():
            n = parse_threads(environ[name], name)
            if n is not None:
                return n, name
    usable = usable_cpus() if usable is None else usable
    busy = busy_cpus() if busy == "measure" else busy
    if busy is None:
        return usable, f"auto: {usable} usable CPUs (load unknown)"
    n = max(1, min(usable, math.floor(usable - busy + 0.5)))
    return n, f"auto: {usable} usable CPUs, other work keeps {busy:.1f} busy"


def set_threads(n: int) -> None:
    """Use ``n`` threads in every BLAS library loaded in this process (numpy's OpenBLAS,
    scipy's if loaded) and in npsnn's element-wise kernels."""
    import numpy  # noqa: F401  (load numpy's BLAS first: threadpoolctl limits loaded ones)
    from threadpoolctl import threadpool_limits

    from .. import workers
    workers.set_workers(n)
    threadpool_limits(limits=n, user_api="blas")


def tune_process(threads=None) -> dict:
    """Apply npsnn's process-wide tuning (called by the commands, never by ``build``).

    threads: the ``--threads`` value (int, 'auto' or None), see :func:`choose_threads`.
    -> what was applied, for the command to report (:func:`describe`).
    """
    n, why = choose_threads(threads)
    set_threads(n)
    return dict(malloc_tuned=reuse_freed_memory(), threads=n, threads_reason=why)


THREADS_HELP = ("threads for BLAS and npsnn's element-wise kernels, or 'auto' [default: "
                "$NPSNN_THREADS, else one per usable CPU that other work leaves free]")


def add_threads_argument(parser) -> None:
    """The ``--threads`` flag every long-running command has (pass its value to
    :func:`tune_process`)."""
    parser.add_argument("--threads", default=None, metavar="N", help=THREADS_HELP)


def describe(tuning: dict) -> str:
    """One line for a command's output: threads used and why (and the malloc tuning)."""
    return (f"threads: {tuning['threads']} ({tuning['threads_reason']}; override with "
            f"--threads N or {THREADS_ENV}=N), malloc tuning "
            f"{'on' if tuning['malloc_tuned'] else 'off'}")
