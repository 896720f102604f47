"""The term kinds of the golden model: one table row per kind, everything a kind means.

A ``term`` op (docs/golden-model.md, section 4.1) turns its input ``x`` (spikes, or the
pixels of the first layer) into an integer accumulator ``acc`` and then into

    value[h, w, o] = sign * rshift(acc[h, w, o], e) + bias     (sign = 1 for most kinds)

Kinds differ in two things only: which weights an input event reaches (the accumulator),
and which element of ``shift``, ``bias`` and ``sign`` an output element ``(h, w, o)`` uses.
:data:`TERM_KINDS` has one :class:`TermKind` row per kind with both, in two forms each:

* the **GEMM form** (``gemm``, ``post``): all time steps and images at once, as BLAS
  products on exact integers held in floats; the fast path :mod:`npsnn.golden.run`;
* the **event form** (``events``, ``element``): one image and one time step, every input
  event adds the weight column it reaches, every output element picks its own shift, bias
  and sign; the event-driven reference :mod:`npsnn.golden.reference`;

plus what the operation counts (:mod:`npsnn.golden.counts`), the exporter
(:mod:`npsnn.golden.export`), the memory report and the reference RTL (``hw/rtl``, replayed
by :mod:`npsnn.hw`: ``rtl_kind``, ``rtl_params``) need. Those modules iterate the table;
the only place that looks a kind up by name is :func:`term_kind`. tests/golden/test_terms.py
checks every row: the GEMM form equals the event form bit for bit, and ``synaptic_ops``
equals the additions the event form performs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..ops.conv import conv2d_forward


# -- which parameter element an output (h, w, o) uses ----------------------------------------
@dataclass(frozen=True)
class Index:
    """How a per-output parameter (shift, bias or sign) is indexed by the output element
    ``(h, w, o)`` of a term with ``out_shape (H, W, O)``; ``n = h W + w`` is the token.

    pick: (op, h, w, o) -> the index into the parameter (event form, one element);
    view: (op, param) -> the parameter reshaped to broadcast against (..., H, W, O) (GEMM form).
    """
    name: str
    pick: Callable[[dict, int, int, int], tuple]
    view: Callable[[dict, np.ndarray], np.ndarray]


def _token(op: dict, h: int, w: int) -> int:
    return h * op["out_shape"][1] + w


def _hw(op: dict) -> tuple[int, int]:
    return op["out_shape"][0], op["out_shape"][1]


PER_CHANNEL = Index("[o]", pick=lambda op, h, w, o: (o,), view=lambda op, a: a)
PER_TOKEN = Index("[n]", pick=lambda op, h, w, o: (_token(op, h, w),),
                  view=lambda op, a: a.reshape(_hw(op) + (1,)))
PER_TOKEN_CHANNEL = Index("[n, o]", pick=lambda op, h, w, o: (_token(op, h, w), o),
                          view=lambda op, a: a.reshape(_hw(op) + (-1,)))
# axis terms: the output row p = h (axis "H") or column p = w (axis "W") of the output
PER_POSITION = Index("[p]", pick=lambda op, h, w, o: (h if op["axis"] == "H" else w,),
                     view=lambda op, a: a[:, None, None] if op["axis"] == "H" else a[:, None])


# -- the row -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TermKind:
    """Everything one term kind means. Arrays: ``w`` the integer weight (layout ``weight``),
    ``x`` the input; ``(T', B, H, W, C)`` for the GEMM form and the counts (``T'`` = 1 for
    a time-invariant term), ``(H, W, C)`` for the event form."""
    name: str
    weight: str                 # the weight's layout, as in the docs' table
    accumulate: str             # the accumulator, as in the docs' table
    gemm: Callable              # (op, w, x) -> acc; w, x exact integers in one float dtype
    events: Callable            # (op, w, x int64) -> (acc int64 (H', W', O), additions)
    synaptic_ops: Callable      # (op, w, x) -> (T',) int64: additions of x's events, all images
    fan_in: Callable            # w -> weights summed into one output (ANN MACs, GEMM bound)
    shift: Index
    bias: Index
    sign: Index | None = None   # None: no sign parameter (sign = 1)
    attrs: tuple = ()           # op fields the kind reads besides src, out_shape and params
    max_input: int = 1          # largest input value: 1 for spikes, 255 for pixels
    combine_per_output: int = 0  # adds and shifts per output that combine partial sums
    per_token_weights: bool = False  # the weight is a table per token (memory report)
    rtl_kind: str = ""          # the address-generator mode of hw/rtl (npsnn_codes.vh)
    rtl_params: Callable = lambda op, w: {}   # (op, w) -> the kind's own RTL parameters

    @property
    def params(self) -> tuple[str, ...]:
        """The op fields that name its integer parameters."""
        return ("weight", "shift", "bias") + (("sign",) if self.sign else ())

    @property
    def input_bits(self) -> int:
        return int(self.max_input).bit_length()

    def dump_fields(self, bits: dict) -> dict:
        """{field: (bits, signed)} of the exported vectors of a term of this kind."""
        return dict(input=(self.input_bits, False), acc=(bits["acc"], True),
                    value=(bits["acc"], True))

    def post(self, op: dict, params: dict):
        """(e, bias, sign or None), each a view broadcasting against acc (..., H, W, O)."""
        e = self.shift.view(op, params[op["shift"]])
        b = self.bias.view(op, params[op["bias"]])
        return e, b, self.sign.view(op, params[op["sign"]]) if self.sign else None

    def element(self, op: dict, params: dict, h: int, w: int, o: int) -> tuple[int, int, int]:
        """(e, bias, sign) of the output element (h, w, o), as Python ints."""
        e = int(params[op["shift"]][self.shift.pick(op, h, w, o)])
        b = int(params[op["bias"]][self.bias.pick(op, h, w, o)])
        s = int(params[op["sign"]][self.sign.pick(op, h, w, o)]) if self.sign else 1
        return e, b, s


# -- accumulators: GEMM forms ------------------------------------------------------------------
def _conv_gemm(op, w, x):
    """acc = conv(x) over all (T', B) at once (NHWC im2col GEMM). For ``conv_bitplane``
    sum_k conv(bit_k(x)) << k = conv(sum_k 2^k bit_k(x)) = conv(x): the pixels are
    convolved once (linearity; the same exact integer)."""
    y, _ = conv2d_forward(x.reshape((-1,) + x.shape[2:]), w, None, op["stride"], op["padding"],
                          layout="NHWC")
    return y.reshape(x.shape[:2] + y.shape[1:])


def _axis_gemm(op, w, x):
    T, B, H, W, C = x.shape
    if op["axis"] == "H":      # acc[p, w, c] = sum_h Wp[p, h] x[h, w, c]: one GEMM
        xh = np.ascontiguousarray(np.moveaxis(x.reshape(T * B, H, W * C), 1, 0))
        y = (w @ xh.reshape(H, -1)).reshape(H, T * B, W * C)
        return np.ascontiguousarray(np.moveaxis(y, 0, 1)).reshape(T, B, H, W, C)
    # acc[h, p, c] = sum_w Wp[p, w] x[h, w, c]: one GEMM over (w) with c, h batched
    xw = np.ascontiguousarray(np.moveaxis(x.reshape(T * B * H, W, C), 1, 0))
    y = (w @ xw.reshape(W, -1)).reshape(W, T * B * H, C)
    return np.ascontiguousarray(np.moveaxis(y, 0, 1)).reshape(T, B, H, W, C)


def _dense_gemm(op, w, x):
    return x @ w.T


def _token_gemm(op, w, x):
    """acc[n, o] = sum_k W[n, o, k] x[n, k]: one batched matmul over the tokens."""
    T, B, H, W, K = x.shape
    xn = np.ascontiguousarray(x.reshape(T * B, H * W, K).transpose(1, 0, 2))      # (N, TB, K)
    y = np.matmul(xn, np.ascontiguousarray(w.transpose(0, 2, 1)))                # (N, TB, O)
    return np.ascontiguousarray(y.transpose(1, 0, 2)).reshape(T, B, H, W, w.shape[1])


# -- accumulators: event forms (one image, one step; nothing is multiplied) -------------------
def _conv_events(op, w, x):
    """Every event x[y, x, c] = 1 adds W[:, c, a, b] to acc[i, j] for each kernel offset
    (a, b) with i = (y + ph - a) / sh, j = (x + pw - b) / sw integers inside the output."""
    O, _, kh, kw = w.shape
    Ho, Wo, _ = op["out_shape"]
    (sh, sw), (ph, pw) = op["stride"], op["padding"]
    acc = np.zeros((Ho, Wo, O), np.int64)
    adds = 0
    for y, xx, c in zip(*np.nonzero(x)):
        for a in range(kh):
            i, r = divmod(int(y) + ph - a, sh)
            if r or not 0 <= i < Ho:
                continue
            for b in range(kw):
                j, r = divmod(int(xx) + pw - b, sw)
                if r or not 0 <= j < Wo:
                    continue
                acc[i, j] += w[:, c, a, b]          # one event: O additions
                adds += O
    return acc, adds


def _bitplane_events(op, w, x):
    """conv(p) = sum_k conv(plane_k) << k: each set bit of a pixel is an event."""
    acc, adds = 0, 0
    for k in range(8):
        part, n = _conv_events(op, w, (x >> k) & 1)
        acc = acc + np.left_shift(part, k)
        adds += n
    return acc, adds


def _axis_events(op, w, x):
    """axis "H": a spike at row h feeds rows p with W[p, h]; "W": column w, W[p, w]."""
    acc = np.zeros(tuple(op["out_shape"]), np.int64)
    adds = 0
    for h, ww, c in zip(*np.nonzero(x)):
        if op["axis"] == "H":
            acc[:, ww, c] += w[:, h]
        else:
            acc[h, :, c] += w[:, ww]
        adds += w.shape[0]
    return acc, adds


def _dense_events(op, w, x):
    """A spike at (h, w, k) adds the column W[:, k] to acc[h, w]."""
    acc = np.zeros(tuple(op["out_shape"]), np.int64)
    adds = 0
    for h, ww, c in zip(*np.nonzero(x)):
        acc[h, ww] += w[:, c]
        adds += w.shape[0]
    return acc, adds


def _token_events(op, w, x):
    """A spike at (h, w, k) adds the column W[n, :, k] of token n = h W + w's own table."""
    acc = np.zeros(tuple(op["out_shape"]), np.int64)
    W = x.shape[1]
    adds = 0
    for h, ww, c in zip(*np.nonzero(x)):
        acc[h, ww] += w[h * W + ww, :, c]
        adds += w.shape[1]
    return acc, adds


# -- synaptic operation counts ------------------------------------------------------------------
def _window_ops(op, w, x):
    """Conv: sum over events of (output positions the event reaches) x C_out, per step."""
    O, C, kh, kw = w.shape
    y, _ = conv2d_forward(x.reshape((-1,) + x.shape[2:]).astype(np.float64),
                          np.ones((1, C, kh, kw)), None, op["stride"], op["padding"],
                          layout="NHWC")
    return np.rint(y.reshape(x.shape[:2] + (-1,)).sum(axis=(1, 2))).astype(np.int64) * O


def _bitplane_ops(op, w, x):
    return sum(_window_ops(op, w, (x >> k) & 1) for k in range(8))


def _events_times(fan_out: Callable):
    """Dense-like kinds: events x (weights one event adds), per step."""
    return lambda op, w, x: x.reshape(x.shape[0], -1).sum(axis=1) * fan_out(w)


def _conv_rtl(op, w):
    """Kernel, stride and padding as parameters of hw/rtl/npsnn_term.v."""
    (sh, sw), (ph, pw) = op["stride"], op["padding"]
    return dict(KH=w.shape[2], KW=w.shape[3], SH=sh, SW=sw, PH=ph, PW=pw)


_CONV = dict(weight="(O, C_in, kh, kw)", attrs=("stride", "padding"), gemm=_conv_gemm,
             fan_in=lambda w: int(w[0].size), shift=PER_CHANNEL, bias=PER_CHANNEL,
             rtl_params=_conv_rtl)
_DENSE = dict(weight="(O, C_in)", accumulate="acc[h,w,o] = sum_k W[o,k] x[h,w,k]",
              gemm=_dense_gemm, events=_dense_events,
              synaptic_ops=_events_times(lambda w: w.shape[0]), fan_in=lambda w: w.shape[-1])

#: kind name -> its row. A new kind is a new row here (+ its lowering and quantisation).
TERM_KINDS: dict[str, TermKind] = {k.name: k for k in (
    TermKind("conv", accumulate="acc[i,j,o] = sum_{c,a,b} W[o,c,a,b] xpad[i sh + a, j sw + b, c]",
             events=_conv_events, synaptic_ops=_window_ops, rtl_kind="KIND_CONV", **_CONV),
    TermKind("conv_bitplane", accumulate="acc = sum_{k=0..7} conv(bit_k(x)) << k",
             events=_bitplane_events, synaptic_ops=_bitplane_ops, max_input=255,
             combine_per_output=7, rtl_kind="KIND_CONV_BITPLANE", **_CONV),
    TermKind("axis", weight="(S, S)", accumulate="H: acc[p,w,c] = sum_h W[p,h] x[h,w,c]; "
             "W: acc[h,p,c] = sum_w W[p,w] x[h,w,c]", attrs=("axis",), gemm=_axis_gemm,
             events=_axis_events, synaptic_ops=_events_times(lambda w: w.shape[0]),
             fan_in=lambda w: w.shape[1], shift=PER_POSITION, bias=PER_POSITION,
             rtl_kind="KIND_AXIS", rtl_params=lambda op, w: dict(AXIS_W=int(op["axis"] == "W"))),
    TermKind("dense", shift=PER_CHANNEL, bias=PER_CHANNEL, rtl_kind="KIND_DENSE", **_DENSE),
    TermKind("dense_signed_token", shift=PER_CHANNEL, bias=PER_TOKEN_CHANNEL, sign=PER_TOKEN,
             rtl_kind="KIND_DENSE_SIGNED_TOKEN", **_DENSE),
    TermKind("dense_token", weight="(N, O, C_in)",
             accumulate="acc[h,w,o] = sum_k W[n,o,k] x[h,w,k], n = h W + w", gemm=_token_gemm,
             events=_token_events, synaptic_ops=_events_times(lambda w: w.shape[1]),
             fan_in=lambda w: w.shape[-1], shift=PER_TOKEN_CHANNEL, bias=PER_TOKEN_CHANNEL,
             per_token_weights=True, rtl_kind="KIND_DENSE_TOKEN"),
    TermKind("dense_shift_token", shift=PER_TOKEN_CHANNEL, bias=PER_TOKEN_CHANNEL,
             sign=PER_TOKEN, rtl_kind="KIND_DENSE_SHIFT_TOKEN", **_DENSE),
)}


def term_kind(op: dict) -> TermKind:
    """The row of a term op's kind; ValueError naming the op and the known kinds."""
    kind = TERM_KINDS.get(op.get("kind"))
    if kind is None:
        raise ValueError(f"golden model: term op '{op.get('name')}' has unknown kind "
                         f"{op.get('kind')!r}; the known kinds are {', '.join(TERM_KINDS)}")
    return kind
