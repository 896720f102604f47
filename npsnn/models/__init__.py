"""The networks and their registry: :data:`MODELS`, :data:`PRESETS`, :func:`build`.

Each network lives in one file that ends with a :class:`~npsnn.models.registry.ModelSpec`
(its presets, its config rules, whether it has a time axis, its optional fast twin).
Everything else in npsnn asks the spec:

    MODELS            {"smlpnet": spec, "snn-mlp": spec}
    PRESETS           {preset name: config} over all networks (each config names its model)
    resolve_config    preset name or (partial) config dict -> complete, checked config
    build             config -> model (float32 for training, float64 for checks)
    spec_of           config -> its ModelSpec

To add a network: write ``npsnn/models/<name>.py`` with the model class, ``PRESETS``, a
``resolve`` function and ``SPEC``, and add ``<name>.SPEC`` to the tuple below
(docs/architecture.md walks through it).
"""
from __future__ import annotations

import numpy as np

from . import smlpnet, snnmlp, spikingssm
from .registry import ModelSpec

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (smlpnet.SPEC, snnmlp.SPEC,
                                                              spikingssm.SPEC)}

PRESETS: dict[str, dict] = {name: dict(config, model=spec.name)
                            for spec in MODELS.values() for name, config in spec.presets.items()}


def spec_of(config) -> ModelSpec:
    """The :class:`ModelSpec` of a preset name or a config dict (``"model"`` defaults to
    ``"smlpnet"``, the configs written before the registry existed)."""
    if isinstance(config, str):
        config = _preset(config)
    if not isinstance(config, dict):
        raise TypeError(f"expected a preset name or a config dict, got {type(config).__name__}")
    name = config.get("model", "smlpnet")
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; models are: {', '.join(MODELS)}")
    return MODELS[name]


def _preset(name: str) -> dict:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets are: {', '.join(PRESETS)} (or pass "
                         f"a config dict; see npsnn.models.MODELS for each model's keys)")
    return PRESETS[name]


def resolve_config(config) -> dict:
    """A preset name or a (partial) config dict -> a complete, validated config dict that
    names its model (``config["model"]``)."""
    if isinstance(config, str):
        config = _preset(config)
    if not isinstance(config, dict):
        raise TypeError(f"build expected a preset name or a config dict, got "
                        f"{type(config).__name__}")
    return spec_of(config).resolve(dict(config))


def build(config, dtype=np.float32, seed: int = 0, fast: bool = True):
    """Build a network from a preset name (see :data:`PRESETS`) or a config dict.

    dtype: float32 (training) or float64 (gradient checks, reference comparisons).
    seed: initialisation seed (PyTorch's default initialisation rules).
    fast: the fused twin (same tree, names and numbers up to rounding; the default) or,
        with ``fast=False``, the plain model whose every child runs its own forward.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"build expected dtype float32 or float64, got {dtype}")
    cfg = resolve_config(config)
    return spec_of(cfg).build(cfg, dtype, seed, fast=fast)


__all__ = ["MODELS", "ModelSpec", "PRESETS", "build", "resolve_config", "spec_of"]
