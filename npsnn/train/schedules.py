"""Learning-rate (and momentum) schedules, stepped once per batch.

A schedule owns a step counter ``k`` (the number of optimizer steps taken so far) and
writes ``lr`` -- and, for one-cycle, the momentum -- into the optimizer before each step,
exactly like a PyTorch ``LRScheduler``::

    sched = OneCycle(opt, max_lr=0.1, total_steps=epochs * steps_per_epoch, pct_start=0.15)
    for batch in ...:                 # step k: opt.lr == sched.lr_at(k)
        ...; opt.step(); sched.step()

The values are pure functions of ``k`` (``lr_at(k)``, ``momentum_at(k)``), so the whole
state is ``k``: ``state_dict()`` / ``load_state_dict()`` restore it exactly (resume).

**OneCycle** reproduces ``torch.optim.lr_scheduler.OneCycleLR`` (``three_phase=False``)
to the last bit of the float64 arithmetic. With ``a = max_lr / div_factor`` (initial),
``z = a / final_div_factor`` (final), ``e1 = pct_start * total_steps - 1`` and
``e2 = total_steps - 1``::

    cos_anneal(s, e, p) = e + (s - e) / 2 * (cos(pi p) + 1)
    k <= e1:  p = k / e1                 lr = cos_anneal(a, max_lr, p)
                                         m  = cos_anneal(m_max, m_base, p)
    k >  e1:  p = (k - e1) / (e2 - e1)   lr = cos_anneal(max_lr, z, p)
                                         m  = cos_anneal(m_base, m_max, p)

Momentum (SGD's ``momentum`` or AdamW's ``beta1``) is cycled ``0.95 -> 0.85 -> 0.95`` by
default (``cycle_momentum``), opposite to the learning rate. When
``pct_start * total_steps < 1`` the warm-up phase lies before step 0 and, as in PyTorch,
the run starts part-way down the anneal. ``three_phase=True`` adds
PyTorch's symmetric third phase; ``anneal="linear"`` its linear interpolation.

**WarmupCosine**: linear warm-up over ``W`` steps, then a half cosine to ``min_lr``::

    k <  W:   lr = base_lr (k + 1) / W
    k >= W:   lr = min_lr + (base_lr - min_lr) (1 + cos(pi (k - W) / (total_steps - W))) / 2

**EpochCosine**: the official mixer-snn schedule, stepped once per *epoch* as its
``train.py`` does (``CosineAnnealingLR(T_max = epochs - W)``, after ``W`` warm-up epochs of
``LinearLR(start_factor=f)`` joined by ``SequentialLR``). Every step of epoch
``e = k // steps_per_epoch`` uses::

    e <  W:   lr = base_lr (f + (1 - f) e / W)
    e >= W:   lr = base_lr (1 + cos(pi (e - W) / (epochs - W))) / 2

(PyTorch computes the cosine recursively from the previous epoch's value; the closed form
here equals it to rounding.)

**Constant**: ``lr = base_lr`` (handy for tests and for fine-tuning).
"""
from __future__ import annotations

import math

import numpy as np


