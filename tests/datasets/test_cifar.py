"""CIFAR loaders (npsnn.datasets.cifar, cifar_batches): the four official formats,
archived or extracted; safety; clear errors; the bundled sample; the real (JPEG-derived)
CIFAR-10 copy when ../shared is present."""
import hashlib
import os
import pickle
import re
import subprocess
import sys
import tarfile
import time

import numpy as np
import pytest

from cifar_files import (FOLDERS, add_member, class_names, encode_batch, make_split, make_tar,
                         py2_pickle, write_dataset)
from conftest import ROOT, need_cifar
from npsnn.datasets import cifar, load_cifar, load_class_names
from npsnn.io.safe_pickle import UnsafePickleError

SAMPLE = ROOT / "data" / "cifar10-sample.tar.gz"
FORMATS = list(FOLDERS)                       # (dataset, fmt) x 4


def _same(a, b):
    return a[0].shape == b[0].shape and np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


# --------------------------------------------------------------------------------------
# the four formats, every way of passing them
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("dataset,fmt", FORMATS)
def test_all_formats_archived_and_extracted_load_identically(tmp_path, dataset, fmt):
    exp = write_dataset(tmp_path / "src", dataset, fmt, n_train=6, n_test=5, seed=3)
    folder = exp["folder"]
    ways = {
        "dataset folder": folder,
        "parent folder": folder.parent,
        ".tar.gz": make_tar(folder, tmp_path / "a.tar.gz", "w:gz"),
        ".tgz": make_tar(folder, tmp_path / "a.tgz", "w:gz"),
        ".tar": make_tar(folder, tmp_path / "a.tar", "w"),
    }
    for split in ("train", "test"):
        for how, path in ways.items():
            images, labels = load_cifar(path, split)
            assert images.dtype == np.uint8 and labels.dtype == np.int64, how
            assert images.flags.c_contiguous and images.flags.writeable, how
            assert images.shape[1:] == (3, 32, 32), how
            assert _same((images, labels), exp[split]), (how, split)
    n_train = 5 * 6 if dataset == "cifar10" else 6
    assert load_cifar(folder, "train")[0].shape[0] == n_train
    for how, path in ways.items():
        assert load_class_names(path) == class_names(dataset), how
    if dataset == "cifar100":
        for how, path in ways.items():
            _, coarse = load_cifar(path, "test", label="coarse")
            assert np.array_equal(coarse, exp["test_coarse"]), how
            assert np.array_equal(coarse, exp["test"][1] // 5), how
        assert load_class_names(folder, label="coarse") == class_names(dataset, "coarse")


def test_python_and_binary_batches_of_the_same_images_agree(tmp_path):
    a = write_dataset(tmp_path / "py", "cifar10", "python", seed=1)["folder"]
    b = write_dataset(tmp_path / "bin", "cifar10", "binary", seed=1)["folder"]
    for split in ("train", "test"):
        assert _same(load_cifar(a, split), load_cifar(b, split))


def test_both_formats_side_by_side_prefer_binary(tmp_path):
    binary = write_dataset(tmp_path, "cifar10", "binary", n_train=2, n_test=3, seed=1)
    write_dataset(tmp_path, "cifar10", "python", n_train=2, n_test=3, seed=2)
    assert _same(load_cifar(tmp_path, "test"), binary["test"])


def test_python3_numpy2_pickles_load_too(tmp_path):
    """Batches re-saved on Python 3 / NumPy 2 (numpy._core globals, bytes) also load."""
    exp = write_dataset(tmp_path, "cifar10", "python", n_train=4, n_test=3)
    folder = exp["folder"]
    images, labels = exp["test"]
    batch = {b"batch_label": b"x", b"labels": [int(v) for v in labels],
             b"data": images.reshape(len(images), -1)}
    (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=4))
    assert _same(load_cifar(folder, "test"), exp["test"])


def test_member_order_and_wrapper_folder_in_archive_do_not_matter(tmp_path):
    exp = write_dataset(tmp_path / "src", "cifar10", "binary", n_train=3, n_test=2)
    folder = exp["folder"]
    names = sorted(p.name for p in folder.iterdir())[::-1]       # reversed member order
    path = tmp_path / "odd.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for n in names:
            add_member(tar, f"./wrapper/cifar-10-batches-bin/{n}", (folder / n).read_bytes())
    assert _same(load_cifar(path, "train"), exp["train"])


