"""One training at a time in a run folder: an advisory lock on ``<folder>/.lock``.

Two trainings writing into one folder interleave ``metrics.jsonl`` and overwrite each
other's checkpoints; the second one is refused instead, with the first one's pid::

    with run_lock("runs/p4-d48"):        # RunLocked (a ValueError) if another process has it
        ...

The lock is ``flock(LOCK_EX | LOCK_NB)`` on an open file: the kernel drops it when its
process ends, however it ends, so a ``kill -9`` never leaves a folder locked (the file may
stay behind, unlocked and harmless, holding the dead owner's pid). A clean exit removes the
file, and the folder too if taking the lock created it and nothing else was written there.
Within one process the lock is re-entrant (the ``train`` command takes it before it
looks at the folder, the trainer again when it runs).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from pathlib import Path

LOCK_FILE = ".lock"


class RunLocked(ValueError):
    """Another process is writing to this run folder."""


_held: dict[str, list] = {}     # real path of the folder -> [fd, depth, folders it created]


def _holder(path: Path) -> str:
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return "another process"
    pid, _, command = text.partition(" ")
    return f"pid {pid} ({command[:120]})" if pid.isdigit() else "another process"


def acquire(folder) -> None:
    """Lock ``folder`` (created if missing) for this process, or raise :class:`RunLocked`."""
    folder = Path(folder)
    key = os.path.realpath(folder)
    if key in _held:
        _held[key][1] += 1
        return
    created = [p for p in [folder, *folder.parents] if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunLocked(f"{folder} is in use by another training, {_holder(path)}; wait "
                            f"for it to finish or stop it, or choose another --out") from None
        except BaseException:
            os.close(fd)
            raise
        # The previous owner may have removed the file between our open and our flock:
        # then we locked an orphan, and must lock the file that is there now.
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()} {' '.join(sys.argv)}\n".encode(errors="replace"))
    _held[key] = [fd, 1, created]


def release(folder) -> None:
    """Undo one :func:`acquire`; the last one removes the lock file and unlocks."""
    key = os.path.realpath(folder)
    entry = _held.get(key)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] == 0:
        del _held[key]
        with contextlib.suppress(FileNotFoundError):
            os.unlink(Path(folder) / LOCK_FILE)          # while still holding it
        os.close(entry[0])
        for made in entry[2]:                # folders made for a run that wrote nothing
            with contextlib.suppress(OSError):
                made.rmdir()                 # only if empty


@contextlib.contextmanager
def run_lock(folder):
    """``with run_lock(folder): ...`` holds the folder's lock (see the module docstring)."""
    acquire(folder)
    try:
        yield
    finally:
        release(folder)
