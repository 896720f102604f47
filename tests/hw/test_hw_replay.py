"""The RTL replays exported golden-model vectors bit for bit (cocotb + Icarus Verilog).

Layer by layer: every op of an export runs in its RTL module from its exported inputs,
and every field it writes is compared with the export (npsnn.hw.replay). Covered here:
the whole tutorial network as given and snapped (2 images x T = 4), the corner-case
suite (all three policies), the error policy's overflow flag, layer and image subsets,
exports without hex files, and the ``hw replay`` command's exit codes.
"""
from __future__ import annotations

import importlib
import json
import re
import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from hw_tools import CHECKPOINT, SAMPLE, corner_suite, need_hw, scratch, tutorial_export


@pytest.fixture(autouse=True)
def _tools():
    need_hw()


def _replay(*args, **kwargs):
    from npsnn.hw.replay import replay
    return replay(*args, **kwargs)


def test_corner_suite_replays_bit_exact():
    r = _replay(corner_suite())
    assert r.ok, r.message
    suite = json.loads((corner_suite() / "suite.json").read_text())
    # every field the RTL writes (all but the driven inputs), every image and step
    expected = 0
    for member in suite["members"].values():
        manifest = json.loads((corner_suite() / member["dir"] / "manifest.json").read_text())
        fields = manifest["vectors"]["fields"]
        expected += len(manifest["vectors"]["images"]) * sum(
            int(np.prod(f["shape"])) for op in fields.values()
            for name, f in op.items() if name != "input")
    assert r.message == f"all {expected} values match" and r.values == expected
    assert r.layers == 3 * len(manifest["ops"]) and r.images == 5


def test_tutorial_network_replays_bit_exact():
    """Every op of cifar10-p4-d48, as given and snapped, 2 images x T = 4 (the CI acceptance
    test). The two replays run at once: two simulator processes, one per core."""
    exports = {"given": tutorial_export(False), "snapped": tutorial_export(True)}
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(exports, pool.map(lambda v: _replay(v, images=2), exports.values())))
    for name, r in results.items():
        assert r.ok, f"{name}: {r.message}"
        manifest = json.loads((exports[name] / "manifest.json").read_text())
        fields = manifest["vectors"]["fields"]
        written = sum(int(np.prod(f["shape"])) for op in fields.values()
                      for field, f in op.items() if field != "input")
        assert r.layers == len(manifest["ops"]) == 73 and r.images == 2
        assert r.values == 2 * written, (r.values, written)
        print(f"\n{name}: {r.message}; {r.cycles} layer cycles, build "
              f"{r.build_seconds:.1f} s, simulation {r.sim_seconds:.1f} s")


