"""The golden model meets hardware: replay exported vectors through the reference RTL.

``hw/rtl/`` holds synthesizable Verilog of the golden model's integer datapath (one
module per op: ``npsnn_term``, ``npsnn_lif``, ``npsnn_add``, ``npsnn_concat``,
``npsnn_head``). This package runs it under cocotb + Icarus Verilog:

* :func:`replay` (CLI ``python -m npsnn hw replay --vectors DIR``): every layer of an
  export (or of a corner suite, :mod:`npsnn.golden.corner`) runs in its RTL module from
  its exported inputs and parameter files, and every value it writes is compared with
  the export; the first mismatch is reported as ``golden verify`` reports one;
* :mod:`npsnn.hw.mutants`: copies of the RTL with one classic bug each, which the
  vectors must catch.

The interface a chip team's own RTL must offer to be replayed (``--rtl DIR``), the
block diagram and the synthesis figures: docs/hardware.md.
"""
from .mutants import MUTANTS, write_mutant
from .replay import INSTALL_HINT, ReplayResult, missing_tools, replay

__all__ = ["INSTALL_HINT", "MUTANTS", "ReplayResult", "missing_tools", "replay",
           "write_mutant"]
