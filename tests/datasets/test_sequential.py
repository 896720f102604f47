"""Sequential CIFAR: Pillow's grayscale, the official normalisation, row-major sequences of
1024 pixels, the trainer's fit check against SpikingSSM, and bad input."""
import numpy as np
import pytest

import npsnn
from cifar_files import write_dataset
from npsnn.datasets import DATASETS, open_source, sample_path
from npsnn.datasets.sequential import GRAY_MEAN, GRAY_STD, SequentialCIFARSource, to_grayscale
from npsnn.models import resolve_config, spec_of
from npsnn.train.data import check_fits


def test_grayscale_is_pillows_convert_L():
    # Pillow 13: Image.fromarray(np.array([[c]], np.uint8)).convert("L") for these colours
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (12, 200, 99),
               (0, 0, 0)]
    expected = [76, 150, 29, 255, 132, 0]
    images = np.array(colours, np.uint8).reshape(len(colours), 1, 1, 3).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(to_grayscale(images).ravel(), expected)
    with pytest.raises(ValueError, match=r"uint8 RGB images \(N, 3, H, W\), got \(2, 1, 4, 4\)"):
        to_grayscale(np.zeros((2, 1, 4, 4), np.uint8))


def test_sequences_from_the_bundled_sample():
    source = open_source("scifar", sample_path())
    assert DATASETS["scifar"] is SequentialCIFARSource
    assert source.name == "scifar10" and source.num_classes == 10
    samples, labels = source.split("test")
    assert samples.shape == (500, 1, 32, 32) and samples.dtype == np.uint8
    rgb, rgb_labels = npsnn.datasets.load_cifar(sample_path(), "test")
    np.testing.assert_array_equal(samples, to_grayscale(rgb))
    np.testing.assert_array_equal(labels, rgb_labels)
    x = source.eval_batch(samples[:3])
    assert x.shape == (3, 1, 1024) and x.dtype == np.float32
    # torchvision's ToTensor + Normalize(122.6/255, 61/255), in float32, read row by row
    ref = ((samples[:3].astype(np.float32) / np.float32(255) - np.float32(GRAY_MEAN[0]))
           / np.float32(GRAY_STD[0])).reshape(3, 1, 1024)
    np.testing.assert_array_equal(x, ref)
    assert x[1, 0, 32 * 5 + 7] == ref[1, 0, 32 * 5 + 7] == x.reshape(3, 32, 32)[1, 5, 7]
    assert source.eval_batch(samples[:2], dtype=np.float64).dtype == np.float64


def test_train_batches_augment_only_when_asked_and_are_reproducible():
    source = open_source("scifar", sample_path())
    samples, _ = source.split("train")
    plain = source.train_batch(samples[:8], np.random.default_rng(0), augment=False)
    np.testing.assert_array_equal(plain, source.eval_batch(samples[:8]))
    a = source.train_batch(samples[:8], np.random.default_rng(1), augment=True, cutout=8)
    b = source.train_batch(samples[:8], np.random.default_rng(1), augment=True, cutout=8)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (8, 1, 1024) and not np.array_equal(a, plain)


def test_fits_spikingssm_and_refuses_a_mismatch(tmp_path):
    files = write_dataset(tmp_path, "cifar10", "binary", n_train=6, n_test=4)
    source = open_source("scifar", files["folder"])
    cfg = resolve_config("spikingssm-scifar-cpu")
    assert spec_of(cfg).dataset == "scifar"
    check_fits(spec_of(cfg), cfg, source)
    with pytest.raises(ValueError, match=r"takes samples of shape \(1, 512\), but the scifar10 "
                                         r"data give \(1, 1024\)"):
        bad = dict(cfg, seq_len=512)
        check_fits(spec_of(bad), bad, source)
