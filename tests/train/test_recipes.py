"""Named recipes (train/recipe.py), the official per-epoch cosine, Mixup/CutMix in the
trainer, and fine-tuning (--init, --reset-head, --image-size; train/finetune.py)."""
import math
from pathlib import Path

import numpy as np
import pytest

from cifar_files import write_dataset
from test_train import cifar_dir, quiet, run_cli, synthetic, tiny_args  # noqa: F401 (fixture)
import npsnn
from npsnn.io.pth_write import save_pth, torch_state_dict
from npsnn.train.args import TrainArgs
from npsnn.train.checkpoint import load_checkpoint
from npsnn.train.cli import train_main
from npsnn.train.recipe import RECIPES, SOURCES, make_schedule, recipe_args
from npsnn.train.optim import SGD
from npsnn.train.schedules import EpochCosine
from npsnn.train.trainer import Trainer


def test_recipes_are_complete_and_sourced():
    assert set(RECIPES) == {"anchor", "official", "spikingssm"}
    assert RECIPES["anchor"] == {k: getattr(TrainArgs(), k) for k in RECIPES["anchor"]}
    official = recipe_args("official")
    assert (official.optimizer, official.nesterov, official.wd, official.schedule) == \
        ("sgd", False, 0.0, "epoch-cosine")
    assert (official.mixup, official.cutmix, official.mix_prob, official.switch_prob,
            official.label_smoothing, official.T, official.epochs) == (0.8, 1.0, 1.0, 0.5,
                                                                       0.1, 4, 100)
    for name in ("official", "spikingssm"):
        differing = {k for k in RECIPES[name] if RECIPES[name][k] != RECIPES["anchor"][k]}
        assert differing <= set(SOURCES[name]), name      # every change names its source
    ssm = recipe_args("spikingssm")
    assert (ssm.optimizer, ssm.lr, ssm.wd, ssm.schedule, ssm.batch, ssm.label_smoothing,
            ssm.augment) == ("adamw", 0.01, 0.01, "cosine", 50, 0.0, False)
    assert recipe_args("official", epochs=3).epochs == 3
    with pytest.raises(ValueError, match="unknown recipe 'paper'"):
        recipe_args("paper")


def test_epoch_cosine_is_constant_within_an_epoch_and_follows_the_official_curve():
    model = npsnn.build(dict(dim=6, patch_size=8, image_size=32, depths=[1, 1], num_classes=10))
    opt = SGD(model, lr=0.1, momentum=0.9)
    sched = EpochCosine(opt, 0.1, total_steps=5 * 4, steps_per_epoch=4, warmup_epochs=2)
    lrs = [sched.lr_at(k) for k in range(20)]
    per_epoch = lrs[::4]
    assert all(lrs[4 * e:4 * e + 4] == [per_epoch[e]] * 4 for e in range(5))
    np.testing.assert_allclose(per_epoch[:2], [0.001, 0.1 * (0.01 + 0.99 / 2)])
    np.testing.assert_allclose(per_epoch[2:], [0.1 * (1 + math.cos(math.pi * e / 3)) / 2
                                               for e in range(3)])
    args = recipe_args("official", epochs=5)
    assert isinstance(make_schedule(opt, args, 4, 20), EpochCosine)
    with pytest.raises(ValueError, match="warmup_epochs < epochs"):
        EpochCosine(opt, 0.1, 20, 4, warmup_epochs=5)
    with pytest.raises(ValueError, match="whole number of epochs"):
        EpochCosine(opt, 0.1, 21, 4)


def test_mixing_changes_the_run_and_tet_refuses_it(tmp_path):
    data = (*synthetic(64, 0), *synthetic(32, 1))
    plain = Trainer(tiny_args(tmp_path / "a", epochs=1), data, log=quiet)
    mixed = Trainer(tiny_args(tmp_path / "b", epochs=1, mixup=0.8, cutmix=1.0), data, log=quiet)
    images, labels = data[0][:16], data[1][:16]
    plain.train_step(images, labels)
    mixed.train_step(images, labels)
    assert plain.aug_rng.bit_generator.state != mixed.aug_rng.bit_generator.state
    assert not np.array_equal(plain.model.state_dict()["mlp_head.1.weight"],
                              mixed.model.state_dict()["mlp_head.1.weight"])
    with pytest.raises(ValueError, match="TET takes hard labels"):
        tiny_args(tmp_path, loss="tet", mixup=0.8).validate()


