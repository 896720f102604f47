"""Tiny synthetic CIFAR datasets in the four official layouts, written on the fly by tests.

Nothing here is committed data: tests call :func:`write_dataset` into ``tmp_path``.
The python batches are written the way the official files were (Python 2 ``cPickle``,
protocol 2): strings are byte strings (``SHORT_BINSTRING``/``BINSTRING``), arrays are
``numpy.core.multiarray._reconstruct`` + ``numpy.dtype`` + ``BUILD``. Python 3's pickler
cannot produce such a stream (it writes ``numpy._core`` and ``_codecs.encode``), so
:func:`py2_pickle` emits the opcodes directly. Usable as a module or as a script:
``python tests/cifar_files.py OUT_DIR`` writes all four layouts there.
"""
from __future__ import annotations

import io
import struct
import sys
import tarfile
from pathlib import Path

import numpy as np

FOLDERS = {("cifar10", "python"): "cifar-10-batches-py",
           ("cifar10", "binary"): "cifar-10-batches-bin",
           ("cifar100", "python"): "cifar-100-python",
           ("cifar100", "binary"): "cifar-100-binary"}


# ---- a minimal Python 2 style pickle writer (protocol 2) ----------------------------------

def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _int(v: int) -> bytes:
    if 0 <= v < 256:
        return b"K" + bytes([v])
    if 0 <= v < 65536:
        return b"M" + struct.pack("<H", v)
    return b"J" + struct.pack("<i", v)


def _str(s) -> bytes:
    b = s.encode("latin1") if isinstance(s, str) else bytes(s)
    if len(b) < 256:
        return b"U" + bytes([len(b)]) + b               # SHORT_BINSTRING (py2 str)
    return b"T" + struct.pack("<i", len(b)) + b         # BINSTRING


def _tuple(items: list[bytes]) -> bytes:
    if len(items) <= 3:
        return b"".join(items) + [b")", b"\x85", b"\x86", b"\x87"][len(items)]
    return b"(" + b"".join(items) + b"t"


def _dtype(dt: np.dtype, module: str) -> bytes:
    spec = f"{dt.kind}{dt.itemsize}"
    order = "|" if dt.itemsize == 1 else "<"
    return (_global("numpy", "dtype") + _tuple([_str(spec), _int(0), _int(1)]) + b"R"
            + _tuple([_int(3), _str(order), b"N", b"N", b"N", b"J\xff\xff\xff\xff",
                      b"J\xff\xff\xff\xff", _int(0)]) + b"b")


def _obj(x, module: str) -> bytes:
    if x is None:
        return b"N"
    if isinstance(x, bool):
        return b"\x88" if x else b"\x89"
    if isinstance(x, (int, np.integer)) and not isinstance(x, np.ndarray):
        return _int(int(x))
    if isinstance(x, (str, bytes)):
        return _str(x)
    if isinstance(x, (list, tuple)):
        items = [_obj(v, module) for v in x]
        return b"](" + b"".join(items) + b"e" if isinstance(x, list) else _tuple(items)
    if isinstance(x, dict):
        return b"}(" + b"".join(_obj(k, module) + _obj(v, module) for k, v in x.items()) + b"u"
    if isinstance(x, np.ndarray):
        x = np.ascontiguousarray(x)
        return (_global(module, "_reconstruct")
                + _tuple([_global("numpy", "ndarray"), _tuple([_int(0)]), _str(b"b")]) + b"R"
                + _tuple([_int(1), _tuple([_int(s) for s in x.shape]), _dtype(x.dtype, module),
                          b"\x89", _str(x.tobytes())]) + b"b")
    raise TypeError(f"py2_pickle cannot write {type(x).__name__}")


def py2_pickle(obj, module: str = "numpy.core.multiarray") -> bytes:
    """Bytes of ``obj`` pickled like Python 2 cPickle with NumPy 1 (protocol 2)."""
    return b"\x80\x02" + _obj(obj, module) + b"."


# ---- synthetic datasets ------------------------------------------------------------------

