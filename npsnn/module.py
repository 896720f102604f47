"""The layer base class: owns parameters, gradients, buffers and child layers.

A layer wraps a pure ``forward(...) -> (out, cache)`` / ``backward(dout, cache)``
pair: ``Layer.forward`` keeps the cache, ``Layer.backward`` consumes it, returns the
input gradient and *accumulates* parameter gradients into ``self.grads`` (so several
backward calls add up, as in PyTorch; call ``zero_grad`` between steps).

Names compose with dots through the child tree, so a model whose tree mirrors the
official PyTorch module tree gets the official ``state_dict`` keys for free.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np


#: which array kinds load into a parameter or buffer of each kind (bool, int, uint, float)
_KINDS_INTO = {"f": "biuf", "i": "biuf", "u": "buf", "b": "b"}


class Module:
    def __init__(self) -> None:
        self.training: bool = True
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.children: dict[str, "Module"] = {}

    # -- construction -------------------------------------------------------------------
    def add_param(self, name: str, value: np.ndarray) -> np.ndarray:
        self.params[name] = value
        self.grads[name] = np.zeros_like(value)
        return value

    def add_buffer(self, name: str, value: np.ndarray) -> np.ndarray:
        self.buffers[name] = value
        return value

    def accumulate(self, **grads) -> None:
        """Add parameter gradients into ``self.grads`` (``None`` entries are skipped, e.g.
        the bias gradient of a layer built without bias)."""
        for name, g in grads.items():
            if g is not None:
                self.grads[name] += g

    def add_child(self, name: str, module: "Module") -> "Module":
        self.children[str(name)] = module
        return module

    # -- modes ------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        self.training = bool(mode)
        for child in self.children.values():
            child.train(mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    # -- traversal --------------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        yield prefix, self
        for name, child in self.children.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def _walk(self, attr: str) -> Iterator[tuple[str, np.ndarray]]:
        for path, module in self.named_modules():
            for name, value in getattr(module, attr).items():
                yield (f"{path}.{name}" if path else name), value

    def named_parameters(self) -> Iterator[tuple[str, np.ndarray]]:
        return self._walk("params")

    def named_buffers(self) -> Iterator[tuple[str, np.ndarray]]:
        return self._walk("buffers")

    def named_grads(self) -> dict[str, np.ndarray]:
        return dict(self._walk("grads"))

    def num_parameters(self) -> int:
        return int(sum(p.size for _, p in self.named_parameters()))

    def zero_grad(self) -> None:
        for _, module in self.named_modules():
            for g in module.grads.values():
                g.fill(0)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every parameter and buffer by dotted name (copies)."""
        out = {k: v.copy() for k, v in self.named_parameters()}
        out.update({k: v.copy() for k, v in self.named_buffers()})
        return dict(sorted(out.items()))

    def load_state_dict(self, arrays, strict: bool = True) -> None:
        """Copy ``arrays`` into parameters and buffers in place (dtype kept).

        Everything is checked before anything is copied, and every problem is reported by
        name in one ``ValueError`` (``TypeError`` for a value that is not an array of real
        numbers): missing, unexpected and mis-shaped keys, complex, string or object
        arrays, NaN/inf, and values that do not survive the cast to the layer's dtype (a
        float64 1e39 is inf in float32). On an error the model is unchanged.
        """
        if not hasattr(arrays, "keys"):
            raise TypeError(f"{type(self).__name__}.load_state_dict expected a dict of "
                            f"arrays, got {type(arrays).__name__}")
        targets = dict(self.named_parameters())
        targets.update(dict(self.named_buffers()))
        missing = sorted(set(targets) - set(arrays))
        unexpected = sorted(set(arrays) - set(targets))
        misshaped, wrong_kind, not_finite, converted = [], [], [], {}
        for k in sorted(set(targets) & set(arrays)):
            target = targets[k]
            try:
                value = np.asarray(arrays[k])
            except (ValueError, TypeError):           # e.g. a ragged list
                value = np.asarray(None)
            if value.dtype.kind not in _KINDS_INTO[target.dtype.kind]:
                wrong_kind.append(f"{k} ({value.dtype} into {target.dtype})")
                continue
            if value.shape != target.shape:
                misshaped.append(f"{k}: expected {target.shape}, got {value.shape}")
                continue
            with np.errstate(over="ignore", invalid="ignore"):
                cast = value.astype(target.dtype)
            if cast.dtype.kind == "f" and not np.isfinite(cast).all():
                bad = int(cast.size - np.count_nonzero(np.isfinite(cast)))
                cast_made_it = bool(np.isfinite(value).all())    # e.g. float64 1e39
                not_finite.append(f"{k} ({bad} NaN/inf" + (f" after the cast to {target.dtype}"
                                  if cast_made_it else "") + ")")
            elif cast.dtype.kind in "iu" and not np.array_equal(cast, value):
                wrong_kind.append(f"{k} ({value.dtype} values that are no {target.dtype})")
            else:
                converted[k] = cast
        problems = []
        if wrong_kind:
            problems.append("not real numbers of a compatible kind: " + ", ".join(wrong_kind))
        if misshaped:
            problems.append("mis-shaped keys: " + "; ".join(misshaped))
        if not_finite:
            problems.append("non-finite values: " + ", ".join(not_finite))
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if problems:
            error = TypeError if wrong_kind else ValueError
            raise error(f"{type(self).__name__}.load_state_dict: " + " | ".join(problems)
                        + "; nothing was loaded")
        for k, value in converted.items():
            np.copyto(targets[k], value)

    # -- the pass ---------------------------------------------------------------------------
    def forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dout):  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)
