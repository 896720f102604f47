"""An independent simulator written from docs/golden-model.md and manifest.json alone.

It does not import npsnn.golden's execution code: it reads the parameters from the
``$readmemh`` hex files, the pixels from the export, and follows the documented
equations with plain Python integers (slow, so tiny configs only). Every value of the
export must come out bit-exactly; that is what the docs promise to hardware teams.
"""
import json

import numpy as np
import pytest

from golden_models import images, tiny_model
from npsnn.golden import convert
from npsnn.golden.export import export
from npsnn.golden.snap import snap_to_grid


def read_hex(path, bits, signed, shape):
    words = []
    for line in path.read_text().splitlines():
        line = line.split("//")[0].strip()
        if line:
            w = int(line, 16)
            if signed and w >= 1 << (bits - 1):
                w -= 1 << bits
            words.append(w)
    assert len(words) == int(np.prod(shape)), path
    return np.array(words, dtype=object).reshape(shape)


def rshift(a, e):
    """Doc section 1: e > 0 -> (a + 2^(e-1)) >> e;  e <= 0 -> a << -e."""
    return (a + (1 << (e - 1))) >> e if e > 0 else a << -e


def check(v, bits):
    """Doc section 1 with policy 'error': the export must never need a clamp."""
    assert -(1 << (bits - 1)) <= v < (1 << (bits - 1))
    return v


class DocSimulator:
    def __init__(self, root):
        self.m = json.loads((root / "manifest.json").read_text())
        self.p = {name: read_hex(root / "params_hex" / f"{name}.hex", spec["bits"], True,
                                 spec["shape"])
                  for name, spec in self.m["params"].items()}
        self.bits = self.m["bits"]

    def term(self, op, x):
        W, e, b = self.p[op["weight"]], self.p[op["shift"]], self.p[op["bias"]]
        Ho, Wo, O = op["out_shape"]
        Hi, Wi, Ci = x.shape
        acc = np.zeros((Ho, Wo, O), dtype=object)
        kind = op["kind"]
        if kind in ("conv", "conv_bitplane"):
            (sh, sw), (ph, pw) = op["stride"], op["padding"]
            kh, kw = W.shape[2], W.shape[3]
            planes = range(8) if kind == "conv_bitplane" else [None]
            for k in planes:
                xb = x if k is None else (x >> k) & 1
                part = np.zeros((Ho, Wo, O), dtype=object)
                for i in range(Ho):
                    for j in range(Wo):
                        for a in range(kh):
                            for bb in range(kw):
                                yy, xx = i * sh + a - ph, j * sw + bb - pw
                                if 0 <= yy < Hi and 0 <= xx < Wi:
                                    for c in range(Ci):
                                        if xb[yy, xx, c]:
                                            part[i, j, :] += W[:, c, a, bb] * int(xb[yy, xx, c])
                acc += part if k is None else part * (1 << k)
        else:
            for h in range(Hi):
                for w in range(Wi):
                    n = h * Wi + w
                    for c in range(Ci):
                        if not x[h, w, c]:
                            continue
                        if kind == "axis" and op["axis"] == "H":
                            acc[:, w, c] += W[:, h]
                        elif kind == "axis":
                            acc[h, :, c] += W[:, w]
                        elif kind == "dense_token":
                            acc[h, w, :] += W[n, :, c]
                        else:
                            acc[h, w, :] += W[:, c]
        val = np.zeros_like(acc)
        for h in range(Ho):
            for w in range(Wo):
                n = h * Wo + w
                for o in range(O):
                    check(acc[h, w, o], self.bits["acc"])
                    if kind == "axis":
                        r = h if op["axis"] == "H" else w
                        v = rshift(acc[h, w, o], e[r]) + b[r]
                    elif kind == "dense_token":
                        v = rshift(acc[h, w, o], e[n, o]) + b[n, o]
                    elif kind == "dense_signed_token":
                        v = self.p[op["sign"]][n] * rshift(acc[h, w, o], e[o]) + b[n, o]
                    elif kind == "dense_shift_token":
                        v = self.p[op["sign"]][n] * rshift(acc[h, w, o], e[n, o]) + b[n, o]
                    else:
                        v = rshift(acc[h, w, o], e[o]) + b[o]
                    val[h, w, o] = check(v, self.bits["acc"])
        return acc, val

    def run(self, pixels, T):
        """pixels (H, W, 3) ints -> {op/field: array (T or 1, ...)}."""
        k = self.m["leak_shift"]
        V = {op["name"]: np.zeros(op["out_shape"], dtype=object)
             for op in self.m["ops"] if op["op"] == "lif"}
        out, static = {}, {}
        logits = np.zeros(self.m["num_classes"], dtype=object)
        for t in range(T):
            ten = {"input": pixels}
            for op in self.m["ops"]:
                name = op["name"]
                rec = {}
                if op["op"] == "term":
                    if name in static:
                        ten[name] = static[name]
                        continue
                    x = np.concatenate([ten[s] for s in op["src"]], axis=-1)
                    acc, val = self.term(op, x)
                    rec = {"input": x, "acc": acc, "value": val}
                    ten[name] = val
                    if op.get("static"):
                        static[name] = val
                elif op["op"] == "add":
                    val = sum(ten[s] for s in op["src"])
                    for v in val.ravel():
                        check(v, self.bits["mem"])
                    ten[name] = rec["value"] = val
                elif op["op"] == "concat":
                    ten[name] = rec["value"] = np.concatenate([ten[s] for s in op["src"]], -1)
                elif op["op"] == "lif":
                    X = ten[op["src"]]
                    theta = np.broadcast_to(self.p[op["threshold"]], X.shape)
                    Hm, S = np.zeros_like(X), np.zeros_like(X)
                    v = V[name]
                    for idx in np.ndindex(X.shape):
                        check(X[idx], self.bits["mem"])
                        Hm[idx] = v[idx] + ((X[idx] - v[idx]) >> k)
                        S[idx] = 1 if Hm[idx] >= theta[idx] else 0
                        v[idx] = 0 if S[idx] else Hm[idx]
                    rec = {"current": X, "h": Hm, "v": v.copy(), "spikes": S}
                    ten[name] = S
                elif op["op"] == "head":
                    s = ten[op["src"]]
                    W, b = self.p[op["weight"]], self.p[op["bias"]]
                    step = b.copy()
                    for h, w, c in zip(*np.nonzero(s)):
                        step = step + W[:, c]
                    logits = logits + step
                    rec = {"input": s, "step": step, "logits": logits.copy()}
                for field, value in rec.items():
                    out.setdefault(f"{name}/{field}", []).append(value)
        return {key: np.stack(vals) for key, vals in out.items()}, logits


