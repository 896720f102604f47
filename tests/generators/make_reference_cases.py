"""Make extra PyTorch + SpikingJelly reference cases for the sMLPNet exactness tests.

DEV-ONLY: torch is a tool for making these files, never a dependency of npsnn. The
committed outputs (``tests/data/reference/*.npz``) are what the tests read.

    bash ../shared/perf/torch_reference/setup_env.sh          # makes ~/.venvs/npsnn-torch
    ~/.venvs/npsnn-torch/bin/python tests/generators/make_reference_cases.py

Each case uses the independent reference model in ``../shared/perf/torch_reference``,
float64, random weights with BN parameters and running statistics randomised so that
every LIF layer fires, and stores the same fields as ``../shared/fixtures/smlpnet_*.npz``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

# Configurations deliberately unlike the shipped fixtures: odd widths, patch 2 and 8,
# alpha 1, one input channel, three stages, depth 2 in a late stage, other T and B.
CASES = {
    "spe_p2_alpha1": (dict(in_channels=3, dim=12, alpha=1, num_classes=7, patch_size=2,
                           image_size=16, depths=[1, 2], spe=True), 5, 3, 11),
    "spe_gray_3stage": (dict(in_channels=1, dim=9, alpha=2, num_classes=4, patch_size=4,
                             image_size=32, depths=[1, 1, 2], spe=True), 2, 5, 12),
    "plain_p8": (dict(in_channels=3, dim=8, alpha=3, num_classes=3, patch_size=8,
                      image_size=32, depths=[1, 1], spe=False), 6, 2, 13),
}


def make_case(R, torch, functional, config, T, B, seed):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = R.build(**config).double()
    arrays = R.state_arrays(model)
    for key, value in arrays.items():
        # BN affine parameters and running statistics away from their defaults, so that
        # every LIF fires and eval mode differs from train mode.
        if key.endswith(".weight") and value.ndim == 1 and "mlp_head" not in key:
            arrays[key] = rng.uniform(0.8, 2.0, value.shape)
        elif key.endswith(".bias") and value.ndim == 1 and not key.endswith(("proj_h.1.bias", "proj_w.1.bias", "net.0.bias", "net.3.bias", "mlp_head.1.bias")):
            arrays[key] = rng.uniform(-0.1, 0.6, value.shape)
        elif key.endswith("running_mean"):
            arrays[key] = rng.normal(0, 0.3, value.shape)
        elif key.endswith("running_var"):
            arrays[key] = rng.uniform(0.5, 2.0, value.shape)
        elif key.endswith("num_batches_tracked"):
            arrays[key] = np.array(int(rng.integers(0, 100)))
    R.load_arrays(model, arrays)
    params = {k: v.copy() for k, v in R.state_arrays(model).items()}
    x = rng.normal(0, 1.5, (B, config["in_channels"], config["image_size"], config["image_size"]))
    y = rng.integers(0, config["num_classes"], B)

    model.train()
    functional.reset_net(model)
    xt = torch.from_numpy(x)[None].repeat(T, 1, 1, 1, 1)
    logits = model(xt)
    loss = torch.nn.functional.cross_entropy(logits.mean(0), torch.from_numpy(y))
    model.zero_grad()
    loss.backward()
    out = {f"param/{k}": v for k, v in params.items()}
    out.update(x=x, y=y, T=np.array(T), train_logits=logits.detach().numpy(),
               train_loss=np.array(loss.item()))
    official = {R.official_key(k): p for k, p in model.named_parameters()}
    out.update({f"grad/{k}": p.grad.numpy().copy() for k, p in official.items()})
    after = R.state_arrays(model)
    out.update({f"after_train/{k}": v for k, v in after.items()
                if "running" in k or "num_batches" in k})

    R.load_arrays(model, params)
    model.eval()
    functional.reset_net(model)
    with torch.no_grad():
        out["eval_logits"] = model(xt).numpy()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", default=os.environ.get(
        "NPSNN_TORCH_REF", ROOT.parent / "shared" / "perf" / "torch_reference"),
        help="folder holding torch_smlpnet.py (default ../shared/perf/torch_reference)")
    ap.add_argument("--out", default=ROOT / "tests" / "data" / "reference")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(args.ref))
    import torch
    from spikingjelly.activation_based import functional
    import torch_smlpnet as R
    torch.set_default_dtype(torch.float64)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, (config, T, B, seed) in CASES.items():
        arrays = make_case(R, torch, functional, config, T, B, seed)
        np.savez_compressed(out_dir / f"{name}.npz", **arrays)
        (out_dir / f"{name}.json").write_text(json.dumps(
            dict(config=config, T=T, B=B, seed=seed, dtype="float64",
                 made_by="tests/generators/make_reference_cases.py", torch=torch.__version__), indent=1))
        print(name, (out_dir / f"{name}.npz").stat().st_size, "bytes")


if __name__ == "__main__":
    main()
