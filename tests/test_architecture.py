"""The structure of docs/architecture.md holds: nothing imports upward, no import cycles
between wings, and no room (module) grows past the size a reader can hold without a
stated reason.

Wings are ranked; a module may import from its own wing and from lower ranks only. Command
modules (the ``cli.py`` of a wing, ``quickstart.py``, ``__main__.py``) sit on top of everything:
a command may use any wing. Imports inside functions count as well.
"""
import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "npsnn"

# wing -> rank; a module may import only wings of equal or lower rank
RANKS = {
    "base": 0,         # npsnn/__init__, _checks, module, containers, cli, _moved
    "ops": 1,
    "io": 2,
    "models": 3, "datasets": 3,
    "train": 4, "golden": 4, "viz": 4,   # viz: recording and plotting any model
    "perf": 5, "hw": 5,
}
COMMANDS = {"cli.py", "quickstart.py", "__main__.py"}
# rooms allowed past MAX_LINES, with the reason
MAX_LINES = 420
LARGE_ROOMS = {
    "train/trainer.py": "the training loop with its resume and interruption logic, read as one",
}


def _wing(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else "base"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path):
    """Absolute npsnn module names imported anywhere in the file."""
    tree = ast.parse(path.read_text())
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("npsnn"):
                    yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.startswith("npsnn"):
                yield name
                for alias in node.names:        # `from npsnn import datasets` style
                    yield f"{name}.{alias.name}"


def _wing_of_module(name: str):
    parts = name.split(".")
    if len(parts) == 1:
        return "base"
    if parts[1] in RANKS:
        return parts[1]
    return "base" if (PACKAGE / f"{parts[1]}.py").exists() else None


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _wing_imports():
    """(module path, its wing, imported module, that module's wing) for every import of
    every module that is not a command."""
    for path in _modules():
        if path.name in COMMANDS:
            continue
        wing = _wing(path)
        for name in _imports(path):
            target = _wing_of_module(name)
            if target is not None:
                yield path, wing, name, target


def test_nothing_imports_upward():
    bad = [f"{path.relative_to(ROOT)} ({wing}) imports {name} ({target})"
           for path, wing, name, target in _wing_imports() if RANKS[target] > RANKS[wing]]
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_no_import_cycles_between_wings():
    edges = {}
    for _, wing, _, target in _wing_imports():
        if target != wing:
            edges.setdefault(wing, set()).add(target)

    def reach(start, node, seen):
        for nxt in edges.get(node, ()):
            if nxt == start:
                return True
            if nxt not in seen:
                seen.add(nxt)
                if reach(start, nxt, seen):
                    return True
        return False
    cyclic = [w for w in edges if reach(w, w, set())]
    assert not cyclic, f"wings in an import cycle: {cyclic} (edges {edges})"


def test_every_wing_is_ranked():
    wings = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert wings <= set(RANKS), f"unranked wings {wings - set(RANKS)}: add them to RANKS"


def test_rooms_stay_small_or_say_why():
    big = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in _modules()}
    over = {k: n for k, n in big.items() if n > MAX_LINES and k not in LARGE_ROOMS}
    assert not over, f"modules over {MAX_LINES} lines without a stated reason: {over}"
