"""Read PyTorch checkpoints (``torch.save`` files) without torch, and without running them.

A ``.pth`` file is a pickle: a small program for a stack machine. ``torch.load`` (before
``weights_only``) would execute whatever globals the file names, ``os.system`` included.
Here the pickle is run by :class:`npsnn.io.safe_pickle.RestrictedUnpickler`, whose allow-list
holds only inert stand-ins written in this file: they rebuild arrays and plain data and
nothing else. Any other global (``posix.system``, ``builtins.eval``, a pickled
``torch.nn.Module`` subclass, ...) raises :class:`~npsnn.io.safe_pickle.UnsafePickleError`
the moment the unpickler *looks it up*, before it could be called.

The format, as ``torch.save`` writes it (PyTorch >= 1.6, the default "zip" format)::

    <folder>/data.pkl        the pickled object (protocol 2); the folder name varies
    <folder>/data/<key>      raw bytes of one storage (a flat 1-D buffer)
    <folder>/byteorder       "little" or "big" (absent in old files: little)
    <folder>/version, .format_version, .storage_alignment, .data/serialization_id

Inside ``data.pkl`` a tensor is a call
``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)``:
element ``[i_0, .., i_k]`` of the tensor is ``storage[offset + sum_j i_j * stride_j]``.
That is exactly NumPy's strided view, so a transposed or sliced tensor (non-contiguous,
non-zero offset) is rebuilt with ``as_strided`` after a bounds check, then copied into a
fresh C-contiguous array. ``storage`` comes from a *persistent id*
``("storage", <torch.FloatStorage>, key, location, numel)``: the storage type gives the
dtype, ``key`` names the file ``data/<key>``. Newer dtypes (uint16, ...) use
``_rebuild_tensor_v3`` with an untyped byte storage and the dtype passed separately.

The legacy format (``_use_new_zipfile_serialization=False``, PyTorch < 1.6) is a plain
stream: pickled magic number, protocol version and system info, the object pickle
(storages referenced by persistent ids as above, plus an optional view), the list of
storage keys, then for each key an int64 element count and the raw little-endian data.
It is supported too. The pre-0.4 tar format is not (a clear error says how to convert).

bfloat16 (no NumPy dtype) is widened to float32 exactly: a bfloat16 is the upper half of
a float32, so ``float32_bits = bf16_bits << 16``.
"""
from __future__ import annotations

import collections
import io
import math
import pickle
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .safe_pickle import RestrictedUnpickler, UnsafePickleError

__all__ = ["load_pth", "load_checkpoint", "state_dict_of", "infer_config", "PthFormatError",
           "PickledNamespace"]

WHAT = "PyTorch checkpoint"
# torch.serialization.MAGIC_NUMBER and PROTOCOL_VERSION of the legacy stream format.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_ZIP_MAGIC = b"PK\x03\x04"


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
class _Storage:
    """One flat buffer: ``numel`` elements of ``stype.dtype``, ``offset`` elements into the
    bytes of its root storage (legacy views; 0 otherwise). ``raw`` is filled when read."""

    def __init__(self, key: str, stype: _StorageType, numel: int, root=None, offset: int = 0):
        self.key, self.stype, self.numel = key, stype, numel
        self.root, self.offset = root, offset
        self.raw = None            # bytes (root storages only)
        self.big_endian = False
        self._decoded: dict = {}

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


class _PendingTensor:
    """A tensor whose storage bytes come later in the stream (legacy format)."""

    def __init__(self, *args) -> None:
        self.args = args


def _as_index_tuple(what: str, value) -> tuple:
    if not isinstance(value, (tuple, list)) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        raise PthFormatError(f"tensor {what} must be a tuple of non-negative integers, got "
                             f"{value!r}; the file is corrupt or not written by torch.save")
    return tuple(value)


