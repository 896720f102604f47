"""Write PyTorch checkpoints (``torch.save`` files) without torch.

The inverse of :mod:`npsnn.io.pth`: :func:`save_pth` writes the zip format that
``torch.save`` has written by default since PyTorch 1.6, with the official ``state_dict``
key names and dtypes, so that in PyTorch

    torch.load("model.pth", weights_only=True)            # accepted: tensors and plain data
    model.load_state_dict(..., strict=True)                 # the official sMLPNet

both succeed. The archive, as ``torch.save`` lays it out (one top folder, every entry
stored uncompressed)::

    <name>/data.pkl                 the pickled object, protocol 2
    <name>/.format_version          "1"
    <name>/.storage_alignment       "64"   (each data/<k> starts at a multiple of 64 bytes)
    <name>/byteorder                "little"
    <name>/data/<k>                 the raw little-endian bytes of storage k, one per tensor
    <name>/version                  "3\\n"
    <name>/.data/serialization_id   a decimal id of the file

Inside ``data.pkl`` a tensor is the call
``torch._utils._rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())`` whose
``storage`` is the persistent id ``("storage", torch.FloatStorage, "<k>", "cpu", numel)``.
The pickle is written opcode by opcode (:class:`_PickleWriter`) rather than by
:mod:`pickle`, which would have to import torch to name those globals. Only what a
checkpoint holds is written: dicts (``OrderedDict`` for state dicts, as PyTorch does),
lists, tuples, strings, ints, floats, bools, None and arrays. ``weights_only=True`` accepts
exactly these globals (``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``,
``torch.*Storage``).

:func:`train_checkpoint` wraps a state dict the way the official mixer-snn ``train.py``
saves its checkpoints (``model``, ``optimizer``, ``lr_scheduler``, ``epoch``, ``args``,
``max_test_acc1``), so that ``train.py --resume FILE`` continues from it; see
``docs/interop.md`` for what it restores and what it cannot.
"""
from __future__ import annotations

import collections
import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .files import atomic_write

__all__ = ["save_pth", "torch_state_dict", "train_checkpoint", "official_order"]

#: NumPy dtype -> the legacy storage class torch.save names for it
_STORAGE = {np.dtype(np.float32): "FloatStorage", np.dtype(np.float64): "DoubleStorage",
            np.dtype(np.float16): "HalfStorage", np.dtype(np.int64): "LongStorage",
            np.dtype(np.int32): "IntStorage", np.dtype(np.int16): "ShortStorage",
            np.dtype(np.int8): "CharStorage", np.dtype(np.uint8): "ByteStorage",
            np.dtype(np.bool_): "BoolStorage"}
_ALIGN = 64                     # torch.save's storage alignment (.storage_alignment)