def test_cli_recipe_official_runs_and_is_recorded(cifar_dir, tmp_path, capsys):  # noqa: F811
    code, out, err = run_cli(train_main, [
        "--recipe", "official", "--config", '{"dim": 6, "patch_size": 8, "image_size": 32, '
        '"depths": [1, 1], "num_classes": 10}', "--data", cifar_dir, "--epochs", "2",
        "--batch", "16", "--T", "2", "--out", tmp_path / "run", "--no-progress"], capsys)
    assert code == 0, err
    args = load_checkpoint(tmp_path / "run" / "last.npz")["args"]
    assert (args["recipe"], args["mixup"], args["cutmix"], args["schedule"], args["nesterov"],
            args["wd"], args["epochs"]) == ("official", 0.8, 1.0, "epoch-cosine", False, 0.0, 2)


# -- fine-tuning --------------------------------------------------------------------------
TINY = dict(dim=6, patch_size=8, image_size=32, depths=[1, 1], num_classes=10)


@pytest.fixture(scope="module")
def pretrained(cifar_dir, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("pre")
    code = train_main(["--config", str(TINY).replace("'", '"'), "--data", str(cifar_dir),
                       "--epochs", "1", "--batch", "16", "--T", "2", "--out", str(out),
                       "--no-progress"])
    assert code == 0
    return out / "last.npz"


@pytest.fixture(scope="module")
def cifar100(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("c100"), "cifar100", "binary", n_train=64,
                         n_test=20)["folder"].parent


def test_init_reset_head_on_cifar100_keeps_the_body_and_trains(pretrained, cifar100, tmp_path,
                                                                capsys):
    code, out, err = run_cli(train_main, ["--init", pretrained, "--reset-head", "--data",
                                          cifar100, "--epochs", "1", "--batch", "16", "--T",
                                          "2", "--out", tmp_path / "ft", "--no-progress"],
                             capsys)
    assert code == 0, err
    ckpt = load_checkpoint(tmp_path / "ft" / "last.npz")
    assert ckpt["config"]["num_classes"] == 100 and ckpt["config"]["dim"] == 6
    assert ckpt["model"]["mlp_head.1.weight"].shape == (100, 12)
    # the step-0 model of the fine-tuning run: the pretrained body, a fresh head
    args = TrainArgs(**{k: v for k, v in ckpt["args"].items()})
    start = Trainer(args, log=quiet).model.state_dict()
    before = load_checkpoint(pretrained)["model"]
    for key, value in start.items():
        if key.startswith("mlp_head"):
            assert value.shape != before[key].shape
        else:
            np.testing.assert_array_equal(value, before[key], err_msg=key)


def test_init_without_reset_head_names_the_fix(pretrained, cifar100, tmp_path, capsys):
    code, _, err = run_cli(train_main, ["--init", pretrained, "--data", cifar100, "--out",
                                        tmp_path], capsys)
    assert code == 2 and "add --reset-head" in err and len(err.splitlines()) == 1
    code, _, err = run_cli(train_main, ["--init", pretrained, "--preset", "cifar10-p4-d48",
                                        "--reset-head", "--data", cifar100, "--out",
                                        tmp_path / "x", "--no-progress"], capsys)
    assert code == 2 and "does not fit the model" in err and len(err.splitlines()) == 1
    code, _, err = run_cli(train_main, ["--reset-head", "--data", cifar100, "--out", tmp_path],
                           capsys)
    assert code == 2 and "pass --init too" in err


def test_init_from_a_pth_file_and_at_another_image_size(cifar_dir, tmp_path, capsys):  # noqa: F811
    small = dict(TINY, image_size=16)
    model = npsnn.build(small, seed=9)
    save_pth(tmp_path / "w.pth", torch_state_dict(model))
    code, _, err = run_cli(train_main, ["--init", tmp_path / "w.pth", "--image-size", "16",
                                        "--data", cifar_dir, "--epochs", "1", "--batch", "16",
                                        "--T", "2", "--out", tmp_path / "run", "--no-progress"],
                           capsys)
    assert code == 0, err
    ckpt = load_checkpoint(tmp_path / "run" / "last.npz")
    assert ckpt["config"]["image_size"] == 16 and ckpt["args"]["image_size"] == 16
    assert Path(ckpt["args"]["init"]).name == "w.pth"
    # the .pth weights at 16 px do not fit a 32 px model: one line, with the keys
    code, _, err = run_cli(train_main, ["--init", tmp_path / "w.pth", "--data", cifar_dir,
                                        "--config", str(TINY).replace("'", '"'),
                                        "--out", tmp_path / "bad"], capsys)
    assert code == 2 and "token_mix.0.proj_h.1.weight" in err
