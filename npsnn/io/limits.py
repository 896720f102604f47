"""The limits every npsnn reader enforces, in one place.

A file says how big its parts are before it holds them: a zip member its size, an ``.npy``
header its shape, a tar member its size, a pickle the length of its strings and the index of
every memo slot, a ``torch.save`` tensor its size and stride. A hostile or damaged file can
declare anything, so every reader compares what is *declared* with the bytes that are really
there and with the limits below, **before** it allocates or loops. A small file can therefore
neither exhaust memory nor run for long, and a refusal is one :class:`LimitError` (a
``ValueError``) that names the file, the number and the limit.

==========================  ==========  ==================================================
limit                       default     what it bounds
==========================  ==========  ==================================================
``MAX_FILE_BYTES``          4 GiB       any file a reader opens (checkpoint, ``.pth``,
                                        ``.npz``, CIFAR archive or batch file)
``MAX_ARRAY_BYTES``         1 GiB       one array, tensor, archive member or pickled string
``MAX_TOTAL_BYTES``         4 GiB       everything inflated from one file together (members
                                        of a zip or tar, tensors of a ``.pth``)
``MAX_MEMBERS``             100,000     entries of one zip / npz / tar archive
``MAX_METADATA_BYTES``      1 MiB       one metadata record: an ``.npy`` header, a tar
                                        long-name or pax header
``MAX_PICKLE_BYTES``        256 MiB     one pickle program (the largest official CIFAR
                                        python batch, CIFAR-100 ``train``, is 155 MB)
``MAX_DEPTH``               100         nesting of lists / dicts / tuples in a pickle or
                                        JSON document
``MAX_OBJECTS``             2,000,000   objects in a pickle or JSON document, every
                                        reference to a shared container counted again (what
                                        any recursive reader would visit)
``MAX_VIEW_EXPANSION``      16          bytes of tensors a ``.pth`` may rebuild per byte of
                                        the file (stride-0 views repeat one storage)
``MAX_TEXT_BYTES``          16 MiB      a JSON or other text file (``--config``, a golden
                                        ``manifest.json``)
==========================  ==========  ==================================================

The limits are module attributes read at every call, so a user with a genuine file beyond
one of them raises it for the session (``npsnn.io.limits.MAX_ARRAY_BYTES = 8 << 30``).
``docs/reliability.md`` lists them with what each command does on each failure.
"""
from __future__ import annotations

import json
import reprlib
from pathlib import Path

__all__ = ["LimitError", "Budget", "check_bytes", "check_count", "check_file_size",
           "read_file", "check_structure", "load_json", "read_json", "size_text", "short_repr"]

MAX_FILE_BYTES = 4 << 30
MAX_ARRAY_BYTES = 1 << 30
MAX_TOTAL_BYTES = 4 << 30
MAX_MEMBERS = 100_000
MAX_METADATA_BYTES = 1 << 20
MAX_PICKLE_BYTES = 256 << 20
MAX_DEPTH = 100
MAX_OBJECTS = 2_000_000
MAX_VIEW_EXPANSION = 16
MAX_TEXT_BYTES = 16 << 20


class LimitError(ValueError):
    """A file declares or holds more than a documented limit allows (nothing was allocated)."""


def size_text(n: int) -> str:
    """A byte count for messages: ``1.5 GiB``, ``8.0 TiB``, ``812 bytes``."""
    if n < 1024:
        return f"{n} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        n /= 1024
        if n < 1024 or unit == "EiB":
            return f"{n:.1f} {unit}"
    raise AssertionError("unreachable")


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 3, 60, 60
_SHORT.maxtuple = _SHORT.maxlist = _SHORT.maxdict = _SHORT.maxset = 6


def short_repr(obj) -> str:
    """``repr`` for messages about untrusted data: a few levels and items, a few dozen
    characters (``f"{x!r:.80}"`` would build the whole repr first, which for a shared
    structure from a hostile pickle never finishes)."""
    return _SHORT.repr(obj)


def _refuse(what: str, amount: str, limit_name: str, limit: str) -> LimitError:
    return LimitError(f"{what} {amount}, more than the limit of {limit} "
                      f"(npsnn.io.limits.{limit_name}); the file is corrupt or hostile (if it "
                      f"is genuine, raise that limit)")


def check_bytes(what: str, nbytes: int, limit_name: str = "MAX_ARRAY_BYTES") -> int:
    """Refuse ``nbytes`` (declared by ``what``) above the limit ``limit_name`` -> nbytes."""
    limit = globals()[limit_name]
    if nbytes > limit:
        raise _refuse(what, f"would take {size_text(nbytes)}", limit_name, size_text(limit))
    return nbytes


def check_count(what: str, count: int, limit_name: str) -> int:
    """Refuse a number of entries / objects above the limit ``limit_name`` -> count."""
    limit = globals()[limit_name]
    if count > limit:
        raise _refuse(what, f"has {count:,}", limit_name, f"{limit:,}")
    return count


def check_file_size(path, what: str = "", limit_name: str = "MAX_FILE_BYTES") -> int:
    """The size of the file at ``path`` (following links), refused above the limit."""
    path = Path(path)
    size = path.stat().st_size
    label = f"{path}" + (f" ({what})" if what else "")
    if size > globals()[limit_name]:
        raise _refuse(label, f"is {size_text(size)}", limit_name,
                      size_text(globals()[limit_name]))
    return size