@pytest.mark.parametrize("spe,snapped", [(True, False), (False, False), (True, True)],
                         ids=["spe", "plain", "spe-snapped"])
def test_doc_only_simulator_reproduces_the_export(tmp_path, spe, snapped):
    model = tiny_model(spe=spe)
    if snapped:               # power-of-two token gains: fc2 becomes a dense_shift_token
        snap_to_grid(model)
    net = convert(model, images(8, seed=4), T=2)
    kinds = {op.get("kind") for op in net.ops}
    assert ("dense_shift_token" in kinds) == snapped and ("dense_token" in kinds) != snapped
    x = images(2, seed=8)
    T = 2
    export(net, x, T, tmp_path)
    sim = DocSimulator(tmp_path)
    manifest = sim.m
    total = 0
    for img in manifest["vectors"]["images"]:
        with np.load(tmp_path / "vectors" / f"{img['file']}.npz") as z:
            ref = {key: z[key] for key in z.files}
        got, logits = sim.run(ref["s0.embed/input"][0].astype(object), T)
        assert set(got) == set(ref)
        for key, expected in ref.items():
            assert np.array_equal(got[key].astype(np.int64), expected), key
            total += expected.size
        assert [int(v) for v in logits] == img["logits"]
        assert int(np.argmax(np.array(logits, dtype=np.int64))) == img["pred"]
    assert total > 20_000
