"""Run code in a fresh interpreter under a memory limit and a time limit.

A hardening test that feeds a memory bomb to a reader in the test process would, on a
regression, swap the machine or be killed by the OOM killer. Run in a child with
``resource.setrlimit(RLIMIT_AS)`` instead, the same regression is a ``MemoryError`` or a
dead child, and the test fails cleanly; a hang is a timeout.

:func:`call_limited` calls ``module:function(*args)`` and reports how it ended;
:func:`run_limited` runs a command line (``python -m npsnn ...``). Both import npsnn from
this checkout (PYTHONPATH), not from wherever it is installed.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GiB = 1 << 30

_CALL = textwrap.dedent("""
    import importlib, json, sys, time
    target, args, setup = json.loads(sys.argv[1])
    exec(setup)
    module, func = target.split(":")
    fn = getattr(importlib.import_module(module), func)
    t0 = time.perf_counter()
    try:
        result = fn(*args)
        out = dict(ok=True, result=repr(result)[:200])
    except BaseException as e:              # report everything, MemoryError included
        out = dict(ok=False, error=type(e).__name__, message=str(e),
                   bases=[c.__name__ for c in type(e).__mro__])
    out["seconds"] = time.perf_counter() - t0
    print(json.dumps(out))
""")


def _limits(memory: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def env(**extra) -> dict:
    """The environment of a child: this checkout first on PYTHONPATH, one BLAS thread
    (a child's thread pools need address space of their own), plus ``extra``."""
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in
                                                      [os.environ.get("PYTHONPATH")] if p])
    e.setdefault("OPENBLAS_NUM_THREADS", "1")
    e.update({k: str(v) for k, v in extra.items()})
    return e


def run_limited(argv, *, memory: int = GiB, timeout: float = 120, cwd=None,
                extra_env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``argv`` (a list; ``python`` means this interpreter) under ``memory`` bytes of
    address space; a timeout kills it and raises ``subprocess.TimeoutExpired``."""
    argv = [sys.executable if a == "python" else str(a) for a in argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env=env(**(extra_env or {})), preexec_fn=_limits(memory))


def call_limited(target: str, *args, memory: int = GiB, timeout: float = 60,
                 setup: str = "") -> dict:
    """Call ``"module:function"`` with JSON-able ``args`` in a child under the limits.

    setup: Python run first in the child (e.g. lowering a limit of npsnn.io.limits).
    -> ``{"ok": True, "result": repr}`` or ``{"ok": False, "error": type name, "message":
    str, "bases": [class names of its MRO]}``, plus ``"seconds"``. A child that dies
    (killed, crashed) fails the calling test with its stderr.
    """
    t0 = time.perf_counter()
    run = run_limited(["python", "-c", _CALL, json.dumps([target, list(args), setup])],
                      memory=memory, timeout=timeout)
    if run.returncode != 0 or not run.stdout.strip():
        raise AssertionError(f"the child died (exit {run.returncode}) after "
                             f"{time.perf_counter() - t0:.1f} s: {run.stderr[-2000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])
