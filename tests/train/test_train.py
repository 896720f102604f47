"""The trainer: exact resume, atomic checkpoints, the CLI (train / eval) and its errors.

Everything runs a tiny sMLPNet (dim 6, patch 8, depths [1, 1]) on a few dozen synthetic
images, so each test takes well under a second or two.
"""
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from train_runs import TINY, synthetic, write_binary_cifar
from npsnn.train.checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from npsnn.train.cli import eval_main, train_main
from npsnn.train.trainer import LAST, METRICS, TrainArgs, Trainer, train

ROOT = Path(__file__).resolve().parents[2]
TIMING = ("img_s", "train_img_s", "wall_s", "eval_s")


@pytest.fixture(scope="module")
def data():
    return (*synthetic(64, 0), *synthetic(32, 1))


def tiny_args(out, **kw):
    base = dict(preset=None, config=TINY, out=str(out), epochs=2, batch=16, T=2,
                progress=False, checkpoint_every=3, log_every=1, eval_batch=16)
    base.update(kw)
    return TrainArgs(**base)


def quiet(*_):
    pass


def assert_same_run(dir_a, dir_b):
    """Bit-identical weights, BN buffers, optimizer and schedule state, and metrics."""
    a, b = load_checkpoint(Path(dir_a) / LAST), load_checkpoint(Path(dir_b) / LAST)
    for part in ("model", "optimizer", "schedule"):
        assert a[part].keys() == b[part].keys()
        for k in a[part]:
            assert np.array_equal(a[part][k], b[part][k]), f"{part}/{k} differs"
    assert a["rng"] == b["rng"]

    def strip(path):
        recs = [json.loads(line) for line in Path(path, METRICS).read_text().splitlines()]
        return [{k: v for k, v in r.items() if k not in TIMING} for r in recs]

    assert strip(dir_a) == strip(dir_b)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, data):
    out = tmp_path_factory.mktemp("full")
    summary = train(tiny_args(out), data, log=quiet)
    return out, summary


def test_full_run_writes_checkpoints_and_metrics(full_run):
    out, summary = full_run
    assert summary["finished"] and not summary["interrupted"] and summary["global_step"] == 8
    lines = [json.loads(x) for x in (out / METRICS).read_text().splitlines()]
    assert [r["step"] for r in lines if r["kind"] == "train"] == list(range(1, 9))
    epochs = [r for r in lines if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2] and all(r["test_acc"] is not None
                                                          for r in epochs)
    ck = load_checkpoint(out / LAST)
    assert ck["config"]["dim"] == 6 and ck["progress"]["epoch"] == 2
    assert ck["args"]["batch"] == 16 and ck["npsnn_version"]
    assert ck["history"] == json.loads(json.dumps(epochs))
    assert (out / "best.npz").is_file()
    assert not list(out.glob("*.tmp"))


def test_resume_after_ctrl_c_is_bit_exact(full_run, tmp_path, data):
    def stop_at_5(tr):
        if tr.global_step == 5:
            raise KeyboardInterrupt          # what Ctrl-C raises outside our handler
    logs = []
    s = train(tiny_args(tmp_path), data, log=logs.append, callback=stop_at_5)
    assert s["interrupted"] and s["global_step"] == 5
    assert any("resume with: python -m npsnn train --resume" in x for x in logs)
    assert load_checkpoint(tmp_path / LAST)["progress"]["global_step"] == 5
    s = Trainer.resume(tmp_path, data, log=quiet).run()
    assert s["finished"] and s["global_step"] == 8
    assert_same_run(full_run[0], tmp_path)


