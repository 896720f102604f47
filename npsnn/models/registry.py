"""The model registry's entry: what the rest of npsnn may know about a network.

Each network file (``npsnn/models/<name>.py``) ends with ``SPEC = ModelSpec(...)`` and
``npsnn/models/__init__.py`` lists the specs in :data:`~npsnn.models.MODELS`. Building,
config checking, the trainer, the evaluation command and the golden converter ask the spec
(never compare preset names), so a new network is one new file plus one line there.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class ModelSpec:
    """One network family.

    name: the config's ``"model"`` value (``"smlpnet"``, ``"snn-mlp"``, ...).
    model_class: the plain model; ``model_class(**config_without_model, dtype=, seed=)``.
        Every child runs its own forward and backward: the textbook version.
    resolve: config dict (partial) -> complete, checked config dict including ``"model"``;
        raises ``ValueError`` / ``TypeError`` naming the problem and the fix.
    presets: preset name -> config dict (what ``resolve`` completes).
    time_axis: True when the network runs T time steps (``T`` applies: logits (T, B, K));
        False when it has none (logits (1, B, K) from ``forward_repeated``; ``T`` is ignored).
    fast_class: the dotted name of an opt-in twin of ``model_class`` with fused kernels and
        eval-mode folding (same module tree, same parameter names, tested equal), or None.
        A name, not the class, so that the plain model's file never imports the fast one.
    dataset: the DataSource a training run uses by default (``npsnn.datasets.DATASETS``).
    input_shape: config -> the shape of one input sample as the model's ``forward_repeated``
        takes it (batch axis excluded); None: an image ``(in_channels, image_size,
        image_size)``. The trainer checks it against the data before the first step.
    summary: one line for listings and error messages.
    """
    name: str
    model_class: type
    resolve: Callable[[dict], dict]
    presets: dict = field(default_factory=dict)
    time_axis: bool = True
    fast_class: str | None = None
    dataset: str = "cifar"
    input_shape: Callable[[dict], tuple] | None = None
    summary: str = ""

    def sample_shape(self, config: dict) -> tuple:
        """The shape of one input sample of a model built from ``config``."""
        if self.input_shape is not None:
            return tuple(self.input_shape(config))
        return (config["in_channels"], config["image_size"], config["image_size"])

    def build(self, config: dict, dtype, seed: int, fast: bool = True):
        """A model of this family from a config that :attr:`resolve` has completed."""
        cls = self.model_class
        if fast and self.fast_class is not None:
            module, _, name = self.fast_class.rpartition(".")
            cls = getattr(importlib.import_module(module), name)
        return cls(**{k: v for k, v in config.items() if k != "model"}, dtype=dtype, seed=seed)
