"""Test vectors: write a run of the integer network to disk, and compare two dumps.

Layout of an export directory (docs/golden-model.md, "Test vectors")::

    manifest.json                 network (ops, params, widths), vector fields, files
    params.npz                    every integer parameter (int64 arrays, PyTorch-free)
    params_hex/<param>.hex        the same, $readmemh text
    vectors/img<k>.npz            per image k: "<op>/<field>" arrays, time first
    vectors_hex/img<k>/<op>.<field>.hex

Hex words: one value per line, ceil(bits/4) hex digits, two's complement for signed
fields (unsigned for spikes and pixels), in row-major order of the array shape given in
the manifest (time slowest, then H, W, C, as stored). A ``//`` comment line heads each
file ($readmemh skips it).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..io import atomic_write, save_npz
from .network import IntegerNetwork, storage_dtype
from .run import run
from .terms import term_kind


def field_specs(net: IntegerNetwork) -> dict:
    """{op name: {field: (bits, signed)}} for every dumped field, in execution order (term
    fields come from the kind's row, :meth:`npsnn.golden.terms.TermKind.dump_fields`)."""
    b = net.bits
    fixed = dict(add=dict(value=(b["mem"], True)), concat=dict(value=(b["mem"], True)),
                 lif=dict(current=(b["mem"], True), h=(b["mem"], True), v=(b["mem"], True),
                          spikes=(1, False)),
                 head=dict(input=(1, False), step=(b["acc"], True), logits=(b["acc"], True)))
    return {op["name"]: term_kind(op).dump_fields(b) if op["op"] == "term" else fixed[op["op"]]
            for op in net.ops}


def to_hex(values: np.ndarray, bits: int, signed: bool = True, comment: str = "") -> str:
    """Integers -> $readmemh text: one word per line, two's complement if signed."""
    v = np.asarray(values, dtype=np.int64).ravel()
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if v.size and (v.min() < lo or v.max() > hi):
        raise ValueError(f"to_hex: values outside the {bits}-bit {'signed' if signed else 'unsigned'}"
                         f" range [{lo}, {hi}] ({comment})")
    digits = (bits + 3) // 4
    words = (v & ((1 << bits) - 1)).tolist()
    head = f"// {comment}\n" if comment else ""
    return head + "".join(f"{w:0{digits}x}\n" for w in words)


def from_hex(text: str, bits: int, signed: bool, shape) -> np.ndarray:
    """Inverse of :func:`to_hex` (skips // comments and blank lines)."""
    words = [int(line.split("//")[0].strip(), 16) for line in text.splitlines()
             if line.split("//")[0].strip()]
    v = np.array(words, dtype=np.int64)
    if signed:
        v = np.where(v >= (1 << (bits - 1)), v - (1 << bits), v)
    if v.size != int(np.prod(shape)):
        raise ValueError(f"hex file has {v.size} words, expected {int(np.prod(shape))} for "
                         f"shape {tuple(shape)}")
    return v.reshape(shape)


def _write_text(path: Path, text: str) -> None:
    with atomic_write(path, "w") as f:
        f.write(text)


def export(net: IntegerNetwork, images: np.ndarray, T: int, out, *, ids=None, labels=None,
           hex_files: bool = True, extra_meta: dict | None = None) -> dict:
    """Run ``images`` (uint8 (B, C, H, W)) for T steps and write the test vectors to ``out``.

    ids: dataset indices of the images (recorded in the manifest). -> summary dict.
    """
    out = Path(out)
    res = run(net, images, T, record=True)
    trace = res["trace"]
    specs = field_specs(net)
    ids = list(range(len(images))) if ids is None else [int(i) for i in ids]
    # parameters
    save_npz(out / "params.npz", {name: arr.astype(storage_dtype(net.param_bits(name)))
                                  for name, arr in net.params.items()})
    if hex_files:
        for name, arr in net.params.items():
            bits = net.param_bits(name)
            _write_text(out / "params_hex" / f"{name}.hex",
                        to_hex(arr, bits, True, f"{name} shape {list(arr.shape)} int{bits} "
                                                f"two's complement row-major"))
    # vectors
    n_values = 0
    fields = {}
    for k in range(len(images)):
        arrays = {}
        for op in net.ops:
            name = op["name"]
            for field, (bits, signed) in specs[name].items():
                a = np.ascontiguousarray(trace[name][field][:, k])
                dtype = storage_dtype(bits, signed)
                arrays[f"{name}/{field}"] = a.astype(dtype)
                fields.setdefault(name, {})[field] = dict(
                    shape=list(a.shape), bits=bits, signed=signed, dtype=str(dtype),
                    layout="TK" if a.ndim == 2 else "THWC",
                    time_invariant=bool(a.shape[0] == 1 and T > 1))
                n_values += a.size
                if hex_files:
                    _write_text(out / "vectors_hex" / f"img{k:04d}" / f"{name}.{field}.hex",
                                to_hex(a, bits, signed, f"image {ids[k]} {name}.{field} shape "
                                                        f"{list(a.shape)} {bits}-bit "
                                                        f"{'signed' if signed else 'unsigned'}"))
        save_npz(out / "vectors" / f"img{k:04d}.npz", arrays)
    manifest = net.manifest()
    manifest["vectors"] = dict(
        T=T, images=[dict(file=f"img{k:04d}", index=ids[k],
                          label=None if labels is None else int(labels[k]),
                          logits=[int(v) for v in res["logits"][k]], pred=int(res["pred"][k]))
                     for k in range(len(images))],
        fields=fields, values_per_image=n_values // max(len(images), 1),
        order="image, then t, then ops in manifest order, then fields in listed order")
    if extra_meta:
        manifest["meta"].update(extra_meta)
    _write_text(out / "manifest.json", json.dumps(manifest, indent=1))
    return dict(out=str(out), images=len(images), values=n_values, events=res["events"],
                pred=res["pred"], logits=res["logits"])


def load_export(path) -> IntegerNetwork:
    """The :class:`IntegerNetwork` of an export directory (manifest.json + params.npz)."""
    from ..io import load_npz
    path = Path(path)
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path} is not a golden export (manifest.json: {e})") from None
    return IntegerNetwork.from_manifest(manifest, load_npz(path / "params.npz"))