def test_real_pixel_layout_is_rgb_planes(tmp_path):
    """Record bytes 1..1024 are the red plane, row-major: image[0, 0, 1] is byte 2."""
    rec = np.zeros(3073, np.uint8)
    rec[0] = 7
    rec[1 + 1] = 200                        # red, row 0, column 1
    rec[1 + 1024 + 32] = 100                # green, row 1, column 0
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    (folder / "test_batch.bin").write_bytes(rec.tobytes())
    images, labels = load_cifar(folder, "test")
    assert labels.tolist() == [7]
    assert images[0, 0, 0, 1] == 200 and images[0, 1, 1, 0] == 100 and images.sum() == 300


# --------------------------------------------------------------------------------------
# safety
# --------------------------------------------------------------------------------------

class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("archived", [False, True])
def test_malicious_pickle_is_refused_and_never_executed(tmp_path, archived):
    exp = write_dataset(tmp_path / "src", "cifar10", "python", n_train=2, n_test=2)
    folder = exp["folder"]
    marker = tmp_path / "pwned"
    (folder / "data_batch_2").write_bytes(pickle.dumps({"data": _Evil(marker)}, protocol=2))
    path = make_tar(folder, tmp_path / "evil.tar.gz") if archived else folder
    with pytest.raises(UnsafePickleError, match=r"data_batch_2.*posix\.system|"
                                                r"data_batch_2.*os\.system"):
        load_cifar(path, "train")
    assert not marker.exists()
    assert _same(load_cifar(path, "test"), exp["test"])          # other split unaffected


def test_pickle_with_object_dtype_is_refused(tmp_path):
    exp = write_dataset(tmp_path, "cifar10", "python", n_train=2, n_test=2)
    raw = encode_batch(*make_split(np.random.default_rng(0), 2, "cifar10"), "cifar10", "python")
    raw = raw.replace(b"U\x02u1", b"U\x02O8")                    # dtype('u1') -> dtype('O8')
    (exp["folder"] / "test_batch").write_bytes(raw)
    with pytest.raises(UnsafePickleError, match="only plain numeric dtypes"):
        load_cifar(exp["folder"], "test")


def test_archive_links_are_never_followed(tmp_path):
    exp = write_dataset(tmp_path / "src", "cifar10", "binary", n_train=2, n_test=2)
    folder = exp["folder"]
    outside = tmp_path / "outside.bin"
    outside.write_bytes((folder / "test_batch.bin").read_bytes())
    path = tmp_path / "links.tar"
    with tarfile.open(path, "w") as tar:
        for p in sorted(folder.iterdir()):
            if p.name != "test_batch.bin":
                add_member(tar, f"cifar-10-batches-bin/{p.name}", p.read_bytes())
        link = tarfile.TarInfo("cifar-10-batches-bin/test_batch.bin")
        link.type, link.linkname = tarfile.SYMTYPE, str(outside)
        tar.addfile(link)
    with pytest.raises(ValueError, match="is a link .*never follows links"):
        load_cifar(path, "test")
    assert load_cifar(path, "train")[0].shape[0] == 10


def test_upward_member_paths_are_ignored(tmp_path):
    exp = write_dataset(tmp_path / "src", "cifar10", "binary", n_train=2, n_test=2)
    path = tmp_path / "up.tar"
    with tarfile.open(path, "w") as tar:
        for p in sorted(exp["folder"].iterdir()):
            add_member(tar, f"../cifar-10-batches-bin/{p.name}", p.read_bytes())
    with pytest.raises(ValueError, match="no CIFAR data found"):
        load_cifar(path, "test")


# --------------------------------------------------------------------------------------
# structural errors, each with its message
# --------------------------------------------------------------------------------------

def test_bad_arguments(tmp_path):
    folder = write_dataset(tmp_path, "cifar10", "binary", n_train=2, n_test=2)["folder"]
    with pytest.raises(ValueError, match="load_cifar expected split .*'test', 'train'.*'val'"):
        load_cifar(folder, "val")
    with pytest.raises(ValueError, match="load_cifar expected label"):
        load_cifar(folder, "test", label="medium")
    with pytest.raises(ValueError, match="is CIFAR-10, which has no coarse labels"):
        load_cifar(folder, "test", label="coarse")
    with pytest.raises(ValueError, match="no coarse labels"):
        load_class_names(folder, label="coarse")


def test_binary_file_size_not_a_multiple_of_the_record(tmp_path):
    folder = write_dataset(tmp_path, "cifar10", "binary", n_train=2, n_test=3)["folder"]
    f = folder / "test_batch.bin"
    f.write_bytes(f.read_bytes()[:-10])
    with pytest.raises(ValueError, match=r"test_batch\.bin has 9209 bytes, which is not a "
                                         r"positive multiple of the 3073-byte record"):
        load_cifar(folder, "test")
    f.write_bytes(b"")
    with pytest.raises(ValueError, match="has 0 bytes"):
        load_cifar(folder, "test")


