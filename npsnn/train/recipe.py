"""A training recipe: the optimizer and learning-rate schedule that :class:`TrainArgs` names.

The default is the PyTorch anchor recipe of ``../shared/perf/README.md``: SGD with Nesterov
momentum 0.9, weight decay 5e-4 on every parameter (BN included), PyTorch's ``OneCycleLR``
(max lr 0.1, ``pct_start`` 0.15, momentum cycled 0.95 -> 0.85 -> 0.95), stepped per batch.
AdamW (decoupled decay, betas (momentum, 0.999)), cosine with a linear warm-up, and a
constant lr are the alternatives.
"""
from __future__ import annotations

from .args import TrainArgs
from .optim import SGD, AdamW
from .schedules import Constant, OneCycle, WarmupCosine


def make_optimizer(model, args: TrainArgs):
    """The optimizer over every parameter of ``model``."""
    if args.optimizer == "sgd":
        return SGD(model, lr=args.lr, momentum=args.momentum, weight_decay=args.wd,
                   nesterov=args.nesterov)
    return AdamW(model, lr=args.lr, betas=(args.momentum, 0.999), weight_decay=args.wd)


def make_schedule(optimizer, args: TrainArgs, batches_per_epoch: int, total_steps: int):
    """The per-step learning-rate schedule of a run of ``total_steps`` steps."""
    if args.schedule == "onecycle":
        return OneCycle(optimizer, args.lr, total_steps, pct_start=args.pct_start)
    if args.schedule == "cosine":
        warm = int(round(args.warmup_epochs * batches_per_epoch))
        return WarmupCosine(optimizer, args.lr, total_steps,
                            warmup_steps=min(warm, total_steps - 1))
    return Constant(optimizer, args.lr, total_steps)
