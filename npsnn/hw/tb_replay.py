"""The cocotb test of a replay (runs inside the simulator; started by :mod:`npsnn.hw.replay`).

For every image of the plan: load the image's exported source tensors into the harness
memories (``load``), run the T time steps (``start`` per step, wait for ``all_done``),
dump what the RTL wrote (``dump``) and compare it with the exported vectors, in the
order ``golden verify`` uses: time step, then ops in manifest order, then fields, then
index. The first mismatch ends the replay. The outcome goes to the plan's ``result``
file (JSON) and fails the cocotb test.

The plan (JSON, path in ``$NPSNN_HW_PLAN``) is written by :func:`npsnn.hw.replay.replay`.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

import cocotb
from cocotb.triggers import RisingEdge, SimTimeoutError, Timer, with_timeout

from npsnn.golden.export import from_hex
from npsnn.hw.replay import load_expected


def read_capture(path, bits: int, signed: bool, shape) -> tuple[np.ndarray, np.ndarray]:
    """A ``$writememh`` dump -> (values int64 of ``shape``, written mask): words the RTL
    never wrote are ``x`` in the dump."""
    text = Path(path).read_text()
    words = [w.split("//")[0].strip() for w in text.splitlines()]
    words = [w for w in words if w]
    bad = np.array(["x" in w.lower() or "z" in w.lower() for w in words], bool)
    if not bad.any():
        return from_hex(text, bits, signed, shape), np.ones(shape, bool)
    clean = "\n".join("0" if b else w for w, b in zip(words, bad))
    return from_hex(clean, bits, signed, shape), ~bad.reshape(shape)


def _index(shape, flat: int) -> tuple:
    return tuple(int(i) for i in np.unravel_index(flat, shape))


def compare_image(plan: dict, member: dict, image: dict, expected: dict, got: dict,
                  errors: dict):
    """-> (number of values compared, first mismatch message or None) for one image of
    one member (an export) of the plan."""
    n = 0
    where_from = f"member '{member['name']}', " if member["name"] else ""
    layers = [L for L in plan["layers"] if plan["members"][L["member"]] is member]
    for t in range(plan["T"]):
        for layer in layers:
            name = layer["name"]
            for field in layer["outputs"]:
                e = expected[f"{name}/{field}"]
                if e.shape[0] <= t:              # static values: only at t = 0
                    continue
                g, written = got[(layer["i"], field)]
                diff = (g[t] != e[t]) | ~written[t]
                where = [int(np.flatnonzero(diff.ravel())[0])] if diff.any() else []
                err = errors.get((layer["i"], field))
                if err is not None and err[0] == t:
                    where.append(err[1])
                if where:
                    flat = min(where)
                    idx = _index(e[t].shape, flat)
                    if not written[t][idx]:
                        got_text = "nothing (the RTL never wrote it)"
                    elif err is not None and err == (t, flat) and g[t][idx] == e[t][idx]:
                        got_text = (f"{int(g[t][idx])} with the overflow flag raised (policy "
                                    f"error: the chip would stop here)")
                    else:
                        got_text = str(int(g[t][idx]))
                    return n, (f"first mismatch: {where_from}image {image['index']} "
                               f"({image['file']}), layer '{name}', field '{field}', t={t}, "
                               f"index={idx}: expected {int(e[t][idx])}, got {got_text}")
                n += e[t].size
    return n, None


async def _pulse(dut, name: str):
    getattr(dut, name).value = 1
    await Timer(1, "ns")
    getattr(dut, name).value = 0
    await Timer(1, "ns")


async def _wait_ready(dut):
    await Timer(1, "ns")
    while not int(dut.ready.value):
        await RisingEdge(dut.ready)


def _hang_message(dut, plan: dict, k: int, t: int) -> str:
    """The layers still busy after the step's cycle budget (an RTL that never finishes);
    t None: after the reset."""
    busy = [L for L in plan["layers"] if not int(getattr(dut, f"fin_{L['i']}").value)]
    names = ", ".join(f"'{L['name']}'" + (f" (member '{plan['members'][L['member']]['name']}')"
                                          if plan["members"][L["member"]]["name"] else "")
                      for L in busy[:5])
    image = next(m["images"][k] for m in plan["members"] if k < len(m["images"]))
    cycles = int(plan["max_cycles_per_step"])
    when = ("the reset" if t is None else
            f"image {image['index']} ({image['file']}), t={t}: the time step")
    return (f"the RTL hangs: {when} did not finish within {2 * cycles} clock cycles (twice "
            f"the most it can need); still busy: {names or 'none (ready never rose)'}")


@cocotb.test()
async def replay(dut):
    plan = json.loads(Path(os.environ["NPSNN_HW_PLAN"]).read_text())
    wall0 = time.perf_counter()
    for sig in ("reset", "load", "dump", "step", "first", "image", "t"):
        getattr(dut, sig).value = 0
    await Timer(1, "ns")
    total, message, steps, done_images = 0, None, 0, 0
    step_timeout = int(plan["max_cycles_per_step"]) * 20   # ns: 10 ns cycles, 2x margin
    await _pulse(dut, "reset")               # accumulators clear themselves after reset
    try:
        await with_timeout(_wait_ready(dut), step_timeout, "ns")
    except SimTimeoutError:
        message = _hang_message(dut, plan, 0, None)
    for k in range(0 if message else plan["images"]):
        dut.image.value = k
        await _pulse(dut, "load")
        for t in range(plan["T"]):
            dut.t.value = t
            dut.first.value = int(t == 0)
            await _pulse(dut, "step")
            try:
                await with_timeout(_wait_ready(dut), step_timeout, "ns")
            except SimTimeoutError:
                message = _hang_message(dut, plan, k, t)
                break
            steps += 1
        if message:
            break
        await _pulse(dut, "dump")
        done_images += 1
        for m, member in enumerate(plan["members"]):
            if k >= len(member["images"]):
                continue
            got, errors = {}, {}
            for layer in plan["layers"]:
                if layer["member"] != m:
                    continue
                for field, (bits, signed, _) in layer["outputs"].items():
                    shape = member["fields"][layer["name"]][field]["shape"]
                    got[(layer["i"], field)] = read_capture(
                        Path(plan["cap_dir"]) / f"op{layer['i']}.{field}.hex", bits, signed,
                        shape)
                if member["policy_error"]:
                    for field in layer["checked"]:
                        e = f"err_{layer['i']}_{field}"
                        if int(getattr(dut, e).value):
                            errors[(layer["i"], field)] = (int(getattr(dut, e + "_t").value),
                                                           int(getattr(dut, e + "_index").value))
            image = member["images"][k]
            n, message = compare_image(plan, member, image, load_expected(member, image), got,
                                       errors)
            total += n
            if message:
                break
        if message:
            break
    result = dict(ok=message is None, values=total, message=message or
                  f"all {total} values match", images=done_images, steps=steps,
                  cycles=int(dut.cycles.value), sim_seconds=time.perf_counter() - wall0)
    Path(plan["result"]).write_text(json.dumps(result, indent=1))
    assert message is None, message
