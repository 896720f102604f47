"""npsnn vs the PyTorch + SpikingJelly reference, side by side on this machine (dev tool).

    python benchmarks/compare_torch.py cifar10-p4-d48 [more presets | all] [--rounds 5]
                                       [--threads auto|N] [--kernels both|env|unset|haswell]
                                       [--busy 0|1|...] [--baseline DIR] [--full-input]

Each round runs ``python -m npsnn.perf.bench train-step`` and the reference
``bench_torch.py`` (../shared/perf/torch_reference) once each, **every run in its own
process** (so the peak RSS is that run's alone), alternating which goes first so that slow
drift of a busy machine hits both alike. ``--baseline DIR`` adds a run of another npsnn
checkout (before/after tables; e.g. ``git worktree add /tmp/perf-base main``). With
``--full-input`` a further run per round feeds npsnn the full (T, B, 3, H, W) tensor
through ``forward`` (the torch reference always does that); without it npsnn uses the
direct-encoding path ``forward_repeated`` (the stage-0 conv runs once since the image is the
same at every step). The table gives the median over rounds and the ratio npsnn / torch
(for seconds and memory lower is better, so <= 1.0 means npsnn wins; for img/s the ratio is
torch / npsnn, same reading).

Threads (``--threads``): ``auto`` (default) lets each side do what it does for a user who
sets nothing: npsnn chooses from the usable CPUs and the load (npsnn.perf.runtime; each run
prints its choice), torch uses one thread per usable CPU (its default). A number N gives
both sides N threads (NPSNN_THREADS/OPENBLAS_NUM_THREADS for npsnn,
``torch.set_num_threads`` for the reference).

BLAS kernels (``--kernels``): OpenBLAS picks its kernels for the CPU unless
``OPENBLAS_CORETYPE`` forces a core (these project machines have been set to Haswell, i.e.
AVX2 kernels on an AVX-512 CPU, with ``OPENBLAS_L2_SIZE``). ``env`` runs with the
environment as it is, ``unset`` with both variables removed (what a user's machine has),
``haswell`` with ``OPENBLAS_CORETYPE=Haswell``; ``both`` (default) = ``env`` and the other
one (``unset`` if the environment sets them, else ``haswell``). Only the benchmark
commands' environments change, never this process's.

Busy machine (``--busy N``): N CPU-bound hog processes (``python -c "while True: pass"``)
are started before the rounds of a setting and killed by their PIDs after them, so npsnn and
torch run under the same load; ``--busy 0,1`` measures idle and busy in one call. The load
average (1 min) is printed before and after every setting.

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
from contextlib import contextmanager
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
                OPENBLAS_CORETYPE=os.environ.get("OPENBLAS_CORETYPE", "unset"),
                OPENBLAS_L2_SIZE=os.environ.get("OPENBLAS_L2_SIZE", "unset"))
    if torch_python is not None:
        code = ("import torch, importlib.metadata as m; "
                "print(torch.__version__, m.version('spikingjelly'))")
        r = subprocess.run([str(torch_python), "-c", code], capture_output=True, text=True)
        info["torch"] = r.stdout.strip() if r.returncode == 0 else \
            f"unavailable ({(r.stderr.strip().splitlines() or ['no message'])[-1]})"
    return info


def _run_json(cmd, cwd, env) -> dict:
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed (exit {r.returncode}):\n"
                           f"{r.stderr[-2000:]}")
    return json.loads(lines[-1])


KERNEL_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def kernel_settings(choice: str, environ=os.environ) -> list[str]:
    """--kernels value -> the settings to run: 'both' is 'env' plus the other one."""
    if choice == "both":
        return ["env", "unset" if any(environ.get(v) for v in KERNEL_VARS) else "haswell"]
    return [choice]


def kernel_env(setting: str, environ=os.environ) -> dict:
    """The environment of a benchmark command under one BLAS kernel setting."""
    env = dict(environ)
    if setting in ("unset", "haswell"):
        for v in KERNEL_VARS:
            env.pop(v, None)
    if setting == "haswell":
        env["OPENBLAS_CORETYPE"] = "Haswell"
    return env


def describe_kernels(setting: str, environ=os.environ) -> str:
    env = kernel_env(setting, environ)
    values = ", ".join(f"{v}={env.get(v, 'unset')}" for v in KERNEL_VARS)
    return f"kernels '{setting}' ({values})"


def run_npsnn(preset, args, full_input: bool, env: dict, root: Path = REPO) -> dict:
    # checkouts from before the move into wings have npsnn/bench.py instead of npsnn/perf/
    bench = "npsnn.perf.bench" if (Path(root) / "npsnn" / "perf").is_dir() else "npsnn.bench"
    cmd = [sys.executable, "-m", bench, "train-step", "--preset", preset,
           "--steps", str(args.steps), "--warmup", str(args.warmup)]
    if full_input:
        cmd.append("--full-input")
    env = dict(env, PYTHONPATH=str(root) + os.pathsep + env.get("PYTHONPATH", ""))
    for v in ("NPSNN_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        env.pop(v, None)
    if args.threads != "auto":           # older checkouts know only OPENBLAS_NUM_THREADS
        env.update(NPSNN_THREADS=args.threads, OPENBLAS_NUM_THREADS=args.threads)
    return _run_json(cmd, root, env)


def run_torch(preset, args, env: dict) -> dict:
    threads = str(len(os.sched_getaffinity(0))) if args.threads == "auto" else args.threads
    cmd = [str(args.torch_python), "bench_torch.py", preset, threads]
    res = _run_json(cmd, args.torch_dir, env)
    res.setdefault("threads", int(threads))
    return res


@contextmanager
def hogs(n: int):
    """n CPU-bound processes for the duration of the block, killed by PID afterwards."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        if procs:
            print(f"  busy: started {n} CPU hog(s), PIDs {' '.join(str(p.pid) for p in procs)}",
                  flush=True)
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()
        if procs:
            print(f"  busy: stopped PIDs {' '.join(str(p.pid) for p in procs)}", flush=True)


