"""Shared by the golden-model tests (tests/golden/): tiny models built directly (no
checkpoint needed) and random images. (Fake CIFAR folders: tests/cifar_files.py.)

pytest puts this folder on sys.path for the tests in it, so they ``import golden_models``.
"""
import numpy as np

import npsnn
from npsnn.ops.batchnorm import BatchNorm


def randomise_bn(model, seed=1):
    """Give every BN plausible trained-looking statistics so that every LIF fires."""
    rng = np.random.default_rng(seed)
    for _, m in model.named_modules():
        if isinstance(m, BatchNorm):
            f = m.params["weight"].shape[0]
            m.params["weight"][:] = rng.uniform(0.5, 1.5, f)
            m.params["bias"][:] = rng.uniform(0.0, 0.6, f)
            m.buffers["running_mean"][:] = rng.normal(0, 0.1, f)
            m.buffers["running_var"][:] = rng.uniform(0.02, 0.2, f)
    return model


def tiny_config(spe=True, image_size=16, patch_size=4, neuron=None):
    cfg = dict(dim=6, image_size=image_size, patch_size=patch_size, depths=[1, 1],
               num_classes=10, spe=spe, alpha=3)
    return cfg if neuron is None else dict(cfg, neuron=neuron)


def tiny_model(spe=True, dtype=np.float64, seed=0, fast=True, **kw):
    model = npsnn.build(tiny_config(spe, **kw), dtype=dtype, seed=seed, fast=fast)
    return randomise_bn(model, seed + 1).eval()


def images(n, size=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 3, size, size), dtype=np.uint8)