def _cos_anneal(start: float, end: float, pct: float) -> float:
    """Cosine from ``start`` (pct 0) to ``end`` (pct 1); PyTorch's exact expression."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def _linear_anneal(start: float, end: float, pct: float) -> float:
    return (end - start) * pct + start


def _positive_int(owner: str, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{owner} expected {name} to be a positive integer, got {value!r}")
    return int(value)


class Schedule:
    """Base class: a step counter and a pure ``lr_at(k)``; subclasses define the curve."""

    def __init__(self, optimizer, total_steps: int) -> None:
        self.optimizer = optimizer
        self.total_steps = _positive_int(type(self).__name__, "total_steps", total_steps)
        self.step_count = 0
        self._apply()

    # -- the curve ----------------------------------------------------------------------
    def lr_at(self, k: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def momentum_at(self, k: int) -> float | None:
        return None

    # -- stepping -----------------------------------------------------------------------
    @property
    def lr(self) -> float:
        """The learning rate the next optimizer step uses."""
        return self.lr_at(self.step_count)

    def step(self) -> None:
        """Call after each ``optimizer.step()``: advance to the next step's values."""
        if self.step_count >= self.total_steps:
            raise ValueError(f"{type(self).__name__} was stepped {self.step_count + 1} times, "
                             f"but total_steps is {self.total_steps}; build the schedule "
                             f"with total_steps = epochs * batches_per_epoch")
        self.step_count += 1
        self._apply()

    def _apply(self) -> None:
        # Like PyTorch, the curve is also evaluated once past the end (k = total_steps);
        # no optimizer step uses that value.
        k = self.step_count
        self.optimizer.lr = self.lr_at(k)
        m = self.momentum_at(k)
        if m is not None:
            _set_momentum(self.optimizer, m)

    # -- state --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        return {"step_count": np.array(self.step_count, np.int64),
                "total_steps": np.array(self.total_steps, np.int64)}

    def load_state_dict(self, arrays) -> None:
        total = int(arrays["total_steps"])
        if total != self.total_steps:
            raise ValueError(f"{type(self).__name__}.load_state_dict: the saved schedule has "
                             f"total_steps {total}, this one {self.total_steps}; resume with "
                             f"the same epochs, batch size and training-set size")
        self.step_count = int(arrays["step_count"])
        self._apply()


def _set_momentum(optimizer, m: float) -> None:
    """Write a cycled momentum: SGD ``momentum``, or ``beta1`` of Adam-type ``betas``."""
    if hasattr(optimizer, "betas"):
        optimizer.betas = (float(m),) + tuple(optimizer.betas[1:])
    elif hasattr(optimizer, "momentum"):
        optimizer.momentum = float(m)
    else:
        raise ValueError(f"cycle_momentum needs an optimizer with 'momentum' or 'betas', "
                         f"{type(optimizer).__name__} has neither; pass cycle_momentum=False")


class Constant(Schedule):
    def __init__(self, optimizer, base_lr: float, total_steps: int) -> None:
        self.base_lr = float(base_lr)
        super().__init__(optimizer, total_steps)

    def lr_at(self, k: int) -> float:
        return self.base_lr


class WarmupCosine(Schedule):
    """Linear warm-up for ``warmup_steps`` steps, then cosine decay to ``min_lr``."""

    def __init__(self, optimizer, base_lr: float, total_steps: int, warmup_steps: int = 0,
                 min_lr: float = 0.0) -> None:
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, (int, np.integer)) \
                or not 0 <= warmup_steps < total_steps:
            raise ValueError(f"WarmupCosine expected 0 <= warmup_steps < total_steps = "
                             f"{total_steps}, got {warmup_steps!r}")
        if not 0 <= min_lr <= base_lr:
            raise ValueError(f"WarmupCosine expected 0 <= min_lr <= base_lr = {base_lr}, got "
                             f"{min_lr!r}")
        self.base_lr, self.min_lr = float(base_lr), float(min_lr)
        self.warmup_steps = int(warmup_steps)
        super().__init__(optimizer, total_steps)

    def lr_at(self, k: int) -> float:
        W = self.warmup_steps
        if k < W:
            return self.base_lr * (k + 1) / W
        pct = (k - W) / (self.total_steps - W)
        return self.min_lr + (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * pct)) / 2


