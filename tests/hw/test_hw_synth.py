"""The reference RTL synthesises with Yosys (generic, iCE40 and ECP5 flows), and the
integer datapath infers no multiplier: no DSP block anywhere (slow: about a minute of CPU
per flow on the corner suite's layers)."""
from __future__ import annotations

import pytest

from npsnn.hw.replay import export_layers
from npsnn.hw.synth import synthesize

from hw_tools import corner_suite, need_tool


@pytest.mark.slow
@pytest.mark.parametrize("target", ["generic", "ice40", "ecp5"])
def test_every_module_synthesises(target):
    need_tool("yosys")
    done = set()
    for layer in export_layers(corner_suite() / "saturate")[1]:
        kind = layer.info.get("kind", layer.op)          # one layer per module and kind
        if kind in done:
            continue
        done.add(kind)
        counts = synthesize(layer, target)
        logic = counts["gates"] if target == "generic" else counts["LUT"]
        assert logic > 0 and counts["FF"] > 0, (layer.name, counts)
        assert counts.get("DSP", 0) == 0, (layer.name, counts)   # accumulate-only
    assert len(done) == 11
