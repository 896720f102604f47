"""A restricted, bounded unpickler: only globals on an explicit allow-list are ever looked up,
and nothing a pickle declares can make it allocate or loop beyond the limits of
:mod:`npsnn.io.limits`.

Pickle is a small program; ``pickle.load`` on an untrusted file will happily call
``os.system``. Both readers of pickled data in npsnn (PyTorch checkpoints in
:mod:`npsnn.io.pth`, CIFAR python batches in :mod:`npsnn.datasets.cifar_batches`) go through
:class:`RestrictedUnpickler`, each with its own allow-list. A global that is not on the
list raises :class:`UnsafePickleError` *before* anything is called, so nothing runs.

Refusing code is not enough: a pickle of a few hundred bytes can also ask for memory or time.
``BINBYTES8`` declares a length of 2**40 and the C unpickler allocates it before noticing
the data is not there; ``LONG_BINPUT 4294967295`` grows the memo table to 32 GiB; and a list
appended twice to the next list, a hundred times over, is a DAG that every recursive reader
(``repr``, a copy, a conversion) walks as a tree of 2**100 nodes. So :meth:`RestrictedUnpickler.load`

1. checks the size of the pickle against ``MAX_PICKLE_BYTES``;
2. walks its opcodes without executing them (:func:`scan`, :mod:`pickletools`): every
   declared length must fit in the bytes that are there, every memo index must be one the
   pickler could have written (they are numbered in order, so an index is never larger than
   the number of opcodes before it);
3. runs the C unpickler with the allow-list;
4. checks the object it built (:func:`npsnn.io.limits.check_structure`): no cycles, at
   most ``MAX_DEPTH`` levels, at most ``MAX_OBJECTS`` objects counting shared ones again.

Every refusal is a ``ValueError`` (:class:`UnsafePickleError` for a global, otherwise
:class:`~npsnn.io.limits.LimitError` or :class:`PickleFormatError`) with one line.
"""
from __future__ import annotations

import io
import pickle
import pickletools
from typing import Callable, Mapping

from . import limits
from .limits import LimitError, check_structure, size_text


class UnsafePickleError(ValueError):
    """The pickle asked for a global that is not allowed; nothing was executed."""


class PickleFormatError(ValueError):
    """The pickle is truncated or not a pickle (found without running it)."""


_MEMO_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}


def scan(file, what: str = "pickle") -> int:
    """Walk one pickle's opcodes from ``file``'s position to its STOP without building
    anything, then seek back. Refuses (one line, ValueError) a pickle larger than
    ``MAX_PICKLE_BYTES``, a length that runs past the data, an unknown opcode, and a memo
    index no pickler writes. -> the number of opcodes.

    ``pickletools.genops`` reads each declared string with ``file.read(n)``, which returns
    at most the bytes that are left: a declared length of 2**40 costs nothing here.
    """
    start = file.tell()
    end = file.seek(0, io.SEEK_END)
    file.seek(start)
    if end - start > limits.MAX_PICKLE_BYTES:
        raise LimitError(f"{what} is a pickle of {size_text(end - start)}, more than the limit "
                         f"of {size_text(limits.MAX_PICKLE_BYTES)} "
                         f"(npsnn.io.limits.MAX_PICKLE_BYTES); the file is corrupt or hostile "
                         f"(if it is genuine, raise that limit)")
    count = 0
    try:
        for opcode, arg, _pos in pickletools.genops(file):
            count += 1
            if opcode.name in _MEMO_PUTS and (not isinstance(arg, int) or not 0 <= arg < count):
                raise LimitError(f"{what}: the pickle stores into memo slot {arg} after only "
                                 f"{count - 1} opcodes (picklers number the slots in order); "
                                 f"the file is corrupt or hostile")
    except LimitError:
        raise
    except (ValueError, EOFError, UnicodeDecodeError) as e:
        # genops: "expected N bytes in a bytes8, but only M remain", "at position N, opcode
        # b'?' unknown", "pickle exhausted before seeing STOP", ...
        raise PickleFormatError(f"{what} is not a readable pickle ({e}); the file is "
                                f"truncated or corrupt") from None
    finally:
        file.seek(start)
    return count


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose ``find_class`` only returns objects from ``allowed``, bounded by
    :mod:`npsnn.io.limits` (see the module docstring).

    file: a seekable binary file positioned at the pickle (a ``BytesIO``); after
        :meth:`load` it is positioned after the pickle's STOP, as with ``pickle.load``.
    allowed: ``{(module, qualified_name): object}``; the object returned in place of the
        global (a real function, or a harmless stand-in that rebuilds only data).
    what: a short description of the file for error messages ("PyTorch checkpoint").
    """

    def __init__(self, file, allowed: Mapping[tuple[str, str], object], *, what: str = "pickle",
                 persistent_load: Callable | None = None, **kwargs) -> None:
        super().__init__(file, **kwargs)
        self._file = file
        self._allowed = dict(allowed)
        self._what = what
        # instances of allow-listed classes hold attributes the pickle set: check them too
        self._classes = tuple(v for v in self._allowed.values() if isinstance(v, type))
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

    def load(self):
        scan(self._file, self._what)
        obj = super().load()
        check_structure(obj, self._what, self._classes)
        return obj


def restricted_loads(data: bytes, allowed, **kwargs):
    return RestrictedUnpickler(io.BytesIO(data), allowed, **kwargs).load()
