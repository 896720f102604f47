"""The DataSource seam (npsnn.datasets.source): CIFARSource on the bundled sample and on
CIFAR-100 files built here, the same batches as the trainer's pipeline before the seam,
the registry, and the contract a new source is held to."""
import numpy as np
import pytest

from cifar_files import write_dataset
from npsnn.datasets import (DATASETS, CIFARSource, DataSource, Direct, load_cifar, open_source,
                            sample_path)
from npsnn.datasets import transforms
from npsnn.datasets.transforms import (CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD,
                                       eval_transform, normalize)


@pytest.fixture(scope="module")
def sample():
    return open_source("cifar", sample_path())


def _trainer_pipeline(images, rng, mean, std, augment, cutout):
    """The trainer's ``_augment`` before the seam (npsnn/train/trainer.py at 18a129b),
    written out: what train_batch must reproduce draw for draw."""
    if augment:
        return transforms.train_transform(images, rng, mean=mean, std=std, cutout_length=cutout)
    x = transforms.normalize(images, mean, std)
    return transforms.cutout(x, rng, cutout) if cutout else x


# -- CIFAR-10: the bundled sample -------------------------------------------------------------
def test_cifar10_sample_splits_shapes_labels_and_statistics(sample):
    assert isinstance(sample, CIFARSource) and isinstance(sample, DataSource)
    assert sample.name == "cifar10" and sample.num_classes == 10
    assert sample.sample_shape == (3, 32, 32)
    assert sample.mean == CIFAR10_MEAN and sample.std == CIFAR10_STD
    assert isinstance(sample.encoding, Direct)
    for which, n in (("train", 1000), ("test", 500)):
        images, labels = sample.split(which)
        assert images.shape == (n, 3, 32, 32) and images.dtype == np.uint8
        assert labels.shape == (n,) and labels.dtype == np.int64
        assert np.bincount(labels, minlength=10).tolist() == [n // 10] * 10
        want = load_cifar(sample_path(), which)
        np.testing.assert_array_equal(images, want[0])
        np.testing.assert_array_equal(labels, want[1])
    assert "cifar10: 10 classes" in repr(sample) and "cifar10-sample.tar.gz" in repr(sample)


def test_splits_are_read_once_cached_and_read_only(monkeypatch):
    source = CIFARSource(sample_path())
    calls = []
    real = source.load_split
    monkeypatch.setattr(source, "load_split", lambda which: calls.append(which) or real(which))
    images, labels = source.split("test")
    again = source.split("test")
    assert again[0] is images and again[1] is labels and calls == ["test"]
    with pytest.raises(ValueError, match="read-only"):
        images[0, 0, 0, 0] = 1
    with pytest.raises(ValueError, match="read-only"):
        labels[0] = 1
    batch = images[[3, 1]]                           # fancy indexing: a writable copy
    batch[0] = 0
    assert batch.flags.writeable
    with pytest.raises(ValueError, match=r"CIFARSource.split expected which .*'val'"):
        source.split("val")


@pytest.mark.parametrize("augment,cutout", [(True, 0), (True, 8), (False, 0), (False, 5)])
def test_train_batch_equals_the_trainer_pipeline_draw_for_draw(sample, augment, cutout):
    images = sample.split("train")[0][:64]
    rng_a, rng_b = np.random.default_rng(7), np.random.default_rng(7)
    got = sample.train_batch(images[:32], rng_a, augment=augment, cutout=cutout)
    want = _trainer_pipeline(images[:32], rng_b, CIFAR10_MEAN, CIFAR10_STD, augment, cutout)
    assert got.dtype == np.float32 and got.shape == (32, 3, 32, 32)
    np.testing.assert_array_equal(got, want)
    # the generators were advanced equally: the next batch matches too
    np.testing.assert_array_equal(
        sample.train_batch(images[32:], rng_a, augment=augment, cutout=cutout),
        _trainer_pipeline(images[32:], rng_b, CIFAR10_MEAN, CIFAR10_STD, augment, cutout))
    assert rng_a.bit_generator.state == rng_b.bit_generator.state


def test_train_batch_randomness_and_dtype(sample):
    images = sample.split("train")[0][:16]
    a = sample.train_batch(images, np.random.default_rng(1))
    b = sample.train_batch(images, np.random.default_rng(2))
    assert not np.array_equal(a, b)                             # crops/flips differ by seed
    plain = sample.train_batch(images, np.random.default_rng(1), augment=False)
    np.testing.assert_array_equal(plain, sample.eval_batch(images))
    wide = sample.train_batch(images, np.random.default_rng(1), dtype=np.float64)
    assert wide.dtype == np.float64
    np.testing.assert_array_equal(wide, transforms.train_transform(
        images, np.random.default_rng(1), mean=CIFAR10_MEAN, std=CIFAR10_STD, dtype=np.float64))


def test_eval_batch_is_the_normaliser(sample):
    images = sample.split("test")[0][:10]
    got = sample.eval_batch(images)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, eval_transform(images))
    np.testing.assert_array_equal(sample.eval_batch(images, dtype=np.float64),
                                  normalize(images, CIFAR10_MEAN, CIFAR10_STD, np.float64))


