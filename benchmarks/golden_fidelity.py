"""Integer golden model vs float model on a test split, per weight width (dev tool).

    OPENBLAS_NUM_THREADS=1 python benchmarks/golden_fidelity.py CHECKPOINT DATA \
        [--bits 4 6 8 10] [--mem-bits 24] [--images N]

For each weight width it converts the checkpoint twice, calibrating on the first 256
training images (the ``golden eval`` defaults):

* as given (post-training quantisation: every folded weight rounded to its 8-bit row);
* snapped first (``npsnn.golden.snap``: the float model moved onto the same grid, so the
  conversion rounds no weight; the snapped float model is itself a float checkpoint).

and prints a Markdown table: float top-1 (as given, snapped), integer top-1 and the
prediction agreement of the integer model with its float model. CHECKPOINT is an npsnn
checkpoint (e.g. runs/anchor-p4-d48/best.npz from the README's training command), DATA
a CIFAR-10 folder or archive.
"""
import argparse
import copy
import time

import numpy as np

from npsnn.datasets import load_cifar
from npsnn.golden import CIFAR_MEAN, CIFAR_STD, convert, run
from npsnn.golden.convert import float_predictions
from npsnn.golden.snap import snap_to_grid
from npsnn.train.checkpoint import load_model


def float_pred(model, x, T):
    return float_predictions(model, x, T, CIFAR_MEAN, CIFAR_STD)


def int_pred(net, x, T, batch=100):
    return np.concatenate([run(net, x[s:s + batch], T)["pred"]
                           for s in range(0, len(x), batch)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("data")
    ap.add_argument("--bits", type=int, nargs="+", default=[4, 6, 8, 10])
    ap.add_argument("--mem-bits", type=int, default=24)
    ap.add_argument("--images", type=int, default=None, help="first N test images (all)")
    ap.add_argument("--T", type=int, default=4)
    a = ap.parse_args()
    model, _ = load_model(a.checkpoint)
    model.eval()
    xte, yte = load_cifar(a.data, "test")
    calib = load_cifar(a.data, "train")[0][:256]
    if a.images:
        xte, yte = xte[:a.images], yte[:a.images]
    widths = dict(mem_bits=a.mem_bits, bias_bits=a.mem_bits, acc_bits=a.mem_bits, T=a.T)
    t0 = time.time()
    fp = float_pred(model, xte, a.T)
    pct = lambda v: f"{100 * np.mean(v):.2f}%"   # noqa: E731
    rows = []
    for bits in a.bits:
        ip = int_pred(convert(model, calib, bits=bits, **widths), xte, a.T)
        snapped = snap_to_grid(copy.deepcopy(model), bits)
        sp = float_pred(snapped, xte, a.T)
        isp = int_pred(convert(snapped, calib, bits=bits, **widths), xte, a.T)
        rows.append(f"| {bits} | {pct(fp == yte)} | {pct(ip == yte)} | {pct(ip == fp)} | "
                    f"{pct(sp == yte)} | {pct(isp == yte)} | {pct(isp == sp)} |")
        print(rows[-1], flush=True)
    print(f"\n{len(yte)} test images, T={a.T}, {a.mem_bits}-bit membranes, biases and "
          f"accumulators; {time.time() - t0:.0f} s\n")
    print("| weight bits | float (as given) | integer | agreement | float (snapped) | "
          "integer (snapped) | agreement (snapped) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
