"""``python -m npsnn quickstart``: train a small sMLPNet on the bundled CIFAR-10 sample.

A minute or two on two CPU cores: the ``cifar10-p4-d48`` preset (the PyTorch anchor's
model) is trained with the default recipe (SGD + Nesterov, OneCycle, label smoothing 0.1,
crop + flip, T = 4) on the 1000 training images of ``data/cifar10-sample.tar.gz``, then
evaluated on its 500 test images (chance is 10%). The checkpoint and metrics land in
``runs/quickstart``; the same run on the full dataset is one ``python -m npsnn train``
away (printed at the end).
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

from ..cli import UsageError, config_arg, fail, parse
from ..perf.runtime import add_threads_argument

#: the quickstart recipe (everything else: TrainArgs defaults, the anchor recipe)
PRESET = "cifar10-p4-d48"
EPOCHS = 10
BATCH = 32
LR = 0.1


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m npsnn quickstart",
        description=f"Train the {PRESET} sMLPNet for {EPOCHS} epochs on the bundled CIFAR-10 "
                    f"sample (1000 train / 500 test images, data/cifar10-sample.tar.gz), "
                    f"evaluate it, and print where the checkpoint and metrics are. Takes "
                    f"about a minute or two on two CPU cores. Ctrl-C stops it cleanly.")
    p.add_argument("--data", metavar="PATH",
                   help="a CIFAR-10 archive or folder instead of the bundled sample")
    p.add_argument("--out", default="runs/quickstart", metavar="DIR",
                   help="output folder (overwritten) [default: runs/quickstart]")
    p.add_argument("--epochs", type=int, default=EPOCHS, help=f"[default: {EPOCHS}]")
    p.add_argument("--seed", type=int, default=0, help="[default: 0]")
    p.add_argument("--config", metavar="JSON",
                   help=f"a model config as JSON instead of the {PRESET} preset")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar")
    add_threads_argument(p)
    return p


def _fail(msg) -> int:
    return fail("npsnn quickstart", msg)


def main(argv=None) -> int:
    ns, code = parse(_parser(), sys.argv[1:] if argv is None else argv)
    if ns is None:
        return code
    from ..datasets import sample_path
    from ..perf.runtime import describe, tune_process
    from .args import TrainArgs
    from .cli import SETUP_MEMORY
    from .lock import run_lock
    from .report import run_failure
    from .trainer import BEST, LAST, METRICS, Trainer

    if ns.data is None:
        try:
            data = sample_path()
        except FileNotFoundError as e:
            return _fail(e)
    else:
        data = Path(ns.data)
        if not data.exists():
            return _fail(f"--data {data}: no such file or folder")
    try:
        config = None if ns.config is None else config_arg(ns.config)
    except UsageError as e:
        return _fail(str(e))
    out = Path(ns.out)
    args = TrainArgs(preset=None if config else PRESET, config=config, data=str(data),
                     out=str(out), epochs=ns.epochs, batch=BATCH, lr=LR, seed=ns.seed,
                     progress=ns.progress, log_every=10)
    with contextlib.ExitStack() as stack:
        try:
            args.validate()
            args.model_config()
            if out.exists() and not out.is_dir():
                raise UsageError(f"--out {out} is a file, not a folder; choose another --out")
            stack.enter_context(run_lock(out))     # another quickstart into it is refused
            for stale in (LAST, BEST, METRICS):          # a quickstart always starts afresh
                (out / stale).unlink(missing_ok=True)
            trainer = Trainer(args)
            tuning = tune_process(ns.threads)
        except (ValueError, TypeError, OSError) as e:
            return _fail(e)
        except MemoryError:
            return _fail(SETUP_MEMORY)
        print(describe(tuning))
        t0 = time.perf_counter()
        try:
            result = trainer.run()
        except (ValueError, OSError, MemoryError) as e:
            return _fail(run_failure(e, trainer))
        wall = time.perf_counter() - t0
    if result["interrupted"]:
        return 130
    print()
    print(f"quickstart: test top-1 {result['test_acc']:.1f}% on {len(trainer.xte)} test images "
          f"(chance: 10%) after {ns.epochs} epochs on {len(trainer.xtr)} images, "
          f"{wall:.0f} s")
    print(f"  checkpoint: {out / LAST} (best: {out / BEST}, "
          f"{result['best_acc']:.1f}% at epoch {result['best_epoch']})")
    print(f"  metrics:    {out / METRICS} (one JSON object per line)")
    print(f"  evaluate:   python -m npsnn eval --checkpoint {out / BEST} --data {data}")
    print(f"  full run:   python -m npsnn train --data "
          f"../shared/data/cifar10-jpeg-binary.tar.gz --epochs 8 --out runs/{PRESET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
