"""Shared test setup: where ../shared is, and how a test asks for it.

Tests live in folders that mirror npsnn/ (tests/ops, tests/models, ...); the shared helpers
sit here at the root (gradcheck.py, opchecks.py, reference_check.py, ...), which pytest puts
on sys.path because this conftest.py is here. Test file names are unique across folders.

``need_fixture`` / ``need_cifar``: a test that needs ../shared skips with a message when the
repository is not cloned beside it, except under ``CI=true``, where the absence is a failure
(CI always has ../shared).
"""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NPSNN_SHARED", ROOT.parent / "shared"))
FIXTURES = SHARED / "fixtures"
CIFAR_TAR = SHARED / "data" / "cifar10-jpeg-binary.tar.gz"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _missing(what: str, path: Path):
    message = (f"{what} {path} not found: clone the repo beside ../shared (or set "
               f"NPSNN_SHARED)")
    if IN_CI:
        pytest.fail(f"CI=true but {message}", pytrace=False)
    pytest.skip(message)


def need_fixture(name: str) -> Path:
    """Path of a reference fixture in ../shared/fixtures."""
    path = FIXTURES / name
    if not path.exists():
        _missing("reference fixture", path)
    return path


def need_cifar() -> Path:
    """Path of the CIFAR-10 copy in ../shared/data."""
    if not CIFAR_TAR.exists():
        _missing("CIFAR-10 copy", CIFAR_TAR)
    return CIFAR_TAR
