"""``python -m npsnn hw <command>``: the golden model against the reference RTL.

    replay  --vectors DIR [--layers all|NAME,...] [--images K] [--rtl DIR]
            replay an export (or a corner suite) through the RTL under cocotb + Icarus:
            "all N values match" (exit 0), the first mismatch (exit 1), or a message
            saying what is missing or wrong (exit 2)
    tb      --vectors DIR --layer NAME [--image K] [--run iverilog|verilator]
            the plain-Verilog testbench (hw/tb/tb_term.v) of one term layer: print its
            Icarus and Verilator command lines, or build and run one (PASS: exit 0)
    synth   --vectors DIR [--layers NAME,...] [--target generic|ice40|ecp5]
            Yosys resource counts of each layer's module with the layer's parameters
    mutant  NAME --out DIR    write a copy of the RTL with one classic bug (for --rtl)
    mutants                   list the mutants
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from ..cli import UsageError, fail, parse


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m npsnn hw",
                                description="Replay golden-model vectors through the "
                                            "reference RTL (cocotb + Icarus Verilog).")
    sub = p.add_subparsers(dest="command", required=True)
    sp = sub.add_parser("replay", help="replay exported vectors through the RTL, layer by "
                                       "layer, and compare every value")
    sp.add_argument("--vectors", required=True,
                    help="a 'golden export' directory, or a corner suite ('golden corner')")
    sp.add_argument("--layers", default="all",
                    help="'all' (default) or comma-separated op names, e.g. b0.fc1,b0.lif_hid")
    sp.add_argument("--images", type=int, default=None,
                    help="replay the first K images of the export (default: all)")
    sp.add_argument("--rtl", default=None,
                    help="folder with the Verilog sources to replay against (default: the "
                         "project's hw/rtl); same module names and ports (docs/hardware.md)")
    sp.add_argument("--work", default=None,
                    help="keep the generated testbench, logs and captures in this folder")
    sp.add_argument("--vcd", default=None, help="write a VCD waveform of the replay here")
    sp = sub.add_parser("tb", help="the plain-Verilog testbench of one term layer "
                                   "(command lines, or --run)")
    sp.add_argument("--vectors", required=True, help="a 'golden export' directory (with hex)")
    sp.add_argument("--layer", required=True, help="a term op of the export, e.g. b0.fc1")
    sp.add_argument("--image", type=int, default=0, help="which exported image (default 0)")
    sp.add_argument("--run", choices=["iverilog", "verilator"], default=None,
                    help="build and run it with this simulator (default: print the commands)")
    sp.add_argument("--rtl", default=None, help="Verilog sources (default: hw/rtl)")
    sp = sub.add_parser("synth", help="Yosys resource counts (LUTs, FFs, BRAMs) per layer")
    sp.add_argument("--vectors", required=True, help="a 'golden export' directory (with hex)")
    sp.add_argument("--layers", default="all", help="'all' or comma-separated op names")
    sp.add_argument("--target", action="append", choices=["generic", "ice40", "ecp5"],
                    help="Yosys flow (repeatable; default: generic and ice40)")
    sp.add_argument("--rtl", default=None, help="Verilog sources (default: hw/rtl)")
    sp = sub.add_parser("mutant", help="write a copy of the RTL with one classic bug")
    sp.add_argument("name", help="mutant name ('python -m npsnn hw mutants' lists them)")
    sp.add_argument("--out", required=True, help="folder for the mutated copy")
    sub.add_parser("mutants", help="list the RTL mutants")
    return p


def _cmd_replay(args) -> int:
    from .replay import BadExport, ToolsMissing, replay
    try:
        r = replay(args.vectors, layers=args.layers, images=args.images, rtl=args.rtl,
                   work=args.work, vcd=args.vcd, progress=lambda line: print(line, flush=True))
    except (ToolsMissing, BadExport) as e:
        raise UsageError(str(e)) from None
    except RuntimeError as e:         # the RTL does not build, or the simulator died
        raise UsageError(str(e)) from None
    print(r.message)
    print(f"{r.layers} layers, {r.images} image(s); {r.cycles} layer clock cycles; "
          f"build {r.build_seconds:.1f} s, simulation {r.sim_seconds:.1f} s")
    return 0 if r.ok else 1


def _cmd_tb(args) -> int:
    from .layers import RTL_DIR
    from .plain_tb import iverilog_command, tb_parameters, verilator_command
    rtl = Path(args.rtl) if args.rtl else RTL_DIR
    try:
        params = tb_parameters(args.vectors, args.layer, args.image, rtl)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.run is None:
        print("# Icarus Verilog")
        print(shlex.join(iverilog_command(params, "tb_term.vvp", rtl)) + " && vvp -n tb_term.vvp")
        print("# Verilator")
        print(shlex.join(verilator_command(params, "obj_tb_term", rtl)) +
              " && obj_tb_term/Vtb_term")
        return 0
    with tempfile.TemporaryDirectory(prefix="npsnn-tb-") as work:
        if args.run == "iverilog":
            build = iverilog_command(params, Path(work) / "tb.vvp", rtl)
            run = ["vvp", "-n", str(Path(work) / "tb.vvp")]
        else:
            build = verilator_command(params, Path(work) / "obj", rtl)
            run = [str(Path(work) / "obj" / "Vtb_term")]
        try:
            b = subprocess.run(build, capture_output=True, text=True)
        except FileNotFoundError:
            raise UsageError(f"{build[0]} is not installed (apt-get install -y iverilog "
                             f"verilator)") from None
        if b.returncode:
            raise UsageError(f"{build[0]} could not build the testbench:\n{b.stderr[-2000:]}")
        r = subprocess.run(run, capture_output=True, text=True)
    print("\n".join(line for line in r.stdout.splitlines()
                    if line.startswith(("PASS", "FAIL"))))
    return 0 if r.returncode == 0 and "PASS" in r.stdout else 1


def _cmd_synth(args) -> int:
    from .layers import RTL_DIR
    from .replay import BadExport, export_layers, select_layers
    from .synth import RESOURCES, synthesize
    rtl = Path(args.rtl) if args.rtl else RTL_DIR
    try:
        selected = select_layers(export_layers(args.vectors, rtl)[1], args.layers)
    except BadExport as e:
        raise UsageError(str(e)) from None
    targets = args.target or ["generic", "ice40"]
    head = f"{'layer':<14}{'module':<14}{'kind':<20}"
    cols = [(tg, name) for tg in targets for name in RESOURCES[tg]]
    cols += [("generic", "memory_bits")] if "generic" in targets else []
    labels = [f"{tg} {name}" for tg, name in cols]
    widths = [len(label) + 2 for label in labels]
    print(head + "".join(f"{label:>{w}}" for label, w in zip(labels, widths)))
    for L in selected:
        try:
            counts = {tg: synthesize(L, tg, rtl) for tg in targets}
        except (FileNotFoundError, RuntimeError) as e:
            raise UsageError(str(e)) from None
        print(f"{L.name:<14}{L.module:<14}{L.info.get('kind', L.op):<20}" +
              "".join(f"{counts[tg][name]:>{w}}" for (tg, name), w in zip(cols, widths)),
              flush=True)
    return 0


def _cmd_mutant(args) -> int:
    from .mutants import write_mutant
    try:
        out = write_mutant(args.name, args.out)
    except KeyError as e:
        raise UsageError(str(e.args[0])) from None
    print(f"wrote {out}; replay against it with --rtl {out}")
    return 0


def _cmd_mutants(args) -> int:
    from .mutants import MUTANTS
    for name, m in MUTANTS.items():
        print(f"{name:<22} {m.file:<22} {m.bug}")
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args, code = parse(_parser(), argv)
    if args is None:                  # --help (0) or a usage error (2, already printed)
        return code
    try:
        return {"replay": _cmd_replay, "tb": _cmd_tb, "synth": _cmd_synth, "mutant": _cmd_mutant,
                "mutants": _cmd_mutants}[args.command](args)
    except (UsageError, OSError) as e:         # OSError: a file it could not read or write
        return fail(f"python -m npsnn hw {args.command}", e)
