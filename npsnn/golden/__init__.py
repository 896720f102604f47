"""Integer, accumulate-only golden model of sMLPNet (for chip and FPGA teams).

``net = convert(model, calibration_images)`` folds BN and the input normalisation into
integer weights, biases and thresholds; ``run(net, images, T)`` is the fast vectorised
integer inference and ``run_reference`` the literally event-driven one (bit-identical);
``count_ops`` / ``format_report`` give operation counts and energy; ``export`` /
``verify`` write and check test vectors. The exact equations: docs/golden-model.md.
"""
from .convert import CIFAR_MEAN, CIFAR_STD, convert
from .counts import count_ops, format_report
from .export import export, verify
from .intops import EQUATION_VERSION, GoldenOverflowError
from .network import IntegerNetwork
from .reference import run_reference
from .run import run

__all__ = ["CIFAR_MEAN", "CIFAR_STD", "EQUATION_VERSION", "GoldenOverflowError",
           "IntegerNetwork", "convert", "count_ops", "export", "format_report", "run",
           "run_reference", "verify"]
