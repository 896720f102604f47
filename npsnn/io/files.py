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
        # mkstemp creates the file 0600; give it the permissions a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
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


def save_state(path, model_or_dict) -> None:
    """Write a model's ``state_dict()`` (or a ``{key: ndarray}`` dict) to ``path`` (.npz).

    Atomic and pickle-free; keys keep their official names, dtypes are kept exactly.
    """
    state = model_or_dict.state_dict() if hasattr(model_or_dict, "state_dict") \
        else model_or_dict
    if not isinstance(state, dict):
        raise TypeError(f"save_state expected a model (with state_dict()) or a dict of "
                        f"arrays, got {type(model_or_dict).__name__}")
    bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, np.ndarray)]
    if bad:
        raise TypeError(f"save_state expected {{str: numpy.ndarray}}, but entries {bad[:5]} "
                        f"are not; convert them with np.asarray first")
    save_npz(path, state)


def load_state(path) -> dict:
    """Read a state dict written by :func:`save_state` -> ``{key: ndarray}`` (no pickle).

    Load it into a model with ``model.load_state_dict(load_state(path))``.
    """
    return load_npz(path)
