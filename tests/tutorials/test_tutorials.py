"""The tutorials run: every ``tutorials/*.ipynb`` is executed top to bottom, one test each.

Each notebook runs in a fresh ``python3`` kernel (nbclient) with ``tutorials/`` as its
working directory and this checkout first on ``PYTHONPATH``, so the notebooks import the
npsnn under test. A cell that raises (the notebooks check their hand derivations with
``assert``) fails the test. Notebooks must not write files into the repository: the test
compares the file listing of ``tutorials/`` before and after.

The notebooks are committed *with* their outputs so they read well when browsed; after
editing one, re-execute it in place:
``jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.record_timing=False
tutorials/NN_name.ipynb``.

Exercises (tutorials/README.md, "Writing an exercise"): a code cell tagged ``exercise`` is a
stub the learner completes; its metadata ``"exercise": {"wrong": ..., "solution": ...}`` holds
two replacement sources for the whole cell, a plausible mistake and a correct answer. A check
cell calls ``npsnn.exercises.check``, which prints ``"<function>: <verdict>"``. The committed
notebook (stubs unimplemented) must report ``not implemented yet`` for every stub function. A
second run replaces every stub by its wrong answer, runs the cells up to its check (which must
say ``not yet``: the exercises have teeth), then by its solution and the same cells again
(``correct``: the checks are passable); it stops after the last check cell, the rest is what
the first run covered.
"""
from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

if os.environ.get("CI"):
    # CI installs both extras (.ci/run): a missing package there is a failure, not a skip.
    import matplotlib  # noqa: F401
    import nbclient
    import nbformat
else:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    # The notebooks plot; matplotlib comes with the "tutorials" extra
    pytest.importorskip("matplotlib", reason="the tutorials need matplotlib: "
                        "pip install -e '.[test,tutorials]'")

ROOT = Path(__file__).resolve().parents[2]
TUTORIALS = ROOT / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
CELL_TIMEOUT = 300          # seconds per cell; every notebook takes well under a minute
EXERCISE_TAG = "exercise"
MIN_EXERCISES = 2           # per notebook (issue 17)
# "<function>: <verdict>", as printed by npsnn.exercises.check
VERDICT_LINE = re.compile(r"^(\w+): (correct|not yet|not implemented yet)\b", re.MULTILINE)


def _needs(name: str) -> None:
    """Skip a notebook whose tools are absent (with the install hint); under CI=true the
    absence is a failure (.ci/run installs them). Tutorial 11 simulates RTL."""
    if name.startswith("11_"):
        from npsnn.hw.replay import INSTALL_HINT, missing_tools
        missing = missing_tools()
        if missing:
            message = f"{name} needs {', '.join(missing)}; {INSTALL_HINT}"
            if os.environ.get("CI"):
                pytest.fail(f"CI=true but {message}", pytrace=False)
            pytest.skip(message)


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")
            if ".ipynb_checkpoints" not in p.parts and "__pycache__" not in p.parts}


def _execute(nb, name: str, monkeypatch) -> None:
    """Run ``nb`` in place in a fresh kernel (cwd tutorials/, this checkout on PYTHONPATH);
    fail on any error output or on a file written into tutorials/."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    monkeypatch.setenv("MPLBACKEND", "Agg")          # no display needed; %matplotlib inline wins
    _needs(name)
    before = _listing(TUTORIALS)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, startup_timeout=120,
                                     kernel_name="python3", allow_errors=False,
                                     resources={"metadata": {"path": str(TUTORIALS)}})
    client.execute()                                 # raises CellExecutionError on a failing cell
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, f"{name}: a cell produced an error output: {errors[0].get('ename')}"
    created = _listing(TUTORIALS) - before
    assert not created, f"{name} wrote files into the repository: {sorted(created)}"


def _stubs(nb) -> list[tuple[int, list[str]]]:
    """(cell index, names of the functions it defines) of every exercise stub cell."""
    return [(i, [node.name for node in ast.parse(cell.source).body
                 if isinstance(node, ast.FunctionDef)])
            for i, cell in enumerate(nb.cells)
            if cell.cell_type == "code" and EXERCISE_TAG in cell.metadata.get("tags", [])]


def _verdicts(nb) -> dict[str, list[str]]:
    """{function name: [verdicts in the order printed]} from every cell's printed output."""
    found: dict[str, list[str]] = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("output_type") == "stream":
                for name, verdict in VERDICT_LINE.findall(out.get("text", "")):
                    found.setdefault(name, []).append(verdict)
    return found


def _assert_verdicts(nb, name: str, expected: str) -> None:
    verdicts = _verdicts(nb)
    for i, functions in _stubs(nb):
        for function in functions:
            said = verdicts.get(function)
            assert said, (f"{name}: no check printed a verdict for {function} (stub cell "
                          f"{i}); call npsnn.exercises.check on it")
            assert set(said) == {expected}, (
                f"{name}: the check of {function} said {said}, expected {expected!r}")


def test_notebooks_exist():
    assert len(NOTEBOOKS) >= 6, f"expected the tutorial notebooks in {TUTORIALS}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom(path, monkeypatch):
    """As committed: every cell runs, and every stub reports 'not implemented yet' (its
    check falls back to the reference, so the rest of the notebook runs)."""
    nb = nbformat.read(path, as_version=4)
    _execute(nb, path.name, monkeypatch)
    _assert_verdicts(nb, path.name, "not implemented yet")


