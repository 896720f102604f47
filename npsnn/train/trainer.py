"""The trainer: a plain loop with exact resume.

It asks the model's :class:`~npsnn.models.ModelSpec` and the run's
:class:`~npsnn.datasets.DataSource` (``train/data.py``), never preset names. One training
step on a batch of stored samples (CIFAR: uint8 images ``(B, 3, 32, 32)``)::

    x      = source.train_batch(samples, rng)             float32: crop, flip, normalise
    logits = source.encoding.present(model, x, T)         (T, B, K); direct encoding:
                                                          model.forward_repeated(x, T)
    loss   = CE(mean_t logits, y; label smoothing)        or TET over every step
    model.backward(dloss/dlogits);  optimizer.step();  schedule.step()

The optimizer and schedule come from ``train/recipe.py``, what is printed from
``train/report.py``.

**Randomness and exact resume.** Everything random derives from ``seed``: the model's
initialisation (``npsnn.build(..., seed)``), the training subset, and per epoch ``e`` two
generators spawned from ``SeedSequence([seed, e])`` -- one draws the epoch's batch order,
the other the augmentation (crops, flips, cutout, then Mixup / CutMix: per batch, the
source's draws first, then those of ``datasets/mixing.py``). A checkpoint stores the augmentation
generator's ``bit_generator.state`` at a step boundary together with the weights, BN
buffers, optimizer and schedule state and the position ``(epoch, step_in_epoch)``; the
order generator is re-created from ``(seed, epoch)`` and the finished batches skipped.
A resumed run therefore performs the very same floating-point operations as an
uninterrupted one and ends with bit-identical weights (on the same machine, NumPy/BLAS
build and BLAS thread count: a different GEMM kernel may round differently).

**Interruptions.** ``last.npz`` is written as the run starts, at the end of every epoch and,
with ``checkpoint_every=K``, every K steps (mid-epoch resume after ``kill -9``). All files
are written atomically (temporary file + rename); at the end of an epoch ``best.npz`` is
written before ``last.npz``, so a ``last.npz`` never names a best epoch whose file is
missing, and a continued run first removes the temporary files of a killed write and the
metric lines written after its checkpoint (``tests/train/test_crash.py`` kills a run inside
every stage of every write). Ctrl-C finishes the current step (a second Ctrl-C aborts it),
writes ``last.npz`` and prints the resume command. While a run is going its folder is
locked (:mod:`npsnn.train.lock`): a second training into it is refused.

**Divergence.** A NaN or inf loss or gradient, or a non-finite batch statistic inside the
network, stops the run before the update (:class:`TrainingDiverged`), rolled back to the
step's start; a checkpoint is never written with NaN or inf in it. Steps whose memory
cannot fit (``T`` and the batch sizes) are refused before the first one
(:mod:`npsnn.train.memory`).

**Files** in ``out``: ``last.npz``, ``best.npz`` (best test accuracy), ``metrics.jsonl``
(one JSON object per line: ``"kind": "epoch"`` after each epoch -- train and test loss and
top-1, lr, images/s, wall time, and the firing rate of every LIF layer on the last test
batch -- and ``"kind": "train"`` every ``log_every`` steps: loss, accuracy, lr, images/s).
"""
from __future__ import annotations

import dataclasses
import json
import signal
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from .._checks import NonFiniteError
from ..datasets.mixing import Mixing, mix_batch
from ..datasets.resize import Resized
from ..datasets.transforms import index_batches
from ..io import atomic_write
from ..io.files import append_line, remove_stale_temporaries
from ..io.limits import short_repr
from ..ops import losses
from ..models import build, resolve_config
from .args import TrainArgs
from .evaluate import evaluate
from .finetune import load_init
from .checkpoint import CheckpointError, check_resumable, load_checkpoint, save_checkpoint
from .data import check_fits, open_data, subset
from .lock import run_lock
from .memory import check_memory
from .recipe import make_optimizer, make_schedule
from .report import epoch_line, firing_rates, hms, progress_bar

