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
import math
from pathlib import Path

import numpy as np

from ..io import atomic_write, load_npz, save_npz
from ..io.files import NpzWriter, atomic_folder, remove_stale_temporaries
from ..io.limits import read_json
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


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", np.uint8)
_HEX_CHUNK = 1 << 20                  # words formatted at a time (bounded memory)


def _hex_words(v: np.ndarray, bits: int) -> bytes:
    """int64 words (already masked to ``bits``) -> b"<digits>\n" per word, vectorised."""
    digits = (bits + 3) // 4
    shifts = np.arange(4 * (digits - 1), -1, -4, dtype=np.int64)
    table = np.empty((v.size, digits + 1), np.uint8)
    table[:, :digits] = _HEX_DIGITS[(v[:, None] >> shifts) & 15]
    table[:, digits] = ord("\n")
    return table.tobytes()


def _check_hex_range(v: np.ndarray, bits: int, signed: bool, comment: str) -> None:
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if v.size and (v.min() < lo or v.max() > hi):
        raise ValueError(f"to_hex: values outside the {bits}-bit {'signed' if signed else 'unsigned'}"
                         f" range [{lo}, {hi}] ({comment})")


def write_hex(f, values: np.ndarray, bits: int, signed: bool = True, comment: str = "") -> None:
    """Write integers to the binary file ``f`` as $readmemh text (see :func:`to_hex`), a
    million words at a time: a table of 57 million weights never becomes 57 million
    Python strings."""
    v = np.asarray(values).ravel()
    _check_hex_range(v, bits, signed, comment)
    if comment:
        f.write(f"// {comment}\n".encode())
    mask = np.int64((1 << bits) - 1) if bits < 64 else np.int64(-1)
    for start in range(0, v.size, _HEX_CHUNK):
        f.write(_hex_words(v[start:start + _HEX_CHUNK].astype(np.int64) & mask, bits))


def to_hex(values: np.ndarray, bits: int, signed: bool = True, comment: str = "") -> str:
    """Integers -> $readmemh text: one word per line, ceil(bits/4) lowercase hex digits,
    two's complement if signed, a ``//`` comment line first if given."""
    import io
    buf = io.BytesIO()
    write_hex(buf, values, bits, signed, comment)
    return buf.getvalue().decode()


def from_hex(text: str, bits: int, signed: bool, shape) -> np.ndarray:
    """Inverse of :func:`to_hex` (skips // comments and blank lines). Refuses a word that
    is not hex or is wider than the field (``100c3e4`` in a 24-bit field is not
    ``00c3e4``), naming its line."""
    digits = (bits + 3) // 4
    words = []
    for n, line in enumerate(text.splitlines(), 1):
        word = line.split("//")[0].strip()
        if not word:
            continue
        if len(word) > digits:
            raise ValueError(f"line {n}: the word {word[:20]!r} has {len(word)} hex digits, "
                             f"more than the {digits} of a {bits}-bit field")
        try:
            value = int(word, 16)
        except ValueError:
            raise ValueError(f"line {n}: {word[:20]!r} is not a hex word") from None
        if value >> bits:
            raise ValueError(f"line {n}: the word {word!r} does not fit a {bits}-bit field")
        words.append(value)
    want = math.prod(shape)
    if len(words) != want:
        raise ValueError(f"hex file has {len(words)} words, expected {want} for shape "
                         f"{tuple(shape)}")
    v = np.array(words, dtype=np.int64)
    if signed:
        v = np.where(v >= (1 << (bits - 1)), v - (1 << bits), v)
    return v.reshape(shape)


def _write_hex_file(path: Path, values, bits: int, signed: bool, comment: str) -> None:
    with atomic_write(path) as f:
        write_hex(f, values, bits, signed, comment)


def _is_export(folder: Path) -> bool:
    """A folder this exporter may replace: empty, or holding a previous export."""
    if not any(folder.iterdir()):
        return True
    try:
        manifest = read_json(folder / "manifest.json", "golden manifest")
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == "npsnn-golden"


def overflow_summary(events: list, policy: str) -> dict:
    """Saturated / wrapped values per layer and field: the ``overflow`` entry of the
    manifest (``{"policy", "total", "layers": {layer: {field: count}}}``)."""
    layers: dict = {}
    for e in events:
        field = layers.setdefault(e["layer"], {})
        field[e["field"]] = field.get(e["field"], 0) + int(e["count"])
    return dict(policy=policy, total=sum(sum(f.values()) for f in layers.values()),
                layers=layers)