def _strided(storage: _Storage, offset, size, stride, dtype: _DType | None) -> np.ndarray:
    """``out[i_0..i_k] = storage[offset + sum_j i_j * stride_j]`` as a fresh C array."""
    base = storage.array(dtype)
    n = math.prod(size)                      # exact (no int64 wrap-around), 1 for 0-d
    if n == 0:
        return np.zeros(size, dtype=base.dtype)
    if n > max(16 * base.size, 2 ** 24):
        # Only stride-0 (expanded) views can outgrow their storage; refuse absurd ones
        # rather than allocate whatever a hostile file asks for.
        raise PthFormatError(f"a tensor of size {size} would hold {n} elements from a "
                             f"storage of {base.size}; the file is corrupt")
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
        raise PthFormatError(f"a tensor's dtype must be a torch dtype, got {dtype!r}")
    if dtype is not None and not storage.stype.untyped and dtype is not storage.stype.dtype:
        raise PthFormatError(f"a {dtype!r} tensor cannot view {storage.stype!r} "
                             f"'{storage.key}'; the file is corrupt")
    if isinstance(storage_offset, bool) or not isinstance(storage_offset, int) \
            or storage_offset < 0:
        raise PthFormatError(f"tensor storage offset must be a non-negative integer, got "
                             f"{storage_offset!r}; the file is corrupt")
    size = _as_index_tuple("size", size)
    stride = _as_index_tuple("stride", stride)
    if len(size) != len(stride):
        raise PthFormatError(f"tensor size {size} and stride {stride} differ in length; "
                             f"the file is corrupt")
    if not storage.ready:
        return _PendingTensor(storage, storage_offset, size, stride, dtype)
    return _strided(storage, storage_offset, size, stride, dtype)


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
    if not isinstance(data, (np.ndarray, _PendingTensor)):
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
        return "Namespace(" + ", ".join(f"{k}={v!r}" for k, v in vars(self).items()) + ")"


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
def _ascii(x):
    return x.decode("ascii") if isinstance(x, bytes) else x


def _storage_from_id(pid, storages: dict, legacy: bool) -> _Storage:
    """Validate ``("storage", type, key, location, numel[, view])`` -> a cached _Storage."""
    if not isinstance(pid, tuple) or not pid or _ascii(pid[0]) != "storage":
        raise PthFormatError(f"unsupported persistent id {pid!r:.80} (only storages are "
                             f"allowed); the file is corrupt or not a state dict")
    fields = pid[1:]
    want = 5 if legacy else 4
    if len(fields) != want:
        raise PthFormatError(f"storage id {pid!r:.120} has {len(fields)} fields, expected "
                             f"{want}; the file is corrupt")
    stype, key, _location, numel = fields[:4]
    key = _ascii(key)
    if not isinstance(stype, _StorageType) or not isinstance(key, str) \
            or not isinstance(numel, int) or numel < 0:
        raise PthFormatError(f"malformed storage id {pid!r:.120}; the file is corrupt")
    if key in storages:
        st = storages[key]
        if st.stype is not stype:
            raise PthFormatError(f"storage '{key}' is used as both {st.stype!r} and "
                                 f"{stype!r}; the file is corrupt")
    else:
        st = storages[key] = _Storage(key, stype, numel)
    view = fields[4] if legacy else None
    if view is None:
        return st
    # Legacy view: (view_key, offset, size) elements into the root storage.
    if not (isinstance(view, tuple) and len(view) == 3
            and all(isinstance(v, int) and v >= 0 for v in view[1:])):
        raise PthFormatError(f"malformed storage view {view!r:.80}; the file is corrupt")
    view_key, offset, view_size = _ascii(view[0]), view[1], view[2]
    if offset + view_size > st.numel:
        raise PthFormatError(f"storage view '{view_key}' runs past its root '{key}'")
    vkey = f"{key}/view/{view_key}"
    if vkey not in storages:
        storages[vkey] = _Storage(view_key, stype, view_size, root=st, offset=offset)
    return storages[vkey]


