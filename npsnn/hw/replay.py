"""Replay exported golden-model vectors through the reference RTL under cocotb + Icarus.

``replay(vectors_dir)`` runs every op of the export (or ``layers``) for the first
``images`` images, layer by layer: each layer's RTL module reads its exported inputs
and its parameters (``$readmemh`` of ``params_hex/``), and every field it writes is
compared bit for bit with the export. The RTL parameters (shapes, widths, overflow
policy) come from the export's manifest, so any export replays. ``rtl`` points at
another copy of the RTL sources (same module names and ports, docs/hardware.md).

Needs Icarus Verilog (``iverilog``, ``vvp``) and cocotb; :func:`missing_tools` says what
is absent and how to install it.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..golden.export import from_hex, to_hex
from . import harness
from .layers import RTL_DIR, layers as make_layers, rtl_codes

INSTALL_HINT = ("install them with: apt-get install -y iverilog  (Debian/Ubuntu; macOS: brew "
                "install icarus-verilog) and pip install cocotb  (or pip install -e \".[hw]\")")


class ToolsMissing(RuntimeError):
    """Icarus Verilog or cocotb is not installed (the CLI exits 2)."""


class BadExport(ValueError):
    """The vectors directory is not a usable golden export (the CLI exits 2)."""


def missing_tools() -> list[str]:
    """Names of the missing pieces among iverilog, vvp and cocotb (empty: all there)."""
    out = [tool for tool in ("iverilog", "vvp") if shutil.which(tool) is None]
    if importlib.util.find_spec("cocotb") is None or \
            importlib.util.find_spec("cocotb_tools") is None:
        out.append("cocotb (2.x)")
    return out


@dataclass
class ReplayResult:
    ok: bool
    message: str          # "all N values match" or the first mismatch
    values: int           # values compared
    images: int
    layers: int
    cycles: int           # clock cycles the RTL spent in time steps (all layers in parallel)
    build_seconds: float
    sim_seconds: float
    work: str | None      # the work directory, if kept


def _load_manifest(vectors: Path) -> dict:
    from ..io.limits import read_json
    try:
        m = read_json(vectors / "manifest.json", "golden manifest")
    except OSError as e:
        raise BadExport(f"{vectors} is not a golden export (manifest.json: "
                        f"{e.strerror or e})") from None
    except ValueError as e:
        raise BadExport(f"{vectors} is not a golden export (manifest.json: {e})") from None
    if not isinstance(m, dict) or m.get("format") != "npsnn-golden" or "vectors" not in m:
        raise BadExport(f"{vectors}/manifest.json is not an npsnn golden export with vectors")
    return m


def _load_params(vectors: Path, manifest: dict) -> dict:
    from ..io import load_npz
    try:
        p = load_npz(vectors / "params.npz")
    except (OSError, ValueError) as e:
        raise BadExport(f"{vectors}: {e}") from None
    missing = sorted(set(manifest["params"]) - set(p))
    if missing:
        raise BadExport(f"{vectors}/params.npz lacks {missing[:3]}")
    return {k: np.asarray(p[k]).astype(np.int64) for k in manifest["params"]}


def load_expected(member: dict, image: dict) -> dict:
    """{"op/field": int64 array} of one image of a plan member: from vectors/<file>.npz,
    else from its hex files (``vectors_hex/<file>/<op>.<field>.hex``)."""
    from ..io import load_npz
    npz = Path(member["vectors"]) / "vectors" / f"{image['file']}.npz"
    if npz.is_file():
        return {k: np.asarray(v).astype(np.int64) for k, v in load_npz(npz).items()}
    out = {}
    hexdir = Path(member["vectors_hex"]) / image["file"]
    for name, fields in member["fields"].items():
        for field, spec in fields.items():
            path = hexdir / f"{name}.{field}.hex"
            try:
                out[f"{name}/{field}"] = from_hex(path.read_text(), spec["bits"],
                                                  spec["signed"], spec["shape"])
            except ValueError as e:
                raise ValueError(f"{path}: {e}") from None
    return out


def _ensure_hex(vectors: Path, manifest: dict, params: dict, images: list, work: Path):
    """-> (params_hex dir, vectors_hex dir): the export's own hex files, or copies written
    from the npz files into ``work`` for an export made with --no-hex."""
    phex, vhex = vectors / "params_hex", vectors / "vectors_hex"
    for img in images:
        if not (vectors / "vectors" / f"{img['file']}.npz").is_file() and \
                not (vhex / img["file"]).is_dir():
            raise BadExport(f"{vectors}: image {img['file']} has neither "
                            f"vectors/{img['file']}.npz nor vectors_hex/{img['file']}/")
    if phex.is_dir() and all((vhex / img["file"]).is_dir() for img in images):
        return phex, vhex
    phex, vhex = work / "params_hex", work / "vectors_hex"
    for name, arr in params.items():
        bits = manifest["params"][name]["bits"]
        (phex / f"{name}.hex").parent.mkdir(parents=True, exist_ok=True)
        (phex / f"{name}.hex").write_text(to_hex(arr, bits, True, name))
    fields = manifest["vectors"]["fields"]
    for img in images:
        d = vhex / img["file"]
        d.mkdir(parents=True, exist_ok=True)
        from ..io import load_npz
        for key, values in load_npz(vectors / "vectors" / f"{img['file']}.npz").items():
            op, field = key.split("/")
            f = fields[op][field]
            (d / f"{op}.{field}.hex").write_text(to_hex(values, f["bits"], f["signed"], key))
    return phex, vhex


def select_layers(all_layers: list, spec) -> list:
    """The layers named by ``spec`` (None/"all", "a,b" or a list), in execution order."""
    if spec in (None, "all", ""):
        return all_layers
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    known = {L.name: L for L in all_layers}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise BadExport(f"no layer named {unknown[0]!r} in this export; layers: "
                        f"{', '.join(known)}")
    return [L for L in all_layers if L.name in names]


def _max_cycles_per_step(layers: list) -> int:
    """A generous bound on the cycles of one time step (the replay's hang detector)."""
    worst = 0
    for L in layers:
        n_in = max(s.words for s in L.sources)
        n_out = next(iter(L.outputs.values()))[2]
        p = L.params
        lanes = max(p.get("C_OUT", 1), p.get("H_OUT", 1), p.get("W_OUT", 1), p.get("K", 1))
        groups = p.get("KH", 1) * p.get("KW", 1) * (8 if p.get("IN_BITS") == 8 else 1)
        clear = n_out if L.op in ("term", "head") else 0
        worst = max(worst, n_in * (groups * (lanes + 1) + 3) + n_out + clear + 100)
    return worst


def plan_images(members: list) -> int:
    return max(len(m["images"]) for m in members)


def members_of(vectors) -> list:
    """[(name, export dir)]: the export itself, or every member of a corner suite."""
    vectors = Path(vectors)
    suite = vectors / "suite.json"
    if suite.is_file():
        try:
            members = json.loads(suite.read_text())["members"]
        except (OSError, ValueError, KeyError) as e:
            raise BadExport(f"{suite} is not a corner-suite description ({e})") from None
        return [(name, vectors / m["dir"]) for name, m in members.items()]
    return [("", vectors)]


@contextlib.contextmanager
def _usable(path: Path):
    """Turn what a manifest or a file that does not say what a golden export says raises
    (a missing entry, a wrong type, an unreadable file) into one :class:`BadExport`."""
    try:
        yield
    except BadExport:
        raise
    except (KeyError, TypeError, ValueError, IndexError, OSError) as e:
        what = f"a required entry is missing: {e}" if isinstance(e, KeyError) else str(e)
        raise BadExport(f"{path} is not a usable golden export ({what})") from None


def export_layers(vectors, rtl=None) -> tuple[dict, list]:
    """(manifest, every op as a :class:`~npsnn.hw.layers.Layer`) of the export in
    ``vectors``, with the codes of the RTL in ``rtl`` (default hw/rtl); raises
    :class:`BadExport` naming what is wrong."""
    vectors = Path(vectors)
    manifest = _load_manifest(vectors)
    with _usable(vectors):
        params = _load_params(vectors, manifest)
        return manifest, make_layers(manifest, params, vectors / "params_hex",
                                     rtl_codes(rtl or RTL_DIR))


def _plan_member(name: str, path: Path, manifest: dict, images, layers, codes: dict,
                 work: Path) -> tuple[dict, list]:
    """One export of the replay: -> (its plan entry, its selected :class:`Layer` s). Images
    that exist only as hex files are read here, so a damaged one is named before the
    simulation starts."""
    params = _load_params(path, manifest)
    imgs = manifest["vectors"]["images"][:images]
    if not imgs:
        raise BadExport(f"{path}: the export holds no images")
    phex, vhex = _ensure_hex(path, manifest, params, imgs, work)
    selected = select_layers(make_layers(manifest, params, phex, codes), layers)
    member = dict(name=name, vectors=str(path.resolve()), vectors_hex=str(Path(vhex).resolve()),
                  images=imgs, policy_error=manifest["policy"] == "error",
                  fields={L.name: manifest["vectors"]["fields"][L.name] for L in selected})
    for img in imgs:
        if not (path / "vectors" / f"{img['file']}.npz").is_file():
            load_expected(member, img)          # ValueError names the file and the line
    return member, selected


def replay(vectors, *, layers=None, images: int | None = None, rtl=None, work=None,
           vcd: str | None = None, keep: bool = False, progress=None) -> ReplayResult:
    """Replay the export in ``vectors`` (or every member of a corner suite) through the RTL
    (see the module docstring), in one simulation.

    layers: None/"all" or names ("b0.fc1,b0.lif_hid" or a list); images: the first K
    images (default all); rtl: folder of Verilog sources (default hw/rtl); work: build
    folder (default a temporary one, removed unless ``keep``); vcd: write a waveform of
    the whole harness to this path (for small replays); progress: called with one line
    once the inputs are checked, before the (long) simulation. Raises
    :class:`ToolsMissing` or :class:`BadExport`."""
    missing = missing_tools()
    if missing:
        raise ToolsMissing(f"the RTL replay needs {', '.join(missing)}; {INSTALL_HINT}")
    rtl = Path(rtl) if rtl else RTL_DIR
    sources = sorted(rtl.glob("*.v"))
    if not sources:
        raise BadExport(f"no Verilog sources (*.v) in {rtl}")
    if images is not None and int(images) < 1:
        raise BadExport(f"--images must be at least 1, got {images}")
    own_work = work is None
    work = Path(tempfile.mkdtemp(prefix="npsnn-hw-")) if own_work else Path(work)
    work.mkdir(parents=True, exist_ok=True)
    try:
        codes = rtl_codes(rtl)
        instances, plan_members, plan_layers, T = [], [], [], None
        for m, (name, path) in enumerate(members_of(vectors)):
            manifest = _load_manifest(path)
            with _usable(path):
                member, selected = _plan_member(name, path, manifest, images, layers, codes,
                                                work / f"hex{m}")
            if T not in (None, manifest["vectors"]["T"]):
                raise BadExport(f"the members of {vectors} have different T")
            T = manifest["vectors"]["T"]
            for L in selected:
                i = len(instances)
                instances.append(harness.Instance(L, [img["file"] for img in member["images"]],
                                                  Path(member["vectors_hex"]),
                                                  member["policy_error"]))
                plan_layers.append(dict(name=L.name, i=i, member=m, outputs=L.outputs,
                                        checked=list(harness.checked_fields(L))))
            plan_members.append(member)
        if progress:
            names = [m["name"] for m in plan_members if m["name"]]
            progress(f"replaying {len(instances)} layers x {plan_images(plan_members)} "
                     f"image(s) x T={T} of {vectors}"
                     f"{' (members ' + ', '.join(names) + ')' if names else ''} through {rtl}")
        cap_dir = work / "capture"
        cap_dir.mkdir(exist_ok=True)
        (work / "replay_top.v").write_text(harness.generate(instances, T, cap_dir, vcd=vcd))
        plan = dict(T=T, members=plan_members, layers=plan_layers, cap_dir=str(cap_dir),
                    result=str(work / "result.json"),
                    images=plan_images(plan_members),
                    max_cycles_per_step=_max_cycles_per_step([x.layer for x in instances]))
        (work / "plan.json").write_text(json.dumps(plan))
        build_s, sim_s = _run_cocotb(work, [*sources, work / "replay_top.v"], rtl,
                                     vcd=vcd is not None)
        try:
            res = json.loads((work / "result.json").read_text())
        except (OSError, ValueError):
            log = (work / "sim.log").read_text()[-3000:] if (work / "sim.log").is_file() else ""
            raise RuntimeError(f"the simulation ended without a result; the end of its log "
                               f"({work / 'sim.log'}):\n{log}") from None
        return ReplayResult(ok=res["ok"], message=res["message"], values=res["values"],
                            images=res["images"], layers=len(instances), cycles=res["cycles"],
                            build_seconds=build_s, sim_seconds=sim_s,
                            work=str(work) if (keep or not own_work) else None)
    finally:
        if own_work and not keep:
            shutil.rmtree(work, ignore_errors=True)


def _icarus_runner(vcd: bool):
    """cocotb's Icarus runner; with ``vcd`` it lets the harness's ``$dumpfile`` write VCD
    (the runner passes ``-none`` to vvp, which suppresses dumping, unless it is asked for
    waves, which it writes as FST)."""
    from cocotb_tools.runner import Icarus

    class IcarusVCD(Icarus):
        def _test_command(self):
            return [["-vcd" if a == "-none" else a for a in cmd]
                    for cmd in super()._test_command()]
    return IcarusVCD() if vcd else Icarus()


def _run_cocotb(work: Path, sources: list, rtl: Path, vcd: bool = False) -> tuple[float, float]:
    """Build the harness with Icarus and run the cocotb test; -> (build s, sim s)."""
    runner = _icarus_runner(vcd)
    t0 = time.perf_counter()
    try:
        runner.build(sources=[str(s) for s in sources], includes=[str(rtl)],
                     hdl_toplevel="replay_top", build_dir=str(work / "build"), always=True,
                     log_file=str(work / "build.log"))
    except (SystemExit, Exception) as e:      # noqa: BLE001 - the runner exits on errors
        log = (work / "build.log").read_text()[-3000:] if (work / "build.log").is_file() else ""
        raise RuntimeError(f"iverilog could not build the RTL ({e}); the end of "
                           f"{work / 'build.log'}:\n{log}") from None
    t1 = time.perf_counter()
    # the simulator's Python must import this npsnn, not another installed copy
    here = str(Path(__file__).resolve().parents[2])
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = {"NPSNN_HW_PLAN": str(work / "plan.json"),
           "PYTHONPATH": os.pathsep.join([here] + paths),
           "COCOTB_LOG_LEVEL": os.environ.get("COCOTB_LOG_LEVEL", "WARNING")}
    try:
        runner.test(test_module="npsnn.hw.tb_replay", hdl_toplevel="replay_top",
                    build_dir=str(work / "build"), test_dir=str(work), extra_env=env,
                    log_file=str(work / "sim.log"))
    except (SystemExit, Exception):           # noqa: BLE001 - a failed test is in result.json
        pass
    return t1 - t0, time.perf_counter() - t1
