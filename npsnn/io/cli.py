"""The file-conversion commands of ``python -m npsnn``.

``convert-pth IN.pth OUT.npz [--preset NAME | --config JSON]`` reads an official PyTorch
checkpoint with :mod:`npsnn.io.pth` (no torch, nothing in the file is executed) and writes
its state dict as a pickle-free ``.npz`` (:func:`npsnn.io.files.save_state`, atomic). With
``--preset`` or ``--config`` every key and shape is first checked against that npsnn model.

``export-pth IN.npz OUT.pth [--layout state_dict|train]`` goes the other way
(:mod:`npsnn.io.pth_write`): a file PyTorch loads with ``weights_only=True`` into the
official model. ``export-nir CHECKPOINT OUT.nir`` writes the eval-mode network as a NIR
graph (:mod:`npsnn.io.nir`, needs the optional ``nir`` package).

Errors are one line on stderr, exit code 2 (:mod:`npsnn.cli`).
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
_LAYOUTS = ("state_dict", "train")


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


# -- export-pth, export-nir ------------------------------------------------------------------
def _model_of(path, dtype=None):
    """IN (npsnn checkpoint, state dict .npz or .pth) -> (the model holding its weights,
    the npsnn training checkpoint or None). Keys and shapes are checked by name first."""
    import numpy as np
    from ..models import build
    from ..train.finetune import read_weights, weights_config
    state, ckpt = read_weights(path)
    config = weights_config(state, ckpt, path)
    check_fits(config, state)
    model = build(config, dtype=np.dtype(dtype or np.float32), fast=False)
    model.load_state_dict(state, strict=True)
    return model.eval(), ckpt


def export_pth_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m npsnn export-pth",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write npsnn weights as a PyTorch checkpoint (the zip format of\n"
                    "torch.save) that the official mixer-snn code loads: official key names,\n"
                    "float32 weights, int64 BN counters. torch is not needed to write it;\n"
                    "torch.load(OUT, weights_only=True) accepts it.",
        epilog="layouts:\n"
               "  state_dict  the bare model.state_dict() (load_state_dict(..., strict=True))\n"
               "  train       {model, optimizer, lr_scheduler, epoch, args, max_test_acc1}, as\n"
               "              the official train.py saves it: train.py --resume OUT.pth\n"
               "              continues a run of the official recipe, or starts a new\n"
               "              official run from the weights (see docs/interop.md)\n"
               "example:\n"
               "  python -m npsnn export-pth runs/p4-d48/best.npz p4-d48.pth\n"
               "Errors print one line and exit with code 2.")
    p.add_argument("input", metavar="IN.npz",
                   help="an npsnn checkpoint (python -m npsnn train) or a state dict .npz")
    p.add_argument("output", metavar="OUT.pth", help="the file to write (atomically)")
    p.add_argument("--layout", choices=_LAYOUTS, default="state_dict",
                   help="what the file holds [default: state_dict]")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="floating type of the tensors [default: float32, the official one]")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    return p


def export_pth_main(argv=None) -> int:
    """``python -m npsnn export-pth IN.npz OUT.pth [--layout state_dict|train]``."""
    import numpy as np
    from .pth_write import save_pth, torch_state_dict, train_checkpoint
    prog = "npsnn export-pth"
    args, code = parse(export_pth_parser(), sys.argv[1:] if argv is None else argv)
    if args is None:
        return code
    try:
        model, ckpt = _model_of(args.input, args.dtype)
        dtype = np.dtype(args.dtype)
        if args.layout == "train":
            obj = train_checkpoint(model, checkpoint=ckpt, dtype=dtype)
            what = (f"train.py --resume continues after epoch {obj['epoch'] + 1}"
                    if obj["epoch"] >= 0 else "starts a new official run from these weights")
        else:
            obj = torch_state_dict(model, dtype)
            what = "load_state_dict(..., strict=True)"
        save_pth(args.output, obj)
    except (ValueError, TypeError, KeyError, OSError) as e:
        return fail(prog, e)
    if not args.quiet:
        state = obj["model"] if args.layout == "train" else obj
        n = sum(int(v.size) for k, v in state.items() if not k.endswith("num_batches_tracked"))
        print(f"wrote {args.output}: {len(state)} tensors ({n:,} numbers, {args.dtype}), "
              f"layout {args.layout} ({what}); in PyTorch: torch.load(path, "
              f"weights_only=True)")
    return 0


# -- export-nir ------------------------------------------------------------------------------
def export_nir_parser() -> argparse.ArgumentParser:
    from .nir import DEFAULT_DT
    p = argparse.ArgumentParser(
        prog="python -m npsnn export-nir",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write an sMLPNet checkpoint as a NIR graph (Neuromorphic Intermediate\n"
                    "Representation, HDF5) for neuromorphic tool chains: eval mode, BN folded,\n"
                    "one time step per graph evaluation (feed the normalised image at every\n"
                    "step and average the outputs). Needs the optional 'nir' package.",
        epilog="example:\n"
               "  python -m npsnn export-nir runs/p4-d48/best.npz p4-d48.nir\n"
               "The mapping (LIF parameters, the ops NIR has no primitive for) is in\n"
               "docs/interop.md. Errors print one line and exit with code 2.")
    p.add_argument("input", metavar="CHECKPOINT",
                   help="an npsnn checkpoint (.npz), or a state dict .npz / official .pth")
    p.add_argument("output", metavar="OUT.nir", help="the NIR file to write (atomically)")
    p.add_argument("--dt", type=float, default=DEFAULT_DT,
                   help=f"the simulation time step the LIF time constants are expressed in "
                        f"(tau = tau_sj * dt) [default: {DEFAULT_DT}, snnTorch's]")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="floating type of the graph's arrays [default: float32]")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    return p


def export_nir_main(argv=None) -> int:
    """``python -m npsnn export-nir CHECKPOINT OUT.nir [--dt DT]``."""
    prog = "npsnn export-nir"
    args, code = parse(export_nir_parser(), sys.argv[1:] if argv is None else argv)
    if args is None:
        return code
    try:
        from .nir import to_nir, write_nir
        model, _ = _model_of(args.input, args.dtype)
        graph = to_nir(model, dt=args.dt)
        write_nir(args.output, graph)
    except (ValueError, TypeError, KeyError, OSError, ModuleNotFoundError) as e:
        return fail(prog, e)
    if not args.quiet:
        kinds: dict = {}
        for node in graph.nodes.values():
            kinds[type(node).__name__] = kinds.get(type(node).__name__, 0) + 1
        print(f"wrote {args.output}: {len(graph.nodes)} nodes ("
              + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) +
              f"), {len(graph.edges)} edges, dt {args.dt}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
