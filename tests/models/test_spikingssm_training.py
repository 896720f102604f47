"""SpikingSSM through the project's trainer and CLI on sequential CIFAR: a tiny network
trains from the command line with the official recipe's flags, writes its checkpoints,
evaluates, and a run stopped mid-way resumes to the same bits (dropout masks included)."""
import json

import numpy as np
import pytest

from cifar_files import write_dataset
from npsnn.train.checkpoint import load_checkpoint, load_model
from npsnn.train.cli import eval_main, train_main
from npsnn.train.trainer import LAST

TINY = dict(model="spikingssm", d_model=4, n_layers=1, d_state=4, dropout=0.2, neuron="sdn")
RECIPE = ["--optimizer", "adamw", "--lr", "0.01", "--wd", "0.01", "--schedule", "cosine",
          "--warmup-epochs", "0.5", "--label-smoothing", "0", "--no-augment", "--batch", "8",
          "--epochs", "2", "--no-progress", "--checkpoint-every", "2"]


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    return str(write_dataset(root, "cifar10", "binary", n_train=6, n_test=8)["folder"])


def _run(argv, capsys):
    code = train_main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_trains_resumes_exactly_and_evaluates(cifar_dir, tmp_path, capsys, monkeypatch):
    argv = ["--config", json.dumps(TINY), "--data", cifar_dir] + RECIPE
    code, _, err = _run(argv + ["--out", tmp_path / "a"], capsys)
    assert code == 0, err
    full = load_checkpoint(tmp_path / "a" / LAST)
    assert full["args"]["dataset"] in (None, "scifar") and "model_rng" in full
    import npsnn.train.trainer as tmod
    real_init = tmod.Trainer.__init__

    def init(self, *a, **k):                        # stop the second run after 3 steps
        k.setdefault("max_steps", 3)
        real_init(self, *a, **k)
    monkeypatch.setattr(tmod.Trainer, "__init__", init)
    code, stdout, _ = _run(argv + ["--out", tmp_path / "b"], capsys)
    assert code == 130 and f"--resume {tmp_path / 'b'}" in stdout
    monkeypatch.setattr(tmod.Trainer, "__init__", real_init)
    code, _, err = _run(["--resume", tmp_path / "b", "--no-progress"], capsys)
    assert code == 0, err
    part = load_checkpoint(tmp_path / "b" / LAST)
    for section in ("model", "optimizer", "schedule"):
        for k in full[section]:
            assert np.array_equal(full[section][k], part[section][k]), f"{section}/{k}"
    model, _ = load_model(tmp_path / "a" / LAST)
    assert model.config["model"] == "spikingssm" and model.config["d_model"] == 4
    code = eval_main(["--checkpoint", str(tmp_path / "a"), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["images"] == 8 and 0 <= result["top1"] <= 100


def test_the_kernel_dynamics_train_with_their_own_lr(cifar_dir, tmp_path, capsys):
    """AdamW moves every parameter by about lr per step at first: the SSM dynamics by 0.001,
    the rest by 0.01 (the official parameter groups)."""
    argv = ["--config", json.dumps(dict(TINY, dropout=0.0)), "--data", cifar_dir,
            "--out", tmp_path, "--epochs", "1", "--train-subset", "8", "--optimizer", "adamw",
            "--lr", "0.01", "--wd", "0", "--schedule", "constant", "--batch", "8",
            "--no-progress", "--no-augment"]
    from npsnn.models import build
    before = build(TINY | {"dropout": 0.0}).state_dict()
    code, _, err = _run(argv, capsys)
    assert code == 0, err
    after = load_checkpoint(tmp_path / LAST)["model"]
    step = {k: np.abs(after[k] - before[k]).max() for k in before}
    assert 0.0009 < step["s4_layers.0.kernel.log_dt"] <= 0.0010001
    assert 0.009 < step["s4_layers.0.D"] <= 0.0100001
