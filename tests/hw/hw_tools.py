"""Helpers of the hardware tests: tool checks and exports shared by several test files.

``need_hw()`` / ``need_tool(name)``: a test that needs Icarus + cocotb (or Verilator,
Yosys) skips with an install hint when they are absent, except under ``CI=true``, where
the absence is a failure (.ci/run installs them).

The exports are made once per test session (cached here, in a temporary folder removed
at exit): the corner-case suite, and the tutorial checkpoint ``cifar10-p4-d48`` as given
and snapped, exported for 2 images of the bundled CIFAR-10 sample.
"""
from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "tutorials" / "assets" / "cifar10-p4-d48.npz"
SAMPLE = ROOT / "data" / "cifar10-sample.tar.gz"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_TMP = Path(tempfile.mkdtemp(prefix="npsnn-hw-tests-"))
atexit.register(shutil.rmtree, _TMP, True)


def _absent(message: str):
    if IN_CI:
        pytest.fail(f"CI=true but {message}", pytrace=False)
    pytest.skip(message)


def need_hw():
    """Icarus Verilog and cocotb, or skip (fail under CI=true) with the install hint."""
    from npsnn.hw.replay import INSTALL_HINT, missing_tools
    missing = missing_tools()
    if missing:
        _absent(f"{', '.join(missing)} not installed; {INSTALL_HINT}")


def need_tool(name: str, hint: str = "apt-get install -y verilator yosys"):
    if shutil.which(name) is None:
        _absent(f"{name} not installed; {hint}")


def scratch(name: str) -> Path:
    """A fresh folder inside the session's temporary folder."""
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=_TMP))
    return path


@functools.lru_cache(maxsize=None)
def corner_suite() -> Path:
    from npsnn.golden.corner import export_corner
    out = _TMP / "corner"
    export_corner(out, T=4)
    return out


@functools.lru_cache(maxsize=None)
def tutorial_export(snapped: bool) -> Path:
    """The tutorial checkpoint (as given, or snapped to the 8-bit grid) exported for test
    images 0:2 of the bundled sample, T = 4 (64 calibration images)."""
    from npsnn.golden.cli import main as golden
    checkpoint = CHECKPOINT
    if snapped:
        checkpoint = _TMP / "snapped.npz"
        assert golden(["snap", "--checkpoint", str(CHECKPOINT), "--out", str(checkpoint)]) == 0
    out = _TMP / ("snapped" if snapped else "given")
    assert golden(["export", "--checkpoint", str(checkpoint), "--data", str(SAMPLE),
                   "--images", "0:2", "--calib", "64", "--T", "4", "--out", str(out)]) == 0
    return out
