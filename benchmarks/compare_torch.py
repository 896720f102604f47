"""npsnn vs the PyTorch + SpikingJelly reference, side by side on this machine (dev tool).

    python benchmarks/compare_torch.py cifar10-p4-d48 [more presets | all] [--rounds 5]
                                       [--full-input] [--steps 5] [--warmup 2]

Each round runs ``python -m npsnn.perf.bench train-step`` and the reference
``bench_torch.py`` (../shared/perf/torch_reference) once each, **every run in its own
process** (so the peak RSS is that run's alone), alternating which goes first so that slow
drift of a busy machine hits both alike. ``--baseline DIR`` adds a run of another npsnn
checkout (before/after tables). With ``--full-input`` a further run per round
feeds npsnn the full (T, B, 3, H, W) tensor through ``forward`` (the torch reference always
does that); without it npsnn uses the direct-encoding path ``forward_repeated`` (the
stage-0 conv runs once since the image is the same at every step).
The table gives the median over rounds and the ratio npsnn / torch (for seconds and memory
lower is better, so <= 1.0 means npsnn wins; for img/s the ratio is torch / npsnn, same
reading). Both sides use 2 threads by default (``--threads``: OPENBLAS_NUM_THREADS for
npsnn, ``torch.set_num_threads`` for the reference).

If the torch venv (``$REF_VENV`` or ~/.venvs/npsnn-torch) or the reference directory is
missing, the torch columns are skipped with a message; this script is never a test and
npsnn never imports torch.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRESETS = ("cifar10-p4-d48", "cifar10-p4-d96", "cifar10-p2-d48")
METRICS = (("train_step_s", "s/step", "low"), ("train_img_s", "train img/s", "high"),
           ("eval_img_s", "eval img/s", "high"), ("peak_rss_mb", "peak RSS MB", "low"))


def _default_torch_python() -> Path:
    venv = os.environ.get("REF_VENV") or str(Path.home() / ".venvs" / "npsnn-torch")
    return Path(venv) / "bin" / "python"


def _default_torch_dir() -> Path:
    return REPO.parent / "shared" / "perf" / "torch_reference"


def machine_info(torch_python: Path | None) -> dict:
    import numpy as np
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    blas = "unknown"
    try:
        dep = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{dep.get('name')} {dep.get('version')}"
    except Exception:                           # older numpy: no dict mode
        pass
    info = dict(nproc=os.cpu_count(), cpus_usable=len(os.sched_getaffinity(0)), cpu=cpu,
                python=platform.python_version(), numpy=np.__version__, blas=blas,
                blas_threads=os.environ.get("OPENBLAS_NUM_THREADS", "default (all cores)"))
    if torch_python is not None:
        code = ("import torch, importlib.metadata as m; "
                "print(torch.__version__, m.version('spikingjelly'))")
        r = subprocess.run([str(torch_python), "-c", code], capture_output=True, text=True)
        info["torch"] = r.stdout.strip() if r.returncode == 0 else "unavailable"
    return info


def _run_json(cmd, cwd, env) -> dict:
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed (exit {r.returncode}):\n"
                           f"{r.stderr[-2000:]}")
    return json.loads(lines[-1])


def run_npsnn(preset, args, full_input: bool, root: Path = REPO) -> dict:
    # checkouts from before the move into wings have npsnn/bench.py instead of npsnn/perf/
    bench = "npsnn.perf.bench" if (Path(root) / "npsnn" / "perf").is_dir() else "npsnn.bench"
    cmd = [sys.executable, "-m", bench, "train-step", "--preset", preset,
           "--steps", str(args.steps), "--warmup", str(args.warmup)]
    if full_input:
        cmd.append("--full-input")
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads),
               PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return _run_json(cmd, root, env)


def run_torch(preset, args) -> dict:
    cmd = [str(args.torch_python), "bench_torch.py", preset, str(args.threads)]
    return _run_json(cmd, args.torch_dir, dict(os.environ))


def _fmt(v, key="train_step_s"):
    return f"{v:.3f}" if key in ("train_step_s", "eval_s") else f"{v:.0f}"


def compare(preset, args, have_torch: bool) -> dict:
    sides = ["npsnn"] + (["npsnn-full"] if args.full_input else []) + \
        (["baseline"] if args.baseline else []) + (["torch"] if have_torch else [])
    runs = {s: [] for s in sides}
    for r in range(args.rounds):
        order = sides if r % 2 == 0 else sides[::-1]
        for side in order:
            if side == "torch":
                res = run_torch(preset, args)
            elif side == "baseline":
                res = run_npsnn(preset, args, full_input=False, root=args.baseline)
            else:
                res = run_npsnn(preset, args, full_input=side == "npsnn-full")
            runs[side].append(res)
            print(f"  round {r + 1}/{args.rounds} {side:<10} "
                  + "  ".join(f"{label} {_fmt(res[key], key)}" for key, label, _ in METRICS),
                  flush=True)
    med = {s: {key: statistics.median(x[key] for x in runs[s]) for key, _, _ in METRICS}
           for s in sides}
    return dict(preset=preset, rounds=args.rounds, runs=runs, median=med)


def print_table(result, have_torch: bool) -> None:
    med = result["median"]
    sides = [s for s in ("npsnn", "npsnn-full", "baseline", "torch") if s in med]
    head = f"| {result['preset']} (median of {result['rounds']}) | " + \
        " | ".join(sides)
    if have_torch:
        head += " | " + " | ".join(f"ratio {s}/torch" for s in sides if s != "torch")
    print(head + " |")
    print("|" + " --- |" * (1 + len(sides) + (len(sides) - 1 if have_torch else 0)))
    for key, label, better in METRICS:
        row = f"| {label} | " + " | ".join(_fmt(med[s][key], key) for s in sides)
        if have_torch:
            t = med["torch"][key]
            # ratio <= 1.0 means npsnn is at least as good, whichever way the metric points
            row += " | " + " | ".join(
                f"{(med[s][key] / t if better == 'low' else t / med[s][key]):.2f}"
                for s in sides if s != "torch")
        print(row + " |")
    print()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("presets", nargs="*", default=[PRESETS[0]],
                    help=f"presets to compare, or 'all' ({', '.join(PRESETS)})")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    ap.add_argument("--steps", type=int, default=5,
                    help="timed npsnn steps per run (default 5; bench_torch.py always "
                         "times 5 after 2 warm-ups)")
    ap.add_argument("--warmup", type=int, default=2, help="npsnn warm-up steps (default 2)")
    ap.add_argument("--threads", type=int, default=2, help="threads for both sides (default 2)")
    ap.add_argument("--full-input", action="store_true",
                    help="also time npsnn on the full (T,B,3,H,W) input through forward()")
    ap.add_argument("--torch-python", type=Path, default=_default_torch_python(),
                    help="python of the PyTorch+SpikingJelly venv (default $REF_VENV or "
                         "~/.venvs/npsnn-torch)")
    ap.add_argument("--torch-dir", type=Path, default=_default_torch_dir(),
                    help="directory holding bench_torch.py "
                         "(default ../shared/perf/torch_reference)")
    ap.add_argument("--baseline", type=Path,
                    help="another npsnn checkout (e.g. an older commit exported with "
                         "'git archive') to time as a third column, same settings")
    ap.add_argument("--json", type=Path, help="also write every run and the medians here")
    args = ap.parse_args(argv)
    presets = list(PRESETS) if args.presets == ["all"] else args.presets

    have_torch = args.torch_python.exists() and (args.torch_dir / "bench_torch.py").exists()
    if not have_torch:
        print(f"torch reference skipped: need {args.torch_python} (make it with "
              f"torch_reference/setup_env.sh) and {args.torch_dir / 'bench_torch.py'}; "
              f"timing npsnn only.\n")
    info = machine_info(args.torch_python if have_torch else None)
    info["blas_threads"] = args.threads                  # what every run gets
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    print(f"T 4, batch 64, {args.steps} timed steps after {args.warmup} warm-ups per run, "
          f"{args.threads} threads, runs alternate, one process each\n")
    results = []
    for preset in presets:
        print(f"{preset}:")
        res = compare(preset, args, have_torch)
        results.append(res)
        print()
        print_table(res, have_torch)
    if args.json:
        sys.path.insert(0, str(REPO))
        from npsnn.io import atomic_write
        with atomic_write(args.json, "w") as f:
            json.dump(dict(machine=info, results=results), f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
