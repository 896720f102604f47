"""Optimizers with PyTorch's update rules, over a model's parameters by official name.

SGD (``torch.optim.SGD``), with weight decay wd, momentum mu, dampening 0::

    g = grad + wd p
    b = g                      (first step)       b = mu b + g   (later steps)
    d = g + mu b  (nesterov)   or   d = b
    p -= lr d

AdamW (``torch.optim.AdamW``), decoupled weight decay::

    p -= lr wd p
    m = b1 m + (1 - b1) g,     v = b2 v + (1 - b2) g^2,     k = step count
    p -= lr (m / (1 - b1^k)) / (sqrt(v / (1 - b2^k)) + eps)

Each optimizer keeps its state (momentum buffers, moments, step count) in plain arrays by
parameter name, so ``state_dict()`` / ``load_state_dict()`` round-trip through ``.npz``
bit-exactly (exact resume). ``lr`` and ``momentum`` / ``betas`` are attributes a schedule
may set before each step.

**Per-parameter settings** (PyTorch's parameter groups). ``param_options`` maps parameter
names to ``{"lr": ..., "weight_decay": ...}`` (either key optional); a model declares them
in ``model.optimizer_options()`` (e.g. SpikingSSM: the SSM dynamics with lr 0.001 and no
weight decay, as the official training sets them) and the trainer passes them on. A
parameter's own lr follows the schedule in proportion, ``lr_p(k) = lr(k) lr_p / lr``, as
every parameter group does under PyTorch's ``LambdaLR``-based schedules (cosine with
warm-up); its own weight decay replaces the run's.
"""
from __future__ import annotations

import numpy as np


class Optimizer:
    def __init__(self, model, lr: float, weight_decay: float = 0.0,
                 param_options: dict | None = None) -> None:
        if not lr >= 0:
            raise ValueError(f"{type(self).__name__} expected lr >= 0, got {lr!r}")
        if not weight_decay >= 0:
            raise ValueError(f"{type(self).__name__} expected weight_decay >= 0, got "
                             f"{weight_decay!r}")
        self.model = model
        self.lr = float(lr)
        self.base_lr = float(lr)            # the lr that per-parameter lrs are relative to
        self.weight_decay = float(weight_decay)
        self.step_count = 0
        self.state: dict[str, np.ndarray] = {}      # "<slot>/<param name>" -> array
        self.param_options = self._check_options(param_options or {})

    def _check_options(self, options: dict) -> dict:
        owner = type(self).__name__
        names = {name for name, _, _ in self._params()}
        unknown = sorted(set(options) - names)
        if unknown:
            raise ValueError(f"{owner} param_options name parameters the model does not have: "
                             f"{unknown[:5]}")
        out = {}
        for name, opts in options.items():
            bad = sorted(set(opts) - {"lr", "weight_decay"})
            if bad:
                raise ValueError(f"{owner} param_options[{name!r}] may set 'lr' and "
                                 f"'weight_decay' only, got {bad}")
            if not all(v >= 0 for v in opts.values()):
                raise ValueError(f"{owner} param_options[{name!r}] must be >= 0, got {opts}")
            if "lr" in opts and self.base_lr == 0:
                raise ValueError(f"{owner} with lr 0 cannot scale the own lr of {name!r}")
            out[name] = {k: float(v) for k, v in opts.items()}
        return out

    def _params(self):
        """(name, parameter, gradient) for every parameter, in a fixed order."""
        for path, module in self.model.named_modules():
            for name, p in module.params.items():
                yield (f"{path}.{name}" if path else name), p, module.grads[name]

    def step(self) -> None:
        self.step_count += 1
        for name, p, g in self._params():
            opts = self.param_options.get(name)
            if opts is None:
                self._update(name, p, g, self.lr, self.weight_decay)
            else:
                lr = self.lr * opts["lr"] / self.base_lr if "lr" in opts else self.lr
                self._update(name, p, g, lr, opts.get("weight_decay", self.weight_decay))

    def _update(self, name, p, g, lr, weight_decay):  # pragma: no cover - abstract
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        out = {f"state/{k}": v.copy() for k, v in self.state.items()}
        out["step_count"] = np.array(self.step_count, np.int64)
        return out

    #: the state slots of this optimizer ("<slot>/<param name>")
    SLOTS: tuple = ()

    def load_state_dict(self, arrays) -> None:
        """Restore ``state_dict()``'s arrays; everything is checked first (a step count, one
        finite array per slot and parameter, of the parameter's shape and dtype), and on an
        error (ValueError naming the keys) nothing changes."""
        name = type(self).__name__
        count = arrays.get("step_count")
        if count is None or np.shape(count) != () or np.asarray(count).dtype.kind not in "iu" \
                or int(count) < 0:
            raise ValueError(f"{name}.load_state_dict: 'step_count' is missing or not a "
                             f"non-negative integer")
        params = {n: p for n, p, _ in self._params()}
        state, bad = {}, []
        for key, value in arrays.items():
            if key == "step_count":
                continue
            slot, _, param = key[len("state/"):].partition("/")
            p = params.get(param)
            value = np.asarray(value)
            if not key.startswith("state/") or slot not in self.SLOTS or p is None:
                bad.append(f"{key} (not a state of this optimizer and model)")
            elif value.shape != p.shape or value.dtype != p.dtype:
                bad.append(f"{key} ({value.dtype} {value.shape}, the parameter is "
                           f"{p.dtype} {p.shape})")
            elif not np.isfinite(value).all():
                bad.append(f"{key} (NaN/inf)")
            else:
                state[key[len("state/"):]] = value.copy()
        if bad:
            raise ValueError(f"{name}.load_state_dict: {', '.join(bad[:3])}"
                             f"{f' and {len(bad) - 3} more' if len(bad) > 3 else ''}; "
                             f"nothing was loaded")
        self.step_count = int(count)
        self.state = state


