"""Fine-tuning: start a run from existing weights (``python -m npsnn train --init FILE``).

``--init`` takes an npsnn checkpoint (``.npz`` from ``train``, also ``slim`` ones), a bare
state-dict ``.npz`` (``npsnn.io.save_state``) or an official PyTorch checkpoint (``.pth``,
read without torch by :mod:`npsnn.io.pth`). Without ``--preset`` / ``--config`` the model
is the one the weights describe (:func:`init_config`: the checkpoint's config, or the
sMLPNet config its shapes imply). The weights load **strictly**: every key and shape must
fit, and a mismatch is one error naming the keys.

``--reset-head`` keeps everything but the classifier (``mlp_head.1.*``), which is freshly
initialised with the run's seed for the data's number of classes: the usual transfer to
a new label set. ``--image-size S`` builds the model for S x S images and resizes the data
(:class:`npsnn.datasets.resize.Resized`); sMLPNet's token mixer and BN1d are tied to the
token grid, so weights load only into a model of the size they were trained at (the
official CIFAR fine-tune upsamples CIFAR to the 224 of its ImageNet weights).

Only the weights come from ``--init``; optimizer, schedule and position start afresh (use
``--resume`` to continue a run instead).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

HEAD = ("mlp_head.1.weight", "mlp_head.1.bias")


def read_weights(path) -> tuple[dict, dict | None]:
    """``path`` -> ``(state dict, the npsnn training checkpoint or None)``: an npsnn
    checkpoint (recognised by its ``format`` entry), a bare state-dict ``.npz`` or an
    official ``.pth``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix in (".pth", ".pt", ".tar"):
        from ..io.pth import load_pth
        return load_pth(path), None
    from ..io.files import load_npz
    raw = load_npz(path)
    if "format" in raw:
        from .checkpoint import load_checkpoint
        ckpt = load_checkpoint(path)
        return ckpt["model"], ckpt
    return raw, None


def weights_config(state: dict, checkpoint: dict | None, path) -> dict:
    """The model config weights were made for: the checkpoint's, or the sMLPNet config
    their shapes imply."""
    from ..models import resolve_config
    from ..models.smlpnet import infer_config
    config = checkpoint["config"] if checkpoint else infer_config(state)
    if config is None:
        raise ValueError(f"{path} is neither an npsnn checkpoint nor an sMLPNet state dict "
                         f"(its keys: {', '.join(sorted(state)[:4])}, ...); pass --preset or "
                         f"--config for it")
    return resolve_config(config)


def init_config(path) -> dict:
    """The model config the weights in ``path`` were made for."""
    return weights_config(*read_weights(path), path)


def load_init(model, path, *, reset_head: bool = False) -> int:
    """Load the weights in ``path`` into ``model`` (strict; see the module docstring).

    With ``reset_head`` the classifier keys of the file are ignored and the model's own
    (fresh) classifier kept. -> the number of arrays loaded.
    """
    state, _ = read_weights(path)
    if reset_head:
        state = {k: v for k, v in state.items() if k not in HEAD}
        current = model.state_dict()
        state.update({k: current[k] for k in HEAD if k in current})
    try:
        model.load_state_dict(state, strict=True)
    except ValueError as e:
        head = [k for k in HEAD if k in state and k in model.state_dict()
                and np.shape(state[k]) != model.state_dict()[k].shape]
        hint = (" (the classifier has another number of classes: add --reset-head)"
                if head and not reset_head else "")
        raise ValueError(f"--init {path} does not fit the model: {e}{hint}") from None
    return len(state)
