"""Operation counts of the integer network, per op and time step, and an energy estimate.

Counted per image (averaged over the images run), from the spikes of a recorded fast
run; the event-driven reference counts its additions literally and the tests check the
two agree. Categories:

* ``syn_ac``: synaptic accumulates, one per weight added for an incoming event
  (spike or set pixel bit): conv = events x output positions reached x C_out,
  axis projection = events x S, dense / per-token dense = events x C_out, head =
  events x classes.
* ``other_ac``: every other integer addition: bias adds (one per term output per
  step), bit-plane combination (7 per first-layer output, once), the integer adds of
  ``add`` ops, the LIF update (X - V, then V + ..., 2 per neuron per step), head bias
  and logit accumulation (2 per class per step).
* ``shifts``: per-row exponent shifts (one per term output with e != 0 per step),
  bit-plane shifts (7 per first-layer output, once), the leak shift (one per neuron per
  step). ``compares``: one per LIF neuron per step, classes-1 for the final argmax.
* ``mac``: multiplications: 0 by construction.

Energy at 45 nm (Horowitz, ISSCC 2014), priced as the SNN literature (and SPEC.md) prices
it: 0.9 pJ per accumulate (AC; Horowitz's 32-bit *float* add, so an upper bound for our
integer adds, which his table puts at 0.1 pJ for 32 bits), 4.6 pJ per 32-bit float
multiply-accumulate (MAC); the ANN reference is the same network run once as a float ANN
(all its MACs, one pass). Shifts and compares are listed but not priced.
"""
from __future__ import annotations

import numpy as np

from .network import IntegerNetwork
from .terms import term_kind

E_AC_PJ, E_MAC_PJ = 0.9, 4.6


def ann_macs(op: dict, params: dict) -> int:
    """MACs of this op in the equivalent float ANN (one pass)."""
    if op["op"] == "head":
        return int(params[op["weight"]].size)
    if op["op"] != "term":
        return 0
    H, W, O = op["out_shape"]
    return H * W * O * term_kind(op).fan_in(params[op["weight"]])


class OpCounter:
    """Counts of a run, fed one op at a time (``run(..., on_op=counter.add)``), so that no
    trace needs to be kept; :meth:`result` gives per-image means over every image fed."""

    def __init__(self, net: IntegerNetwork, T: int) -> None:
        self.net, self.T = net, T
        self.rows: dict = {}
        self.images = 0                     # images seen by the head, the last op

    def _row(self, op: dict) -> dict:
        if op["name"] not in self.rows:
            T, kind = self.T, op["op"]
            self.rows[op["name"]] = dict(
                name=op["name"], op=kind if kind != "term" else op["kind"],
                syn_ac=np.zeros(T), other_ac=np.zeros(T), shifts=np.zeros(T),
                compares=np.zeros(T), mac=np.zeros(T), ann_mac=ann_macs(op, self.net.params),
                rate=None, neurons=int(np.prod(op["out_shape"])) if "out_shape" in op else 0,
                _images=0, _spikes=np.zeros(T))
        return self.rows[op["name"]]

    def add(self, op: dict, fields: dict) -> None:
        """Add one op's recorded fields (those of a batch of images) to the counts."""
        T, p = self.T, self.net.params
        r = self._row(op)
        kind = op["op"]
        if kind == "term":
            x = fields["input"]
            row = term_kind(op)
            steps = x.shape[0]          # 1 for the time-invariant first layer
            n_out = r["neurons"]
            e = row.post(op, p)[0]      # a shift per output element whose exponent is not 0
            shifts = np.count_nonzero(np.broadcast_to(e, op["out_shape"]))
            r["syn_ac"][:steps] += row.synaptic_ops(op, p[op["weight"]], x)
            r["other_ac"][:steps] = n_out + row.combine_per_output * n_out
            r["shifts"][:steps] = shifts + row.combine_per_output * n_out
            r["_images"] += x.shape[1]
        elif kind == "add":
            r["other_ac"][:] = (len(op["src"]) - 1) * r["neurons"]
        elif kind == "lif":
            s = fields["spikes"]
            r["other_ac"][:] = 2 * r["neurons"]
            r["shifts"][:] = r["neurons"]
            r["compares"][:] = r["neurons"]
            r["_spikes"] += s.reshape(T, -1).sum(axis=1)
            r["_images"] += s.shape[1]
        elif kind == "head":
            s = fields["input"]
            K = p[op["weight"]].shape[0]
            r["syn_ac"][:] += s.reshape(T, -1).sum(axis=1) * K
            r["other_ac"][:] = 2 * K
            r["compares"][-1] = K - 1
            r["_images"] += s.shape[1]
            self.images += s.shape[1]

    def result(self) -> dict:
        """{"rows", "T", "images", "totals", "energy"}: every count per image."""
        if not self.images:
            raise ValueError("the operation counts need at least one image")
        rows = []
        for op in self.net.ops:
            r = dict(self._row(op))
            n, spikes = r.pop("_images") or self.images, r.pop("_spikes")
            r["syn_ac"] = r["syn_ac"] / n
            if op["op"] == "lif":
                r["rate"] = spikes / (n * r["neurons"])
            rows.append(r)
        return _summarise(rows, self.T, self.images)


