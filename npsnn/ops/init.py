"""PyTorch's default initialisation, so freshly built layers start where PyTorch's do.

Linear and Conv2d weights use ``kaiming_uniform_(a=sqrt(5))``, which works out to
U(-1/sqrt(fan_in), 1/sqrt(fan_in)); biases use the same bound.
"""
from __future__ import annotations

import numpy as np


def uniform_fan_in(rng: np.random.Generator | None, shape, fan_in: int, dtype) -> np.ndarray:
    rng = np.random.default_rng(0) if rng is None else rng
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(dtype)
