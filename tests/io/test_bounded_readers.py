"""Every reader refuses a hostile file in bounded time and memory (npsnn.io.limits).

Each hostile file is built in the test (tests/hostile_files.py) and fed to the public
reader in a fresh interpreter under a 1 GiB address-space limit and a timeout
(tests/limited.py), so that a regression fails the test (MemoryError, timeout) instead of
swapping the machine. The checks: the error is a ValueError subclass whose one-line
message names the problem, and it comes fast. Bombs of real size (gigabytes of zeros
deflated) are in the slow set; the default set meets the same checks with declared sizes
that lie and with the limits lowered for the child.
"""

import numpy as np
import pytest

import hostile_files as H
from cifar_files import add_member
from limited import GiB, call_limited
from npsnn.cli import UsageError, config_arg
from npsnn.io import limits
from npsnn.io.limits import LimitError, check_structure, load_json, size_text

PTH, NPZ, CIFAR = "npsnn.io.pth:load_pth", "npsnn.io.files:load_npz", \
    "npsnn.datasets.cifar:load_cifar"


def lower(**values) -> str:
    """Setup code for the child: lower limits of npsnn.io.limits."""
    return "import npsnn.io.limits as L\n" + "".join(f"L.{k} = {v}\n" for k, v in values.items())


def refused(result: dict, error: str, match: str, seconds: float = 5.0) -> None:
    assert not result["ok"], f"accepted: {result}"
    assert "ValueError" in result["bases"], result
    assert result["error"] == error, result
    assert match in result["message"], result["message"]
    assert "\n" not in result["message"]
    assert result["seconds"] < seconds, result


# -- the structure check itself ------------------------------------------------------------
def test_check_structure_counts_shared_parts_without_expanding_them():
    leaf = [1, 2, 3]
    shared = [leaf, leaf, {"a": leaf}]
    assert check_structure(shared, "x") == 1 + 4 + 4 + (1 + 1 + 4)
    dag = []
    for _ in range(90):                     # 2**90 leaves as a tree, 90 lists here
        dag = [dag, dag]
    with pytest.raises(LimitError, match="counting each reference to a shared"):
        check_structure(dag, "the dag")
    loop = []
    loop.append(loop)
    with pytest.raises(LimitError, match="contains itself"):
        check_structure({"k": loop}, "x")
    deep = []
    for _ in range(limits.MAX_DEPTH):
        deep = [deep]
    with pytest.raises(LimitError, match="more than 100 deep"):
        check_structure(deep, "x")
    assert check_structure(deep[0], "x") == limits.MAX_DEPTH


def test_json_limits_are_one_line_value_errors(tmp_path):
    with pytest.raises(LimitError, match="nests JSON more deeply"):
        load_json("[" * 100_000 + "]" * 100_000, "deep")
    with pytest.raises(LimitError, match="more than 100 deep"):
        load_json("[" * 150 + "]" * 150, "deep")
    with pytest.raises(ValueError, match="x is not valid JSON"):
        load_json("{", "x")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(UsageError, match="nests JSON more deeply.*neither a JSON object"):
        config_arg(str(deep))
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (limits.MAX_TEXT_BYTES + 1))
    with pytest.raises(UsageError, match="MAX_TEXT_BYTES"):
        config_arg(str(big))
    assert size_text(3 << 30) == "3.0 GiB" and size_text(812) == "812 bytes"


