"""``python -m npsnn train`` and ``python -m npsnn eval``.

Both entry points take an argv list and return an exit code: 0 done, 2 bad input (one
clear line on stderr, no traceback), 130 training interrupted by Ctrl-C (a checkpoint was
written and the resume command printed).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from ..cli import UsageError as _UsageError
from ..cli import config_arg, fail as _fail, parse as _parse
from .args import TrainArgs
from .recipe import RECIPES, recipe_args
from ..perf.runtime import add_threads_argument, describe, tune_process
from .report import run_failure
from .trainer import BEST, LAST

_D = TrainArgs()          # the defaults, shown in --help


# -- train -----------------------------------------------------------------------------------
def train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m npsnn train",
        description="Train a network of npsnn.MODELS (sMLPNet, SNN-MLP, SpikingSSM) on its "
                    "data source with BPTT on the CPU. Defaults are the PyTorch "
                    "anchor recipe: SGD with Nesterov momentum, weight decay 5e-4 on every "
                    "parameter, OneCycle lr (max 0.1, pct_start 0.15), label smoothing 0.1, "
                    "random crop + flip, T=4, batch 64. Writes last.npz (every epoch), "
                    "best.npz (best test accuracy) and metrics.jsonl to --out. Ctrl-C saves "
                    "a checkpoint; continue with --resume DIR (bit-exact).",
    )
    S = argparse.SUPPRESS          # defaults live in TrainArgs; absent flags stay absent
    run = p.add_argument_group("run")
    run.add_argument("--preset", default=S, help=f"model preset (see npsnn.PRESETS) "
                     f"[default: {_D.preset}]")
    run.add_argument("--config", default=S, metavar="JSON",
                     help="a model config as a JSON object or a .json file (see "
                          "npsnn.models.MODELS for each model's keys), instead of --preset")
    run.add_argument("--data", default=S, metavar="PATH",
                     help="CIFAR-10/100 archive (.tar.gz) or folder, python or binary "
                          "batches (e.g. ../shared/data/cifar10-jpeg-binary.tar.gz)")
    run.add_argument("--out", default=S, metavar="DIR",
                     help="output folder for checkpoints and metrics [default: runs/<preset>]")
    run.add_argument("--resume", default=S, metavar="DIR",
                     help="continue the run in DIR from DIR/last.npz with its saved settings "
                          "(only --data, --eval-batch and --no-progress may be given again)")
    run.add_argument("--overwrite", action="store_true", default=S,
                     help="start a new run even if --out already holds one")
    run.add_argument("--epochs", type=int, default=S, help=f"epochs [default: {_D.epochs}]")
    run.add_argument("--seed", type=int, default=S,
                     help=f"seed of initialisation, data order and augmentation "
                          f"[default: {_D.seed}]")
    run.add_argument("--train-subset", type=int, default=S, metavar="N",
                     help="train on N images chosen with the seed [default: all]")
    run.add_argument("--test-subset", type=int, default=S, metavar="N",
                     help="evaluate on the first N test images [default: all]")
    run.add_argument("--eval-every", type=int, default=S, metavar="E",
                     help=f"evaluate on the test split every E epochs and after the last "
                          f"[default: {_D.eval_every}]")
    run.add_argument("--eval-batch", type=int, default=S,
                     help=f"batch size of the evaluation [default: {_D.eval_batch}]")
    run.add_argument("--checkpoint-every", type=int, default=S, metavar="K",
                     help=f"also write last.npz every K steps, for mid-epoch resume after "
                          f"a crash or kill; 0: at the end of each epoch only "
                          f"[default: {_D.checkpoint_every}]")
    run.add_argument("--log-every", type=int, default=S, metavar="K",
                     help=f"write a train line to metrics.jsonl every K steps "
                          f"[default: {_D.log_every}]")
    run.add_argument("--no-progress", dest="progress", action="store_false", default=S,
                     help="no tqdm progress bar (for logs)")
    add_threads_argument(run)               # not a setting of the run: free on --resume too

    opt = p.add_argument_group("recipe (each flag overrides one value of --recipe)")
    opt.add_argument("--recipe", choices=tuple(RECIPES), default=S,
                     help="the named recipe to start from: anchor (the PyTorch CPU anchor, "
                          "the defaults shown here) or official (the official mixer-snn "
                          "train.py: SGD without Nesterov, no weight decay, per-epoch cosine, "
                          "Mixup 0.8 / CutMix 1.0, label smoothing 0.1, 100 epochs; see "
                          "docs/interop.md) or spikingssm (the official SpikingSSM sCIFAR "
                          "run: AdamW lr 0.01 wd 0.01, cosine with 10%% warm-up, batch 50, "
                          "200 epochs; see docs/spikingssm.md) [default: anchor]")
    opt.add_argument("--T", type=int, default=S, help=f"time steps [default: {_D.T}]")
    opt.add_argument("--batch", type=int, default=S, help=f"batch size [default: {_D.batch}]")
    opt.add_argument("--optimizer", choices=("sgd", "adamw"), default=S,
                     help=f"SGD (PyTorch rules: L2 decay in the gradient) or AdamW "
                          f"(decoupled decay, betas (momentum, 0.999)) "
                          f"[default: {_D.optimizer}]")
    opt.add_argument("--lr", type=float, default=S,
                     help=f"peak lr (onecycle) or base lr (cosine, constant) [default: {_D.lr}]")
    opt.add_argument("--momentum", type=float, default=S,
                     help=f"SGD momentum / AdamW beta1 (onecycle cycles it 0.95 -> 0.85 -> "
                          f"0.95 instead) [default: {_D.momentum}]")
    opt.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=S,
                     help=f"Nesterov momentum for SGD [default: {_D.nesterov}]")
    opt.add_argument("--wd", type=float, default=S,
                     help=f"weight decay on every parameter (SGD: L2 in the gradient, "
                          f"AdamW: decoupled) [default: {_D.wd}]")
    opt.add_argument("--schedule", choices=("onecycle", "cosine", "epoch-cosine", "constant"),
                     default=S, help=f"lr schedule (epoch-cosine: the official per-epoch "
                                     f"cosine) [default: {_D.schedule}]")
    opt.add_argument("--pct-start", type=float, default=S,
                     help=f"onecycle: fraction of steps rising to the peak "
                          f"[default: {_D.pct_start}]")
    opt.add_argument("--warmup-epochs", type=float, default=S,
                     help=f"cosine: linear warm-up length [default: {_D.warmup_epochs}]")
    opt.add_argument("--label-smoothing", type=float, default=S,
                     help=f"label smoothing of the cross-entropy target "
                          f"[default: {_D.label_smoothing}]")
    opt.add_argument("--loss", choices=("ce", "tet"), default=S,
                     help=f"ce: cross-entropy on the T-averaged logits; tet: TET, averaged "
                          f"over t [default: {_D.loss}]")
    opt.add_argument("--tet-lambda", type=float, default=S,
                     help=f"TET's MSE weight [default: {_D.tet_lambda}]")
    opt.add_argument("--no-augment", dest="augment", action="store_false", default=S,
                     help="no random crop (pad 4) + horizontal flip")
    opt.add_argument("--cutout", type=int, default=S, metavar="PIXELS",
                     help="cutout square side, 0 for none [default: 0]")
    opt.add_argument("--mixup", type=float, default=S, metavar="ALPHA",
                     help=f"Mixup alpha, 0 for none [default: {_D.mixup}]")
    opt.add_argument("--cutmix", type=float, default=S, metavar="ALPHA",
                     help=f"CutMix alpha, 0 for none [default: {_D.cutmix}]")
    opt.add_argument("--mix-prob", type=float, default=S, metavar="P",
                     help=f"probability that a batch is mixed [default: {_D.mix_prob}]")
    opt.add_argument("--switch-prob", type=float, default=S, metavar="P",
                     help=f"probability of CutMix rather than Mixup when both are on "
                          f"[default: {_D.switch_prob}]")

    ft = p.add_argument_group("fine-tuning")
    ft.add_argument("--init", default=S, metavar="FILE",
                    help="start from these weights: an npsnn checkpoint or state dict "
                         "(.npz) or an official PyTorch checkpoint (.pth); loaded strictly. "
                         "Without --preset/--config the model is the one they describe")
    ft.add_argument("--reset-head", action="store_true", default=S,
                    help="with --init: a new classifier for the data's number of classes")
    ft.add_argument("--image-size", type=int, default=S, metavar="S",
                    help="build the model for S x S images and resize the data to S "
                         "(bilinear), e.g. 224 for weights trained on ImageNet")
    return p


#: what a MemoryError before the first step means
SETUP_MEMORY = ("ran out of memory building the model or preparing the data: the model "
                "(its config, --image-size) or the images are too big for this machine")

#: settings that may be given again with --resume (they do not change the numbers)
_RESUMABLE = ("data", "progress", "eval_batch")


def _train_args(ns: argparse.Namespace) -> dict:
    given = {k: v for k, v in vars(ns).items() if k not in ("resume", "overwrite", "threads")}
    if "config" in given:
        given["config"] = config_arg(given["config"])
        given.setdefault("preset", None)
    return given


def train_main(argv=None) -> int:
    prog = "npsnn train"
    ns, code = _parse(train_parser(), sys.argv[1:] if argv is None else argv)
    if ns is None:
        return code
    from .checkpoint import CheckpointError
    from .lock import RunLocked, run_lock
    with contextlib.ExitStack() as stack:
        try:
            given = _train_args(ns)
            resume = getattr(ns, "resume", None)
            folder = _run_folder(resume, given)
            stack.enter_context(run_lock(folder))       # held from the first look to the end
            if resume is not None:
                trainer = _resume(resume, given)
            else:
                trainer = _start(given, getattr(ns, "overwrite", False))
            tuning = tune_process(ns.threads)
        except (_UsageError, ValueError, TypeError, KeyError, OSError, CheckpointError,
                RunLocked) as e:
            return _fail(prog, e)
        except MemoryError:
            return _fail(prog, SETUP_MEMORY)
        print(describe(tuning))
        try:
            result = trainer.run()
        except (ValueError, OSError, MemoryError) as e:
            return _fail(prog, run_failure(e, trainer))
    if result["interrupted"]:
        return 130
    print(f"done: best test top-1 {result['best_acc']:.2f}% (epoch {result['best_epoch']}); "
          f"checkpoints {result['last']}" + (f", {result['best']}" if result["best"] else "")
          + f"; metrics {result['metrics']}")
    return 0


def _run_folder(resume, given: dict) -> Path:
    """The run's folder (``--resume DIR`` or ``--out``, default runs/<preset>), which must be
    a folder or not exist yet."""
    if resume is not None:
        folder = Path(resume)
        if not folder.is_dir():
            raise _UsageError(f"--resume {resume}: no such folder")
    else:
        folder = Path(given["out"]) if "out" in given else \
            Path("runs") / (given.get("preset", TrainArgs.preset) or "custom")
        if folder.exists() and not folder.is_dir():
            raise _UsageError(f"--out {folder} is a file, not a folder; choose another --out")
    return folder


def _check_data(path) -> None:
    if path is None:
        raise _UsageError("no training data: pass --data PATH (a CIFAR archive or folder, "
                          "e.g. ../shared/data/cifar10-jpeg-binary.tar.gz)")
    if not Path(path).exists():
        raise _UsageError(f"--data {path}: no such file or folder")


def _start(given: dict, overwrite: bool):
    from .trainer import Trainer
    given = dict(given)
    args = recipe_args(given.pop("recipe", "anchor"), **given)
    if "out" not in given:
        args.out = str(_run_folder(None, given))
    _check_data(args.data)
    args.data = str(Path(args.data).resolve())     # resume and eval work from any folder
    if args.init is not None:
        _fine_tuning(args, given)
    args.model_config()                      # unknown preset / bad config: fail before loading
    args.validate()
    if (Path(args.out) / LAST).exists() and not overwrite:
        raise _UsageError(f"{args.out} already holds a run ({LAST}); continue it with "
                          f"--resume {args.out}, or pass --overwrite, or choose another --out")
    return Trainer(args)


def _fine_tuning(args: TrainArgs, given: dict) -> None:
    """--init: the model is the weights' own unless --preset/--config name one; with
    --reset-head its classifier gets the data's number of classes (train/finetune.py)."""
    from ..datasets import open_source
    from .finetune import init_config
    args.init = str(Path(args.init).resolve())
    if "preset" not in given and "config" not in given:
        args.config, args.preset = init_config(args.init), None
    config = args.model_config()
    classes = open_source(args.dataset or args.model_spec().dataset, args.data).num_classes
    if args.reset_head:
        args.config = {**config, "num_classes": classes}
    elif classes != config["num_classes"]:
        raise _UsageError(f"--init {args.init}: the weights classify {config['num_classes']} "
                          f"classes, the data has {classes}; add --reset-head for a new "
                          f"classifier")


