"""Checkpoints: one pickle-free ``.npz`` holding everything eval, resume and export need.

Layout of the archive (``np.load(path, allow_pickle=False)`` reads it; nothing is ever
unpickled)::

    format            "npsnn-checkpoint"           (identifies the file)
    format_version    1
    npsnn_version     "0.1.0"
    model/<key>       weights and BN buffers by official state_dict key
    optimizer/<key>   optimizer state (momentum buffers / Adam moments, step count)
    schedule/<key>    schedule state (step count, total steps)
    <name>            any other part, stored as a JSON string: "config" (the model config,
                      required), "args" (training arguments), "progress" (epoch,
                      step_in_epoch, global step, best accuracy, ...), "rng" (the
                      bit_generator state of the augmentation RNG), "history" (metrics), ...

The file is written atomically (temporary file + rename, :func:`npsnn.io.save_npz`), so a
crash or ``kill -9`` while saving leaves the previous checkpoint intact, never a torn file.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..io import load_npz, save_npz
from ..io.limits import load_json

FORMAT = "npsnn-checkpoint"
FORMAT_VERSION = 1
#: parts stored as arrays under "<part>/<key>"; every other part is a JSON string
ARRAY_PARTS = ("model", "optimizer", "schedule")
_RESERVED = ("format", "format_version", "npsnn_version")
#: dtype kinds of the array parts: bool, signed and unsigned integers, floats
NUMERIC_KINDS = "biuf"


class CheckpointError(ValueError):
    """A file that is not a (readable) npsnn checkpoint."""


def _version() -> str:
    from .. import __version__
    return __version__


def save_checkpoint(path, **parts) -> Path:
    """Write a checkpoint atomically.

    parts: ``model`` (required, ``{official key: array}``), ``config`` (required, the model
    config dict), optionally ``optimizer`` / ``schedule`` (dicts of arrays) and any other
    JSON-serialisable parts (``args``, ``progress``, ``rng``, ``history``, ...).
    """
    for need in ("model", "config"):
        if need not in parts:
            raise ValueError(f"save_checkpoint needs the '{need}' part")
    bad = [k for k in parts if k in _RESERVED or "/" in k]
    if bad:
        raise ValueError(f"save_checkpoint: reserved or invalid part names {bad}")
    arrays: dict[str, np.ndarray] = {"format": np.array(FORMAT),
                                     "format_version": np.array(FORMAT_VERSION, np.int64),
                                     "npsnn_version": np.array(_version())}
    for name, value in parts.items():
        if value is None:
            continue
        if name in ARRAY_PARTS:
            for key, arr in value.items():
                arrays[f"{name}/{key}"] = np.asarray(arr)
        else:
            try:
                arrays[name] = np.array(json.dumps(value, sort_keys=True, allow_nan=True))
            except TypeError as e:
                raise TypeError(f"save_checkpoint: part '{name}' is not JSON-serialisable "
                                f"({e}); pass arrays only in {ARRAY_PARTS}") from None
    path = Path(path)
    save_npz(path, arrays)
    return path


def load_checkpoint(path) -> dict:
    """Read a checkpoint -> ``{part: value}`` (array parts as dicts of arrays, JSON parts
    decoded), plus ``format_version`` and ``npsnn_version``.

    Raises FileNotFoundError for a missing file and :class:`CheckpointError` (a
    ValueError) for a corrupt, truncated or foreign file, with a message that says which.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file; pass e.g. "
                              f"{path / 'last.npz'} or {path / 'best.npz'}")
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    try:
        raw = load_npz(path)
    except ValueError as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e}") from None
    fmt = raw.get("format")
    if fmt is None or fmt.dtype.kind != "U" or str(fmt) != FORMAT:
        keys = ", ".join(sorted(raw)[:5]) + (", ..." if len(raw) > 5 else "")
        raise CheckpointError(f"{path} is an .npz but not an npsnn checkpoint (no "
                              f"format='{FORMAT}' entry; its keys: {keys or 'none'}). "
                              f"Checkpoints are written by 'python -m npsnn train'")
    version = raw.get("format_version")
    if version is None or version.shape != () or version.dtype.kind not in "iu":
        raise CheckpointError(f"{path}: its 'format_version' entry is missing or not an "
                              f"integer; the file is damaged")
    version = int(version)
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format {version}, newer than this "
                              f"npsnn understands ({FORMAT_VERSION}); upgrade npsnn")
    npsnn_version = raw.get("npsnn_version")
    out: dict = {"format_version": version,
                 "npsnn_version": str(npsnn_version) if npsnn_version is not None else "?"}
    for part in ARRAY_PARTS:
        prefix = part + "/"
        found = {k[len(prefix):]: v for k, v in raw.items() if k.startswith(prefix)}
        bad = sorted(f"{prefix}{k} ({v.dtype})" for k, v in found.items()
                     if v.dtype.kind not in NUMERIC_KINDS)
        if bad:
            raise CheckpointError(f"{path}: {', '.join(bad[:3])}"
                                  f"{f' and {len(bad) - 3} more' if len(bad) > 3 else ''} "
                                  f"{'is' if len(bad) == 1 else 'are'} not real numbers "
                                  f"(weights, buffers and optimizer state are bool, integer "
                                  f"or float arrays); the file is damaged or not written by "
                                  f"npsnn")
        if found:
            out[part] = found
    for name, value in raw.items():
        if name in _RESERVED or "/" in name:
            continue
        if value.dtype.kind != "U" or value.shape != ():
            raise CheckpointError(f"{path}: entry '{name}' should be a JSON string, got an "
                                  f"array of dtype {value.dtype} and shape {value.shape}")
        try:
            out[name] = load_json(str(value), f"entry '{name}'")
        except ValueError as e:
            raise CheckpointError(f"{path}: {e}") from None
    for need in ("model", "config"):
        if need not in out:
            raise CheckpointError(f"{path} is an npsnn checkpoint without its '{need}' part; "
                                  f"it is damaged")
    if not isinstance(out["config"], (dict, str)):
        raise CheckpointError(f"{path}: its 'config' part is a {type(out['config']).__name__}, "
                              f"not a model config; the file is damaged")
    return out


