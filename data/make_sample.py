"""Cut the bundled CIFAR-10 sample from the full (JPEG-derived) copy; see data/README.md.

    python data/make_sample.py                       # from the repository root

reads ``../shared/data/cifar10-jpeg-binary.tar.gz`` and writes ``data/cifar10-sample.tar.gz``
in the official *binary* layout::

    cifar-10-batches-bin/data_batch_{1..5}.bin   5 x 200 train images (20 per class each)
    cifar-10-batches-bin/test_batch.bin          500 test images (50 per class)
    cifar-10-batches-bin/batches.meta.txt        the class names

Deterministic: images are chosen with ``np.random.default_rng(seed)`` (seed 0), and the
archive has fixed timestamps/owners and a gzip header without time or name, so running
the script again gives the same bytes (same sha256).
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import sys
import tarfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))                    # run from a checkout without installing

from npsnn.datasets import load_cifar, load_class_names  # noqa: E402
from npsnn.io import atomic_write  # noqa: E402

MTIME = 1_735_689_600                            # 2025-01-01 00:00 UTC, fixed for every member
FOLDER = "cifar-10-batches-bin"


def pick_balanced(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """(classes, per_class) indices: per class, ``per_class`` distinct images at random."""
    return np.stack([rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
                     for c in range(10)])


def records(images: np.ndarray, labels: np.ndarray) -> bytes:
    """Official binary records: 1 label byte + 3072 pixel bytes (R, G, B planes)."""
    return np.concatenate([labels.astype(np.uint8)[:, None],
                           images.reshape(len(images), -1)], axis=1).tobytes()


def build(source: Path, seed: int = 0, per_class_train: int = 100, per_class_test: int = 50,
          batches: int = 5) -> dict[str, bytes]:
    """{file name: content} of the sample."""
    if per_class_train % batches:
        raise ValueError(f"per_class_train ({per_class_train}) must be divisible by the "
                         f"number of batches ({batches})")
    rng = np.random.default_rng(seed)
    xtr, ytr = load_cifar(source, "train")
    xte, yte = load_cifar(source, "test")
    files = {}
    chosen = pick_balanced(ytr, per_class_train, rng)                 # (10, per_class_train)
    per_batch = per_class_train // batches
    for k in range(batches):
        idx = chosen[:, k * per_batch:(k + 1) * per_batch].ravel()
        idx = idx[rng.permutation(idx.size)]                           # classes interleaved
        files[f"data_batch_{k + 1}.bin"] = records(xtr[idx], ytr[idx])
    idx = pick_balanced(yte, per_class_test, rng).ravel()
    idx = idx[rng.permutation(idx.size)]
    files["test_batch.bin"] = records(xte[idx], yte[idx])
    files["batches.meta.txt"] = ("\n".join(load_class_names(source)) + "\n").encode()
    return files


def write_tar_gz(path: Path, files: dict[str, bytes]) -> bytes:
    """A reproducible .tar.gz (fixed mtime/owner, gzip header without time and name)."""
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(FOLDER)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, MTIME
        tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(f"{FOLDER}/{name}")
            info.size, info.mode, info.mtime = len(data), 0o644, MTIME
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=9, mtime=0) as gz:
        gz.write(tar_bytes.getvalue())
    blob = out.getvalue()
    with atomic_write(path) as f:
        f.write(blob)
    return blob


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", type=Path,
                    default=ROOT.parent / "shared" / "data" / "cifar10-jpeg-binary.tar.gz")
    ap.add_argument("--out", type=Path, default=ROOT / "data" / "cifar10-sample.tar.gz")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-class-train", type=int, default=100)
    ap.add_argument("--per-class-test", type=int, default=50)
    args = ap.parse_args(argv)
    files = build(args.source, args.seed, args.per_class_train, args.per_class_test)
    blob = write_tar_gz(args.out, files)
    print(f"wrote {args.out}: {len(blob)} bytes, sha256 {hashlib.sha256(blob).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
