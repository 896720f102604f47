"""The settings of a training run: :class:`TrainArgs` (saved in every checkpoint).

The defaults are the PyTorch anchor recipe of ``../shared/perf/README.md``: SGD with
Nesterov momentum, weight decay 5e-4 on every parameter, OneCycle (max lr 0.1, 15% warm-up),
label smoothing 0.1, random crop (pad 4) + flip, T = 4, batch 64. Named recipes (the
anchor, the official mixer-snn one) are in ``train/recipe.py``.
"""
from __future__ import annotations

import dataclasses
import math
import os

import numpy as np

from ..models import resolve_config, spec_of


@dataclasses.dataclass
class TrainArgs:
    """Every setting of a run; saved in each checkpoint (``args``) and restored on resume.

    The defaults are the PyTorch anchor recipe of ``../shared/perf/README.md``.
    """
    preset: str | None = "cifar10-p4-d48"   # a preset name, or None when ``config`` is given
    config: dict | None = None              # a full model config (overrides ``preset``)
    data: str | None = None                 # CIFAR archive or folder (see npsnn.datasets)
    dataset: str | None = None              # a key of npsnn.datasets.DATASETS (None: the
                                            # model's default, ModelSpec.dataset)
    out: str = "runs/train"
    epochs: int = 8
    T: int = 4
    batch: int = 64
    eval_batch: int = 250
    optimizer: str = "sgd"                  # "sgd" | "adamw"
    lr: float = 0.1                         # peak lr (onecycle), base lr (cosine, constant)
    momentum: float = 0.9                   # SGD momentum / AdamW beta1 (cycled by onecycle)
    nesterov: bool = True
    wd: float = 5e-4                        # on every parameter, BN included (as the anchor)
    schedule: str = "onecycle"              # "onecycle" | "cosine" | "epoch-cosine" | "constant"
    pct_start: float = 0.15                 # onecycle: fraction of steps spent warming up
    warmup_epochs: float = 0.0              # cosine / epoch-cosine: linear warm-up length
    label_smoothing: float = 0.1
    loss: str = "ce"                        # "ce" (on T-averaged logits) | "tet"
    tet_lambda: float = 0.05
    augment: bool = True                    # random crop (pad 4) + horizontal flip
    cutout: int = 0                         # cutout square side in pixels (0: off)
    recipe: str = "anchor"                  # the named recipe these values started from
    mixup: float = 0.0                      # Mixup alpha (0: off), datasets/mixing.py
    cutmix: float = 0.0                     # CutMix alpha (0: off)
    mix_prob: float = 1.0                   # probability that a batch is mixed
    switch_prob: float = 0.5                # CutMix instead of Mixup when both are on
    init: str | None = None                 # start from these weights (.npz or .pth)
    reset_head: bool = False                # with init: a new classifier (other classes)
    image_size: int | None = None           # resize the data to S x S (model built for S)
    seed: int = 0
    train_subset: int | None = None         # train on this many images (seeded choice)
    test_subset: int | None = None          # evaluate on the first this-many test images
    eval_every: int = 1                     # evaluate every N epochs (and after the last)
    checkpoint_every: int = 200             # also write last.npz every K steps (0: off)
    log_every: int = 50                     # a "train" line in metrics.jsonl every N steps
    progress: bool = True                   # tqdm progress bar

    def validate(self) -> "TrainArgs":
        def need(cond, msg):
            if not cond:
                raise ValueError(msg)

        def pos_int(name, allow_zero=False, allow_none=False):
            v = getattr(self, name)
            if v is None and allow_none:
                return
            ok = isinstance(v, (int, np.integer)) and not isinstance(v, bool) and \
                (v >= 0 if allow_zero else v >= 1)
            need(ok, f"{name} must be a {'non-negative' if allow_zero else 'positive'} "
                     f"integer, got {v!r}")

        for name in ("epochs", "T", "batch", "eval_batch", "eval_every", "log_every"):
            pos_int(name)
        for name in ("train_subset", "test_subset"):
            pos_int(name, allow_none=True)
        for name in ("cutout", "checkpoint_every", "seed"):
            pos_int(name, allow_zero=True)
        for name in ("lr", "momentum", "wd", "pct_start", "warmup_epochs", "label_smoothing",
                     "tet_lambda", "mixup", "cutmix", "mix_prob", "switch_prob"):
            v = getattr(self, name)
            need(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                 and math.isfinite(v), f"{name} must be a finite number, got {v!r}")
        for name in ("nesterov", "augment", "progress", "reset_head"):
            need(isinstance(getattr(self, name), (bool, np.bool_)),
                 f"{name} must be true or false, got {getattr(self, name)!r}")
        for name in ("out", "data", "init"):         # a Path is fine; checkpoints hold str
            if isinstance(getattr(self, name), os.PathLike):
                setattr(self, name, os.fspath(getattr(self, name)))
        for name in ("preset", "data", "dataset", "init", "recipe"):
            v = getattr(self, name)
            need(v is None or isinstance(v, str), f"{name} must be a string, got {v!r}")
        need(isinstance(self.out, str) and self.out, f"out must be a folder name, got "
                                                      f"{self.out!r}")
        need(self.config is None or isinstance(self.config, dict),
             f"config must be a dict, got {type(self.config).__name__}")
        need(self.optimizer in ("sgd", "adamw"),
             f"optimizer must be 'sgd' or 'adamw', got {self.optimizer!r}")
        need(self.schedule in ("onecycle", "cosine", "epoch-cosine", "constant"),
             f"schedule must be 'onecycle', 'cosine', 'epoch-cosine' or 'constant', got "
             f"{self.schedule!r}")
        pos_int("image_size", allow_none=True)
        need(self.mixup >= 0 and self.cutmix >= 0,
             f"mixup and cutmix alphas must be >= 0, got {self.mixup!r}, {self.cutmix!r}")
        need(0 <= self.mix_prob <= 1 and 0 <= self.switch_prob <= 1,
             f"mix_prob and switch_prob must be in [0, 1], got {self.mix_prob!r}, "
             f"{self.switch_prob!r}")
        need(not (self.loss == "tet" and (self.mixup or self.cutmix)),
             "TET takes hard labels: Mixup / CutMix need --loss ce (or --mixup 0 --cutmix 0)")
        need(not self.reset_head or self.init,
             "--reset-head replaces the classifier of --init weights: pass --init too")
        need(self.loss in ("ce", "tet"), f"loss must be 'ce' or 'tet', got {self.loss!r}")
        need(self.lr > 0, f"lr must be > 0, got {self.lr!r}")
        need(self.wd >= 0, f"wd must be >= 0, got {self.wd!r}")
        need(0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum!r}")
        need(0 <= self.label_smoothing < 1,
             f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        need(0 < self.pct_start < 1, f"pct_start must be in (0, 1), got {self.pct_start!r}")
        need(self.warmup_epochs >= 0, f"warmup_epochs must be >= 0, got {self.warmup_epochs!r}")
        need(self.tet_lambda >= 0, f"tet_lambda must be >= 0, got {self.tet_lambda!r}")
        need(not (self.nesterov and self.optimizer == "sgd" and self.momentum == 0),
             "nesterov needs momentum > 0 (pass --no-nesterov or a momentum)")
        need(self.preset is not None or self.config is not None,
             "give a preset name or a model config")
        return self

    def model_config(self) -> dict:
        config = resolve_config(self.config if self.config is not None else self.preset)
        if self.image_size is not None and config.get("image_size") != self.image_size:
            config = resolve_config({**config, "image_size": self.image_size})
        return config


    def model_spec(self):
        """The :class:`~npsnn.models.ModelSpec` of the run's model."""
        return spec_of(self.model_config())
