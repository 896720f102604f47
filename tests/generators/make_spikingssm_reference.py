"""Make PyTorch reference cases for npsnn's SpikingSSM (whole network, float64).

DEV-ONLY: torch is a tool for making the committed files, never a dependency of npsnn.

    ~/.venvs/npsnn-torch/bin/python tests/generators/make_spikingssm_reference.py

The official SpikingSSM (shenshuaijie/SDN ``models/spike/ss4d.py``) needs the state-spaces/s4
code base around it (its registry, ``DropoutNd``, the TorchScript SDN). This script holds a
small, independent PyTorch model written from that structure: the S4D kernel as in
``S4DKernel.forward``, the bidirectional padding, FFT convolution and D term of
``SS4D.forward``, the learnable threshold, the neurons of ``src/models/spike/neuron.py``
(``BPTTNueron``, ``SLTTNueron``, ``SDNNeuron``) with the ``piecewise_quadratic`` surrogate of
``src/models/spike/surrogate.py``, the GLU output, the residual stack of
``SpikingSSM.forward`` *including its post-norm whose result is discarded* (norm "none"),
S4's ``example.py`` post-norm (norm "post"), the official pre-norm (norm "pre"), the
``nn.Linear`` encoder and the mean-pool decoder of state-spaces/s4. The SDN neuron runs the
SDN of ``model.py`` (encoder, depthwise conv + BN, 1x1 conv + BN with residual, decoder)
in eval mode and float64 with the weights npsnn ships (``npsnn/models/assets``), so the
fixtures must be remade whenever those weights change. Dropout is 0, so both sides are
deterministic; torch's own initialisation is used, with the thresholds and LayerNorm
affine moved away from 0 / 1.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
SDN_WEIGHTS = ROOT / "npsnn" / "models" / "assets" / "sdn_tau0.125.npz"
OUT = ROOT / "tests" / "data" / "reference_spikingssm"


# -- surrogate and neurons (src/models/spike/surrogate.py, neuron.py) ----------------------
class PiecewiseQuadratic(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x >= 0).to(x)

    @staticmethod
    def backward(ctx, grad_output):
        x, = ctx.saved_tensors
        return (grad_output * (1.0 - x.abs())).masked_fill_(x.abs() > 1, 0)


surrogate = PiecewiseQuadratic.apply


class BPTTNeuron(nn.Module):
    def __init__(self, tau=0.125, detach_carry=False):
        super().__init__()
        self.tau, self.detach_carry = tau, detach_carry        # detach_carry: SLTT

    def forward(self, x):
        u = torch.zeros_like(x[..., 0])
        out = []
        for i in range(x.size(-1)):
            u = (u.detach() if self.detach_carry else u) * self.tau + x[..., i]
            s = surrogate(u - 1.0)
            out.append(s)
            u = (1 - s.detach()) * u + s.detach() * 0
        return torch.stack(out, -1)


class SDN(nn.Module):
    """model.py ``SDN`` with n_layers = 1."""

    def __init__(self, d_model=8, kernel_size=8):
        super().__init__()
        self.encoder = nn.Conv1d(1, d_model, 1, bias=False)
        self.spatial_layers = nn.ModuleList([nn.Sequential(
            nn.Conv1d(d_model, d_model, kernel_size, padding=kernel_size, groups=d_model),
            nn.BatchNorm1d(d_model))])
        self.feature_layers = nn.ModuleList([nn.Sequential(nn.Conv1d(d_model, d_model, 1),
                                                           nn.BatchNorm1d(d_model))])
        self.decoder = nn.Conv1d(d_model, 1, 1)

    def forward(self, x):
        L = x.size(-1)
        x = self.encoder(x)
        for spatial, features in zip(self.spatial_layers, self.feature_layers):
            x = F.relu(spatial(x)[..., :L])
            x = F.relu(features(x) + x)
        return self.decoder(x).squeeze(1)


class SDNNeuron(nn.Module):
    def __init__(self, sdn):
        super().__init__()
        self.sdn = [sdn]                     # a frozen tool, not a parameter of the network

    def forward(self, x):
        with torch.no_grad():
            shape, L = x.shape, x.size(-1)
            mem = self.sdn[0](x.detach().reshape(-1, 1, L)).reshape(shape)
        return surrogate(mem + x - 1.0)


# -- S4D kernel and the spiking S4D layer (models/spike/ss4d.py) ----------------------------
class S4DKernel(nn.Module):
    def __init__(self, d_model, N, channels, dt_min=0.001, dt_max=0.1):
        super().__init__()
        H = d_model
        self.log_dt = nn.Parameter(torch.rand(H) * (math.log(dt_max) - math.log(dt_min))
                                   + math.log(dt_min))
        self.C = nn.Parameter(torch.view_as_real(torch.randn(channels, H, N // 2,
                                                             dtype=torch.cdouble)))
        self.log_A_real = nn.Parameter(torch.log(0.5 * torch.ones(H, N // 2)))
        self.A_imag = nn.Parameter(math.pi * torch.arange(N // 2).repeat(H, 1).double())

    def forward(self, L):
        dt = torch.exp(self.log_dt)
        C = torch.view_as_complex(self.C)
        A = -torch.exp(self.log_A_real) + 1j * self.A_imag
        dtA = A * dt.unsqueeze(-1)
        K = dtA.unsqueeze(-1) * torch.arange(L)
        C = C * (torch.exp(dtA) - 1.0) / A
        return 2 * torch.einsum("chn, hnl -> chl", C, torch.exp(K)).real


class SS4D(nn.Module):
    def __init__(self, d_model, d_state, neuron, bidirectional, shared_vth, sdn):
        super().__init__()
        self.h, self.bidirectional = d_model, bidirectional
        self.D = nn.Parameter(torch.randn(1, d_model))
        self.ln_vth = nn.Parameter(torch.zeros(1) if shared_vth else torch.zeros(d_model, 1))
        self.kernel = S4DKernel(d_model, d_state, 2 if bidirectional else 1)
        self.neuron = {"bptt": BPTTNeuron(), "sltt": BPTTNeuron(detach_carry=True),
                       "sdn": SDNNeuron(sdn)}[neuron]
        self.output_linear = nn.Sequential(nn.Conv1d(d_model, 2 * d_model, 1), nn.GLU(dim=-2))

    def forward(self, u):
        L = u.size(-1)
        k = self.kernel(L)
        if self.bidirectional:
            k0, k1 = k[0:1], k[1:2]
            k = F.pad(k0, (0, L)) + F.pad(k1.flip(-1), (L, 0))
        k_f = torch.fft.rfft(k, n=2 * L)
        u_f = torch.fft.rfft(u, n=2 * L)
        y = torch.einsum("bhl,chl->bchl", u_f, k_f)
        y = torch.fft.irfft(y, n=2 * L)[..., :L]
        y = y + torch.einsum("bhl,ch->bchl", u, self.D)
        y = y.reshape(y.shape[0], -1, L)
        y = y / torch.exp(self.ln_vth)
        return self.output_linear(self.neuron(y))


class Net(nn.Module):
    def __init__(self, d_input, num_classes, d_model, n_layers, d_state, bidirectional, neuron,
                 norm, shared_vth, sdn, **_):
        super().__init__()
        self.norm = norm
        self.encoder = nn.Linear(d_input, d_model)
        self.s4_layers = nn.ModuleList([SS4D(d_model, d_state, neuron, bidirectional,
                                             shared_vth, sdn) for _ in range(n_layers)])
        self.norms = nn.ModuleList([nn.LayerNorm(d_model) for _ in range(n_layers)])
        self.decoder = nn.Linear(d_model, num_classes)

    def forward(self, x):                                    # x: (B, L, d_input)
        x = self.encoder(x).transpose(-1, -2)
        ln = lambda norm, z: norm(z.transpose(-1, -2)).transpose(-1, -2)   # noqa: E731
        for layer, norm in zip(self.s4_layers, self.norms):
            z = ln(norm, x) if self.norm == "pre" else x
            z = layer(z)
            x = z + x
            if self.norm == "none":
                z = ln(norm, z)          # the official post-norm: computed, then unused
            elif self.norm == "post":
                x = ln(norm, x)          # state-spaces/s4 example.py
        x = x.transpose(-1, -2)
        L = x.size(-2)
        return self.decoder(x.sum(dim=-2) / L)


BASE = dict(model="spikingssm", d_input=1, num_classes=5, d_model=8, n_layers=2, d_state=8,
            bidirectional=True, dropout=0.0, neuron="bptt", tau=0.125, learnable_vth=True,
            shared_vth=False, norm="none", smooth_spikes=False)
CASES = {       # name: (config, batch, seed)
    # the official sCIFAR structure (bidirectional, per-feature thresholds, no live norm)
    "bptt_official": (dict(BASE, seq_len=64), 3, 11),
    "sdn_official": (dict(BASE, seq_len=64, neuron="sdn"), 3, 12),
    # the other options: causal kernel, one shared threshold, LayerNorm after / before
    "bptt_post_shared_causal": (dict(BASE, seq_len=48, bidirectional=False, shared_vth=True,
                                     norm="post", n_layers=3), 2, 13),
    "sltt_pre": (dict(BASE, seq_len=40, neuron="sltt", norm="pre"), 2, 14),
}


def load_sdn():
    sdn = SDN()
    with np.load(SDN_WEIGHTS) as z:
        state = {k: torch.from_numpy(z[k].astype(np.float64) if z[k].dtype.kind == "f"
                                     else z[k]) for k in z.files if k != "meta"}
    sdn.load_state_dict(state)
    return sdn.double().eval()


def main():
    torch.set_default_dtype(torch.float64)
    OUT.mkdir(parents=True, exist_ok=True)
    sdn = load_sdn()
    for name, (config, B, seed) in CASES.items():
        L = config["seq_len"]
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        model = Net(**config, sdn=sdn)
        with torch.no_grad():
            for k, p in model.named_parameters():
                if k.endswith("ln_vth"):
                    p.copy_(torch.from_numpy(rng.uniform(-0.3, 0.3, p.shape)))
                elif k.startswith("norms."):
                    p.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, p.shape)
                                             if k.endswith("weight")
                                             else rng.uniform(-0.3, 0.3, p.shape)))
        x = rng.normal(0, 1.0, (B, L, config["d_input"]))
        y = rng.integers(0, config["num_classes"], B)
        logits = model(torch.from_numpy(x))
        loss = F.cross_entropy(logits, torch.from_numpy(y))
        loss.backward()
        # parameters that take part (norms with norm "none" get no gradient: not npsnn's)
        live = {k: p for k, p in model.named_parameters() if p.grad is not None}
        out = {f"param/{k}": p.detach().numpy().copy() for k, p in live.items()}
        out.update({f"grad/{k}": p.grad.numpy().copy() for k, p in live.items()})
        out.update(x=x.transpose(0, 2, 1).copy(), y=y, logits=logits.detach().numpy(),
                   loss=np.array(loss.item()))
        np.savez_compressed(OUT / f"{name}.npz", **out)
        (OUT / f"{name}.json").write_text(json.dumps(
            dict(config=config, B=B, seed=seed, dtype="float64", torch=torch.__version__,
                 sdn_weights=str(SDN_WEIGHTS.relative_to(ROOT)),
                 made_by="tests/generators/make_spikingssm_reference.py"), indent=1))
        print(name, (OUT / f"{name}.npz").stat().st_size, "bytes", "loss", loss.item())


if __name__ == "__main__":
    main()
