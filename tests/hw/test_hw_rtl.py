"""The reference RTL as Verilog: Verilog-2005, lint-clean, one code per term kind, and the
plain-Verilog testbench (no Python in the loop) passing under Icarus and Verilator.
"""
from __future__ import annotations

import subprocess

import pytest

from npsnn.golden.terms import TERM_KINDS
from npsnn.hw.layers import MODULES, RTL_DIR, rtl_codes
from npsnn.hw.mutants import write_mutant
from npsnn.hw.plain_tb import TB_FILE, iverilog_command, tb_parameters, verilator_command
from npsnn.hw.replay import export_layers

from hw_tools import corner_suite, need_tool, scratch, tutorial_export

SOURCES = sorted(str(p) for p in RTL_DIR.glob("*.v"))


def test_every_term_kind_has_an_rtl_code():
    codes = rtl_codes()
    assert {row.rtl_kind for row in TERM_KINDS.values()} <= set(codes)
    assert len({codes[row.rtl_kind] for row in TERM_KINDS.values()}) == len(TERM_KINDS)
    assert {codes[f"POLICY_{p}"] for p in ("ERROR", "SATURATE", "WRAP")} == {0, 1, 2}


@pytest.mark.parametrize("top", sorted(MODULES.values()))
def test_verilog_2005(top, tmp_path):
    need_tool("iverilog", "apt-get install -y iverilog")
    r = subprocess.run(["iverilog", "-g2005", "-Wall", "-I", str(RTL_DIR), "-s", top, "-o",
                        str(tmp_path / "x.vvp"), *SOURCES], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # no warning except the missing parameter files of a module compiled on its own
    assert not [w for w in r.stderr.splitlines() if w.strip()], r.stderr


def _lint(layer) -> str:
    args = ["verilator", "--lint-only", "-Wall", f"-I{RTL_DIR}", "--top-module", layer.module]
    args += [f"-G{k}=" + (f'"{v}"' if isinstance(v, str) else str(int(v)))
             for k, v in layer.params.items()]
    r = subprocess.run(args + SOURCES, capture_output=True, text=True)
    return "" if r.returncode == 0 else r.stderr


def _export_layers(vectors):
    return export_layers(vectors)[1]


def _lint_all(exports):
    seen, failures = set(), []
    for vectors in exports:
        for layer in _export_layers(vectors):
            key = (layer.module, tuple((k, v) for k, v in layer.params.items()
                                       if not isinstance(v, str)))
            if key not in seen:
                seen.add(key)
                out = _lint(layer)
                if out:
                    failures.append(f"{vectors.name}/{layer.name}:\n{out}")
    return seen, failures


def test_verilator_lint_clean_with_every_corner_layer():
    """verilator --lint-only -Wall with the parameters of every layer of the corner suite
    (every module, every term kind, 6/10/11/10-bit widths, non-square maps)."""
    need_tool("verilator")
    seen, failures = _lint_all([corner_suite() / "saturate"])
    assert len(seen) >= 20 and not failures, "\n".join(failures)


@pytest.mark.slow
def test_verilator_lint_clean_with_every_exported_layer():
    need_tool("verilator")
    _, failures = _lint_all([corner_suite() / m for m in ("saturate", "wrap", "error")] +
                            [tutorial_export(False), tutorial_export(True)])
    assert not failures, "\n".join(failures)


def _run_iverilog(params, rtl=RTL_DIR) -> subprocess.CompletedProcess:
    work = scratch("tb-iverilog")
    subprocess.run(iverilog_command(params, work / "tb.vvp", rtl), check=True,
                   capture_output=True)
    return subprocess.run(["vvp", "-n", str(work / "tb.vvp")], capture_output=True, text=True)


def test_plain_testbench_under_icarus():
    need_tool("iverilog", "apt-get install -y iverilog")
    vectors = corner_suite() / "saturate"
    for layer in ("s0.embed", "b0.pw", "b0.fc1", "b0.fc3", "s1.a1"):
        r = _run_iverilog(tb_parameters(vectors, layer, image=3))
        assert r.returncode == 0 and "PASS: all" in r.stdout, (layer, r.stdout, r.stderr)
    # and it has teeth: a copy of the RTL whose right shifts truncate
    bad = write_mutant("rounding_dropped", scratch("rtl"))
    r = _run_iverilog(tb_parameters(vectors, "b0.fc1", image=3, rtl=bad), rtl=bad)
    assert r.returncode != 0 and "FAIL: first mismatch: t=0" in r.stdout, r.stdout


def test_plain_testbench_under_verilator():
    need_tool("verilator")
    params = tb_parameters(corner_suite() / "saturate", "b0.fc1", image=3)
    work = scratch("tb-verilator")
    b = subprocess.run(verilator_command(params, work / "obj"), capture_output=True, text=True)
    assert b.returncode == 0, b.stderr[-3000:]
    r = subprocess.run([str(work / "obj" / "Vtb_term")], capture_output=True, text=True)
    assert r.returncode == 0 and "PASS: all 384 values match" in r.stdout, r.stdout
    assert str(TB_FILE).endswith("hw/tb/tb_term.v")


def test_tb_command(capsys):
    need_tool("iverilog", "apt-get install -y iverilog")
    from npsnn.__main__ import main
    vectors = str(corner_suite() / "wrap")
    assert main(["hw", "tb", "--vectors", vectors, "--layer", "b0.fc2"]) == 0
    out = capsys.readouterr().out
    assert "iverilog -g2005" in out and "verilator --binary -Wall" in out
    assert main(["hw", "tb", "--vectors", vectors, "--layer", "b0.fc2", "--image", "4",
                 "--run", "iverilog"]) == 0
    assert capsys.readouterr().out.startswith("PASS: all")
    assert main(["hw", "tb", "--vectors", vectors, "--layer", "b0.lif_c"]) == 2
    assert "is not one of" in capsys.readouterr().err
    assert main(["hw", "tb", "--vectors", vectors, "--layer", "b0.fc2", "--image", "5"]) == 2
    assert "the export holds 5 image(s), numbered 0 to 4" in capsys.readouterr().err
    assert main(["hw", "tb", "--vectors", vectors + "-nothing", "--layer", "b0.fc2"]) == 2
    assert "is not a golden export" in capsys.readouterr().err
