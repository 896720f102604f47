"""Old flat import paths keep working after modules move into wings (npsnn/_moved.py)."""
import importlib.util
import subprocess
import sys

import pytest

from npsnn import _moved
from conftest import ROOT


def test_a_moved_name_forwards_to_its_new_home(monkeypatch):
    import importlib
    monkeypatch.setitem(_moved.MOVED, "npsnn.old_checks_name", "npsnn._checks")
    sys.modules.pop("npsnn.old_checks_name", None)
    try:
        old = importlib.import_module("npsnn.old_checks_name")
        from npsnn import _checks
        assert old.expect_array is _checks.expect_array
        assert "expect_shape" in dir(old)
        with pytest.raises(AttributeError):
            old.no_such_name
    finally:
        sys.modules.pop("npsnn.old_checks_name", None)


def test_a_real_file_wins_over_the_table():
    # the finder is last on sys.meta_path: entries only apply once the old file is gone
    from importlib.machinery import PathFinder
    ours = [i for i, f in enumerate(sys.meta_path) if isinstance(f, _moved._MovedFinder)]
    files = [i for i, f in enumerate(sys.meta_path) if f is PathFinder]
    assert len(ours) == 1 and files and ours[0] > max(files)


@pytest.mark.parametrize("old", sorted(_moved.MOVED))
def test_every_old_path_imports(old):
    import importlib
    assert isinstance(importlib.util.find_spec(old).loader, _moved._MovedFinder), \
        f"{old} is a real file again: remove it from npsnn/_moved.py or the file"
    module = importlib.import_module(old)
    new = importlib.import_module(_moved.MOVED[old])
    public = [n for n in dir(new) if not n.startswith("_")][:5]
    for name in public:
        assert getattr(module, name) is getattr(new, name)


def test_python_dash_m_on_an_old_name_runs_the_new_module():
    run = subprocess.run([sys.executable, "-m", "npsnn.bench", "--help"], capture_output=True,
                         text=True, cwd=ROOT, timeout=60,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    assert "train-step" in run.stdout
