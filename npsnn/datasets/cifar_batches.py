"""Decoding one CIFAR batch file -> ``(images (n, 3, 32, 32) uint8, labels (n,) int64)``.

Binary batches are fixed-size records (1 label byte, or coarse + fine for CIFAR-100, then
3072 pixel bytes), decoded with one ``frombuffer`` + ``reshape``.

Python batches are Python 2 pickles of ``{"data": (n, 3072) uint8, "labels": [...], ...}``.
They are loaded with :class:`npsnn.io.safe_pickle.RestrictedUnpickler`, whose allow-list
holds exactly the four globals these files name (``numpy.core.multiarray._reconstruct``,
``numpy.ndarray``, ``numpy.dtype``, ``numpy.core.multiarray.scalar``, and their
``numpy._core`` spellings). They are mapped to small stand-ins that rebuild plain numeric
arrays from bytes; any other global raises :class:`~npsnn.io.safe_pickle.UnsafePickleError`
before anything is called. Stand-ins also mean the files load on NumPy 2, where
``numpy.core`` no longer exists.

Which files make a split, and where they are, is :mod:`npsnn.datasets.cifar`'s business:
here ``lay`` is the layout being read (its ``dataset`` and ``describe()``) and ``where``
names the file in messages.
"""
from __future__ import annotations

import io
import math
import pickle
import re
from typing import TYPE_CHECKING

import numpy as np

from ..io.limits import LimitError, short_repr
from ..io.safe_pickle import RestrictedUnpickler, UnsafePickleError

if TYPE_CHECKING:
    from .cifar import _Layout

__all__ = ["parse_binary", "parse_python", "unpickle_batch", "PIXELS"]

PIXELS = 3 * 32 * 32            # bytes of one image: R, G, B planes of 32x32


# --------------------------------------------------------------------------------------
# Binary batches: fixed-size records, decoded with one frombuffer + reshape
# --------------------------------------------------------------------------------------

def parse_binary(raw: bytes, where: str, lay: _Layout, label: str):
    """records -> (images (n, 3, 32, 32) uint8 view, labels (n,) int64).

    CIFAR-10 record:  [label, 3072 pixels]            (3073 bytes)
    CIFAR-100 record: [coarse, fine, 3072 pixels]     (3074 bytes)
    """
    n_labels = 1 if lay.dataset == "cifar10" else 2
    rec = n_labels + PIXELS
    if len(raw) == 0 or len(raw) % rec:
        n, extra = divmod(len(raw), rec)
        raise ValueError(
            f"load_cifar: {where} has {len(raw)} bytes, which is not a positive multiple of "
            f"the {rec}-byte record of {lay.describe()} ({n_labels} label byte"
            f"{'s' if n_labels > 1 else ''} + {PIXELS} pixel bytes; {n} whole records and "
            f"{extra} bytes left over). The file is truncated or not a {lay.describe()} file: "
            f"extract or download it again")
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, rec)
    images = records[:, n_labels:].reshape(-1, 3, 32, 32)
    if lay.dataset == "cifar10":
        labels = records[:, 0]
        _check_labels(labels, 10, where, "label")
    else:
        _check_labels(records[:, 0], 20, where, "coarse label")
        _check_labels(records[:, 1], 100, where, "fine label")
        labels = records[:, 0 if label == "coarse" else 1]
    return images, labels.astype(np.int64)


def _check_labels(labels: np.ndarray, classes: int, where: str, what: str) -> None:
    bad = np.flatnonzero((labels < 0) | (labels >= classes))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"load_cifar: {where}: record {i} has {what} {int(labels[i])}, outside "
            f"0..{classes - 1} ({bad.size} such records); the file is corrupt or of another dataset: "
            f"download it again")


# --------------------------------------------------------------------------------------
# Python batches: a restricted unpickler with data-only stand-ins for numpy's globals
# --------------------------------------------------------------------------------------

