"""The allow-list of the ``torch.save`` reader (:mod:`npsnn.io.pth`): inert stand-ins.

A ``torch.save`` pickle names a handful of globals: ``torch._utils._rebuild_tensor_v2`` and
friends, storage classes (``torch.FloatStorage``, ...), dtypes (``torch.float32``, ...),
``collections.OrderedDict`` and, in training checkpoints, ``argparse.Namespace``.
:data:`ALLOWED` maps exactly these to the small classes and functions below, which rebuild
NumPy arrays and plain data and nothing else; :class:`~npsnn.io.safe_pickle.RestrictedUnpickler`
refuses every other global before it could be called.

The stand-ins are shared by every load in the process, so they are *frozen*: a pickle's
BUILD opcode can set attributes on any object it holds, and with no ``__dict__`` and no
``__setattr__`` one file cannot alter how the next one is read.

Tensors: ``out[i_0..i_k] = storage[offset + sum_j i_j * stride_j]``, rebuilt with
``as_strided`` after a bounds check and copied into a fresh C-contiguous array
(:func:`strided`). Storages come from persistent ids
``("storage", <storage type>, key, location, numel[, view])`` (:func:`storage_from_id`).
"""
from __future__ import annotations

import collections
import math

import numpy as np

from . import limits
from .limits import Budget, LimitError, check_bytes, short_repr, size_text

__all__ = ["ALLOWED", "PthFormatError", "PickledNamespace", "PendingTensor", "LoadState",
           "strided", "storage_from_id", "ascii_str"]


class PthFormatError(ValueError):
    """The file is not a readable ``torch.save`` file (corrupt, truncated, unsupported)."""


def _refuse_change(obj, name):
    raise PthFormatError(f"the file tries to set attribute {name!r} of {obj!r}; a state dict "
                         f"never does that, so the file is corrupt or hostile")


class _Frozen:
    """Base of the allow-listed stand-ins. They are shared by every load in the process,
    and a pickle's BUILD opcode can set attributes on any object it holds; with no
    ``__dict__`` and no ``__setattr__`` one file cannot alter how the next one is read."""

    __slots__ = ()

    def __setattr__(self, name, value):
        _refuse_change(self, name)

    def __delattr__(self, name):
        _refuse_change(self, name)

    def _init(self, **fields) -> None:
        for k, v in fields.items():
            object.__setattr__(self, k, v)


class _FrozenClass(type):
    """Metaclass: the same protection for an allow-listed class object."""

    def __setattr__(cls, name, value):
        _refuse_change(cls, name)

    def __delattr__(cls, name):
        _refuse_change(cls, name)


class _Call(_Frozen):
    """An allow-listed function, behind a frozen wrapper (functions have a writable
    ``__defaults__`` that a pickle could otherwise replace)."""

    __slots__ = ("fn", "name")

    def __init__(self, fn, name: str) -> None:
        self._init(fn=fn, name=name)

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return self.name


# -- dtypes ---------------------------------------------------------------------------------
class _DType(_Frozen):
    """Stand-in for a ``torch.<dtype>`` global (used by ``_rebuild_tensor_v3``).

    numpy: the little-endian NumPy storage dtype; bfloat16 is stored as ``<u2`` bits and
    widened to float32 when decoded.
    """

    __slots__ = ("name", "storage", "bfloat16")

    def __init__(self, name: str, numpy: str) -> None:
        self._init(name=name, storage=np.dtype(numpy), bfloat16=name == "bfloat16")

    @property
    def itemsize(self) -> int:
        return self.storage.itemsize

    def decode(self, raw, big_endian: bool) -> np.ndarray:
        """Raw bytes -> 1-D native-endian array (bfloat16 -> float32)."""
        order = ">" if big_endian else "<"
        a = np.frombuffer(raw, dtype=self.storage.newbyteorder(order))
        if self.bfloat16:
            # bf16 is the high 16 bits of an IEEE float32: shifting them up is exact.
            return (a.astype(np.uint32) << np.uint32(16)).view(np.float32)
        native = np.dtype(self.storage.char)
        return a.astype(native, copy=False).view(native)    # native byte order

    def __repr__(self) -> str:
        return f"torch.{self.name}"


