"""kill -9 at any instant: the resumed run ends with the bits of an uninterrupted one and every
file it promises present and valid.

A tiny training (2 epochs of 6 steps, a checkpoint every 2 steps, a metrics line every 2)
runs in a child process. With ``NPSNN_TEST_CRASH_POINTS`` set (npsnn/io/files.py), each
atomic write passes five crash points (temporary file created, partly written, written,
synced, renamed) and each metrics line two (half written, written); the reference run logs
them all. A trial makes a fresh run pause at crash point ``k``, kills it with SIGKILL there,
checks that what is on disk is whole, continues it (``--resume``, or the same command when
the kill came before its first checkpoint existed) and compares the end with the reference:
last.npz (weights, BN statistics, optimizer, schedule, RNG, progress), best.npz, the metrics
log and the folder's listing (no temporary file, no lock left).

The default set kills inside every stage of the end-of-epoch best.npz and last.npz writes
and of a metrics line, and before the first checkpoint; ``-m slow`` kills at every point,
twice in a row at some, and at random instants.
"""
import random
import time

import pytest

from npsnn.train.checkpoint import load_checkpoint
from train_runs import (CRASH_FLAGS as FLAGS, PROMISED, assert_on_disk_is_whole,
                        assert_same_end, continue_argv, kill9, points, run, spawn,
                        synthetic, train_argv, trial, write_binary_cifar)


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    return write_binary_cifar(tmp_path_factory.mktemp("cifar"), synthetic(96, 2),
                              synthetic(32, 3))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cifar_dir):
    """The uninterrupted run, and the crash points it passed."""
    root = tmp_path_factory.mktemp("reference")
    code, _, err = run(train_argv(root / "run", cifar_dir, **FLAGS), crash_dir=root / "crash")
    assert code == 0, err
    return root / "run", points(root / "crash")


def _pick(all_points, stage_file_pairs, epoch_end=True):
    """Numbers of the points of the last.npz / best.npz writes at the end of epoch 1."""
    parsed = [line.split(" ", 1) for line in all_points]
    first_best = next(int(n) for n, d in parsed if d.endswith("best.npz"))
    chosen = []
    for stage, name in stage_file_pairs:
        chosen.append(next(int(n) for n, d in parsed
                           if int(n) >= first_best and d == f"{stage} {name}"))
    return chosen


STAGES = ["temporary file created", "partly written", "written", "synced", "renamed"]


def test_reference_passes_the_points_this_file_kills_at(reference):
    ref, all_points = reference
    described = {line.split(" ", 1)[1] for line in all_points}
    for stage in STAGES:
        assert f"{stage} last.npz" in described and f"{stage} best.npz" in described
    assert {"half a line written metrics.jsonl", "line written metrics.jsonl"} <= described
    assert sorted(p.name for p in ref.iterdir()) == PROMISED


@pytest.mark.parametrize("which", [
    ("first point of the run", None),
    *[(f"{stage} best.npz (end of epoch 1)", (stage, "best.npz")) for stage in STAGES],
    ("partly written last.npz (end of epoch 1)", ("partly written", "last.npz")),
    ("renamed last.npz (end of epoch 1)", ("renamed", "last.npz")),
    ("half a metrics line", ("half a line written", "metrics.jsonl")),
])
def test_kill_9_inside_a_write_then_resume_is_exact(which, reference, tmp_path, cifar_dir):
    ref, all_points = reference
    k = 1 if which[1] is None else _pick(all_points, [which[1]])[0]
    trial([k], tmp_path, cifar_dir, ref)


@pytest.mark.slow
def test_kill_9_at_every_crash_point(reference, tmp_path, cifar_dir):
    ref, all_points = reference
    for k in range(1, len(all_points) + 1):
        trial([k], tmp_path / str(k), cifar_dir, ref)


@pytest.mark.slow
def test_kill_9_twice_in_a_row(reference, tmp_path, cifar_dir):
    """The resumed run killed again (its own points count from 1)."""
    ref, all_points = reference
    rng = random.Random(0)
    for i in range(12):
        kills = [rng.randint(1, len(all_points)), rng.randint(1, len(all_points) // 2)]
        trial(kills, tmp_path / str(i), cifar_dir, ref)


@pytest.mark.slow
def test_kill_9_at_random_instants(reference, tmp_path, cifar_dir):
    """No crash points: SIGKILL after a random delay, anywhere in the run."""
    ref, _ = reference
    t0 = time.perf_counter()
    code, _, err = run(train_argv(tmp_path / "timing", cifar_dir, **FLAGS))
    length = time.perf_counter() - t0
    rng = random.Random(1)
    for i in range(12):
        out = tmp_path / str(i) / "run"
        proc = spawn(train_argv(out, cifar_dir, **FLAGS))
        time.sleep(rng.uniform(0.0, length))
        kill9(proc, may_have_ended=True)
        assert_on_disk_is_whole(out)
        argv = continue_argv(out, cifar_dir)
        if not (out / "last.npz").exists() or \
                not load_checkpoint(out / "last.npz")["progress"].get("finished"):
            code, _, err = run(argv)
            assert code == 0, err
        assert_same_end(out, ref)