# -- torch.save files ------------------------------------------------------------------------
def _pth_cases(tmp):
    tensor = H.p_tensor(0, (2,), (1,), 2)
    ones = {"0": np.ones(2, np.float32).tobytes()}
    big = H.zip_pth(tmp / "big.pth", H.p_dict({"w": H.p_tensor(0, (3 << 28,), (1,), 3 << 28)}),
                    ones)
    H.declare_size(big, "my_ckpt/data/0", 3 << 30)
    pkl = H.zip_pth(tmp / "pkl.pth", H.p_dict({"w": tensor}), ones)
    H.declare_size(pkl, "my_ckpt/data.pkl", 300 << 20)
    bomb = H.zip_pth(tmp / "bomb.pth", H.p_dict({"w": H.p_tensor(0, (1 << 21,), (1,), 1 << 21)}),
                     {"0": bytes(8 << 20)}, compress=True)
    return [
        # (name, file, setup, error, message)
        ("legacy DAG (the hang)", H.legacy_pth(H.dag_list(60)), "", "LimitError",
         "counting each reference to a shared list"),
        ("legacy 200,000-deep list", H.legacy_pth(H.deep_list(200_000)), "", "LimitError",
         "nests containers more than 100 deep"),
        ("a tuple DAG as a dict key (hashing it never ends)",
         H.zip_pth(tmp / "k.pth", H.pickle_of(b"}" + H.tuple_dag(60) + b"Ns"), {}), "",
         "LimitError", "builds a tuple of more than 2,000,000 objects"),
        ("zip, cyclic list", H.zip_pth(tmp / "c.pth", H.pickle_of(H.cyclic_list()), {}), "",
         "LimitError", "contains itself"),
        ("BINBYTES8 of 2**40", H.zip_pth(tmp / "b8.pth", H.binbytes8(), {}), "",
         "PickleFormatError", "expected 1099511627776 bytes"),
        ("memo slot 2**32-16", H.zip_pth(tmp / "m.pth", H.memo_bomb(), {}), "", "LimitError",
         "memo slot 4294967280"),
        ("stride-0 tensors, 8 GiB in 10 KB", H.stride0_pth(tmp / "s.pth"), "", "LimitError",
         "MAX_VIEW_EXPANSION"),
        ("one stride-0 tensor of 4 GiB", H.stride0_pth(tmp / "s1.pth", 1, 1 << 30), "",
         "LimitError", "MAX_ARRAY_BYTES"),
        ("storage declaring 3 GiB", big, "", "LimitError", "would take 3.0 GiB"),
        ("data.pkl declaring 300 MiB", pkl, "", "LimitError", "MAX_PICKLE_BYTES"),
        ("deflated storage inflating past the limit", bomb, lower(MAX_ARRAY_BYTES=4 << 20),
         "LimitError", "would take 8.0 MiB"),
        ("too many members", H.zip_pth(tmp / "n.pth", H.p_dict({"w": tensor}),
                                       {str(i): b"" for i in range(20)}),
         lower(MAX_MEMBERS=10), "LimitError", "MAX_MEMBERS"),
    ]


@pytest.mark.parametrize("case", range(12))
def test_hostile_pth_is_refused_in_bounded_time_and_memory(tmp_path, case):
    name, data, setup, error, match = _pth_cases(tmp_path)[case]
    path = data if not isinstance(data, bytes) else tmp_path / "legacy.pth"
    if isinstance(data, bytes):
        path.write_bytes(data)
    assert path.stat().st_size < 500_000, name                          # small files
    refused(call_limited(PTH, str(path), setup=setup), error, match)


# -- .npz files --------------------------------------------------------------------------------
def _npz_cases(tmp):
    declared = H.npz_of(tmp / "d.npz", {"w.npy": H.npy_bytes((4,), data=bytes(32))})
    H.declare_size(declared, "w.npy", 3 << 30)
    return [
        (".npy header of shape (2**40,)", {"w.npy": H.npy_bytes((1 << 40,), data=bytes(8))},
         "", "LimitError", "would take 8.0 TiB"),
        ("header and data disagree", {"w.npy": H.npy_bytes((10,), data=bytes(8))}, "",
         "ValueError", "declares shape (10,) of float64 (80 bytes), but it holds 8 bytes"),
        ("object array", {"w.npy": H.npy_bytes((1,), "|O", b"x" * 8)}, "", "ValueError",
         "Python objects"),
        ("member declaring 3 GiB", declared, "", "LimitError", "would take 3.0 GiB"),
        ("not an array member", {"w.txt": b"hello"}, "", "ValueError", "is not an .npy"),
        ("too many members", {f"m{i}.npy": H.npy_bytes((0,)) for i in range(12)},
         lower(MAX_MEMBERS=10), "LimitError", "MAX_MEMBERS"),
        ("more in all than one file may hold",
         {f"m{i}.npy": H.npy_bytes((100_000,), data=bytes(800_000)) for i in range(3)},
         lower(MAX_TOTAL_BYTES=2 << 20), "LimitError", "MAX_TOTAL_BYTES"),
    ]


@pytest.mark.parametrize("case", range(7))
def test_hostile_npz_is_refused_in_bounded_time_and_memory(tmp_path, case):
    name, members, setup, error, match = _npz_cases(tmp_path)[case]
    path = members if not isinstance(members, dict) else H.npz_of(tmp_path / "x.npz", members)
    refused(call_limited(NPZ, str(path), setup=setup), error, match)


def test_npz_reader_reads_what_save_npz_writes_and_names_a_lone_npy(tmp_path):
    from npsnn.io import load_npz, save_npz
    arrays = {"a": np.arange(6.0).reshape(2, 3), "b": np.array("text"),
              "c": np.zeros((0, 4), np.int8), "d": np.asfortranarray(np.ones((3, 2))),
              "e": np.array(5, np.int64), "f": np.arange(3, dtype=">i4")}
    save_npz(tmp_path / "x.npz", arrays)
    got = load_npz(tmp_path / "x.npz")
    for k, v in arrays.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape
        np.testing.assert_array_equal(got[k], v)
        assert got[k].flags.writeable
    np.save(tmp_path / "one.npy", np.zeros(2))
    with pytest.raises(ValueError, match=r"single \.npy array, not an \.npz"):
        load_npz(tmp_path / "one.npy")