class _NDArrayType:
    """Stands in for the global ``numpy.ndarray`` (only ever compared by identity)."""


_DTYPE_SPEC = re.compile(r"^[biuf][1248]$")


def _text(s) -> str:
    return s.decode("latin1") if isinstance(s, bytes) else s


class _DTypeStub:
    """Stands in for ``numpy.dtype(spec, align, copy)`` + ``__setstate__``.

    Accepts plain numeric dtypes only ('u1', 'i8', 'f4', ...): no object, string or
    structured dtypes, so nothing but numbers can come out of an array.
    """

    def __init__(self, spec, align=False, copy=True) -> None:
        spec = _text(spec)
        if not isinstance(spec, str) or not _DTYPE_SPEC.match(spec):
            raise UnsafePickleError(f"pickle asks for the dtype {short_repr(spec)}; only plain numeric "
                                    f"dtypes are accepted in CIFAR batches")
        self.dtype = np.dtype(spec)

    def __setstate__(self, state) -> None:
        # numpy's dtype state: (version, byteorder, subarray, names, fields, elsize,
        # alignment, flags); a plain dtype has no subarray, names or fields.
        if not isinstance(state, tuple) or len(state) < 5 or any(s is not None for s in state[2:5]):
            raise UnsafePickleError("pickle gives a structured or malformed dtype state; "
                                    "CIFAR batches only hold plain numeric arrays")
        order = _text(state[1])
        if order in ("<", ">"):
            self.dtype = self.dtype.newbyteorder(order)
        elif order not in ("|", "="):
            raise UnsafePickleError(f"pickle gives the byte order {short_repr(order)} for a dtype")


class _ArrayStub:
    """Stands in for ``numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b'b')``.

    The unpickler then calls ``__setstate__((version, shape, dtype, is_fortran, raw))``;
    the array is rebuilt from ``raw`` with ``np.frombuffer`` after checking its length.
    """

    def __init__(self, subtype, shape, typecode) -> None:
        if subtype is not _NDArrayType:
            raise UnsafePickleError("pickle reconstructs something other than numpy.ndarray")
        self.array = None

    def __setstate__(self, state) -> None:
        if isinstance(state, tuple) and len(state) == 4:
            state = (1,) + state                    # oldest numpy pickles had no version
        if not (isinstance(state, tuple) and len(state) == 5):
            raise UnsafePickleError("pickle gives a malformed ndarray state")
        _, shape, dtype, fortran, raw = state
        if not isinstance(dtype, _DTypeStub):
            raise UnsafePickleError("pickle gives an ndarray whose dtype is not a dtype")
        if not (isinstance(shape, tuple) and all(isinstance(s, int) and s >= 0 for s in shape)):
            raise UnsafePickleError(f"pickle gives the ndarray shape {short_repr(shape)}")
        if isinstance(raw, str):                    # Python 2 str loaded with latin1
            raw = raw.encode("latin1")
        if not isinstance(raw, (bytes, bytearray)):
            raise UnsafePickleError("pickle gives ndarray data that are not bytes")
        count = math.prod(shape)                    # exact: no int64 wrap-around
        if len(raw) != count * dtype.dtype.itemsize:
            raise ValueError(f"array data hold {len(raw)} bytes, but shape {shape} of "
                             f"{dtype.dtype} needs {count * dtype.dtype.itemsize}: truncated")
        flat = np.frombuffer(raw, dtype=dtype.dtype, count=count)
        self.array = flat.reshape(shape, order="F" if fortran else "C")


def _scalar_stub(dtype, raw):
    """Stands in for ``numpy.core.multiarray.scalar(dtype, raw)``: one number."""
    if not isinstance(dtype, _DTypeStub):
        raise UnsafePickleError("pickle builds a numpy scalar without a dtype")
    if isinstance(raw, str):
        raw = raw.encode("latin1")
    if not isinstance(raw, (bytes, bytearray)) or len(raw) != dtype.dtype.itemsize:
        raise UnsafePickleError("pickle gives malformed numpy scalar data")
    return np.frombuffer(raw, dtype=dtype.dtype, count=1)[0]


