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

TINY = dict(dim=6, patch_size=8, image_size=32, depths=[1, 1], num_classes=10)


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


def kill9(proc: subprocess.Popen) -> None:
    """SIGKILL, and reap the child."""
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def run(argv, timeout: float = 300, **kw) -> tuple[int, str, str]:
    return finish(spawn(argv, **kw), timeout)


def points(crash_dir) -> list[str]:
    """The crash points a child passed (``points.log``), in order."""
    path = Path(crash_dir) / "points.log"
    return path.read_text().splitlines() if path.exists() else []
