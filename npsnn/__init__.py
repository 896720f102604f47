"""npsnn: spiking MLP networks (sMLPNet) in pure NumPy.

Hand-written forward and BPTT backward passes, gradient-checked and matched against
PyTorch + SpikingJelly; an integer accumulate-only golden model; CIFAR-10 training on CPU.

The package is organised in wings (docs/architecture.md): ``npsnn.ops`` (forward/backward
pairs), ``npsnn.models`` (networks, presets, the model registry), ``npsnn.datasets``,
``npsnn.io`` (files), ``npsnn.train``, ``npsnn.golden`` (the integer model) and
``npsnn.perf``. Everything here is imported on first use, so ``import npsnn`` is instant
and running an integer network never loads the float models.
"""
from __future__ import annotations

import importlib

from . import _moved

_moved.install()          # old flat import paths (npsnn.smlpnet, ...) keep working

__version__ = "0.1.0"

#: public name -> module that defines it
_API = {
    "AxisLIF": "npsnn.ops.axis_lif",
    "LIF": "npsnn.ops.lif",
    "MODELS": "npsnn.models",
    "PRESETS": "npsnn.models",
    "build": "npsnn.models",
    "resolve_config": "npsnn.models",
    "SMLPNet": "npsnn.models.smlpnet",
    "SNNMLP": "npsnn.models.snnmlp",
    "SpikingSSM": "npsnn.models.spikingssm",
    "load_pth": "npsnn.io.pth",
    "save_pth": "npsnn.io.pth_write",
    "to_nir": "npsnn.io.nir",
    "from_nir": "npsnn.models.nir_import",
}
#: sub-packages reachable as attributes after a plain ``import npsnn``
_WINGS = ("datasets", "golden", "hw", "io", "models", "ops", "perf", "train", "viz")

__all__ = sorted(_API) + ["__version__"]


def __getattr__(name: str):
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value              # later lookups skip this function
        return value
    if name in _WINGS:
        return importlib.import_module(f"npsnn.{name}")
    raise AttributeError(f"module 'npsnn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_API) | set(_WINGS))
