"""The attack campaign of issue 14: many hostile or broken inputs per class, each run in a
child process under a memory and a time limit, and a count of how many were handled.

    nice -n 19 python tests/attack.py                 # every class (about 10-20 minutes)
    nice -n 19 python tests/attack.py --classes 1,2   # some classes
    nice -n 19 python tests/attack.py --full          # plus real multi-GiB deflate bombs,
                                                      # kill -9 at every crash point
    python tests/attack.py --list                     # the cases, without running them

What "handled" means, and the runner, are in tests/attack_kit.py. Every case builds its
input itself (tests/hostile_files.py) in a fresh temporary folder. The slow test
tests/test_attack_campaign.py runs the campaign and requires every case handled.

Classes (issue 14): 1 hangs, 2 memory bombs, 3 crash safety, 4 run-folder lock, 5 NaN/inf,
6 raw tracebacks, 7 silent nonsense, 8 golden files, 9 golden scale, 10 thread report.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402

import hostile_files as H  # noqa: E402
import train_runs as R  # noqa: E402
from attack_kit import (CASES, CIFAR, CONVERT, NPZ, PTH, GiB, api_refuses, case,  # noqa: E402
                        checkpoint_with, cifar, cifar_py_batch, cli_refuses, convert_refuses,
                        python_ok, run_campaign, table, tiny_run, write)
from limited import run_limited  # noqa: E402


TRAIN = ["python", "-m", "npsnn", "train"]
EVAL = ["python", "-m", "npsnn", "eval"]
SLIM = ["python", "-m", "npsnn", "slim"]
QUICK = ["python", "-m", "npsnn", "quickstart", "--no-progress"]
TINY_JSON = json.dumps(R.TINY)


def train_cmd(tmp, *extra, data=None):
    return TRAIN + ["--config", TINY_JSON, "--data", data or cifar(tmp), "--out", tmp / "r",
                    "--no-progress", "--epochs", "1", "--batch", "16", "--T", "2",
                    *map(str, extra)]


# == 1. hangs: shared structure (a DAG) walked as a tree ====================================
def _namespace_with(opcodes):
    return (b"cargparse\nNamespace\n)\x81}" + H.p_str("x") + opcodes + b"sb")


HANG_PICKLES = {
    "a list DAG": H.dag_list(60),
    "a tuple DAG": H.tuple_dag(60),
    "a list DAG as a dict value": b"}" + H.p_str("w") + H.dag_list(60) + b"s",
    "a tuple DAG as a dict key": b"}" + H.tuple_dag(60) + b"Ns",
    "a DAG inside an argparse Namespace": _namespace_with(H.dag_list(60)),
    "a list that contains itself": H.cyclic_list(),
}
for _label, _ops in HANG_PICKLES.items():
    case(1, f"legacy .pth holding {_label}")(
        lambda tmp, o=_ops: api_refuses(PTH, str(write(tmp / "x.pth", H.legacy_pth(o)))))
    case(1, f"zip .pth holding {_label}")(
        lambda tmp, o=_ops: api_refuses(PTH, str(H.zip_pth(tmp / "x.pth", H.pickle_of(o), {}))))
    case(1, f"CIFAR python batch holding {_label}")(
        lambda tmp, o=_ops: api_refuses(CIFAR, str(cifar_py_batch(tmp, o)), "test"))


@case(1, "a DAG in a storage's persistent id (the error message must not expand it)")
def _(tmp):
    pkl = H.pickle_of(b"(" + H.p_str("storage") + H.dag_list(60) + b"tQ")
    return api_refuses(PTH, str(H.zip_pth(tmp / "x.pth", pkl, {})))


@case(1, "a DAG as a tensor's size (the error message must not expand it)")
def _(tmp):
    pid = H.p_tuple([H.p_str("storage"), b"ctorch\nFloatStorage\n", H.p_str("0"),
                     H.p_str("cpu"), H.p_int(1)]) + b"Q"
    pkl = H.pickle_of(b"}" + H.p_str("w") + b"ctorch._utils\n_rebuild_tensor_v2\n(" + pid
                      + H.p_int(0) + H.dag_list(60) + b")\x89}tRs")
    return api_refuses(PTH, str(H.zip_pth(tmp / "x.pth", pkl, {"0": bytes(4)})))


@case(1, "CIFAR batches.meta holding a DAG (load_class_names)")
def _(tmp):
    write(tmp / "py" / "cifar-10-batches-py" / "batches.meta",
          H.pickle_of(b"}(" + H.p_str("label_names") + H.dag_list(60) + b"u"))
    return api_refuses("npsnn.datasets.cifar:load_class_names", str(tmp / "py"))


@case(1, "convert-pth of the legacy DAG (the issue's hang)")
def _(tmp):
    return convert_refuses(tmp, H.legacy_pth(H.dag_list(60)), "counting each reference")


@case(1, "train --data with a DAG python batch")
def _(tmp):
    return cli_refuses(train_cmd(tmp, data=cifar_py_batch(tmp, H.dag_list(60))),
                       match="counting each reference", absent=[tmp / "r"])


@case(1, "a pickle of a million MARKs")
def _(tmp):
    return api_refuses(PTH, str(H.zip_pth(tmp / "x.pth", b"\x80\x02" + b"(" * 1_000_000 + b".",
                                          {})))


@case(1, "a pickle that never STOPs")
def _(tmp):
    return api_refuses(PTH, str(H.zip_pth(tmp / "x.pth", b"\x80\x02" + b"N0" * 500_000, {})))


# == 2. memory bombs from small files ==========================================================
def _pth(tmp, pkl, storages=None, **kw):
    return H.zip_pth(tmp / "x.pth", pkl, storages or {}, **kw)


BOMBS_PTH = {
    "128 stride-0 tensors of 64 MiB over one float": lambda t: H.stride0_pth(t / "x.pth"),
    "one stride-0 tensor of 4 GiB": lambda t: H.stride0_pth(t / "x.pth", 1, 1 << 30),
    "BINBYTES8 declaring 2**40 bytes": lambda t: _pth(t, H.binbytes8()),
    "BINUNICODE8 declaring 2**40 bytes": lambda t: _pth(
        t, b"\x80\x04\x8d" + (1 << 40).to_bytes(8, "little") + b"abc."),
    "BYTEARRAY8 declaring 2**40 bytes": lambda t: _pth(
        t, b"\x80\x05\x96" + (1 << 40).to_bytes(8, "little") + b"abc."),
    "BINSTRING declaring 2 GiB": lambda t: _pth(
        t, b"\x80\x02T" + (2 ** 31 - 1).to_bytes(4, "little") + b"abc."),
    "FRAME declaring 2**40 bytes": lambda t: _pth(
        t, b"\x80\x04\x95" + (1 << 40).to_bytes(8, "little") + b"N."),
    "LONG_BINPUT into memo slot 2**32-16": lambda t: _pth(t, H.memo_bomb()),
    "a 200,000-deep list": lambda t: _pth(t, H.pickle_of(H.deep_list(200_000))),
    "legacy: a 200,000-deep list": lambda t: write(t / "x.pth",
                                                   H.legacy_pth(H.deep_list(200_000))),
    "legacy: a storage of 2**60 elements": lambda t: write(t / "x.pth", H.legacy_pth(
        b"}" + H.p_str("w") + b"ctorch._utils\n_rebuild_tensor_v2\n(" + H.p_tuple(
            [H.p_str("storage"), b"ctorch\nFloatStorage\n", H.p_str("0"), H.p_str("cpu"),
             b"\x8a\x08" + (1 << 60).to_bytes(8, "little"), b"N"]) + b"Q"
        + H.p_int(0) + H.p_tuple([H.p_int(1)]) + H.p_tuple([H.p_int(1)]) + b"\x89}tRs",
        b"]" + H.p_str("0") + b"a", (1 << 60).to_bytes(8, "little"))),
}
for _label, _make in BOMBS_PTH.items():
    case(2, f".pth: {_label}")(lambda tmp, m=_make: api_refuses(PTH, str(m(tmp))))


@case(2, ".pth: a storage member that declares 3 GiB")
def _(tmp):
    n = 3 << 28
    path = _pth(tmp, H.p_dict({"w": H.p_tensor(0, (n,), (1,), n)}), {"0": bytes(8)})
    return api_refuses(PTH, str(H.declare_size(path, "my_ckpt/data/0", 3 << 30)),
                       match="3.0 GiB")


@case(2, ".pth: data.pkl declaring 300 MiB")
def _(tmp):
    path = _pth(tmp, H.p_dict({}))
    return api_refuses(PTH, str(H.declare_size(path, "my_ckpt/data.pkl", 300 << 20)))


@case(2, ".pth: a deflated storage inflating past the limit (limit lowered to 4 MiB)")
def _(tmp):
    path = _pth(tmp, H.p_dict({"w": H.p_tensor(0, (1 << 21,), (1,), 1 << 21)}),
                {"0": bytes(8 << 20)}, compress=True)
    return api_refuses(PTH, str(path), setup="import npsnn.io.limits as L\n"
                                              "L.MAX_ARRAY_BYTES = 4 << 20\n")


@case(2, "convert-pth of 8 GiB of stride-0 tensors in 10 KB")
def _(tmp):
    return convert_refuses(tmp, H.stride0_pth(tmp / "s.pth"), "MAX_VIEW_EXPANSION")


NPZ_BOMBS = {
    ".npy header of shape (2**40,)": {"w.npy": H.npy_bytes((1 << 40,), data=bytes(8))},
    ".npy header of shape (2**31, 2**31, 2**31)": {
        "w.npy": H.npy_bytes((2 ** 31,) * 3, data=bytes(8))},
    ".npy header and data disagree": {"w.npy": H.npy_bytes((10,), data=bytes(8))},
    "an object array": {"w.npy": H.npy_bytes((1,), "|O", b"x" * 8)},
    "a 10 MB header": {"w.npy": b"\x93NUMPY\x02\x00" + (10 << 20).to_bytes(4, "little")
                       + b" " * 64},
}
for _label, _members in NPZ_BOMBS.items():
    case(2, f".npz: {_label}")(
        lambda tmp, m=_members: api_refuses(NPZ, str(H.npz_of(tmp / "x.npz", m))))


@case(2, ".npz: a member that declares 3 GiB")
def _(tmp):
    path = H.npz_of(tmp / "x.npz", {"w.npy": H.npy_bytes((4,), data=bytes(32))})
    return api_refuses(NPZ, str(H.declare_size(path, "w.npy", 3 << 30)), match="3.0 GiB")


@case(2, ".npz: a deflated member inflating past the limit (limit lowered to 4 MiB)")
def _(tmp):
    path = H.deflate_bomb(tmp / "x.npz", "w.npy", 8 << 20, npy_shape=(1 << 20,))
    return api_refuses(NPZ, str(path), setup="import npsnn.io.limits as L\n"
                                              "L.MAX_ARRAY_BYTES = 4 << 20\n")


@case(2, ".npz: 12 members, limit lowered to 10")
def _(tmp):
    path = H.npz_of(tmp / "x.npz", {f"m{i}.npy": H.npy_bytes((0,)) for i in range(12)})
    return api_refuses(NPZ, str(path), setup="import npsnn.io.limits as L\nL.MAX_MEMBERS = 10\n")


@case(2, "eval --checkpoint of an .npz with a (2**40,) header")
def _(tmp):
    path = H.npz_of(tmp / "c.npz", {"w.npy": H.npy_bytes((1 << 40,), data=bytes(8))})
    return cli_refuses(EVAL + ["--checkpoint", path, "--data", cifar(tmp)], match="8.0 TiB")


MEMBER = "cifar-10-batches-bin/test_batch.bin"
TAR_BOMBS = {
    "a member that declares 3 GiB": lambda t: H.tar_lying(t / "x.tgz", MEMBER, 3 << 30),
    "a member that declares 16 TiB (base-256 size)": lambda t: H.tar_lying(
        t / "x.tgz", MEMBER, 16 << 40),
    "a pax header of 2 GiB": lambda t: H.tar_lying(t / "x.tgz", "pax", 2 << 30, kind=b"x"),
    "a global pax header of 2 GiB": lambda t: H.tar_lying(t / "x.tgz", "g", 2 << 30, kind=b"g"),
    "a GNU long name of 2 GiB": lambda t: H.tar_lying(t / "x.tgz", "././@LongLink", 2 << 30,
                                                      kind=b"L"),
    "a GNU long link of 2 GiB": lambda t: H.tar_lying(t / "x.tgz", "././@LongLink", 2 << 30,
                                                      kind=b"K"),
    "an old GNU sparse member": lambda t: H.tar_lying(t / "x.tgz", MEMBER, 100, kind=b"S"),
    "an uncompressed member that declares 3 GiB": lambda t: H.tar_lying(
        t / "x.tar", MEMBER, 3 << 30, gz=False),
}
for _label, _make in TAR_BOMBS.items():
    case(2, f"CIFAR .tar.gz: {_label}")(
        lambda tmp, m=_make: api_refuses(CIFAR, str(m(tmp)), "test"))


@case(2, "CIFAR folder: a 2 GiB (sparse) batch file")
def _(tmp):
    d = tmp / "c" / "cifar-10-batches-bin"
    d.mkdir(parents=True)
    with open(d / "test_batch.bin", "wb") as f:
        f.truncate(2 << 30)
    return api_refuses(CIFAR, str(tmp / "c"), "test", match="2.0 GiB")


@case(2, "CIFAR python batch: an ndarray declaring shape (2**40,)")
def _(tmp):
    ops = (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R"
           b"(K\x01J\x00\x00\x00\x01\x85cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R"
           b"(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89U\x03abctb")
    return api_refuses(CIFAR, str(cifar_py_batch(tmp, ops)), "test")


@case(2, "CIFAR python batch: a 200,000-deep list")
def _(tmp):
    return api_refuses(CIFAR, str(cifar_py_batch(tmp, H.deep_list(200_000))), "test")


@case(2, "train --data with a tar member that declares 3 GiB")
def _(tmp):
    return cli_refuses(train_cmd(tmp, data=H.tar_lying(tmp / "x.tgz", MEMBER, 3 << 30)),
                       match="3.0 GiB", absent=[tmp / "r"])


@case(2, "train --config: a 200,000-deep JSON file")
def _(tmp):
    path = write(tmp / "c.json", b"[" * 200_000 + b"]" * 200_000)
    return cli_refuses(TRAIN + ["--config", path, "--data", cifar(tmp), "--out", tmp / "r"],
                       match="nests JSON", absent=[tmp / "r"])


@case(2, "train --config: a 20 MB JSON file")
def _(tmp):
    path = write(tmp / "c.json", b'{"x": "' + b"a" * (20 << 20) + b'"}')
    return cli_refuses(TRAIN + ["--config", path, "--data", cifar(tmp), "--out", tmp / "r"],
                       match="MAX_TEXT_BYTES", absent=[tmp / "r"])


@case(2, "eval of a checkpoint whose config entry is 200,000-deep JSON")
def _(tmp):
    path = checkpoint_with(tmp, config=np.array("[" * 200_000 + "]" * 200_000))
    return cli_refuses(EVAL + ["--checkpoint", path], match="nests JSON")


@case(2, "download from a server that never stops (limit lowered to 3 MiB)")
def _(tmp):
    setup = ("import npsnn.io.limits as L, importlib\n"
             "L.MAX_FILE_BYTES = 3 << 20\n"
             "d = importlib.import_module('npsnn.datasets.download')\n"
             "class Endless:\n"
             "    headers = {}\n"
             "    def read(self, n): return bytes(n)\n"
             "    def __enter__(self): return self\n"
             "    def __exit__(self, *a): return False\n"
             "d._resolve = lambda host, timeout: None\n"
             "d._urlopen = lambda url, timeout: Endless()\n")
    problem = api_refuses("npsnn.datasets.download:download", "cifar10", str(tmp / "d"),
                          setup=setup, match="MAX_FILE_BYTES")
    left = list((tmp / "d").iterdir()) if (tmp / "d").exists() else []
    return problem or (f"left {left}" if left else None)


@case(2, "real: a 2 GiB .npz member deflated to 2 MB, under a 1 GiB limit", full_only=True)
def _(tmp):
    path = H.deflate_bomb(tmp / "x.npz", "w.npy", 2 << 30, npy_shape=(2 << 27,))
    return api_refuses(NPZ, str(path), timeout=300)


@case(2, "real: a 3 GiB .pth storage deflated to 3 MB, under a 1 GiB limit", full_only=True)
def _(tmp):
    import zipfile
    n = 3 << 28
    path = H.deflate_bomb(tmp / "x.pth", "my_ckpt/data/0", 3 << 30)
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("my_ckpt/data.pkl", H.p_dict({"w": H.p_tensor(0, (n,), (1,), n)}))
    return api_refuses(PTH, str(path), timeout=300)


@case(2, "real: a 3 GiB CIFAR member gzipped to 3 MB, under a 1 GiB limit", full_only=True)
def _(tmp):
    path = H.gzip_bomb_tar(tmp / "x.tgz", MEMBER, 3 << 30)
    return api_refuses(CIFAR, str(path), "test", timeout=300)


@case(2, "real: a 5 GiB tar.gz of members nobody reads (time bound)", full_only=True)
def _(tmp):
    path = H.gzip_bomb_tar(tmp / "x.tgz", "junk/zeros", 5 << 30)
    return api_refuses(CIFAR, str(path), "test", timeout=300, match="MAX_TOTAL_BYTES")


# == 3. crash safety: kill -9 at any instant, then resume ======================================
_REFERENCE: dict = {}


def _reference(tmp_root: Path):
    """The uninterrupted crash run and its crash points (made once per campaign)."""
    if "run" not in _REFERENCE:
        root = Path(tempfile.mkdtemp(prefix="npsnn-attack-ref-"))
        data = cifar(root)
        code, _, err = R.run(R.train_argv(root / "run", data, **R.CRASH_FLAGS),
                             crash_dir=root / "crash")
        assert code == 0, err
        _REFERENCE.update(run=root / "run", data=data, points=R.points(root / "crash"))
    return _REFERENCE


def _trial(tmp, kills, ref):
    try:
        R.trial(kills, tmp, ref["data"], ref["run"])
    except AssertionError as e:
        return f"{e}"[:400]
    return None


def _every_point(step):
    """Kill at every ``step``-th crash point of the run (one case each), resume."""
    def attack(tmp):
        ref = _reference(tmp)
        return [(f"kill -9 at crash point {k} ({ref['points'][k - 1].split(' ', 1)[1]}), "
                 f"resume", _trial(tmp / str(k), [k], ref))
                for k in range(1, len(ref["points"]) + 1, step)]
    return attack


case(3, "kill -9 at every 3rd crash point")(_every_point(3))
case(3, "kill -9 at every crash point", full_only=True)(_every_point(1))
for _a, _b in [(5, 3), (17, 9), (30, 20), (44, 2), (52, 31)]:
    case(3, f"kill -9 at point {_a}, then the resumed run at its point {_b}")(
        lambda tmp, a=_a, b=_b: _trial(tmp, [a, b], _reference(tmp)))


@case(3, "kill -9 at random instants (no crash points)")
def _(tmp):
    import random
    ref = _reference(tmp)
    rng = random.Random(7)
    outcomes = []
    for i in range(8):
        out = tmp / str(i) / "run"
        delay = rng.uniform(0.3, 6.0)
        proc = R.spawn(R.train_argv(out, ref["data"], **R.CRASH_FLAGS))
        time.sleep(delay)
        R.kill9(proc, may_have_ended=True)
        problem = None
        try:
            R.assert_on_disk_is_whole(out)
            if not R.finished(out):
                code, _, err = R.run(R.continue_argv(out, ref["data"]))
                assert code == 0, err.strip()
            R.assert_same_end(out, ref["run"])
        except AssertionError as e:
            problem = (f"{e}" or "AssertionError without a message")[:400]
        outcomes.append((f"kill -9 after {delay:.1f} s (no crash points), resume", problem))
    return outcomes


@case(3, "kill -9 while a checkpoint is rewritten in a loop (never torn)")
def _(tmp):
    code = ("import numpy as np, sys\n"
            "from npsnn.train.checkpoint import save_checkpoint\n"
            "w = np.arange(1 << 19)\n"
            "for i in range(10 ** 9):\n"
            f"    save_checkpoint({str(tmp / 'last.npz')!r}, model={{'w': w + i}}, config={{'i': i}})\n"
            "    if i == 2: print('ready', flush=True)\n")
    from npsnn.train.checkpoint import load_checkpoint
    for _ in range(5):
        proc = R.spawn(["python", "-c", code])
        if proc.stdout.readline().strip() != "ready":
            return "the writer did not start"
        time.sleep(0.05)
        R.kill9(proc)
        ck = load_checkpoint(tmp / "last.npz")
        if not np.array_equal(ck["model"]["w"] - ck["config"]["i"], np.arange(1 << 19)):
            return "a torn checkpoint"
    return None


# == 4. one training per run folder ==========================================================
def _paused_first(tmp):
    """A training into tmp/run, paused inside its first write (holding the lock)."""
    proc = R.spawn(R.train_argv(tmp / "run", cifar(tmp), epochs=1, batch=16, T=2),
                   tmp / "crash", pause_at=1)
    if R.wait_paused(proc, tmp / "crash") is None:
        raise AssertionError("the first training did not pause")
    return proc


def _while_running(second):
    def attack(tmp):
        first = _paused_first(tmp)
        try:
            return cli_refuses(second(tmp), match=f"pid {first.pid}")
        finally:
            R.kill9(first)
    return attack


case(4, "a second training into the same --out")(_while_running(
    lambda t: R.train_argv(t / "run", cifar(t), epochs=1, batch=16, T=2)))
case(4, "a second training with --overwrite")(_while_running(
    lambda t: R.train_argv(t / "run", cifar(t), epochs=1, batch=16, T=2, overwrite=True)))
case(4, "--resume of the running folder")(_while_running(
    lambda t: TRAIN + ["--resume", t / "run", "--no-progress"]))
case(4, "a quickstart into the running folder")(_while_running(
    lambda t: QUICK + ["--out", t / "run", "--data", cifar(t), "--epochs", "1"]))


@case(4, "a training whose lock holder was killed -9 (not stuck)")
def _(tmp):
    R.kill9(_paused_first(tmp))
    code, _, err = R.run(R.continue_argv(tmp / "run", cifar(tmp)))
    return None if code == 0 and not (tmp / "run" / ".lock").exists() else err.strip()


@case(4, "a stale lock file with a dead pid (not stuck)")
def _(tmp):
    write(tmp / "run" / ".lock", b"999999 python -m npsnn train\n")
    code, _, err = R.run(R.train_argv(tmp / "run", cifar(tmp), epochs=1, batch=16, T=2))
    return None if code == 0 else err.strip()


@case(4, "two trainings started at the same instant: exactly one runs")
def _(tmp):
    argv = R.train_argv(tmp / "run", cifar(tmp), epochs=1, batch=16, T=2)
    procs = [R.spawn(argv), R.spawn(argv)]
    results = [R.finish(p) for p in procs]
    codes = sorted(code for code, _, _ in results)
    if codes != [0, 2]:
        return f"exit codes {codes}: {[e.strip()[-200:] for _, _, e in results]}"
    err = next(e for c, _, e in results if c == 2)
    return None if ("in use by another training" in err or "already holds a run" in err) \
        else err.strip()


# == 5. NaN and inf ============================================================================
for _flag in ("--lr", "--momentum", "--wd", "--pct-start", "--warmup-epochs",
              "--label-smoothing", "--tet-lambda"):
    for _v in ("nan", "inf", "-inf"):
        case(5, f"train {_flag}={_v}")(lambda tmp, f=_flag, v=_v: cli_refuses(
            train_cmd(tmp, f"{f}={v}"), match="must be", absent=[tmp / "r"]))


@case(5, "train --lr 1e30: diverges, stops, last.npz stays finite")
def _(tmp):
    problem = cli_refuses(train_cmd(tmp, "--lr", "1e30", "--schedule", "constant"),
                          match="training stopped")
    from npsnn.train.checkpoint import load_checkpoint
    ck = load_checkpoint(tmp / "r" / "last.npz")
    finite = all(np.isfinite(v).all() for v in ck["model"].values() if v.dtype.kind == "f")
    return problem or (None if finite else "a non-finite last.npz was written")


@case(5, "train --config with neuron tau NaN")
def _(tmp):
    return cli_refuses(TRAIN + ["--config", json.dumps(dict(R.TINY, neuron={"tau": "NaN"})),
                                "--data", cifar(tmp), "--out", tmp / "r"], absent=[tmp / "r"])


@case(5, "train --config with an inf dim")
def _(tmp):
    return cli_refuses(TRAIN + ["--config", '{"dim": Infinity}', "--data", cifar(tmp),
                                "--out", tmp / "r"], absent=[tmp / "r"])


@case(5, "SNN-MLP --config with lif_tau NaN")
def _(tmp):
    cfg = '{"model": "snn-mlp", "embed_dim": 8, "depths": [1, 1], "num_classes": 10, ' \
          '"image_size": 32, "patch_size": 4, "group": 2, "lif_tau": NaN}'
    return cli_refuses(TRAIN + ["--config", cfg, "--data", cifar(tmp), "--out", tmp / "r"],
                       match="finite", absent=[tmp / "r"])


@case(5, "a NaN pixel in a train-mode forward leaves the BN statistics alone")
def _(tmp):
    return python_ok(
        "import numpy as np, npsnn\n"
        "from npsnn._checks import NonFiniteError\n"
        f"m = npsnn.build({R.TINY!r}, seed=0)\n"
        "x = np.random.default_rng(0).random((4, 3, 32, 32)).astype(np.float32)\n"
        "before = m.state_dict(); x[1, 2, 3, 4] = np.nan\n"
        "try:\n    m.forward_repeated(x, 2); raise SystemExit('accepted')\n"
        "except NonFiniteError: pass\n"
        "after = m.state_dict()\n"
        "assert all(np.array_equal(before[k], after[k]) for k in before)\n")


for _what, _value in (("NaN", np.nan), ("inf", np.inf)):
    @case(5, f"eval of a checkpoint with a {_what} weight")
    def _(tmp, v=_value):
        path = checkpoint_with(tmp, **{"model/batch_norm.weight": lambda a: np.full_like(
            a["model/batch_norm.weight"], v)})
        return cli_refuses(EVAL + ["--checkpoint", path], match="non-finite")

    @case(5, f"--resume of a last.npz with a {_what} momentum buffer")
    def _(tmp, v=_value):
        path = checkpoint_with(tmp)
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        key = next(k for k in arrays if k.startswith("optimizer/state/"))
        arrays[key] = np.full_like(arrays[key], v)
        np.savez(path, **arrays)
        return cli_refuses(TRAIN + ["--resume", path.parent, "--no-progress"], match="NaN/inf")


@case(5, "AxisLIF(tau=nan) and SNN-MLP built with lif_tau=nan")
def _(tmp):
    return api_refuses("npsnn.ops.axis_lif:AxisLIF", "h", 4, float("nan"), match="finite")


# == 6. raw tracebacks: every command, bad input ==================================================
def _file(tmp, name="f", data=b"hello\n"):
    return write(tmp / name, data)


def _with_config(**changes):
    """train on the CIFAR-10 folder with the tiny config changed."""
    return lambda t: TRAIN + ["--config", json.dumps(dict(R.TINY, **changes)), "--data",
                              cifar(t), "--out", t / "r"]


CLI_CASES = [
    # (name, argv builder, match)
    ("train --out is an existing file", lambda t: train_cmd(t)[:-9] + [
        "--out", _file(t), "--no-progress"], "is a file, not a folder"),
    ("train --out under a file", lambda t: TRAIN + ["--config", TINY_JSON, "--data", cifar(t),
                                                    "--out", _file(t) / "run"], "Not a directory"),
    ("train --out on a read-only file system (/sys)", lambda t: TRAIN + [
        "--config", TINY_JSON, "--data", cifar(t), "--out", "/sys/npsnn-attack"], "/sys"),
    ("train --out on /proc", lambda t: TRAIN + [
        "--config", TINY_JSON, "--data", cifar(t), "--out", "/proc/self/npsnn"], "/proc"),
    ("train model 64x64 images, data 32x32", _with_config(image_size=64), "takes samples of shape"),
    ("train model with 1 input channel, data RGB", _with_config(in_channels=1),
     "takes samples of shape"),
    ("train model with 7 classes, data 10", _with_config(num_classes=7), "classes"),
    ("train model with 100 classes, data CIFAR-10", _with_config(num_classes=100), "classes"),
    ("train --T 10000000", lambda t: train_cmd(t, "--T", "10000000"), "needs about"),
    ("train --batch 100000000", lambda t: train_cmd(t, "--batch", "100000000"), "batch"),
    ("train --T 0", lambda t: train_cmd(t, "--T", "0"), "T must be a positive integer"),
    ("train --T -3", lambda t: train_cmd(t, "--T", "-3"), "T must be"),
    ("train --T abc", lambda t: train_cmd(t, "--T", "abc"), "invalid int"),
    ("train --epochs 0", lambda t: train_cmd(t, "--epochs", "0"), "epochs"),
    ("train --seed -1", lambda t: train_cmd(t, "--seed", "-1"), "seed"),
    ("train --cutout -1", lambda t: train_cmd(t, "--cutout", "-1"), "cutout"),
    ("train --train-subset 0", lambda t: train_cmd(t, "--train-subset", "0"), "train_subset"),
    ("train --checkpoint-every -1", lambda t: train_cmd(t, "--checkpoint-every", "-1"),
     "checkpoint_every"),
    ("train --eval-every 0", lambda t: train_cmd(t, "--eval-every", "0"), "eval_every"),
    ("train --momentum 1", lambda t: train_cmd(t, "--momentum", "1"), "momentum"),
    ("train --data missing", lambda t: train_cmd(t, data=t / "nope"), "no such file"),
    ("train --data an empty folder", lambda t: train_cmd(t, data=(t / "e").mkdir() or t / "e"),
     "no CIFAR data"),
    ("train --data a text file", lambda t: train_cmd(t, data=_file(t)), "not a tar archive"),
    ("train --data a .pth file", lambda t: train_cmd(t, data=write(t / "x.pth", H.legacy_pth(
        b"}"))), "not a tar"),
    ("train --data /dev/null", lambda t: train_cmd(t, data="/dev/null"), ""),
    ("train --data a truncated archive", lambda t: train_cmd(t, data=write(
        t / "c.tgz", H.tar_lying(t / "x.tgz", MEMBER, 3073 * 10, bytes(100)).read_bytes())),
     ""),
    ("train --config missing.json", lambda t: TRAIN + ["--config", t / "missing.json",
                                                       "--data", cifar(t)], "no such file"),
    ("train --config a list", lambda t: TRAIN + ["--config", "[1, 2]", "--data", cifar(t)],
     "must be a JSON object"),
    ("train --config an empty file", lambda t: TRAIN + ["--config", _file(t, "c.json", b""),
                                                        "--data", cifar(t)], "JSON"),
    ("train --config binary garbage", lambda t: TRAIN + [
        "--config", _file(t, "c.json", bytes(range(256))), "--data", cifar(t)], ""),
    ("train --config unknown key", lambda t: TRAIN + [
        "--config", '{"dimm": 4}', "--data", cifar(t)], "unknown"),
    ("train --config depths []", lambda t: TRAIN + [
        "--config", json.dumps(dict(R.TINY, depths=[])), "--data", cifar(t)], "depths"),
    ("train --config dim 1e300", lambda t: TRAIN + [
        "--config", json.dumps(dict(R.TINY, dim=1e300)), "--data", cifar(t)], "dim"),
    ("train --config dim 10**30 (an integer)", lambda t: TRAIN + [
        "--config", '{"dim": 1000000000000000000000000000000, "depths": [1]}', "--data",
        cifar(t), "--out", t / "r"], ""),
    ("train --preset nope", lambda t: TRAIN + ["--preset", "nope", "--data", cifar(t)],
     "unknown preset"),
    ("train --resume a missing folder", lambda t: TRAIN + ["--resume", t / "nope"],
     "no such folder"),
    ("train --resume a folder without last.npz", lambda t: TRAIN + ["--resume", t],
     "nothing to resume"),
    ("train --resume a garbage last.npz", lambda t: TRAIN + [
        "--resume", _file(t / "g", "last.npz", b"garbage").parent], "not a readable .npz"),
    ("train --resume a truncated last.npz", lambda t: TRAIN + [
        "--resume", write(t / "g" / "last.npz", (tiny_run(t) / "last.npz").read_bytes()[:3000])
        .parent], "not a readable .npz"),
    ("train --resume of a slim (weights-only) checkpoint", lambda t: TRAIN + [
        "--resume", _slimmed(t).parent], "cannot be resumed"),
    ("train --resume with progress.epoch a string", lambda t: TRAIN + [
        "--resume", _with_json(t, "progress", epoch="x").parent], "progress entries epoch"),
    ("train --resume with args a list", lambda t: TRAIN + [
        "--resume", checkpoint_with(t, args=np.array("[1]")).parent], "'args' part"),
    ("train --resume with a damaged RNG state", lambda t: TRAIN + [
        "--resume", _with_json(t, "rng", state={"state": "x", "inc": 1}).parent], "RNG"),
    ("train --resume with another model's weights", lambda t: TRAIN + [
        "--resume", checkpoint_with(t, **{"model/batch_norm.weight": np.ones(3, np.float32)})
        .parent], "mis-shaped"),
    ("train --resume with changed --lr", lambda t: TRAIN + [
        "--resume", tiny_run(t), "--lr", "0.5"], "differs"),
    ("train --resume of a finished run", lambda t: TRAIN + ["--resume", tiny_run(t)],
     "already finished"),
    ("eval --checkpoint missing", lambda t: EVAL + ["--checkpoint", t / "nope.npz"],
     "no checkpoint file"),
    ("eval --checkpoint an empty folder", lambda t: EVAL + ["--checkpoint", t], ""),
    ("eval --checkpoint garbage", lambda t: EVAL + ["--checkpoint", _file(t)], "not a readable"),
    ("eval --checkpoint a .pth", lambda t: EVAL + ["--checkpoint", write(
        t / "x.pth", H.legacy_pth(b"}"))], ""),
    ("eval --checkpoint a plain state-dict .npz", lambda t: EVAL + [
        "--checkpoint", _state_npz(t)], "not an npsnn checkpoint"),
    ("eval --T 10000000", lambda t: EVAL + ["--checkpoint", tiny_run(t), "--T", "10000000"],
     "needs about"),
    ("eval --T 0", lambda t: EVAL + ["--checkpoint", tiny_run(t), "--T", "0"], "positive"),
    ("eval --batch 0", lambda t: EVAL + ["--checkpoint", tiny_run(t), "--batch", "0"],
     "positive"),
    ("eval --subset 0", lambda t: EVAL + ["--checkpoint", tiny_run(t), "--subset", "0"],
     "positive"),
    ("eval --data CIFAR-100 for a 10-class model", lambda t: EVAL + [
        "--checkpoint", tiny_run(t), "--data", _cifar100(t)], "classes"),
    ("eval --data missing", lambda t: EVAL + ["--checkpoint", tiny_run(t), "--data",
                                              t / "nope"], "no such file"),
    ("eval a checkpoint with a damaged config", lambda t: EVAL + [
        "--checkpoint", checkpoint_with(t, config=np.array('{"dim": -1}'))], "config"),
    ("slim src missing", lambda t: SLIM + [t / "nope.npz", t / "o.npz"], "no checkpoint"),
    ("slim src garbage", lambda t: SLIM + [_file(t), t / "o.npz"], "not a readable"),
    ("slim dst a folder", lambda t: SLIM + [tiny_run(t) / "last.npz", t], ""),
    ("slim dst under a file", lambda t: SLIM + [tiny_run(t) / "last.npz", _file(t) / "o.npz"],
     ""),
    ("slim --dtype int8", lambda t: SLIM + [tiny_run(t) / "last.npz", t / "o.npz", "--dtype",
                                            "int8"], "invalid choice"),
    ("convert-pth in missing", lambda t: CONVERT + [t / "nope.pth", t / "o.npz"],
     "no such file"),
    ("convert-pth out a folder", lambda t: CONVERT + [_good_pth(t), t], ""),
    ("convert-pth out under a file", lambda t: CONVERT + [_good_pth(t), _file(t) / "o.npz"],
     ""),
    ("convert-pth --config missing.json", lambda t: CONVERT + [
        _good_pth(t), t / "o.npz", "--config", t / "missing.json"], "no such file"),
    ("convert-pth --preset nope", lambda t: CONVERT + [_good_pth(t), t / "o.npz", "--preset",
                                                       "nope"], "unknown preset"),
    ("convert-pth of a text file", lambda t: CONVERT + [_file(t), t / "o.npz"],
     "not a torch.save file"),
    ("convert-pth of a zip that is not a .pth", lambda t: CONVERT + [
        H.npz_of(t / "z.pth", {"a.txt": b"x"}), t / "o.npz"], "data.pkl"),
    ("convert-pth of an os.system pickle", lambda t: CONVERT + [
        H.zip_pth(t / "e.pth", b"\x80\x02cposix\nsystem\n(X\x04\x00\x00\x00truetR.", {}),
        t / "o.npz"], "not on the allow-list"),
    ("quickstart --data garbage", lambda t: QUICK + ["--data", _file(t), "--out", t / "q"],
     "not a tar"),
    ("quickstart --out a file", lambda t: QUICK + ["--data", cifar(t), "--out", _file(t)],
     "is a file"),
    ("quickstart --epochs 0", lambda t: QUICK + ["--data", cifar(t), "--out", t / "q",
                                                 "--epochs", "0"], "epochs"),
    ("quickstart --config bad", lambda t: QUICK + ["--data", cifar(t), "--out", t / "q",
                                                   "--config", "{"], "JSON"),
    ("python -m npsnn nope", lambda t: ["python", "-m", "npsnn", "nope"], "unknown command"),
]


def _slimmed(tmp):
    from npsnn.train.checkpoint import slim_checkpoint
    out = tmp / "s" / "last.npz"
    out.parent.mkdir(parents=True, exist_ok=True)
    slim_checkpoint(tiny_run(tmp) / "last.npz", out)
    return out


def _with_json(tmp, part, **fields):
    from npsnn.train.checkpoint import load_checkpoint
    value = load_checkpoint(tiny_run(tmp) / "last.npz")[part]
    value.update(fields)
    return checkpoint_with(tmp, **{part: np.array(json.dumps(value))})


def _state_npz(tmp, **config):
    import npsnn
    from npsnn.io import save_state
    save_state(tmp / "w.npz", npsnn.build(dict(R.TINY, **config)))
    return tmp / "w.npz"


def _good_pth(tmp):
    return H.zip_pth(tmp / "g.pth", H.p_dict({"w": H.p_tensor(0, (2,), (1,), 2)}),
                     {"0": np.ones(2, np.float32).tobytes()})


def _cifar100(tmp):
    from cifar_files import write_dataset
    write_dataset(tmp / "c100", "cifar100", "binary")
    return tmp / "c100"


for _name, _argv, _match in CLI_CASES:
    case(6, _name)(lambda tmp, a=_argv, m=_match: cli_refuses(a(tmp), match=m))


@case(6, "train on a full disk (writes past 64 KiB fail with EFBIG)")
def _(tmp):
    import resource
    import signal
    import subprocess
    from limited import env

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    argv = [sys.executable if a == "python" else str(a) for a in R.train_argv(
        tmp / "r", cifar(tmp), epochs=2, batch=16, T=2, checkpoint_every=1,
        config=json.dumps(dict(R.TINY, dim=12)))]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env(),
                          preexec_fn=limit)
    lines = [x for x in done.stderr.splitlines() if x.strip()]
    if done.returncode != 2 or len(lines) != 1 or "cannot write" not in lines[0]:
        return f"exit {done.returncode}: {done.stderr.strip()[-300:]}"
    return None if not list((tmp / "r").glob(".*.tmp")) else "left a temporary file"


# == 7. silent nonsense =========================================================================
LAST_TENSOR = {"a string array": "np.full(shape, 'x')",
               "a complex array": "np.full(shape, 1 + 1j, np.complex64)",
               "NaN": "np.full(shape, np.nan)", "float64 1e39": "np.full(shape, 1e39)",
               "an object array": "np.full(shape, None)"}
for _label, _expr in LAST_TENSOR.items():
    @case(7, f"load_state_dict with {_label} as the last tensor changes nothing")
    def _(tmp, expr=_expr):
        return python_ok(
            "import numpy as np, npsnn\n"
            f"m = npsnn.build({R.TINY!r}, seed=0)\n"
            "state = {k: v + 1 for k, v in m.state_dict().items()}\n"
            "last = sorted(state)[-1]\n"
            "shape = state[last].shape\n"
            f"state[last] = {expr}\n"
            "before = m.state_dict()\n"
            "try:\n    m.load_state_dict(state); raise SystemExit('accepted')\n"
            "except (ValueError, TypeError) as e:\n    assert 'nothing was loaded' in str(e)\n"
            "after = m.state_dict()\n"
            "assert all(np.array_equal(before[k], after[k]) for k in before)\n")


@case(7, "eval of a checkpoint with a complex weight")
def _(tmp):
    key = "model/batch_norm.weight"
    return cli_refuses(EVAL + ["--checkpoint", checkpoint_with(
        tmp, **{key: lambda a: a[key].astype(np.complex64)})], match="not real numbers")


@case(7, "slim of a checkpoint with a string array")
def _(tmp):
    key = "model/batch_norm.weight"
    path = checkpoint_with(tmp, **{key: lambda a: np.array(["x"] * a[key].size)})
    return cli_refuses(SLIM + [path, tmp / "s.npz"], match="not real numbers",
                       absent=[tmp / "s.npz"])


@case(7, "slim to float16 of weights beyond its range")
def _(tmp):
    key = "model/batch_norm.weight"
    path = checkpoint_with(tmp, **{key: lambda a: np.full_like(a[key], 1e6)})
    return cli_refuses(SLIM + [path, tmp / "s.npz"], match="beyond the range of float16",
                       absent=[tmp / "s.npz"])


for _cfg in ("tiny sMLPNet", "SNN-MLP"):
    @case(7, f"an empty batch ({_cfg})")
    def _(tmp, cfg=_cfg):
        config = R.TINY if cfg.startswith("tiny") else dict(
            model="snn-mlp", embed_dim=8, depths=[1, 1], num_classes=10, image_size=32,
            patch_size=4, group=2)
        return python_ok(
            "import numpy as np, npsnn\n"
            f"m = npsnn.build({config!r})\n"
            "try:\n"
            "    m.forward_repeated(np.zeros((0, 3, 32, 32), np.float32), 2)\n"
            "    raise SystemExit('accepted')\n"
            "except ValueError as e:\n    assert 'empty' in str(e), e\n")


@case(7, "a float32 AxisLIF given float64 input")
def _(tmp):
    return python_ok(
        "import numpy as np, npsnn\n"
        "lif = npsnn.AxisLIF(tau=0.3, dtype=np.float32)\n"
        "try:\n    lif.forward(np.ones((1, 2, 4, 4))); raise SystemExit('accepted')\n"
        "except TypeError as e:\n    assert 'float32 parameters but x is float64' in str(e)\n")


@case(7, "a float64 AxisLIF given float32 input (its parameters rounded)")
def _(tmp):
    return python_ok(
        "import numpy as np, npsnn\n"
        "lif = npsnn.AxisLIF(tau=0.3, dtype=np.float64)\n"
        "try:\n    lif.forward(np.ones((1, 2, 4, 4), np.float32)); raise SystemExit('accepted')\n"
        "except TypeError:\n    pass\n")


@case(7, "an optimizer state of another shape (broadcast silently before)")
def _(tmp):
    path = checkpoint_with(tmp)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    key = next(k for k in arrays if k.startswith("optimizer/state/"))
    arrays[key] = np.ones(1, arrays[key].dtype)
    np.savez(path, **arrays)
    return cli_refuses(TRAIN + ["--resume", path.parent, "--no-progress"], match="the parameter is")


@case(7, "a weight of float64 1e39 loaded into a float32 model")
def _(tmp):
    key = "model/batch_norm.weight"
    path = checkpoint_with(tmp, **{key: lambda a: np.full(a[key].shape, 1e39)})
    return cli_refuses(EVAL + ["--checkpoint", path], match="after the cast to float32")


STORAGE = {"float32": "FloatStorage", "int64": "LongStorage"}


@case(7, "convert-pth --config of a checkpoint with NaN weights")
def _(tmp):
    import npsnn
    state = npsnn.build(R.TINY).state_dict()
    items = {}
    storages = {}
    for i, (k, v) in enumerate(state.items()):
        arr = np.full(v.shape, np.nan, np.float32) if k == "batch_norm.weight" else v
        items[k] = H.p_tensor(0, v.shape, tuple(s // v.itemsize for s in v.strides), v.size,
                              key=str(i), stype=STORAGE[v.dtype.name])
        storages[str(i)] = arr.tobytes()
    path = H.zip_pth(tmp / "n.pth", H.p_dict(items), storages)
    return cli_refuses(CONVERT + [path, tmp / "o.npz", "--config", TINY_JSON],
                       match="non-finite", absent=[tmp / "o.npz"])


# == 6 (continued). the commands interop added: export-pth, export-nir, --init, mixing =====
EXPORT_PTH = ["python", "-m", "npsnn", "export-pth"]
EXPORT_NIR = ["python", "-m", "npsnn", "export-nir"]
MORE_CLI_CASES = [
    ("export-pth in missing", lambda t: EXPORT_PTH + [t / "nope.npz", t / "o.pth"], ""),
    ("export-pth in garbage", lambda t: EXPORT_PTH + [_file(t), t / "o.pth"], ""),
    ("export-pth in a legacy .pth DAG", lambda t: EXPORT_PTH + [
        write(t / "d.pth", H.legacy_pth(H.dag_list(60))), t / "o.pth"], "counting each"),
    ("export-pth out a folder", lambda t: EXPORT_PTH + [tiny_run(t) / "last.npz", t], ""),
    ("export-pth --layout bogus", lambda t: EXPORT_PTH + [tiny_run(t) / "last.npz",
                                                         t / "o.pth", "--layout", "x"],
     "invalid choice"),
    ("export-nir --dt=inf", lambda t: EXPORT_NIR + [tiny_run(t) / "last.npz", t / "o.nir",
                                                   "--dt=inf"], "finite"),
    ("export-nir --dt=-1", lambda t: EXPORT_NIR + [tiny_run(t) / "last.npz", t / "o.nir",
                                                  "--dt=-1"], "dt must be"),
    ("export-nir of an SNN-MLP checkpoint", lambda t: EXPORT_NIR + [_snn_run(t), t / "o.nir"],
     ""),
    ("train --init missing", lambda t: train_cmd(t, "--init", t / "nope.npz"), "no such"),
    ("train --init a hostile .pth", lambda t: train_cmd(t, "--init", write(
        t / "d.pth", H.legacy_pth(H.dag_list(60)))), "counting each"),
    ("train --init of another model", lambda t: train_cmd(t, "--init", _state_npz(t, dim=12)),
     ""),
    ("train --reset-head without --init", lambda t: train_cmd(t, "--reset-head"), "--init"),
    ("train --image-size 0", lambda t: train_cmd(t, "--image-size", "0"), "image_size"),
    ("train --image-size 100000", lambda t: train_cmd(t, "--image-size", "100000"), ""),
    ("train --mix-prob 2", lambda t: train_cmd(t, "--mix-prob", "2"), "mix_prob"),
]
for _name, _argv, _match in MORE_CLI_CASES:
    case(6, _name)(lambda tmp, a=_argv, m=_match: cli_refuses(a(tmp), match=m))
for _flag in ("--mixup", "--cutmix", "--mix-prob", "--switch-prob"):
    for _v in ("nan", "inf"):
        case(5, f"train {_flag}={_v}")(lambda tmp, f=_flag, v=_v: cli_refuses(
            train_cmd(tmp, f"{f}={v}"), match="must be", absent=[tmp / "r"]))


def _snn_run(tmp):
    import npsnn
    from npsnn.train.checkpoint import save_checkpoint
    snn = npsnn.build(dict(model="snn-mlp", embed_dim=8, depths=[1, 1], num_classes=10,
                           image_size=32, patch_size=4, group=2))
    save_checkpoint(tmp / "snn.npz", model=snn.state_dict(), config=snn.config)
    return tmp / "snn.npz"


# == 8. the golden model's files ================================================================
GOLDEN = ["python", "-m", "npsnn", "golden"]


def _golden_export(tmp, *extra):
    """A golden export of the tiny run's checkpoint (via the command) -> its folder."""
    out = tmp / "vec"
    if not out.exists():
        done = run_limited(GOLDEN + ["export", "--checkpoint", tiny_run(tmp) / "last.npz",
                                     "--data", cifar(tmp), "--images", "0:1", "--T", "2",
                                     "--calib", "8", "--out", out, *extra], memory=2 * GiB)
        assert done.returncode == 0, done.stderr
    return out


