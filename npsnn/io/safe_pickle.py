"""A restricted unpickler: only globals on an explicit allow-list are ever looked up.

Pickle is a small program; ``pickle.load`` on an untrusted file will happily call
``os.system``. Both readers of pickled data in npsnn (PyTorch checkpoints in
:mod:`npsnn.io.pth`, CIFAR python batches in :mod:`npsnn.datasets.cifar_batches`) go through
:class:`RestrictedUnpickler`, each with its own allow-list. A global that is not on the
list raises :class:`UnsafePickleError` *before* anything is called, so nothing runs.
"""
from __future__ import annotations

import io
import pickle
from typing import Callable, Mapping


class UnsafePickleError(ValueError):
    """The pickle asked for a global that is not allowed; nothing was executed."""


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose ``find_class`` only returns objects from ``allowed``.

    allowed: ``{(module, qualified_name): object}``; the object returned in place of the
    global (a real function, or a harmless stand-in that rebuilds only data).
    what: a short description of the file for error messages ("PyTorch checkpoint").
    """

    def __init__(self, file, allowed: Mapping[tuple[str, str], object], *, what: str = "pickle",
                 persistent_load: Callable | None = None, **kwargs) -> None:
        super().__init__(file, **kwargs)
        self._allowed = dict(allowed)
        self._what = what
        if persistent_load is not None:
            self.persistent_load = persistent_load

    def find_class(self, module: str, name: str):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to load {self._what}: it references the global '{module}.{name}', "
                f"which is not on the allow-list (nothing was executed). If this file comes "
                f"from a source you trust and you need it, convert it with the tool that "
                f"wrote it to a plain format such as .npz") from None


def restricted_loads(data: bytes, allowed, **kwargs):
    return RestrictedUnpickler(io.BytesIO(data), allowed, **kwargs).load()
