"""npsnn: spiking MLP networks (sMLPNet) in pure NumPy.

Hand-written forward and BPTT backward passes, gradient-checked and matched against
PyTorch + SpikingJelly; an integer accumulate-only golden model; CIFAR-10 training on CPU.
"""
from . import _moved

_moved.install()          # old flat import paths (npsnn.smlpnet, ...) keep working

from .ops.axis_lif import AxisLIF
from .ops.lif import LIF
from .presets import PRESETS, build, resolve_config
from .smlpnet import SMLPNet
from .snnmlp import SNNMLP
from .pth import load_pth

__version__ = "0.1.0"
__all__ = ["AxisLIF", "LIF", "PRESETS", "SMLPNet", "SNNMLP", "build", "load_pth", "resolve_config", "__version__"]