def load_1min() -> float:
    return os.getloadavg()[0]


def _fmt(v, key="train_step_s"):
    return f"{v:.3f}" if key in ("train_step_s", "eval_s") else f"{v:.0f}"


def compare(preset, args, have_torch: bool, env: dict) -> dict:
    sides = ["npsnn"] + (["npsnn-full"] if args.full_input else []) + \
        (["baseline"] if args.baseline else []) + (["torch"] if have_torch else [])
    runs = {s: [] for s in sides}
    for r in range(args.rounds):
        order = sides if r % 2 == 0 else sides[::-1]
        for side in order:
            if side == "torch":
                res = run_torch(preset, args, env)
            elif side == "baseline":
                res = run_npsnn(preset, args, False, env, root=args.baseline)
            else:
                res = run_npsnn(preset, args, side == "npsnn-full", env)
            runs[side].append(res)
            extra = f"  threads {res['threads']}" if "threads" in res else ""
            if "blas_core" in res:
                extra += f"  core {res['blas_core']}"
            print(f"  round {r + 1}/{args.rounds} {side:<10} "
                  + "  ".join(f"{label} {_fmt(res[key], key)}" for key, label, _ in METRICS)
                  + extra, flush=True)
    med = {s: {key: statistics.median(x[key] for x in runs[s]) for key, _, _ in METRICS}
           for s in sides}
    return dict(preset=preset, rounds=args.rounds, runs=runs, median=med)


def print_table(result, have_torch: bool) -> None:
    med = result["median"]
    sides = [s for s in ("npsnn", "npsnn-full", "baseline", "torch") if s in med]
    head = f"| {result['preset']}, {result['setting']} (median of {result['rounds']}) | " + \
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


