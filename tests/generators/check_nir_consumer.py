"""DEV-ONLY: import npsnn's NIR export into an external NIR consumer (Norse) and compare.

Run with the PyTorch venv after ``pip install --no-deps nir nirtorch norse`` there
(torch is never a dependency of npsnn):

    ~/.venvs/npsnn-torch/bin/python tests/generators/check_nir_consumer.py [CHECKPOINT]
        [--dt DT] [--images N]

It writes CHECKPOINT (default: the tutorial CIFAR-10 model) with ``python -m npsnn
export-nir``, reads the file back with ``nir.read`` (which type-checks the graph), turns
it into a PyTorch module with Norse's NIR import (Norse 1.1's node conversion
``norse.torch.utils.import_nir._import_norse_module``, wired by NIRTorch 2's
``nir_to_torch``, which sums fan-in), runs it for T steps on
the bundled CIFAR-10 test sample and compares the T-averaged logits and predictions with
npsnn's eval-mode float32 model. Norse's map has no ``nir.Scale`` (nor has NIRTorch's
default map or snnTorch's), so this script adds the one-line module ``x * scale`` for it;
everything else is Norse's own mapping (LIFBoxCell with Norse's ``dt``, Conv2d, AvgPool2d).
"""
import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import nir                                       # noqa: E402
import nirtorch                                  # noqa: E402
from norse.torch.utils.import_nir import _import_norse_module   # noqa: E402

from npsnn.datasets import load_cifar, sample_path       # noqa: E402
from npsnn.datasets.transforms import normalize          # noqa: E402
from npsnn.train.checkpoint import load_model            # noqa: E402


class Scale(torch.nn.Module):
    def __init__(self, node):
        super().__init__()
        self.register_buffer("scale", torch.from_numpy(np.asarray(node.scale)))

    def forward(self, x):
        return x * self.scale


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint", nargs="?",
                    default=ROOT / "tutorials" / "assets" / "cifar10-p4-d48.npz")
    ap.add_argument("--dt", type=float, default=1e-4)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--float64", action="store_true",
                    help="export and run in float64 (NIRTorch's dtype argument)")
    a = ap.parse_args()
    dtype = np.float64 if a.float64 else np.float32
    ours, info = load_model(a.checkpoint, dtype=dtype)
    T = int(info.get("args", {}).get("T", 4))
    images, labels = load_cifar(sample_path(), "test")
    x = normalize(images[:a.images], dtype=dtype)
    want = ours.forward_repeated(x, T)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.nir"
        subprocess.run([sys.executable, "-m", "npsnn", "export-nir", str(a.checkpoint),
                        str(path), "--dt", str(a.dt), "--dtype", np.dtype(dtype).name],
                       check=True, cwd=ROOT,
                       env={"PYTHONPATH": str(ROOT)})
        graph = nir.read(path)                   # type_check=True
    # Norse 1.1's own node conversion for every node type it knows; NIRTorch's default map
    # for Input, Output and AvgPool2d; the Scale module above for nir.Scale
    norse = lambda node: _import_norse_module(node, dt=a.dt)        # noqa: E731
    node_map = {nir.Conv2d: norse, nir.LIF: norse, nir.Affine: norse, nir.Scale: Scale}
    module = nirtorch.nir_to_torch(graph, node_map,
                                   dtype=torch.float64 if a.float64 else torch.float32)
    state, outs = None, []
    xt = torch.from_numpy(x)
    with torch.no_grad():
        for _ in range(T):
            out, state = module(xt, state)
            outs.append(out[:, :, 0, 0].numpy())
    got = np.stack(outs)
    diff = np.abs(got - want)
    agree = np.mean(got.mean(0).argmax(1) == want.mean(0).argmax(1))
    top1 = np.mean(got.mean(0).argmax(1) == labels[:len(x)])
    print(f"Norse ({len(graph.nodes)} NIR nodes, {np.dtype(dtype).name}, dt {a.dt}, T={T}, "
          f"{len(x)} CIFAR-10 sample "
          f"images): logits max |norse - npsnn| = {diff.max():.3e} (median {np.median(diff):.1e}, "
          f"max |logit| {np.abs(want).max():.2f}); predictions equal on {agree:.4f}; "
          f"top-1 norse {top1:.3f} vs npsnn "
          f"{np.mean(want.mean(0).argmax(1) == labels[:len(x)]):.3f}")


if __name__ == "__main__":
    main()