def export(net: IntegerNetwork, images: np.ndarray, T: int, out, *, ids=None, labels=None,
           split: str | None = None, hex_files: bool = True,
           extra_meta: dict | None = None) -> dict:
    """Run ``images`` (uint8 (B, C, H, W)) for T steps and write the test vectors to ``out``.

    ids, split: dataset indices of the images and the split ("train"/"test") they come
    from (recorded in the manifest; None when they are not from a dataset). -> summary dict.

    The folder appears complete or not at all (:func:`npsnn.io.files.atomic_folder`): it is
    written beside ``out`` and swapped in at the end, so no file of a previous export
    survives next to the new ``params.npz``, and a full disk leaves the previous export as
    it was. ``out`` must be missing, empty or a previous export. Images run one at a time
    and each layer's values go to disk as soon as it has run, so memory grows neither with
    the number of images nor with the size of a trace. The manifest records how many values the
    'saturate' / 'wrap' policy changed, per layer and field (``overflow``).
    """
    out = Path(out)
    if out.exists() and not (out.is_dir() and _is_export(out)):
        raise ValueError(f"--out {out} exists and is not a golden export; choose a new or "
                         f"empty folder (an export replaces only a previous export)")
    if out.is_dir():
        remove_stale_temporaries(out.parent, [out.name])
    specs = field_specs(net)
    ids = list(range(len(images))) if ids is None else [int(i) for i in ids]
    n_values, fields, events, results = 0, {}, [], []
    with atomic_folder(out) as tmp:
        save_npz(tmp / "params.npz", {name: arr.astype(storage_dtype(net.param_bits(name)),
                                                       copy=False)
                                      for name, arr in net.params.items()})
        if hex_files:
            for name, arr in net.params.items():
                bits = net.param_bits(name)
                _write_hex_file(tmp / "params_hex" / f"{name}.hex", arr, bits, True,
                                f"{name} shape {list(arr.shape)} int{bits} two's complement "
                                f"row-major")
        for k in range(len(images)):
            with NpzWriter(tmp / "vectors" / f"img{k:04d}.npz") as npz:

                def write(op, values, k=k, npz=npz):
                    """One op's fields of image k, written as the run produces them."""
                    nonlocal n_values
                    name = op["name"]
                    for field, (bits, signed) in specs[name].items():
                        a = np.ascontiguousarray(values[field][:, 0])
                        dtype = storage_dtype(bits, signed)
                        npz.add(f"{name}/{field}", a.astype(dtype))
                        fields.setdefault(name, {})[field] = dict(
                            shape=list(a.shape), bits=bits, signed=signed, dtype=str(dtype),
                            layout="TK" if a.ndim == 2 else "THWC",
                            time_invariant=bool(a.shape[0] == 1 and T > 1))
                        n_values += a.size
                        if hex_files:
                            _write_hex_file(
                                tmp / "vectors_hex" / f"img{k:04d}" / f"{name}.{field}.hex",
                                a, bits, signed, f"image {ids[k]} {name}.{field} shape "
                                f"{list(a.shape)} {bits}-bit "
                                f"{'signed' if signed else 'unsigned'}")
                res = run(net, images[k:k + 1], T, on_op=write)
            events += res["events"]
            results.append(res)
        manifest = net.manifest()
        manifest["vectors"] = dict(
            T=T, split=split,
            images=[dict(file=f"img{k:04d}", index=ids[k],
                         label=None if labels is None else int(labels[k]),
                         logits=[int(v) for v in results[k]["logits"][0]],
                         pred=int(results[k]["pred"][0]))
                    for k in range(len(images))],
            fields=fields, values_per_image=n_values // max(len(images), 1),
            order="image, then t, then ops in manifest order, then fields in listed order")
        manifest["overflow"] = overflow_summary(events, net.policy)
        if extra_meta:
            manifest["meta"].update(extra_meta)
        with atomic_write(tmp / "manifest.json", "w") as f:
            f.write(json.dumps(manifest, indent=1))
    return dict(out=str(out), images=len(images), values=n_values, events=events,
                overflow=manifest["overflow"],
                pred=np.array([r["pred"][0] for r in results]),
                logits=np.stack([r["logits"][0] for r in results]) if results else
                np.zeros((0, net.num_classes), np.int64))


def load_export(path) -> IntegerNetwork:
    """The :class:`IntegerNetwork` of an export directory (manifest.json + params.npz)."""
    path = Path(path)
    try:
        manifest = read_json(path / "manifest.json", "golden manifest")
    except (OSError, ValueError) as e:
        raise ValueError(f"{path} is not a golden export (manifest.json: {e})") from None
    return IntegerNetwork.from_manifest(manifest, load_npz(path / "params.npz"))


