"""Input pipeline: crop + flip and cutout against naive per-sample loops, normalisation
values, determinism, batching (incl. mid-epoch resume), bad input."""
import numpy as np
import pytest

from npsnn.datasets import transforms
from npsnn.datasets.transforms import (CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD,
                                       batches, cutout, eval_transform, index_batches,
                                       normalize, num_batches, random_crop_flip,
                                       train_transform)


def _images(b=6, c=3, h=32, w=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(b, c, h, w), dtype=np.uint8)


def _naive_crop_flip(x, rng, padding, flip):
    """Per-sample reference, same draws in the same order as the documented contract."""
    b, c, h, w = x.shape
    dy = rng.integers(0, 2 * padding + 1, size=b)
    dx = rng.integers(0, 2 * padding + 1, size=b)
    mirror = rng.random(b) < 0.5 if flip else np.zeros(b, bool)
    out = np.empty_like(x)
    for i in range(b):
        padded = np.pad(x[i], ((0, 0), (padding, padding), (padding, padding)))
        crop = padded[:, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
        out[i] = crop[:, :, ::-1] if mirror[i] else crop
    return out


@pytest.mark.parametrize("shape,padding,flip", [((6, 3, 32, 32), 4, True),
                                                 ((9, 2, 7, 11), 3, True),
                                                 ((5, 3, 8, 8), 0, True),
                                                 ((7, 1, 5, 6), 2, False)])
def test_crop_flip_equals_naive_loop(shape, padding, flip):
    x = _images(*shape, seed=1)
    got = random_crop_flip(x, np.random.default_rng(42), padding=padding, flip=flip)
    want = _naive_crop_flip(x, np.random.default_rng(42), padding, flip)
    assert got.dtype == np.uint8 and got.shape == x.shape
    np.testing.assert_array_equal(got, want)


def test_crop_flip_covers_every_offset_and_both_orientations():
    x = np.zeros((400, 1, 9, 9), np.uint8)
    x[:, 0, 4, 4] = 255                               # a dot in the centre ...
    x[:, 0, 4, 5] = 128                               # ... with a neighbour on its right
    y = random_crop_flip(x, np.random.default_rng(0), padding=4)
    b, rows, cols = np.nonzero(y[:, 0] == 255)
    assert len(b) == 400                              # the centre dot always stays inside
    assert set(rows) == set(range(9)) and set(cols) == set(range(9))   # all 9 x 9 offsets
    left = cols > 0
    neighbour_left = y[b[left], 0, rows[left], cols[left] - 1] == 128
    right = cols < 8
    neighbour_right = y[b[right], 0, rows[right], cols[right] + 1] == 128
    assert not (neighbour_left.sum() == 0 or neighbour_right.sum() == 0)
    flipped = neighbour_left.sum() / left.sum()       # ~1/2 of the images are mirrored
    assert 0.4 < flipped < 0.6


def test_crop_without_padding_or_flip_is_identity_and_draws_offsets():
    x = _images()
    rng = np.random.default_rng(3)
    y = random_crop_flip(x, rng, padding=0, flip=False)
    np.testing.assert_array_equal(y, x)
    assert y is not x
    ref = np.random.default_rng(3)
    ref.integers(0, 1, size=6), ref.integers(0, 1, size=6)
    assert rng.random() == ref.random()              # exactly the documented draws


def test_normalize_values():
    x = np.array([0, 255, 128], np.uint8).reshape(1, 3, 1, 1) * np.ones((2, 1, 4, 5), np.uint8)
    z = normalize(x)
    assert z.dtype == np.float32 and z.shape == (2, 3, 4, 5)
    m, s = np.array(CIFAR10_MEAN), np.array(CIFAR10_STD)
    want = (np.array([0, 255, 128]) / 255 - m) / s
    np.testing.assert_allclose(z[0, :, 0, 0], want, rtol=1e-6)
    np.testing.assert_allclose(z[:, 0], (0 - 0.4914) / 0.2023, rtol=1e-6)
    z64 = normalize(x, CIFAR100_MEAN, CIFAR100_STD, dtype=np.float64)
    assert z64.dtype == np.float64
    np.testing.assert_allclose(z64[1, :, 3, 4],
                               (np.array([0, 255, 128]) / 255 - np.array(CIFAR100_MEAN))
                               / np.array(CIFAR100_STD), rtol=1e-12)
    np.testing.assert_array_equal(eval_transform(x), z)


def test_exported_constants():
    assert CIFAR10_MEAN == (0.4914, 0.4822, 0.4465) and CIFAR10_STD == (0.2023, 0.1994, 0.2010)
    assert CIFAR100_MEAN == (0.5071, 0.4865, 0.4409) and CIFAR100_STD == (0.2673, 0.2564, 0.2762)
    assert transforms.NORMALIZATION["cifar100"] == (CIFAR100_MEAN, CIFAR100_STD)


def test_cutout_equals_naive_loop():
    x = np.random.default_rng(0).standard_normal((20, 3, 10, 12)).astype(np.float32)
    for length in (4, 5):
        got = cutout(x, np.random.default_rng(7), length)
        rng = np.random.default_rng(7)
        cy, cx = rng.integers(0, 10, size=20), rng.integers(0, 12, size=20)
        want = x.copy()
        for i in range(20):
            y0, y1 = max(cy[i] - length // 2, 0), min(cy[i] + length - length // 2, 10)
            x0, x1 = max(cx[i] - length // 2, 0), min(cx[i] + length - length // 2, 12)
            want[i, :, y0:y1, x0:x1] = 0
        np.testing.assert_array_equal(got, want)
        assert got.dtype == np.float32
    full = cutout(x, np.random.default_rng(1), 64)
    assert not full.any()                             # a hole larger than the image


def test_train_transform_is_deterministic_for_a_seed():
    x = _images(16)
    a = train_transform(x, np.random.default_rng(5), cutout_length=8)
    b = train_transform(x, np.random.default_rng(5), cutout_length=8)
    c = train_transform(x, np.random.default_rng(6), cutout_length=8)
    assert a.dtype == np.float32 and a.shape == (16, 3, 32, 32)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # = crop/flip, then normalise, then cutout, with the draws in that order
    rng = np.random.default_rng(5)
    manual = cutout(normalize(random_crop_flip(x, rng)), rng, 8)
    np.testing.assert_array_equal(a, manual)


# --------------------------------------------------------------------------------------
# batching
# --------------------------------------------------------------------------------------

def test_batches_cover_everything_once_in_rng_order():
    x, y = _images(23), np.arange(23)
    out = list(batches(x, y, 5, np.random.default_rng(0)))
    assert [len(b) for b, _ in out] == [5, 5, 5, 5, 3] == [5, 5, 5, 5, 3]
    order = np.concatenate([lb for _, lb in out])
    np.testing.assert_array_equal(order, np.random.default_rng(0).permutation(23))
    for xb, yb in out:
        np.testing.assert_array_equal(xb, x[yb])
    assert [len(b) for b, _ in batches(x, y, 5, np.random.default_rng(0), drop_last=True)] \
        == [5] * 4 == [5] * num_batches(23, 5, drop_last=True)
    plain = np.concatenate([lb for _, lb in batches(x, y, 4, shuffle=False)])
    np.testing.assert_array_equal(plain, y)


def test_index_batches_draw_at_call_and_resume_mid_epoch():
    rng = np.random.default_rng(11)
    saved = rng.bit_generator.state
    it = index_batches(50, 8, rng)
    after_call = rng.bit_generator.state              # permutation already drawn
    full = list(it)
    assert rng.bit_generator.state == after_call
    resumed_rng = np.random.default_rng()
    resumed_rng.bit_generator.state = saved
    rest = list(index_batches(50, 8, resumed_rng, start=3))
    assert len(full) == 7 and len(rest) == 4
    for a, b in zip(full[3:], rest):
        np.testing.assert_array_equal(a, b)
    assert resumed_rng.bit_generator.state == after_call
    assert list(index_batches(50, 8, np.random.default_rng(0), start=7)) == []


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------

def test_bad_input():
    x, rng = _images(), np.random.default_rng(0)
    with pytest.raises(TypeError, match="random_crop_flip expected images of dtype uint8"):
        random_crop_flip(x.astype(np.float32), rng)
    with pytest.raises(ValueError, match=r"expected images of shape \(B, C, H, W\), got "
                                         r"\(3, 32, 32\).*images\[None\]"):
        random_crop_flip(x[0], rng)
    with pytest.raises(TypeError, match="rng to be a numpy.random.Generator, got int.*"
                                        "default_rng"):
        random_crop_flip(x, 0)
    with pytest.raises(TypeError, match="Generator, got RandomState"):
        cutout(x, np.random.RandomState(0))
    with pytest.raises(ValueError, match="padding to be an integer >= 0, got -1"):
        random_crop_flip(x, rng, padding=-1)
    with pytest.raises(TypeError, match="normalize expected images to be a numpy.ndarray"):
        normalize([[1, 2]])
    with pytest.raises(ValueError, match=r"normalize expected mean with one value per "
                                         r"channel \(3\)"):
        normalize(x, mean=(0.5, 0.5))
    with pytest.raises(ValueError, match="std > 0"):
        normalize(x, std=(0.2, 0.0, 0.2))
    with pytest.raises(TypeError, match="floating dtype"):
        normalize(x, dtype=np.int32)
    with pytest.raises(ValueError, match="cutout expected length to be a positive integer"):
        cutout(x, rng, 0)
    with pytest.raises(ValueError, match=r"labels of shape \(N,\) with N = len\(images\) = 6"):
        batches(x, np.arange(5), 2, rng)
    with pytest.raises(ValueError, match="batch_size to be a positive integer, got 0"):
        batches(x, np.arange(6), 0, rng)
    with pytest.raises(ValueError, match=r"start between 0 and the number of batches \(3\), "
                                         r"got 4"):
        index_batches(6, 2, rng, start=4)
    with pytest.raises(TypeError, match="index_batches expected rng"):
        index_batches(6, 2, None)
