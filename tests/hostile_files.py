"""Hostile and broken files, built byte by byte in the tests (nothing here is committed data).

Used by the hardening tests of every reader (tests/io, tests/datasets, tests/train) and by
the attack campaign (tests/attack.py). Each builder returns bytes or writes a file and
returns its path; the docstrings say which limit or check the file is meant to meet.

Pickle opcodes are written out by hand because Python's pickler cannot produce what a
hostile file does (shared sub-lists, memo slots out of order, lengths that lie).
"""
from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np

# -- pickle opcodes ------------------------------------------------------------------------


def p_str(s: str) -> bytes:
    """BINUNICODE."""
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def p_int(i: int) -> bytes:
    """BININT."""
    return b"J" + struct.pack("<i", i)


def p_tuple(items) -> bytes:
    """MARK ... TUPLE."""
    return b"(" + b"".join(items) + b"t"


def p_tensor(offset, size, stride, numel, stype="FloatStorage", key="0", where="cpu") -> bytes:
    """Opcodes of ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False,
    {})`` with the storage given by a persistent id (zip format)."""
    pid = p_tuple([p_str("storage"), f"ctorch\n{stype}\n".encode(), p_str(key), p_str(where),
                   p_int(numel)]) + b"Q"                     # BINPERSID
    args = p_tuple([pid, p_int(offset), p_tuple(map(p_int, size)),
                    p_tuple(map(p_int, stride)), b"\x89", b"}"])   # NEWFALSE, EMPTY_DICT
    return b"ctorch._utils\n_rebuild_tensor_v2\n" + args + b"R"   # GLOBAL ... REDUCE


def p_dict(items: dict) -> bytes:
    """A protocol-2 pickle of ``{key: <opcodes>}``."""
    return b"\x80\x02}" + b"".join(p_str(k) + v + b"s" for k, v in items.items()) + b"."


def _memo_put(i: int) -> bytes:
    return b"q" + bytes([i]) if i < 256 else b"r" + struct.pack("<I", i)


def _memo_get(i: int) -> bytes:
    return b"h" + bytes([i]) if i < 256 else b"j" + struct.pack("<I", i)


def dag_list(levels: int = 60) -> bytes:
    """Opcodes (no PROTO/STOP) leaving on the stack a list that holds the previous list
    twice, ``levels`` times over: a few bytes per level, 2**levels leaves for any reader
    that walks it as a tree (the hang and memory bomb of shared sub-lists)."""
    out = b"]" + _memo_put(0)
    for i in range(1, levels + 1):
        out += b"0]" + _memo_put(i) + b"(" + _memo_get(i - 1) * 2 + b"e"
    return out


def tuple_dag(levels: int = 60) -> bytes:
    """Like :func:`dag_list` with tuples, which can be dict keys: hashing one walks the
    tree (2**levels leaves) inside the unpickler itself."""
    out = b")" + _memo_put(0)
    for i in range(1, levels + 1):
        out += b"0(" + _memo_get(i - 1) * 2 + b"t" + _memo_put(i)
    return out


def deep_list(depth: int = 200_000) -> bytes:
    """Opcodes leaving a list nested ``depth`` deep: [[[[...]]]] (the RecursionError)."""
    return b"]" * depth + b"a" * (depth - 1)


def cyclic_list() -> bytes:
    """Opcodes leaving a list that contains itself."""
    return b"]" + _memo_put(0) + _memo_get(0) + b"a"


def pickle_of(opcodes: bytes, protocol: int = 2) -> bytes:
    return b"\x80" + bytes([protocol]) + opcodes + b"."


def binbytes8(length: int = 1 << 40) -> bytes:
    """A protocol-4 pickle whose BINBYTES8 declares ``length`` bytes and holds three (the C
    unpickler allocates the declared length first)."""
    return b"\x80\x04\x8e" + struct.pack("<Q", length) + b"abc."


def memo_bomb(index: int = 0xFFFFFFF0) -> bytes:
    """A pickle storing into memo slot ``index`` (the C unpickler grows its memo table to
    that size: 32 GiB of pointers)."""
    return b"\x80\x02]r" + struct.pack("<I", index) + b"."


# -- torch.save files ----------------------------------------------------------------------
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _long1(value: int) -> bytes:
    raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def legacy_pth(obj_opcodes: bytes, keys_opcodes: bytes = b"]", storages: bytes = b"") -> bytes:
    """A legacy (PyTorch < 1.6) torch.save stream: magic, protocol 1001, system info, the
    object pickle, the storage key list, then the storages' bytes."""
    return (pickle_of(_long1(_LEGACY_MAGIC)) + pickle_of(b"M\xe9\x03")
            + pickle_of(b"}") + pickle_of(obj_opcodes) + pickle_of(keys_opcodes) + storages)


