"""``python -m npsnn hw <command>``: the golden model against the reference RTL.

    replay  --vectors DIR [--layers all|NAME,...] [--images K] [--rtl DIR]
            replay an export (or a corner suite) through the RTL under cocotb + Icarus:
            "all N values match" (exit 0), the first mismatch (exit 1), or a message
            saying what is missing or wrong (exit 2)
    mutant  NAME --out DIR    write a copy of the RTL with one classic bug (for --rtl)
    mutants                   list the mutants
"""
from __future__ import annotations

import argparse
import sys

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
    except (ToolsMissing, BadExport, FileNotFoundError) as e:
        raise UsageError(str(e)) from None
    print(r.message)
    print(f"{r.layers} layers, {r.images} image(s); {r.cycles} layer clock cycles; "
          f"build {r.build_seconds:.1f} s, simulation {r.sim_seconds:.1f} s")
    return 0 if r.ok else 1


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
        return {"replay": _cmd_replay, "mutant": _cmd_mutant,
                "mutants": _cmd_mutants}[args.command](args)
    except UsageError as e:
        return fail(f"python -m npsnn hw {args.command}", e)
