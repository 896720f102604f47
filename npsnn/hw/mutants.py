"""RTL mutants: copies of the reference RTL with one classic bug each.

A test-vector set earns trust by failing on designs that are wrong in the ways RTL is
usually wrong. Each mutant is one textual patch of one file of ``hw/rtl``;
:func:`write_mutant` writes a patched copy that ``hw replay --rtl DIR`` can run
(``python -m npsnn hw mutant NAME --out DIR``). The tests replay the corner-case suite
(:mod:`npsnn.golden.corner`) against every mutant and require a mismatch for each.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from .layers import RTL_DIR


@dataclass(frozen=True)
class Mutant:
    file: str            # a file of hw/rtl
    original: str        # text that occurs exactly once in it
    mutated: str
    bug: str             # what a designer got wrong


MUTANTS = {
    "threshold_gt": Mutant(
        "npsnn_lif.v", "spike   = h_wide >= th_wide;", "spike   = h_wide > th_wide;",
        "the threshold compare is > instead of >= (a membrane at the threshold stays silent)"),
    "leak_logical_shift": Mutant(
        "npsnn_lif.v", "(delta >>> LEAK)", "(delta >> LEAK)",
        "the leak uses a logical instead of an arithmetic right shift"),
    "reset_soft": Mutant(
        "npsnn_lif.v", "spike ? {MEM_BITS{1'b0}} : h_wide[MEM_BITS-1:0];",
        "spike ? h_wide[MEM_BITS-1:0] - theta : h_wide[MEM_BITS-1:0];",
        "soft reset (V = H - theta) instead of the hard reset to 0"),
    "rshift_logical_shift": Mutant(
        "npsnn_rshift.v", "(a_r + half) >>> r_amt", "(a_r + half) >> r_amt",
        "the term's rounded right shift is logical instead of arithmetic"),
    "rounding_dropped": Mutant(
        "npsnn_rshift.v", "(a_r + half) >>> r_amt", "a_r >>> r_amt",
        "right shifts truncate (floor) instead of rounding half up"),
    "saturation_dropped": Mutant(
        "npsnn_range_check.v", "wire saturate = (POLICY == POLICY_SATURATE) & overflow;",
        "wire saturate = 1'b0;",
        "the saturate policy wraps instead of clamping"),
}


def write_mutant(name: str, out, rtl=RTL_DIR) -> Path:
    """Copy the ``*.v``/``*.vh`` sources of ``rtl`` to ``out`` and apply mutant ``name``."""
    if name not in MUTANTS:
        raise KeyError(f"no mutant named {name!r}; mutants: {', '.join(MUTANTS)}")
    m = MUTANTS[name]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for src in sorted(Path(rtl).iterdir()):
        if src.suffix in (".v", ".vh"):
            shutil.copyfile(src, out / src.name)
    path = out / m.file
    text = path.read_text()
    if text.count(m.original) != 1:
        raise ValueError(f"mutant {name}: {m.file} must contain {m.original!r} exactly once "
                         f"(found {text.count(m.original)}); was the RTL changed?")
    path.write_text(text.replace(m.original, m.mutated))
    return out
