"""npsnn.exercises: the check behind every tutorial exercise says the right thing."""
import numpy as np
import pytest

from npsnn.exercises import CORRECT, NOT_IMPLEMENTED, NOT_YET, check, numerical_gradient


def reference(x, scale=2.0):
    return x * scale, x.sum()


def verdict(capsys):
    out = capsys.readouterr().out
    assert out.count("\n") == 1, f"check should print exactly one line, got {out!r}"
    return out


CASES = [(np.arange(6.0).reshape(2, 3),), dict(x=np.ones(4), scale=3.0)]


def test_correct_candidate_is_returned(capsys):
    def mine(x, scale=2.0):
        return scale * x, np.sum(x)
    assert check(mine, reference, CASES) is mine
    out = verdict(capsys)
    assert out.startswith(f"mine: {CORRECT} (2 cases")


def test_wrong_candidate_reports_the_error_and_falls_back(capsys):
    def mine(x, scale=2.0):
        return x * scale + 0.25, x.sum()
    assert check(mine, reference, CASES) is reference
    out = verdict(capsys)
    assert out.startswith(f"mine: {NOT_YET}: max error 2.5e-01 in output[0]")
    assert "case 1 of 2 (float64 (2, 3))" in out and "reference solution" in out


def test_unimplemented_stub_falls_back_and_says_so(capsys):
    def mine(x, scale=2.0):
        raise NotImplementedError
    assert check(mine, reference, CASES) is reference
    out = verdict(capsys)
    assert out.startswith(f"mine: {NOT_IMPLEMENTED}:")
    assert "test_exercises.reference" in out          # names the reference it falls back to


@pytest.mark.parametrize("mine, message", [
    (lambda x, scale=2.0: (x * scale,), "should be 2 values, got 1"),
    (lambda x, scale=2.0: (x[:1] * scale, x.sum()), "has shape (1, 3) but should have shape (2, 3)"),
    (lambda x, scale=2.0: (x * np.nan, x.sum()), "nan or inf where the reference is finite"),
    (lambda x, scale=2.0: (x * scale, "total"), "should be a number or an array"),
    (lambda x, scale=2.0: 1 / 0, "raised ZeroDivisionError"),
])
def test_every_kind_of_wrong_answer_is_named(capsys, mine, message):
    assert check(mine, reference, CASES, name="mine") is reference
    out = verdict(capsys)
    assert out.startswith(f"mine: {NOT_YET}") and message in out, out


def test_tolerance_is_relative_plus_absolute(capsys):
    big = (np.array([1e6]),)
    nudged = lambda x, scale=2.0: (x * scale * (1 + 1e-11), x.sum())
    assert check(nudged, reference, [big], name="nudged") is nudged        # within rtol 1e-9
    assert check(nudged, reference, [big], rtol=1e-13, name="nudged") is reference
    out = capsys.readouterr().out
    assert f"nudged: {CORRECT}" in out and f"nudged: {NOT_YET}" in out


def test_integers_and_booleans_must_match_exactly(capsys):
    ref = lambda x: x >= 1.0
    off = lambda x: x > 1.0                                  # the classic off-by-equality
    assert check(off, ref, [np.array([0.5, 1.0, 2.0])], name="fire") is ref
    assert "max error 1.0e+00" in capsys.readouterr().out


def test_dict_outputs_and_key_mismatch(capsys):
    ref = lambda x: {"mean": x.mean(), "max": x.max()}
    assert check(lambda x: {"mean": x.mean()}, ref, [np.ones(3)], name="d") is ref
    assert "keys ['max', 'mean']" in capsys.readouterr().out
    good = lambda x: {"max": x.max(), "mean": x.mean()}
    assert check(good, ref, [np.ones(3)], name="d") is good


def test_each_call_gets_its_own_copy_of_the_inputs(capsys):
    x = np.ones(3)

    def destructive(x, scale=2.0):
        out = (x * scale, x.sum())
        x[:] = 99.0                                          # writes into its input
        return out
    assert check(destructive, reference, [(x,), (x,)]) is destructive
    assert np.array_equal(x, np.ones(3))


def test_bad_use_of_check_is_refused():
    with pytest.raises(ValueError, match="at least one case"):
        check(reference, reference, [])
    with pytest.raises(ValueError, match="rtol, atol >= 0"):
        check(reference, reference, CASES, rtol=-1.0)


def test_numerical_gradient_matches_an_analytic_gradient():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 4))
    x = rng.normal(size=(3, 4))
    f = lambda u: float(np.sum(a * u ** 3))
    np.testing.assert_allclose(numerical_gradient(f, x), 3 * a * x ** 2, rtol=1e-7, atol=1e-9)
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(f, x.astype(np.float32))


def test_a_gradient_exercise_catches_a_slightly_wrong_backward(capsys):
    rng = np.random.default_rng(1)
    g = rng.normal(size=5)
    loss = lambda x: float(np.sum(g * np.tanh(x)))
    exact = lambda x: g * (1 - np.tanh(x) ** 2)
    sloppy = lambda x: g * (1 - np.tanh(x) ** 2) * 1.001
    ref = lambda x: numerical_gradient(loss, x)
    x = rng.normal(size=5)
    assert check(exact, ref, [x], rtol=1e-6, atol=1e-9, name="grad") is exact
    assert check(sloppy, ref, [x], rtol=1e-6, atol=1e-9, name="grad") is ref
    out = capsys.readouterr().out
    assert f"grad: {CORRECT}" in out and f"grad: {NOT_YET}" in out
