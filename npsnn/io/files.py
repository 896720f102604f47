"""Files: atomic writes, appended lines, and pickle-free ``.npz`` state dicts.

Nothing a user has is ever half-written: every file is written to a temporary file in the
same folder, flushed to disk, and moved into place with ``os.replace`` (atomic on POSIX), so
a crash or a kill -9 leaves either the old file or the new one, never a torn one. A
temporary file left by a killed writer is named ``.<name>.<random>.tmp``; whoever owns the
folder next removes it (:func:`remove_stale_temporaries`).

Crash tests (``tests/train/test_crash.py``) need to kill a writer *inside* a write. With
``NPSNN_TEST_CRASH_POINTS=<folder>`` in the environment, every atomic write and appended
line passes named *crash points* (temporary file created, partly written, written, synced,
renamed; half a line, a whole line), logs each to ``<folder>/points.log`` and, at the
one whose number ``<folder>/pause-at`` holds, announces itself in ``<folder>/paused`` and
waits to be killed. Unset (always, outside those tests) a crash point is one ``is None``
test.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import math
import os
import shutil
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np

from . import limits
from .limits import Budget, LimitError, check_bytes, check_count, check_file_size

_CRASH_DIR = os.environ.get("NPSNN_TEST_CRASH_POINTS") or None
_crash_count = 0


def crash_point(stage: str, path) -> None:
    """A place where a crash test may kill this process (see the module docstring)."""
    if _CRASH_DIR is not None:
        _report_crash_point(stage, path)


def _report_crash_point(stage: str, path) -> None:
    global _crash_count
    _crash_count += 1
    folder = Path(_CRASH_DIR)
    with open(folder / "points.log", "a") as log:
        log.write(f"{_crash_count} {stage} {Path(path).name}\n")
    try:
        pause_at = int((folder / "pause-at").read_text())
    except (FileNotFoundError, ValueError):
        return
    if pause_at == _crash_count:
        (folder / "paused.tmp").write_text(f"{_crash_count} {stage} {path}\n")
        os.replace(folder / "paused.tmp", folder / "paused")
        while True:                         # until the test's SIGKILL
            time.sleep(60)


class _CrashPointFile:
    """Test hook only: an atomic write's file object that passes a crash point after its
    first write, leaving a torn temporary file."""

    def __init__(self, f, path) -> None:
        self._f, self._path, self._first = f, path, True

    def write(self, data):
        n = self._f.write(data)
        if self._first:
            self._first = False
            self._f.flush()
            crash_point("partly written", self._path)
        return n

    def __getattr__(self, name):
        return getattr(self._f, name)


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb"):
    """``with atomic_write(p) as f: f.write(...)``; the file appears complete or not at all.

    The data are flushed to disk before the rename and the rename is flushed after it, so
    the new file survives a power cut too. An ``OSError`` (full disk, no permission) names
    ``path``, and the temporary file is removed.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise OSError(e.errno, e.strerror or str(e), str(path)) from None
    try:
        crash_point("temporary file created", path)
        with os.fdopen(fd, mode) as f:
            yield f if _CRASH_DIR is None else _CrashPointFile(f, path)
            f.flush()
            crash_point("written", path)
            os.fsync(f.fileno())
        crash_point("synced", path)
        # mkstemp creates the file 0600; give it the permissions a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
        crash_point("renamed", path)
        _sync_folder(path.parent)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.filename in (None, tmp):    # name the real file
            raise OSError(e.errno, e.strerror or str(e), str(path)) from None
        raise