LAST, BEST, METRICS = "last.npz", "best.npz", "metrics.jsonl"


def epoch_generators(seed: int, epoch: int):
    """(order generator, augmentation generator) of one epoch, from ``(seed, epoch)``."""
    order_ss, aug_ss = np.random.SeedSequence([seed, epoch]).spawn(2)
    return (np.random.Generator(np.random.PCG64(order_ss)),
            np.random.Generator(np.random.PCG64(aug_ss)))


def _rng_to_json(rng: np.random.Generator) -> dict:
    return rng.bit_generator.state            # plain ints and strings: JSON-safe


def _rng_from_json(state: dict) -> np.random.Generator:
    name = state.get("bit_generator")
    if name != "PCG64":
        raise CheckpointError(f"checkpoint RNG is {short_repr(name)}, expected 'PCG64'")
    bg = np.random.PCG64()
    try:
        bg.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as e:
        raise CheckpointError(f"checkpoint RNG state is damaged ({e})") from None
    return np.random.Generator(bg)


def _all_finite(arrays) -> list[str]:
    """Names of the floating arrays in ``arrays`` ({name: array}) holding NaN or inf."""
    return [k for k, v in arrays.items() if v.dtype.kind == "f" and not np.isfinite(v).all()]


class TrainingDiverged(ValueError):
    """The loss, a gradient, a parameter or an activation became NaN or inf; the run stopped
    without overwriting its checkpoints."""


