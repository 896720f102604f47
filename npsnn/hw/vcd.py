"""A small reader of Value Change Dump files (IEEE 1364 VCD, as Icarus writes them).

``read_vcd(path, signals)`` -> {name: Trace}: for each requested signal (hierarchical
name, e.g. ``"replay_top.op3.wr_v"``, or any unique suffix like ``"op3.wr_v"``) the
times at which it changed and its values there. ``Trace.at(times)`` samples it (the value
in force at each time), ``Trace.signed(bits)`` reinterprets the values as two's
complement. Values with x or z bits read as -1 in ``valid``-masked form (``Trace.known``).
Enough for plotting a replay's waveforms with matplotlib; not a general VCD library.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Trace:
    name: str
    width: int
    times: np.ndarray       # int64, change times (VCD time units)
    values: np.ndarray      # int64, value after each change (0 where unknown)
    known: np.ndarray       # bool, False where the value had x or z bits

    def at(self, t) -> np.ndarray:
        """The value in force at each time ``t`` (before the first change: 0)."""
        i = np.searchsorted(self.times, np.asarray(t), side="right") - 1
        return np.where(i >= 0, self.values[np.maximum(i, 0)], 0)

    def signed(self) -> np.ndarray:
        """The values as two's complement numbers of this signal's width."""
        v = self.values
        return np.where(v >= 1 << (self.width - 1), v - (1 << self.width), v)


def read_vcd(path, signals) -> dict:
    """{requested name: Trace} (see the module docstring); KeyError names a signal that
    is not in the file or matches several."""
    path = Path(path)
    ids, scope = {}, []                      # full name -> (id code, width)
    lines = iter(path.read_text().splitlines())
    for line in lines:
        tok = line.split()
        if not tok:
            continue
        if tok[0] == "$scope":
            scope.append(tok[2])
        elif tok[0] == "$upscope":
            scope.pop()
        elif tok[0] == "$var":
            ids[".".join(scope + [tok[4]])] = (tok[3], int(tok[2]))
        elif tok[0] == "$enddefinitions":
            break
    wanted = {}
    for name in signals:
        hits = [full for full in ids if full == name or full.endswith("." + name)]
        if len(hits) != 1:
            raise KeyError(f"{path.name}: signal {name!r} " +
                           ("not found" if not hits else f"is ambiguous: {hits[:4]}"))
        wanted.setdefault(ids[hits[0]][0], []).append((name, ids[hits[0]][1]))
    changes = {code: [] for code in wanted}
    now = 0
    for line in lines:
        if not line:
            continue
        c = line[0]
        if c == "#":
            now = int(line[1:])
        elif c in "bB":
            bits, code = line[1:].split()
            if code in changes:
                changes[code].append((now, bits))
        elif c in "01xzXZ":
            if line[1:] in changes:
                changes[line[1:]].append((now, c))
    out = {}
    for code, names in wanted.items():
        ch = changes[code]
        times = np.array([t for t, _ in ch], np.int64)
        known = np.array([not any(b in "xzXZ" for b in bits) for _, bits in ch], bool)
        values = np.array([int(bits, 2) if k else 0 for (_, bits), k in zip(ch, known)],
                          np.int64)
        for name, width in names:
            out[name] = Trace(name, width, times, values, known)
    return out