def test_cifar100_binary_record_is_3074_bytes(tmp_path):
    folder = write_dataset(tmp_path, "cifar100", "binary", n_train=2, n_test=3)["folder"]
    f = folder / "test.bin"
    f.write_bytes(f.read_bytes()[:3 * 3073])               # CIFAR-10 sized records
    with pytest.raises(ValueError, match="3074-byte record of CIFAR-100 binary"):
        load_cifar(folder, "test")


@pytest.mark.parametrize("dataset,offset,value,match", [
    ("cifar10", 0, 10, "record 1 has label 10, outside 0..9"),
    ("cifar100", 0, 20, "record 1 has coarse label 20, outside 0..19"),
    ("cifar100", 1, 100, "record 1 has fine label 100, outside 0..99"),
])
def test_binary_label_out_of_range(tmp_path, dataset, offset, value, match):
    folder = write_dataset(tmp_path, dataset, "binary", n_train=2, n_test=3)["folder"]
    name = "test_batch.bin" if dataset == "cifar10" else "test.bin"
    raw = bytearray((folder / name).read_bytes())
    rec = 3073 if dataset == "cifar10" else 3074
    raw[rec + offset] = value                              # record 1
    (folder / name).write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=match):
        load_cifar(folder, "test")


def test_python_label_out_of_range(tmp_path):
    folder = write_dataset(tmp_path, "cifar10", "python", n_train=2, n_test=3)["folder"]
    images, labels, _ = make_split(np.random.default_rng(0), 3, "cifar10")
    labels[2] = 12
    (folder / "test_batch").write_bytes(encode_batch(images, labels, None, "cifar10", "python"))
    with pytest.raises(ValueError, match="test_batch: record 2 has label 12, outside 0..9"):
        load_cifar(folder, "test")


def test_truncated_pickle(tmp_path):
    folder = write_dataset(tmp_path, "cifar10", "python", n_train=2, n_test=3)["folder"]
    f = folder / "data_batch_4"
    f.write_bytes(f.read_bytes()[:5000])
    with pytest.raises(ValueError, match="data_batch_4 is not a readable CIFAR python batch.*"
                                         "truncated or corrupt"):
        load_cifar(folder, "train")


