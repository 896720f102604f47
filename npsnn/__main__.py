"""Command line: ``python -m npsnn <command> --help``.

Commands are looked up lazily so ``--help`` is instant and one broken optional piece
never blocks the others.
"""
from __future__ import annotations

import importlib
import sys

COMMANDS = {
    # name: (module, function, one-line help)
    "quickstart": ("npsnn.train.quickstart", "main", "train a small model on the bundled sample and evaluate it"),
    "train": ("npsnn.train.cli", "train_main", "train a preset on CIFAR (checkpoints, resume)"),
    "eval": ("npsnn.train.cli", "eval_main", "evaluate a checkpoint on a CIFAR test split"),
    "slim": ("npsnn.train.checkpoint", "slim_main", "weights-only float16 copy of a checkpoint"),
    "convert-pth": ("npsnn.io.cli", "main", "convert an official PyTorch checkpoint to .npz (no torch needed)"),
    "export-pth": ("npsnn.io.cli", "export_pth_main", "write weights as a torch.save file the official code loads (no torch needed)"),
    "export-nir": ("npsnn.io.cli", "export_nir_main", "write an sMLPNet checkpoint as a NIR graph (needs the nir extra)"),
    "golden": ("npsnn.golden.cli", "main", "integer golden model: convert, run, count, export, verify"),
    "hw": ("npsnn.hw.cli", "main", "replay golden-model vectors through the reference RTL (cocotb + Icarus)"),
}


def usage() -> str:
    lines = ["usage: python -m npsnn <command> [options]", "", "commands:"]
    lines += [f"  {name:<12} {help_}" for name, (_, _, help_) in COMMANDS.items()]
    lines += ["", "Run 'python -m npsnn <command> --help' for the options of one command.",
              "Benchmarks: 'python -m npsnn.perf.bench --help'."]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"npsnn: error: unknown command {name!r}; the commands are "
              f"{', '.join(COMMANDS)} (python -m npsnn --help)", file=sys.stderr)
        return 2
    module, func, _ = COMMANDS[name]
    try:
        entry = getattr(importlib.import_module(module), func)
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("npsnn"):
            print(f"npsnn: the '{name}' command is not available in this version", file=sys.stderr)
            return 2
        raise
    return int(entry(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
