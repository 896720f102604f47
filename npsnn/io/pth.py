"""Read PyTorch checkpoints (``torch.save`` files) without torch, and without running them.

A ``.pth`` file is a pickle: a small program for a stack machine. ``torch.load`` (before
``weights_only``) would execute whatever globals the file names, ``os.system`` included.
Here the pickle is run by :class:`npsnn.io.safe_pickle.RestrictedUnpickler`, whose allow-list
holds only inert stand-ins (:mod:`npsnn.io.pth_pickle`): they rebuild arrays and plain data and
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

import io
import pickle
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .limits import (LimitError, check_bytes, check_count, check_file_size, read_file,
                     short_repr)
from .pth_pickle import (ALLOWED, LoadState, PendingTensor, PickledNamespace, PthFormatError,
                         ascii_str, storage_from_id, strided)
from .safe_pickle import PickleFormatError, RestrictedUnpickler, UnsafePickleError

__all__ = ["load_pth", "load_checkpoint", "state_dict_of", "PthFormatError",
           "PickledNamespace"]

WHAT = "PyTorch checkpoint"
# torch.serialization.MAGIC_NUMBER and PROTOCOL_VERSION of the legacy stream format.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_ZIP_MAGIC = b"PK\x03\x04"


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
    except (PthFormatError, LimitError, PickleFormatError) as e:
        text = str(e)                       # raised with or without the file's name
        raise type(e)(text if text.startswith(str(path)) else f"{path}: {text}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, struct.error, RecursionError, UnicodeDecodeError) as e:
        raise PthFormatError(f"{path}: the pickled object is corrupt or truncated "
                             f"({type(e).__name__}: {short_repr(str(e))})") from None


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
        check_count(f"{path}: the zip archive", len(zf.infolist()), "MAX_MEMBERS")
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
        state = LoadState(str(path))

        def read(name: str, want: int | None = None, limit: str = "MAX_ARRAY_BYTES") -> bytes:
            """Member ``name``, its declared size checked (against ``want`` bytes, the
            limit and the file's budget) before a byte is inflated."""
            try:
                info = zf.getinfo(name)
            except KeyError:
                raise PthFormatError(f"{path}: entry '{name}' is missing; the archive is "
                                     f"truncated or corrupt") from None
            if want is not None and info.file_size != want:
                raise PthFormatError(f"{path}: entry '{name}' has {info.file_size} bytes, "
                                     f"expected {want} for the storage the pickle "
                                     f"describes; the file is corrupt")
            check_bytes(f"{path}: entry '{name}'", info.file_size, limit)
            state.read(info.file_size, f"entry '{name}'")
            try:
                return zf.read(info)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError,
                    NotImplementedError) as e:
                raise PthFormatError(f"{path}: entry '{name}' is unreadable ({e}); the "
                                     f"archive is truncated or corrupt") from None

        big = False
        if prefix + "byteorder" in names:
            order = read(prefix + "byteorder", limit="MAX_METADATA_BYTES").strip()
            if order not in (b"little", b"big"):
                raise PthFormatError(f"{path}: byteorder record says {order[:20]!r}, "
                                     f"expected 'little' or 'big'")
            big = order == b"big"

        def persistent_load(pid):
            st = storage_from_id(pid, state, legacy=False)
            if st.raw is None:
                st.raw = read(f"{prefix}data/{st.key}", want=st.nbytes)
                st.big_endian = big
            return st

        return _unpickle(io.BytesIO(read(pkls[0], limit="MAX_PICKLE_BYTES")),
                         persistent_load, path)


