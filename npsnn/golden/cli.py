"""``python -m npsnn golden <command>``: export, verify, report, eval.

    export  --checkpoint F --data PATH --images 0:16 --out DIR   test vectors
    verify  --ours DIR --theirs DIR2                              compare dumps (0/1/2)
    report  --checkpoint F [--data PATH]                          op counts and energy
    eval    --checkpoint F --data PATH [--snap]                   integer vs float top-1
    snap    --checkpoint F --out G                                weights onto the 8-bit grid
    corner  --out DIR                                             corner-case vector suite

``--checkpoint`` is an npsnn training checkpoint, or a plain model ``.npz`` state dict
together with ``--preset NAME`` or ``--config JSON``. Conversion calibrates on the first
``--calib`` training images of ``--data`` (see docs/golden-model.md).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..cli import UsageError, config_arg, fail, parse
from ..perf.runtime import add_threads_argument
from .intops import POLICIES



def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m npsnn golden",
                                description="Integer accumulate-only golden model of sMLPNet.")
    sub = p.add_subparsers(dest="command", required=True)

    def model_args(sp, data_required):
        sp.add_argument("--checkpoint", required=True,
                        help="npsnn checkpoint, or a plain state-dict .npz (+ --preset/--config)")
        sp.add_argument("--preset", help="preset name for a plain state-dict .npz")
        sp.add_argument("--config", help="model config as JSON (or a .json file) for a plain .npz")
        sp.add_argument("--data", required=data_required,
                        help="CIFAR folder or archive (npsnn.datasets.load_cifar)")
        sp.add_argument("--split", default="test", choices=["train", "test"],
                        help="split the images come from (default test)")
        sp.add_argument("--T", type=int, default=4, help="time steps (default 4)")
        sp.add_argument("--calib", type=int, default=256,
                        help="calibration images, first N of the train split (default 256)")
        sp.add_argument("--bits", type=int, default=8, help="weight width (default 8)")
        sp.add_argument("--bias-bits", type=int, default=24, help="bias width (default 24)")
        sp.add_argument("--acc-bits", type=int, default=24,
                        help="accumulator and term-value width (default 24)")
        sp.add_argument("--mem-bits", type=int, default=24,
                        help="LIF current and membrane width (default 24)")
        sp.add_argument("--policy", default="error", choices=POLICIES,
                        help="overflow policy (default error)")
        sp.add_argument("--mean", type=float, nargs=3, default=None,
                        help="input normalisation mean (default CIFAR-10)")
        sp.add_argument("--std", type=float, nargs=3, default=None,
                        help="input normalisation std (default CIFAR-10)")

    sp = sub.add_parser("export", help="write test vectors (npz + $readmemh hex + manifest)")
    model_args(sp, True)
    sp.add_argument("--images", default="0:16", help="index range a:b of --split (default 0:16)")
    sp.add_argument("--out", required=True, help="output directory")
    sp.add_argument("--no-hex", action="store_true", help="skip the hex files")
    sp = sub.add_parser("corner", help="write the corner-case vector suite (a small network "
                                       "built to exercise every rule; coverage in suite.json)")
    sp.add_argument("--out", required=True, help="output directory")
    sp.add_argument("--T", type=int, default=4, help="time steps (default 4, at least 2)")
    sp.add_argument("--no-hex", action="store_true", help="skip the hex files")
    sp = sub.add_parser("verify", help="compare another simulator's dump with ours")
    sp.add_argument("--ours", required=True)
    sp.add_argument("--theirs", required=True)
    sp = sub.add_parser("report", help="operation counts and energy table")
    model_args(sp, False)
    sp.add_argument("--images", default="0:64", help="images used for firing rates (default 0:64)")
    sp = sub.add_parser("eval", help="integer vs float top-1 and prediction agreement")
    model_args(sp, True)
    sp.add_argument("--images", default=None, help="index range a:b (default: whole split)")
    sp.add_argument("--batch", type=int, default=100)
    sp.add_argument("--snap", action="store_true",
                    help="snap the float model onto the --bits weight grid first (as "
                         "'golden snap' does) and compare the integer model with it")
    add_threads_argument(sp)
    sp = sub.add_parser("snap", help="write a copy of a checkpoint with its weights on the "
                                     "integer weight grid (the float twin of the golden model)")
    sp.add_argument("--checkpoint", required=True,
                    help="npsnn checkpoint, or a plain state-dict .npz (+ --preset/--config)")
    sp.add_argument("--preset", help="preset name for a plain state-dict .npz")
    sp.add_argument("--config", help="model config as JSON (or a .json file) for a plain .npz")
    sp.add_argument("--bits", type=int, default=8, help="weight width (default 8)")
    sp.add_argument("--mean", type=float, nargs=3, default=None,
                    help="input normalisation mean (default CIFAR-10)")
    sp.add_argument("--std", type=float, nargs=3, default=None,
                    help="input normalisation std (default CIFAR-10)")
    sp.add_argument("--out", required=True, help="output .npz (written atomically)")
    return p


def _range(text: str, n: int) -> range:
    try:
        a, b = (text.split(":") + [""])[:2]
        a = int(a) if a else 0
        b = int(b) if b else n
    except ValueError:
        raise UsageError(f"--images expected a range like 0:16, got {text!r}") from None
    if not 0 <= a < b <= n:
        raise UsageError(f"--images {text} is outside the {n} images available")
    return range(a, b)


def _config(args):
    """The model of a plain state dict: --config (npsnn.cli.config_arg) or --preset."""
    if args.config:
        return config_arg(args.config)
    if args.preset:
        return args.preset
    raise UsageError(f"{args.checkpoint} is a plain state dict; pass --preset NAME or --config "
                     f"JSON to say which model it holds")


def load_model(args):
    """-> float model (eval mode) from a checkpoint or a plain state-dict .npz."""
    return load_model_info(args)[0]


def load_model_info(args):
    """-> (float model in eval mode, the checkpoint's other parts, or None for a plain
    state-dict .npz)."""
    import npsnn
    from ..io import load_npz
    path = Path(args.checkpoint)
    if not path.is_file():
        raise UsageError(f"no checkpoint file at {path}")
    try:
        from ..train.checkpoint import load_model as load_ckpt, CheckpointError
    except ImportError:              # the training package is optional here
        load_ckpt, CheckpointError = None, ValueError
    if load_ckpt is not None and not (args.preset or args.config):
        try:
            model, info = load_ckpt(path, dtype=np.float32)
            snapped = (info.get("golden_snap") or {}).get("bits")
            bits = getattr(args, "bits", None)
            if snapped is not None and bits is not None and snapped != bits:
                print(f"note: {path.name} was snapped to {snapped}-bit weights; with --bits "
                      f"{bits} its weights are rounded again (pass --bits {snapped} for the "
                      f"exact twin)", file=sys.stderr)
            return model, info
        except CheckpointError as e:
            if "not an npsnn checkpoint" not in str(e):
                raise UsageError(str(e)) from None
    config = _config(args)
    try:
        model = npsnn.build(config, dtype=np.float32)
        state = load_npz(path)
        state = {k[len("model/"):] if k.startswith("model/") else k: v for k, v in state.items()}
        model.load_state_dict({k: v for k, v in state.items() if "/" not in k}, strict=True)
    except (ValueError, TypeError, KeyError) as e:
        raise UsageError(f"cannot load {path} as a state dict: {e}") from None
    return model.eval(), None


def _data(args, split):
    from ..datasets import load_cifar
    try:
        return load_cifar(args.data, split)
    except (ValueError, FileNotFoundError, OSError) as e:
        raise UsageError(f"cannot read --data {args.data}: {e}") from None


def _network(args, model, fallback_images):
    from . import CIFAR_MEAN, CIFAR_STD, convert
    if args.data:
        try:
            calib = _data(args, "train")[0][:args.calib]
        except UsageError:
            calib = fallback_images
    else:
        calib = fallback_images
    return convert(model, calib, bits=args.bits, bias_bits=args.bias_bits,
                   acc_bits=args.acc_bits, mem_bits=args.mem_bits,
                   mean=args.mean or CIFAR_MEAN, std=args.std or CIFAR_STD, T=args.T,
                   policy=args.policy)


def _cmd_export(args) -> int:
    from .export import export
    model = load_model(args)
    images, labels = _data(args, args.split)
    idx = _range(args.images, len(images))
    net = _network(args, model, images[idx.start:idx.stop])
    sel = np.asarray(idx)
    s = export(net, images[sel], args.T, args.out, ids=sel, labels=labels[sel],
               split=args.split, hex_files=not args.no_hex)
    print(f"wrote {s['values']} values for {s['images']} images, T={args.T}, to {s['out']}")
    _print_overflow(s["overflow"])
    return 0


def _print_overflow(summary: dict) -> None:
    """What the saturate / wrap policy did, per layer (also in the manifest)."""
    if summary["policy"] == "error":
        return
    verb = "clamped" if summary["policy"] == "saturate" else "wrapped"
    print(f"overflow policy '{summary['policy']}': {summary['total']} values {verb}"
          + ("" if summary["total"] else " (none left its width)"))
    for layer, fields in summary["layers"].items():
        print(f"  {layer}: " + ", ".join(f"{field} {n}" for field, n in fields.items()))


def _cmd_corner(args) -> int:
    from .corner import export_corner, format_coverage
    s = export_corner(args.out, T=args.T, hex_files=not args.no_hex)
    print(f"wrote the corner suite to {args.out}: "
          + ", ".join(f"{name}/ ({m['values']} values)" for name, m in s["members"].items()))
    print(format_coverage(s))
    return 0


def _cmd_verify(args) -> int:
    from .export import BadDump, verify
    try:
        ok, msg = verify(args.ours, args.theirs)
    except BadDump as e:
        raise UsageError(str(e)) from None
    print(msg)
    return 0 if ok else 1


def _cmd_report(args) -> int:
    from .counts import count_ops_batched, format_report
    model = load_model(args)
    cfg = model.config
    shape = (cfg["in_channels"], cfg["image_size"], cfg["image_size"])
    if args.data:
        data = _data(args, args.split)[0]
        idx = _range(args.images, len(data))
        source = f"{args.split} images {args.images} of {args.data}"
        batch = lambda a, b: data[a:b]                                   # noqa: E731
    else:
        idx = _range(args.images, 10 ** 18)
        if idx.stop > MAX_RANDOM_IMAGES:
            raise UsageError(f"--images {args.images}: without --data, 'golden report' draws "
                             f"random images, which only estimate firing rates; at most "
                             f"{MAX_RANDOM_IMAGES} (--images 0:{MAX_RANDOM_IMAGES}); pass --data "
                             f"for real images")
        source = (f"{len(idx)} random uint8 images (no --data given: firing rates are not "
                  f"those of data)")
        batch = lambda a, b: np.stack([_random_image(i, shape) for i in range(a, b)])  # noqa
    step = _images_per_run(shape, args.T)
    starts = range(idx.start, idx.stop, step)
    net = _network(args, model, batch(idx.start, min(idx.stop, idx.start + args.calib)))
    counts = count_ops_batched(net, (batch(a, min(a + step, idx.stop)) for a in starts), args.T)
    print(f"checkpoint {args.checkpoint}; {source}")
    print(format_report(counts, net.memory()))
    return 0


#: random images of 'golden report' without --data only estimate firing rates
MAX_RANDOM_IMAGES = 10_000


def _random_image(index: int, shape) -> np.ndarray:
    """Random image ``index`` (its own seed: the same whatever the batching)."""
    return np.random.default_rng([0, index]).integers(0, 256, shape, np.uint8)


def _images_per_run(shape, T: int) -> int:
    """Images recorded at once: a trace holds every layer's values for each image and time
    step, so big images go a few at a time (64 CIFAR images, 1 ImageNet image)."""
    pixels = shape[1] * shape[2]
    return max(1, min(64, (64 * 32 * 32 * 4) // (pixels * T)))


def _snap(args, model):
    from . import CIFAR_MEAN, CIFAR_STD
    from .snap import snap_to_grid
    return snap_to_grid(model, args.bits, mean=args.mean or CIFAR_MEAN,
                        std=args.std or CIFAR_STD)


def _cmd_eval(args) -> int:
    from ..perf.runtime import describe, tune_process
    from .convert import float_predictions
    from .run import run
    model = load_model(args)
    images, labels = _data(args, args.split)
    print(describe(tune_process(args.threads)))
    if args.images:
        sel = np.asarray(_range(args.images, len(images)))
        images, labels = images[sel], labels[sel]
    n = len(labels)
    if args.snap:
        from . import CIFAR_MEAN, CIFAR_STD
        original = float_predictions(model, images, args.T, args.mean or CIFAR_MEAN,
                                     args.std or CIFAR_STD, args.batch)
        _snap(args, model)
    net = _network(args, model, images[:args.calib])
    mean, std = net.meta["mean"], net.meta["std"]
    ip, events = [], []
    for s in range(0, len(images), args.batch):
        res = run(net, images[s:s + args.batch], args.T)
        ip.append(res["pred"])
        events += res["events"]
    ip = np.concatenate(ip)
    fp = float_predictions(model, images, args.T, mean, std, args.batch)
    print(f"{n} {args.split} images, T={args.T}, weights {args.bits} bit, membranes "
          f"{args.mem_bits} bit, units {net.meta['units']}")
    if args.snap:
        print(f"float   top-1 (checkpoint as given): {100 * (original == labels).mean():.2f}%")
        print(f"float   top-1 (snapped to the {args.bits}-bit grid): "
              f"{100 * (fp == labels).mean():.2f}%")
    else:
        print(f"float   top-1: {100 * (fp == labels).mean():.2f}%")
    print(f"integer top-1: {100 * (ip == labels).mean():.2f}%")
    print(f"prediction agreement{' with the snapped float model' if args.snap else ''}: "
          f"{100 * (ip == fp).mean():.2f}% ({int((ip == fp).sum())}/{n})")
    if args.snap:
        print(f"prediction agreement with the checkpoint as given: "
              f"{100 * (ip == original).mean():.2f}% ({int((ip == original).sum())}/{n})")
    from .export import overflow_summary
    _print_overflow(overflow_summary(events, args.policy))
    return 0


def _cmd_snap(args) -> int:
    from ..io import save_npz
    model, info = load_model_info(args)
    _snap(args, model)
    out = Path(args.out)
    state = {k: np.asarray(v) for k, v in model.state_dict().items()}
    if info is not None:
        # a weights-only checkpoint (like 'npsnn slim', float32): no optimizer state
        from ..train.checkpoint import save_checkpoint
        parts = {k: v for k, v in info.items() if k not in ("format_version", "npsnn_version")}
        parts.update(model=state, golden_snap={"bits": int(args.bits),
                                               "from": Path(args.checkpoint).name})
        save_checkpoint(out, **parts)
    else:
        save_npz(out, state)
    print(f"wrote {out}: weights on the {args.bits}-bit golden grid (per-row power-of-two "
          f"scales, power-of-two token gains); convert it with the same --bits")
    return 0


def main(argv=None) -> int:
    args, code = parse(_parser(), sys.argv[1:] if argv is None else argv)
    if args is None:                 # argparse: --help (0) or a usage error (2)
        return code
    from .intops import GoldenOverflowError
    prog = f"npsnn golden {args.command}"
    try:
        _check_numbers(args)
        return {"export": _cmd_export, "verify": _cmd_verify, "report": _cmd_report,
                "eval": _cmd_eval, "snap": _cmd_snap, "corner": _cmd_corner}[args.command](args)
    except GoldenOverflowError as e:   # the 'error' policy did its job: exit 1
        fail(prog, e)
        return 1
    except (ValueError, TypeError, OverflowError, OSError) as e:   # bad input: exit 2
        return fail(prog, e)
    except MemoryError:
        return fail(prog, "ran out of memory: use fewer --images, a smaller --batch or --T")


def _check_numbers(args) -> None:
    """Counts that must be positive (a negative --calib took all but that many images)."""
    for name in ("T", "calib", "batch"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise UsageError(f"--{name} must be a positive integer, got {value}")
