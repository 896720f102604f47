"""Training recipes: named sets of TrainArgs values, and the optimizer and schedule they name.

A recipe is data: a dict of :class:`~npsnn.train.args.TrainArgs` fields (:data:`RECIPES`),
with where each value comes from (:data:`SOURCES`). ``python -m npsnn train --recipe NAME``
starts from it; any flag given on the command line overrides one value. The run's
checkpoint records the recipe name and every resolved value.

* ``anchor`` (the default): the PyTorch anchor of ``../shared/perf/README.md``, the recipe
  of every CIFAR-10 result in the README: SGD with Nesterov momentum 0.9, weight decay 5e-4
  on every parameter (BN included), PyTorch's ``OneCycleLR`` (max lr 0.1, ``pct_start``
  0.15, momentum cycled 0.95 -> 0.85 -> 0.95) stepped per batch, label smoothing 0.1,
  random crop (pad 4) + flip, T = 4, batch 64, 8 epochs.
* ``official``: what the official mixer-snn ``train.py`` does with the arguments of its
  README command (EMI-Group/mixer-snn, commit e23e763): SGD, momentum 0.9, *no* Nesterov,
  weight decay 0 (the argparse default; the README command does not set it), lr 0.1,
  ``CosineAnnealingLR`` stepped once per epoch with no warm-up (``--lr-warmup-epochs 0``),
  soft-target cross-entropy on the T-averaged logits against Mixup (alpha 0.8) / CutMix
  (alpha 1.0) targets with label smoothing 0.1 (probability 1, switch probability 0.5, one
  mixing per batch), T = 4, batch 64 per process, 100 epochs. docs/interop.md lists the
  source line of each value and what this recipe does not reproduce (8 processes, so a
  global batch of 512 with per-process BN statistics; mixed precision; the 224-pixel
  RandomResizedCrop of its CIFAR pipeline, for which pass ``--image-size 224``).

* ``spikingssm``: the official SpikingSSM sequential-CIFAR configuration (shenshuaijie/SDN
  on state-spaces/s4; docs/spikingssm.md lists the files): AdamW lr 0.01, weight decay 0.01,
  cosine with a linear warm-up over the first 10% of the steps (18,000 of 180,000), batch
  50, 200 epochs, no label smoothing, no augmentation. The kernel parameters' own lr (0.001)
  and the weight-decay exemptions are declared by the model
  (``SpikingSSM.optimizer_options()``), not by the recipe. For a short CPU run keep the
  warm-up at a tenth: ``--epochs 1 --warmup-epochs 0.1``.

Values that do not change the arithmetic of a step (epochs aside) are not part of a recipe.
"""
from __future__ import annotations

from .args import TrainArgs
from .optim import SGD, AdamW
from .schedules import Constant, EpochCosine, OneCycle, WarmupCosine

#: recipe name -> TrainArgs values (every field a recipe sets; the rest keep their defaults)
RECIPES: dict[str, dict] = {
    "anchor": dict(optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True, wd=5e-4,
                   schedule="onecycle", pct_start=0.15, warmup_epochs=0.0,
                   label_smoothing=0.1, loss="ce", mixup=0.0, cutmix=0.0, mix_prob=1.0,
                   switch_prob=0.5, augment=True, T=4, batch=64, epochs=8),
    "official": dict(optimizer="sgd", lr=0.1, momentum=0.9, nesterov=False, wd=0.0,
                     schedule="epoch-cosine", pct_start=0.15, warmup_epochs=0.0,
                     label_smoothing=0.1, loss="ce", mixup=0.8, cutmix=1.0, mix_prob=1.0,
                     switch_prob=0.5, augment=True, T=4, batch=64, epochs=100),
    "spikingssm": dict(optimizer="adamw", lr=0.01, momentum=0.9, nesterov=False, wd=0.01,
                       schedule="cosine", pct_start=0.15, warmup_epochs=20.0,
                       label_smoothing=0.0, loss="ce", mixup=0.0, cutmix=0.0, mix_prob=1.0,
                       switch_prob=0.5, augment=False, T=4, batch=50, epochs=200),
}