_DTYPES = {name: _DType(name, np_name) for name, np_name in [
    ("float32", "<f4"), ("float64", "<f8"), ("float16", "<f2"), ("bfloat16", "<u2"),
    ("int64", "<i8"), ("int32", "<i4"), ("int16", "<i2"), ("int8", "i1"), ("uint8", "u1"),
    ("bool", "?"), ("uint16", "<u2"), ("uint32", "<u4"), ("uint64", "<u8"),
]}


class _StorageType(_Frozen):
    """Stand-in for ``torch.FloatStorage`` etc. in a persistent id: just a dtype."""

    __slots__ = ("name", "dtype", "untyped")

    def __init__(self, name: str, dtype: _DType, untyped: bool = False) -> None:
        self._init(name=name, dtype=dtype, untyped=untyped)

    def __repr__(self) -> str:
        return f"torch.{self.name}"


_STORAGE_TYPES = {name: _StorageType(name, _DTYPES[dt]) for name, dt in [
    ("FloatStorage", "float32"), ("DoubleStorage", "float64"), ("HalfStorage", "float16"),
    ("BFloat16Storage", "bfloat16"), ("LongStorage", "int64"), ("IntStorage", "int32"),
    ("ShortStorage", "int16"), ("CharStorage", "int8"), ("ByteStorage", "uint8"),
    ("BoolStorage", "bool"),
]}
# Since PyTorch 2.x dtypes without a legacy storage class are saved as raw bytes.
_UNTYPED = _StorageType("UntypedStorage", _DTYPES["uint8"], untyped=True)


# -- storages and tensors -------------------------------------------------------------------
class LoadState:
    """What one load of one file shares: its storages by key, and the bytes it may still
    inflate to (:mod:`npsnn.io.limits`).

    Storage bytes read from the file go to ``budget`` (``MAX_TOTAL_BYTES``; a zip member
    also to ``MAX_ARRAY_BYTES``). Tensors rebuilt from them may repeat storage elements
    (stride-0 views, several tensors over one storage), but together they may not exceed
    ``MAX_VIEW_EXPANSION`` times the storage bytes read, plus 1 MiB: a file of 10 KB can
    no longer ask for 8 GiB through a stride of 0.
    """

    SLACK = 1 << 20

    def __init__(self, what: str) -> None:
        self.what = what
        self.storages: dict = {}
        self.budget = Budget(what)
        self.storage_bytes = 0
        self.rebuilt_bytes = 0

    def read(self, nbytes: int, item: str) -> None:
        """Charge ``nbytes`` of storage data about to be read."""
        self.budget.spend(nbytes, item)
        self.storage_bytes += nbytes

    def rebuild(self, nbytes: int, item: str) -> None:
        """Charge a tensor of ``nbytes`` about to be rebuilt from the storages."""
        check_bytes(f"{self.what}: {item}", nbytes)
        allowed = limits.MAX_VIEW_EXPANSION * self.storage_bytes + self.SLACK
        if self.rebuilt_bytes + nbytes > allowed:
            raise LimitError(
                f"{self.what}: {item} would take {size_text(nbytes)}; with the tensors before "
                f"it that is more than {limits.MAX_VIEW_EXPANSION} times the "
                f"{size_text(self.storage_bytes)} of storage data in the file "
                f"(npsnn.io.limits.MAX_VIEW_EXPANSION): a stride-0 view repeats one storage "
                f"without end; the file is corrupt or hostile")
        self.rebuilt_bytes += nbytes


class _Storage:
    """One flat buffer: ``numel`` elements of ``stype.dtype``, ``offset`` elements into the
    bytes of its root storage (legacy views; 0 otherwise). ``raw`` is filled when read.
    ``state``: the :class:`LoadState` of the load it belongs to."""

    def __init__(self, key: str, stype: _StorageType, numel: int, state: LoadState,
                 root=None, offset: int = 0):
        self.key, self.stype, self.numel, self.state = key, stype, numel, state
        self.root, self.offset = root, offset
        self.raw = None            # bytes (root storages only)
        self.big_endian = False
        self._decoded: dict = {}

    @property
    def nbytes(self) -> int:
        return self.numel * self.stype.dtype.itemsize

    @property
    def ready(self) -> bool:
        return (self.root or self).raw is not None

    def array(self, dtype: _DType | None = None) -> np.ndarray:
        """The storage as a 1-D array of ``dtype`` (default: its own)."""
        dtype = dtype or self.stype.dtype
        if dtype.name not in self._decoded:
            root = self.root or self
            start = self.offset * self.stype.dtype.itemsize
            raw = memoryview(root.raw)[start:start + self.numel * self.stype.dtype.itemsize]
            if len(raw) % dtype.itemsize:
                raise PthFormatError(f"storage '{self.key}' holds {len(raw)} bytes, not a "
                                     f"whole number of {dtype.name} elements")
            self._decoded[dtype.name] = dtype.decode(raw, root.big_endian)
        return self._decoded[dtype.name]