def _resume(run_dir, given: dict):
    from .checkpoint import load_checkpoint
    from .checkpoint import check_resumable
    from .trainer import Trainer
    path = Path(run_dir) / LAST
    if not path.is_file():
        raise _UsageError(f"--resume {run_dir}: no {LAST} there, nothing to resume (a run "
                          f"writes it as it starts: this one never started; start it again)")
    ckpt = check_resumable(load_checkpoint(path), path)
    saved = ckpt["args"]
    for key, value in given.items():
        if key in _RESUMABLE or key == "out":
            continue
        if key not in saved or saved[key] != value:
            flag = "--" + key.replace("_", "-")
            raise _UsageError(f"{flag} {value!r} differs from the run in {run_dir} "
                              f"({saved.get(key)!r}); a resumed run keeps its settings: drop "
                              f"the flag, or start a new run with another --out")
    if "out" in given and Path(given["out"]).resolve() != Path(run_dir).resolve():
        raise _UsageError(f"--out {given['out']} and --resume {run_dir} differ; a run is "
                          f"resumed in place (drop --out)")
    if ckpt.get("progress", {}).get("finished"):
        raise _UsageError(f"the run in {run_dir} is already finished "
                          f"({ckpt['progress']['epoch']} epochs); evaluate it with "
                          f"'python -m npsnn eval --checkpoint {Path(run_dir) / BEST}'")
    data = given.get("data", saved.get("data"))
    _check_data(data)
    trainer = Trainer.resume(run_dir, data_path=data,
                             **({"progress": given["progress"]} if "progress" in given else {}))
    if "eval_batch" in given:
        trainer.args.eval_batch = given["eval_batch"]
        trainer.args.validate()
    return trainer


