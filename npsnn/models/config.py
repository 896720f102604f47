"""Checks every network config shares: known keys, defaults, positive integers, a depth list
that every stage can halve, and neuron options.

Each model's ``resolve`` (see :class:`~npsnn.models.registry.ModelSpec`) starts with
:func:`complete` and adds its own rules. Errors are ``ValueError``/``TypeError`` that name the
key, the value and the fix.
"""
from __future__ import annotations

import numpy as np

from ..ops.lif import check_options as check_lif_options
from ..ops.surrogate import DEFAULT_ALPHA as SURROGATES

#: every LIF option and its default in the configs of spiking networks that use
#: :class:`npsnn.LIF` (SpikingJelly's LIFNode defaults, with detach_reset as in sMLPNet)
#: (alpha None: the surrogate's own default, sigmoid 4, atan 2)
NEURON_DEFAULTS = dict(tau=2.0, v_threshold=1.0, v_reset=0.0, decay_input=True,
                       detach_reset=True, surrogate="sigmoid", alpha=None, smooth=False)


def positive_int(name: str, value, error) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise error(f"'{name}' must be a positive integer, got {value!r}")
    return int(value)


def complete(family: str, config: dict, keys, defaults: dict, int_keys):
    """Known keys, defaults, positive integers, a non-empty depth list, and an image size
    that every stage can halve. -> (cfg, error factory ``bad(msg) -> ValueError``)."""
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
        cfg[key] = positive_int(key, cfg[key], bad)
    depths = cfg["depths"]
    if not isinstance(depths, (list, tuple)) or not depths:
        raise bad(f"'depths' must be a non-empty list of block counts per stage, got {depths!r}")
    cfg["depths"] = [positive_int("depths[%d]" % i, d, bad) for i, d in enumerate(depths)]
    stages = len(cfg["depths"])
    step = cfg["patch_size"] * 2 ** (stages - 1)
    if cfg["image_size"] % step:
        raise bad(f"image_size {cfg['image_size']} must be divisible by patch_size * "
                  f"2^(stages-1) = {cfg['patch_size']} * {2 ** (stages - 1)} = {step} so that "
                  f"every stage halves an integer grid; change image_size, patch_size or depths")
    return cfg, bad


def neuron_options(options, bad) -> dict:
    """A ``neuron`` config entry (partial dict or None) -> the complete, checked LIF options."""
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise bad(f"'neuron' must be a dict of LIF options ({', '.join(NEURON_DEFAULTS)}), "
                  f"got {options!r}")
    unknown = sorted(set(options) - set(NEURON_DEFAULTS))
    if unknown:
        raise bad(f"unknown neuron options {unknown}; valid: {', '.join(NEURON_DEFAULTS)}")
    out = dict(NEURON_DEFAULTS, **options)
    for key in ("decay_input", "detach_reset", "smooth"):
        if not isinstance(out[key], (bool, np.bool_)):
            raise bad(f"neuron option '{key}' must be true or false, got {out[key]!r}")
        out[key] = bool(out[key])
    for key in ("tau", "v_threshold", "alpha"):
        if key == "alpha" and out[key] is None:
            continue
        if isinstance(out[key], bool) or not isinstance(out[key], (int, float, np.number)):
            raise bad(f"neuron option '{key}' must be a number, got {out[key]!r}")
        out[key] = float(out[key])
    if out["surrogate"] not in SURROGATES:
        raise bad(f"neuron option 'surrogate' must be one of {sorted(SURROGATES)}, got "
                  f"{out['surrogate']!r}")
    if out["v_reset"] is not None:
        if isinstance(out["v_reset"], bool) or \
                not isinstance(out["v_reset"], (int, float, np.number)):
            raise bad(f"neuron option 'v_reset' must be a number (hard reset) or null (soft "
                      f"reset), got {out['v_reset']!r}")
        out["v_reset"] = float(out["v_reset"])
    try:
        out["alpha"] = check_lif_options(out["tau"], out["v_threshold"], out["v_reset"],
                                         out["surrogate"], out["alpha"])
    except ValueError as e:
        raise bad(f"neuron options: {e}") from None
    return out