_ALLOWED = {("numpy", "ndarray"): _NDArrayType, ("numpy", "dtype"): _DTypeStub}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_mod, "_reconstruct")] = _ArrayStub
    _ALLOWED[(_mod, "scalar")] = _scalar_stub


def _materialise(obj):
    """Replace array stand-ins by their arrays and bytes keys/strings by str."""
    if isinstance(obj, _ArrayStub):
        if obj.array is None:
            raise ValueError("an ndarray in the pickle was never filled with data")
        return obj.array
    if isinstance(obj, dict):
        return {_text(k): _materialise(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_materialise(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_materialise(v) for v in obj)
    if isinstance(obj, bytes):
        return obj.decode("latin1")
    if isinstance(obj, _DTypeStub):
        return obj.dtype
    return obj


def unpickle_batch(raw: bytes, where: str, op: str = "load_cifar") -> dict:
    """Load a CIFAR python batch without executing anything; returns a dict with str keys."""
    try:
        obj = RestrictedUnpickler(io.BytesIO(raw), _ALLOWED, what=f"CIFAR batch {where}",
                                  encoding="latin1").load()
    except UnsafePickleError as e:
        raise UnsafePickleError(f"{op}: {where}: {e}") from None
    except LimitError as e:                              # it names the file already
        raise LimitError(f"{op}: {e}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, MemoryError) as e:
        raise ValueError(f"{op}: {where} is not a readable CIFAR python batch "
                         f"({type(e).__name__}: {e}); it is truncated or corrupt: extract or "
                         f"download it again") from None
    obj = _materialise(obj)
    if not isinstance(obj, dict):
        raise ValueError(f"{op}: {where} holds a {type(obj).__name__}, not the dict of "
                         f"an official CIFAR python batch")
    return obj


def parse_python(raw: bytes, where: str, lay: _Layout, label: str):
    """pickled dict -> (images (n, 3, 32, 32) uint8, labels (n,) int64)."""
    batch = unpickle_batch(raw, where)
    keys = ["labels"] if lay.dataset == "cifar10" else ["coarse_labels", "fine_labels"]
    missing = [k for k in ["data"] + keys if k not in batch]
    if missing:
        raise ValueError(f"load_cifar: {where} has no {missing} entry (keys: "
                         f"{sorted(batch)}); it is not a {lay.describe()} file")
    data = batch["data"]
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[1] == PIXELS and data.shape[0] > 0):
        got = (f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray)
               else type(data).__name__)
        raise ValueError(f"load_cifar: {where}: 'data' must be a uint8 array of shape "
                         f"(N, {PIXELS}), got a {got}; the file is corrupt or not a "
                         f"{lay.describe()} file")
    n = data.shape[0]
    labels = {}
    for key, classes in zip(keys, [10] if lay.dataset == "cifar10" else [20, 100]):
        values = batch[key]
        try:
            arr = np.asarray(values)
        except (ValueError, TypeError):
            arr = np.asarray([], dtype=object)
        if arr.shape != (n,) or arr.dtype.kind not in "iu":
            raise ValueError(f"load_cifar: {where}: '{key}' must be {n} integers (one per "
                             f"image), got {_describe(values)}; the file is corrupt")
        _check_labels(arr, classes, where, key[:-1].replace("_", " "))
        labels[key] = arr.astype(np.int64)
    key = "labels" if lay.dataset == "cifar10" else f"{label}_labels"
    return data.reshape(n, 3, 32, 32), labels[key]


def _describe(values) -> str:
    if isinstance(values, np.ndarray):
        return f"a {values.dtype} array of shape {values.shape}"
    if isinstance(values, (list, tuple)):
        return f"a {type(values).__name__} of {len(values)} items"
    return f"a {type(values).__name__}"
