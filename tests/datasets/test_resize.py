"""Bilinear resizing (npsnn.datasets.resize): against a per-pixel reference loop, and the
Resized data source."""
import numpy as np
import pytest

from npsnn.datasets import ArraySource
from npsnn.datasets.resize import Resized, resize


def reference(img, sh, sw):
    """One output pixel at a time: pixel centres aligned, edges clamped."""
    c, h, w = img.shape
    out = np.zeros((c, sh, sw))
    for i in range(sh):
        for j in range(sw):
            y = min(max((i + 0.5) * h / sh - 0.5, 0), h - 1)
            x = min(max((j + 0.5) * w / sw - 0.5, 0), w - 1)
            y0, x0 = int(np.floor(y)), int(np.floor(x))
            y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
            dy, dx = y - y0, x - x0
            out[:, i, j] = ((1 - dy) * (1 - dx) * img[:, y0, x0] + (1 - dy) * dx * img[:, y0, x1]
                            + dy * (1 - dx) * img[:, y1, x0] + dy * dx * img[:, y1, x1])
    return out


@pytest.mark.parametrize("size", [(16, 16), (7, 11), (3, 2), (8, 5)])
def test_resize_equals_the_reference(size):
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 5))
    got = resize(x, size)
    assert got.shape == (2, 3) + size and got.flags.c_contiguous
    for b in range(2):
        np.testing.assert_allclose(got[b], reference(x[b], *size), rtol=1e-12, atol=1e-12)


def test_resize_keeps_constants_ramps_and_dtype():
    x = np.full((1, 2, 4, 4), 3.25, np.float32)
    assert resize(x, 9).dtype == np.float32 and np.all(resize(x, 9) == 3.25)
    same = resize(x, 4)
    assert np.array_equal(same, x) and same is not x
    ramp = np.arange(4.0)[None, None, None, :].repeat(4, 2)      # x = column index
    up = resize(ramp, 8)[0, 0, 0]
    np.testing.assert_allclose(up[1:-1], (np.arange(1, 7) + 0.5) / 2 - 0.5)  # exact inside


def test_resize_rejects_bad_input():
    with pytest.raises(ValueError, match="float batch"):
        resize(np.zeros((2, 3, 4, 4), np.uint8), 8)
    with pytest.raises(ValueError, match="positive integer"):
        resize(np.zeros((1, 1, 4, 4)), 0)


def test_resized_source_hands_out_batches_at_the_new_size():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 3, 32, 32), dtype=np.uint8)
    labels = np.arange(6) % 10
    src = ArraySource((images, labels), (images[:3], labels[:3]))
    big = Resized(src, 48)
    assert big.num_classes == 10 and big.split("test")[0].shape == (3, 3, 32, 32)
    np.testing.assert_array_equal(big.eval_batch(images[:2]), resize(src.eval_batch(images[:2]), 48))
    a = big.train_batch(images, np.random.default_rng(5), cutout=8)
    b = resize(src.train_batch(images, np.random.default_rng(5), cutout=8), 48)
    np.testing.assert_array_equal(a, b)                # the source's draws, then a resize
    with pytest.raises(ValueError, match="positive image size"):
        Resized(src, 0)
