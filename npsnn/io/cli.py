"""``python -m npsnn convert-pth IN.pth OUT.npz [--preset NAME | --config JSON]``.

Reads an official PyTorch checkpoint with :mod:`npsnn.io.pth` (no torch, nothing in the
file is executed) and writes its state dict as a pickle-free ``.npz``
(:func:`npsnn.io.files.save_state`, atomic). With ``--preset`` or ``--config`` every key
and shape is first checked against that npsnn model. Errors are one line on stderr, exit
code 2 (:mod:`npsnn.cli`).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..cli import config_arg, fail, parse
from .files import save_state
from ..models.smlpnet import infer_config
from .pth import PickledNamespace, load_checkpoint, state_dict_of

PROG = "npsnn convert-pth"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m npsnn convert-pth",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Convert an official PyTorch sMLPNet checkpoint (.pth written by\n"
                    "torch.save: a bare state_dict or the mixer-snn train.py checkpoint)\n"
                    "into a pickle-free .npz state dict. torch is not needed and nothing in\n"
                    "the file is executed: only tensors and plain data are rebuilt.",
        epilog="example:\n"
               "  python -m npsnn convert-pth checkpoint_max.pth weights.npz --preset mlp-spe-t\n"
               "then, in Python:\n"
               "  model = npsnn.build('mlp-spe-t')\n"
               "  model.load_state_dict(npsnn.io.load_state('weights.npz'))\n"
               "Errors print one line and exit with code 2.")
    p.add_argument("input", metavar="IN.pth", help="the torch.save file to read")
    p.add_argument("output", metavar="OUT.npz",
                   help="where to write the state dict (.npz, written atomically)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--preset", metavar="NAME",
                   help="check every key and shape against this npsnn preset before "
                        "writing (missing, unexpected and mis-shaped keys are reported)")
    g.add_argument("--config", metavar="JSON",
                   help="like --preset, for a model config given as a JSON object or the "
                        "path of a JSON file, e.g. '{\"dim\": 48, \"patch_size\": 4, "
                        "\"image_size\": 32, \"depths\": [1, 2, 1], \"num_classes\": 10}'")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    return p


def check_fits(config, state: dict) -> None:
    """Build ``config`` (a preset name or a config dict) and load ``state`` strictly; a
    compact ValueError naming the missing, unexpected and mis-shaped keys if it does not fit."""
    from ..models import build
    name = config if isinstance(config, str) else "the given config"
    model = build(config)
    want = {k: v.shape for k, v in model.state_dict().items()}
    missing = sorted(set(want) - set(state))
    unexpected = sorted(set(state) - set(want))
    misshaped = [f"{k} {tuple(state[k].shape)} vs {want[k]}"
                 for k in sorted(set(want) & set(state)) if tuple(state[k].shape) != want[k]]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected),
                         ("mis-shaped (file vs model)", misshaped)):
        if items:
            more = f" and {len(items) - 3} more" if len(items) > 3 else ""
            problems.append(f"{len(items)} {label}: {', '.join(items[:3])}{more}")
    if problems:
        guess = infer_config(state)
        hint = f"; the file looks like the config {json.dumps(guess)}" if guess else ""
        raise ValueError(f"the checkpoint does not fit {name}: " + "; ".join(problems) + hint)
    model.load_state_dict(state, strict=True)


def _summary(obj) -> str:
    """One phrase on what the file held (the mixer-snn train.py layout or a bare dict)."""
    if not isinstance(obj, dict) or "model" not in obj:
        return "bare state dict"
    parts = ["training checkpoint"]
    for key in ("epoch", "max_test_acc1"):
        if isinstance(obj.get(key), (int, float)):
            parts.append(f"{key} {obj[key]}")
    args = obj.get("args")
    if isinstance(args, PickledNamespace) and isinstance(getattr(args, "model", None), str):
        parts.append(f"model {args.model}")
    return ", ".join(parts)


def main(argv=None) -> int:
    """``python -m npsnn convert-pth IN.pth OUT.npz [--preset NAME | --config JSON]``."""
    args, code = parse(_parser(), sys.argv[1:] if argv is None else argv)
    if args is None:
        return code
    try:
        obj = load_checkpoint(args.input)
        state = state_dict_of(obj, Path(args.input))
        if args.preset or args.config:
            check_fits(args.preset if args.preset else config_arg(args.config), state)
        save_state(args.output, state)
    except (ValueError, TypeError, OSError) as e:
        return fail(PROG, e)
    if not args.quiet:
        n = sum(int(v.size) for v in state.values())
        checked = f", checked against {args.preset or 'the given config'}" \
            if (args.preset or args.config) else ""
        print(f"{args.input}: {_summary(obj)}; wrote {len(state)} arrays ({n} numbers) to "
              f"{args.output}{checked}")
        guess = infer_config(state)
        if guess and not checked:
            print(f"its shapes look like the sMLPNet config {json.dumps(guess)} (check with "
                  f"--config or --preset)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
