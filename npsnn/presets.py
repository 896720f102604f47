"""Named sMLPNet configurations and :func:`build`, which checks a config before building.

Paper ImageNet models (image 224, patch 4, alpha 3, depths [2, 8, 14, 2], 1000 classes):
``mlp-spe-t`` (dim 78, SPE, 25.2M), ``mlp-s`` (dim 96, no SPE, 34.5M),
``mlp-spe-s`` (dim 96, SPE, 38.0M). CIFAR-10 presets (image 32, 10 classes) are ours.

SNN-MLP (``model="snn-mlp"``, :mod:`npsnn.snnmlp`; image 224, patch 4, mlp ratio 4, LIF
group 4, tau 0.25, Vth 0.1): ``snn-mlp-t`` (embed 96, depths [2, 2, 6, 2], 28.3M),
``snn-mlp-s`` (96, [2, 2, 18, 2], 49.7M), ``snn-mlp-b`` (128, [2, 2, 18, 2], 87.9M), and
``cifar10-snn-mlp`` (patch 2, so that the last stage still has 4 rows for a group of 4).
"""
from __future__ import annotations

import numpy as np

from .runtime import reuse_freed_memory
from .smlpnet import SMLPNet
from .snnmlp import SNNMLP

_IMAGENET = dict(model="smlpnet", in_channels=3, alpha=3, num_classes=1000, patch_size=4, image_size=224,
                 depths=[2, 8, 14, 2])
_CIFAR10 = dict(model="smlpnet", in_channels=3, alpha=3, num_classes=10, image_size=32, spe=True)

PRESETS: dict[str, dict] = {
    "mlp-spe-t": dict(_IMAGENET, dim=78, spe=True),
    "mlp-s": dict(_IMAGENET, dim=96, spe=False),
    "mlp-spe-s": dict(_IMAGENET, dim=96, spe=True),
    "cifar10-p4-d48": dict(_CIFAR10, dim=48, patch_size=4, depths=[1, 2, 1]),
    "cifar10-p4-d96": dict(_CIFAR10, dim=96, patch_size=4, depths=[2, 2, 2]),
    "cifar10-p2-d48": dict(_CIFAR10, dim=48, patch_size=2, depths=[2, 2, 2]),
}

_SNNMLP_IMAGENET = dict(model="snn-mlp", in_channels=3, num_classes=1000, image_size=224,
                        patch_size=4, mlp_ratio=4.0, group=4, lif_tau=0.25, lif_vth=0.1)
PRESETS.update({
    "snn-mlp-t": dict(_SNNMLP_IMAGENET, embed_dim=96, depths=[2, 2, 6, 2], drop_path_rate=0.2),
    "snn-mlp-s": dict(_SNNMLP_IMAGENET, embed_dim=96, depths=[2, 2, 18, 2], drop_path_rate=0.3),
    "snn-mlp-b": dict(_SNNMLP_IMAGENET, embed_dim=128, depths=[2, 2, 18, 2], drop_path_rate=0.5),
    # 32 / 2 = 16, 8, 4 rows: every stage holds at least one full LIF group of 4.
    "cifar10-snn-mlp": dict(_SNNMLP_IMAGENET, num_classes=10, image_size=32, patch_size=2,
                            embed_dim=64, depths=[2, 2, 2], drop_path_rate=0.1),
})

SNNMLP_KEYS = ("model", "in_channels", "embed_dim", "depths", "num_classes", "image_size",
               "patch_size", "mlp_ratio", "group", "drop_path_rate", "lif_tau", "lif_vth")