# -- CIFAR archives, folders and python batches ------------------------------------------------
def _cifar_cases(tmp):
    py = tmp / "py"
    (py / "cifar-10-batches-py").mkdir(parents=True)
    batch = H.pickle_of(b"}(" + H.p_str("labels") + H.dag_list(60) + b"u")
    (py / "cifar-10-batches-py" / "test_batch").write_bytes(batch)
    deep = tmp / "deep"
    (deep / "cifar-10-batches-py").mkdir(parents=True)
    (deep / "cifar-10-batches-py" / "test_batch").write_bytes(
        H.pickle_of(b"}(" + H.p_str("labels") + H.deep_list(200_000) + b"u"))
    sparse = tmp / "sparse" / "cifar-10-batches-bin"
    sparse.mkdir(parents=True)
    with open(sparse / "test_batch.bin", "wb") as f:
        f.truncate(2 << 30)                 # a 2 GiB file that takes no disk
    member = "cifar-10-batches-bin/test_batch.bin"
    many = tmp / "many.tar"
    import tarfile
    with tarfile.open(many, "w") as t:
        for i in range(12):
            add_member(t, f"cifar-10-batches-bin/x{i}", b"")
    total = tmp / "total.tar"
    with tarfile.open(total, "w") as t:
        for i in range(3):
            add_member(t, f"junk/x{i}", bytes(800_000))
    (tmp / "text.tar.gz").write_text("not an archive at all\n")
    return [
        ("python batch with shared sub-lists (945 bytes)", py, "", "LimitError",
         "counting each reference to a shared list"),
        ("python batch 200,000 deep", deep, "", "LimitError", "more than 100 deep"),
        ("2 GiB batch file in a folder", sparse.parent, "", "LimitError", "is 2.0 GiB"),
        ("tar member declaring 3 GiB", H.tar_lying(tmp / "m.tgz", member, 3 << 30), "",
         "LimitError", "would take 3.0 GiB"),
        ("tar pax header declaring 2 GiB", H.tar_lying(tmp / "p.tgz", "pax", 2 << 30,
                                                       kind=b"x"), "", "LimitError",
         "MAX_METADATA_BYTES"),
        ("tar GNU long name of 2 GiB", H.tar_lying(tmp / "l.tgz", "././@LongLink", 2 << 30,
                                                   kind=b"L"), "", "LimitError",
         "MAX_METADATA_BYTES"),
        ("old GNU sparse member", H.tar_lying(tmp / "s.tgz", member, 100, kind=b"S"), "",
         "ValueError", "sparse"),
        ("too many members", many, lower(MAX_MEMBERS=10), "LimitError", "MAX_MEMBERS"),
        ("more data in all than allowed", total, lower(MAX_TOTAL_BYTES=2 << 20), "LimitError",
         "MAX_TOTAL_BYTES"),
        ("not a tar archive", tmp / "text.tar.gz", "", "ValueError", "not a tar archive"),
    ]


@pytest.mark.parametrize("case", range(10))
def test_hostile_cifar_is_refused_in_bounded_time_and_memory(tmp_path, case):
    name, path, setup, error, match = _cifar_cases(tmp_path)[case]
    refused(call_limited(CIFAR, str(path), "test", setup=setup), error, match)


# -- real bombs (slow): gigabytes of zeros, deflated ------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["npz", "pth", "tar"])
def test_real_deflate_bombs_are_refused_before_inflating(tmp_path, kind):
    """2-3 GiB of zeros in 2-9 MB files, read under a 1 GiB address-space limit."""
    if kind == "npz":
        path = H.deflate_bomb(tmp_path / "b.npz", "w.npy", 2 << 30, npy_shape=(2 << 27,))
        target, args, match = NPZ, [str(path)], "would take 2.0 GiB"
    elif kind == "pth":
        numel = 3 << 28
        path = H.deflate_bomb(tmp_path / "b.pth", "my_ckpt/data/0", 3 << 30)
        import zipfile
        with zipfile.ZipFile(path, "a") as z:
            z.writestr("my_ckpt/data.pkl",
                       H.p_dict({"w": H.p_tensor(0, (numel,), (1,), numel)}))
        target, args, match = PTH, [str(path)], "would take 3.0 GiB"
    else:
        path = tmp_path / "b.tar.gz"
        H.gzip_bomb_tar(path, "cifar-10-batches-bin/test_batch.bin", 3 << 30)
        target, args, match = CIFAR, [str(path), "test"], "would take 3.0 GiB"
    assert path.stat().st_size < 10 << 20
    refused(call_limited(target, *args, memory=GiB, timeout=120), "LimitError", match)
