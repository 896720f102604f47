"""CIFAR-10 / CIFAR-100 loaders that read every official format safely.

The four official layouts (https://www.cs.toronto.edu/~kriz/cifar.html)::

    cifar-10-batches-py/   data_batch_1 .. data_batch_5, test_batch, batches.meta   (pickles)
    cifar-10-batches-bin/  data_batch_1.bin .. data_batch_5.bin, test_batch.bin,
                           batches.meta.txt              records: 1 label + 3072 pixel bytes
    cifar-100-python/      train, test, meta                                          (pickles)
    cifar-100-binary/      train.bin, test.bin, fine_label_names.txt, coarse_label_names.txt
                           records: 1 coarse + 1 fine label + 3072 pixel bytes

A record's 3072 pixel bytes are the red, green, then blue 32x32 planes in row-major order,
so ``pixels.reshape(3, 32, 32)`` is already the (C, H, W) image.

``load_cifar(path, split)`` takes any of them, as a ``.tar.gz`` / ``.tgz`` / ``.tar``
archive, as the extracted dataset folder, or as the folder that holds it, and returns
``images: (N, 3, 32, 32) uint8`` and ``labels: (N,) int64`` in file order. The official
archives are fetched by :func:`npsnn.datasets.download.download`.

Safety. Archives are read member by member in one streaming pass (nothing is extracted to
disk, and only regular-file members are read: symbolic and hard links are never followed).
The python batches are Python 2 pickles; they are loaded with
:class:`npsnn.io.safe_pickle.RestrictedUnpickler`, whose allow-list holds exactly the four
globals these files name (``numpy.core.multiarray._reconstruct``, ``numpy.ndarray``,
``numpy.dtype``, ``numpy.core.multiarray.scalar``, and their ``numpy._core`` spellings).
They are mapped to small stand-ins that rebuild plain numeric arrays from bytes; any other
global raises :class:`~npsnn.io.safe_pickle.UnsafePickleError` before anything is called.
Stand-ins also mean the files load on NumPy 2, where ``numpy.core`` no longer exists.
"""
from __future__ import annotations

import io
import pickle
import posixpath
import re
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._checks import expect_choice
from ..io.safe_pickle import RestrictedUnpickler, UnsafePickleError

__all__ = ["load_cifar", "load_class_names", "sample_path"]

PIXELS = 3 * 32 * 32            # bytes of one image: R, G, B planes of 32x32

# The small sample bundled with a source checkout (see data/README.md).
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "cifar10-sample.tar.gz"


# --------------------------------------------------------------------------------------
# The four layouts
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Layout:
    dataset: str            # "cifar10" | "cifar100"
    fmt: str                # "python" | "binary"
    folder: str             # folder name inside the official archive
    train: tuple            # file names of the train split, in order
    test: tuple
    meta: tuple             # class-name files (fine first for CIFAR-100 binary)

    @property
    def classes(self) -> int:
        return 10 if self.dataset == "cifar10" else 100

    @property
    def files(self) -> tuple:
        return self.train + self.test + self.meta

    def describe(self) -> str:
        return f"{'CIFAR-10' if self.dataset == 'cifar10' else 'CIFAR-100'} {self.fmt} batches"