def make_split(rng: np.random.Generator, n: int, dataset: str):
    """(images (n,3,32,32) uint8, fine (n,), coarse (n,)); coarse = fine // 5 for CIFAR-100."""
    images = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
    fine = rng.integers(0, 10 if dataset == "cifar10" else 100, size=n).astype(np.int64)
    coarse = fine // 5 if dataset == "cifar100" else None
    return images, fine, coarse


def class_names(dataset: str, label: str = "fine") -> list[str]:
    if dataset == "cifar10":
        return [f"class{i}" for i in range(10)]
    return [f"{label}{i}" for i in range(20 if label == "coarse" else 100)]


def write_dataset(root: Path, dataset: str, fmt: str, n_train: int = 10, n_test: int = 7,
                  seed: int = 0) -> dict:
    """Write ``root/<official folder>/...``; returns the expected arrays.

    CIFAR-10 train is split into five batches of ``n_train`` images each (so 5*n_train).
    """
    rng = np.random.default_rng(seed)
    folder = Path(root) / FOLDERS[(dataset, fmt)]
    folder.mkdir(parents=True, exist_ok=True)
    n_batches = 5 if dataset == "cifar10" else 1
    train = [make_split(rng, n_train, dataset) for _ in range(n_batches)]
    test = make_split(rng, n_test, dataset)
    if dataset == "cifar10":
        names = ([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"])
    else:
        names = (["train"], ["test"])
    suffix = ".bin" if fmt == "binary" else ""
    for parts, split_names in ((train, names[0]), ([test], names[1])):
        for (images, fine, coarse), name in zip(parts, split_names):
            (folder / (name + suffix)).write_bytes(
                encode_batch(images, fine, coarse, dataset, fmt, name))
    if fmt == "binary" and dataset == "cifar10":
        (folder / "batches.meta.txt").write_text("\n".join(class_names("cifar10")) + "\n\n")
    elif fmt == "binary":
        for label in ("fine", "coarse"):
            (folder / f"{label}_label_names.txt").write_text(
                "\n".join(class_names(dataset, label)) + "\n")
    elif dataset == "cifar10":
        (folder / "batches.meta").write_bytes(py2_pickle(
            {"num_cases_per_batch": n_train, "label_names": class_names("cifar10"),
             "num_vis": 3072}))
    else:
        (folder / "meta").write_bytes(py2_pickle(
            {"fine_label_names": class_names(dataset, "fine"),
             "coarse_label_names": class_names(dataset, "coarse")}))
    cat = lambda parts, i: np.concatenate([p[i] for p in parts])  # noqa: E731
    out = {"folder": folder,
           "train": (cat(train, 0), cat(train, 1)), "test": (test[0], test[1])}
    if dataset == "cifar100":
        out["train_coarse"] = cat(train, 2)
        out["test_coarse"] = test[2]
    return out


def encode_batch(images, fine, coarse, dataset: str, fmt: str, name: str = "batch") -> bytes:
    n = len(images)
    flat = images.reshape(n, -1)
    if fmt == "binary":
        lab = [fine[:, None]] if dataset == "cifar10" else [coarse[:, None], fine[:, None]]
        return np.concatenate([*(x.astype(np.uint8) for x in lab), flat], axis=1).tobytes()
    batch = {"batch_label": f"synthetic {name}"}
    if dataset == "cifar10":
        batch["labels"] = [int(v) for v in fine]
    else:
        batch["fine_labels"] = [int(v) for v in fine]
        batch["coarse_labels"] = [int(v) for v in coarse]
    batch["data"] = flat
    batch["filenames"] = [f"img_{i}.png" for i in range(n)]
    return py2_pickle(batch)


def make_tar(folder: Path, dest: Path, mode: str = "w:gz") -> Path:
    """Archive ``folder`` (as a top-level directory of its own name) like the official tars."""
    with tarfile.open(dest, mode) as tar:
        tar.add(folder, arcname=folder.name)
    return dest


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "synthetic-cifar")
    for (dataset, fmt) in FOLDERS:
        write_dataset(out, dataset, fmt)
        print("wrote", out / FOLDERS[(dataset, fmt)])
