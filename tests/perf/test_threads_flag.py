"""Every long-running command takes --threads, reports the threads it uses and why in one
line, and refuses a bad count in one line (exit 2, no traceback)."""
import json

import pytest

from cifar_files import write_dataset
from npsnn import workers
from thread_state import restore_threads  # noqa: F401  (a fixture)

TINY = dict(dim=6, patch_size=8, image_size=32, depths=[1, 1], num_classes=10)


@pytest.fixture(autouse=True)
def _restore(restore_threads):
    yield


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_dataset(root, "cifar10", "binary", n_train=8, n_test=16)    # 40 train images
    return root


def _train(cifar_dir, out, *extra):
    from npsnn.train.cli import train_main
    return train_main(["--config", json.dumps(TINY), "--data", str(cifar_dir), "--out",
                       str(out), "--epochs", "1", "--batch", "16", "--T", "2",
                       "--no-progress", *extra])


def test_train_eval_quickstart_report_and_use_the_thread_count(cifar_dir, tmp_path, capsys):
    from npsnn.train.cli import eval_main
    from npsnn.train.quickstart import main as quickstart
    assert _train(cifar_dir, tmp_path / "run", "--threads", "2") == 0
    out = capsys.readouterr().out
    assert "threads: 2 (--threads;" in out and workers.workers() == 2
    assert eval_main(["--checkpoint", str(tmp_path / "run"), "--threads", "1"]) == 0
    assert "threads: 1 (--threads;" in capsys.readouterr().out and workers.workers() == 1
    assert eval_main(["--checkpoint", str(tmp_path / "run"), "--json", "--threads", "1"]) == 0
    captured = capsys.readouterr()
    json.loads(captured.out)                           # stdout stays one JSON object
    assert "threads: 1 (--threads;" in captured.err
    assert quickstart(["--data", str(cifar_dir), "--out", str(tmp_path / "q"), "--epochs",
                       "1", "--no-progress", "--config", json.dumps(TINY), "--threads",
                       "2"]) == 0
    assert "threads: 2 (--threads;" in capsys.readouterr().out


def test_the_environment_is_the_fallback_and_resume_may_change_threads(cifar_dir, tmp_path,
                                                                         capsys, monkeypatch):
    from npsnn.train.cli import train_main
    monkeypatch.setenv("NPSNN_THREADS", "1")
    assert _train(cifar_dir, tmp_path / "run", "--epochs", "2") == 0
    assert "threads: 1 (NPSNN_THREADS;" in capsys.readouterr().out
    part = tmp_path / "part"
    assert train_main(["--config", json.dumps(TINY), "--data", str(cifar_dir), "--out",
                       str(part), "--epochs", "2", "--batch", "16", "--T", "2",
                       "--no-progress", "--threads", "1"]) == 0
    capsys.readouterr()
    # --threads is not a setting of the run: a finished run refuses to resume for being
    # finished, not for a differing --threads
    assert train_main(["--resume", str(part), "--threads", "2", "--no-progress"]) == 2
    assert "already finished" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["train", "eval", "quickstart"])
def test_a_bad_thread_count_is_one_line(command, cifar_dir, tmp_path, capsys):
    from npsnn.train.cli import eval_main
    from npsnn.train.quickstart import main as quickstart
    if command == "train":
        code = _train(cifar_dir, tmp_path / "run", "--threads", "0")
    elif command == "eval":
        assert _train(cifar_dir, tmp_path / "run") == 0
        capsys.readouterr()
        code = eval_main(["--checkpoint", str(tmp_path / "run"), "--threads", "many"])
    else:
        code = quickstart(["--data", str(cifar_dir), "--out", str(tmp_path / "q"),
                           "--threads", "-2", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "--threads must be a positive number of threads or 'auto'" in err
    assert len(err.strip().splitlines()) == 1


def test_golden_eval_takes_the_threads_flag(capsys):
    from npsnn.golden.cli import main
    assert main(["eval", "--help"]) == 0 and "--threads N" in capsys.readouterr().out
