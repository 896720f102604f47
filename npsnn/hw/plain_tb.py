"""Command lines of the plain-Verilog testbench ``hw/tb/tb_term.v`` for one exported layer.

The testbench itself contains no Python: it reads the layer's parameters and vectors with
``$readmemh`` and checks itself. Its Verilog parameters (shapes, widths, policy, file
names) come from the export's manifest; this module only spells them out, as
``-P`` options for Icarus Verilog and ``-G`` options for Verilator
(``python -m npsnn hw tb --vectors DIR --layer NAME`` prints both).
"""
from __future__ import annotations

from pathlib import Path

from .layers import RTL_DIR

TB_FILE = RTL_DIR.parent / "tb" / "tb_term.v"


def tb_parameters(vectors, layer: str, image: int = 0, rtl=RTL_DIR) -> dict:
    """Verilog parameters of tb_term for term ``layer`` of the export in ``vectors``, image
    number ``image`` (its hex files must exist: an export without --no-hex). Raises
    ValueError (:class:`~npsnn.hw.replay.BadExport` for a damaged export) naming the
    problem."""
    from .replay import export_layers
    vectors = Path(vectors)
    manifest, all_layers = export_layers(vectors, rtl)
    found = [L for L in all_layers if L.name == layer]
    if not found or found[0].op != "term":
        terms = [L.name for L in all_layers if L.op == "term"]
        raise ValueError(f"tb_term replays one term layer; {layer!r} is not one of "
                         f"{', '.join(terms)}")
    L = found[0]
    images = manifest["vectors"]["images"]
    if not 0 <= image < len(images):
        raise ValueError(f"--image {image}: the export holds {len(images)} image(s), "
                         f"numbered 0 to {len(images) - 1}")
    img = images[image]["file"]
    hexdir = vectors / "vectors_hex" / img
    files = {f: hexdir / f"{layer}.{f}.hex" for f in ("input", "acc", "value")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise ValueError(f"the plain testbench reads the export's hex files; missing: "
                         f"{missing[0]} (export without --no-hex)")
    out = dict(L.params, STEPS=manifest["vectors"]["fields"][layer]["acc"]["shape"][0],
               INPUT_FILE=str(files["input"].resolve()), ACC_FILE=str(files["acc"].resolve()),
               VALUE_FILE=str(files["value"].resolve()))
    return out


def _value(v) -> str:
    return f'"{v}"' if isinstance(v, str) else str(int(v))


def iverilog_command(params: dict, out="tb_term.vvp", rtl=RTL_DIR) -> list[str]:
    """iverilog -g2005 ... (then ``vvp -n out``)."""
    rtl = Path(rtl)
    return (["iverilog", "-g2005", "-I", str(rtl), "-s", "tb_term", "-o", str(out)] +
            [f"-Ptb_term.{k}={_value(v)}" for k, v in params.items()] +
            [str(p) for p in sorted(rtl.glob("*.v"))] + [str(TB_FILE)])


def verilator_command(params: dict, mdir="obj_tb_term", rtl=RTL_DIR) -> list[str]:
    """verilator --binary ... (then ``mdir/Vtb_term``)."""
    rtl = Path(rtl)
    return (["verilator", "--binary", "-Wall", f"-I{rtl}", "--top-module", "tb_term",
             "--Mdir", str(mdir)] +
            [f"-G{k}={_value(v)}" for k, v in params.items()] +
            [str(p) for p in sorted(rtl.glob("*.v"))] + [str(TB_FILE)])
