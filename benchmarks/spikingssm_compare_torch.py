"""npsnn's SpikingSSM vs the PyTorch reference model, side by side on this CPU (dev tool).

    ~/.venvs/npsnn-torch/bin/python benchmarks/spikingssm_compare_torch.py [--threads 1]
        [--batch 50] [--d-model 64] [--layers 4] [--rounds 5] [--modes bptt,sdn]

Runs in the torch venv (which needs npsnn's own dependencies too: ``pip install scipy
tqdm`` there); npsnn never imports torch. The PyTorch side is the independent model of
``tests/generators/make_spikingssm_reference.py`` (the official code's structure: S4D kernel
by Vandermonde product, FFT convolution, the official BPTT neuron's Python loop over the
sequence, the SDN neuron with the same SDN weights), in float32 with the same
configuration. Per mode and implementation, the median over rounds (implementations
alternate within a round) of:

* **train step**: forward, cross-entropy, backward and an AdamW step, on (B, 1, L) input;
* **eval**: forward in eval mode without gradients, as sequences per second.

Both sides get the same thread count (``OPENBLAS_NUM_THREADS`` for NumPy, set here before
NumPy loads; ``torch.set_num_threads``). The ratio column is npsnn / PyTorch time (< 1:
npsnn is faster).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--d-state", type=int, default=64)
    p.add_argument("--length", type=int, default=1024)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--modes", default="bptt,sdn")
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = _args(argv)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(a.threads))   # before numpy loads
    import importlib.util
    import platform
    import statistics
    import time

    import numpy as np
    import torch
    import torch.nn.functional as F

    sys.path.insert(0, str(REPO))
    from npsnn.models.spikingssm import SpikingSSM
    from npsnn.ops.losses import cross_entropy_backward, cross_entropy_forward
    from npsnn.perf.runtime import reuse_freed_memory
    from npsnn.train.optim import AdamW

    spec = importlib.util.spec_from_file_location(
        "reference", REPO / "tests" / "generators" / "make_spikingssm_reference.py")
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)

    torch.set_num_threads(a.threads)
    reuse_freed_memory()
    rng = np.random.default_rng(0)
    B, L = a.batch, a.length
    x = rng.normal(size=(B, 1, L)).astype(np.float32)
    y = rng.integers(0, 10, B)
    xt, yt = torch.from_numpy(x.transpose(0, 2, 1).copy()), torch.from_numpy(y)
    sdn = ref.load_sdn().float()
    config = dict(d_input=1, num_classes=10, d_model=a.d_model, n_layers=a.layers,
                  d_state=a.d_state, bidirectional=True, dropout=0.0, norm="none",
                  shared_vth=False)

    def timed(fn):
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    rows = []
    for mode in a.modes.split(","):
        ours = SpikingSSM(neuron=mode, seed=0, **config)
        opt = AdamW(ours, lr=1e-3, weight_decay=0.01)
        torch.manual_seed(0)
        theirs = ref.Net(neuron=mode, sdn=sdn, **config).float()
        topt = torch.optim.AdamW(theirs.parameters(), lr=1e-3, weight_decay=0.01)

        def ours_step():
            ours.train()
            logits = ours.forward(x)
            _, cache = cross_entropy_forward(logits[None], y)
            ours.zero_grad()
            ours.backward(cross_entropy_backward(cache)[0])
            opt.step()

        def ours_eval():
            ours.eval()
            ours.forward(x)

        def torch_step():
            theirs.train()
            topt.zero_grad()
            F.cross_entropy(theirs(xt), yt).backward()
            topt.step()

        def torch_eval():
            theirs.eval()
            with torch.no_grad():
                theirs(xt)

        for fn in (ours_step, ours_eval, torch_step, torch_eval):   # warm-up
            fn()
        t = {k: [] for k in ("ours_step", "ours_eval", "torch_step", "torch_eval")}
        for r in range(a.rounds):
            pairs = [("ours", ours_step, ours_eval), ("torch", torch_step, torch_eval)]
            for name, step, ev in (pairs if r % 2 == 0 else pairs[::-1]):
                t[f"{name}_step"].append(timed(step))
                t[f"{name}_eval"].append(timed(ev))
        med = {k: statistics.median(v) for k, v in t.items()}
        rows.append((mode, med))

    print(f"machine: {platform.machine()} {os.cpu_count()} cores; threads {a.threads}; "
          f"numpy {np.__version__}, torch {torch.__version__}; B={B}, L={L}, "
          f"d_model={a.d_model}, layers={a.layers}, d_state={a.d_state}, bidirectional; "
          f"median of {a.rounds} rounds")
    print("| neuron | npsnn train s/step | PyTorch train s/step | ratio | npsnn eval seq/s | "
          "PyTorch eval seq/s | ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for mode, med in rows:
        print(f"| {mode} | {med['ours_step']:.3f} | {med['torch_step']:.3f} | "
              f"{med['ours_step'] / med['torch_step']:.2f} | {B / med['ours_eval']:.1f} | "
              f"{B / med['torch_eval']:.1f} | {med['ours_eval'] / med['torch_eval']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