def test_narrow_widths_of_the_tutorial_network_replay(tmp_path):
    """The RTL parameters come from the manifest: the tutorial network exported with 6-bit
    weights, 13-bit accumulators, 14-bit membranes and the wrap policy (its first layer's
    accumulators wrap) replays bit for bit. (All 73 layers of this export also replay:
    about 30 s; here the layers around the wrapped values and one of each other module.)"""
    from npsnn.golden.cli import main as golden
    out = tmp_path / "narrow"
    assert golden(["export", "--checkpoint", str(CHECKPOINT), "--data", str(SAMPLE),
                   "--images", "3:4", "--calib", "64", "--T", "4", "--bits", "6",
                   "--acc-bits", "13", "--mem-bits", "14", "--policy", "wrap",
                   "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["overflow"]["layers"]["s0.embed"]["acc"] > 0        # wraps happen
    r = _replay(out, layers="s0.embed,s0.lif,b0.fc1,b0.lif_hid,b0.u,s1.h,head")
    assert r.ok and r.layers == 7, r.message


def test_error_policy_flags_the_first_overflow():
    """Under the error policy the chip must stop at the golden model's first overflow:
    replay the wrap member's vectors with its manifest set to 'error' (the RTL then
    outputs the same low bits and raises its flag) and compare with the overflow the
    event-driven reference reports, in execution order (image, t, op)."""
    from npsnn.golden import GoldenOverflowError, run_reference
    from npsnn.golden.corner import corner_images, corner_network
    src = corner_suite() / "wrap"
    vectors = scratch("error-flag") / "wrap-as-error"
    shutil.copytree(src, vectors)
    manifest = json.loads((vectors / "manifest.json").read_text())
    manifest["policy"] = "error"
    (vectors / "manifest.json").write_text(json.dumps(manifest))
    r = _replay(vectors, images=1)
    assert not r.ok and "overflow flag raised" in r.message, r.message
    with pytest.raises(GoldenOverflowError) as err:
        run_reference(corner_network("error"), corner_images()[:1], 4)
    golden = re.search(r"layer '([^']+)' \((\w+),.*at t=(\d+), image=0, index=\(([^)]*)\)",
                       str(err.value)).groups()
    rtl = re.search(r"layer '([^']+)', field '(\w+)', t=(\d+), index=\(([^)]*)\)",
                    r.message).groups()
    assert rtl == golden, (r.message, str(err.value))


def test_layer_and_image_subsets():
    r = _replay(corner_suite() / "saturate", layers="b0.fc1,b0.lif_hid,head", images=2)
    assert r.ok and r.layers == 3 and r.images == 2, r.message
    # the same fields as the full replay, for those layers: fc1 (acc, value), lif_hid
    # (current, h, v, spikes), head (step, logits); 2 images x 4 steps
    assert r.values == 2 * 4 * (2 * 48 + 4 * 48 + 2 * 3)


def test_export_without_hex_files_replays(tmp_path):
    from npsnn.golden.corner import corner_images, corner_network
    from npsnn.golden.export import export
    export(corner_network("wrap"), corner_images()[:2], 3, tmp_path / "nohex", hex_files=False)
    assert not (tmp_path / "nohex" / "params_hex").exists()
    r = _replay(tmp_path / "nohex")
    assert r.ok and r.images == 2, r.message


def test_command_exit_codes(tmp_path, capsys, monkeypatch):
    from npsnn.__main__ import main
    from npsnn.hw.mutants import write_mutant
    vectors = str(corner_suite() / "error")
    assert main(["hw", "replay", "--vectors", vectors, "--layers", "s0.embed,s0.lif",
                 "--images", "1"]) == 0
    assert re.search(r"^all \d+ values match$", capsys.readouterr().out, re.M)
    bad = write_mutant("threshold_gt", tmp_path / "rtl")
    assert main(["hw", "replay", "--vectors", vectors, "--rtl", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "first mismatch: image " in out and "layer '" in out and "expected " in out
    assert main(["hw", "replay", "--vectors", str(tmp_path / "nothing")]) == 2
    assert "is not a golden export" in capsys.readouterr().err
    assert main(["hw", "replay", "--vectors", vectors, "--layers", "nope"]) == 2
    assert "no layer named 'nope'" in capsys.readouterr().err
    # without the simulator: exit 2 and how to install it
    rp = importlib.import_module("npsnn.hw.replay")     # the module (npsnn.hw.replay is
    monkeypatch.setattr(rp.shutil, "which", lambda name: None)   # also the function)
    assert main(["hw", "replay", "--vectors", vectors]) == 2
    err = capsys.readouterr().err
    assert "apt-get install -y iverilog" in err and "pip install cocotb" in err


def test_bad_exports_and_bad_rtl_are_one_line(tmp_path, capsys):
    """A damaged export is named before the simulation (exit 2), an RTL that does not
    build is exit 2 with Icarus's messages, and an RTL that never finishes a time step
    is reported as a hang (exit 1) instead of simulating forever."""
    from npsnn.__main__ import main
    from npsnn.hw.layers import RTL_DIR
    src = corner_suite() / "error"

    def damaged(name, change):
        d = tmp_path / name
        shutil.copytree(src, d)
        change(d)
        return str(d)

    def manifest_without_bits(d):
        m = json.loads((d / "manifest.json").read_text())
        del m["bits"]
        (d / "manifest.json").write_text(json.dumps(m))

    def hex_only_with_garbage(d):
        shutil.rmtree(d / "vectors")
        (d / "vectors_hex" / "img0000" / "b0.fc1.acc.hex").write_text("zz\n")

    def image_1_missing(d):
        shutil.rmtree(d / "vectors")
        shutil.rmtree(d / "vectors_hex" / "img0001")

    for vectors, said in [
            (damaged("no-bits", manifest_without_bits), "a required entry is missing: 'bits'"),
            (damaged("garbage", hex_only_with_garbage), "b0.fc1.acc.hex: line 1"),
            (damaged("no-image", image_1_missing), "image img0001 has neither")]:
        assert main(["hw", "replay", "--vectors", vectors]) == 2
        err = capsys.readouterr().err
        assert said in err and "Traceback" not in err, err
    broken = tmp_path / "broken"
    shutil.copytree(RTL_DIR, broken)
    with open(broken / "npsnn_add.v", "a") as f:
        f.write("module broken(; endmodule\n")
    assert main(["hw", "replay", "--vectors", str(src), "--rtl", str(broken)]) == 2
    assert "iverilog could not build the RTL" in capsys.readouterr().err
    hang = tmp_path / "hang"
    shutil.copytree(RTL_DIR, hang)
    lif = (hang / "npsnn_lif.v").read_text()
    assert lif.count("running <= 1'b0; done <= 1'b1;") == 1
    (hang / "npsnn_lif.v").write_text(lif.replace("running <= 1'b0; done <= 1'b1;",
                                                  "done <= 1'b1;"))    # never stops
    assert main(["hw", "replay", "--vectors", str(src), "--rtl", str(hang), "--layers",
                 "s0.embed,s0.lif", "--images", "1"]) == 1
    out = capsys.readouterr().out
    assert "the RTL hangs: image 0 (img0000), t=0" in out and "still busy: 's0.lif'" in out