class PendingTensor:
    """A tensor whose storage bytes come later in the stream (legacy format)."""

    def __init__(self, *args) -> None:
        self.args = args


def _as_index_tuple(what: str, value) -> tuple:
    if not isinstance(value, (tuple, list)) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        raise PthFormatError(f"tensor {what} must be a tuple of non-negative integers, got "
                             f"{short_repr(value)}; the file is corrupt or not written by torch.save")
    return tuple(value)


def strided(storage: _Storage, offset, size, stride, dtype: _DType | None) -> np.ndarray:
    """``out[i_0..i_k] = storage[offset + sum_j i_j * stride_j]`` as a fresh C array."""
    base = storage.array(dtype)
    n = math.prod(size)                      # exact (no int64 wrap-around), 1 for 0-d
    if n == 0:
        return np.zeros(size, dtype=base.dtype)
    # Only stride-0 (expanded) views can outgrow their storage: charge every tensor to the
    # load's budget before allocating it, rather than allocate whatever a file asks for.
    storage.state.rebuild(n * base.itemsize, f"a tensor of size {size}")
    last = offset + sum((s - 1) * st for s, st in zip(size, stride))
    if last >= base.size:
        raise PthFormatError(f"a tensor of size {size}, stride {stride}, offset {offset} "
                             f"reaches element {last} of storage '{storage.key}', which "
                             f"has only {base.size}; the file is corrupt")
    view = np.lib.stride_tricks.as_strided(
        base[offset:], shape=size, strides=tuple(st * base.itemsize for st in stride),
        writeable=False)
    return np.array(view, order="C", copy=True)


def _rebuild_tensor(storage, storage_offset, size, stride, dtype=None):
    """Stand-in for ``torch._utils._rebuild_tensor``: -> ndarray (or pending, legacy)."""
    if not isinstance(storage, _Storage):
        raise PthFormatError(f"a tensor's storage must come from a persistent id, got "
                             f"{type(storage).__name__}; the file is corrupt")
    if dtype is not None and not isinstance(dtype, _DType):
        raise PthFormatError(f"a tensor's dtype must be a torch dtype, got {short_repr(dtype)}")
    if dtype is not None and not storage.stype.untyped and dtype is not storage.stype.dtype:
        raise PthFormatError(f"a {dtype!r} tensor cannot view {storage.stype!r} "
                             f"'{storage.key}'; the file is corrupt")
    if isinstance(storage_offset, bool) or not isinstance(storage_offset, int) \
            or storage_offset < 0:
        raise PthFormatError(f"tensor storage offset must be a non-negative integer, got "
                             f"{short_repr(storage_offset)}; the file is corrupt")
    size = _as_index_tuple("size", size)
    stride = _as_index_tuple("stride", stride)
    if len(size) != len(stride):
        raise PthFormatError(f"tensor size {size} and stride {stride} differ in length; "
                             f"the file is corrupt")
    if not storage.ready:
        return PendingTensor(storage, storage_offset, size, stride, dtype)
    return strided(storage, storage_offset, size, stride, dtype)


def _check_metadata(metadata) -> None:
    # torch records lazy "neg"/"conj" view bits here; a state dict never has them set.
    if metadata and any(bool(v) for v in dict(metadata).values()):
        raise PthFormatError(f"tensor carries lazy view flags {dict(metadata)} that npsnn "
                             f"does not apply; save t.resolve_neg().resolve_conj() instead")


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    """Stand-in for ``torch._utils._rebuild_tensor_v2`` (requires_grad, hooks ignored)."""
    _check_metadata(metadata)
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks,
                       dtype, metadata=None):
    """Stand-in for ``torch._utils._rebuild_tensor_v3``: untyped bytes + explicit dtype."""
    _check_metadata(metadata)
    if dtype is None:
        raise PthFormatError("_rebuild_tensor_v3 without a dtype; the file is corrupt")
    return _rebuild_tensor(storage, storage_offset, size, stride, dtype)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    """Stand-in for ``torch._utils._rebuild_parameter``: a Parameter is its data."""
    if not isinstance(data, (np.ndarray, PendingTensor)):
        raise PthFormatError(f"a Parameter must wrap a tensor, got {type(data).__name__}")
    return data