def _golden(tmp, *argv):
    return GOLDEN + [argv[0], "--checkpoint", tiny_run(tmp) / "last.npz", "--data", cifar(tmp),
                     "--T", "2", "--calib", "8", *map(str, argv[1:])]


def _theirs(tmp, change):
    import shutil
    ours = _golden_export(tmp)
    theirs = tmp / "theirs"
    shutil.copytree(ours, theirs)
    change(theirs)
    return GOLDEN + ["verify", "--ours", ours, "--theirs", theirs]


def _widen_a_hex_word(theirs):
    import shutil
    shutil.rmtree(theirs / "vectors")
    f = next((theirs / "vectors_hex" / "img0000").glob("*lif_c.v.hex"))
    lines = f.read_text().splitlines()
    lines[1] = "1" + lines[1]
    f.write_text("\n".join(lines) + "\n")


def _float_value(theirs, value):
    path = theirs / "vectors" / "img0000.npz"
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    key = next(k for k in arrays if k.endswith("lif_c/v"))
    arrays[key] = arrays[key].astype(np.float64)
    arrays[key].flat[3] += value
    np.savez(path, **arrays)


GOLDEN_CASES = [
    ("export into a file", lambda t: _golden(t, "export", "--images", "0:1", "--out",
                                             _file(t)), "not a golden export"),
    ("export into a folder of other files", lambda t: _golden(
        t, "export", "--images", "0:1", "--out", _file(t / "mine").parent),
     "not a golden export"),
    ("export --calib -5", lambda t: _golden(t, "export", "--calib", "-5", "--out", t / "o"),
     "--calib must be"),
    ("export --bits 44", lambda t: _golden(t, "export", "--bits", "44", "--out", t / "o"),
     "beyond 2^53"),
    ("export --bits 48", lambda t: _golden(t, "export", "--bits", "48", "--out", t / "o"),
     "beyond 2^53"),
    ("export --bits 1", lambda t: _golden(t, "export", "--bits", "1", "--out", t / "o"),
     "bits"),
    ("export --mem-bits 70", lambda t: _golden(t, "export", "--mem-bits", "70", "--out",
                                               t / "o"), "mem_bits"),
    ("export --std inf inf inf", lambda t: _golden(t, "export", "--std", "inf", "inf", "inf",
                                                   "--out", t / "o"), "finite"),
    ("export --mean nan 0 0", lambda t: _golden(t, "export", "--mean", "nan", "0", "0",
                                                "--out", t / "o"), "finite"),
    ("export --images 5:2", lambda t: _golden(t, "export", "--images", "5:2", "--out", t / "o"),
     "outside"),
    ("export --images a:b", lambda t: _golden(t, "export", "--images", "a:b", "--out", t / "o"),
     "range like"),
    ("export --T 0", lambda t: _golden(t, "export", "--T", "0", "--out", t / "o"), "--T must"),
    ("snap --std 0 0 0", lambda t: GOLDEN + ["snap", "--checkpoint", tiny_run(t) / "last.npz",
                                             "--out", t / "s.npz", "--std", "0", "0", "0"],
     "std > 0"),
    ("snap --bits 30", lambda t: GOLDEN + ["snap", "--checkpoint", tiny_run(t) / "last.npz",
                                           "--out", t / "s.npz", "--bits", "30"], "bits"),
    ("report of an SNN-MLP checkpoint", lambda t: GOLDEN + ["report", "--checkpoint",
                                                            _snn_run(t)], "sMLPNet only"),
    ("report --images 0:100000000 (random images)", lambda t: GOLDEN + [
        "report", "--checkpoint", tiny_run(t) / "last.npz", "--images", "0:100000000"],
     "at most 10000"),
    ("eval --batch 0", lambda t: _golden(t, "eval", "--batch", "0"), "--batch must"),
    ("eval of a checkpoint with NaN weights", lambda t: GOLDEN + [
        "eval", "--checkpoint", checkpoint_with(t, **{"model/batch_norm.weight": lambda a:
                                                      np.full_like(a["model/batch_norm.weight"],
                                                                   np.nan)}),
        "--data", cifar(t)], "non-finite"),
    ("--config missing.json", lambda t: GOLDEN + ["report", "--checkpoint", _state_npz(t),
                                                  "--config", t / "missing.json"],
     "no such file"),
    ("verify: a 7-digit word in a 24-bit field", lambda t: _theirs(t, _widen_a_hex_word),
     "7 hex digits"),
    ("verify: their dump is not a folder", lambda t: GOLDEN + [
        "verify", "--ours", _golden_export(t), "--theirs", _file(t)], "no such directory"),
    ("verify: our folder is not an export", lambda t: GOLDEN + [
        "verify", "--ours", t, "--theirs", t], "not a golden export"),
    ("verify: their npz with a (2**40,) header", lambda t: _theirs(t, lambda d: H.npz_of(
        d / "vectors" / "img0000.npz", {"x.npy": H.npy_bytes((1 << 40,), data=bytes(8))})),
     "8.0 TiB"),
    ("verify: their values are strings", lambda t: _theirs(t, lambda d: np.savez(
        d / "vectors" / "img0000.npz", **{k: np.full(v.shape, "x") for k, v in np.load(
            d / "vectors" / "img0000.npz").items()})), "not numbers"),
]
for _name, _argv, _match in GOLDEN_CASES:
    case(8, f"golden {_name}")(lambda tmp, a=_argv, m=_match: cli_refuses(a(tmp), match=m))