def test_resume_after_kill_between_checkpoints_is_bit_exact(full_run, tmp_path, data):
    """kill -9 after step 7: the step-6 checkpoint is the latest; metric lines written
    after it are dropped on resume."""
    class Killed(Exception):
        pass

    def kill_at_7(tr):
        if tr.global_step == 7:
            raise Killed
    with pytest.raises(Killed):
        train(tiny_args(tmp_path), data, log=quiet, callback=kill_at_7)
    assert load_checkpoint(tmp_path / LAST)["progress"]["global_step"] == 6
    assert '"step": 7' in (tmp_path / METRICS).read_text()
    Trainer.resume(tmp_path, data, log=quiet).run()
    assert_same_run(full_run[0], tmp_path)


def test_abandoned_half_step_is_rolled_back(full_run, tmp_path, data):
    """Ctrl-C inside backward (after forward moved the BN running statistics and the
    augmentation drew its numbers): the checkpoint is the state before that step."""
    trainer = Trainer(tiny_args(tmp_path), data, log=quiet)
    real_backward, calls = trainer.model.backward, [0]

    def backward(d):
        calls[0] += 1
        if calls[0] == 3:
            raise KeyboardInterrupt
        return real_backward(d)
    trainer.model.backward = backward
    assert trainer.run()["interrupted"]
    assert load_checkpoint(tmp_path / LAST)["progress"]["global_step"] == 2
    Trainer.resume(tmp_path, data, log=quiet).run()
    assert_same_run(full_run[0], tmp_path)


def test_real_sigint_finishes_the_step_saves_and_resumes_exactly(full_run, tmp_path, data):
    def sigint_at_3(tr):
        if tr.global_step == 3:
            os.kill(os.getpid(), signal.SIGINT)
    before = signal.getsignal(signal.SIGINT)
    s = train(tiny_args(tmp_path), data, log=quiet, callback=sigint_at_3)
    assert signal.getsignal(signal.SIGINT) is before          # handler restored
    assert s["interrupted"] and s["global_step"] == 3
    Trainer.resume(tmp_path, data, log=quiet).run()
    assert_same_run(full_run[0], tmp_path)


@pytest.mark.parametrize("kw", [
    dict(optimizer="adamw", lr=0.01, wd=0.05, schedule="cosine", warmup_epochs=0.5,
         loss="tet", cutout=8, label_smoothing=0.0),
    dict(schedule="constant", lr=0.05, nesterov=False, augment=False, cutout=4,
         train_subset=48, eval_every=2),
    # the official recipe's step: Mixup / CutMix draws from the augmentation generator
    dict(schedule="epoch-cosine", nesterov=False, wd=0.0, mixup=0.8, cutmix=1.0,
         recipe="official"),
    dict(schedule="epoch-cosine", warmup_epochs=1, cutmix=1.0, mix_prob=0.5, cutout=8),
    dict(mixup=0.4, label_smoothing=0.0, augment=False),
])
def test_other_recipes_resume_exactly(tmp_path, data, kw):
    full = tmp_path / "full"
    train(tiny_args(full, **kw), data, log=quiet)
    part = tmp_path / "part"
    train(tiny_args(part, **kw), data, log=quiet, max_steps=4)
    Trainer.resume(part, data, log=quiet).run()
    assert_same_run(full, part)


def test_interrupt_during_evaluation_resumes_at_the_evaluation(full_run, tmp_path, data):
    trainer = Trainer(tiny_args(tmp_path), data, log=quiet)
    import npsnn.train.trainer as tmod
    real = tmod.evaluate

    def evaluate(*a, should_stop=None, **k):
        trainer._stop_requested = True               # Ctrl-C arrives while evaluating
        return real(*a, should_stop=should_stop, **k)
    tmod.evaluate = evaluate
    try:
        assert trainer.run()["interrupted"]
    finally:
        tmod.evaluate = real
    p = load_checkpoint(tmp_path / LAST)["progress"]
    assert (p["epoch"], p["step_in_epoch"]) == (0, 4)          # trained, not yet evaluated
    Trainer.resume(tmp_path, data, log=quiet).run()
    assert_same_run(full_run[0], tmp_path)