def count_ops_batched(net: IntegerNetwork, batches, T: int) -> dict:
    """:func:`count_ops` over image batches (an iterable of uint8 (B, C, H, W) arrays), each
    run with its values streamed into an :class:`OpCounter`, never kept: memory grows
    neither with the number of images nor with a trace. -> the counts of all images."""
    from .run import run
    counter = OpCounter(net, T)
    for images in batches:
        run(net, images, T, on_op=counter.add)
    return counter.result()


def count_ops(net: IntegerNetwork, trace: dict, T: int) -> dict:
    """trace: from ``run(net, images, T, record=True)``. -> {"rows": [...], "T", "images",
    "totals", "energy"}; every count is per image (mean over the images of the run)."""
    counter = OpCounter(net, T)
    for op in net.ops:
        counter.add(op, trace[op["name"]])
    return counter.result()


def _summarise(rows: list, T: int, B: int) -> dict:
    """Totals and energy of per-op rows of per-image counts."""
    tot = {k: float(sum(r[k].sum() for r in rows))
           for k in ("syn_ac", "other_ac", "shifts", "compares", "mac")}
    tot["ann_mac"] = float(sum(r["ann_mac"] for r in rows))
    energy = dict(snn_pj=E_AC_PJ * (tot["syn_ac"] + tot["other_ac"]) + E_MAC_PJ * tot["mac"],
                  ann_pj=E_MAC_PJ * tot["ann_mac"])
    energy["ratio_ann_over_snn"] = energy["ann_pj"] / energy["snn_pj"] if energy["snn_pj"] else None
    return dict(rows=rows, T=T, images=B, totals=tot, energy=energy)


def _fmt(v: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= div:
            return f"{v / div:.2f}{unit}"
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"


def format_report(counts: dict, memory: dict | None = None) -> str:
    """A readable text report: per-op totals, synaptic ACs per time step, energy."""
    T = counts["T"]
    lines = [f"Integer golden model: operation counts per image (mean over "
             f"{counts['images']} images, T = {T})", ""]
    head = (f"{'layer':<14}{'op':<20}{'neurons':>8}{'rate':>7}{'syn AC':>10}{'other AC':>10}"
            f"{'shifts':>9}{'compares':>9}{'MAC':>5}{'ANN MAC':>10}")
    lines += [head, "-" * len(head)]
    for r in counts["rows"]:
        rate = f"{r['rate'].mean():.3f}" if r["rate"] is not None else ""
        lines.append(f"{r['name']:<14}{r['op']:<20}{r['neurons']:>8}{rate:>7}"
                     f"{_fmt(r['syn_ac'].sum()):>10}{_fmt(r['other_ac'].sum()):>10}"
                     f"{_fmt(r['shifts'].sum()):>9}{_fmt(r['compares'].sum()):>9}"
                     f"{int(r['mac'].sum()):>5}{_fmt(r['ann_mac']):>10}")
    t = counts["totals"]
    lines += ["-" * len(head),
              f"{'total':<34}{'':>8}{'':>7}{_fmt(t['syn_ac']):>10}{_fmt(t['other_ac']):>10}"
              f"{_fmt(t['shifts']):>9}{_fmt(t['compares']):>9}{int(t['mac']):>5}"
              f"{_fmt(t['ann_mac']):>10}", ""]
    lines.append("Synaptic accumulates (syn AC) per time step:")
    hdr = f"{'layer':<14}" + "".join(f"{'t=' + str(i):>10}" for i in range(T))
    lines.append(hdr)
    for r in counts["rows"]:
        if r["syn_ac"].any():
            lines.append(f"{r['name']:<14}" + "".join(f"{_fmt(v):>10}" for v in r["syn_ac"]))
    e = counts["energy"]
    lines += ["", "Energy estimate, 45 nm (0.9 pJ/AC at the 32-bit float-add price, an upper "
                  "bound for integer adds; 4.6 pJ/MAC; shifts, compares, memory traffic not "
                  "priced):",
              f"  integer SNN : {_fmt(t['syn_ac'] + t['other_ac'])} AC, 0 MAC over {T} steps "
              f"-> {e['snn_pj'] / 1e6:.4f} uJ",
              f"  float ANN   : {_fmt(t['ann_mac'])} MAC, one pass -> {e['ann_pj'] / 1e6:.4f} uJ",
              f"  ANN / SNN   : {e['ratio_ann_over_snn']:.2f}x" if e["ratio_ann_over_snn"]
              else "  ANN / SNN   : n/a"]
    if memory is not None:
        if memory["per_token_table_bytes"]:
            tables = (f"per-token BN1d weight tables {memory['per_token_table_bytes'] / 1024:.1f}"
                      f" KiB (they would be "
                      f"{memory['per_token_table_if_shared_bytes'] / 1024:.1f} KiB if BN1d "
                      f"were per channel, or with a snapped checkpoint: 'golden snap')")
        else:
            tables = "no per-token weight tables (power-of-two token gains: shared weights)"
        lines += ["", f"Parameter memory: {memory['total_bytes'] / 1024:.1f} KiB in total; "
                      f"{tables}"]
    return "\n".join(lines)