def _sync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename) to disk; some file systems cannot, which is fine."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def append_line(path, text: str) -> None:
    """Append ``text`` and a newline to ``path`` in one write (a log such as
    metrics.jsonl). A kill can leave the last line torn; readers skip a line that does
    not parse, and a resumed run rewrites the log up to its checkpoint."""
    data = (text + "\n").encode()
    with open(path, "ab") as f:
        if _CRASH_DIR is None:
            f.write(data)
        else:
            f.write(data[:len(data) // 2])
            f.flush()
            crash_point("half a line written", path)
            f.write(data[len(data) // 2:])
            f.flush()
            crash_point("line written", path)


def remove_stale_temporaries(folder, names) -> list[Path]:
    """Remove the temporary files (and folders) that writers of ``folder/<name>`` killed
    mid-write left behind (``.<name>.*.tmp``, see :func:`atomic_write` and
    :func:`atomic_folder`). Call it only while no other process writes these (e.g. holding
    the folder's lock). -> what was removed."""
    removed = []
    for name in names:
        for tmp in Path(folder).glob(f".{name}.*.tmp"):
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            removed.append(tmp)
    return removed


@contextlib.contextmanager
def atomic_folder(path):
    """``with atomic_folder(p) as tmp: <write files into tmp>``: the folder ``p`` then
    appears complete, with exactly those files, or not at all.

    ``tmp`` is a new folder beside ``p`` (``.<name>.<random>.tmp``). On success it takes
    ``p``'s place: with one atomic exchange of the two names where the kernel offers it
    (Linux ``renameat2(RENAME_EXCHANGE)``), else by two renames; the old ``p`` (whatever the
    caller decided may be replaced) is then removed. On any error ``tmp`` is removed and
    ``p`` is untouched: a full disk half-way leaves the previous folder as it was. A kill
    leaves a ``.<name>.*.tmp`` folder that :func:`remove_stale_temporaries` clears.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as e:
        raise OSError(e.errno, e.strerror or str(e), str(path)) from None
    try:
        crash_point("temporary folder created", path)
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)         # mkdtemp makes it 0700
        if path.exists() and _exchange(tmp, path):
            crash_point("folders exchanged", path)
            shutil.rmtree(tmp)                # now holds the old folder
        else:
            if path.exists():
                old = tmp.with_name(tmp.name[:-len(".tmp")] + ".old.tmp")
                os.replace(path, old)
                crash_point("old folder moved aside", path)
                os.replace(tmp, path)
                shutil.rmtree(old)
            else:
                os.replace(tmp, path)
        crash_point("folder in place", path)
        _sync_folder(path.parent)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError) and e.filename is None:
            raise OSError(e.errno, e.strerror or str(e), str(path)) from None
        raise


def _exchange(a: Path, b: Path) -> bool:
    """Swap the names ``a`` and ``b`` atomically (Linux renameat2 RENAME_EXCHANGE) -> True,
    or False where the kernel or C library cannot (the caller renames twice)."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(b))


class NpzWriter:
    """Write an ``.npz`` one array at a time: ``with NpzWriter(p) as w: w.add(name, a)``.

    The archive is the one ``np.savez`` writes (uncompressed ``<name>.npy`` members), and it
    is written atomically (:func:`atomic_write`): it appears complete when the ``with``
    block ends without an error, or not at all. A caller that produces its arrays one by
    one (the golden export, a layer at a time) never holds them all.
    """

    def __init__(self, path) -> None:
        self.path = Path(path)
        self._stack = contextlib.ExitStack()
        self._zip = None

    def __enter__(self) -> "NpzWriter":
        f = self._stack.enter_context(atomic_write(self.path))
        self._zip = self._stack.enter_context(zipfile.ZipFile(f, "w", zipfile.ZIP_STORED,
                                                              allowZip64=True))
        return self

    def add(self, name: str, array) -> None:
        array = np.asarray(array)
        if array.dtype.hasobject:
            raise TypeError(f"save_npz: '{name}' is an object array, which would need "
                            f"pickle; store numbers or strings only")
        with self._zip.open(f"{name}.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array(member, array, allow_pickle=False)

    def __exit__(self, *exc) -> bool:
        return self._stack.__exit__(*exc)


def save_npz(path, arrays: dict) -> None:
    """Write ``{name: ndarray}`` to ``path`` (.npz) atomically; loadable without pickle."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    for k, v in arrays.items():
        if v.dtype.hasobject:
            raise TypeError(f"save_npz: '{k}' is an object array, which would need pickle; "
                            f"store numbers or strings only")
    with NpzWriter(path) as writer:
        for k, v in arrays.items():
            writer.add(k, v)


def load_npz(path) -> dict:
    """Read an ``.npz`` written by :func:`save_npz` -> ``{name: ndarray}`` (fresh, writable
    arrays; never unpickles anything).

    Bounded (:mod:`npsnn.io.limits`): the file's size, its number of members, and for
    every member the shape its ``.npy`` header declares, which must take exactly the bytes
    the member holds, within the limit for one array and, summed, the limit for one file;
    all checked before the array is allocated. A damaged or foreign file is one
    ``ValueError`` naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    check_file_size(path, ".npz")
    with open(path, "rb") as f:
        head = f.read(6)
    if head == b"\x93NUMPY":
        raise ValueError(f"{path} is a single .npy array, not an .npz archive of named "
                         f"arrays; read it with np.load(path, allow_pickle=False)")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            check_count(f"{path}: the archive", len(infos), "MAX_MEMBERS")
            budget = Budget(str(path))
            out = {}
            for info in infos:
                if not info.filename.endswith(".npy"):
                    raise ValueError(f"member '{info.filename}' is not an .npy array")
                budget.spend(info.file_size, f"member '{info.filename}'")
                with zf.open(info) as member:
                    out[info.filename[:-4]] = _read_npy(member, info.file_size,
                                                        f"member '{info.filename}'")
            return out
    except LimitError as e:
        text = str(e)
        raise LimitError(text if text.startswith(str(path)) else f"{path}: {text}") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error,
            NotImplementedError) as e:
        raise ValueError(f"{path} is not a readable .npz file ({e}); was it truncated or "
                         f"written by something else?") from None


def _read_npy(f, size: int, where: str) -> np.ndarray:
    """One ``.npy`` member of ``size`` bytes -> its array; its header checked first."""
    version = np.lib.format.read_magic(f)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f"{where}: .npy format version {version} is not read here (only "
                         f"1.0 and 2.0, which hold plain arrays)")
    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                   else np.lib.format.read_array_header_2_0)
    shape, fortran, dtype = read_header(f, max_header_size=limits.MAX_METADATA_BYTES)
    if dtype.hasobject:
        raise ValueError(f"{where} holds Python objects, which would need pickle; only "
                         f"numbers and strings are read")
    nbytes = math.prod(shape) * dtype.itemsize          # exact: no int64 wrap-around
    check_bytes(where, nbytes)
    data = size - f.tell()
    if nbytes != data:
        raise ValueError(f"{where}: its header declares shape {shape} of {dtype} "
                         f"({nbytes} bytes), but it holds {data} bytes of data")
    if nbytes == 0:
        return np.zeros(shape, dtype=dtype, order="F" if fortran else "C")
    buffer = bytearray(nbytes)
    if f.readinto(buffer) != nbytes:
        raise EOFError(f"{where} ends before its {nbytes} bytes of data")
    return np.frombuffer(buffer, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def save_state(path, model_or_dict) -> None:
    """Write a model's ``state_dict()`` (or a ``{key: ndarray}`` dict) to ``path`` (.npz).

    Atomic and pickle-free; keys keep their official names, dtypes are kept exactly.
    """
    state = model_or_dict.state_dict() if hasattr(model_or_dict, "state_dict") \
        else model_or_dict
    if not isinstance(state, dict):
        raise TypeError(f"save_state expected a model (with state_dict()) or a dict of "
                        f"arrays, got {type(model_or_dict).__name__}")
    bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, np.ndarray)]
    if bad:
        raise TypeError(f"save_state expected {{str: numpy.ndarray}}, but entries {bad[:5]} "
                        f"are not; convert them with np.asarray first")
    save_npz(path, state)


def load_state(path) -> dict:
    """Read a state dict written by :func:`save_state` -> ``{key: ndarray}`` (no pickle).

    Load it into a model with ``model.load_state_dict(load_state(path))``.
    """
    return load_npz(path)