for _value, _label in ((0.25, "41184.25-like"), (np.nan, "NaN")):
    @case(8, f"golden verify: a {_label} value of theirs is reported as not an integer")
    def _(tmp, value=_value):
        done = run_limited(_theirs(tmp, lambda d: _float_value(d, value)), memory=2 * GiB)
        out = done.stdout
        if done.returncode != 1 or "which is not an integer" not in out:
            return f"exit {done.returncode}: {out.strip()[-200:]} {done.stderr.strip()[-200:]}"
        return None


@case(8, "golden export again with --no-hex leaves no hex file of the first")
def _(tmp):
    first = _golden_export(tmp)
    done = run_limited(_golden(tmp, "export", "--images", "0:1", "--no-hex", "--out", first),
                       memory=2 * GiB)
    left = [p.name for p in first.iterdir()]
    if done.returncode != 0 or sorted(left) != ["manifest.json", "params.npz", "vectors"]:
        return f"exit {done.returncode}, left {sorted(left)}: {done.stderr[-200:]}"
    return None


for _policy in ("saturate", "wrap"):
    @case(8, f"golden export --policy {_policy}: counts per layer in the manifest and printed")
    def _(tmp, policy=_policy):
        out = tmp / "vec"
        done = run_limited(_golden(tmp, "export", "--images", "0:1", "--no-hex", "--policy",
                                   policy, "--acc-bits", "12", "--out", out), memory=2 * GiB)
        if done.returncode != 0:
            return f"exit {done.returncode}: {done.stderr[-200:]}"
        overflow = json.loads((out / "manifest.json").read_text()).get("overflow", {})
        if not overflow.get("total") or f"policy '{policy}'" not in done.stdout:
            return f"no counts: {overflow} / {done.stdout[-200:]}"
        return None


