"""Fine-tuning vs training from scratch on the same budget: a 5-class CIFAR-10 subset.

    OPENBLAS_NUM_THREADS=1 python benchmarks/finetune_subset.py CIFAR [CHECKPOINT] \\
        [--epochs 3] [--per-class 2000] [--out runs/finetune-subset]

CIFAR: the CIFAR-10 copy (e.g. ../shared/data/cifar10-jpeg-binary.tar.gz). CHECKPOINT: the
CIFAR-10 model to start from (default: the tutorial checkpoint in tutorials/assets/).

The task: the five animal classes cat, deer, dog, frog, horse (labels 0..4 here),
``--per-class`` training images of each (the first ones in file order) and all 5,000 test
images of those classes. Two runs with the same recipe (the anchor recipe, --epochs
epochs) and the same seed: ``--init CHECKPOINT --reset-head`` (the pretrained body, a
new 5-way classifier) and from scratch. No CIFAR-100 copy exists on these machines, so
this is the substitute the issue allows -- and it flatters fine-tuning: the checkpoint was
trained on all ten CIFAR-10 classes, these training images included. It prints one line
per epoch and run and a final table.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np

from npsnn.datasets import ArraySource, load_cifar
from npsnn.train.args import TrainArgs
from npsnn.train.checkpoint import load_checkpoint
from npsnn.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
CLASSES = (3, 4, 5, 6, 7)               # cat, deer, dog, frog, horse


def subset(images, labels, per_class=None):
    keep = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in CLASSES])
    keep.sort()
    remap = {c: i for i, c in enumerate(CLASSES)}
    return images[keep], np.array([remap[int(y)] for y in labels[keep]], np.int64)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("checkpoint", nargs="?",
                    default=str(ROOT / "tutorials" / "assets" / "cifar10-p4-d48.npz"))
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--per-class", type=int, default=2000)
    ap.add_argument("--out", default="runs/finetune-subset")
    a = ap.parse_args()
    train = subset(*load_cifar(a.data, "train"), a.per_class)
    test = subset(*load_cifar(a.data, "test"))
    source = ArraySource(train, test, name="cifar10")
    source.num_classes = len(CLASSES)
    config = dict(load_checkpoint(a.checkpoint)["config"], num_classes=len(CLASSES))
    results = {}
    for name, extra in (("fine-tuned", dict(init=a.checkpoint, reset_head=True)),
                        ("from scratch", {})):
        args = TrainArgs(preset=None, config=config, epochs=a.epochs, progress=False,
                         out=str(Path(a.out) / name.replace(" ", "-")), **extra)
        t0 = time.perf_counter()
        summary = Trainer(args, source, log=lambda s: print(f"[{name}] {s}", flush=True)).run()
        history = [json.loads(line) for line in
                   (Path(args.out) / "metrics.jsonl").read_text().splitlines()]
        results[name] = dict(test=[h["test_acc"] for h in history if h["kind"] == "epoch"],
                             wall=time.perf_counter() - t0, best=summary["best_acc"])
    print(f"\n5-class CIFAR-10 subset ({len(train[1])} train / {len(test[1])} test images), "
          f"anchor recipe, {a.epochs} epochs, seed 0, from {a.checkpoint}")
    print("| run | " + " | ".join(f"epoch {e + 1}" for e in range(a.epochs)) + " | wall |")
    print("| --- |" + " --- |" * (a.epochs + 1))
    for name, r in results.items():
        print(f"| {name} | " + " | ".join(f"{t:.2f}%" for t in r["test"]) +
              f" | {r['wall']:.0f} s |")


if __name__ == "__main__":
    main()
