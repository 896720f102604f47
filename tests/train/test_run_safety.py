"""A run is safe from bad settings, divergence, a second training in its folder, a full disk
and requests for more memory than there is: each ends in one line and exit code 2, and
the checkpoints on disk stay whole (npsnn/train/{args,trainer,lock,memory,cli}.py)."""
import json
import resource
import signal

import numpy as np
import pytest

from limited import GiB, run_limited
from npsnn.datasets import ArraySource
from npsnn.train.checkpoint import load_checkpoint
from npsnn.train.cli import train_main
from npsnn.train.lock import RunLocked, run_lock
from npsnn.train.trainer import LAST, TrainArgs, Trainer, TrainingDiverged
from train_runs import (TINY, kill9, run, spawn, synthetic, train_argv, wait_paused,
                        write_binary_cifar)


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    return write_binary_cifar(tmp_path_factory.mktemp("cifar"), synthetic(96, 2),
                              synthetic(32, 3))


@pytest.fixture(scope="module")
def data():
    return (*synthetic(64, 0), *synthetic(32, 1))


def cli(argv, capsys):
    code = train_main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(code, err, match):
    assert code == 2, err
    assert err.startswith("npsnn train: error: ") and err.count("\n") == 1, err
    assert match in err, err


# -- settings ----------------------------------------------------------------------------------
@pytest.mark.parametrize("flag,value,match", [
    ("--lr", "inf", "lr must be a finite number, got inf"),
    ("--lr", "nan", "lr must be a finite number"),
    ("--wd", "inf", "wd must be a finite number"),
    ("--tet-lambda", "nan", "tet_lambda must be a finite number"),
    ("--tet-lambda", "-1", "tet_lambda must be >= 0"),
    ("--warmup-epochs", "inf", "warmup_epochs must be a finite number"),
    ("--momentum", "nan", "momentum must be a finite number"),
    ("--label-smoothing", "inf", "label_smoothing must be a finite number"),
    ("--pct-start", "nan", "pct_start must be a finite number"),
])
def test_non_finite_settings_are_refused_before_anything_runs(cifar_dir, tmp_path, capsys,
                                                              flag, value, match):
    code, _, err = cli(["--config", json.dumps(TINY), "--data", cifar_dir, "--out",
                        tmp_path / "r", "--no-progress", flag, value], capsys)
    one_line(code, err, match)
    assert not (tmp_path / "r").exists()


def test_train_args_name_wrong_types():
    for kw, match in [(dict(lr="0.1"), "lr must be a finite number"),
                      (dict(nesterov=1), "nesterov must be true or false"),
                      (dict(config=[1]), "config must be a dict"),
                      (dict(out=""), "out must be a folder name")]:
        with pytest.raises(ValueError, match=match):
            TrainArgs(**kw).validate()


# -- divergence ----------------------------------------------------------------------------
def test_divergence_stops_before_the_checkpoint_is_overwritten(tmp_path, data):
    args = TrainArgs(preset=None, config=TINY, out=str(tmp_path), epochs=3, batch=16, T=2,
                     progress=False, checkpoint_every=2, log_every=1, eval_batch=16,
                     schedule="constant", lr=1e12, momentum=0.0, nesterov=False)
    trainer = Trainer(args, data, log=lambda *_: None)
    with pytest.raises(TrainingDiverged) as info:
        trainer.run()
    msg = str(info.value)
    assert "nothing was saved over it" in msg and "Lower the learning rate" in msg
    assert "\n" not in msg
    ckpt = load_checkpoint(tmp_path / LAST)
    assert all(np.isfinite(v).all() for v in ckpt["model"].values() if v.dtype.kind == "f")
    assert ckpt["progress"]["global_step"] == trainer.last_saved_step
    assert not list(tmp_path.glob(".*.tmp")) and not (tmp_path / ".lock").exists()


class _NaNSource(ArraySource):
    """A data source whose second training batch holds one NaN (a broken transform)."""

    calls = 0

    def train_batch(self, samples, rng, **kw):
        x = super().train_batch(samples, rng, **kw)
        self.calls += 1
        if self.calls == 2:
            x[0, 0, 0, 0] = np.nan
        return x


def test_nan_in_a_batch_stops_the_run_with_the_state_of_the_step_before(tmp_path, data):
    args = TrainArgs(preset=None, config=TINY, out=str(tmp_path), epochs=1, batch=16, T=2,
                     progress=False, eval_batch=16, checkpoint_every=1)
    source = _NaNSource((data[0], data[1]), (data[2], data[3]))
    states = []
    trainer = Trainer(args, source, log=lambda *_: None,
                      callback=lambda t: states.append(t.model.state_dict()))
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step 2 .*BatchNorm.*not finite"):
        trainer.run()
    after = trainer.model.state_dict()          # as after step 1: BN statistics untouched
    assert len(states) == 1 and all(np.array_equal(states[0][k], after[k]) for k in after)
    assert load_checkpoint(tmp_path / LAST)["progress"]["global_step"] == 1


def test_divergence_through_the_cli_is_one_line(cifar_dir, tmp_path, capsys):
    code, _, err = cli(["--config", json.dumps(TINY), "--data", cifar_dir, "--out",
                        tmp_path / "r", "--no-progress", "--lr", "1e12", "--schedule",
                        "constant", "--batch", "16", "--T", "2"], capsys)
    one_line(code, err, "training stopped at epoch 1")
    assert "last.npz holds the last good state (step 0)" in err