class BadDump(ValueError):
    """A dump directory is missing or unreadable (verify exits 2)."""


def _load_image(root: Path, fields: dict, file: str) -> dict:
    """{op/field: array} from vectors/<file>.npz, else from vectors_hex/<file>/*.hex; every
    file read within bounds (npsnn.io.limits; a hex file at most a few bytes per word)."""
    npz = root / "vectors" / f"{file}.npz"
    if npz.is_file():
        try:
            return load_npz(npz)
        except ValueError as e:
            raise BadDump(f"{npz} is not a readable .npz ({e})") from None
    hexdir = root / "vectors_hex" / file
    if not hexdir.is_dir():
        raise BadDump(f"{root} has neither vectors/{file}.npz nor vectors_hex/{file}/")
    out = {}
    for op, fs in fields.items():
        for field, f in fs.items():
            p = hexdir / f"{op}.{field}.hex"
            if p.is_file():
                words = math.prod(f["shape"])
                cap = words * ((f["bits"] + 3) // 4 + 2) + (64 << 10)    # words + comments
                try:
                    if p.stat().st_size > cap:
                        raise ValueError(f"it holds {p.stat().st_size} bytes, more than "
                                         f"{words} words of {f['bits']} bits can take")
                    out[f"{op}/{field}"] = from_hex(p.read_text(errors="replace"),
                                                    f["bits"], f["signed"], f["shape"])
                except (OSError, ValueError) as e:
                    raise BadDump(f"{p}: {e}") from None
    return out


def _integral(a: np.ndarray) -> np.ndarray:
    """Where ``a`` holds integers (True for every element of an integer array)."""
    if a.dtype.kind in "biu":
        return np.ones(a.shape, bool)
    if a.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            return np.isfinite(a) & (a == np.floor(a))
    return np.zeros(a.shape, bool)


def _show(v) -> str:
    v = v.item() if hasattr(v, "item") else v
    return str(int(v)) if isinstance(v, (int, np.integer, bool)) or (
        isinstance(v, float) and v.is_integer()) else repr(v)


def verify(ours, theirs) -> tuple[bool, str]:
    """Compare dump ``theirs`` against our export ``ours``.

    -> (True, "all N values match") or (False, description of the first mismatch in
    execution order: image, t, layer, field, index, expected, got; a value of theirs that
    is not an integer (41184.25, NaN) is said to be so, never rounded for the message).
    Raises :class:`BadDump` when a directory or file is missing or unreadable, a hex word
    is wider than its field, or a file of theirs holds something other than numbers.
    """
    ours, theirs = Path(ours), Path(theirs)
    for d in (ours, theirs):
        if not d.is_dir():
            raise BadDump(f"no such directory: {d}")
    try:
        manifest = read_json(ours / "manifest.json", "golden manifest")
        vec = manifest["vectors"]
        fields, T = vec["fields"], int(vec["T"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BadDump(f"{ours} is not a golden export (manifest.json: {e})") from None
    total = 0
    for img in vec["images"]:
        exp = _load_image(ours, fields, img["file"])
        got = _load_image(theirs, fields, img["file"])
        where = f"image {img['index']} ({img['file']})"
        for t in range(T):
            for op in manifest["ops"]:
                for field in fields[op["name"]]:
                    key = f"{op['name']}/{field}"
                    e = exp[key]
                    if e.shape[0] <= t:          # time-invariant values: checked at t = 0
                        continue
                    if key not in got:
                        return False, (f"{where}: layer '{op['name']}' field '{field}' is "
                                       f"missing from {theirs}")
                    g = got[key]
                    if g.shape != e.shape:
                        return False, (f"{where}: layer '{op['name']}' field '{field}' has "
                                       f"shape {g.shape}, expected {e.shape}")
                    if g.dtype.kind not in "biuf":
                        raise BadDump(f"{theirs}: layer '{op['name']}' field '{field}' holds "
                                      f"{g.dtype} values, not numbers")
                    integral = _integral(g[t])
                    with np.errstate(invalid="ignore"):
                        diff = np.argwhere(~integral | (e[t] != g[t]))
                    if len(diff):
                        idx = tuple(int(i) for i in diff[0])
                        note = "" if integral[idx] else ", which is not an integer"
                        return False, (f"first mismatch: {where}, layer '{op['name']}', "
                                       f"field '{field}', t={t}, index={idx}: expected "
                                       f"{int(e[t][idx])}, got {_show(g[t][idx])}{note}")
                    total += e[t].size
    return True, f"all {total} values match"