def zip_pth(path, pkl: bytes, storages: dict, folder: str = "my_ckpt",
            compress: bool = False) -> Path:
    """A torch.save zip archive with ``data.pkl`` = ``pkl`` and ``data/<key>`` storages."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as z:
        z.writestr(f"{folder}/data.pkl", pkl)
        z.writestr(f"{folder}/byteorder", b"little")
        for key, data in storages.items():
            z.writestr(f"{folder}/data/{key}", data)
        z.writestr(f"{folder}/version", b"3\n")
    return Path(path)


def stride0_pth(path, tensors: int = 128, elements: int = 1 << 24) -> Path:
    """A small .pth whose ``tensors`` tensors each repeat one float32 storage element
    ``elements`` times (stride 0): 64 MiB each by default, 8 GiB together, in 10 KB."""
    pkl = p_dict({f"w{i}": p_tensor(0, (elements,), (0,), 1) for i in range(tensors)})
    return zip_pth(path, pkl, {"0": np.ones(1, np.float32).tobytes()})


# -- zip archives (.pth, .npz) --------------------------------------------------------------
def declare_size(path, member: str, size: int) -> Path:
    """Make the zip's central directory declare ``size`` (< 4 GiB) uncompressed bytes for
    ``member``; the data stay as they are: a member that says it inflates to ``size``."""
    assert size < 0xFFFFFFFF, "sizes from 4 GiB on need a ZIP64 record"
    data = bytearray(Path(path).read_bytes())
    name = member.encode()
    pos = data.find(b"PK\x01\x02")                      # central directory entries
    while pos != -1:
        n = struct.unpack("<H", data[pos + 28:pos + 30])[0]
        if data[pos + 46:pos + 46 + n] == name:
            data[pos + 24:pos + 28] = struct.pack("<I", size)
            Path(path).write_bytes(bytes(data))
            return Path(path)
        pos = data.find(b"PK\x01\x02", pos + 4)
    raise KeyError(member)


def deflate_bomb(path, member: str, nbytes: int, *, npy_shape=None) -> Path:
    """A zip with one deflated member of ``nbytes`` zeros (about nbytes / 1000 on disk),
    written in 1 MiB chunks; with ``npy_shape`` the member starts with a valid ``.npy``
    header of that float64 shape (an .npz bomb)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        with z.open(member, "w", force_zip64=nbytes > 0x7FFFFFFF) as f:
            left = nbytes
            if npy_shape is not None:
                head = io.BytesIO()
                np.lib.format.write_array_header_1_0(
                    head, {"descr": "<f8", "fortran_order": False, "shape": tuple(npy_shape)})
                f.write(head.getvalue())
                left -= len(head.getvalue())
            chunk = bytes(1 << 20)
            while left > 0:
                f.write(chunk[:min(left, len(chunk))])
                left -= len(chunk)
    return Path(path)


def npy_bytes(shape, dtype="<f8", data: bytes = b"") -> bytes:
    """An ``.npy`` file whose header declares ``shape`` and ``dtype``, followed by ``data``
    (whatever the header says)."""
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        head, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    return head.getvalue() + data


def npz_of(path, members: dict) -> Path:
    """A zip of raw members ``{name: bytes}`` (an .npz whose .npy members may lie)."""
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return Path(path)


# -- tar archives ------------------------------------------------------------------------------
def tar_header(name: str, size: int, kind: bytes = b"0") -> bytes:
    """One 512-byte ustar header block declaring ``size`` bytes of type ``kind`` (any size,
    base-256 encoded above 8 GiB), with a valid checksum."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = 0
    block = bytearray(info.tobuf(tarfile.USTAR_FORMAT))
    if size < 8 ** 11:
        block[124:136] = b"%011o\0" % size
    else:
        block[124:136] = b"\x80" + size.to_bytes(11, "big")
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def tar_lying(path, name: str, size: int, data: bytes = b"", kind: bytes = b"0",
              gz: bool = True) -> Path:
    """A tar (gzipped) whose member ``name`` declares ``size`` bytes but holds ``data``:
    the reader must refuse from the header, before reading."""
    raw = tar_header(name, size, kind) + data
    raw += bytes(-len(raw) % 512) + bytes(1024)
    Path(path).write_bytes(gzip.compress(raw, compresslevel=9) if gz else raw)
    return Path(path)


def gzip_bomb_tar(path, name: str, nbytes: int) -> Path:
    """A real .tar.gz whose member ``name`` holds ``nbytes`` zeros (about nbytes / 1000 on
    disk), streamed in 1 MiB chunks."""
    chunk = bytes(1 << 20)
    with gzip.open(path, "wb", compresslevel=6) as f:
        f.write(tar_header(name, nbytes))
        left = nbytes
        while left > 0:
            f.write(chunk[:min(left, len(chunk))])
            left -= len(chunk)
        f.write(bytes(-nbytes % 512) + bytes(1024))
    return Path(path)
