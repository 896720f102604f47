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
The python batches are Python 2 pickles, loaded by a restricted unpickler that can only
rebuild plain numeric arrays (:mod:`npsnn.datasets.cifar_batches`, which decodes both
batch formats).
"""
from __future__ import annotations

import lzma
import posixpath
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._checks import expect_choice
from ..io.limits import (Budget, LimitError, check_bytes, check_count, check_file_size,
                         read_file, short_repr)
from .cifar_batches import parse_binary, parse_python, unpickle_batch

__all__ = ["load_cifar", "load_class_names", "detect_dataset", "sample_path"]

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
_FILES = {f for lay in LAYOUTS for f in lay.files}


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
        check_file_size(self.path, "CIFAR archive")
        members = 0
        budget = Budget(f"{self.op}: {self.path}")      # all member data, read or skipped
        try:
            # "r|*": a streaming read (gzip or not), one pass, no seeking back, so a
            # .tar.gz is decompressed exactly once whatever the member order is.
            with tarfile.open(self.path, mode="r|*", tarinfo=_BoundedTarInfo) as tar:
                for member in tar:
                    members = check_count(f"{self.op}: the archive {self.path}", members + 1,
                                          "MAX_MEMBERS")
                    name = _clean_member_name(member.name)
                    d, base = posixpath.split(name or "")
                    ours = (name is not None and member.isreg() and base in _FILES
                            and (not d or posixpath.basename(d) in _FOLDERS))
                    keep = ours and base in wanted
                    # charged before tar reads or skips the member's data; a CIFAR file is
                    # held to the one-array limit even when this pass only looks at names
                    budget.spend(member.size, f"member {short_repr(member.name)}",
                                 one_array=ours)
                    if name is None:
                        continue                    # absolute or '..' path: never ours
                    if len(self.seen) < 5 and not member.isdir():
                        self.seen.append(name)
                    if d and posixpath.basename(d) not in _FOLDERS:
                        continue
                    if member.issym() or member.islnk():
                        content: object = _Link(member.linkname)
                    elif not member.isreg():
                        continue
                    elif keep:
                        content = tar.extractfile(member).read()
                        if len(content) != member.size:
                            raise EOFError(f"member {name} is truncated")
                    else:
                        content = None
                    self.dirs.setdefault(d, {})[base] = content
        except LimitError:
            raise
        except tarfile.ReadError as e:
            if members == 0:
                raise ValueError(
                    f"{self.op}: {self.path} is a file but not a tar archive (.tar.gz/.tgz/"
                    f".tar: {e}); pass an official CIFAR archive or the folder it extracts "
                    f"to") from None
            raise ValueError(
                f"{self.op}: could not read the archive {self.path} (ReadError: {e}); it is "
                f"probably truncated or corrupt: download it again (the official archives' "
                f"MD5 sums are in npsnn.datasets.MD5)") from None
        except (tarfile.TarError, EOFError, zlib.error, OSError, lzma.LZMAError) as e:
            raise ValueError(
                f"{self.op}: could not read the archive {self.path} ({type(e).__name__}: {e}); "
                f"it is probably truncated or corrupt: download it again (the official "
                f"archives' MD5 sums are in npsnn.datasets.MD5)") from None

    def read(self, d: str, name: str) -> bytes:
        content = self.dirs[d][name]
        if isinstance(content, _Link):
            raise ValueError(
                f"{self.op}: {self.where(d, name)} is a link (to {short_repr(content.target)}) "
                f"inside the archive; npsnn reads only regular files from archives and never "
                f"follows links: repack the archive with the real files")
        if isinstance(content, Path):
            return read_file(content, "CIFAR batch", "MAX_ARRAY_BYTES")
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


class _BoundedTarInfo(tarfile.TarInfo):
    """Tar headers within the limits, checked before tarfile reads what they announce.

    tarfile itself reads a pax header's or GNU long name's data into memory whole, and
    follows old GNU sparse headers block after block; a member of the archive is charged to
    the file's budget in :meth:`_Files._scan_archive` before its data is read or skipped.
    (``_proc_member`` is the hook tarfile documents for TarInfo subclasses.)
    """

    _HEADERS = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE,
                tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)

    def _proc_member(self, tarfile_):
        if self.type in self._HEADERS:
            check_bytes(f"a tar header record ({short_repr(self.name)})", self.size,
                        "MAX_METADATA_BYTES")
        elif self.type == tarfile.GNUTYPE_SPARSE:
            raise tarfile.TarError(f"member {short_repr(self.name)} is an old-style GNU "
                                   f"sparse file, which no CIFAR archive holds")
        return super()._proc_member(tarfile_)


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
    parse = parse_binary if lay.fmt == "binary" else parse_python
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
        meta = unpickle_batch(raw, where, "load_class_names")
        key = "label_names" if lay.dataset == "cifar10" else f"{label}_label_names"
        names = meta.get(key)
        if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise ValueError(f"load_class_names: {where} has no list of strings under "
                             f"'{key}' (keys: {short_repr(sorted(map(str, meta)))})")
    expected = 10 if lay.dataset == "cifar10" else (20 if label == "coarse" else 100)
    if len(names) != expected:
        raise ValueError(f"load_class_names: {where} lists {len(names)} class names, "
                         f"expected {expected}")
    return names


def detect_dataset(path, op: str = "detect_dataset") -> str:
    """Which CIFAR is at ``path``: ``"cifar10"`` or ``"cifar100"``, from the file names
    alone (an archive is scanned in one streaming pass; no member is read into memory).
    Raises the errors of :func:`load_cifar` (named after ``op``) when there is none."""
    lay, _ = _Files(Path(path).expanduser(), set(), op=op).find()
    return lay.dataset


def sample_path() -> Path:
    """The CIFAR-10 sample bundled in a source checkout (``data/cifar10-sample.tar.gz``)."""
    if not SAMPLE.is_file():
        raise FileNotFoundError(
            f"the bundled CIFAR-10 sample {SAMPLE} is not there (it ships with a source "
            f"checkout of npsnn, not with an installed wheel); pass --data with a CIFAR "
            f"archive or folder instead")
    return SAMPLE