# -- the pickle ------------------------------------------------------------------------------
class _PickleWriter:
    """Protocol-2 pickle opcodes for plain data and tensors (see the module docstring).

    ``storages`` collects the arrays in the order their keys ``"0"``, ``"1"``, ... are
    handed out; the zip writer stores each under ``data/<key>``.
    """

    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.storages: list[np.ndarray] = []

    def dumps(self, obj) -> bytes:
        self.out.write(b"\x80\x02")                          # PROTO 2
        self._save(obj)
        self.out.write(b".")                                 # STOP
        return self.out.getvalue()

    def _global(self, module: str, name: str) -> None:
        self.out.write(b"c" + module.encode() + b"\n" + name.encode() + b"\n")   # GLOBAL

    def _save(self, obj) -> None:
        w = self.out.write
        if obj is None:
            w(b"N")
        elif obj is True or obj is False:
            w(b"\x88" if obj else b"\x89")                   # NEWTRUE / NEWFALSE
        elif isinstance(obj, (int, np.integer)):
            self._int(int(obj))
        elif isinstance(obj, (float, np.floating)):
            w(b"G" + struct.pack(">d", float(obj)))          # BINFLOAT, big-endian
        elif isinstance(obj, str):
            data = obj.encode("utf-8")
            w(b"X" + struct.pack("<I", len(data)) + data)    # BINUNICODE
        elif isinstance(obj, np.ndarray):
            self._tensor(obj)
        elif isinstance(obj, dict):
            if isinstance(obj, collections.OrderedDict):
                self._global("collections", "OrderedDict")
                w(b")R")                                     # OrderedDict()
            else:
                w(b"}")                                      # EMPTY_DICT
            for key, value in obj.items():
                self._save(key)
                self._save(value)
                w(b"s")                                      # SETITEM
        elif isinstance(obj, (list, tuple)):
            w(b"]" if isinstance(obj, list) else b"(")       # EMPTY_LIST / MARK
            for item in obj:
                self._save(item)
                if isinstance(obj, list):
                    w(b"a")                                  # APPEND
            if isinstance(obj, tuple):
                w(b"t")                                      # TUPLE
        else:
            raise TypeError(f"save_pth cannot store a {type(obj).__name__} ({obj!r:.60}); "
                            f"only dicts, lists, tuples, strings, numbers, None and "
                            f"NumPy arrays")

    def _int(self, i: int) -> None:
        if 0 <= i < 256:
            self.out.write(b"K" + bytes([i]))                # BININT1
        elif -2 ** 31 <= i < 2 ** 31:
            self.out.write(b"J" + struct.pack("<i", i))      # BININT
        else:
            raw = i.to_bytes((i.bit_length() + 8) // 8, "little", signed=True)
            self.out.write(b"\x8a" + bytes([len(raw)]) + raw)   # LONG1

    def _tensor(self, a: np.ndarray) -> None:
        a = np.array(a, dtype=a.dtype.newbyteorder("="), order="C", copy=None)
        if a.dtype not in _STORAGE:
            raise TypeError(f"save_pth cannot store arrays of dtype {a.dtype}; use one of "
                            f"{', '.join(sorted(str(d) for d in _STORAGE))}")
        key = str(len(self.storages))
        self.storages.append(a.astype(a.dtype.newbyteorder("<"), copy=False))
        stride = tuple(s // a.itemsize for s in a.strides) if a.size else (1,) * a.ndim
        if a.ndim and not a.size:      # torch's stride of an empty tensor is contiguous
            stride = tuple(int(np.prod(a.shape[i + 1:])) for i in range(a.ndim))
        self._global("torch._utils", "_rebuild_tensor_v2")
        w = self.out.write
        w(b"(")                                              # MARK: the argument tuple
        w(b"(")                                              # the persistent id
        self._save("storage")
        self._global("torch", _STORAGE[a.dtype])
        self._save(key)
        self._save("cpu")
        self._int(a.size)
        w(b"tQ")                                             # TUPLE, BINPERSID
        self._int(0)                                         # storage offset
        self._save(tuple(int(n) for n in a.shape))
        self._save(stride)
        w(b"\x89")                                           # requires_grad = False
        self._global("collections", "OrderedDict")
        w(b")R")                                             # backward_hooks = OrderedDict()
        w(b"tR")                                             # TUPLE, REDUCE


# -- the archive ------------------------------------------------------------------------------
def _write_zip(f, name: str, pickled: bytes, storages: list[np.ndarray]) -> None:
    """The zip layout of torch.save (see the module docstring), storages 64-byte aligned."""
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
        def put(entry: str, data: bytes, align: bool = False) -> None:
            info = zipfile.ZipInfo(f"{name}/{entry}", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            if align:
                # local header: 30 bytes + name + extra; pad the extra field ("FB" id, as
                # PyTorch's writer does) until the data starts on a multiple of _ALIGN
                start = f.tell() + 30 + len(info.filename.encode()) + 4
                pad = -start % _ALIGN
                info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
            zf.writestr(info, data)

        put("data.pkl", pickled)
        put(".format_version", b"1")
        put(".storage_alignment", str(_ALIGN).encode())
        put("byteorder", b"little")
        for key, array in enumerate(storages):
            put(f"data/{key}", array.tobytes(), align=True)
        put("version", b"3\n")
        put(".data/serialization_id",
            str(zlib.crc32(pickled) * 10 ** 30 + len(storages)).zfill(40).encode())


def save_pth(path, obj, *, archive_name: str | None = None) -> Path:
    """Write ``obj`` to ``path`` in the zip format of ``torch.save``, atomically.

    obj: a state dict ``{key: ndarray}`` (written as an ``OrderedDict``, as PyTorch writes
        ``model.state_dict()``), or any tree of dicts, lists, tuples, strings, numbers,
        None and arrays (e.g. :func:`train_checkpoint`). Arrays keep their dtype; use
        :func:`torch_state_dict` first for the official dtypes (float32, int64 counters).
    archive_name: the archive's top folder (default: the file name without its suffix,
        as ``torch.save`` names it).

    ``torch.load(path, weights_only=True)`` returns the same tree with tensors.
    """
    path = Path(path)
    if isinstance(obj, dict) and obj and all(isinstance(v, np.ndarray) for v in obj.values()):
        obj = collections.OrderedDict(obj)
    writer = _PickleWriter()
    pickled = writer.dumps(obj)
    name = archive_name or path.stem or "archive"
    if "/" in name or not name.isprintable():
        raise ValueError(f"save_pth: archive_name must be a plain folder name, got {name!r}")
    with atomic_write(path) as f:
        _write_zip(f, name, pickled, writer.storages)
    return path


# -- the official layouts ---------------------------------------------------------------------
def official_order(model) -> list[str]:
    """The ``state_dict`` keys of an sMLPNet ``model`` in the order of the official module
    tree (parameters then buffers of each module, modules in registration order).

    npsnn registers its modules in the official order except inside a token mixer, where
    the official ``sMLPBlock`` defines ``proj_w`` before ``proj_h``. The optimizer state of
    the official ``train.py`` indexes parameters in this order (``model.parameters()``).
    """
    keys = [f"{path}.{name}" if path else name for path, module in model.named_modules()
            for name in (*module.params, *module.buffers)]      # registration order
    first: dict[str, int] = {}          # token mixer -> index of its first proj_ key
    for i, key in enumerate(keys):
        parts = key.split(".")
        if parts[0] == "token_mix" and parts[2] in ("proj_h", "proj_w"):
            first.setdefault(parts[1], i)

    def rank(item):
        index, key = item
        parts = key.split(".")
        if parts[0] == "token_mix" and parts[2] in ("proj_h", "proj_w"):
            return (first[parts[1]], 0 if parts[2] == "proj_w" else 1, index)
        return (index, 0, index)

    return [key for _, key in sorted(enumerate(keys), key=rank)]


def torch_state_dict(model, dtype=np.float32) -> "collections.OrderedDict":
    """``model``'s weights as the official model's ``state_dict()``: official key order
    (:func:`official_order`), floating arrays cast to ``dtype`` (float32, PyTorch's
    default), the BN counters ``num_batches_tracked`` as int64 scalars."""
    state = model.state_dict()
    out = collections.OrderedDict()
    for key in official_order(model):
        a = np.asarray(state[key])
        if key.endswith("num_batches_tracked"):
            a = np.asarray(a, dtype=np.int64).reshape(())
        elif a.dtype.kind == "f":
            a = a.astype(dtype)
        out[key] = np.array(a, order="C")      # (ascontiguousarray makes 0-d arrays 1-d)
    return out


def _official_args(args: dict | None, config: dict | None) -> dict:
    """The official train.py's argparse fields a run of these settings corresponds to
    (a plain dict: an ``argparse.Namespace`` would make ``weights_only=True`` refuse the
    file, and train.py does not read ``args`` back when it resumes)."""
    args = dict(args or {})
    out = {"model": "mixer_sparse", "T": args.get("T", 4), "batch_size": args.get("batch", 64),
           "epochs": args.get("epochs", 100), "opt": args.get("optimizer", "sgd"),
           "lr": args.get("lr", 0.1), "momentum": args.get("momentum", 0.9),
           "weight_decay": args.get("wd", 0.0), "lr_scheduler": "cosa",
           "lr_warmup_epochs": int(args.get("warmup_epochs", 0) or 0),
           "smoothing": args.get("label_smoothing", 0.1), "mixup": args.get("mixup", 0.0),
           "cutmix": args.get("cutmix", 0.0), "seed": args.get("seed", 0),
           "exported_by": "npsnn export-pth"}
    if config is not None:
        out["npsnn_config"] = {k: v for k, v in config.items() if k != "neuron"}
    return out


def train_checkpoint(model, *, checkpoint: dict | None = None, dtype=np.float32) -> dict:
    """``model``'s weights wrapped as the official ``train.py`` saves a checkpoint::

        {"model", "optimizer", "lr_scheduler", "epoch", "args", "max_test_acc1"}

    checkpoint: the npsnn training checkpoint the weights come from
        (:func:`npsnn.train.checkpoint.load_checkpoint`), or None for bare weights.

    When ``checkpoint`` is a run of the official recipe (SGD, or AdamW, with the per-epoch
    cosine schedule and no warm-up, at the end of an epoch), its optimizer state (momentum
    buffers / Adam moments, by the official parameter index) and schedule position are
    carried over and ``train.py --resume`` continues the run at the next epoch. Otherwise
    the optimizer and schedule entries are fresh ones (no per-parameter state, epoch -1),
    and ``--resume`` starts a new official run from these weights. ``"args"`` records the
    settings as a plain dict (see :func:`_official_args`).
    """
    ckpt = checkpoint or {}
    state = torch_state_dict(model, dtype)
    params = [k for k in state if not k.endswith(("running_mean", "running_var",
                                                   "num_batches_tracked"))]
    args = ckpt.get("args") or {}
    progress = ckpt.get("progress") or {}
    lr = float(args.get("lr", 0.1))
    epochs = int(args.get("epochs", 100))
    resumable = (args.get("schedule") == "epoch-cosine" and not args.get("warmup_epochs")
                 and args.get("optimizer") in ("sgd", "adamw") and "optimizer" in ckpt
                 and progress.get("step_in_epoch") == 0)
    done = int(progress.get("epoch", 0)) if resumable else 0
    group = {"lr": lr, "initial_lr": lr, "weight_decay": float(args.get("wd", 0.0)),
             "maximize": False, "foreach": None, "differentiable": False, "fused": None,
             "params": list(range(len(params)))}
    opt_state: dict = {}
    if args.get("optimizer", "sgd") == "adamw":
        group.update(betas=(float(args.get("momentum", 0.9)), 0.999), eps=1e-8,
                     amsgrad=False, capturable=False)
    else:
        group.update(momentum=float(args.get("momentum", 0.9)), dampening=0.0,
                     nesterov=bool(args.get("nesterov", False)))
    if resumable:
        saved = ckpt["optimizer"]
        steps = float(np.asarray(saved.get("step_count", 0)))
        for index, key in enumerate(params):
            entry = {}
            for slot, torch_slot in (("momentum", "momentum_buffer"), ("exp_avg", "exp_avg"),
                                     ("exp_avg_sq", "exp_avg_sq")):
                if f"state/{slot}/{key}" in saved:
                    entry[torch_slot] = np.asarray(saved[f"state/{slot}/{key}"], dtype)
            if "exp_avg" in entry:
                entry = {"step": np.asarray(steps, np.float32), **entry}
            if entry:
                opt_state[index] = entry
        group["lr"] = lr * (1 + np.cos(np.pi * done / epochs)) / 2
    scheduler = {"T_max": epochs, "eta_min": 0.0, "base_lrs": [lr], "last_epoch": done,
                 "_step_count": done + 1, "_get_lr_called_within_step": False,
                 "_last_lr": [group["lr"]]}
    best = progress.get("best_acc")
    return {"model": state, "optimizer": {"state": opt_state, "param_groups": [group]},
            "lr_scheduler": scheduler, "epoch": done - 1,
            "args": _official_args(args, getattr(model, "config", None)),
            "max_test_acc1": float(best) if resumable and best is not None else -1.0}
