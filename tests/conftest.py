import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NPSNN_SHARED", ROOT.parent / "shared"))
FIXTURES = SHARED / "fixtures"
CIFAR_TAR = SHARED / "data" / "cifar10-jpeg-binary.tar.gz"


def need_fixture(name: str) -> Path:
    """Path of a reference fixture; skip (loudly) if ../shared is not beside the repo."""
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"reference fixture {path} not found: clone the repo beside ../shared "
                    f"(or set NPSNN_SHARED) to run the PyTorch-agreement tests")
    return path


def need_cifar() -> Path:
    if not CIFAR_TAR.exists():
        pytest.skip(f"CIFAR-10 copy {CIFAR_TAR} not found: place the repo beside ../shared")
    return CIFAR_TAR
