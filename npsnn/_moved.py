"""Old import paths that keep working after a module moved into a wing.

npsnn groups its files into wings (``models/``, ``datasets/``, ``io/``, ``train/``,
``golden/``, ``perf/``; see docs/architecture.md). Code written against the old flat layout
(``from npsnn.smlpnet import TokenMixer``, ``from npsnn import augment``,
``python -m npsnn.bench``) still runs: :data:`MOVED` maps each old module name to its new
home, and a finder at the *end* of ``sys.meta_path`` serves the old name with a small
module object that forwards every attribute to the new module. Because the finder comes
last, a real file always wins; an entry only takes effect once the old file is gone.

Nothing is copied and no class is duplicated: ``npsnn.smlpnet.SMLPNet is
npsnn.models.smlpnet.SMLPNet``.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types

#: old module name -> new module name
MOVED: dict[str, str] = {
    "npsnn.smlpnet": "npsnn.models.smlpnet",
    "npsnn.snnmlp": "npsnn.models.snnmlp",
    "npsnn.presets": "npsnn.models",
    "npsnn.augment": "npsnn.datasets.transforms",
    "npsnn.encoding": "npsnn.datasets.encoding",
    "npsnn.pth": "npsnn.io.pth",
    "npsnn.safe_pickle": "npsnn.io.safe_pickle",
    "npsnn.runtime": "npsnn.perf.runtime",
    "npsnn.bench": "npsnn.perf.bench",
    "npsnn.bench_ops": "npsnn.perf.bench_ops",
    "npsnn.quickstart": "npsnn.train.quickstart",
}


class MovedModule(types.ModuleType):
    """Stands in for a moved module: attribute reads go to the new module."""

    def __init__(self, name: str, target: str) -> None:
        super().__init__(name, f"moved to {target}")
        self.__moved_to__ = target

    def _target(self) -> types.ModuleType:
        return importlib.import_module(self.__moved_to__)

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return getattr(self._target(), name)

    def __dir__(self):
        return dir(self._target())


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return MovedModule(spec.name, MOVED[spec.name])

    def exec_module(self, module) -> None:
        pass

    def get_code(self, fullname):
        """``python -m npsnn.<old name>`` runs the new module as ``__main__``."""
        return compile(f"import runpy\nrunpy.run_module({MOVED[fullname]!r}, "
                       f"run_name='__main__', alter_sys=True)\n", f"<{fullname}>", "exec")


def install() -> None:
    """Append the finder once (called by ``npsnn/__init__.py``)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