class SGD(Optimizer):
    SLOTS = ("momentum",)

    def __init__(self, model, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False, param_options: dict | None = None) -> None:
        super().__init__(model, lr, weight_decay, param_options)
        if not momentum >= 0:
            raise ValueError(f"SGD expected momentum >= 0, got {momentum!r}")
        if nesterov and momentum == 0:
            raise ValueError("SGD with nesterov=True needs momentum > 0")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    def _update(self, name, p, g, lr, weight_decay):
        dt = p.dtype.type
        d = g + dt(weight_decay) * p if weight_decay else g.copy()
        if self.momentum:
            key = "momentum/" + name
            buf = self.state.get(key)
            if buf is None:
                buf = self.state[key] = d.copy()
            else:
                buf *= dt(self.momentum)
                buf += d
            if self.nesterov:
                d += dt(self.momentum) * buf
            else:
                d = buf
        p -= dt(lr) * d


class AdamW(Optimizer):
    SLOTS = ("exp_avg", "exp_avg_sq")

    def __init__(self, model, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, param_options: dict | None = None) -> None:
        super().__init__(model, lr, weight_decay, param_options)
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"AdamW expected betas in [0, 1), got {betas!r}")
        if not eps > 0:
            raise ValueError(f"AdamW expected eps > 0, got {eps!r}")
        self.betas = (float(b1), float(b2))
        self.eps = float(eps)

    def _update(self, name, p, g, lr, weight_decay):
        dt = p.dtype.type
        b1, b2 = self.betas
        k = self.step_count
        if weight_decay:
            p *= dt(1 - lr * weight_decay)
        m = self.state.setdefault("exp_avg/" + name, np.zeros_like(p))
        v = self.state.setdefault("exp_avg_sq/" + name, np.zeros_like(p))
        m *= dt(b1)
        m += dt(1 - b1) * g
        v *= dt(b2)
        v += dt(1 - b2) * g * g
        denom = np.sqrt(v / dt(1 - b2 ** k))
        denom += dt(self.eps)
        p -= dt(lr / (1 - b1 ** k)) * m / denom