#: recipe name -> {field: where its value comes from}
SOURCES: dict[str, dict] = {
    "anchor": {"*": "../shared/perf/README.md, 'Accuracy per CPU-hour (anchor)'"},
    "official": {
        "optimizer": "train.py set_optimizer: torch.optim.SGD; README command --opt sgd",
        "lr": "README command --lr 0.1 (argparse default 0.1)",
        "momentum": "argparse --momentum default 0.9",
        "nesterov": "set_optimizer passes no nesterov= (PyTorch default False)",
        "wd": "argparse --weight-decay default 0.0 (the README command does not set it)",
        "schedule": "set_lr_scheduler 'cosa': CosineAnnealingLR(T_max=epochs - "
                    "lr_warmup_epochs), lr_scheduler.step() once per epoch",
        "warmup_epochs": "README command --lr-warmup-epochs 0 (argparse default 10, "
                         "LinearLR start_factor 0.01)",
        "label_smoothing": "argparse --smoothing 0.1, applied inside timm Mixup",
        "loss": "set_criterion 'ce': timm SoftTargetCrossEntropy on y.mean(0)",
        "mixup": "argparse --mixup 0.8", "cutmix": "argparse --cutmix 1.0",
        "mix_prob": "argparse --mixup-prob 1.0",
        "switch_prob": "argparse --mixup-switch-prob 0.5 (mode 'batch')",
        "T": "README command --T 4", "batch": "README command --batch-size 64 (per process; "
                                              "8 processes)",
        "epochs": "README command --epochs 100 (argparse default 90)",
        "augment": "load_CIFAR10: RandomResizedCrop(224) + RandomHorizontalFlip (npsnn: "
                   "crop + flip at the model's size)",
    },
    "spikingssm": {
        "optimizer": "SDN configs/experiment/spikingssm/cifar.yaml: optimizer AdamW",
        "momentum": "AdamW betas (0.9, 0.999), PyTorch's default",
        "nesterov": "not used by AdamW",
        "lr": "SDN configs/experiment/spikingssm/cifar.yaml: optimizer.lr 0.01",
        "wd": "SDN configs/experiment/spikingssm/cifar.yaml: optimizer.weight_decay 0.01",
        "schedule": "s4 configs/scheduler/cosine_warmup.yaml: cosine with linear warm-up, "
                    "stepped per batch",
        "warmup_epochs": "SDN configs/experiment/spikingssm/cifar.yaml: 18,000 warm-up of "
                         "180,000 steps = 20 of 200 epochs",
        "label_smoothing": "s4 cross-entropy without smoothing",
        "augment": "s4 configs/dataset/cifar.yaml: augment false",
        "batch": "SDN configs/experiment/spikingssm/cifar.yaml: loader.batch_size 50",
        "epochs": "SDN configs/experiment/spikingssm/cifar.yaml: trainer.max_epochs 200",
    },
}


def recipe_args(name: str, **overrides) -> TrainArgs:
    """The TrainArgs of recipe ``name`` with ``overrides`` applied (and ``recipe=name``)."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; known recipes: {', '.join(RECIPES)}")
    return TrainArgs(**{**RECIPES[name], "recipe": name, **overrides})


def make_optimizer(model, args: TrainArgs):
    """The optimizer over every parameter of ``model``, with the per-parameter lr and weight
    decay the model declares (``model.optimizer_options()``, if it has one)."""
    options = model.optimizer_options() if hasattr(model, "optimizer_options") else None
    if args.optimizer == "sgd":
        return SGD(model, lr=args.lr, momentum=args.momentum, weight_decay=args.wd,
                   nesterov=args.nesterov, param_options=options)
    return AdamW(model, lr=args.lr, betas=(args.momentum, 0.999), weight_decay=args.wd,
                 param_options=options)


def make_schedule(optimizer, args: TrainArgs, batches_per_epoch: int, total_steps: int):
    """The per-step learning-rate schedule of a run of ``total_steps`` steps."""
    if args.schedule == "onecycle":
        return OneCycle(optimizer, args.lr, total_steps, pct_start=args.pct_start)
    if args.schedule == "cosine":
        warm = int(round(args.warmup_epochs * batches_per_epoch))
        return WarmupCosine(optimizer, args.lr, total_steps,
                            warmup_steps=min(warm, total_steps - 1))
    if args.schedule == "epoch-cosine":
        return EpochCosine(optimizer, args.lr, total_steps, batches_per_epoch,
                           warmup_epochs=int(args.warmup_epochs))
    return Constant(optimizer, args.lr, total_steps)