class PickledNamespace(metaclass=_FrozenClass):
    """Inert stand-in for ``argparse.Namespace``: the fields are kept as plain data.

    ``vars(ns)`` gives the dict; attribute access works as on the original. Nothing of
    argparse is imported or run.
    """

    def __setstate__(self, state) -> None:
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise PthFormatError(f"argparse.Namespace state must be a dict of named "
                                 f"fields, got {type(state).__name__}")
        self.__dict__.update(state)

    def __eq__(self, other) -> bool:
        return isinstance(other, PickledNamespace) and vars(self) == vars(other)

    def __repr__(self) -> str:
        return "Namespace(" + ", ".join(f"{k}={short_repr(v)}" for k, v in vars(self).items()) \
            + ")"


# The whole allow-list: every global a state-dict checkpoint needs, each mapped to an
# inert, frozen stand-in above (or to OrderedDict, which only stores the pairs it is given).
# OrderedDict is a built-in type: its attributes cannot be set, by BUILD or otherwise.
ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    **{("torch._utils", name): _Call(fn, f"torch._utils.{name}") for name, fn in [
        ("_rebuild_tensor", _rebuild_tensor), ("_rebuild_tensor_v2", _rebuild_tensor_v2),
        ("_rebuild_tensor_v3", _rebuild_tensor_v3), ("_rebuild_parameter", _rebuild_parameter),
        ("_rebuild_parameter_with_state", _rebuild_parameter)]},
    ("argparse", "Namespace"): PickledNamespace,
    ("torch", "UntypedStorage"): _UNTYPED,
    ("torch.storage", "UntypedStorage"): _UNTYPED,
    **{("torch", name): st for name, st in _STORAGE_TYPES.items()},
    **{("torch", name): dt for name, dt in _DTYPES.items()},
}


# -- persistent ids ---------------------------------------------------------------------------
def ascii_str(x):
    return x.decode("ascii") if isinstance(x, bytes) else x


def storage_from_id(pid, state: LoadState, legacy: bool) -> _Storage:
    """Validate ``("storage", type, key, location, numel[, view])`` -> the load's _Storage."""
    storages = state.storages
    if not isinstance(pid, tuple) or not pid or ascii_str(pid[0]) != "storage":
        raise PthFormatError(f"unsupported persistent id {short_repr(pid)} (only storages are "
                             f"allowed); the file is corrupt or not a state dict")
    fields = pid[1:]
    want = 5 if legacy else 4
    if len(fields) != want:
        raise PthFormatError(f"storage id {short_repr(pid)} has {len(fields)} fields, expected "
                             f"{want}; the file is corrupt")
    stype, key, _location, numel = fields[:4]
    key = ascii_str(key)
    if not isinstance(stype, _StorageType) or not isinstance(key, str) \
            or not isinstance(numel, int) or numel < 0:
        raise PthFormatError(f"malformed storage id {short_repr(pid)}; the file is corrupt")
    if key in storages:
        st = storages[key]
        if st.stype is not stype:
            raise PthFormatError(f"storage '{key}' is used as both {st.stype!r} and "
                                 f"{stype!r}; the file is corrupt")
    else:
        st = storages[key] = _Storage(key, stype, numel, state)
    view = fields[4] if legacy else None
    if view is None:
        return st
    # Legacy view: (view_key, offset, size) elements into the root storage.
    if not (isinstance(view, tuple) and len(view) == 3
            and all(isinstance(v, int) and v >= 0 for v in view[1:])):
        raise PthFormatError(f"malformed storage view {short_repr(view)}; the file is corrupt")
    view_key, offset, view_size = ascii_str(view[0]), view[1], view[2]
    if offset + view_size > st.numel:
        raise PthFormatError(f"storage view '{view_key}' runs past its root '{key}'")
    vkey = f"{key}/view/{view_key}"
    if vkey not in storages:
        storages[vkey] = _Storage(view_key, stype, view_size, state, root=st,
                                   offset=offset)
    return storages[vkey]
