"""DEV-ONLY: load npsnn's exported .pth files in PyTorch and compare eval logits.

Run with the PyTorch + SpikingJelly venv (torch is never a dependency of npsnn):

    ~/.venvs/npsnn-torch/bin/python tests/generators/check_pth_export.py \\
        [CHECKPOINT.npz] [--official DIR]

CHECKPOINT: an npsnn checkpoint (default: the tutorial CIFAR-10 model in
tutorials/assets/). DIR: a checkout of the official EMI-Group/mixer-snn repository; its
``models/mixers_sparse_patchcell_origin.py`` (needs einops) is then loaded too.

For both layouts written by ``python -m npsnn export-pth`` it checks that
``torch.load(path, weights_only=True)`` accepts the file, that the reference model of
../shared/perf/torch_reference (and the official model, with --official) takes the weights
with ``load_state_dict(..., strict=True)``, that the official model's
``named_parameters()`` order is the order the train layout's optimizer state assumes, that
the train layout's optimizer and schedule load into the objects the official train.py
builds (``torch.optim.SGD`` + ``CosineAnnealingLR``) and take a step, and it prints the
largest difference between npsnn's and PyTorch's eval-mode logits on the bundled CIFAR-10
sample (float32 both; T from the checkpoint).
"""
import argparse
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
REF = ROOT.parent / "shared" / "perf" / "torch_reference"
sys.path[:0] = [str(ROOT), str(REF)]

import npsnn                                    # noqa: E402
import torch_smlpnet as R                       # noqa: E402
from npsnn.datasets import load_cifar, sample_path      # noqa: E402
from npsnn.datasets.transforms import normalize         # noqa: E402
from npsnn.io.pth_write import official_order           # noqa: E402
from npsnn.train.checkpoint import load_model           # noqa: E402


def export(checkpoint, out, layout):
    cmd = [sys.executable, "-m", "npsnn", "export-pth", str(checkpoint), str(out),
           "--layout", layout]
    subprocess.run(cmd, check=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT)})
    return out


def official_model(repo: Path, config: dict):
    spec = importlib.util.spec_from_file_location(
        "mixers_sparse_patchcell_origin", repo / "models" / "mixers_sparse_patchcell_origin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from spikingjelly.activation_based import functional
    model = module.sMLPNet(in_channels=config["in_channels"], dim=config["dim"],
                           alpha=config["alpha"], num_classes=config["num_classes"],
                           patch_size=config["patch_size"], image_size=config["image_size"],
                           depths=config["depths"])
    functional.set_step_mode(model, "m")
    return model


def logits_of(model, x, T):
    from spikingjelly.activation_based import functional
    model.eval()
    functional.reset_net(model)
    with torch.no_grad():
        out = model(torch.from_numpy(x)[None].repeat(T, 1, 1, 1, 1)).numpy()
    functional.reset_net(model)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint", nargs="?",
                    default=ROOT / "tutorials" / "assets" / "cifar10-p4-d48.npz")
    ap.add_argument("--official", type=Path, help="a checkout of EMI-Group/mixer-snn")
    ap.add_argument("--images", type=int, default=200)
    a = ap.parse_args()
    ours, info = load_model(a.checkpoint, dtype=np.float32)
    config, T = ours.config, int(info.get("args", {}).get("T", 4))
    images, labels = load_cifar(sample_path(), "test")
    x = normalize(images[:a.images])
    want = ours.forward_repeated(x, T)
    print(f"npsnn {a.checkpoint}: {ours.num_parameters():,} parameters, T={T}, "
          f"{len(x)} images, top-1 {np.mean(want.mean(0).argmax(1) == labels[:len(x)]):.3f}")
    with tempfile.TemporaryDirectory() as tmp:
        for layout in ("state_dict", "train"):
            path = export(a.checkpoint, Path(tmp) / f"{layout}.pth", layout)
            obj = torch.load(path, weights_only=True)
            state = obj if layout == "state_dict" else obj["model"]
            print(f"[{layout}] torch.load(weights_only=True): {type(obj).__name__} "
                  f"with {len(obj)} entries" + ("" if layout == "state_dict" else
                                                f" {sorted(obj)}"))
            ref = R.build(**{k: config[k] for k in ("in_channels", "dim", "alpha",
                                                    "num_classes", "patch_size",
                                                    "image_size", "depths", "spe")})
            R.load_arrays(ref, {k: v.numpy() for k, v in state.items()})     # strict
            got = logits_of(ref, x, T)
            print(f"[{layout}] reference model (torch_reference) strict load ok; eval logits "
                  f"max |npsnn - torch| = {np.abs(got - want).max():.3e} "
                  f"(max |logit| {np.abs(want).max():.2f}); predictions equal on "
                  f"{np.mean(got.mean(0).argmax(1) == want.mean(0).argmax(1)):.4f}")
            if a.official is None:
                continue
            official = official_model(a.official, config)
            official.load_state_dict(state, strict=True)
            got = logits_of(official, x, T)
            print(f"[{layout}] OFFICIAL sMLPNet (mixers_sparse_patchcell_origin) strict load "
                  f"ok; eval logits max |npsnn - torch| = {np.abs(got - want).max():.3e}; "
                  f"predictions equal on "
                  f"{np.mean(got.mean(0).argmax(1) == want.mean(0).argmax(1)):.4f}")
            names = [k for k, _ in official.named_parameters()]
            mine = [k for k in official_order(ours)
                    if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
            assert names == mine, "official parameter order differs from official_order"
            print(f"[{layout}] official named_parameters() order == npsnn official_order "
                  f"({len(names)} parameters)")
            if layout == "train":
                opt = torch.optim.SGD(official.parameters(), lr=0.1, momentum=0.9,
                                      weight_decay=0.0)
                sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=obj["args"]["epochs"])
                opt.load_state_dict(obj["optimizer"])
                sched.load_state_dict(obj["lr_scheduler"])
                official.train()
                loss = official(torch.from_numpy(x[:8])[None].repeat(T, 1, 1, 1, 1)).mean()
                loss.backward()
                opt.step()
                sched.step()
                print(f"[train] official SGD + CosineAnnealingLR load the optimizer and "
                      f"lr_scheduler entries and step (start epoch {obj['epoch'] + 1}, "
                      f"lr now {opt.param_groups[0]['lr']:.4g})")


if __name__ == "__main__":
    main()