# -- the trainer -----------------------------------------------------------------------------
class Trainer:
    """Owns model, optimizer, schedule, data and the position in the run.

    ``Trainer(args, data)`` starts a run; ``Trainer.resume(out_dir, data)`` continues one
    from ``out_dir/last.npz``. ``run()`` trains to the end (or until interrupted) and
    returns a summary dict. ``callback(trainer)`` is called after every step (tests use it
    to stop a run; raising KeyboardInterrupt there behaves like Ctrl-C).
    """

    def __init__(self, args: TrainArgs, data=None, *, log: Callable[[str], None] = print,
                 callback: Callable[["Trainer"], None] | None = None,
                 max_steps: int | None = None, _checkpoint: dict | None = None):
        self.args = args.validate()
        self.log = log
        self.callback = callback
        self.max_steps = max_steps
        self.out = Path(args.out)
        self.config = args.model_config()
        self.spec = args.model_spec()
        self.source = open_data(data, dataset=args.dataset, path=args.data, spec=self.spec,
                                config=self.config)
        if args.image_size is not None:                 # fine-tuning at another size
            self.source = Resized(self.source, args.image_size)
        check_fits(self.spec, self.config, self.source)
        xtr, ytr = self.source.split("train")
        xte, yte = self.source.split("test")
        xtr, ytr = subset(xtr, ytr, args.train_subset, args.seed)
        if args.test_subset is not None:
            xte, yte = xte[:args.test_subset], yte[:args.test_subset]
        self.xtr, self.ytr, self.xte, self.yte = xtr, ytr, xte, yte
        self.batches_per_epoch = len(xtr) // args.batch        # drop_last, as the anchor
        if self.batches_per_epoch == 0:
            raise ValueError(f"the training set has {len(xtr)} images, fewer than one batch of "
                             f"{args.batch}; lower --batch or raise --train-subset")
        self.total_steps = args.epochs * self.batches_per_epoch

        self.model = build(self.config, dtype=np.float32, seed=args.seed)
        if args.init is not None and _checkpoint is None:    # fine-tuning: train/finetune.py
            load_init(self.model, args.init, reset_head=args.reset_head)
        self.mixing = Mixing(args.mixup, args.cutmix, args.mix_prob, args.switch_prob)
        self._check_memory()
        self.optimizer = make_optimizer(self.model, args)
        self.schedule = make_schedule(self.optimizer, args, self.batches_per_epoch,
                                      self.total_steps)

        # position in the run and running statistics of the current epoch
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.best_acc, self.best_epoch = -1.0, 0
        self.epoch_loss_sum, self.epoch_correct, self.epoch_seen = 0.0, 0, 0
        self.interval = [0.0, 0, 0]             # loss sum, correct, seen since the last log
        self.last_lr = self.optimizer.lr         # the lr of the last step taken
        self.elapsed = 0.0
        self.history: list[dict] = []
        self.aug_rng = epoch_generators(args.seed, 0)[1]
        self.last_saved_step: int | None = None  # global step of the last last.npz written
        if _checkpoint is not None:
            self._restore(_checkpoint)
            self.last_saved_step = self.global_step
        self._stop_requested = False
        self._sigint_count = 0
        self._in_update = False
        self._snapshot = None                    # see _boundary

    def _check_memory(self) -> None:
        """Refuse T / batch sizes whose steps cannot fit in memory (train/memory.py)."""
        a = self.args
        T = a.T if self.spec.time_axis else 1
        knob = f"--T {T}, " if self.spec.time_axis else ""
        check_memory(self.model, self.source, self.xtr, T, a.batch, train=True,
                     what=f"a training step ({knob}--batch {a.batch})")
        eval_batch = min(a.eval_batch, len(self.xte))
        check_memory(self.model, self.source, self.xte, T, eval_batch, train=False,
                     what=f"an evaluation batch ({knob}--eval-batch {eval_batch})")

    # -- resume -----------------------------------------------------------------------------
    @classmethod
    def resume(cls, out_dir, data=None, **kwargs) -> "Trainer":
        """Continue the run in ``out_dir`` from its ``last.npz``.

        ``data``: the arrays, or None to load them from the saved ``args.data`` (pass
        ``data_path=`` to point at a moved dataset). Other keyword arguments: ``log``,
        ``callback``, ``max_steps``, ``progress``.
        """
        path = Path(out_dir) / LAST
        if not path.is_file():
            raise FileNotFoundError(f"cannot resume: no {LAST} in {out_dir} (a run writes it "
                                    f"as it starts; start the run again)")
        ckpt = check_resumable(load_checkpoint(path), path)
        fields = {f.name for f in dataclasses.fields(TrainArgs)}
        saved = {k: v for k, v in ckpt.get("args", {}).items() if k in fields}
        args = TrainArgs(**saved)
        args.out = str(out_dir)
        if kwargs.get("data_path") is not None:
            args.data = str(kwargs.pop("data_path"))
        kwargs.pop("data_path", None)
        if "progress" in kwargs:
            args.progress = bool(kwargs.pop("progress"))
        return cls(args, data, _checkpoint=ckpt, **kwargs)

    def _restore(self, ckpt: dict) -> None:
        p = ckpt["progress"]
        if p["batches_per_epoch"] != self.batches_per_epoch:
            raise ValueError(f"checkpoint has {p['batches_per_epoch']} batches per epoch, this "
                             f"data gives {self.batches_per_epoch}: resume with the same data")
        if resolve_config(ckpt["config"]) != self.config:
            raise ValueError(f"checkpoint is of another model config ({ckpt['config']}) than "
                             f"this run ({self.config})")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.schedule.load_state_dict(ckpt["schedule"])
        self.aug_rng = _rng_from_json(ckpt["rng"])
        self._set_model_rng_state(ckpt.get("model_rng"))
        self.epoch, self.step_in_epoch = p["epoch"], p["step_in_epoch"]
        self.global_step = p["global_step"]
        self.best_acc, self.best_epoch = p["best_acc"], p["best_epoch"]
        self.epoch_loss_sum = p["epoch_loss_sum"]
        self.epoch_correct, self.epoch_seen = p["epoch_correct"], p["epoch_seen"]
        self.elapsed = p["elapsed_s"]
        self.interval = list(p["interval"])
        self.last_lr = p["last_lr"]
        self.history = list(ckpt.get("history", []))

    def _trim_metrics(self) -> None:
        """Drop metric lines written after the checkpoint (a kill -9 between checkpoints),
        and a torn last line, so that the resumed run continues a consistent log."""
        path = self.out / METRICS
        if not path.is_file():
            return
        kept = []
        for line in path.read_text(errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                continue
            if not isinstance(rec, dict) or not isinstance(rec.get("step", 0), int):
                continue
            if rec.get("step", 0) < self.global_step or (
                    rec.get("step", 0) == self.global_step and
                    (rec.get("kind") != "epoch" or rec.get("epoch", 0) <= self.epoch)):
                kept.append(line)
        with atomic_write(path, "w") as f:
            f.write("".join(k + "\n" for k in kept))

    # -- state ------------------------------------------------------------------------------
    def _progress_state(self) -> dict:
        return dict(epoch=self.epoch, step_in_epoch=self.step_in_epoch,
                    global_step=self.global_step, batches_per_epoch=self.batches_per_epoch,
                    total_steps=self.total_steps, best_acc=self.best_acc,
                    best_epoch=self.best_epoch, epoch_loss_sum=self.epoch_loss_sum,
                    epoch_correct=self.epoch_correct, epoch_seen=self.epoch_seen,
                    interval=list(self.interval), last_lr=self.last_lr,
                    elapsed_s=self.elapsed, finished=self.finished)

    @property
    def finished(self) -> bool:
        return self.epoch >= self.args.epochs

    def save(self, name: str = LAST) -> Path:
        """Write the whole state of the run to ``out/name`` atomically; a state with NaN or
        inf is never written (:class:`TrainingDiverged`, the previous file stays)."""
        model, optimizer = self.model.state_dict(), self.optimizer.state_dict()
        bad = _all_finite(model) + _all_finite(optimizer)
        if bad:
            raise TrainingDiverged(self._diverged(f"{', '.join(bad[:3])} hold NaN or inf"))
        path = save_checkpoint(
            self.out / name, model=model, config=self.config,
            optimizer=optimizer, schedule=self.schedule.state_dict(),
            rng=_rng_to_json(self.aug_rng), model_rng=self._model_rng_state(),
            progress=self._progress_state(), history=self.history,
            args=dataclasses.asdict(self.args))
        if name == LAST:
            self.last_saved_step = self.global_step
        return path

    def _diverged(self, what: str) -> str:
        saved = (f"{self.out / LAST} holds the last good state (step {self.last_saved_step})"
                 if self.last_saved_step is not None else "no checkpoint was written")
        return (f"training stopped at epoch {self.epoch + 1}, step {self.step_in_epoch + 1} "
                f"(global step {self.global_step + 1}): {what}; nothing was saved over it, "
                f"{saved}. Lower the learning rate (it was {self.last_lr:.3g}) or check the "
                f"data")

    def _model_rng_state(self) -> dict | None:
        """A model that draws random numbers while training (SNN-MLP's drop path) keeps its
        generator in ``model.rng``; its state is part of the checkpoint."""
        rng = getattr(self.model, "rng", None)
        return _rng_to_json(rng) if isinstance(rng, np.random.Generator) else None

    def _set_model_rng_state(self, state: dict | None) -> None:
        if state is not None:
            # in place: the model's layers hold references to this very generator
            self.model.rng.bit_generator.state = state

    def _write_metrics(self, record: dict) -> None:
        append_line(self.out / METRICS, json.dumps(record))

    # -- one step ---------------------------------------------------------------------------
    def _loss(self, logits, labels, targets=None):
        a = self.args
        if targets is not None:                           # Mixup / CutMix: soft targets
            loss, cache = losses.soft_cross_entropy_forward(logits, targets)
            return loss, losses.soft_cross_entropy_backward(cache)
        if a.loss == "ce":
            loss, cache = losses.cross_entropy_forward(logits, labels, a.label_smoothing)
            return loss, losses.cross_entropy_backward(cache)
        loss, cache = losses.tet_forward(logits, labels, lam=a.tet_lambda,
                                         label_smoothing=a.label_smoothing)
        return loss, losses.tet_backward(cache)

    def train_step(self, images, labels) -> tuple[float, int]:
        """One optimizer step on uint8 ``images`` (B, 3, H, W) -> (loss, correct)."""
        a = self.args
        x = self.source.train_batch(images, self.aug_rng, augment=a.augment, cutout=a.cutout)
        targets = None
        if self.mixing.active:        # draws from aug_rng after the batch's own transforms
            x, targets, _, _ = mix_batch(x, labels, self.config["num_classes"], self.aug_rng,
                                         self.mixing, a.label_smoothing)
        self.model.train()
        self.model.zero_grad()
        logits = self.source.encoding.present(self.model, x, a.T)
        loss, dlogits = self._loss(logits, labels, targets)
        if not np.isfinite(loss):
            raise TrainingDiverged(self._diverged(f"the loss is {loss}"))
        self.model.backward(dlogits)
        bad = _all_finite(self.model.named_grads())
        if bad:
            raise TrainingDiverged(self._diverged(f"the gradients of {', '.join(bad[:3])} "
                                                  f"hold NaN or inf"))
        correct = int((logits.mean(axis=0).argmax(axis=1) == labels).sum())
        # The update is not interruptible: Ctrl-C during it is deferred to the step's end.
        self._in_update = True
        self.last_lr = self.optimizer.lr
        self.optimizer.step()
        self.schedule.step()
        self.global_step += 1
        self.step_in_epoch += 1
        self.epoch_loss_sum += loss * len(labels)
        self.epoch_correct += correct
        self.epoch_seen += len(labels)
        self.interval[0] += loss * len(labels)
        self.interval[1] += correct
        self.interval[2] += len(labels)
        self._in_update = False
        return loss, correct

    # -- Ctrl-C ---------------------------------------------------------------------------
    def _on_sigint(self, signum, frame):
        self._sigint_count += 1
        self._stop_requested = True
        if self._sigint_count >= 2 and not self._in_update:
            raise KeyboardInterrupt

    def _install_sigint(self):
        if threading.current_thread() is not threading.main_thread():
            return None
        try:
            return signal.signal(signal.SIGINT, self._on_sigint)
        except (ValueError, OSError):
            return None

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> dict:
        """Train to the end of the schedule (or an interruption) -> summary dict.

        Holds the run folder's lock throughout (:mod:`npsnn.train.lock`: a second training
        into the same folder is refused). Raises :class:`TrainingDiverged` (nothing saved
        over the last good checkpoint) and ``OSError`` (full disk: the last complete
        checkpoint stays)."""
        with run_lock(self.out):
            return self._run()

    def _run(self) -> dict:
        a = self.args
        remove_stale_temporaries(self.out, (LAST, BEST, METRICS))     # from a kill -9
        if self.global_step == 0 and self.step_in_epoch == 0 and self.epoch == 0:
            for stale in (METRICS, BEST):          # a new run (--overwrite) starts clean
                (self.out / stale).unlink(missing_ok=True)
            self.save(LAST)                        # resumable from its first moment on
            self.log(f"training {a.preset or 'custom config'} "
                     f"({self.model.num_parameters():,} parameters) on {len(self.xtr)} images, "
                     f"{a.epochs} epochs x {self.batches_per_epoch} steps, "
                     f"{f'T={a.T}' if self.spec.time_axis else 'no time axis'}, "
                     f"batch {a.batch}; output in {self.out}")
        else:
            self._trim_metrics()
            if self.best_epoch and not (self.out / BEST).is_file():
                self.log(f"note: {self.out / BEST} (epoch {self.best_epoch}) is missing; it is "
                         f"written again only if an epoch does better than "
                         f"{self.best_acc:.2f}%")
            self.log(f"resuming {self.out} at epoch {self.epoch + 1}, step "
                     f"{self.step_in_epoch}/{self.batches_per_epoch} (global step "
                     f"{self.global_step})")
        previous = self._install_sigint()
        interrupted = False
        try:
            interrupted = self._loop()
        except KeyboardInterrupt:
            interrupted = True
            self._save_after_interrupt(exception=True)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        return self.summary(interrupted)

    def summary(self, interrupted: bool) -> dict:
        last = self.history[-1] if self.history else {}
        return dict(interrupted=interrupted, finished=self.finished, epoch=self.epoch,
                    global_step=self.global_step, best_acc=self.best_acc,
                    best_epoch=self.best_epoch, test_acc=last.get("test_acc"),
                    test_loss=last.get("test_loss"), train_loss=last.get("train_loss"),
                    out=str(self.out), last=str(self.out / LAST),
                    best=str(self.out / BEST) if self.best_epoch and
                    (self.out / BEST).is_file() else None,
                    metrics=str(self.out / METRICS))

    def _roll_back(self) -> None:
        """Undo what an abandoned step changed (see :meth:`_boundary`)."""
        if self._snapshot is not None:
            rng_state, model_rng_state, buffers = self._snapshot
            self.model.load_state_dict(buffers, strict=False)
            self.aug_rng = _rng_from_json(rng_state)
            self._set_model_rng_state(model_rng_state)
            self._snapshot = None

    def _boundary(self):
        """What must be rolled back if a step is abandoned half-way: the augmentation RNG,
        the model's RNG (drop path) and the BN running statistics (forward updates them
        before the optimizer step)."""
        return (_rng_to_json(self.aug_rng), self._model_rng_state(),
                {k: v.copy() for k, v in self.model.named_buffers()})

    def _save_after_interrupt(self, exception: bool) -> None:
        if exception and self._in_update:
            self.log(f"interrupted during a weight update: not saving; {self.out / LAST} "
                     f"holds the previous checkpoint")
            return
        if exception:
            self._roll_back()
        path = self.save(LAST)
        self.log(f"\ninterrupted at epoch {self.epoch + 1}, step {self.step_in_epoch}/"
                 f"{self.batches_per_epoch}; checkpoint saved to {path}\n"
                 f"resume with: python -m npsnn train --resume {self.out}")

    def _loop(self) -> bool:
        a = self.args
        nb = self.batches_per_epoch
        t_run = time.perf_counter() - self.elapsed
        while self.epoch < a.epochs:
            order_rng, fresh_aug = epoch_generators(a.seed, self.epoch)
            if self.step_in_epoch == 0:
                self.aug_rng = fresh_aug
            # The order is drawn from order_rng at once; finished batches are skipped.
            batches = index_batches(len(self.xtr), a.batch, order_rng, shuffle=True,
                                            drop_last=True, start=self.step_in_epoch)
            bar = progress_bar(a.progress, nb, self.step_in_epoch,
                            f"epoch {self.epoch + 1}/{a.epochs}")
            t_epoch, imgs_epoch = time.perf_counter(), 0
            try:
                for idx in batches:
                    self._snapshot = self._boundary()
                    try:
                        loss, correct = self.train_step(self.xtr[idx], self.ytr[idx])
                    except NonFiniteError as e:      # from inside the network (BatchNorm)
                        self._roll_back()
                        raise TrainingDiverged(self._diverged(str(e))) from None
                    except TrainingDiverged:
                        self._roll_back()
                        raise
                    self._snapshot = None
                    self.elapsed = time.perf_counter() - t_run
                    imgs_epoch += len(idx)
                    ips = imgs_epoch / max(time.perf_counter() - t_epoch, 1e-9)
                    if bar is not None:
                        left = (self.total_steps - self.global_step) * a.batch / ips
                        bar.update(1)
                        bar.set_postfix_str(
                            f"loss {self.epoch_loss_sum / self.epoch_seen:.3f} "
                            f"acc {100 * self.epoch_correct / self.epoch_seen:.1f}% "
                            f"{ips:.0f} img/s lr {self.last_lr:.3g} "
                            f"run ETA {hms(left)}", refresh=False)
                    if self.global_step % a.log_every == 0:
                        self._write_metrics(dict(
                            kind="train", epoch=self.epoch + 1, step=self.global_step,
                            loss=self.interval[0] / self.interval[2],
                            acc=100 * self.interval[1] / self.interval[2], lr=self.last_lr,
                            img_s=ips, wall_s=self.elapsed))
                        self.interval = [0.0, 0, 0]
                    if a.checkpoint_every and self.global_step % a.checkpoint_every == 0 \
                            and self.step_in_epoch < nb:
                        self.save(LAST)
                    if self.callback is not None:
                        self.callback(self)
                    if self._stop_requested or (self.max_steps is not None and
                                                self.global_step >= self.max_steps):
                        self._save_after_interrupt(exception=False)
                        return True
            finally:
                if bar is not None:
                    bar.close()
            # -- end of epoch: evaluate, log, checkpoint -------------------------------------
            train_s = time.perf_counter() - t_epoch
            last_epoch = self.epoch + 1 == a.epochs
            result, rates = None, {}
            if last_epoch or (self.epoch + 1) % a.eval_every == 0:
                t_eval = time.perf_counter()
                result = evaluate(self.model, self.xte, self.yte, a.T, batch=a.eval_batch,
                                  should_stop=lambda: self._stop_requested, source=self.source)
                if result is None:                   # Ctrl-C during evaluation
                    self._save_after_interrupt(exception=False)
                    return True
                eval_s = time.perf_counter() - t_eval
                rates = firing_rates(self.model)      # of the last test batch
            self.elapsed = time.perf_counter() - t_run
            record = dict(kind="epoch", epoch=self.epoch + 1, step=self.global_step,
                          train_loss=self.epoch_loss_sum / max(self.epoch_seen, 1),
                          train_acc=100 * self.epoch_correct / max(self.epoch_seen, 1),
                          test_acc=None if result is None else result[0],
                          test_loss=None if result is None else result[1],
                          lr=self.last_lr, train_img_s=imgs_epoch / max(train_s, 1e-9),
                          eval_s=None if result is None else eval_s, wall_s=self.elapsed)
            if result is not None and rates:
                record["firing_rate"] = float(np.mean(list(rates.values())))
                record["firing_rates"] = rates
            self._in_update = True           # the bookkeeping below is all or nothing
            self.history.append(record)
            improved = result is not None and result[0] > self.best_acc
            if improved:
                self.best_acc, self.best_epoch = result[0], self.epoch + 1
            self.epoch += 1
            self.step_in_epoch = 0
            self.epoch_loss_sum, self.epoch_correct, self.epoch_seen = 0.0, 0, 0
            if self.epoch < a.epochs:
                self.aug_rng = epoch_generators(a.seed, self.epoch)[1]
            self._in_update = False
            self._write_metrics(record)
            self.log(epoch_line(record, a.epochs))
            if improved:                     # best.npz first: last.npz may then point to it
                self.save(BEST)
            self.save(LAST)
            if self.callback is not None:
                self.callback(self)
            if self._stop_requested:
                self._save_after_interrupt(exception=False)
                return True
        return False


def train(args: TrainArgs, data=None, **kwargs) -> dict:
    """Run a whole training (see :class:`Trainer`) -> summary dict."""
    return Trainer(args, data, **kwargs).run()
