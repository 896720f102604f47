"""Training the surrogate dynamic network (:mod:`npsnn.models.sdn`) on synthetic sequences.

The official recipe (shenshuaijie/SDN ``generate.py``, ``train.py``): inputs x ~ N(0, 1)
of length L = 1024, labels the decayed membranes of the exact hard-reset recurrence
(tau 0.125 for the published checkpoint), smooth L1 loss, AdamW with lr 0.01 and weight
decay 0.01, batch 64, cosine schedule. The official run draws a fixed set of 50,000
sequences and trains 100 epochs on a GPU; here every step draws fresh sequences from a
seeded generator (the same distribution, nothing on disk, no overfitting) and the cosine
runs per step over a CPU budget of steps. At the end the SDN is measured on held-out
sequences (:func:`npsnn.models.sdn.evaluate_sdn`) and saved with its recipe and metrics.

Command line (the SDN shipped in ``npsnn/models/assets`` was made this way; its ``meta``
records the exact command)::

    python -m npsnn.train.sdn --out sdn.npz [--tau 0.125] [--steps 5000] [--batch 64]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np

from ..models.sdn import SDN, evaluate_sdn, save_sdn, synthetic_batch
from ..ops.smooth_l1 import smooth_l1_backward, smooth_l1_forward
from .optim import AdamW


def train_sdn(*, tau: float = 0.125, steps: int = 5000, batch: int = 64, L: int = 1024,
              lr: float = 0.01, weight_decay: float = 0.01, seed: int = 0,
              eval_sequences: int = 1000, progress: bool = True, log=None):
    """Train an SDN from scratch on fresh synthetic sequences. -> (sdn in eval mode,
    metrics dict on ``eval_sequences`` held-out sequences)."""
    from tqdm import tqdm

    sdn = SDN(dtype=np.float32, seed=seed)
    opt = AdamW(sdn, lr=lr, weight_decay=weight_decay)
    data_rng = np.random.default_rng([seed, 1])
    start = time.perf_counter()
    bar = tqdm(range(steps), desc="SDN", disable=not progress, leave=False)
    for k in bar:
        opt.lr = 0.5 * lr * (1 + math.cos(math.pi * k / steps))        # cosine to 0
        x, membrane, _ = synthetic_batch(data_rng, batch, L, tau)
        sdn.train()
        pred = sdn.forward(x[:, None])
        loss, cache = smooth_l1_forward(pred, membrane)
        sdn.zero_grad()
        sdn.backward(smooth_l1_backward(cache))
        opt.step()
        if k % 50 == 0:
            bar.set_postfix(loss=f"{loss:.4f}")
            if log is not None:
                log(dict(step=k, loss=loss, lr=opt.lr))
    sdn.eval()
    held_out = synthetic_batch(np.random.default_rng([seed, 2]), eval_sequences, L, tau)
    metrics = evaluate_sdn(sdn, *held_out)
    metrics.update(train_seconds=time.perf_counter() - start)
    return sdn, metrics




def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m npsnn.train.sdn",
                                description="Train the surrogate dynamic network on synthetic "
                                            "sequences and save it with its measured accuracy.")
    p.add_argument("--out", required=True, help="output .npz (weights + metrics)")
    p.add_argument("--tau", type=float, default=0.125)
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--length", type=int, default=1024)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-sequences", type=int, default=1000)
    a = p.parse_args(argv)
    recipe = dict(tau=a.tau, steps=a.steps, batch=a.batch, L=a.length, lr=a.lr,
                  weight_decay=a.weight_decay, seed=a.seed, eval_sequences=a.eval_sequences)
    sdn, metrics = train_sdn(**recipe)
    save_sdn(a.out, sdn, dict(tau=a.tau, recipe=recipe, metrics=metrics,
                              command="python -m npsnn.train.sdn " + " ".join(
                                  sys.argv[1:] if argv is None else argv)))
    print(json.dumps(metrics, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
