"""Shared by the golden-model tests (tests/golden/): tiny models built directly (no
checkpoint needed), random images, and a fake CIFAR-10 folder for the CLI tests.

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


def tiny_config(spe=True, image_size=16, patch_size=4):
    return dict(dim=6, image_size=image_size, patch_size=patch_size, depths=[1, 1],
                num_classes=10, spe=spe, alpha=3)


def tiny_model(spe=True, dtype=np.float64, seed=0, fast=True, **kw):
    model = npsnn.build(tiny_config(spe, **kw), dtype=dtype, seed=seed, fast=fast)
    return randomise_bn(model, seed + 1).eval()


def images(n, size=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 3, size, size), dtype=np.uint8)


def fake_cifar(root, n=20):
    """A tiny folder in the official CIFAR-10 binary layout (random pixels)."""
    d = root / "cifar-10-batches-bin"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = ["test_batch.bin"] + [f"data_batch_{i}.bin" for i in range(1, 6)]
    for name in names:
        rec = np.concatenate([rng.integers(0, 10, (n, 1)), rng.integers(0, 256, (n, 3072))], 1)
        (d / name).write_bytes(rec.astype(np.uint8).tobytes())
    return root
