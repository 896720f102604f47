"""Integer golden model fast path vs float eval throughput (dev tool, not a test).

    OPENBLAS_NUM_THREADS=1 python benchmarks/golden_throughput.py [CHECKPOINT]

Converts the checkpoint (default runs/anchor-p4-d48/best.npz, made by the README's training
command) with 256 calibration images of the bundled sample, then times, on the sample's 500
test images at T = 4 (median of 3), the float model in eval mode and the integer fast path.
"""
import sys
import time

import numpy as np

from npsnn.train.checkpoint import load_model
from npsnn.datasets import load_cifar
from npsnn.datasets.transforms import eval_transform
from npsnn.golden import convert, run
model, _ = load_model(sys.argv[1] if len(sys.argv) > 1 else "runs/anchor-p4-d48/best.npz")
xtr, _ = load_cifar("data/cifar10-sample.tar.gz", "train")
xte, _ = load_cifar("data/cifar10-sample.tar.gz", "test")
net = convert(model, xtr[:256])
imgs = xte[:500]
def med(f, n=3):
    ts=[]
    for _ in range(n):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return float(np.median(ts))
xf = eval_transform(imgs)
model.eval()
tf = med(lambda: [model.forward_repeated(xf[i:i+250], 4) for i in range(0, 500, 250)])
ti = med(lambda: [run(net, imgs[i:i+250], 4) for i in range(0, 500, 250)])
print(f"float eval {500/tf:.0f} img/s, integer fast path {500/ti:.0f} img/s, ratio {tf/ti:.2f}")