class _Unpickler(RestrictedUnpickler):
    """Remembers the refused global so the error can say what kind of file this is."""

    refused: tuple | None = None

    def find_class(self, module: str, name: str):
        try:
            return super().find_class(module, name)
        except UnsafePickleError:
            self.refused = (module, name)
            raise


def _unpickle(data, persistent_load, path) -> object:
    """Run the restricted unpickler; every failure becomes a clear ValueError."""
    unpickler = _Unpickler(data, ALLOWED, what=WHAT, persistent_load=persistent_load)
    try:
        return unpickler.load()
    except UnsafePickleError as e:
        raise UnsafePickleError(f"{path}: {e}{_hint(unpickler.refused)}") from None
    except PthFormatError as e:
        raise PthFormatError(f"{path}: {e}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, struct.error, RecursionError, UnicodeDecodeError) as e:
        raise PthFormatError(f"{path}: the pickled object is corrupt or truncated "
                             f"({type(e).__name__}: {e})") from None


_SYSTEM_MODULES = {"os", "posix", "nt", "builtins", "__builtin__", "subprocess", "sys",
                   "shutil", "socket", "importlib", "runpy", "pickle", "io", "codecs"}


def _hint(refused) -> str:
    """A class from a model library usually means ``torch.save(model)``: say what to do."""
    if refused is None:
        return ""
    module, name = refused
    if module.split(".")[0] in _SYSTEM_MODULES or not name[:1].isupper():
        return ""
    return (" -- the file pickles whole objects (e.g. torch.save(model)) rather than a "
            "state dict; in PyTorch, save the weights instead: "
            "torch.save(model.state_dict(), 'weights.pth')")


# -- readers --------------------------------------------------------------------------------
def _read_zip(path: Path) -> object:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise PthFormatError(f"{path}: not a readable zip archive ({e}); the file is "
                             f"truncated or corrupt (re-download or re-save it)") from None
    with zf:
        names = zf.namelist()
        pkls = [n for n in names if n.rsplit("/", 1)[-1] == "data.pkl" and n.count("/") <= 1]
        if len(pkls) != 1:
            if any(n.endswith(".npy") for n in names):
                raise PthFormatError(f"{path} is a NumPy .npz archive, not a torch.save "
                                     f"file; read it with npsnn.io.load_state")
            raise PthFormatError(f"{path}: zip archive without exactly one "
                                 f"'<folder>/data.pkl' (found {len(pkls)}); not a "
                                 f"torch.save file")
        prefix = pkls[0][:-len("data.pkl")]
        if prefix + "constants.pkl" in names or any(n.startswith(prefix + "code/")
                                                    for n in names):
            raise PthFormatError(f"{path} is a TorchScript archive (torch.jit.save), which "
                                 f"holds code; in PyTorch save the weights instead: "
                                 f"torch.save(model.state_dict(), 'weights.pth')")

        def read(name: str) -> bytes:
            try:
                return zf.read(name)
            except KeyError:
                raise PthFormatError(f"{path}: entry '{name}' is missing; the archive is "
                                     f"truncated or corrupt") from None
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError,
                    NotImplementedError) as e:
                raise PthFormatError(f"{path}: entry '{name}' is unreadable ({e}); the "
                                     f"archive is truncated or corrupt") from None

        big = False
        if prefix + "byteorder" in names:
            order = read(prefix + "byteorder").strip()
            if order not in (b"little", b"big"):
                raise PthFormatError(f"{path}: byteorder record says {order[:20]!r}, "
                                     f"expected 'little' or 'big'")
            big = order == b"big"
        storages: dict = {}

        def persistent_load(pid):
            st = _storage_from_id(pid, storages, legacy=False)
            if st.raw is None:
                raw = read(f"{prefix}data/{st.key}")
                want = st.numel * st.stype.dtype.itemsize
                if len(raw) != want:
                    raise PthFormatError(f"storage data/{st.key} has {len(raw)} bytes, "
                                         f"expected {want} ({st.numel} x {st.stype!r})")
                st.raw, st.big_endian = raw, big
            return st

        return _unpickle(io.BytesIO(read(pkls[0])), persistent_load, path)