class BadDump(ValueError):
    """A dump directory is missing or unreadable (verify exits 2)."""


def _load_image(root: Path, spec: dict, fields: dict, file: str) -> dict:
    """{op/field: array} from vectors/<file>.npz, else from vectors_hex/<file>/*.hex."""
    npz = root / "vectors" / f"{file}.npz"
    if npz.is_file():
        try:
            with np.load(npz, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except Exception as e:  # noqa: BLE001 - any unreadable file is bad input
            raise BadDump(f"{npz} is not a readable .npz ({e})") from None
    hexdir = root / "vectors_hex" / file
    if not hexdir.is_dir():
        raise BadDump(f"{root} has neither vectors/{file}.npz nor vectors_hex/{file}/")
    out = {}
    for op, fs in fields.items():
        for field, f in fs.items():
            p = hexdir / f"{op}.{field}.hex"
            if p.is_file():
                try:
                    out[f"{op}/{field}"] = from_hex(p.read_text(), f["bits"], f["signed"],
                                                    f["shape"])
                except ValueError as e:
                    raise BadDump(f"{p}: {e}") from None
    return out


def verify(ours, theirs) -> tuple[bool, str]:
    """Compare dump ``theirs`` against our export ``ours``.

    -> (True, "all N values match") or (False, description of the first mismatch in
    execution order: image, t, layer, field, index, expected, got). Raises
    :class:`BadDump` when a directory or file is missing or unreadable.
    """
    ours, theirs = Path(ours), Path(theirs)
    for d in (ours, theirs):
        if not d.is_dir():
            raise BadDump(f"no such directory: {d}")
    try:
        manifest = json.loads((ours / "manifest.json").read_text())
        vec = manifest["vectors"]
    except (OSError, ValueError, KeyError) as e:
        raise BadDump(f"{ours} is not a golden export (manifest.json: {e})") from None
    fields, T = vec["fields"], vec["T"]
    total = 0
    for img in vec["images"]:
        exp = _load_image(ours, vec, fields, img["file"])
        got = _load_image(theirs, vec, fields, img["file"])
        for t in range(T):
            for op in manifest["ops"]:
                for field in fields[op["name"]]:
                    key = f"{op['name']}/{field}"
                    e = exp[key]
                    if e.shape[0] <= t:          # time-invariant values: checked at t = 0
                        continue
                    if key not in got:
                        return False, (f"image {img['index']} ({img['file']}): layer "
                                       f"'{op['name']}' field '{field}' is missing from {theirs}")
                    g = got[key]
                    if g.shape != e.shape:
                        return False, (f"image {img['index']} ({img['file']}): layer "
                                       f"'{op['name']}' field '{field}' has shape {g.shape}, "
                                       f"expected {e.shape}")
                    diff = np.argwhere(e[t] != g[t])
                    if len(diff):
                        idx = tuple(int(i) for i in diff[0])
                        return False, (f"first mismatch: image {img['index']} ({img['file']}), "
                                       f"layer '{op['name']}', field '{field}', t={t}, "
                                       f"index={idx}: expected {int(e[t][idx])}, got "
                                       f"{int(g[t][idx])}")
                    total += e[t].size
    return True, f"all {total} values match"