@case(8, "golden export on a full disk leaves the previous export")
def _(tmp):
    import resource
    import signal
    import subprocess
    from limited import env
    out = _golden_export(tmp)
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*"))

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (32 << 10, 32 << 10))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    argv = [sys.executable if a == "python" else str(a)
            for a in _golden(tmp, "export", "--images", "0:2", "--out", out)]
    done = subprocess.run(argv, capture_output=True, text=True, env=env(), timeout=300,
                          preexec_fn=limit)
    after = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    stray = [p.name for p in out.parent.iterdir() if p.name.startswith(".vec.")]
    if done.returncode != 2 or after != before or stray:
        return f"exit {done.returncode}, changed {after != before}, stray {stray}"
    return None


# == 9. the golden model at ImageNet scale ======================================================
def _imagenet_weights(tmp, **config):
    """A 224-pixel sMLPNet (mlp-spe-t's widths) with trained-looking BN -> (weights, config)."""
    import npsnn
    from npsnn.io import save_state
    sys.path.insert(0, str(HERE / "golden"))
    from golden_models import randomise_bn
    cfg = dict(npsnn.resolve_config("mlp-spe-t"), **config)
    save_state(tmp / "w.npz", randomise_bn(npsnn.build(cfg, seed=0)))
    (tmp / "config.json").write_text(json.dumps(cfg))
    return tmp / "w.npz", tmp / "config.json"