def _read_legacy(path: Path, data: bytes) -> object:
    f = io.BytesIO(data)

    def plain(what):
        # Header pickles hold plain numbers and dicts: an empty allow-list suffices.
        try:
            return RestrictedUnpickler(f, {}, what=WHAT).load()
        except UnsafePickleError as e:
            raise UnsafePickleError(f"{path}: {e}") from None
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError,
                KeyError) as e:
            raise PthFormatError(f"{path}: legacy torch file, {what} is unreadable "
                                 f"({type(e).__name__}: {e}); truncated or corrupt") from None

    if plain("magic number") != _LEGACY_MAGIC:
        raise PthFormatError(f"{path}: not a torch.save file (wrong magic number)")
    version = plain("protocol version")
    if version != _LEGACY_PROTOCOL:
        raise PthFormatError(f"{path}: legacy torch protocol {version!r} is unsupported "
                             f"(expected {_LEGACY_PROTOCOL})")
    plain("system info")
    storages: dict = {}
    obj = _unpickle(f, lambda pid: _storage_from_id(pid, storages, legacy=True), path)
    keys = plain("storage key list")
    if not isinstance(keys, list):
        raise PthFormatError(f"{path}: legacy storage key list is corrupt")
    for key in keys:
        st = storages.get(_ascii(key))
        if st is None:
            raise PthFormatError(f"{path}: storage key {key!r} was never referenced")
        head = f.read(8)
        if len(head) != 8:
            raise PthFormatError(f"{path}: truncated before storage '{st.key}'")
        (numel,) = struct.unpack("<q", head)   # legacy data is always little-endian
        if numel != st.numel:
            raise PthFormatError(f"{path}: storage '{st.key}' has {numel} elements on "
                                 f"disk, {st.numel} in the pickle; the file is corrupt")
        st.raw = f.read(numel * st.stype.dtype.itemsize)
        if len(st.raw) != numel * st.stype.dtype.itemsize:
            raise PthFormatError(f"{path}: storage '{st.key}' is truncated")
    try:
        return _resolve(obj, path)
    except RecursionError:
        raise PthFormatError(f"{path}: the pickled object nests too deeply or contains "
                             f"itself; not a state dict") from None


def _resolve(obj, path):
    """Replace the legacy format's pending tensors by arrays, in place where possible."""
    if isinstance(obj, _PendingTensor):
        storage = obj.args[0]
        if not storage.ready:
            raise PthFormatError(f"{path}: storage '{storage.key}' has no data")
        return _strided(*obj.args)
    if isinstance(obj, dict):
        for k in list(obj):
            obj[k] = _resolve(obj[k], path)
    elif isinstance(obj, list):
        obj[:] = [_resolve(v, path) for v in obj]
    elif isinstance(obj, tuple):
        return tuple(_resolve(v, path) for v in obj)
    elif isinstance(obj, PickledNamespace):
        _resolve(obj.__dict__, path)
    return obj


