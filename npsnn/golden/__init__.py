"""Integer, accumulate-only golden model of sMLPNet (for chip and FPGA teams).

``net = convert(model, calibration_images)`` folds BN and the input normalisation into
integer weights, biases and thresholds; ``run(net, images, T)`` is the fast vectorised
integer inference and ``run_reference`` the literally event-driven one (bit-identical);
``count_ops`` / ``format_report`` give operation counts and energy; ``export`` /
``verify`` write and check test vectors. The exact equations: docs/golden-model.md.

Running, counting and exporting an integer network never loads the float models: only
``convert`` (and :mod:`npsnn.golden.snap`) do, and ``convert`` is loaded on first use.
"""
import sys
import types

from ..datasets.transforms import CIFAR10_MEAN as CIFAR_MEAN, CIFAR10_STD as CIFAR_STD
from .counts import count_ops, format_report
from .export import export, verify
from .intops import EQUATION_VERSION, GoldenOverflowError
from .network import IntegerNetwork
from .reference import run_reference
from .run import run

__all__ = ["CIFAR_MEAN", "CIFAR_STD", "EQUATION_VERSION", "GoldenOverflowError",
           "IntegerNetwork", "convert", "count_ops", "export", "format_report", "run",
           "run_reference", "verify"]


class _GoldenPackage(types.ModuleType):
    """``npsnn.golden.convert`` is the function :func:`npsnn.golden.convert.convert`,
    imported on first use (it pulls in the float model). Its module has the same name, and
    importing a submodule stores it as an attribute of the package; this property keeps
    the attribute the function, whichever of the two is imported first."""

    @property
    def convert(self):
        from .convert import convert
        return convert

    @convert.setter
    def convert(self, submodule):        # the import system recording npsnn.golden.convert
        pass


sys.modules[__name__].__class__ = _GoldenPackage