_SNNMLP_DEFAULTS = dict(in_channels=3, mlp_ratio=4.0, group=4, drop_path_rate=0.1,
                        lif_tau=0.25, lif_vth=0.1)

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
    if config.get("model", "smlpnet") == "snn-mlp":
        cfg, bad = _complete("SNN-MLP", config, SNNMLP_KEYS, _SNNMLP_DEFAULTS,
                             ("in_channels", "embed_dim", "num_classes", "image_size",
                              "patch_size", "group"))
        last_rows = cfg["image_size"] // (cfg["patch_size"] * 2 ** (len(cfg["depths"]) - 1))
        if last_rows < cfg["group"]:
            raise bad(f"the last stage is {last_rows} rows wide, fewer than the LIF group size "
                      f"{cfg['group']}: its LIFs would pass everything through unchanged; use "
                      f"a smaller patch_size, fewer stages or a smaller group")
        if not 0.0 <= cfg["drop_path_rate"] < 1.0:
            raise bad(f"'drop_path_rate' must be in [0, 1), got {cfg['drop_path_rate']!r}")
        if not cfg["mlp_ratio"] > 0:
            raise bad(f"'mlp_ratio' must be positive, got {cfg['mlp_ratio']!r}")
        return cfg
    config = {k: v for k, v in config.items() if not (k == "model" and v == "smlpnet")}
    cfg, bad = _complete("sMLPNet", config, CONFIG_KEYS, _DEFAULTS,
                         ("in_channels", "dim", "alpha", "num_classes", "patch_size",
                          "image_size"))
    if not isinstance(cfg["spe"], (bool, np.bool_)):
        raise bad(f"'spe' must be True or False, got {cfg['spe']!r}")
    cfg["spe"] = bool(cfg["spe"])
    if cfg["spe"]:
        for i in range(1, len(cfg["depths"])):
            width = cfg["dim"] * 2 ** i
            if width % 3:
                raise bad(f"SPE splits each stage width into three nodes, but stage {i} has "
                          f"width dim * 2^{i} = {width}, not divisible by 3; choose dim "
                          f"divisible by 3 or set spe=False")
    return cfg


def _complete(family: str, config: dict, keys, defaults: dict, int_keys):
    """Checks both model families share: known keys, defaults, positive integers, a depth
    list, and an image that every stage can halve. -> (cfg, error factory)."""
    unknown = sorted(set(config) - set(keys))
    if unknown:
        raise ValueError(f"unknown {family} config keys {unknown}; valid keys: {', '.join(keys)}")
    cfg = dict(defaults, **config)
    missing = [k for k in keys if k not in cfg]
    if missing:
        raise ValueError(f"{family} config is missing {missing} (no default for these)")

    def bad(msg):
        return ValueError(f"invalid {family} config: {msg}")

    for key in int_keys:
        cfg[key] = _positive_int(key, cfg[key], bad)
    depths = cfg["depths"]
    if not isinstance(depths, (list, tuple)) or not depths:
        raise bad(f"'depths' must be a non-empty list of block counts per stage, got {depths!r}")
    cfg["depths"] = [_positive_int("depths[%d]" % i, d, bad) for i, d in enumerate(depths)]
    stages = len(cfg["depths"])
    step = cfg["patch_size"] * 2 ** (stages - 1)
    if cfg["image_size"] % step:
        raise bad(f"image_size {cfg['image_size']} must be divisible by patch_size * "
                  f"2^(stages-1) = {cfg['patch_size']} * {2 ** (stages - 1)} = {step} so that "
                  f"every stage halves an integer grid; change image_size, patch_size or depths")
    return cfg, bad


def build(config, dtype=np.float32, seed: int = 0):
    """Build sMLPNet (or SNN-MLP, for ``model="snn-mlp"`` configs) from a preset name (see
    :data:`PRESETS`) or a config dict.

    dtype: float32 (training) or float64 (gradient checks, reference comparisons).
    seed: initialisation seed (PyTorch's default initialisation rules).
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"build expected dtype float32 or float64, got {dtype}")
    cfg = resolve_config(config)
    reuse_freed_memory()                   # ~20% faster steps on glibc; see npsnn/runtime.py
    if cfg.get("model") == "snn-mlp":
        return SNNMLP(**{k: v for k, v in cfg.items() if k != "model"}, dtype=dtype, seed=seed)
    return SMLPNet(**cfg, dtype=dtype, seed=seed)