@case(9, "golden report of a 224-pixel model, one block per stage, under 3 GiB of address space")
def _(tmp):
    w, cfg = _imagenet_weights(tmp, depths=[1, 1, 1, 1])
    done = run_limited(GOLDEN + ["report", "--checkpoint", w, "--config", cfg, "--images", "0:1",
                                 "--calib", "1", "--T", "2"], memory=3 * GiB, timeout=1800)
    return None if done.returncode == 0 else f"exit {done.returncode}: {done.stderr[-300:]}"


@case(9, "golden report and export of mlp-spe-t within 4 GB peak RSS", full_only=True)
def _(tmp):
    import re
    done = run_limited(["python", HERE.parent / "benchmarks" / "golden_scale.py", "--preset",
                        "mlp-spe-t", "--images", "1", "--calib", "2"], memory=64 * GiB,
                       timeout=7200)
    peaks = [float(x) for x in re.findall(r"peak RSS ([0-9.]+) GB", done.stdout)]
    if done.returncode != 0 or len(peaks) != 2 or max(peaks) > 4.0:
        return f"exit {done.returncode}, peaks {peaks}: {done.stdout[-300:]}"
    return None


# == 10. every long-running command reports its BLAS thread count ===============================
THREADED = {
    "train": lambda t: R.train_argv(t / "r", cifar(t), epochs=1, batch=16, T=2),
    "eval": lambda t: EVAL + ["--checkpoint", tiny_run(t)],
    "quickstart": lambda t: QUICK + ["--data", cifar(t), "--out", t / "q", "--epochs", "1"],
}
for _cmd, _argv in THREADED.items():
    @case(10, f"{_cmd} says how many BLAS threads it uses")
    def _(tmp, argv=_argv):
        done = run_limited(argv(tmp), memory=2 * GiB, timeout=300)
        text = (done.stdout + done.stderr).lower()
        if done.returncode != 0:
            return f"exit {done.returncode}: {done.stderr.strip()[-200:]}"
        return None if "thread" in text else "no thread count in its output"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--classes", help="comma-separated class numbers (default: all)")
    p.add_argument("--full", action="store_true", help="also the long cases")
    p.add_argument("--list", action="store_true", help="list the cases and stop")
    p.add_argument("--json", metavar="FILE", help="write the results here")
    a = p.parse_args(argv)
    classes = {int(x) for x in a.classes.split(",")} if a.classes else None
    if a.list:
        for c in CASES:
            if not classes or c.cls in classes:
                print(f"[{c.cls}] {c.name}{' (--full)' if c.full_only else ''}")
        return 0
    t0 = time.perf_counter()
    results = run_campaign(classes, a.full)
    print()
    print(table(results))
    print(f"\n{time.perf_counter() - t0:.0f} s")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    return 0 if all(not r["failures"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
