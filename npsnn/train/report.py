"""What a training run prints: the epoch line, times, the progress bar, firing rates, and the
one line that says why a run stopped."""
from __future__ import annotations

import math

import numpy as np


def firing_rates(model) -> dict[str, float]:
    """Mean firing rate (over time steps) of each LIF layer in the model's last forward."""
    if not hasattr(model, "firing_rates"):
        return {}
    return {k: round(float(np.mean(v)), 5) for k, v in model.firing_rates().items()}


def epoch_line(r: dict, epochs: int) -> str:
    test = ("" if r["test_acc"] is None else
            f", test top-1 {r['test_acc']:.2f}% (loss {r['test_loss']:.4f})")
    rate = f", firing rate {r['firing_rate']:.3f}" if "firing_rate" in r else ""
    return (f"epoch {r['epoch']}/{epochs}: train loss {r['train_loss']:.4f}, "
            f"train acc {r['train_acc']:.2f}%{test}{rate}, {r['train_img_s']:.0f} img/s, "
            f"wall {hms(r['wall_s'])}")


def hms(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


def progress_bar(enabled: bool, total: int, initial: int, desc: str):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, desc=desc, unit="step", leave=True,
                dynamic_ncols=True, mininterval=0.5)


def run_failure(error, trainer) -> str:
    """One line for what stopped a run: divergence (its message says it all), a failed
    write (full disk, permissions) or memory, with where the last good checkpoint is."""
    out = trainer.out
    if trainer.last_saved_step is None:
        kept = "nothing was saved; start the run again"
    else:
        kept = (f"{out / 'last.npz'} holds the last complete checkpoint (step "
                f"{trainer.last_saved_step}); continue with --resume {out}")
    if isinstance(error, MemoryError):
        return (f"ran out of memory at epoch {trainer.epoch + 1}, step "
                f"{trainer.step_in_epoch + 1}: lower --batch, --eval-batch or --T; {kept}")
    if isinstance(error, OSError):
        what = f"{error.filename}: {error.strerror}" if error.strerror else str(error)
        return f"cannot write {what}; free space or fix the permissions; {kept}"
    return str(error)
