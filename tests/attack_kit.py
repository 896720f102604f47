"""The machinery of the attack campaign (tests/attack.py): cases, what "handled" means, and
the runner that counts tried and handled cases per class.

"Handled" means what issue 14 asks: a command exits with code 2 and one line on stderr
(``npsnn <command>: error: ...``, no traceback) within its time and memory limits and leaves
no output behind; an API call raises a ValueError/TypeError subclass with a one-line message
and changes nothing; a killed run resumes to the bits of an uninterrupted one with every
promised file whole; a second training into a running folder is refused.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402

import hostile_files as H  # noqa: E402
from limited import GiB, call_limited, run_limited  # noqa: E402
import train_runs as R  # noqa: E402

CLASSES = {1: "hangs", 2: "memory bombs", 3: "crash safety (kill -9)", 4: "run-folder lock",
           5: "NaN / inf", 6: "raw tracebacks (CLI)", 7: "silent nonsense", 8: "golden files",
           9: "golden scale", 10: "thread count reported"}


@dataclass
class Case:
    """One attack. ``attack(tmp)`` returns None when it was handled, else what went wrong;
    or, for a family of attacks known only at run time (one per crash point), a list of
    ``(name, None | problem)``, each counted as a case."""
    cls: int
    name: str
    attack: Callable[[Path], str | None | list]
    full_only: bool = False


CASES: list[Case] = []


def case(cls: int, name: str, full_only: bool = False):
    def register(fn):
        CASES.append(Case(cls, name, fn, full_only))
        return fn
    return register


# -- what "handled" means -----------------------------------------------------------------
def cli_refuses(argv, *, match: str = "", memory: int = 2 * GiB, timeout: float = 120,
                absent=(), code: int = 2) -> str | None:
    """A command: exit ``code``, one line ``npsnn ...: error: ...`` with ``match``, fast,
    and nothing at the paths ``absent``."""
    t0 = time.perf_counter()
    try:
        done = run_limited(argv, memory=memory, timeout=timeout)
    except Exception as e:                  # noqa: BLE001 - a timeout is a finding
        return f"{type(e).__name__} after {time.perf_counter() - t0:.0f} s"
    err = done.stderr
    if done.returncode != code:
        return f"exit {done.returncode}: {err.strip()[-300:]}"
    # argparse's own usage errors print the usage first (lines starting "usage:" or indented)
    lines = [x for x in err.splitlines()
             if x.strip() and not x.startswith(("usage:", " ", "\t"))]
    if "Traceback" in err or len(lines) != 1 or ": error: " not in lines[0]:
        return f"stderr is not one error line: {err.strip()[-300:]}"
    if match and match not in err:
        return f"message lacks {match!r}: {err.strip()}"
    left = [str(p) for p in absent if Path(p).exists()]
    if left:
        return f"left output behind: {left}"
    return None


def api_refuses(target, *args, match: str = "", setup: str = "", memory: int = GiB,
                timeout: float = 60) -> str | None:
    """A function: a ValueError/TypeError subclass with a one-line message, fast."""
    try:
        r = call_limited(target, *args, setup=setup, memory=memory, timeout=timeout)
    except Exception as e:                  # noqa: BLE001
        return f"{type(e).__name__}: {str(e)[-300:]}"
    if r["ok"]:
        return f"accepted: {r['result']}"
    if not {"ValueError", "TypeError"} & set(r["bases"]):
        return f"{r['error']}: {r['message'][:200]}"
    if "\n" in r["message"] or (match and match not in r["message"]):
        return f"message: {r['message'][:300]}"
    return None


def python_ok(code: str, *, memory: int = 2 * GiB, timeout: float = 120) -> str | None:
    """A snippet that asserts the behaviour itself: handled if it exits 0."""
    try:
        done = run_limited(["python", "-c", code], memory=memory, timeout=timeout)
    except Exception as e:                  # noqa: BLE001
        return f"{type(e).__name__}"
    return None if done.returncode == 0 else (done.stderr.strip()[-400:] or "failed")


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def cifar(tmp: Path) -> Path:
    """A small, valid CIFAR-10 folder (binary layout)."""
    d = tmp / "cifar"
    if not d.exists():
        R.write_binary_cifar(d, R.synthetic(96, 2), R.synthetic(32, 3))
    return d


def tiny_run(tmp: Path, finished: bool = True) -> Path:
    """A tiny training run folder (via the API, in this process): finished, or stopped
    after two of its six steps."""
    from npsnn.train.trainer import TrainArgs, Trainer
    out = tmp / ("run" if finished else "part")
    if not (out / "last.npz").exists():
        args = TrainArgs(preset=None, config=R.TINY, out=str(out), epochs=1, batch=16, T=2,
                         progress=False, eval_batch=16, data=str(cifar(tmp)))
        Trainer(args, log=lambda *_: None, max_steps=None if finished else 2).run()
    return out


def checkpoint_with(tmp: Path, **changes) -> Path:
    """A copy of the last.npz of a tiny run stopped half-way (resumable), with entries
    replaced (None: removed)."""
    src = tiny_run(tmp, finished=False) / "last.npz"
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    for k, v in changes.items():
        if v is None:
            arrays.pop(k, None)
        else:
            arrays[k] = v(arrays) if callable(v) else v
    path = tmp / "bad" / "last.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def _first_weight(arrays):
    return next(k for k in sorted(arrays) if k.startswith("model/") and arrays[k].dtype.kind == "f")


PTH, NPZ, CIFAR = "npsnn.io.pth:load_pth", "npsnn.io.files:load_npz", \
    "npsnn.datasets.cifar:load_cifar"
CONVERT = ["python", "-m", "npsnn", "convert-pth"]


def convert_refuses(tmp: Path, data_or_path, match="") -> str | None:
    path = data_or_path if isinstance(data_or_path, Path) else write(tmp / "x.pth", data_or_path)
    return cli_refuses(CONVERT + [path, tmp / "out.npz"], match=match, absent=[tmp / "out.npz"])


def cifar_py_batch(tmp: Path, opcodes: bytes) -> Path:
    """A CIFAR-10 python folder whose every batch holds ``{'labels': <opcodes>}``."""
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        write(tmp / "py" / "cifar-10-batches-py" / name,
              H.pickle_of(b"}(" + H.p_str("labels") + opcodes + b"u"))
    return tmp / "py"


# -- running ----------------------------------------------------------------------------------
def run_campaign(classes=None, full: bool = False, log=print) -> dict:
    """Run the cases -> {class: {"tried": n, "handled": m, "failures": [(name, detail)]}}."""
    results: dict = {}
    for c in CASES:
        if (classes and c.cls not in classes) or (c.full_only and not full):
            continue
        entry = results.setdefault(c.cls, {"tried": 0, "handled": 0, "failures": []})
        tmp = Path(tempfile.mkdtemp(prefix="npsnn-attack-"))
        t0 = time.perf_counter()
        try:
            problem = c.attack(tmp)
        except Exception as e:              # noqa: BLE001 - a crash of the case is a finding
            problem = f"the case itself raised {type(e).__name__}: {e}"
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        outcomes = problem if isinstance(problem, list) else [(c.name, problem)]
        for name, problem in outcomes:
            entry["tried"] += 1
            if problem is None:
                entry["handled"] += 1
            else:
                entry["failures"].append((name, problem))
            log(f"[{c.cls}] {'ok  ' if problem is None else 'FAIL'} {name} "
                f"({time.perf_counter() - t0:.1f} s){'' if problem is None else ': ' + problem}")
    return results


def table(results: dict) -> str:
    rows = ["| class | tried | handled |", "| --- | --- | --- |"]
    for cls in sorted(results):
        r = results[cls]
        rows.append(f"| {cls}. {CLASSES[cls]} | {r['tried']} | {r['handled']} |")
    total = [sum(r[k] for r in results.values()) for k in ("tried", "handled")]
    rows.append(f"| all | {total[0]} | {total[1]} |")
    return "\n".join(rows)