# -- CIFAR-100, detected from the files -------------------------------------------------------
@pytest.mark.parametrize("fmt", ["binary", "python"])
def test_cifar100_is_detected_with_its_own_statistics(tmp_path, fmt):
    exp = write_dataset(tmp_path, "cifar100", fmt, n_train=6, n_test=5, seed=4)
    source = open_source("cifar", exp["folder"])
    assert source.name == "cifar100" and source.num_classes == 100
    assert source.mean == CIFAR100_MEAN and source.std == CIFAR100_STD
    images, labels = source.split("test")
    np.testing.assert_array_equal(images, exp["test"][0])
    np.testing.assert_array_equal(labels, exp["test"][1])
    np.testing.assert_array_equal(source.eval_batch(images),
                                  normalize(images, CIFAR100_MEAN, CIFAR100_STD))
    assert not np.array_equal(source.eval_batch(images), normalize(images))   # not CIFAR-10's
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    np.testing.assert_array_equal(
        source.train_batch(images, rng_a, cutout=4),
        _trainer_pipeline(images, rng_b, CIFAR100_MEAN, CIFAR100_STD, True, 4))
    coarse = open_source("cifar", exp["folder"], label="coarse")
    assert coarse.name == "cifar100" and coarse.num_classes == 20
    np.testing.assert_array_equal(coarse.split("train")[1], exp["train_coarse"])


def test_cifar10_folder_is_cifar10(tmp_path):
    exp = write_dataset(tmp_path, "cifar10", "binary", n_train=2, n_test=3)
    source = CIFARSource(tmp_path)                       # the folder that holds it
    assert source.name == "cifar10" and source.num_classes == 10
    assert source.split("train")[0].shape == (10, 3, 32, 32)
    with pytest.raises(ValueError, match="is CIFAR-10, which has no coarse labels"):
        CIFARSource(exp["folder"], label="coarse")


# -- opening sources by name, and bad input ---------------------------------------------------
def test_registry_and_unknown_name():
    assert DATASETS["cifar"] is CIFARSource
    with pytest.raises(ValueError, match=r"unknown data source 'mnist'; known data sources: "
                                         r"cifar, scifar$"):
        open_source("mnist", sample_path())


def test_bad_paths_and_options_fail_when_opened(tmp_path):
    with pytest.raises(ValueError, match="CIFARSource: no data given: pass --data PATH"):
        open_source("cifar", None)
    with pytest.raises(FileNotFoundError, match=r"^CIFARSource: .*nope does not exist"):
        open_source("cifar", tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"^CIFARSource: no CIFAR data found at"):
        open_source("cifar", tmp_path)
    with pytest.raises(ValueError, match="CIFARSource expected label"):
        open_source("cifar", sample_path(), label="medium")
    with pytest.raises(TypeError, match="unexpected keyword argument 'labels'"):
        open_source("cifar", sample_path(), labels="fine")


# -- the contract a new source is held to -----------------------------------------------------
class _Toy(DataSource):
    """A made-up source: (4,) int8 samples, labels from load_split as given."""

    name, num_classes, sample_shape, mean, std = "toy", 2, (4,), (0.0,), (1.0,)

    def __init__(self, samples, labels):
        super().__init__()
        self.data = samples, labels

    def load_split(self, which):
        return self.data

    def train_batch(self, samples, rng, *, augment=True, cutout=0, dtype=np.float32):
        return samples.astype(dtype)

    def eval_batch(self, samples, dtype=np.float32):
        return samples.astype(dtype)


def test_a_new_source_gets_caching_checks_and_direct_encoding():
    good = _Toy(np.zeros((3, 4), np.int8), np.array([0, 1, 0]))
    assert good.split("train")[0].shape == (3, 4) and isinstance(good.encoding, Direct)
    assert repr(good) == "<_Toy toy: 2 classes, samples (4,), Direct()>"
    with pytest.raises(ValueError, match=r"_Toy.load_split\('test'\) returned samples of "
                                         r"shape \(3, 5\), expected \(N, 4\)"):
        _Toy(np.zeros((3, 5), np.int8), np.array([0, 1, 0])).split("test")
    with pytest.raises(ValueError, match=r"returned labels int64 \(2,\), expected int64 "
                                         r"\(3,\), one per sample"):
        _Toy(np.zeros((3, 4), np.int8), np.array([0, 1])).split("test")
    with pytest.raises(ValueError, match=r"returned labels int32 \(3,\)"):
        _Toy(np.zeros((3, 4), np.int8), np.array([0, 1, 0], np.int32)).split("test")


def test_the_base_class_is_abstract():
    with pytest.raises(TypeError, match="abstract"):
        DataSource()

    class Partial(DataSource):
        def load_split(self, which):
            raise AssertionError
    with pytest.raises(TypeError, match="eval_batch"):
        Partial()