def load_checkpoint(path) -> object:
    """The whole object stored by ``torch.save``, rebuilt from data only.

    Tensors become C-contiguous NumPy arrays (bfloat16 -> float32), ``argparse.Namespace``
    becomes :class:`PickledNamespace`, dicts/lists/numbers/strings stay as they are.
    Raises :class:`~npsnn.io.safe_pickle.UnsafePickleError` (nothing executed) for any other
    global, :class:`PthFormatError` (a ValueError) for corrupt or unsupported files.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    with open(path, "rb") as f:
        head = f.read(4)
    if head == _ZIP_MAGIC:
        return _read_zip(path)
    if head[:1] == b"\x80":                # a pickle PROTO opcode: the legacy stream
        return _read_legacy(path, path.read_bytes())
    if tarfile.is_tarfile(path):
        raise PthFormatError(f"{path} uses the tar-based torch.save format of PyTorch < 0.4, "
                             f"which npsnn does not read; if you trust the file, re-save it "
                             f"with a current PyTorch: obj = torch.load(f, weights_only=False);"
                             f" torch.save(obj, 'new.pth') (obj.state_dict() for a model)")
    if head[:2] == b"PK":
        return _read_zip(path)       # a damaged zip: let zipfile say what is wrong
    raise PthFormatError(f"{path} is not a torch.save file (it starts with {head!r}, "
                         f"neither a zip archive nor a pickle); is it truncated or empty?")


def state_dict_of(obj, path) -> dict:
    """Pick the state dict out of a checkpoint object and check it holds only arrays."""
    if not isinstance(obj, dict):
        raise PthFormatError(f"{path} holds a {type(obj).__name__}, not a state dict "
                             f"(a dict of tensors) or a training checkpoint")
    where = ""
    for entry in ("model", "state_dict"):
        if isinstance(obj.get(entry), dict):
            obj, where = obj[entry], f" (entry '{entry}')"
            break
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, np.ndarray)]
    if bad:
        show = ", ".join(f"{k!r}: {type(obj[k]).__name__}" for k in bad[:5])
        raise PthFormatError(f"{path}{where} is not a state dict: entries {show}"
                             f"{' ...' if len(bad) > 5 else ''} are not tensors; expected "
                             f"a bare model.state_dict() or a dict with a 'model' entry "
                             f"(its keys: {sorted(map(str, obj))[:10]})")
    keys = list(obj)
    # DistributedDataParallel prefixes every key with "module."; the model itself does not.
    if keys and all(k.startswith("module.") for k in keys):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return dict(obj)


def load_pth(path) -> dict:
    """Read a ``torch.save`` file and return the model's state dict ``{key: ndarray}``.

    Accepts a bare ``model.state_dict()`` or a training checkpoint dict, from which the
    ``"model"`` entry is taken (the layout of the official mixer-snn ``train.py``:
    ``{"model", "optimizer", "lr_scheduler", "epoch", "args", "max_test_acc1"}``; a
    ``"state_dict"`` entry is accepted too). A ``module.`` prefix on every key
    (DistributedDataParallel) is removed. Keys keep their official names, so
    ``npsnn.build(config).load_state_dict(load_pth(path))`` loads the weights.

    No torch needed and nothing in the file is executed: see the module docstring.
    """
    return state_dict_of(load_checkpoint(path), Path(path))


def infer_config(state: dict) -> dict | None:
    """Guess the sMLPNet config of an official state dict from its shapes (None if the
    keys are not sMLPNet's). The guess is checked by building that model and loading."""
    try:
        dim, in_channels, patch, _ = state["to_patch_embedding.0.0.weight"].shape
        num_classes = state["mlp_head.1.weight"].shape[0]
        grid = state["token_mix.0.proj_h.1.weight"].shape[0]
        alpha = state["channel_mix.0.1.net.0.weight"].shape[0] // dim
        stages = 1 + max(int(k.split(".")[1]) for k in state
                         if k.startswith("to_patch_embedding."))
        widths = [state[f"token_mix.{j}.fuse.0.weight"].shape[0]
                  for j in range(len(state)) if f"token_mix.{j}.fuse.0.weight" in state]
    except (KeyError, ValueError, IndexError, TypeError):
        return None
    depths = [widths.count(dim * 2 ** i) for i in range(stages)]
    spe = "to_patch_embedding.1.cell2node.0.0.weight" in state
    return dict(in_channels=int(in_channels), dim=int(dim), alpha=int(alpha),
                num_classes=int(num_classes), patch_size=int(patch),
                image_size=int(grid * patch), depths=depths, spe=spe)