#: what a resumable checkpoint's "progress" part holds, and of which types
PROGRESS = dict(epoch=int, step_in_epoch=int, global_step=int, batches_per_epoch=int,
                best_acc=(int, float), best_epoch=int, epoch_loss_sum=(int, float),
                epoch_correct=int, epoch_seen=int, interval=list, last_lr=(int, float),
                elapsed_s=(int, float))


def check_resumable(ckpt: dict, path) -> dict:
    """Raise CheckpointError unless ``ckpt`` holds a whole, well-formed training state."""
    lacking = [k for k in ("args", "progress", "optimizer", "schedule", "rng") if k not in ckpt]
    if lacking:
        raise CheckpointError(f"{path} cannot be resumed: it lacks the training state "
                              f"({', '.join(lacking)}); it holds weights only (fine for "
                              f"'python -m npsnn eval')")
    for part, kind in (("args", dict), ("progress", dict), ("rng", dict),
                       ("history", list)):
        if part in ckpt and not isinstance(ckpt[part], kind):
            raise CheckpointError(f"{path}: its '{part}' part is a "
                                  f"{type(ckpt[part]).__name__}, not a {kind.__name__}; the "
                                  f"file is damaged")
    p = ckpt["progress"]
    bad = [k for k, kind in PROGRESS.items()
           if isinstance(p.get(k), bool) or not isinstance(p.get(k), kind)
           or (kind is int and p[k] < 0)]
    if not bad and len(p["interval"]) != 3:
        bad = ["interval"]
    if bad:
        raise CheckpointError(f"{path}: its progress entries {', '.join(bad)} are missing or "
                              f"of the wrong type; the file is damaged")
    return ckpt


def load_model(path, dtype=np.float32):
    """Build the checkpoint's model and load its weights -> ``(model, info)``.

    The model is in eval mode. ``info`` holds every other part of the checkpoint
    (``config``, ``args``, ``progress``, ``history``, ``npsnn_version``, ...) but not
    the optimizer/schedule arrays.
    """
    from ..models import build

    ckpt = load_checkpoint(path)
    try:
        model = build(ckpt["config"], dtype=dtype)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: its model config cannot be built ({e})") from None
    try:
        model.load_state_dict(ckpt["model"])
    except ValueError as e:
        raise CheckpointError(f"{path}: weights do not fit its own config ({e})") from None
    model.eval()
    info = {k: v for k, v in ckpt.items() if k not in ARRAY_PARTS}
    return model, info


def slim_checkpoint(src, dst, dtype=np.float16) -> Path:
    """Write a weights-only copy of checkpoint ``src`` to ``dst`` for inference and
    sharing: floating weights and BN buffers cast to ``dtype`` (float16 halves the size
    again), no optimizer or schedule state, the other parts (config, args, progress,
    history) kept. ``load_model`` and ``eval`` read it; ``--resume`` cannot (no optimizer).
    """
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"slim_checkpoint expected a floating dtype, got {dtype}")
    ckpt = load_checkpoint(src)
    parts = {k: v for k, v in ckpt.items()
             if k not in ARRAY_PARTS and k not in ("format_version", "npsnn_version")}
    with np.errstate(over="ignore"):        # overflow is found and named just below
        parts["model"] = {k: v.astype(dtype) if v.dtype.kind == "f" else v
                          for k, v in ckpt["model"].items()}
    overflow = sorted(k for k, v in parts["model"].items()
                      if v.dtype.kind == "f" and not np.isfinite(v).all())
    if overflow:
        raise ValueError(f"{src}: {', '.join(overflow[:3])}"
                         f"{f' and {len(overflow) - 3} more' if len(overflow) > 3 else ''} "
                         f"hold values beyond the range of {dtype} "
                         f"(largest {np.finfo(dtype).max:.6g}); they would become inf: slim "
                         f"with a wider --dtype (float32)")
    parts["slim"] = {"from": Path(src).name, "dtype": dtype.name}
    return save_checkpoint(dst, **parts)


def slim_main(argv=None) -> int:
    """``python -m npsnn slim IN.npz OUT.npz [--dtype float16]``."""
    import argparse
    import sys

    from ..cli import fail, parse

    ap = argparse.ArgumentParser(prog="python -m npsnn slim", description=(
        "Write a weights-only copy of a training checkpoint (no optimizer state), with the "
        "weights cast to a smaller float type, for inference, the golden model and sharing."))
    ap.add_argument("src", help="training checkpoint (.npz), e.g. runs/NAME/best.npz")
    ap.add_argument("dst", help="output file (.npz), written atomically")
    ap.add_argument("--dtype", default="float16", choices=["float16", "float32", "float64"],
                    help="floating type of the weights [default: float16]")
    args, code = parse(ap, sys.argv[1:] if argv is None else argv)
    if args is None:
        return code
    try:
        out = slim_checkpoint(args.src, args.dst, args.dtype)
    except (OSError, ValueError) as e:
        return fail("npsnn slim", e)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, weights {args.dtype})")
    return 0
