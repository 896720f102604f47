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
_MEMO_GETS = {"GET", "BINGET", "LONG_BINGET"}
_TUPLES = {"EMPTY_TUPLE": 0, "TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}


class _Stack:
    """The pickle machine's stack, as far as the scan needs it: each item is the size of the
    tuple tree it is (1 for anything that is not a tuple). Tuples are immutable, so their
    sizes are exact here; hashing a tuple (a dict key, a set element) walks that tree."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.items: list[int] = []
        self.marks: list[int] = []

    def pop(self, n: int = 1) -> list[int]:
        if n > len(self.items) - (self.marks[-1] if self.marks else 0):
            raise PickleFormatError(f"{self.what} is not a readable pickle (its stack runs "
                                    f"empty); the file is truncated or corrupt")
        out = self.items[len(self.items) - n:]
        del self.items[len(self.items) - n:]
        return out

    def pop_to_mark(self) -> list[int]:
        if not self.marks:
            raise PickleFormatError(f"{self.what} is not a readable pickle (an opcode needs "
                                    f"a MARK that is not there); the file is truncated or "
                                    f"corrupt")
        mark = self.marks.pop()
        out = self.items[mark:]
        del self.items[mark:]
        return out

    def top(self) -> int:
        return self.items[-1] if self.items else 1

    def push_tuple(self, elements: list[int]) -> None:
        size = 1 + sum(elements)
        if size > limits.MAX_OBJECTS:
            raise LimitError(f"{self.what} builds a tuple of more than {limits.MAX_OBJECTS:,} "
                             f"objects, counting each reference to a shared tuple again "
                             f"(npsnn.io.limits.MAX_OBJECTS); hashing it would not end; the "
                             f"file is corrupt or hostile")
        self.items.append(size)


def scan(file, what: str = "pickle") -> int:
    """Walk one pickle's opcodes from ``file``'s position to its STOP without building
    anything, then seek back. Refuses (one line, ValueError) a pickle larger than
    ``MAX_PICKLE_BYTES``, a length that runs past the data, an unknown opcode, a memo index
    no pickler writes, and a tuple whose tree (shared tuples counted again) exceeds
    ``MAX_OBJECTS``: the C unpickler hashes dict keys as it builds them, and hashing a
    tuple that holds the previous tuple twice, a hundred times over, never ends.
    -> the number of opcodes.

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
    stack, memo = _Stack(what), {}
    try:
        for opcode, arg, _pos in pickletools.genops(file):
            count += 1
            name = opcode.name
            if name in _MEMO_PUTS:
                if not isinstance(arg, int) or not 0 <= arg < count:
                    raise LimitError(f"{what}: the pickle stores into memo slot {arg} after "
                                     f"only {count - 1} opcodes (picklers number the slots in "
                                     f"order); the file is corrupt or hostile")
                memo[arg] = stack.top()
            elif name == "MEMOIZE":
                memo[len(memo)] = stack.top()
            elif name in _MEMO_GETS:
                stack.items.append(memo.get(arg, 1))
            elif name == "DUP":
                stack.items.append(stack.top())
            elif name == "MARK":
                stack.marks.append(len(stack.items))
            elif name == "TUPLE":
                stack.push_tuple(stack.pop_to_mark())
            elif name in _TUPLES:
                stack.push_tuple(stack.pop(_TUPLES[name]))
            elif name == "POP" and stack.marks and stack.marks[-1] == len(stack.items):
                stack.marks.pop()                   # POP of a MARK
            else:                                   # any other opcode: its stack effect
                before = opcode.stack_before
                if pickletools.markobject in before:
                    stack.pop_to_mark()
                    stack.pop(before.index(pickletools.markobject))
                else:
                    stack.pop(len(before))
                stack.items += [1] * len(opcode.stack_after)
    except LimitError:
        raise
    except PickleFormatError:
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
