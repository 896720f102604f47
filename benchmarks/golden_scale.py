"""Peak memory of the integer golden model on a big preset (dev tool, not a test).

    nice -n 19 python benchmarks/golden_scale.py [--preset mlp-spe-t] [--images 1]
        [--calib 2] [--T 4] [--no-hex] [--out DIR]

Builds the preset with trained-looking BN statistics (random gains, so that every LIF fires
and every channel mixer needs its per-token BN1d table: the worst case, no snapping), saves
it as a plain state dict, and runs three commands, each in its own process:

    python -m npsnn golden report --checkpoint W --preset P --images 0:N --calib C --T T
    (convert + export through the API: a 224-pixel data set is not at hand, so the images
     are random uint8 images; the export writes params, vectors and hex files)

and prints each one's wall time and peak resident memory (``ru_maxrss`` of the child).
The issue's target: every phase within 4 GB on ``mlp-spe-t`` (it was killed at 23.7 GB).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

EXPORT = textwrap.dedent("""
    import json, sys, numpy as np, npsnn
    from npsnn.io import load_state
    from npsnn.golden import convert
    from npsnn.golden.export import export
    a = json.loads(sys.argv[1])
    model = npsnn.build(a["preset"], dtype=np.float32)
    model.load_state_dict(load_state(a["weights"]))
    model.eval()
    c = model.config
    shape = (c["in_channels"], c["image_size"], c["image_size"])
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (max(a["images"], a["calib"]),) + shape, np.uint8)
    net = convert(model, images[:a["calib"]], T=a["T"])
    s = export(net, images[:a["images"]], a["T"], a["out"], hex_files=a["hex"])
    print(f"exported {s['values']} values for {s['images']} images to {s['out']}")
""")


def weights(preset: str, path: Path) -> None:
    """The preset with random BN statistics (every gain a non power of two), as .npz (the
    golden tests' randomise_bn)."""
    import numpy as np
    import npsnn
    from npsnn.io import save_state
    sys.path.insert(0, str(ROOT / "tests" / "golden"))
    from golden_models import randomise_bn
    save_state(path, randomise_bn(npsnn.build(preset, dtype=np.float32, seed=0)))


#: runs a command and prints the peak RSS of that one child (its own RUSAGE_CHILDREN)
WRAPPER = ("import resource, subprocess, sys\n"
           "done = subprocess.run(sys.argv[1:])\n"
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, done.returncode)\n")


def measure(label: str, argv: list) -> dict:
    """Run ``argv`` in a child of a fresh wrapper -> wall seconds and that child's peak RSS."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", WRAPPER, *argv], env=env,
                          stdout=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    peak_kb, code = map(int, done.stdout.strip().splitlines()[-1].split())
    if code != 0:
        sys.exit(f"{label} failed (exit {code})")
    return dict(phase=label, seconds=round(wall, 1), peak_rss_gb=round(peak_kb / 1e6, 2))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="mlp-spe-t")
    p.add_argument("--images", type=int, default=1)
    p.add_argument("--calib", type=int, default=2)
    p.add_argument("--T", type=int, default=4)
    p.add_argument("--no-hex", action="store_true")
    p.add_argument("--out", help="export folder [default: a temporary one, removed]")
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="golden-scale-"))
    try:
        w = tmp / "weights.npz"
        weights(a.preset, w)
        out = Path(a.out) if a.out else tmp / "export"
        rows = []
        rows.append(measure("report (convert + counts)", [
            sys.executable, "-m", "npsnn", "golden", "report", "--checkpoint", str(w),
            "--preset", a.preset, "--images", f"0:{a.images}", "--calib", str(a.calib),
            "--T", str(a.T)]))
        rows.append(measure("export (convert + vectors" + ("" if a.no_hex else " + hex") + ")",
                            [sys.executable, "-c", EXPORT, json.dumps(dict(
                                preset=a.preset, weights=str(w), images=a.images,
                                calib=a.calib, T=a.T, out=str(out), hex=not a.no_hex))]))
        size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
        print(f"preset {a.preset}, {a.images} image(s), calibration on {a.calib}, T={a.T}; "
              f"export {size / 1e9:.2f} GB on disk")
        for r in rows:
            print(f"{r['phase']:<40} {r['seconds']:>8.1f} s  peak RSS {r['peak_rss_gb']:.2f} GB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
