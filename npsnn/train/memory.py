"""Will a step fit in memory? Measured on a tiny batch, scaled, and checked before the first
step, so that ``--T 10000000`` (3.6 TiB of activations) or an ``--eval-batch`` of the whole
test split is one clear line instead of a MemoryError, a swapping machine or the OOM killer.

Every activation a step keeps is proportional to the number of samples times time steps it
sees, ``T * batch``; parameters, gradients and optimizer state are already allocated. So
:func:`step_bytes` runs one forward (and backward, for training) on 2 and on 4 samples at a
single time step, measures the memory each allocates (``tracemalloc`` traces NumPy's
buffers), and extends that line to ``T * batch``. It costs two tiny steps and leaves the
model exactly as it was (BN statistics, random generators, gradients restored), so a run
that checks is bit-identical to one that does not. :func:`available_bytes` is the least of
the memory the kernel reports available, the address-space limit (``ulimit -v``) less what
the process already maps, and a cgroup's limit less its usage.
"""
from __future__ import annotations

import resource
import tracemalloc
from pathlib import Path

import numpy as np

from ..io.limits import size_text


class MemoryLimitError(ValueError):
    """A step would need more memory than the machine has available (checked beforehand)."""


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _address_space_left() -> int | None:
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return soft - int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return soft


def _cgroup_left() -> int | None:
    root = Path("/sys/fs/cgroup")
    try:
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((root / "memory.current").read_text())
    except (OSError, ValueError):
        return None


def available_bytes() -> int | None:
    """Memory a step may still allocate (None when nothing says)."""
    known = [v for v in (_meminfo_available(), _address_space_left(), _cgroup_left())
             if v is not None]
    return max(min(known), 0) if known else None


def _probe(model, source, samples, n: int, train: bool) -> int:
    """Bytes one forward (+ backward) allocates for ``n`` samples at one time step."""
    x = source.eval_batch(samples[np.arange(n) % len(samples)], dtype=model.dtype)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        logits = source.encoding.present(model, x, 1)
        if train:
            model.backward(np.ones_like(logits) / logits.size)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def step_bytes(model, source, samples, T: int, batch: int, *, train: bool) -> int:
    """Estimated bytes a step on ``batch`` samples over ``T`` time steps allocates (train:
    forward + backward; else an eval forward). The model is left as it was."""
    buffers = {k: v.copy() for k, v in model.named_buffers()}
    rng = getattr(model, "rng", None)
    rng_state = rng.bit_generator.state if isinstance(rng, np.random.Generator) else None
    was_training = model.training
    model.train(train)
    try:
        small, large = _probe(model, source, samples, 2, train), \
            _probe(model, source, samples, 4, train)
    finally:
        model.train(was_training)
        model.load_state_dict(buffers, strict=False)
        model.zero_grad()
        if rng_state is not None:
            rng.bit_generator.state = rng_state
    per_sample_step = max(large - small, 0) / 2
    return int(small + per_sample_step * (T * batch - 2))


def check_memory(model, source, samples, T: int, batch: int, *, train: bool,
                 what: str) -> int | None:
    """Raise :class:`MemoryLimitError` if a step (see :func:`step_bytes`) would not fit in
    :func:`available_bytes`. what: the step and its knobs for the message, e.g. "a training
    step (--T 4, --batch 64)". -> the estimate, or None when nothing limits memory."""
    available = available_bytes()
    if available is None:
        return None
    need = step_bytes(model, source, samples, T, batch, train=train)
    if need > available:
        raise MemoryLimitError(f"{what} needs about {size_text(need)} of memory (measured on "
                               f"a few samples and scaled), but {size_text(available)} are "
                               f"available: lower them")
    return need
