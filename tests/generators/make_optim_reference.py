"""DEV-ONLY: writes tests/data/optim_reference.npz with PyTorch's SGD / AdamW updates.

Needs PyTorch (the dev venv ~/.venvs/npsnn-torch); never imported by the test suite, which
only reads the .npz it wrote. Run from the repository root:

    ~/.venvs/npsnn-torch/bin/python tests/generators/make_optim_reference.py

Each case: two float64 parameters, 5 steps with given gradients, and per-step lr and
momentum / beta1 written into the param group before the step (as a schedule does).
Stored: initial params, gradients, per-step hyper-parameters, params after every step.
"""
from pathlib import Path

import numpy as np
import torch

CASES = {
    "sgd_plain": dict(opt="sgd", momentum=0.0, nesterov=False, wd=0.0),
    "sgd_momentum_wd": dict(opt="sgd", momentum=0.9, nesterov=False, wd=5e-4),
    "sgd_nesterov_wd": dict(opt="sgd", momentum=0.9, nesterov=True, wd=5e-4),
    "adamw": dict(opt="adamw", wd=0.05),
}
STEPS = 5


def main():
    rng = np.random.default_rng(0)
    out = {}
    shapes = [(3, 4), (5,)]
    for name, c in CASES.items():
        p0 = [rng.standard_normal(s) for s in shapes]
        grads = [[rng.standard_normal(s) for s in shapes] for _ in range(STEPS)]
        lrs = rng.uniform(0.01, 0.2, STEPS) if c["opt"] == "sgd" else rng.uniform(1e-3, 3e-2, STEPS)
        moms = rng.uniform(0.85, 0.95, STEPS)
        params = [torch.nn.Parameter(torch.tensor(p, dtype=torch.float64)) for p in p0]
        if c["opt"] == "sgd":
            opt = torch.optim.SGD(params, lr=0.1, momentum=c["momentum"],
                                  nesterov=c["nesterov"], weight_decay=c["wd"])
        else:
            opt = torch.optim.AdamW(params, lr=1e-2, betas=(0.9, 0.999), eps=1e-8,
                                    weight_decay=c["wd"])
        after = []
        for k in range(STEPS):
            g = opt.param_groups[0]
            g["lr"] = float(lrs[k])
            if c["opt"] == "adamw":
                g["betas"] = (float(moms[k]), 0.999)
            elif c["momentum"]:
                g["momentum"] = float(moms[k])
            for p, gr in zip(params, grads[k]):
                p.grad = torch.tensor(gr, dtype=torch.float64)
            opt.step()
            after.append([p.detach().numpy().copy() for p in params])
        for i in range(len(shapes)):
            out[f"{name}/p{i}/init"] = p0[i]
            out[f"{name}/p{i}/grads"] = np.stack([g[i] for g in grads])
            out[f"{name}/p{i}/after"] = np.stack([a[i] for a in after])
        out[f"{name}/lr"] = lrs
        out[f"{name}/momentum"] = moms
    out["torch_version"] = np.array(torch.__version__)
    path = Path(__file__).resolve().parents[1] / "data" / "optim_reference.npz"
    np.savez(path, **out)
    print("wrote", path, "with torch", torch.__version__)


if __name__ == "__main__":
    main()
