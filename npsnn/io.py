"""Files: atomic writes and pickle-free ``.npz`` state dicts.

Nothing a user has is ever half-written: every file is written to a temporary file in the
same folder and moved into place with ``os.replace`` (atomic on POSIX), so a crash or a
kill -9 leaves either the old file or the new one, never a torn one.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb"):
    """``with atomic_write(p) as f: f.write(...)``; the file appears complete or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save_npz(path, arrays: dict) -> None:
    """Write ``{name: ndarray}`` to ``path`` (.npz) atomically; loadable without pickle."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    for k, v in arrays.items():
        if v.dtype == object:
            raise TypeError(f"save_npz: '{k}' is an object array, which would need pickle; "
                            f"store numbers or strings only")
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def load_npz(path) -> dict:
    """Read an ``.npz`` written by :func:`save_npz` (never unpickles anything)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise ValueError(f"{path} is not a readable .npz file ({e}); was it truncated or "
                         f"written by something else?") from None
