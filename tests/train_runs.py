"""Training runs for the trainer's tests: learnable synthetic images, the official binary
CIFAR layout on disk, and ``python -m npsnn train`` in a child process (with the crash
points of npsnn/io/files.py when a test wants to kill it inside a write).
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from limited import env
from npsnn.train.checkpoint import load_checkpoint
from npsnn.train.lock import LOCK_FILE, run_lock

TINY = dict(dim=6, patch_size=8, image_size=32, depths=[1, 1], num_classes=10)
#: the run the crash tests kill: 2 epochs of 6 steps on 96 images, checkpoints every 2 steps
CRASH_FLAGS = dict(epochs=2, batch=16, T=2, checkpoint_every=2, log_every=2, eval_batch=16)
TIMING = ("img_s", "train_img_s", "wall_s", "eval_s", "elapsed_s")
PROMISED = ["best.npz", "last.npz", "metrics.jsonl"]


def synthetic(n, seed, noise=60):
    """Learnable images: one fixed coarse (4x4 blocks of 8x8 pixels) random template per
    class, so that crops and flips keep it recognisable, plus pixel noise (uint8)."""
    coarse = np.random.default_rng(1234).integers(0, 256, (10, 3, 4, 4))
    templates = coarse.repeat(8, axis=2).repeat(8, axis=3)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.int64)
    images = templates[labels] + rng.integers(-noise, noise + 1, (n, 3, 32, 32))
    return np.clip(images, 0, 255).astype(np.uint8), labels


def write_binary_cifar(folder, train, test):
    """The official binary layout: records of 1 label byte + 3072 pixel bytes."""
    d = Path(folder) / "cifar-10-batches-bin"
    d.mkdir(parents=True)

    def records(images, labels):
        return np.concatenate([labels.astype(np.uint8)[:, None],
                               images.reshape(len(images), -1)], axis=1).tobytes()
    xs, ys = np.array_split(train[0], 5), np.array_split(train[1], 5)
    for i in range(5):
        (d / f"data_batch_{i + 1}.bin").write_bytes(records(xs[i], ys[i]))
    (d / "test_batch.bin").write_bytes(records(*test))
    (d / "batches.meta.txt").write_text("\n".join(
        "airplane automobile bird cat deer dog frog horse ship truck".split()) + "\n")
    return Path(folder)


def train_argv(out, data, **flags) -> list:
    """``python -m npsnn train`` on the tiny model; ``flags`` as ``--name value`` (True: a
    bare flag)."""
    argv = ["python", "-m", "npsnn", "train", "--config", json.dumps(TINY), "--data", data,
            "--out", out, "--no-progress"]
    for name, value in flags.items():
        argv += [f"--{name.replace('_', '-')}"] + ([] if value is True else [value])
    return [str(a) for a in argv]


def spawn(argv, crash_dir=None, pause_at=None) -> subprocess.Popen:
    """Start ``argv`` (``python`` = this interpreter) in a child; with ``crash_dir`` its
    crash points are logged there, and with ``pause_at`` it pauses at that one."""
    extra = {}
    if crash_dir is not None:
        crash_dir = Path(crash_dir)
        crash_dir.mkdir(parents=True, exist_ok=True)
        for stale in ("paused", "points.log", "pause-at"):
            (crash_dir / stale).unlink(missing_ok=True)
        if pause_at is not None:
            (crash_dir / "pause-at").write_text(str(pause_at))
        extra["NPSNN_TEST_CRASH_POINTS"] = str(crash_dir)
    argv = [sys.executable if a == "python" else a for a in argv]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env(**extra))


def wait_paused(proc: subprocess.Popen, crash_dir, timeout: float = 60) -> str | None:
    """Wait until ``proc`` pauses at its crash point -> the point's description, or None
    if it ended first (it passed fewer points)."""
    flag = Path(crash_dir) / "paused"
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if flag.exists():
            return flag.read_text().strip()
        if proc.poll() is not None:
            return None
        time.sleep(0.02)
    proc.kill()
    raise TimeoutError(f"the child neither paused nor ended in {timeout} s")


def kill9(proc: subprocess.Popen, may_have_ended: bool = False) -> bool:
    """SIGKILL, and reap the child -> whether the kill ended it. ``may_have_ended``: a
    child killed at a random instant may finish just before the signal arrives."""
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL or (may_have_ended and proc.returncode == 0), \
        f"the child ended with {proc.returncode}"
    return proc.returncode == -signal.SIGKILL


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def run(argv, timeout: float = 300, **kw) -> tuple[int, str, str]:
    return finish(spawn(argv, **kw), timeout)


def points(crash_dir) -> list[str]:
    """The crash points a child passed (``points.log``), in order."""
    path = Path(crash_dir) / "points.log"
    return path.read_text().splitlines() if path.exists() else []


# -- kill -9 trials (tests/train/test_crash.py, tests/attack.py) ---------------------------
def _untimed(obj):
    if isinstance(obj, dict):
        return {k: _untimed(v) for k, v in obj.items() if k not in TIMING}
    if isinstance(obj, list):
        return [_untimed(v) for v in obj]
    return obj


def assert_on_disk_is_whole(out):
    """After a kill: every file that is visible is complete, and the best.npz that last.npz
    promises (its best epoch) is there."""
    for name in ("last.npz", "best.npz"):
        if (out / name).exists():
            load_checkpoint(out / name)
    if (out / "last.npz").exists():
        best_epoch = load_checkpoint(out / "last.npz")["progress"]["best_epoch"]
        if best_epoch:
            assert (out / "best.npz").exists(), f"best.npz of epoch {best_epoch} is missing"
            assert load_checkpoint(out / "best.npz")["progress"]["epoch"] == best_epoch
    if (out / "metrics.jsonl").exists():
        lines = (out / "metrics.jsonl").read_text().split("\n")
        for line in lines[:-1]:                 # only the last line may be torn
            json.loads(line)


def assert_same_end(out, ref):
    names = sorted(p.name for p in out.iterdir())
    if LOCK_FILE in names:
        # a kill -9 after the run's last write (the last checkpoint says finished, so nobody
        # resumes it) leaves the lock file behind; it must be unlocked (npsnn/train/lock.py)
        with run_lock(out):                     # RunLocked if it were still held
            pass
        names.remove(LOCK_FILE)
    assert names == PROMISED, f"{out} holds {names}, expected {PROMISED}"
    for name in ("last.npz", "best.npz"):
        a, b = load_checkpoint(out / name), load_checkpoint(ref / name)
        for part in ("model", "optimizer", "schedule"):
            assert a[part].keys() == b[part].keys(), (name, part)
            for k in a[part]:
                assert np.array_equal(a[part][k], b[part][k]), f"{name} {part}/{k} differs"
        for part in ("rng", "progress", "history", "config"):
            assert _untimed(a[part]) == _untimed(b[part]), (name, part)
        assert {**a["args"], "out": None} == {**b["args"], "out": None}
    got = [_untimed(json.loads(x)) for x in (out / "metrics.jsonl").read_text().splitlines()]
    want = [_untimed(json.loads(x)) for x in (ref / "metrics.jsonl").read_text().splitlines()]
    assert got == want


def continue_argv(out, data) -> list:
    """How a user continues a killed run: ``--resume`` if it has a last.npz, else the
    command that started it."""
    if (Path(out) / "last.npz").exists():
        return ["python", "-m", "npsnn", "train", "--resume", str(out), "--no-progress"]
    return train_argv(out, data, **CRASH_FLAGS)


def kill_at(k, out, crash, cifar_dir):
    """Run until crash point ``k`` of this process, SIGKILL it there -> the point."""
    proc = spawn(continue_argv(out, cifar_dir), crash, pause_at=k)
    where = wait_paused(proc, crash)
    if where is None:                           # it finished before reaching point k
        code, _, err = finish(proc)
        assert code == 0, err
        return None
    kill9(proc)
    assert_on_disk_is_whole(out)
    return where


def trial(kills, tmp_path, cifar_dir, ref):
    """Kill at the points ``kills`` (one per process, in turn), then run to the end."""
    out, crash = tmp_path / "run", tmp_path / "crash"
    for k in kills:
        kill_at(k, out, crash, cifar_dir)
    if finished(out):                       # killed after its last write: nothing to do
        code, _, err = run(continue_argv(out, cifar_dir))
        assert code == 2 and "already finished" in err, err
    else:
        code, stdout, err = run(continue_argv(out, cifar_dir))
        assert code == 0, err
        assert "done: best test top-1" in stdout
    assert_same_end(out, ref)


def finished(out) -> bool:
    """Whether the run in ``out`` wrote its final last.npz."""
    path = Path(out) / "last.npz"
    return path.exists() and bool(load_checkpoint(path)["progress"].get("finished"))
