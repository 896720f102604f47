"""Mixup / CutMix batch ops (npsnn.datasets.mixing): the formulas, the documented draw
order (a replay with the same seed reproduces every choice), and bad input."""
import numpy as np
import pytest

from npsnn.datasets.mixing import Mixing, cutmix_box, mix_batch, soft_targets


def batch(B=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((B, 3, 8, 10)), rng.integers(0, 5, B)


def test_soft_targets_are_smoothed_one_hot():
    q = soft_targets(np.array([2, 0]), 4, 0.1, np.float64)
    np.testing.assert_allclose(q, [[0.025, 0.025, 0.925, 0.025], [0.925, 0.025, 0.025, 0.025]])
    np.testing.assert_allclose(q.sum(1), 1)


def test_mixup_blends_each_image_with_its_partner_in_the_reversed_batch():
    x, y = batch()
    mixing = Mixing(mixup_alpha=0.8)
    out, q, lam, method = mix_batch(x, y, 5, np.random.default_rng(7), mixing, 0.1)
    replay = np.random.default_rng(7)                     # the documented draws
    assert replay.random() < 1.0
    assert lam == replay.beta(0.8, 0.8) and method == "mixup"
    np.testing.assert_allclose(out, lam * x + (1 - lam) * x[::-1], rtol=1e-15)
    s = soft_targets(y, 5, 0.1, x.dtype)
    np.testing.assert_allclose(q, lam * s + (1 - lam) * s[::-1], rtol=1e-15)
    np.testing.assert_allclose(q.sum(1), 1)
    assert np.array_equal(x, batch()[0])                  # the input is not changed


def test_cutmix_pastes_the_partners_box_and_corrects_lam():
    x, y = batch()
    out, q, lam, method = mix_batch(x, y, 5, np.random.default_rng(3), Mixing(cutmix_alpha=1.0))
    replay = np.random.default_rng(3)
    replay.random()
    lam0 = replay.beta(1.0, 1.0)
    y0, y1, x0, x1 = cutmix_box(8, 10, lam0, replay)
    assert method == "cutmix" and (y1 - y0) * (x1 - x0) > 0
    inside = np.zeros((8, 10), bool)
    inside[y0:y1, x0:x1] = True
    np.testing.assert_array_equal(out[:, :, inside], x[::-1][:, :, inside])
    np.testing.assert_array_equal(out[:, :, ~inside], x[:, :, ~inside])
    assert lam == 1 - inside.sum() / 80                   # the share actually kept
    s = soft_targets(y, 5, 0.0, x.dtype)
    np.testing.assert_allclose(q, lam * s + (1 - lam) * s[::-1])


def test_cutmix_box_is_clipped_at_the_borders():
    class Corner:                                          # centre drawn at (0, 0)
        def integers(self, lo, hi):
            return 0
    assert cutmix_box(8, 10, 0.0, Corner()) == (0, 4, 0, 5)  # full-size box, clipped


def test_unmixed_batch_draws_once_and_only_smooths():
    x, y = batch()
    rng = np.random.default_rng(0)
    u = np.random.default_rng(0).random()
    out, q, lam, method = mix_batch(x, y, 5, rng, Mixing(0.8, 1.0, prob=u / 2), 0.2)
    assert (lam, method) == (1.0, "none")
    np.testing.assert_array_equal(out, x)
    np.testing.assert_allclose(q, soft_targets(y, 5, 0.2, x.dtype))
    after = np.random.default_rng(0)
    after.random()
    assert rng.bit_generator.state == after.bit_generator.state


def test_switch_probability_and_lam_distribution():
    x, y = batch(B=2)
    rng = np.random.default_rng(11)
    runs = [mix_batch(x, y, 5, rng, Mixing(0.8, 1.0, prob=1.0, switch_prob=0.3)) for _ in
            range(4000)]
    cut = np.mean([m == "cutmix" for *_, m in runs])
    assert abs(cut - 0.3) < 0.03
    mix_lams = [lam for _, _, lam, m in runs if m == "mixup"]
    assert abs(np.mean(mix_lams) - 0.5) < 0.03                 # Beta(a, a) has mean 1/2


def test_float32_stays_float32_and_bad_input_is_refused():
    x, y = batch()
    out, q, _, _ = mix_batch(x.astype(np.float32), y, 5, np.random.default_rng(0),
                             Mixing(mixup_alpha=1.0))
    assert out.dtype == q.dtype == np.float32
    with pytest.raises(ValueError, match="mixing is off"):
        mix_batch(x, y, 5, np.random.default_rng(0), Mixing())
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        mix_batch(x[0], y, 5, np.random.default_rng(0), Mixing(mixup_alpha=1.0))
    with pytest.raises(ValueError, match="prob must be in"):
        Mixing(mixup_alpha=1.0, prob=1.5)
    with pytest.raises(ValueError, match="cutmix_alpha must be >= 0"):
        Mixing(cutmix_alpha=-1)