# -- checkpoints ------------------------------------------------------------------------------
def test_checkpoint_round_trip_and_load_model(full_run, data):
    out, summary = full_run
    model, info = load_model(out / LAST)
    assert not model.training and info["config"] == load_checkpoint(out / LAST)["config"]
    assert "model" not in info and "optimizer" not in info
    with np.load(out / LAST, allow_pickle=False) as z:       # no pickle anywhere
        assert "model/mlp_head.1.weight" in z.files and str(z["format"]) == "npsnn-checkpoint"
    from npsnn.train.trainer import evaluate
    from npsnn.datasets.transforms import CIFAR10_MEAN, CIFAR10_STD
    acc, loss = evaluate(model, data[2], data[3], 2, CIFAR10_MEAN, CIFAR10_STD)
    assert acc == pytest.approx(summary["test_acc"]) and loss == pytest.approx(
        summary["test_loss"])


def test_slim_checkpoint_is_float16_weights_only_and_evaluates_alike(full_run, data, tmp_path):
    from npsnn.train.checkpoint import slim_main
    out, summary = full_run
    assert slim_main([str(out / LAST), str(tmp_path / "slim.npz")]) == 0
    slim = load_checkpoint(tmp_path / "slim.npz")
    assert "optimizer" not in slim and "schedule" not in slim
    assert all(v.dtype == np.float16 for v in slim["model"].values() if v.dtype.kind == "f")
    assert slim["config"] == load_checkpoint(out / LAST)["config"]
    full_bytes = sum(v.nbytes for v in load_checkpoint(out / LAST)["model"].values())
    assert (tmp_path / "slim.npz").stat().st_size < (out / LAST).stat().st_size
    assert sum(v.nbytes for v in slim["model"].values()) < 0.6 * full_bytes
    model, _ = load_model(tmp_path / "slim.npz")
    full, _ = load_model(out / LAST)
    for k, v in full.state_dict().items():        # float16 rounding, nothing else
        np.testing.assert_allclose(model.state_dict()[k], v, rtol=1e-3, atol=1e-4, err_msg=k)
    assert slim_main([str(tmp_path / "missing.npz"), str(tmp_path / "x.npz")]) == 2


def test_bad_checkpoint_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        load_checkpoint(tmp_path / "nope.npz")
    with pytest.raises(CheckpointError, match="is a folder"):
        load_checkpoint(tmp_path)
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(CheckpointError, match="not a readable .npz"):
        load_checkpoint(tmp_path / "junk.npz")
    np.savez(tmp_path / "weights.npz", w=np.zeros(3))
    with pytest.raises(CheckpointError, match="not an npsnn checkpoint"):
        load_checkpoint(tmp_path / "weights.npz")
    import npsnn
    model = npsnn.build(TINY)
    save_checkpoint(tmp_path / "ok.npz", model=model.state_dict(), config=model.config)
    raw = (tmp_path / "ok.npz").read_bytes()
    (tmp_path / "torn.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(tmp_path / "torn.npz")
    bad = dict(model.state_dict())
    bad.pop("mlp_head.1.bias")
    save_checkpoint(tmp_path / "bad.npz", model=bad, config=model.config)
    with pytest.raises(CheckpointError, match="missing keys: mlp_head.1.bias"):
        load_model(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="needs the 'config' part"):
        save_checkpoint(tmp_path / "x.npz", model=bad)


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import npsnn
    model = npsnn.build(TINY)
    path = tmp_path / "last.npz"
    save_checkpoint(path, model=model.state_dict(), config=model.config, progress={"n": 1})
    before = path.read_bytes()

    written = []

    def dying_write_array(f, array, **kw):       # the third array: half written, then "dies"
        written.append(array)
        f.write(b"\x93NUMPY half an array")
        if len(written) == 3:
            raise KeyboardInterrupt
    monkeypatch.setattr(np.lib.format, "write_array", dying_write_array)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model=model.state_dict(), config=model.config, progress={"n": 2})
    monkeypatch.undo()
    assert path.read_bytes() == before and load_checkpoint(path)["progress"] == {"n": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.npz"]


def test_kill_9_while_writing_never_tears_the_checkpoint(tmp_path):
    """A child process rewrites a checkpoint in a loop and is killed with SIGKILL."""
    script = textwrap.dedent(f"""
        import sys, numpy as np
        sys.path.insert(0, {str(ROOT)!r})
        from npsnn.train.checkpoint import save_checkpoint
        w = np.arange(1 << 19, dtype=np.int64)          # 4 MB: a write takes a while
        i = 0
        while True:
            save_checkpoint({str(tmp_path / 'last.npz')!r}, model={{"w": w + i}},
                            config={{"i": i}})
            i += 1
            if i == 2:
                print("ready", flush=True)
    """)
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
        ck = load_checkpoint(tmp_path / "last.npz")          # always complete and consistent
        assert np.array_equal(ck["model"]["w"] - ck["config"]["i"], np.arange(1 << 19))


# -- CLI ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    return write_binary_cifar(tmp_path_factory.mktemp("cifar"), synthetic(160, 2),
                              synthetic(60, 3))


