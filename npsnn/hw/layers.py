"""How each op of an exported golden model maps onto a module of the reference RTL.

One :class:`Layer` per manifest op: which Verilog module implements it (``hw/rtl/``),
its parameters (shapes, widths, overflow policy and parameter files, all taken from the
export's ``manifest.json``), the tensors it reads (exported fields of earlier ops, or its
own ``input`` field) and the fields it produces. The replay harness
(:mod:`npsnn.hw.harness`) instantiates one module per layer from this description.

Two widths are derived from the parameters rather than declared in the manifest:

* ``ACC_INT_W``, the accumulator width inside a term or the head: the range check
  applies to the *exact* sum (docs/golden-model.md, section 1), so the accumulators
  must hold every partial sum: ``|partial sum| <= max input x max over outputs of
  sum |weights reaching it|`` (:func:`npsnn.golden.run.gemm_bound`; for the head every
  position can add the same column, so its "max input" is H W).

A term's kind contributes through its row of :data:`npsnn.golden.terms.TERM_KINDS`:
``rtl_kind`` (the address-generator mode, a code of ``npsnn_codes.vh``), ``rtl_params``
(kernel, stride and padding; the axis), ``params`` (which parameter files it loads),
``max_input`` and ``fan_in`` (the guard bound).
* ``LSH_MAX``, the largest left shift ``-e`` among a term's exponents: the rounded
  shift keeps ``ACC_BITS + LSH_MAX`` bits so that the value check sees the exact value.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..golden.run import gemm_bound
from ..golden.terms import term_kind

RTL_DIR = Path(__file__).resolve().parents[2] / "hw" / "rtl"
CODES_FILE = "npsnn_codes.vh"
MODULES = {"term": "npsnn_term", "lif": "npsnn_lif", "add": "npsnn_add",
           "concat": "npsnn_concat", "head": "npsnn_head"}


def rtl_codes(rtl_dir=RTL_DIR) -> dict:
    """{name: code} of the localparams in ``npsnn_codes.vh`` (policies and term kinds), so
    the Python side and the RTL share one table."""
    path = Path(rtl_dir) / CODES_FILE
    if not path.is_file():
        path = RTL_DIR / CODES_FILE
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"localparam\s+integer\s+(\w+)\s*=\s*(\d+)", path.read_text())}


@dataclass
class Source:
    """A tensor a layer reads: an exported field (``key`` "<op>/<field>" of the image
    npz) with its declared width."""
    key: str
    bits: int
    signed: bool
    shape: tuple            # (T or 1, H, W, C): time first, as exported

    @property
    def static(self) -> bool:
        return self.shape[0] == 1

    @property
    def words(self) -> int:         # per time step
        return int(np.prod(self.shape[1:]))


@dataclass
class Layer:
    """One op of the manifest as an RTL module instance (see the module docstring)."""
    name: str
    op: str                          # term, lif, add, concat, head
    module: str
    params: dict                     # Verilog parameter -> int or str (file path)
    sources: list                    # [Source]
    outputs: dict                    # field -> (bits, signed, words per step)
    static: bool = False             # runs once, at t = 0 (the first layer)
    info: dict = field(default_factory=dict)


def _signed_width(bound: float) -> int:
    """Bits of a signed register that holds every integer of magnitude <= bound."""
    return int(round(bound)).bit_length() + 1


def _file(param_dir: Path, name: str) -> str:
    return str((param_dir / f"{name}.hex").resolve())


def layers(manifest: dict, params: dict, param_dir, codes: dict | None = None) -> list:
    """Every op of ``manifest`` as a :class:`Layer`, in execution order.

    params: the export's integer parameters ({name: array}); param_dir: the folder of the
    ``$readmemh`` parameter files (``params_hex``)."""
    codes = rtl_codes() if codes is None else codes
    param_dir = Path(param_dir)
    bits, policy = manifest["bits"], codes[f"POLICY_{manifest['policy'].upper()}"]
    fields = manifest["vectors"]["fields"]
    out = []

    def src(name: str) -> Source:
        f = fields[name]["value"]
        return Source(f"{name}/value", f["bits"], f["signed"], tuple(f["shape"]))

    for op in manifest["ops"]:
        name, kind = op["name"], op["op"]
        own = fields[name]
        outputs = {f: (spec["bits"], spec["signed"], int(np.prod(spec["shape"][1:])))
                   for f, spec in own.items() if f != "input"}
        if kind == "term":
            row = term_kind(op)
            x = own["input"]
            _, hi, wi, ci = x["shape"]
            ho, wo, co = op["out_shape"]
            w = params[op["weight"]]
            e = params[op["shift"]]
            if row.rtl_kind not in codes:
                raise ValueError(f"hw: the RTL in use has no address generator for term kind "
                                 f"'{row.name}' ({row.rtl_kind or 'no rtl_kind'} missing from "
                                 f"{CODES_FILE})")
            bound = gemm_bound(w, row.max_input, row.fan_in(w))
            p = dict(KIND=codes[row.rtl_kind], H_IN=hi, W_IN=wi, C_IN=ci, H_OUT=ho, W_OUT=wo,
                     C_OUT=co, IN_BITS=x["bits"], W_BITS=bits["weight"], B_BITS=bits["bias"],
                     ACC_BITS=bits["acc"], ACC_INT_W=max(bits["acc"], _signed_width(bound)) + 1,
                     LSH_MAX=max(1, int(-e.min(initial=0))), POLICY=policy,
                     **row.rtl_params(op, w))
            for param in row.params:                  # weight, shift, bias (, sign)
                p[f"{param.upper()}_FILE"] = _file(param_dir, op[param])
            sources = [Source(f"{name}/input", x["bits"], x["signed"], tuple(x["shape"]))]
            out.append(Layer(name, kind, MODULES[kind], p, sources, outputs,
                             static=bool(op.get("static")),
                             info=dict(kind=row.name, acc_bound=bound)))
        elif kind == "lif":
            s = src(op["src"])
            h, w_, c = op["out_shape"]
            th = params[op["threshold"]]
            p = dict(H=h, W=w_, C=c, IN_BITS=s.bits, MEM_BITS=bits["mem"],
                     LEAK=int(manifest["leak_shift"]), TH_PER_TOKEN=int(th.size > 1),
                     POLICY=policy, TH_FILE=_file(param_dir, op["threshold"]))
            out.append(Layer(name, kind, MODULES[kind], p, [s], outputs))
        elif kind == "add":
            sources = [src(s) for s in op["src"]]
            h, w_, c = op["out_shape"]
            p = dict(H=h, W=w_, C=c, N_SRC=len(sources),
                     IN_BITS=max(s.bits for s in sources), MEM_BITS=bits["mem"], POLICY=policy)
            out.append(Layer(name, kind, MODULES[kind], p, sources, outputs))
        elif kind == "concat":
            sources = [src(s) for s in op["src"]]
            if len(sources) > 4:
                raise ValueError(f"hw: concat '{name}' has {len(sources)} sources; the RTL "
                                 f"concatenates up to 4")
            h, w_, _ = op["out_shape"]
            chans = [s.shape[-1] for s in sources] + [0] * (4 - len(sources))
            p = dict(H=h, W=w_, N_SRC=len(sources), C0=chans[0], C1=chans[1], C2=chans[2],
                     C3=chans[3], DATA_W=own["value"]["bits"])
            out.append(Layer(name, kind, MODULES[kind], p, sources, outputs))
        elif kind == "head":
            x = own["input"]
            _, h, w_, c = x["shape"]
            w = params[op["weight"]]
            bound = gemm_bound(w, h * w_, w.shape[1])
            p = dict(H=h, W=w_, C=c, K=w.shape[0], W_BITS=bits["weight"], B_BITS=bits["bias"],
                     ACC_BITS=bits["acc"], ACC_INT_W=max(bits["acc"], _signed_width(bound)) + 1,
                     POLICY=policy, WEIGHT_FILE=_file(param_dir, op["weight"]),
                     BIAS_FILE=_file(param_dir, op["bias"]))
            sources = [Source(f"{name}/input", 1, False, tuple(x["shape"]))]
            out.append(Layer(name, kind, MODULES[kind], p, sources, outputs,
                             info=dict(acc_bound=bound)))
        else:
            raise ValueError(f"hw: op '{name}' has kind {kind!r}, which the RTL does not "
                             f"implement")
    return out
