"""The attack campaign of issue 14 (tests/attack.py), as a slow test: every case of every
class must be handled. The default test run holds a representative set of the same attacks
(tests/io/test_bounded_readers.py, tests/train/test_crash.py, test_run_safety.py,
test_hostile_checkpoints.py, tests/models/test_bad_api_input.py, ...)."""
import pytest

import attack
from attack_kit import run_campaign, table


@pytest.mark.slow
def test_every_attack_is_handled():
    assert len(attack.CASES) > 100                  # importing attack registered them
    results = run_campaign(log=lambda line: None)
    failures = [f"[{cls}] {name}: {problem}" for cls, r in results.items()
                for name, problem in r["failures"]]
    assert not failures, table(results) + "\n" + "\n".join(failures)
