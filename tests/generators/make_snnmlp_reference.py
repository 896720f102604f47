"""Make PyTorch reference cases for npsnn's SNN-MLP (whole network, float64).

DEV-ONLY: torch is a tool for making the committed files, never a dependency of npsnn.

    ~/.venvs/npsnn-torch/bin/python tests/generators/make_snnmlp_reference.py

The official SNN-MLP runs its LIF only as CUDA kernels, so this script holds a small,
independent PyTorch model written from the published structure (same state_dict keys as the
official model). Its LIF along an axis is written with plain tensor ops; autograd then
treats the fire decisions (a comparison) as constants, exactly as the official kernel's
backward does. Drop path is off (rate 0) so both sides are deterministic.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]


class AxisLIF(nn.Module):
    def __init__(self, dim, group, tau, vth):
        super().__init__()
        self.dim, self.group = dim, group           # dim 2 = H, 3 = W of (B, C, H, W)
        self.tau = nn.Parameter(torch.tensor([tau]))
        self.Vth = nn.Parameter(torch.tensor([vth]))

    def forward(self, x):
        s, L = self.group, x.shape[self.dim]
        full = (L // s) * s
        rows = list(torch.unbind(x, self.dim))
        out = list(rows)
        for start in range(0, full, s):
            o = torch.zeros_like(rows[0])
            for j in range(start, start + s):
                u = self.tau * o + rows[j]
                fired = u > self.Vth
                out[j] = torch.where(fired, u, self.Vth.expand_as(u))
                o = torch.where(fired, torch.zeros_like(u), u)
        return torch.stack(out, self.dim)


def gn(c):
    return nn.GroupNorm(1, c)


class LIFModule(nn.Module):
    def __init__(self, c, group, tau, vth):
        super().__init__()
        self.conv1, self.conv2_1, self.conv2_2, self.conv3 = (nn.Conv2d(c, c, 1) for _ in range(4))
        self.norm1, self.norm2, self.norm3 = gn(c), gn(c), gn(c)
        self.dw1 = nn.Conv2d(c, c, 3, 1, 1, groups=c)
        self.lif1, self.lif2 = AxisLIF(2, group, tau, vth), AxisLIF(3, group, tau, vth)

    def forward(self, x):
        x = F.gelu(self.norm1(self.conv1(x)))
        x = F.gelu(self.norm2(self.dw1(x)))
        a = F.gelu(self.conv2_1(self.lif1(x)))
        b = F.gelu(self.conv2_2(self.lif2(x)))
        return self.conv3(self.norm3(a + b))


class Mlp(nn.Module):
    def __init__(self, c, hidden):
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, hidden, 1), nn.Conv2d(hidden, c, 1)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, c, group, tau, vth, ratio):
        super().__init__()
        self.norm1, self.norm2 = gn(c), gn(c)
        self.lif_module = LIFModule(c, group, tau, vth)
        self.mlp = Mlp(c, int(c * ratio))

    def forward(self, x):
        x = x + self.lif_module(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Merge(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = gn(4 * c)
        self.reduction = nn.Conv2d(4 * c, 2 * c, 1, bias=False)

    def forward(self, x):
        parts = [x[:, :, i::2, j::2] for i, j in ((0, 0), (1, 0), (0, 1), (1, 1))]
        return self.reduction(self.norm(torch.cat(parts, 1)))


class Layer(nn.Module):
    def __init__(self, blocks, down):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = down

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return self.downsample(x) if self.downsample is not None else x


class PatchEmbed(nn.Module):
    def __init__(self, cin, c, p):
        super().__init__()
        self.proj = nn.Conv2d(cin, c, p, p)
        self.norm = gn(c)

    def forward(self, x):
        return self.norm(self.proj(x))


class Net(nn.Module):
    def __init__(self, in_channels, embed_dim, depths, num_classes, patch_size, mlp_ratio,
                 group, lif_tau, lif_vth, **_):
        super().__init__()
        self.patch_embed = PatchEmbed(in_channels, embed_dim, patch_size)
        self.layers = nn.ModuleList()
        for i, d in enumerate(depths):
            c = embed_dim * 2 ** i
            self.layers.append(Layer([Block(c, group, lif_tau, lif_vth, mlp_ratio) for _ in range(d)],
                                     Merge(c) if i < len(depths) - 1 else None))
        c = embed_dim * 2 ** (len(depths) - 1)
        self.norm = gn(c)
        self.head = nn.Linear(c, num_classes)

    def forward(self, x):
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x).mean(dim=(2, 3)))


CASES = {
    "snnmlp_tiny": (dict(model="snn-mlp", in_channels=3, embed_dim=8, depths=[1, 2],
                         num_classes=5, image_size=16, patch_size=2, mlp_ratio=2.0, group=3,
                         drop_path_rate=0.0, lif_tau=0.3, lif_vth=0.05), 4, 21),
}


def main():
    torch.set_default_dtype(torch.float64)
    out_dir = ROOT / "tests" / "data" / "reference_snnmlp"
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, (config, B, seed) in CASES.items():
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        model = Net(**config)
        with torch.no_grad():               # GroupNorm affine away from 1 / 0
            for k, p in model.named_parameters():
                if ".norm" in k or k.startswith("norm"):
                    p.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, p.shape) if k.endswith("weight")
                                             else rng.uniform(-0.3, 0.3, p.shape)))
        params = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
        x = rng.normal(0, 1.0, (B, config["in_channels"], config["image_size"], config["image_size"]))
        y = rng.integers(0, config["num_classes"], B)
        logits = model(torch.from_numpy(x))
        loss = F.cross_entropy(logits, torch.from_numpy(y))
        loss.backward()
        out = {f"param/{k}": v for k, v in params.items()}
        out.update({f"grad/{k}": p.grad.numpy().copy() for k, p in model.named_parameters()})
        out.update(x=x, y=y, logits=logits.detach().numpy(), loss=np.array(loss.item()))
        np.savez_compressed(out_dir / f"{name}.npz", **out)
        (out_dir / f"{name}.json").write_text(json.dumps(
            dict(config=config, B=B, seed=seed, dtype="float64", torch=torch.__version__,
                 made_by="tests/generators/make_snnmlp_reference.py"), indent=1))
        print(name, (out_dir / f"{name}.npz").stat().st_size, "bytes")


if __name__ == "__main__":
    main()
