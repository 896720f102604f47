"""Benchmarks (not tests): ``python -m npsnn.perf.bench {train-step,ops} --help``.

``train-step`` times one full training step of a preset as the PyTorch reference in
``../shared/perf/torch_reference/bench_torch.py`` does: random input, cross-entropy on the
T-averaged logits, backward, SGD step (lr 0.05, momentum 0.9); median of ``--steps``
steps after ``--warmup``; eval = forward in eval mode (no caches), median likewise. Peak
RSS is the whole process's (run one preset per process for a clean figure).

One difference from the torch bench, stated in the output as ``input``: by default the
input is a random image ``(B, 3, 32, 32)`` presented at every step through the
direct-encoding entry point ``forward_repeated`` (what training on images does; the stage-0
conv runs once). The torch bench feeds a *different* random image at each of the T steps;
``--full-input`` does the same here (``forward`` on a random ``(T, B, 3, 32, 32)``).
Prints one JSON line: median s/step, train img/s, eval img/s, peak RSS MB, the median
CPU seconds per step (all threads; steadier than wall time on a busy machine), and the
numpy / BLAS setup (which kernels OpenBLAS runs, ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE``)
and the threads used and why (``--threads``, see :mod:`npsnn.perf.runtime`; the same line
goes to stderr first). Side by side with torch: ``benchmarks/compare_torch.py``.

``ops`` times forward + backward of each op at CIFAR sizes (T=4, B=64); ``profile`` gives
the CPU time of a step per op family (:mod:`npsnn.perf.profile`).
"""
from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np


def _median_time(fn, steps, warmup):
    """-> (median wall seconds, median process CPU seconds) of ``fn`` after ``warmup``.
    The CPU time (all of this process's threads) is the steadier figure on a busy machine."""
    times, cpu = [], []
    for i in range(warmup + steps):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return float(np.median(times[warmup:])), float(np.median(cpu[warmup:]))


def _blas_info() -> str:
    try:
        dep = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{dep.get('name')} {dep.get('version')}"
    except Exception:                              # numpy < 1.26 has no dict mode
        return "unknown"


def blas_kernels() -> dict:
    """Which kernels numpy's BLAS runs (OpenBLAS picks them per CPU unless
    ``OPENBLAS_CORETYPE`` forces a core) and the two variables that steer it."""
    import os

    from threadpoolctl import threadpool_info
    core = next((i.get("architecture") for i in threadpool_info()
                 if i.get("user_api") == "blas"), None)
    return dict(blas_core=core or "unknown",
                openblas_coretype=os.environ.get("OPENBLAS_CORETYPE", "unset"),
                openblas_l2_size=os.environ.get("OPENBLAS_L2_SIZE", "unset"))


def train_step(preset="cifar10-p4-d48", T=4, batch=64, steps=5, warmup=2, seed=0,
               repeated=True, threads=None) -> dict:
    import os
    import sys

    import npsnn
    from npsnn.ops.losses import cross_entropy_backward, cross_entropy_forward
    from npsnn.perf.runtime import describe, tune_process
    from npsnn.train.optim import SGD

    tuning = tune_process(threads)
    print(describe(tuning), file=sys.stderr)
    model = npsnn.build(preset, seed=seed)
    rng = np.random.default_rng(seed)
    size = model.config["image_size"]
    labels = rng.integers(0, model.config["num_classes"], batch)
    if repeated:
        images = rng.standard_normal((batch, 3, size, size), dtype=np.float32)
    else:                                          # a different image at every step, as torch
        x_seq = rng.standard_normal((T, batch, 3, size, size), dtype=np.float32)
    opt = SGD(model, lr=0.05, momentum=0.9)

    def forward():
        return model.forward_repeated(images, T) if repeated else model.forward(x_seq)

    def step():
        model.train()
        logits = forward()
        loss, cache = cross_entropy_forward(logits, labels)
        model.zero_grad()
        model.backward(cross_entropy_backward(cache))
        opt.step()

    def evaluate():
        model.eval()
        forward()

    train_s, train_cpu = _median_time(step, steps, warmup)
    eval_s, eval_cpu = _median_time(evaluate, steps, warmup)
    return dict(preset=preset, T=T, batch=batch, params=model.num_parameters(),
                input="forward_repeated (B,3,H,W) x T" if repeated else "forward (T,B,3,H,W)",
                repeated_input_path=repeated, train_step_s=round(train_s, 4),
                train_img_s=round(batch / train_s, 1), train_cpu_s=round(train_cpu, 4),
                eval_s=round(eval_s, 4), eval_cpu_s=round(eval_cpu, 4),
                eval_img_s=round(batch / eval_s, 1),
                peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                numpy=np.__version__, blas=_blas_info(), **blas_kernels(),
                cpus=len(os.sched_getaffinity(0)), threads=tuning["threads"],
                threads_reason=tuning["threads_reason"], malloc_tuned=tuning["malloc_tuned"])


def main(argv=None) -> int:
    from .runtime import add_threads_argument
    ap = argparse.ArgumentParser(prog="python -m npsnn.perf.bench", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    ts = sub.add_parser("train-step", help="median seconds per training step, eval img/s, peak RSS")
    ts.add_argument("--preset", default="cifar10-p4-d48", help="preset name (default cifar10-p4-d48)")
    ts.add_argument("--T", type=int, default=4, help="time steps (default 4)")
    ts.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    ts.add_argument("--steps", type=int, default=5, help="timed steps (default 5)")
    ts.add_argument("--warmup", type=int, default=2, help="untimed warm-up steps (default 2)")
    ts.add_argument("--full-input", action="store_true",
                    help="feed a random (T,B,3,H,W) tensor through forward(), as the torch "
                         "bench does, instead of one image per sample through the "
                         "direct-encoding path forward_repeated (stage-0 conv once)")
    add_threads_argument(ts)
    ops = sub.add_parser("ops", help="forward+backward time of each op at CIFAR sizes")
    ops.add_argument("--repeats", type=int, default=20, help="timed repeats per op (default 20)")
    add_threads_argument(ops)
    prof = sub.add_parser("profile", help="CPU time per op family of a training step and "
                                          "of eval (cProfile)")
    prof.add_argument("--preset", default="cifar10-p4-d48", help="preset name (default cifar10-p4-d48)")
    prof.add_argument("--steps", type=int, default=3, help="profiled steps (default 3)")
    prof.add_argument("--threads", default="1", metavar="N",
                      help="threads (default 1: CPU time is then the work)")
    prof.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    args = ap.parse_args(argv)
    from .runtime import parse_threads
    try:
        parse_threads(args.threads, "--threads")
    except ValueError as e:
        ap.error(str(e))
    if args.command == "train-step":
        print(json.dumps(train_step(args.preset, args.T, args.batch, args.steps, args.warmup,
                                    repeated=not args.full_input, threads=args.threads)))
    elif args.command == "profile":
        from .profile import format_profile, profile_step
        res = profile_step(args.preset, steps=args.steps, threads=args.threads)
        print(json.dumps(res) if args.json else format_profile(res))
    else:
        from .bench_ops import run_ops
        from .runtime import describe, tune_process
        print(describe(tune_process(args.threads)))
        run_ops(args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