def _read_legacy(path: Path, data: bytes) -> object:
    f = io.BytesIO(data)

    def plain(what):
        # Header pickles hold plain numbers and dicts: an empty allow-list suffices.
        try:
            return RestrictedUnpickler(f, {}, what=WHAT).load()
        except UnsafePickleError as e:
            raise UnsafePickleError(f"{path}: {e}") from None
        except (LimitError, PickleFormatError) as e:
            raise type(e)(f"{path}: {what}: {e}") from None
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError,
                KeyError) as e:
            raise PthFormatError(f"{path}: legacy torch file, {what} is unreadable "
                                 f"({type(e).__name__}: {e}); truncated or corrupt") from None

    if plain("magic number") != _LEGACY_MAGIC:
        raise PthFormatError(f"{path}: not a torch.save file (wrong magic number)")
    version = plain("protocol version")
    if version != _LEGACY_PROTOCOL:
        raise PthFormatError(f"{path}: legacy torch protocol {short_repr(version)} is "
                             f"unsupported (expected {_LEGACY_PROTOCOL})")
    plain("system info")
    state = LoadState(str(path))
    obj = _unpickle(f, lambda pid: storage_from_id(pid, state, legacy=True), path)
    keys = plain("storage key list")
    if not isinstance(keys, list):
        raise PthFormatError(f"{path}: legacy storage key list is corrupt")
    for key in keys:
        st = state.storages.get(ascii_str(key))
        if st is None:
            raise PthFormatError(f"{path}: storage key {short_repr(key)} was never referenced")
        head = f.read(8)
        if len(head) != 8:
            raise PthFormatError(f"{path}: truncated before storage '{st.key}'")
        (numel,) = struct.unpack("<q", head)   # legacy data is always little-endian
        if numel != st.numel:
            raise PthFormatError(f"{path}: storage '{st.key}' has {numel} elements on "
                                 f"disk, {st.numel} in the pickle; the file is corrupt")
        state.read(st.nbytes, f"storage '{st.key}'")
        st.raw = f.read(st.nbytes)             # at most what is left of the file
        if len(st.raw) != st.nbytes:
            raise PthFormatError(f"{path}: storage '{st.key}' is truncated")
    # check_structure bounded the object (depth, shared parts), so this walk is bounded too
    return _resolve(obj, path)


def _resolve(obj, path):
    """Replace the legacy format's pending tensors by arrays, in place where possible."""
    if isinstance(obj, PendingTensor):
        storage = obj.args[0]
        if not storage.ready:
            raise PthFormatError(f"{path}: storage '{storage.key}' has no data")
        return strided(*obj.args)
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
    check_file_size(path, "PyTorch checkpoint")
    with open(path, "rb") as f:
        head = f.read(4)
    if head == _ZIP_MAGIC:
        return _read_zip(path)
    if head[:1] == b"\x80":                # a pickle PROTO opcode: the legacy stream
        return _read_legacy(path, read_file(path, "PyTorch checkpoint"))
    if _is_tar(path):
        raise PthFormatError(f"{path} uses the tar-based torch.save format of PyTorch < 0.4, "
                             f"which npsnn does not read; if you trust the file, re-save it "
                             f"with a current PyTorch: obj = torch.load(f, weights_only=False);"
                             f" torch.save(obj, 'new.pth') (obj.state_dict() for a model)")
    if head[:2] == b"PK":
        return _read_zip(path)       # a damaged zip: let zipfile say what is wrong
    raise PthFormatError(f"{path} is not a torch.save file (it starts with {head!r}, "
                         f"neither a zip archive nor a pickle); is it truncated or empty?")


def _is_tar(path: Path) -> bool:
    """A tar archive, from the POSIX magic of its first header (tarfile.is_tarfile would
    read the first member, whose header may announce any size)."""
    with open(path, "rb") as f:
        return f.read(512)[257:262] == b"ustar"


def state_dict_of(obj, path) -> dict:
    """The state dict inside ``obj`` (what :func:`load_checkpoint` returned; ``path`` is for
    messages): ``obj`` itself or its ``"model"`` / ``"state_dict"`` entry, checked to hold
    only ``{str: ndarray}``, with a DistributedDataParallel ``module.`` prefix removed."""
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
        show = ", ".join(f"{short_repr(k)}: {type(obj[k]).__name__}" for k in bad[:5])
        raise PthFormatError(f"{path}{where} is not a state dict: entries {show}"
                             f"{' ...' if len(bad) > 5 else ''} are not tensors; expected "
                             f"a bare model.state_dict() or a dict with a 'model' entry "
                             f"(its keys: {short_repr(sorted(map(short_repr, obj)))})")
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
