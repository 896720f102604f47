"""Synthesis of the reference RTL with Yosys: resource counts per layer module.

Each layer of an export is synthesised as its own top (its RTL module with the layer's
parameters, parameter ROMs initialised from the export's ``$readmemh`` files), for
one of three targets:

* ``generic``: Yosys ``synth`` without mapping the memories: logic gates, flip-flops,
  and the memories left as memories (words x bits);
* ``ice40``: ``synth_ice40`` (Lattice iCE40): SB_LUT4, flip-flops, SB_RAM40_4K (4 kbit
  block RAMs), SB_CARRY, SB_MAC16 (DSPs);
* ``ecp5``: ``synth_ecp5`` (Lattice ECP5): LUT4, TRELLIS_FF, DP16KD (18 kbit block RAMs),
  CCU2C carries, MULT18X18D (DSPs).

``python -m npsnn hw synth --vectors DIR --layers ... --target ...`` prints the table of
docs/hardware.md.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from .layers import RTL_DIR, Layer

TARGETS = {
    # memories stay memories: their size is reported instead of a sea of flip-flops
    "generic": "synth -top {top} -flatten -run :fine\nopt -fast -full\ntechmap\nopt -fast\n"
               "abc -fast\nopt -fast\nmemory_unpack",
    "ice40": "synth_ice40 -top {top}",
    "ecp5": "synth_ecp5 -top {top}",
}
#: resource -> the cell types that count for it, per target
RESOURCES = {
    "generic": {"gates": lambda t: t.startswith("$_") and "DFF" not in t and "LATCH" not in t,
                "FF": lambda t: t.startswith("$_") and "DFF" in t},
    "ice40": {"LUT": lambda t: t == "SB_LUT4", "FF": lambda t: t.startswith("SB_DFF"),
              "BRAM": lambda t: t.startswith("SB_RAM40"), "carry": lambda t: t == "SB_CARRY",
              "DSP": lambda t: t == "SB_MAC16"},
    "ecp5": {"LUT": lambda t: t == "LUT4", "FF": lambda t: t == "TRELLIS_FF",
             "BRAM": lambda t: t in ("DP16KD", "PDPW16KD"),
             "LUTRAM": lambda t: t == "TRELLIS_DPR16X4", "carry": lambda t: t == "CCU2C",
             "DSP": lambda t: t in ("MULT18X18D", "ALU54B")},
}


def _value(v) -> str:
    return f'"{v}"' if isinstance(v, str) else str(int(v))


def synthesize(layer: Layer, target: str = "ice40", rtl=RTL_DIR, work=None) -> dict:
    """Synthesise one layer's module; -> {resource: count} (see :data:`RESOURCES`), plus
    ``memory_bits`` for the generic target and ``cells`` (all cells)."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
    if shutil.which("yosys") is None:
        raise FileNotFoundError("yosys is not installed (apt-get install -y yosys)")
    rtl = Path(rtl)
    sources = " ".join(str(p) for p in sorted(rtl.glob("*.v")))
    sets = " ".join(f"-set {k} {_value(v)}" for k, v in layer.params.items())
    with tempfile.TemporaryDirectory(prefix="npsnn-synth-", dir=work) as tmp:
        stat = Path(tmp) / "stat.json"
        script = (f"read_verilog -defer -I{rtl} {sources}\n"
                  f"chparam {sets} {layer.module}\n"
                  f"hierarchy -top {layer.module}\n"
                  f"{TARGETS[target].format(top=layer.module)}\n"
                  f"tee -q -o {stat} stat -json\n")
        (Path(tmp) / "synth.ys").write_text(script)
        r = subprocess.run(["yosys", "-q", "-s", str(Path(tmp) / "synth.ys")],
                           capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"yosys failed on {layer.name} ({layer.module}, {target}):\n"
                               f"{(r.stderr or r.stdout)[-2000:]}")
        design = json.loads(stat.read_text())["design"]
    cells = design.get("num_cells_by_type", {})
    out = {name: sum(n for t, n in cells.items() if match(t))
           for name, match in RESOURCES[target].items()}
    if target == "generic":
        out["memory_bits"] = design.get("num_memory_bits", 0)
    out["cells"] = design.get("num_cells", 0)
    return out