LAYOUTS = (
    # Binary first: when one folder holds both formats of one dataset, the pickle-free
    # binary batches are preferred.
    _Layout("cifar10", "binary", "cifar-10-batches-bin",
            tuple(f"data_batch_{i}.bin" for i in range(1, 6)), ("test_batch.bin",),
            ("batches.meta.txt",)),
    _Layout("cifar10", "python", "cifar-10-batches-py",
            tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",), ("batches.meta",)),
    _Layout("cifar100", "binary", "cifar-100-binary", ("train.bin",), ("test.bin",),
            ("fine_label_names.txt", "coarse_label_names.txt")),
    _Layout("cifar100", "python", "cifar-100-python", ("train",), ("test",), ("meta",)),
)
_FOLDERS = {lay.folder for lay in LAYOUTS}


# --------------------------------------------------------------------------------------
# Where the files are: a folder or an archive, seen as {directory: {file name: content}}
# --------------------------------------------------------------------------------------

class _Link:
    """An archive member that is a symbolic or hard link: listed, never followed."""

    def __init__(self, target: str) -> None:
        self.target = target


class _Files:
    """The CIFAR-looking files found at ``path``, grouped by directory.

    ``dirs[d][name]`` is the file's bytes (archive: read during the single pass, if it was
    wanted), a ``Path`` (folder: read on demand), ``None`` (archive member present but not
    wanted) or a :class:`_Link`. ``d`` is ``""`` for ``path`` itself (or the archive root),
    else the sub-folder's name (archive: its full member path).
    """

    def __init__(self, path: Path, wanted: set[str], op: str = "load_cifar") -> None:
        self.op = op                              # the public function, for messages
        self.path = path
        self.is_archive = path.is_file()
        self.dirs: dict[str, dict[str, object]] = {}
        self.seen: list[str] = []                 # a few names, for "nothing found" errors
        if self.is_archive:
            self._scan_archive(wanted)
        elif path.is_dir():
            self._scan_folder()
        else:
            raise FileNotFoundError(
                f"{self.op}: {path} does not exist; pass a CIFAR archive (.tar.gz/.tgz/.tar) "
                f"or a folder, e.g. --data ../shared/data/cifar10-jpeg-binary.tar.gz, or fetch "
                f"the official archive with npsnn.datasets.download()")

    def where(self, d: str, name: str = "") -> str:
        """Human-readable location of file ``name`` in directory ``d``."""
        inner = posixpath.join(d, name) if d else name
        if self.is_archive:
            return f"{self.path}:{inner}" if inner else str(self.path)
        return str(self.path / inner) if inner else str(self.path)

    def _scan_folder(self) -> None:
        # Only the folder itself and its official sub-folders: no recursive walk of a big
        # directory tree. Symlinks on disk are the user's own choice and are followed.
        for d, folder in [("", self.path)] + [(f, self.path / f) for f in sorted(_FOLDERS)]:
            if not folder.is_dir():
                continue
            entries = {p.name: p for p in sorted(folder.iterdir()) if p.is_file()}
            self.seen += [posixpath.join(d, n) for n in list(entries)[:5]]
            self.dirs[d] = entries

    def _scan_archive(self, wanted: set[str]) -> None:
        if not tarfile.is_tarfile(self.path):
            raise ValueError(
                f"{self.op}: {self.path} is a file but not a tar archive (.tar.gz/.tgz/.tar); "
                f"pass an official CIFAR archive or the folder it extracts to")
        try:
            # "r|*": a streaming read (gzip or not), one pass, no seeking back, so a
            # .tar.gz is decompressed exactly once whatever the member order is.
            with tarfile.open(self.path, mode="r|*") as tar:
                for member in tar:
                    name = _clean_member_name(member.name)
                    if name is None:
                        continue                    # absolute or '..' path: never ours
                    if len(self.seen) < 5 and not member.isdir():
                        self.seen.append(name)
                    d, base = posixpath.split(name)
                    if d and posixpath.basename(d) not in _FOLDERS:
                        continue
                    if member.issym() or member.islnk():
                        content: object = _Link(member.linkname)
                    elif not member.isreg():
                        continue
                    elif base in wanted:
                        content = tar.extractfile(member).read()
                        if len(content) != member.size:
                            raise EOFError(f"member {name} is truncated")
                    else:
                        content = None
                    self.dirs.setdefault(d, {})[base] = content
        except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
            raise ValueError(
                f"{self.op}: could not read the archive {self.path} ({type(e).__name__}: {e}); "
                f"it is probably truncated or corrupt: download it again (the official "
                f"archives' MD5 sums are in npsnn.datasets.MD5)") from None

    def read(self, d: str, name: str) -> bytes:
        content = self.dirs[d][name]
        if isinstance(content, _Link):
            raise ValueError(
                f"{self.op}: {self.where(d, name)} is a link (to {content.target!r}) inside "
                f"the archive; npsnn reads only regular files from archives and never follows "
                f"links: repack the archive with the real files")
        if isinstance(content, Path):
            return content.read_bytes()
        assert content is not None, "file was not marked as wanted during the archive pass"
        return content

    def find(self) -> tuple[_Layout, str]:
        """The layout found at ``path`` and the directory holding it.

        A layout counts in directory ``d`` if ``d`` is the path itself or is named like
        the official folder, and at least one of the layout's files is in ``d``.
        """
        found = []
        for lay in LAYOUTS:
            for d, entries in self.dirs.items():
                if (d == "" or posixpath.basename(d) == lay.folder) and \
                        any(f in entries for f in lay.files):
                    found.append((lay, d))
        if not found:
            looked = ", ".join(f"{lay.folder}/ ({', '.join(_short(lay.files))})" for lay in LAYOUTS)
            seen = ", ".join(self.seen) if self.seen else "no files"
            raise ValueError(
                f"{self.op}: no CIFAR data found at {self.path}. Looked for the official "
                f"folders, either at the top level or as the path itself: {looked}. Found: "
                f"{seen}. Point --data at an official CIFAR archive or folder, e.g. "
                f"../shared/data/cifar10-jpeg-binary.tar.gz, or fetch one with "
                f"npsnn.datasets.download()")
        datasets = sorted({lay.dataset for lay, _ in found})
        if len(datasets) > 1:
            where = ", ".join(self.where(d) + f" ({lay.describe()})" for lay, d in found)
            raise ValueError(
                f"{self.op}: {self.path} holds both CIFAR-10 and CIFAR-100 ({where}); pass "
                f"the dataset folder or archive itself so the choice is explicit")
        dirs = {d for lay, d in found if lay is found[0][0]}
        if len(dirs) > 1:
            raise ValueError(
                f"{self.op}: {self.path} holds several copies of the {found[0][0].describe()} "
                f"({', '.join(sorted(self.where(d) for d in dirs))}); pass one of them")
        return found[0]


def _short(files: tuple) -> list[str]:
    """data_batch_1..5 instead of five names, for messages."""
    out, batches = [], [f for f in files if f.startswith("data_batch_")]
    if batches:
        suffix = ".bin" if batches[0].endswith(".bin") else ""
        out.append(f"data_batch_{{1..5}}{suffix}")
    return out + [f for f in files if f not in batches]


def _clean_member_name(name: str) -> str | None:
    """Normalised member path, or None for absolute / upward paths (never ours)."""
    name = name.replace("\\", "/")
    if name.startswith("/"):
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


# --------------------------------------------------------------------------------------
# Binary batches: fixed-size records, decoded with one frombuffer + reshape
# --------------------------------------------------------------------------------------

def _parse_binary(raw: bytes, where: str, lay: _Layout, label: str):
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
            raise UnsafePickleError(f"pickle asks for the dtype {spec!r}; only plain numeric "
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
            raise UnsafePickleError(f"pickle gives the byte order {order!r} for a dtype")


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
            raise UnsafePickleError(f"pickle gives the ndarray shape {shape!r}")
        if isinstance(raw, str):                    # Python 2 str loaded with latin1
            raw = raw.encode("latin1")
        if not isinstance(raw, (bytes, bytearray)):
            raise UnsafePickleError("pickle gives ndarray data that are not bytes")
        count = int(np.prod(shape, dtype=np.int64))
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


def _unpickle(raw: bytes, where: str, op: str = "load_cifar") -> dict:
    """Load a CIFAR python batch without executing anything; returns a dict with str keys."""
    try:
        obj = RestrictedUnpickler(io.BytesIO(raw), _ALLOWED, what=f"CIFAR batch {where}",
                                  encoding="latin1").load()
    except UnsafePickleError as e:
        raise UnsafePickleError(f"{op}: {where}: {e}") from None
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


def _parse_python(raw: bytes, where: str, lay: _Layout, label: str):
    """pickled dict -> (images (n, 3, 32, 32) uint8, labels (n,) int64)."""
    batch = _unpickle(raw, where)
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


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------

def load_cifar(path, split: str, label: str = "fine") -> tuple[np.ndarray, np.ndarray]:
    """Load one split of CIFAR-10 or CIFAR-100 from any official format.

    path: a ``.tar.gz``/``.tgz``/``.tar`` archive, or a folder: the dataset folder itself
        (e.g. ``cifar-10-batches-py``) or the folder that holds it. CIFAR-10 vs CIFAR-100
        and python vs binary batches are detected from the file names.
    split: ``"train"`` (data_batch_1..5 / train) or ``"test"`` (test_batch / test).
    label: CIFAR-100 only: ``"fine"`` (100 classes, default) or ``"coarse"`` (20
        super-classes). CIFAR-10 has one label; asking it for ``"coarse"`` is an error.

    Returns ``images: (N, 3, 32, 32) uint8`` (C-contiguous; channels R, G, B) and
    ``labels: (N,) int64``, in file order (batch 1 first).
    """
    expect_choice("load_cifar", "split", split, ("train", "test"))
    expect_choice("load_cifar", "label", label, ("fine", "coarse"))
    path = Path(path).expanduser()
    wanted = {f for lay in LAYOUTS for f in getattr(lay, split)}
    files = _Files(path, wanted)
    lay, d = files.find()
    if lay.dataset == "cifar10" and label == "coarse":
        raise ValueError(f"load_cifar: {files.where(d)} is CIFAR-10, which has no coarse "
                         f"labels; use label='fine' (the default), or pass CIFAR-100")
    names = getattr(lay, split)
    missing = [f for f in names if f not in files.dirs[d]]
    if missing:
        raise ValueError(
            f"load_cifar: the {lay.describe()} at {files.where(d)} are incomplete: "
            f"{', '.join(missing)} missing (the {split} split is {', '.join(names)}). "
            f"Extract the whole archive again, or download it again")
    parse = _parse_binary if lay.fmt == "binary" else _parse_python
    images, labels = [], []
    for name in names:
        im, lb = parse(files.read(d, name), files.where(d, name), lay, label)
        images.append(im)
        labels.append(lb)
        files.dirs[d][name] = None                  # drop the raw bytes early
    # np.concatenate copies into one fresh C-contiguous, writable array.
    return np.concatenate(images), np.concatenate(labels)


def load_class_names(path, label: str = "fine") -> list[str]:
    """Class names, index = label: from batches.meta.txt, batches.meta, meta, or the
    CIFAR-100 binary ``fine_label_names.txt`` / ``coarse_label_names.txt``."""
    expect_choice("load_class_names", "label", label, ("fine", "coarse"))
    path = Path(path).expanduser()
    files = _Files(path, {f for lay in LAYOUTS for f in lay.meta}, op="load_class_names")
    lay, d = files.find()
    if lay.dataset == "cifar10" and label == "coarse":
        raise ValueError(f"load_class_names: {files.where(d)} is CIFAR-10, which has no "
                         f"coarse labels; use label='fine'")
    if lay.fmt == "binary":
        name = lay.meta[0] if lay.dataset == "cifar10" or label == "fine" else lay.meta[1]
    else:
        name = lay.meta[0]
    if name not in files.dirs[d]:
        raise ValueError(f"load_class_names: {files.where(d, name)} is missing; it holds "
                         f"the class names of the {lay.describe()}")
    raw = files.read(d, name)
    where = files.where(d, name)
    if lay.fmt == "binary":
        names = [line.strip() for line in raw.decode("utf-8", "replace").splitlines()]
        names = [n for n in names if n]
    else:
        meta = _unpickle(raw, where, "load_class_names")
        key = "label_names" if lay.dataset == "cifar10" else f"{label}_label_names"
        names = meta.get(key)
        if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise ValueError(f"load_class_names: {where} has no list of strings under "
                             f"'{key}' (keys: {sorted(meta)})")
    expected = 10 if lay.dataset == "cifar10" else (20 if label == "coarse" else 100)
    if len(names) != expected:
        raise ValueError(f"load_class_names: {where} lists {len(names)} class names, "
                         f"expected {expected}")
    return names


def sample_path() -> Path:
    """The CIFAR-10 sample bundled in a source checkout (``data/cifar10-sample.tar.gz``)."""
    if not SAMPLE.is_file():
        raise FileNotFoundError(
            f"the bundled CIFAR-10 sample {SAMPLE} is not there (it ships with a source "
            f"checkout of npsnn, not with an installed wheel); pass --data with a CIFAR "
            f"archive or folder instead")
    return SAMPLE