def read_file(path, what: str = "", limit_name: str = "MAX_FILE_BYTES") -> bytes:
    """The bytes of a regular file, refused above the limit before anything is read, and
    refused if it grows while being read."""
    path = Path(path)
    size = check_file_size(path, what, limit_name)
    with open(path, "rb") as f:
        data = f.read(size)                 # read(n) allocates n first: never the limit
        if f.read(1):
            raise ValueError(f"{path} grew while it was being read; read it when it is "
                             f"complete")
    return data


class Budget:
    """The bytes one file may still inflate to: every array, member or tensor a reader
    builds is charged here first (``spend``), so the sum is bounded as well as each part.

    what: the file, for messages. The budget is ``MAX_TOTAL_BYTES`` at creation.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self.total = self.left = MAX_TOTAL_BYTES

    def spend(self, nbytes: int, item: str, *, one_array: bool = True) -> None:
        """Charge ``nbytes`` for ``item``; ``one_array``: also hold it to
        ``MAX_ARRAY_BYTES`` (False for data that is only streamed past, never kept)."""
        if one_array:
            check_bytes(f"{self.what}: {item}", nbytes)
        if nbytes > self.left:
            raise LimitError(
                f"{self.what}: {item} would bring what the file inflates to beyond "
                f"{size_text(self.total)} (npsnn.io.limits.MAX_TOTAL_BYTES); the file is "
                f"corrupt or hostile (if it is genuine, raise that limit)")
        self.left -= nbytes


# -- nested structures (pickles, JSON) --------------------------------------------------------
_CONTAINERS = (dict, list, tuple, set, frozenset)


def _children(obj):
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield key
            yield value
    elif isinstance(obj, _CONTAINERS):
        yield from obj
    else:
        yield from vars(obj).values()


def check_structure(obj, what: str, classes: tuple = ()) -> int:
    """Refuse a nested structure that is cyclic, deeper than ``MAX_DEPTH`` or, counting
    every reference to a shared container again, larger than ``MAX_OBJECTS`` objects.

    That expanded count is the work any recursive reader (``repr``, ``==``, a
    ``json.dumps``, a copy) would do. A pickle can share one list between two places of
    another, and that one between two places of the next: 800 bytes then describe a
    structure of 2**100 entries. The count is computed without expanding anything (each
    shared container once, its expanded size remembered), so the check itself takes time
    proportional to the objects really there. ``classes``: further types whose instances'
    attributes are part of the structure (an unpickler's allow-listed classes, whose
    attributes the pickle set). -> the expanded count.
    """
    kinds = _CONTAINERS + tuple(classes)

    def _is_container(x) -> bool:
        return isinstance(x, kinds) and not isinstance(x, type)

    if not _is_container(obj):
        return 1
    max_depth, max_objects = MAX_DEPTH, MAX_OBJECTS
    expanded: dict[int, int] = {}           # id(container) -> its expanded count, when done
    open_ids: set[int] = set()              # containers on the current path (cycle check)
    # the path from the root: [container, iterator over its children, expanded count so far]
    path: list[list] = []

    def enter(container) -> None:
        if len(path) >= max_depth:
            raise LimitError(f"{what} nests containers more than {max_depth} deep "
                             f"(npsnn.io.limits.MAX_DEPTH); the file is corrupt or hostile")
        open_ids.add(id(container))
        path.append([container, iter(_children(container)), 1])

    def too_many():
        return LimitError(f"{what} holds more than {max_objects:,} objects, counting each "
                          f"reference to a shared list, dict or tuple again "
                          f"(npsnn.io.limits.MAX_OBJECTS); the file is corrupt or hostile")

    enter(obj)
    while path:
        top = path[-1]
        for child in top[1]:
            if not _is_container(child):
                top[2] += 1
            elif id(child) in expanded:
                top[2] += expanded[id(child)]
            elif id(child) in open_ids:
                raise LimitError(f"{what} contains itself (a list, dict or object that "
                                 f"holds a reference to itself); the file is corrupt or "
                                 f"hostile")
            else:
                enter(child)
                break
            if top[2] > max_objects:
                raise too_many()
        else:
            path.pop()
            open_ids.discard(id(top[0]))
            expanded[id(top[0])] = top[2]
            if path:
                path[-1][2] += top[2]
                if path[-1][2] > max_objects:
                    raise too_many()
    return expanded[id(obj)]


def load_json(text, what: str):
    """``json.loads`` with the limits: text size, depth and object count; any problem is a
    ValueError that names ``what`` (never a RecursionError from a deeply nested file)."""
    if len(text) > MAX_TEXT_BYTES:
        raise _refuse(what, f"is {size_text(len(text))}", "MAX_TEXT_BYTES",
                      size_text(MAX_TEXT_BYTES))
    try:
        obj = json.loads(text)
    except RecursionError:
        raise LimitError(f"{what} nests JSON more deeply than Python can parse "
                         f"(limit MAX_DEPTH = {MAX_DEPTH}); the file is corrupt or "
                         f"hostile") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{what} is not valid JSON ({e})") from None
    check_structure(obj, what)
    return obj


def read_json(path, what: str = "JSON file"):
    """A JSON file through :func:`load_json`, its size checked before it is read."""
    data = read_file(path, what, "MAX_TEXT_BYTES")
    return load_json(data, f"{path} ({what})" if what else str(path))
