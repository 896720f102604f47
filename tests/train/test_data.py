"""The trainer asks the model's spec and the DataSource: model/data mismatches are refused
before the first step with one line naming both sides."""
import numpy as np
import pytest

from npsnn.datasets import ArraySource, Direct
from npsnn.models import spec_of
from npsnn.train.data import check_fits, open_data, subset
from npsnn.train.cli import train_main
from npsnn.train.trainer import TrainArgs, Trainer

TINY = dict(dim=6, patch_size=8, image_size=32, depths=[1, 1], num_classes=10)


def _arrays(n=24, size=32, channels=3, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, channels, size, size), dtype=np.uint8),
            rng.integers(0, classes, n).astype(np.int64))


def _args(tmp_path, **kw):
    return TrainArgs(**dict(dict(preset=None, config=TINY, out=str(tmp_path), epochs=1,
                                 batch=8, T=2, progress=False), **kw))


def test_arrays_become_an_array_source_with_the_models_statistics():
    cfg = spec_of(TINY).resolve(TINY)
    source = open_data((*_arrays(), *_arrays(seed=1)), dataset=None, path=None,
                       spec=spec_of(cfg), config=cfg)
    assert isinstance(source, ArraySource) and source.name == "cifar10"
    assert isinstance(source.encoding, Direct)
    cfg100 = dict(cfg, num_classes=100)
    assert open_data((*_arrays(), *_arrays(seed=1)), dataset=None, path=None,
                     spec=spec_of(cfg), config=cfg100).name == "cifar100"
    with pytest.raises(TypeError, match="DataSource or as"):
        open_data([1, 2], dataset=None, path=None, spec=spec_of(cfg), config=cfg)


def test_the_callers_arrays_stay_writable():
    train, test = _arrays(), _arrays(seed=1)
    source = ArraySource(train, test)
    samples, _ = source.split("train")
    assert not samples.flags.writeable and train[0].flags.writeable


@pytest.mark.parametrize("arrays,match", [
    (dict(size=16), r"takes samples of shape \(3, 32, 32\).*give \(3, 16, 16\)"),
    (dict(channels=1), r"normalisation is for 3 channels, but the images have 1"),
])
def test_a_model_built_for_other_samples_is_refused(tmp_path, arrays, match):
    data = (*_arrays(**arrays), *_arrays(seed=1, **arrays))
    with pytest.raises(ValueError, match=match):
        Trainer(_args(tmp_path), data)
    assert not any(tmp_path.iterdir())              # nothing written


def test_labels_beyond_the_models_classes_are_refused(tmp_path):
    cfg = spec_of(TINY).resolve(dict(TINY, num_classes=5))
    source = ArraySource(_arrays(), _arrays(seed=1))
    with pytest.raises(ValueError, match="go up to 9, but the model has only 5 classes"):
        check_fits(spec_of(cfg), cfg, source)
    cfg = spec_of(TINY).resolve(dict(TINY, num_classes=100))
    with pytest.raises(ValueError, match="cifar10 has 10 classes but the model has 100"):
        check_fits(spec_of(cfg), cfg, source)


def test_train_cli_refuses_a_model_data_mismatch_with_exit_2(tmp_path, capsys):
    code = train_main(["--config", '{"dim": 6, "patch_size": 8, "image_size": 32, '
                                   '"depths": [1, 1], "num_classes": 7}',
                       "--data", "data/cifar10-sample.tar.gz", "--out", str(tmp_path / "r"),
                       "--epochs", "1", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "only 7 classes" in err
    assert not (tmp_path / "r").exists()


def test_subset_is_seeded_and_in_file_order():
    x, y = _arrays(n=50)
    a, la = subset(x, y, 10, seed=3)
    b, lb = subset(x, y, 10, seed=3)
    assert np.array_equal(a, b) and len(a) == 10
    idx = [int(np.flatnonzero((x == s).all(axis=(1, 2, 3)))[0]) for s in a]
    assert idx == sorted(idx)
    assert subset(x, y, None, 0)[0] is x