# -- the run folder's lock ---------------------------------------------------------------------
def test_lock_is_reentrant_and_refuses_another_holder(tmp_path):
    with run_lock(tmp_path / "run"):
        with run_lock(tmp_path / "run"):
            assert (tmp_path / "run" / ".lock").exists()
        assert (tmp_path / "run" / ".lock").exists()
    assert not (tmp_path / "run").exists()          # made for nothing: removed again
    code = ("import sys, time; from npsnn.train.lock import run_lock\n"
            f"with run_lock({str(tmp_path / 'x')!r}):\n"
            "    print('locked', flush=True); time.sleep(60)\n")
    proc = spawn(["python", "-c", code])
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(RunLocked, match=rf"in use by another training, pid {proc.pid}"):
            with run_lock(tmp_path / "x"):
                pass
    finally:
        kill9(proc)
    with run_lock(tmp_path / "x"):                  # the kill released it: not stuck
        pass


def test_a_second_training_into_a_running_folder_is_refused_and_kill_9_frees_it(
        cifar_dir, tmp_path):
    out, crash = tmp_path / "run", tmp_path / "crash"
    first = spawn(train_argv(out, cifar_dir, epochs=1, batch=16, T=2), crash, pause_at=1)
    try:
        assert wait_paused(first, crash) is not None     # paused inside its first write
        for argv in (train_argv(out, cifar_dir, epochs=1, batch=16, T=2),
                     train_argv(out, cifar_dir, epochs=1, batch=16, T=2, overwrite=True)):
            code, _, err = run(argv)
            assert code == 2 and f"in use by another training, pid {first.pid}" in err, err
            assert err.count("\n") == 1
    finally:
        kill9(first)
    assert (out / ".lock").exists()                 # left behind by the kill, but not held
    code, stdout, err = run(train_argv(out, cifar_dir, epochs=1, batch=16, T=2))
    assert code == 0, err
    assert not (out / ".lock").exists() and not list(out.glob(".*.tmp"))


# -- the disk ---------------------------------------------------------------------------------
def _limit_file_size(nbytes):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    return apply


def test_a_full_disk_is_one_line_and_keeps_the_last_checkpoint(cifar_dir, tmp_path):
    """RLIMIT_FSIZE makes every write past 64 KiB fail (EFBIG), as a full disk would
    (ENOSPC): the run's first checkpoints fit, later ones do not."""
    import subprocess
    from limited import env
    out = tmp_path / "run"
    argv = train_argv(out, cifar_dir, epochs=2, batch=16, T=2, checkpoint_every=1,
                      config=json.dumps(dict(TINY, dim=12)))
    argv = [a if a != "python" else __import__("sys").executable for a in argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env(),
                          preexec_fn=_limit_file_size(64 << 10))
    assert done.returncode == 2, done.stderr
    err = done.stderr
    assert err.count("\n") == 1 and "cannot write" in err and "File too large" in err, err
    assert "holds the last complete checkpoint" in err or "nothing was saved" in err
    if (out / LAST).exists():
        load_checkpoint(out / LAST)                 # whole
    assert not list(out.glob(".*.tmp"))             # the failed write left nothing


@pytest.mark.parametrize("where", ["file", "under a file"])
def test_out_that_cannot_be_a_folder_is_one_line(cifar_dir, tmp_path, capsys, where):
    (tmp_path / "f").write_text("x")
    out = tmp_path / "f" if where == "file" else tmp_path / "f" / "run"
    code, _, err = cli(["--config", json.dumps(TINY), "--data", cifar_dir, "--out", out,
                        "--no-progress"], capsys)
    one_line(code, err, "is a file, not a folder" if where == "file" else "Not a directory")


# -- memory -----------------------------------------------------------------------------------
def test_a_step_that_cannot_fit_in_memory_is_refused_before_it_starts(cifar_dir, tmp_path,
                                                                      data):
    """--T 10000000 asked for 3.6 TiB; under a 2 GiB limit a regression fails cleanly."""
    done = run_limited(train_argv(tmp_path / "r", cifar_dir, T=10_000_000), memory=2 * GiB,
                       timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "a training step (--T 10000000, --batch 64) needs about" in done.stderr
    assert "available: lower them" in done.stderr
    assert not (tmp_path / "r").exists()
    args = TrainArgs(preset=None, config=TINY, out=str(tmp_path / "e"), epochs=1, batch=16,
                     T=2, progress=False, eval_batch=16, data=str(cifar_dir))
    Trainer(args, log=lambda *_: None, max_steps=1).run()
    done = run_limited(["python", "-m", "npsnn", "eval", "--checkpoint", tmp_path / "e",
                        "--T", "10000000"], memory=2 * GiB, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "an evaluation batch (--T 10000000, --batch 32) needs about" in done.stderr


# -- leftovers ----------------------------------------------------------------------------------
def test_a_resumed_run_removes_temporaries_of_killed_writes(cifar_dir, tmp_path, data):
    args = TrainArgs(preset=None, config=TINY, out=str(tmp_path), epochs=2, batch=16, T=2,
                     progress=False, eval_batch=16)
    Trainer(args, data, log=lambda *_: None, max_steps=2).run()
    for name in (".last.npz.k1ll3d.tmp", ".best.npz.x.tmp", ".metrics.jsonl.y.tmp"):
        (tmp_path / name).write_bytes(b"PK\x03\x04 half")
    (tmp_path / "notes.tmp").write_text("the user's own file")
    Trainer.resume(tmp_path, data, log=lambda *_: None).run()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "best.npz", "last.npz", "metrics.jsonl", "notes.tmp"]
