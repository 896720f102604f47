"""Files in and out, hardened: nothing half-written, nothing executed.

* :mod:`npsnn.io.files`: atomic writes (temporary file + rename) and pickle-free ``.npz``
  state dicts: :func:`atomic_write`, :func:`save_npz`, :func:`load_npz`,
  :func:`save_state`, :func:`load_state`.
* :mod:`npsnn.io.safe_pickle`: :class:`~npsnn.io.safe_pickle.RestrictedUnpickler`, the one
  way npsnn reads a pickle (only allow-listed globals are ever looked up).
* :mod:`npsnn.io.pth`: :func:`load_pth`, the ``torch.save`` reader (no torch, nothing run).
* :mod:`npsnn.io.cli`: the ``python -m npsnn convert-pth`` command.
"""
from __future__ import annotations

from .files import atomic_write, load_npz, load_state, save_npz, save_state
from .pth import load_pth

__all__ = ["atomic_write", "save_npz", "load_npz", "save_state", "load_state", "load_pth"]
