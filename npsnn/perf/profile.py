"""Where a training step's time goes, per op family: ``python -m npsnn.perf.bench profile``.

Runs the ``train-step`` benchmark's step (and the eval forward) under :mod:`cProfile` with the
process CPU clock, then charges every function's own time to an op family by the file (and
function) it is in. Time spent inside NumPy's C functions (``einsum``, ``ufunc.reduce``,
``concatenate``, ...) is charged to the Python function that called them, so e.g. BN's
reductions count as BN. GEMMs written with ``@`` never appear as calls of their own: they
are part of the op that runs them (Linear, conv, projections, the fuse conv). With one thread
(``--threads 1``, the default here) the CPU time is the work, and is steady on a busy machine.
"""
from __future__ import annotations

import cProfile
import pstats
import time

LIF, BN, CONV, LINEAR = ("LIF (time loop, surrogate)", "BatchNorm (statistics, scale-shift)",
                         "Conv2d (im2col + GEMM)", "Linear / channel mixer (GEMMs)")
FUSE, PROJ = "token mixer fuse conv (GEMMs)", "token projections (H, W GEMMs)"
GLUE = "model glue (adds, concat, pooling, head)"
#: (family, path fragment of the file, qualified-name prefixes or None for all); first match
FAMILIES = (
    (LIF, "ops/lif.py", None), (LIF, "ops/surrogate.py", None), (LIF, "npsnn/workers.py", None),
    (BN, "ops/batchnorm.py", None), (BN, "models/smlpnet_fast.py", ("bn_affine",)),
    (CONV, "ops/conv.py", None),
    (CONV, "models/smlpnet_fast.py", ("FastConvBN.", "FastPatchCell.")),
    (LINEAR, "ops/linear.py", None), (LINEAR, "models/smlpnet_fast.py", ("FastChannelMixer.",)),
    (PROJ, "ops/axis_projection.py", None),
    (FUSE, "models/smlpnet_fast.py", ("fuse_gemm", "FastTokenMixer.")),
    (GLUE, "models/smlpnet", None), (GLUE, "ops/shape.py", None),
    ("loss + SGD update", "ops/losses.py", None), ("loss + SGD update", "train/optim.py", None),
    ("Module plumbing (params, grads)", "npsnn/module.py", None),
    ("Module plumbing (params, grads)", "npsnn/containers.py", None),
)
OTHER = "other (input checks, bench loop)"


def _qualnames() -> dict:
    """(file, first line) -> qualified name, for the functions of the sMLPNet model files
    (cProfile knows only the bare name, and several blocks have a ``forward``)."""
    import inspect

    from ..models import smlpnet, smlpnet_fast
    names = {}
    for module in (smlpnet, smlpnet_fast):
        for obj in vars(module).values():
            members = [obj] if inspect.isfunction(obj) else \
                [m for m in vars(obj).values() if inspect.isfunction(m)] \
                if inspect.isclass(obj) and obj.__module__ == module.__name__ else []
            for f in members:
                code = f.__code__
                names[(code.co_filename, code.co_firstlineno)] = f.__qualname__
    return names


def _family(filename: str, qualname: str) -> str:
    path = filename.replace("\\", "/")
    for family, fragment, prefixes in FAMILIES:
        if fragment in path and (prefixes is None or qualname.startswith(prefixes)):
            return family
    return OTHER


def _foreign(filename: str) -> bool:
    """Not npsnn's code: a C function, or NumPy's Python wrappers (tensordot, pad, ...)."""
    return "/npsnn/" not in filename.replace("\\", "/") or filename.startswith("<")


def charge(stats: pstats.Stats) -> dict[str, float]:
    """Own time of every npsnn function, plus the time of the NumPy functions (C or Python)
    it called, directly or through other NumPy functions, summed per family ->
    {family: seconds}."""
    own = {func: row[2] for func, row in stats.stats.items()}
    for _ in range(8):                              # push foreign time up to npsnn callers
        moved = False
        for func, (_, _, _, _, callers) in stats.stats.items():
            if not _foreign(func[0]) or own[func] <= 0 or not callers:
                continue
            edges = {c: e[3] for c, e in callers.items()}            # cumulative per caller
            total = sum(edges.values()) or float(len(edges))
            for caller, share in edges.items():
                own[caller] = own.get(caller, 0.0) + \
                    own[func] * (share / total if sum(edges.values()) else 1.0 / total)
            own[func] = 0.0
            moved = True
        if not moved:
            break
    names = _qualnames()
    families: dict[str, float] = {}
    for (filename, line, name), seconds in own.items():
        key = OTHER if _foreign(filename) else \
            _family(filename, names.get((filename, line), name))
        families[key] = families.get(key, 0.0) + seconds
    return families


def profile_step(preset="cifar10-p4-d48", T=4, batch=64, steps=3, warmup=2, seed=0,
                 threads=1) -> dict:
    """-> {"train": {family: CPU seconds per step}, "eval": {...}, "train_total", ...}."""
    import numpy as np

    import npsnn
    from npsnn.ops.losses import cross_entropy_backward, cross_entropy_forward
    from npsnn.perf.runtime import tune_process
    from npsnn.train.optim import SGD

    tuning = tune_process(threads)
    model = npsnn.build(preset, seed=seed)
    rng = np.random.default_rng(seed)
    size = model.config["image_size"]
    images = rng.standard_normal((batch, 3, size, size), dtype=np.float32)
    labels = rng.integers(0, model.config["num_classes"], batch)
    opt = SGD(model, lr=0.05, momentum=0.9)

    def step():
        model.train()
        loss, cache = cross_entropy_forward(model.forward_repeated(images, T), labels)
        model.zero_grad()
        model.backward(cross_entropy_backward(cache))
        opt.step()

    def evaluate():
        model.eval()
        model.forward_repeated(images, T)

    out = dict(preset=preset, T=T, batch=batch, steps=steps, threads=tuning["threads"])
    for name, fn in (("train", step), ("eval", evaluate)):
        for _ in range(warmup):
            fn()
        prof = cProfile.Profile(time.process_time)
        c0 = time.process_time()
        prof.enable()
        for _ in range(steps):
            fn()
        prof.disable()
        total = (time.process_time() - c0) / steps
        fams = {k: v / steps for k, v in charge(pstats.Stats(prof)).items()}
        out[name] = dict(sorted(fams.items(), key=lambda kv: -kv[1]))
        out[name + "_total"] = total
    return out


def format_profile(res: dict) -> str:
    families = list(res["train"]) + [k for k in res["eval"] if k not in res["train"]]
    lines = [f"{res['preset']}, T={res['T']}, B={res['batch']}, {res['threads']} thread(s), "
             f"CPU ms per step (cProfile, median work of {res['steps']} steps)",
             f"| op family | train ms | train % | eval ms | eval % |",
             "| --- | --- | --- | --- | --- |"]
    tt, te = sum(res["train"].values()), sum(res["eval"].values())
    for fam in families:
        a, b = res["train"].get(fam, 0.0), res["eval"].get(fam, 0.0)
        lines.append(f"| {fam} | {1e3 * a:.1f} | {100 * a / tt:.0f}% | {1e3 * b:.1f} | "
                     f"{100 * b / te:.0f}% |")
    lines.append(f"| total (profiled) | {1e3 * tt:.1f} | | {1e3 * te:.1f} | |")
    return "\n".join(lines)