class OneCycle(Schedule):
    """PyTorch ``OneCycleLR`` (see the module docstring for the equations)."""

    def __init__(self, optimizer, max_lr: float, total_steps: int, pct_start: float = 0.3,
                 anneal: str = "cos", cycle_momentum: bool = True, base_momentum: float = 0.85,
                 max_momentum: float = 0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False) -> None:
        total_steps = _positive_int("OneCycle", "total_steps", total_steps)
        if not 0 <= pct_start <= 1:
            raise ValueError(f"OneCycle expected pct_start in [0, 1], got {pct_start!r}")
        if anneal not in ("cos", "linear"):
            raise ValueError(f"OneCycle expected anneal 'cos' or 'linear', got {anneal!r}")
        if not (max_lr > 0 and div_factor > 0 and final_div_factor > 0):
            raise ValueError("OneCycle expected max_lr, div_factor and final_div_factor > 0, "
                             f"got {max_lr!r}, {div_factor!r}, {final_div_factor!r}")
        self.max_lr = float(max_lr)
        self.initial_lr = self.max_lr / div_factor
        self.min_lr = self.initial_lr / final_div_factor
        self.pct_start = float(pct_start)
        self.cycle_momentum = bool(cycle_momentum)
        self.base_momentum, self.max_momentum = float(base_momentum), float(max_momentum)
        self._anneal = _cos_anneal if anneal == "cos" else _linear_anneal
        a, M, z = self.initial_lr, self.max_lr, self.min_lr
        mb, mm = self.base_momentum, self.max_momentum
        e1 = float(pct_start * total_steps) - 1
        if three_phase:
            self.phases = [(e1, a, M, mm, mb),
                           (float(2 * pct_start * total_steps) - 2, M, a, mb, mm),
                           (total_steps - 1, a, z, mm, mm)]
        else:
            self.phases = [(e1, a, M, mm, mb), (total_steps - 1, M, z, mb, mm)]
        super().__init__(optimizer, total_steps)

    def _locate(self, k: int):
        start = 0.0
        for i, (end, *values) in enumerate(self.phases):
            if k <= end or i == len(self.phases) - 1:
                # A phase of zero length (pct_start * total_steps == 1) makes PyTorch divide
                # by zero; we take it as already finished.
                return ((k - start) / (end - start) if end != start else 1.0), values
            start = end
        raise AssertionError("unreachable")

    def lr_at(self, k: int) -> float:
        pct, (lr0, lr1, _, _) = self._locate(k)
        return self._anneal(lr0, lr1, pct)

    def momentum_at(self, k: int) -> float | None:
        if not self.cycle_momentum:
            return None
        pct, (_, _, m0, m1) = self._locate(k)
        return self._anneal(m0, m1, pct)


class EpochCosine(Schedule):
    """Per-epoch cosine with linear warm-up, as the official ``train.py`` (see the module
    docstring); ``total_steps`` must be ``epochs * steps_per_epoch``."""

    def __init__(self, optimizer, base_lr: float, total_steps: int, steps_per_epoch: int,
                 warmup_epochs: int = 0, warmup_factor: float = 0.01) -> None:
        self.steps_per_epoch = _positive_int("EpochCosine", "steps_per_epoch", steps_per_epoch)
        if total_steps % self.steps_per_epoch:
            raise ValueError(f"EpochCosine expected total_steps ({total_steps}) to be a "
                             f"whole number of epochs of {steps_per_epoch} steps")
        self.epochs = total_steps // self.steps_per_epoch
        if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, (int, np.integer)) \
                or not 0 <= warmup_epochs < self.epochs:
            raise ValueError(f"EpochCosine expected 0 <= warmup_epochs < epochs = "
                             f"{self.epochs}, got {warmup_epochs!r}")
        if not 0 < warmup_factor <= 1:
            raise ValueError(f"EpochCosine expected warmup_factor in (0, 1], got "
                             f"{warmup_factor!r}")
        self.base_lr, self.warmup_factor = float(base_lr), float(warmup_factor)
        self.warmup_epochs = int(warmup_epochs)
        super().__init__(optimizer, total_steps)

    def lr_at(self, k: int) -> float:
        e, W = k // self.steps_per_epoch, self.warmup_epochs
        if e < W:
            f = self.warmup_factor
            return self.base_lr * (f + (1 - f) * e / W)
        return self.base_lr * (1 + math.cos(math.pi * (e - W) / (self.epochs - W))) / 2


SCHEDULES = ("onecycle", "cosine", "epoch-cosine", "constant")