def test_truncated_archive(tmp_path):
    folder = write_dataset(tmp_path / "src", "cifar10", "binary", n_train=20, n_test=20)["folder"]
    full = make_tar(folder, tmp_path / "full.tar.gz").read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(full[:len(full) // 2])
    with pytest.raises(ValueError, match="could not read the archive .*cut.tar.gz.*truncated"):
        load_cifar(cut, "test")


@pytest.mark.parametrize("dataset,fmt,victim", [
    ("cifar10", "python", "data_batch_3"), ("cifar10", "binary", "data_batch_3.bin"),
    ("cifar100", "python", "train"), ("cifar100", "binary", "train.bin")])
def test_missing_batch(tmp_path, dataset, fmt, victim):
    folder = write_dataset(tmp_path / "src", dataset, fmt, n_train=2, n_test=2)["folder"]
    (folder / victim).unlink()
    archive = make_tar(folder, tmp_path / "a.tar.gz")
    for path in (folder, archive):
        with pytest.raises(ValueError, match=rf"incomplete: {re.escape(victim)} missing"):
            load_cifar(path, "train")
        load_cifar(path, "test")                                  # the other split still loads


@pytest.mark.parametrize("shape,dtype", [((3, 3071), np.uint8), ((3, 3, 32, 32), np.uint8),
                                         ((3, 3072), np.int64)])
def test_wrong_array_in_pickle(tmp_path, shape, dtype):
    folder = write_dataset(tmp_path, "cifar10", "python", n_train=2, n_test=3)["folder"]
    batch = {"labels": [0, 1, 2], "data": np.zeros(shape, dtype)}
    (folder / "test_batch").write_bytes(py2_pickle(batch))
    with pytest.raises(ValueError, match=r"test_batch: 'data' must be a uint8 array of shape "
                                         r"\(N, 3072\), got a .*" + re.escape(str(shape))):
        load_cifar(folder, "test")


def test_wrong_labels_or_keys_in_pickle(tmp_path):
    folder = write_dataset(tmp_path, "cifar10", "python", n_train=2, n_test=3)["folder"]
    data = np.zeros((3, 3072), np.uint8)
    (folder / "test_batch").write_bytes(py2_pickle({"labels": [0, 1], "data": data}))
    with pytest.raises(ValueError, match="'labels' must be 3 integers .* got a list of 2"):
        load_cifar(folder, "test")
    (folder / "test_batch").write_bytes(py2_pickle({"fine_labels": [0, 1, 2], "data": data}))
    with pytest.raises(ValueError, match=r"has no \['labels'\] entry"):
        load_cifar(folder, "test")
    (folder / "test_batch").write_bytes(py2_pickle([1, 2, 3]))
    with pytest.raises(ValueError, match="holds a list, not the dict"):
        load_cifar(folder, "test")


def test_no_cifar_at_path(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"no CIFAR data found at .*Looked for") as info:
        load_cifar(tmp_path, "train")
    for folder in FOLDERS.values():
        assert f"{folder}/" in str(info.value)
    assert "Found: notes.txt" in str(info.value)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_cifar(tmp_path / "nope", "train")
    with pytest.raises(ValueError, match="not a tar archive"):
        load_cifar(tmp_path / "notes.txt", "train")


def test_cifar10_and_cifar100_side_by_side_is_ambiguous(tmp_path):
    exp = write_dataset(tmp_path, "cifar10", "binary", n_train=2, n_test=2)
    write_dataset(tmp_path, "cifar100", "python", n_train=2, n_test=2)
    with pytest.raises(ValueError, match="holds both CIFAR-10 and CIFAR-100"):
        load_cifar(tmp_path, "test")
    assert _same(load_cifar(exp["folder"], "test"), exp["test"])


# --------------------------------------------------------------------------------------
# the bundled sample and the real data
# --------------------------------------------------------------------------------------

def test_bundled_sample_loads_balanced():
    assert SAMPLE.stat().st_size <= 4.5e6
    for split, n in (("train", 1000), ("test", 500)):
        images, labels = load_cifar(SAMPLE, split)
        assert images.shape == (n, 3, 32, 32) and images.dtype == np.uint8
        assert np.bincount(labels, minlength=10).tolist() == [n // 10] * 10
        assert images.std() > 40                     # real pictures, not blank records
    assert load_class_names(SAMPLE)[:3] == ["airplane", "automobile", "bird"]
    assert cifar.sample_path() == SAMPLE


def test_reachable_after_a_plain_import_npsnn():
    """``import npsnn; npsnn.datasets.load_cifar(...)`` with no ``import npsnn.datasets``."""
    code = ("import npsnn\n"
            "images, labels = npsnn.datasets.load_cifar(npsnn.datasets.sample_path(), 'test')\n"
            "source = npsnn.datasets.open_source('cifar', npsnn.datasets.sample_path())\n"
            "from npsnn.datasets.cifar import load_cifar\n"
            "assert npsnn.datasets.load_cifar is load_cifar\n"
            "print(images.shape, labels.shape, source.num_classes, npsnn.io.load_state.__name__)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["(500,", "3,", "32,", "32)", "(500,)", "10", "load_state"]


def test_bundled_sample_matches_its_readme():
    readme = (ROOT / "data" / "README.md").read_text()
    digest = hashlib.sha256(SAMPLE.read_bytes()).hexdigest()
    assert f"sha256: `{digest}`" in readme
    assert f"{SAMPLE.stat().st_size:,} bytes" in readme


def test_real_cifar10_copy():
    path = need_cifar()
    t0 = time.perf_counter()
    images, labels = load_cifar(path, "train")
    seconds = time.perf_counter() - t0
    assert images.shape == (50000, 3, 32, 32) and labels.shape == (50000,)
    assert np.bincount(labels).tolist() == [5000] * 10
    assert seconds < 30, f"loading the train split took {seconds:.1f} s (vectorised: ~2 s)"
    del images
    images, labels = load_cifar(path, "test")
    assert images.shape == (10000, 3, 32, 32) and labels.min() == 0 and labels.max() == 9
    mean = images.mean(axis=(0, 2, 3)) / 255
    np.testing.assert_allclose(mean, [0.494, 0.485, 0.450], atol=1e-3)
    assert load_class_names(path)[-1] == "truck"


@pytest.mark.slow
def test_make_sample_reproduces_the_bundled_sample(tmp_path):
    need_cifar()
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_sample", ROOT / "data" / "make_sample.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "again.tar.gz"
    assert module.main(["--source", str(need_cifar()), "--out", str(out)]) == 0
    assert out.read_bytes() == SAMPLE.read_bytes()