# -- eval ------------------------------------------------------------------------------------
def eval_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m npsnn eval",
        description="Evaluate a checkpoint written by 'python -m npsnn train' (or the "
                    "quickstart): top-1 accuracy and cross-entropy of the T-averaged logits, "
                    "in eval mode (BN running statistics).")
    p.add_argument("--checkpoint", required=True, metavar="FILE",
                   help="a checkpoint .npz, or a run folder (its best.npz, else last.npz)")
    p.add_argument("--data", metavar="PATH",
                   help="CIFAR archive or folder [default: the one the run was trained on]")
    p.add_argument("--split", choices=("test", "train"), default="test",
                   help="which split to evaluate [default: test]")
    p.add_argument("--batch", type=int, default=250, help="batch size [default: 250]")
    p.add_argument("--T", type=int, default=None,
                   help="time steps [default: the T the run was trained with]")
    p.add_argument("--subset", type=int, default=None, metavar="N",
                   help="evaluate the first N images only [default: all]")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    add_threads_argument(p)
    return p


def eval_main(argv=None) -> int:
    prog = "npsnn eval"
    ns, code = _parse(eval_parser(), sys.argv[1:] if argv is None else argv)
    if ns is None:
        return code
    from ..models import spec_of
    from .checkpoint import CheckpointError, load_model
    from .data import check_fits, open_data
    from .evaluate import evaluate
    from .memory import check_memory
    try:
        path = Path(ns.checkpoint)
        if path.is_dir():
            path = path / BEST if (path / BEST).is_file() else path / LAST
        model, info = load_model(path)
        args = info.get("args", {})
        data = ns.data if ns.data is not None else args.get("data")
        _check_data(data)
        T = ns.T if ns.T is not None else int(args.get("T", 4))
        for name, value in (("--batch", ns.batch), ("--T", T), ("--subset", ns.subset)):
            if value is not None and value < 1:
                raise _UsageError(f"{name} must be a positive integer, got {value}")
        spec = spec_of(model.config)
        source = open_data(None, dataset=args.get("dataset"), path=data, spec=spec,
                           config=model.config)
        check_fits(spec, model.config, source, splits=(ns.split,))
        images, labels = source.split(ns.split)
        if ns.subset is not None:
            images, labels = images[:ns.subset], labels[:ns.subset]
        steps = T if spec.time_axis else 1
        batch = min(ns.batch, len(images))
        check_memory(model, source, images, steps, batch, train=False,
                     what=f"an evaluation batch ({f'--T {T}, ' if spec.time_axis else ''}"
                          f"--batch {batch})")
        tuning = tune_process(ns.threads)
    except (_UsageError, ValueError, TypeError, OSError, KeyError, CheckpointError) as e:
        return _fail(prog, e)
    except MemoryError:
        return _fail(prog, SETUP_MEMORY)
    print(describe(tuning), file=sys.stderr if ns.json else sys.stdout)  # --json: one object
    try:
        acc, loss = evaluate(model, images, labels, T, batch=ns.batch, source=source)
    except MemoryError:
        return _fail(prog, "ran out of memory during the evaluation: lower --batch or --T")
    result = dict(checkpoint=str(path), split=ns.split, images=int(len(labels)), T=T,
                  top1=acc, loss=loss)
    if ns.json:
        print(json.dumps(result))
    else:
        steps = f"T={T}" if spec.time_axis else "no time axis"
        print(f"{path}: top-1 {acc:.2f}%, loss {loss:.4f} on {len(labels)} {ns.split} images "
              f"({steps})")
    return 0