def print_summary(results, have_torch: bool) -> None:
    """One row per preset and setting: the three goals' ratios (and the busy slowdown)."""
    if not have_torch:
        return
    print("| preset | kernels | busy | load 1 min | npsnn threads | train s/step npsnn / "
          "torch | ratio | eval img/s npsnn / torch | ratio (time) | peak RSS MB npsnn / "
          "torch | ratio |")
    print("|" + " --- |" * 11)
    idle = {(r["preset"], r["kernels"]): r for r in results if r["busy"] == 0}
    for r in results:
        n, t = r["median"]["npsnn"], r["median"]["torch"]
        threads = sorted({x.get("threads") for x in r["runs"]["npsnn"]} - {None})
        row = (f"| {r['preset']} | {r['kernels']} | {r['busy']} | "
               f"{r['load_before']:.1f}-{r['load_after']:.1f} | "
               f"{'/'.join(map(str, threads)) or '?'} | "
               f"{n['train_step_s']:.3f} / {t['train_step_s']:.3f} | "
               f"**{n['train_step_s'] / t['train_step_s']:.2f}** | "
               f"{n['eval_img_s']:.0f} / {t['eval_img_s']:.0f} | "
               f"**{t['eval_img_s'] / n['eval_img_s']:.2f}** | "
               f"{n['peak_rss_mb']:.0f} / {t['peak_rss_mb']:.0f} | "
               f"**{n['peak_rss_mb'] / t['peak_rss_mb']:.2f}** |")
        base = idle.get((r["preset"], r["kernels"]))
        if r["busy"] and base is not None:
            row += (f" busy/idle step: npsnn {n['train_step_s'] / base['median']['npsnn']['train_step_s']:.2f}"
                    f", torch {t['train_step_s'] / base['median']['torch']['train_step_s']:.2f}")
        print(row)
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
    ap.add_argument("--threads", default="auto",
                    help="'auto' (default: npsnn decides, torch one per usable CPU) or N "
                         "threads for both sides")
    ap.add_argument("--kernels", default="both", choices=("both", "env", "unset", "haswell"),
                    help="OpenBLAS kernel settings to run (default both: as the environment "
                         "is set, and the other one)")
    ap.add_argument("--busy", default="0",
                    help="CPU hogs running during the rounds, or a comma list to run each "
                         "(e.g. 0,1; default 0)")
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
    sys.stdout.reconfigure(line_buffering=True)          # progress shows up as it happens
    presets = list(PRESETS) if args.presets == ["all"] else args.presets
    if args.threads != "auto" and not (args.threads.isdigit() and int(args.threads) >= 1):
        ap.error(f"--threads must be 'auto' or a positive integer, got {args.threads!r}")
    try:
        busy_levels = [int(b) for b in args.busy.split(",")]
    except ValueError:
        busy_levels = [-1]
    if any(b < 0 for b in busy_levels):
        ap.error(f"--busy must be a count of CPU hogs or a comma list of them, got {args.busy!r}")

    have_torch = args.torch_python.exists() and (args.torch_dir / "bench_torch.py").exists()
    if not have_torch:
        print(f"torch reference skipped: need {args.torch_python} (make it with "
              f"torch_reference/setup_env.sh) and {args.torch_dir / 'bench_torch.py'}; "
              f"timing npsnn only.\n")
    info = machine_info(args.torch_python if have_torch else None)
    info["threads"] = args.threads                       # what every run is told
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    print(f"T 4, batch 64, {args.steps} timed steps after {args.warmup} warm-ups per run, "
          f"threads {args.threads}, runs alternate, one process each\n")
    results = []
    for kernels in kernel_settings(args.kernels):
        env = kernel_env(kernels)
        for busy in busy_levels:
            setting = f"{describe_kernels(kernels)}, busy {busy}"
            for preset in presets:
                with hogs(busy):
                    before = load_1min()
                    print(f"{preset}, {setting}, load {before:.2f}:", flush=True)
                    res = compare(preset, args, have_torch, env)
                    after = load_1min()
                res.update(kernels=kernels, busy=busy, setting=setting, load_before=before,
                           load_after=after)
                results.append(res)
                print(f"  load {after:.2f} after\n")
                print_table(res, have_torch)
    print_summary(results, have_torch)
    if args.json:
        sys.path.insert(0, str(REPO))
        from npsnn.io import atomic_write
        with atomic_write(args.json, "w") as f:
            json.dump(dict(machine=info, results=results), f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