def run_cli(main, argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_train_cli_end_to_end_learns_then_eval(cifar_dir, tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = run_cli(train_main, [
        "--config", json.dumps(TINY), "--data", cifar_dir, "--out", out, "--epochs", 4,
        "--batch", 16, "--T", 2, "--lr", 0.2, "--no-progress", "--label-smoothing", 0],
        capsys)
    assert code == 0, err
    assert "done: best test top-1" in stdout
    recs = [json.loads(x) for x in (out / METRICS).read_text().splitlines()]
    ep = [r for r in recs if r["kind"] == "epoch"]
    assert len(ep) == 4
    assert ep[-1]["train_loss"] < ep[0]["train_loss"] - 0.3     # the loss goes down
    assert max(r["test_acc"] for r in ep) > 30                  # well above chance (10%)
    code, stdout, err = run_cli(eval_main, ["--checkpoint", out / LAST], capsys)
    assert code == 0, err
    top1 = float(stdout.split("top-1 ")[1].split("%")[0])
    assert top1 == pytest.approx(ep[-1]["test_acc"], abs=0.01)
    assert "on 60 test images (T=2)" in stdout
    code, stdout, _ = run_cli(eval_main, ["--checkpoint", out, "--data", cifar_dir, "--json",
                                          "--split", "train", "--subset", 32], capsys)
    res = json.loads(stdout)
    assert code == 0 and res["images"] == 32 and res["split"] == "train"
    assert res["checkpoint"].endswith("best.npz")


def test_train_cli_resume_is_exact(cifar_dir, tmp_path, capsys, monkeypatch):
    argv = ["--config", json.dumps(TINY), "--data", cifar_dir, "--epochs", 2, "--batch", 32,
            "--T", 2, "--no-progress", "--checkpoint-every", 2]
    code, _, err = run_cli(train_main, argv + ["--out", tmp_path / "a"], capsys)
    assert code == 0, err
    import npsnn.train.trainer as tmod
    real_init = tmod.Trainer.__init__

    def init(self, *a, **k):                        # stop the first run after 3 steps
        k.setdefault("max_steps", 3)
        real_init(self, *a, **k)
    monkeypatch.setattr(tmod.Trainer, "__init__", init)
    code, stdout, _ = run_cli(train_main, argv + ["--out", tmp_path / "b"], capsys)
    assert code == 130 and f"--resume {tmp_path / 'b'}" in stdout
    monkeypatch.setattr(tmod.Trainer, "__init__", real_init)
    code, _, err = run_cli(train_main, ["--resume", tmp_path / "b", "--no-progress"], capsys)
    assert code == 0, err
    assert_same_run(tmp_path / "a", tmp_path / "b")


@pytest.mark.parametrize("argv, message", [
    (["--data", "/no/such/cifar.tar.gz"], "--data /no/such/cifar.tar.gz: no such file"),
    ([], "no training data: pass --data"),
    (["--preset", "cifar10-nope", "--data", "{data}"], "unknown preset 'cifar10-nope'"),
    (["--config", "{bad json", "--data", "{data}"], "--config is not valid JSON"),
    (["--config", json.dumps(dict(TINY, dim=5)), "--data", "{data}"], "not divisible by 3"),
    (["--resume", "{tmp}"], "no last.npz there, nothing to resume"),
    (["--resume", "{tmp}/missing"], "no such folder"),
    (["--data", "{data}", "--batch", "0"], "batch must be a positive integer"),
    (["--data", "{data}", "--config", json.dumps(TINY), "--batch", "512"],
     "fewer than one batch of 512"),
    (["--data", "{tmp}"], "no CIFAR"),
])
def test_train_cli_bad_input_is_one_line_and_exit_2(argv, message, cifar_dir, tmp_path,
                                                    capsys):
    argv = [a.replace("{data}", str(cifar_dir)).replace("{tmp}", str(tmp_path)) for a in argv]
    code, out, err = run_cli(train_main, argv + ["--out", tmp_path / "o", "--no-progress"]
                             if "--resume" not in argv else argv, capsys)
    assert code == 2
    assert message.lower() in err.lower(), err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_train_cli_refuses_to_mix_runs(cifar_dir, tmp_path, capsys):
    out = tmp_path / "run"
    base = ["--config", json.dumps(TINY), "--data", cifar_dir, "--out", out, "--epochs", 1,
            "--batch", 32, "--T", 2, "--no-progress"]
    assert run_cli(train_main, base, capsys)[0] == 0
    code, _, err = run_cli(train_main, base, capsys)                  # same --out again
    assert code == 2 and "already holds a run" in err and "--resume" in err
    code, _, err = run_cli(train_main, ["--resume", out, "--preset", "cifar10-p4-d48"], capsys)
    assert code == 2 and "--preset 'cifar10-p4-d48' differs from the run" in err
    code, _, err = run_cli(train_main, ["--resume", out, "--lr", "0.5"], capsys)
    assert code == 2 and "--lr 0.5 differs" in err
    code, _, err = run_cli(train_main, ["--resume", out], capsys)   # finished
    assert code == 2 and "already finished" in err
    assert run_cli(train_main, base + ["--overwrite"], capsys)[0] == 0


def test_resume_of_a_weights_only_checkpoint_is_refused(tmp_path, capsys):
    import npsnn
    model = npsnn.build(TINY)
    save_checkpoint(tmp_path / LAST, model=model.state_dict(), config=model.config)
    code, _, err = run_cli(train_main, ["--resume", tmp_path], capsys)
    assert code == 2 and "cannot be resumed: it lacks the training state" in err
    with pytest.raises(CheckpointError, match="lacks the training state"):
        Trainer.resume(tmp_path)


def test_eval_cli_errors(cifar_dir, tmp_path, capsys):
    code, _, err = run_cli(eval_main, ["--checkpoint", tmp_path / "none.npz", "--data",
                                       cifar_dir], capsys)
    assert code == 2 and "no checkpoint file" in err
    np.savez(tmp_path / "w.npz", a=np.zeros(2))
    code, _, err = run_cli(eval_main, ["--checkpoint", tmp_path / "w.npz", "--data",
                                       cifar_dir], capsys)
    assert code == 2 and "not an npsnn checkpoint" in err and err.count("\n") == 1
    import npsnn
    model = npsnn.build(dict(TINY, num_classes=5))
    save_checkpoint(tmp_path / "c5.npz", model=model.state_dict(), config=model.config)
    code, _, err = run_cli(eval_main, ["--checkpoint", tmp_path / "c5.npz", "--data",
                                       cifar_dir], capsys)
    assert code == 2 and "only 5 classes" in err
    code, _, err = run_cli(eval_main, ["--checkpoint", tmp_path / "c5.npz"], capsys)
    assert code == 2 and "pass --data" in err


def test_help_lists_every_flag(capsys):
    assert train_main(["--help"]) == 0
    text = capsys.readouterr().out
    for flag in ("--preset", "--data", "--epochs", "--out", "--resume", "--T", "--batch",
                 "--lr", "--optimizer", "--schedule", "--warmup-epochs", "--wd", "--momentum",
                 "--nesterov", "--no-nesterov", "--label-smoothing", "--loss", "--cutout",
                 "--seed", "--train-subset", "--eval-every", "--no-progress",
                 "--checkpoint-every"):
        assert flag in text
    assert eval_main(["--help"]) == 0 and "--checkpoint" in capsys.readouterr().out
    assert train_main(["--bogus"]) == 2


def test_quickstart_missing_sample_is_a_clear_error(tmp_path, capsys):
    from npsnn.quickstart import main
    code = main(["--data", str(tmp_path / "nope.tar.gz"), "--out", str(tmp_path / "q")])
    assert code == 2 and "nope.tar.gz" in capsys.readouterr().err


def test_quickstart_runs_on_a_tiny_budget(cifar_dir, tmp_path, capsys):
    from npsnn.quickstart import main
    code = main(["--data", str(cifar_dir), "--out", str(tmp_path / "q"), "--epochs", "1",
                 "--no-progress", "--config", json.dumps(TINY)])
    out = capsys.readouterr().out
    assert code == 0 and "test top-1" in out and str(tmp_path / "q") in out
    assert (tmp_path / "q" / LAST).is_file() and "python -m npsnn eval --checkpoint" in out


def test_model_rng_is_part_of_the_checkpoint(tmp_path, data):
    """SNN-MLP draws drop-path masks from model.rng: a resumed run must continue it."""
    cfg = dict(model="snn-mlp", embed_dim=8, depths=[1, 1], image_size=32, patch_size=4,
               num_classes=10, group=4, drop_path_rate=0.5)
    kw = dict(config=cfg, checkpoint_every=0, epochs=1)
    full = tmp_path / "full"
    train(tiny_args(full, **kw), data, log=quiet)
    part = tmp_path / "part"
    train(tiny_args(part, **kw), data, log=quiet, max_steps=2)
    assert "model_rng" in load_checkpoint(part / LAST)
    Trainer.resume(part, data, log=quiet).run()
    assert_same_run(full, part)


def test_checkpoints_record_the_neuron_and_old_ones_still_load_and_resume(full_run, tmp_path,
                                                                          data):
    """New checkpoints say which neuron they were trained with; a checkpoint written before
    configs had "model" and "neuron" loads, evaluates and resumes with the defaults."""
    out, _ = full_run
    ck = load_checkpoint(out / LAST)
    assert ck["config"]["model"] == "smlpnet"
    assert ck["config"]["neuron"]["tau"] == 2.0 and ck["config"]["neuron"]["detach_reset"]
    model, info = load_model(ROOT / "tutorials" / "assets" / "cifar10-p4-d48.npz")
    assert "neuron" not in load_checkpoint(ROOT / "tutorials" / "assets" /
                                           "cifar10-p4-d48.npz")["config"]
    assert model.config["neuron"]["tau"] == 2.0           # the defaults it was trained with
    # an interrupted run whose checkpoint has the old config layout resumes exactly
    def stop_at_5(tr):
        if tr.global_step == 5:
            raise KeyboardInterrupt
    train(tiny_args(tmp_path), data, log=quiet, callback=stop_at_5)
    parts = load_checkpoint(tmp_path / LAST)
    parts["config"] = {k: v for k, v in parts["config"].items() if k not in ("model", "neuron")}
    parts = {k: v for k, v in parts.items() if k not in ("format_version", "npsnn_version")}
    save_checkpoint(tmp_path / LAST, **parts)
    Trainer.resume(tmp_path, data, log=quiet).run()
    assert_same_run(out, tmp_path)
