"""Named sMLPNet configurations and :func:`build`, which checks a config before building.

Paper ImageNet models (image 224, patch 4, alpha 3, depths [2, 8, 14, 2], 1000 classes):
``mlp-spe-t`` (dim 78, SPE, 25.2M), ``mlp-s`` (dim 96, no SPE, 34.5M),
``mlp-spe-s`` (dim 96, SPE, 38.0M). CIFAR-10 presets (image 32, 10 classes) are ours.
"""
from __future__ import annotations

import numpy as np

from .smlpnet import SMLPNet

_IMAGENET = dict(in_channels=3, alpha=3, num_classes=1000, patch_size=4, image_size=224,
                 depths=[2, 8, 14, 2])
_CIFAR10 = dict(in_channels=3, alpha=3, num_classes=10, image_size=32, spe=True)

PRESETS: dict[str, dict] = {
    "mlp-spe-t": dict(_IMAGENET, dim=78, spe=True),
    "mlp-s": dict(_IMAGENET, dim=96, spe=False),
    "mlp-spe-s": dict(_IMAGENET, dim=96, spe=True),
    "cifar10-p4-d48": dict(_CIFAR10, dim=48, patch_size=4, depths=[1, 2, 1]),
    "cifar10-p4-d96": dict(_CIFAR10, dim=96, patch_size=4, depths=[2, 2, 2]),
    "cifar10-p2-d48": dict(_CIFAR10, dim=48, patch_size=2, depths=[2, 2, 2]),
}

CONFIG_KEYS = ("in_channels", "dim", "alpha", "num_classes", "patch_size", "image_size",
               "depths", "spe")
_DEFAULTS = dict(in_channels=3, alpha=3, spe=True)


def _positive_int(name, value, config_error):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise config_error(f"'{name}' must be a positive integer, got {value!r}")
    return int(value)


def resolve_config(config) -> dict:
    """A preset name or a config dict -> a complete, validated config dict."""
    if isinstance(config, str):
        if config not in PRESETS:
            raise ValueError(f"unknown preset {config!r}; presets are: {', '.join(PRESETS)} "
                             f"(or pass a config dict with keys {', '.join(CONFIG_KEYS)})")
        config = PRESETS[config]
    if not isinstance(config, dict):
        raise TypeError(f"build expected a preset name or a config dict, got "
                        f"{type(config).__name__}")
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(f"unknown config keys {unknown}; valid keys: {', '.join(CONFIG_KEYS)}")
    cfg = dict(_DEFAULTS, **config)
    missing = [k for k in CONFIG_KEYS if k not in cfg]
    if missing:
        raise ValueError(f"config is missing {missing} (no default for these)")

    def bad(msg):
        return ValueError(f"invalid sMLPNet config: {msg}")

    for key in ("in_channels", "dim", "alpha", "num_classes", "patch_size", "image_size"):
        cfg[key] = _positive_int(key, cfg[key], bad)
    depths = cfg["depths"]
    if not isinstance(depths, (list, tuple)) or not depths:
        raise bad(f"'depths' must be a non-empty list of block counts per stage, got {depths!r}")
    cfg["depths"] = [_positive_int("depths[%d]" % i, d, bad) for i, d in enumerate(depths)]
    if not isinstance(cfg["spe"], (bool, np.bool_)):
        raise bad(f"'spe' must be True or False, got {cfg['spe']!r}")
    cfg["spe"] = bool(cfg["spe"])
    stages = len(cfg["depths"])
    step = cfg["patch_size"] * 2 ** (stages - 1)
    if cfg["image_size"] % step:
        raise bad(f"image_size {cfg['image_size']} must be divisible by patch_size * "
                  f"2^(stages-1) = {cfg['patch_size']} * {2 ** (stages - 1)} = {step} so that "
                  f"every stage halves an integer grid; change image_size, patch_size or depths")
    if cfg["spe"]:
        for i in range(1, stages):
            width = cfg["dim"] * 2 ** i
            if width % 3:
                raise bad(f"SPE splits each stage width into three nodes, but stage {i} has "
                          f"width dim * 2^{i} = {width}, not divisible by 3; choose dim "
                          f"divisible by 3 or set spe=False")
    return cfg


def build(config, dtype=np.float32, seed: int = 0) -> SMLPNet:
    """Build sMLPNet from a preset name (see :data:`PRESETS`) or a config dict.

    dtype: float32 (training) or float64 (gradient checks, reference comparisons).
    seed: initialisation seed (PyTorch's default initialisation rules).
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"build expected dtype float32 or float64, got {dtype}")
    return SMLPNet(**resolve_config(config), dtype=dtype, seed=seed)