def _wrong_then_right(nb, name: str):
    """The cells of ``nb`` up to its last check, with every stub cell replaced by its wrong
    answer followed by the cells up to and including its check cell (the first later cell
    that calls ``check(`` on one of the stub's functions), then by its solution and the same
    cells again."""
    cells, stubs, out, k = nb.cells, dict(_stubs(nb)), [], 0
    while k < len(cells):
        if k not in stubs:
            out.append(cells[k])
            k += 1
            continue
        calls = [f"check({f}" for f in stubs[k]]
        j = next((m for m in range(k + 1, len(cells)) if cells[m].cell_type == "code"
                  and any(c in cells[m].source for c in calls)), None)
        assert j is not None, f"{name}: no cell after stub cell {k} calls {calls[0]}, ...)"
        for answer in ("wrong", "solution"):
            out.append(nbformat.v4.new_code_cell(cells[k].metadata["exercise"][answer]))
            out.extend(nbformat.from_dict(c) for c in cells[k + 1:j + 1])
        k = j + 1
    last = max(i for i, c in enumerate(out) if c.cell_type == "code" and "check(" in c.source)
    return out[:last + 1]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercise_checks_tell_wrong_from_right(path, monkeypatch):
    """Each stub replaced by its wrong answer: its check says 'not yet' (and falls back to
    the reference); then by its solution: 'correct'."""
    nb = nbformat.read(path, as_version=4)
    stubs = _stubs(nb)
    if not stubs:
        pytest.skip(f"{path.name} has no exercises (test_every_notebook_has_exercises fails)")
    name = f"{path.name} (wrong, then right answers)"
    nb.cells = _wrong_then_right(nb, name)
    _execute(nb, name, monkeypatch)
    verdicts = _verdicts(nb)
    for i, functions in stubs:
        for function in functions:
            assert verdicts.get(function) == ["not yet", "correct"], (
                f"{name}: the check of {function} (stub cell {i}) said "
                f"{verdicts.get(function)}, expected ['not yet', 'correct']")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_has_exercises_and_a_prediction(path):
    nb = nbformat.read(path, as_version=4)
    stubs = _stubs(nb)
    functions = [f for _, names in stubs for f in names]
    assert len(functions) >= MIN_EXERCISES, (
        f"{path.name} has {len(functions)} exercise(s); write at least {MIN_EXERCISES} "
        f"(tutorials/README.md, 'Writing an exercise')")
    assert len(set(functions)) == len(functions), f"{path.name}: two stubs define the same name"
    for i, names in stubs:
        cell = nb.cells[i]
        assert names, f"{path.name}: exercise cell {i} defines no function"
        assert "raise NotImplementedError" in cell.source, (
            f"{path.name}: exercise cell {i} must end its stub with raise NotImplementedError")
        answers = cell.metadata.get("exercise", {})
        for mode in ("wrong", "solution"):
            assert isinstance(answers.get(mode), str) and answers[mode].strip(), (
                f"{path.name}: exercise cell {i} needs metadata exercise.{mode} (the source "
                f"that replaces the stub in the {mode}-answers test)")
            defined = [n.name for n in ast.parse(answers[mode]).body
                       if isinstance(n, ast.FunctionDef)]
            assert defined == names, (f"{path.name}: exercise cell {i}: the {mode} answer "
                                      f"defines {defined}, the stub {names}")
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    assert any("Predict" in m for m in markdown) and any("<details>" in m for m in markdown), (
        f"{path.name} needs a 'Predict, then run' question with its answer in a collapsed "
        f"<details> cell")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_with_outputs(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    unexecuted = [i for i, c in enumerate(code) if c.get("execution_count") is None]
    assert code and not unexecuted, (
        f"{path.name} is saved without outputs (code cells {unexecuted[:5]} never ran); "
        f"run: jupyter nbconvert --to notebook --execute --inplace "
        f"--ExecutePreprocessor.record_timing=False tutorials/{path.name}")


def test_readme_lists_every_notebook_and_folder_stays_small():
    readme = (TUTORIALS / "README.md").read_text()
    missing = [p.name for p in NOTEBOOKS if p.name not in readme]
    assert not missing, f"tutorials/README.md does not mention {missing}"
    files = [p for p in TUTORIALS.rglob("*") if p.is_file() and ".ipynb_checkpoints" not in p.parts]
    assets = sum(p.stat().st_size for p in files if "assets" in p.relative_to(TUTORIALS).parts)
    size = sum(p.stat().st_size for p in files) - assets
    # 13 notebooks with legible figures (dpi 100, 110-120 where detail matters) and their
    # outputs; keep it small anyway: a figure of ~ (6, 3) inches is plenty
    assert size < 3_000_000, (f"tutorials/ (without assets/) is {size / 1e6:.2f} MB; keep it "
                              f"under 3 MB (smaller figures: figsize ~ (6, 3), dpi 100)")
    assert assets < 5_000_000, f"tutorials/assets is {assets / 1e6:.2f} MB; keep it under 5 MB"
