"""sMLPNet: the spiking MLP network of Li, Leng et al. (arXiv 2306.12465), the plain model.

The layer tree mirrors the official mixer-snn module tree, so every parameter and BN
buffer is named by its official ``state_dict`` key (``token_mix.3.proj_h.1.weight``).
This file is the textbook version: every child runs its own forward and backward, and eval
mode runs BN with its running statistics. :mod:`npsnn.models.smlpnet_fast` holds the
opt-in twin (fused kernels, eval-mode BN folding; same tree, same names, tested equal) that
:func:`npsnn.build` uses unless ``fast=False``.

Internally activations are **channels-last**, ``(T, B, H, W, C)``: the 1x1 "fuse" conv, the
channel-mixer Linears and the im2col convs then write their GEMM results directly in the
layout the next op reads, and ``(T, B, H, W, C)`` *is* the token layout ``(T, B, N, C)``
(N = H*W, row-major) without a copy. The public entry points take and return the
official ``(T, B, C, H, W)`` layout.

Stage ``i`` (``depths[i]`` blocks), exactly as the official forward::

    h = patch_embed_i(x);  x = LIF(h)
    for each block:  t = token_mix(x);  x = LIF_t(h + t);  x = LIF_c(h + t + channel_mix(x))

``h`` is re-used by every block of the stage. Head: BN2d on the spikes, mean over H and W,
Linear -> logits ``(T, B, classes)``. Every LIF has the config's ``neuron`` options
(SpikingJelly's LIFNode defaults with ``detach_reset=True`` unless the config says otherwise).
"""
from __future__ import annotations

import numpy as np

from .._checks import expect_array, expect_positive_int, expect_shape
from ..containers import Identity, ModuleList, Sequential
from ..module import Module
from ..ops.axis_projection import AxisProjection
from ..ops.batchnorm import BatchNorm
from ..ops.conv import Conv2d
from ..ops.lif import LIF
from ..ops.linear import Linear
from ..ops.shape import mean_pool_hw_backward, mean_pool_hw_forward, sum_to_shape
from .config import NEURON_DEFAULTS, complete, neuron_options
from .registry import ModelSpec

# Axes of a channels-last multi-step tensor (T, B, H, W, C).
H_AXIS, W_AXIS, C_AXIS = 2, 3, 4


class ConvBN(Sequential):
    """``Conv2d(no bias) -> BN2d``, children ``0`` and ``1`` as in the official code."""

    def __init__(self, cin, cout, kernel, stride, padding, *, dtype, rng):
        super().__init__(Conv2d(cin, cout, kernel, stride, padding, bias=False, layout="NHWC",
                                dtype=dtype, rng=rng),
                         BatchNorm(cout, axis=C_AXIS, dtype=dtype))

    def forward_repeated(self, x, repeat: int):
        """x: (1, B, H, W, C), one time step of an input presented ``repeat`` times.

        Conv and BN statistics are those of the repeated tensor; only BN's unbiased
        running-variance factor n/(n-1) needs the true count n = repeat * B * Ho * Wo.
        -> (1, B, Ho, Wo, C_out); the caller broadcasts it over time.
        """
        if not self.training:
            return self.forward(x)
        y = self[0].forward(x)
        return self[1].forward(y, count=repeat * (y.size // y.shape[-1]))


class PatchCell(Module):
    """Spiking patch encoding (SPE) between stages: a small DAG of 3x3 convs.

    ``a_k = BN(conv3x3/s2(x))`` for k = 1, 2, 3 (three convs of the same input),
    ``n2 = a2 + BN(conv3x3(LIF_0(a1)))``, ``n3 = a3 + a1 + BN(conv3x3(LIF_1(n2)))``,
    ``out = concat([a1, n2, n3], channels)``.
    x: (T, B, H, W, C_in) -> (T, B, H/2, W/2, C_out), C_out = 3 * node width.
    """

    ConvBN = ConvBN                 # the conv blocks it builds (the fast twin swaps them)

    def __init__(self, cin: int, cout: int, *, neuron: dict | None = None, dtype, rng):
        super().__init__()
        if cout % 3:
            raise ValueError(f"PatchCell needs C_out divisible by 3 (three nodes), got {cout}")
        n = cout // 3
        self.node_width = n
        neuron = dict(NEURON_DEFAULTS, **(neuron or {}))
        self.cell2node = self.add_child("cell2node", ModuleList(
            self.ConvBN(cin, n, 3, 2, 1, dtype=dtype, rng=rng) for _ in range(3)))
        self.node1_node2 = self.add_child("node1_node2",
                                          self.ConvBN(n, n, 3, 1, 1, dtype=dtype, rng=rng))
        self.node2_node3 = self.add_child("node2_node3",
                                          self.ConvBN(n, n, 3, 1, 1, dtype=dtype, rng=rng))
        self.lif = self.add_child("lif", ModuleList([LIF(**neuron), LIF(**neuron)]))

    def forward(self, x):
        a1, a2, a3 = self._nodes_forward(x)
        n2 = a2 + self.node1_node2.forward(self.lif[0].forward(a1))
        n3 = a3 + a1 + self.node2_node3.forward(self.lif[1].forward(n2))
        return np.concatenate([a1, n2, n3], axis=-1)

    def backward(self, dout):
        n = self.node_width
        da1, dn2, dn3 = dout[..., :n], dout[..., n:2 * n], dout[..., 2 * n:]
        # n3 = a3 + a1 + conv(LIF_1(n2))
        dn2 = dn2 + self.lif[1].backward(self.node2_node3.backward(np.ascontiguousarray(dn3)))
        # n2 = a2 + conv(LIF_0(a1))
        da1 = da1 + dn3 + self.lif[0].backward(self.node1_node2.backward(dn2))
        return self._nodes_backward(da1, dn2, dn3)          # da2 = dn2, da3 = dn3

    def _nodes_forward(self, x):
        """a_k = cell2node[k](x), k = 1, 2, 3."""
        return [node.forward(x) for node in self.cell2node]

    def _nodes_backward(self, da1, da2, da3):
        """a1, a2, a3 all read x: their input gradients add up."""
        dx = self.cell2node[0].backward(np.ascontiguousarray(da1))
        dx += self.cell2node[1].backward(np.ascontiguousarray(da2))
        dx += self.cell2node[2].backward(np.ascontiguousarray(da3))
        return dx


class TokenMixer(Module):
    """Spiking token mixer (``sMLPBlock``): mix along H, mix along W, fuse with the input.

    ``x_h = LIF(BN_H(proj_H(x)))``, ``x_w = LIF(BN_W(proj_W(x)))``,
    ``out = BN2d(fuse([x, x_h, x_w]))`` with fuse a 1x1 conv 3C -> C without bias.
    Children keep the official indices: ``proj_h.1`` projection, ``proj_h.2`` BN,
    ``proj_h.3`` LIF (``.0`` and ``.4`` are the official Rearranges).
    x: (T, B, S, S, C) spikes -> (T, B, S, S, C).
    """

    ConvBN = ConvBN

    def __init__(self, size: int, channels: int, *, neuron: dict | None = None, dtype, rng):
        super().__init__()
        self.channels = channels
        neuron = dict(NEURON_DEFAULTS, **(neuron or {}))
        self.proj_h = self.add_child("proj_h", Sequential(
            Identity(), AxisProjection(size, axis=H_AXIS, dtype=dtype, rng=rng),
            BatchNorm(size, axis=H_AXIS, dtype=dtype), LIF(**neuron), Identity()))
        self.proj_w = self.add_child("proj_w", Sequential(
            Identity(), AxisProjection(size, axis=W_AXIS, dtype=dtype, rng=rng),
            BatchNorm(size, axis=W_AXIS, dtype=dtype), LIF(**neuron), Identity()))
        self.fuse = self.add_child("fuse", self.ConvBN(3 * channels, channels, 1, 1, 0,
                                                       dtype=dtype, rng=rng))

    def forward(self, x):
        parts = [x, self.proj_h.forward(x), self.proj_w.forward(x)]
        return self.fuse.forward(np.concatenate(parts, axis=-1))

    def backward(self, dout):
        c = self.channels
        d = self.fuse.backward(dout)                   # the gradient of [x | x_h | x_w]
        dx = d[..., :c] + self.proj_h.backward(d[..., c:2 * c])
        dx += self.proj_w.backward(d[..., 2 * c:])
        return dx


class ChannelMixer(Module):
    """Channel mixer (``FeedForward``) on tokens, official key ``channel_mix.<i>.1.net.*``.

    ``Linear(C, alpha C) -> BN1d(N) -> LIF -> Linear(alpha C, C) -> BN1d(N)``, where BN1d
    takes the **token axis N** as its feature axis (statistics per token over T, B and
    channels), the official choice.
    x: (T, B, S, S, C) spikes -> (T, B, S, S, C); viewed as tokens (T, B, N, C), N = S*S.
    """

    def __init__(self, size: int, channels: int, alpha: int, *, neuron: dict | None = None,
                 dtype, rng):
        super().__init__()
        neuron = dict(NEURON_DEFAULTS, **(neuron or {}))
        hidden, ntok = alpha * channels, size * size
        self.add_child("0", Identity())
        feed = self.add_child("1", Module())
        self.net = feed.add_child("net", Sequential(
            Linear(channels, hidden, dtype=dtype, rng=rng), BatchNorm(ntok, axis=2, dtype=dtype),
            LIF(**neuron), Linear(hidden, channels, dtype=dtype, rng=rng),
            BatchNorm(ntok, axis=2, dtype=dtype)))

    def forward(self, x):
        T, B, H, W, C = x.shape
        return self.net.forward(x.reshape(T, B, H * W, C)).reshape(x.shape)

    def backward(self, dout):
        T, B, H, W, C = dout.shape
        return self.net.backward(dout.reshape(T, B, H * W, C)).reshape(dout.shape)


class SMLPNet(Module):
    """The whole network. Build it with :func:`npsnn.build` (presets, config checks).

    The class attributes name the blocks it builds; the fast twin
    (:class:`npsnn.models.smlpnet_fast.FastSMLPNet`) only swaps them.
    """

    ConvBN, PatchCell, TokenMixer, ChannelMixer = ConvBN, PatchCell, TokenMixer, ChannelMixer

    def __init__(self, in_channels=3, dim=96, alpha=3, num_classes=1000, patch_size=4,
                 image_size=224, depths=(2, 8, 14, 2), spe=True, neuron=None, *,
                 dtype=np.float32, seed: int = 0):
        super().__init__()
        rng = np.random.default_rng(seed)
        neuron = dict(NEURON_DEFAULTS, **(neuron or {}))
        self.config = dict(model="smlpnet", in_channels=in_channels, dim=dim, alpha=alpha,
                           num_classes=num_classes, patch_size=patch_size,
                           image_size=image_size, depths=list(depths), spe=spe,
                           neuron=dict(neuron))
        self.dtype = np.dtype(dtype)
        self.depths = list(depths)
        grid = image_size // patch_size
        self.to_patch_embedding = self.add_child("to_patch_embedding", ModuleList())
        self.to_patch_embedding_lif = self.add_child("to_patch_embedding_lif", ModuleList())
        self.token_mix = self.add_child("token_mix", ModuleList())
        self.token_mix_lif = self.add_child("token_mix_lif", ModuleList())
        self.channel_mix = self.add_child("channel_mix", ModuleList())
        self.channel_mix_lif = self.add_child("channel_mix_lif", ModuleList())
        for i, depth in enumerate(self.depths):
            c, size = dim * 2 ** i, grid // 2 ** i
            if i == 0:
                embed = self.ConvBN(in_channels, c, patch_size, patch_size, 0, dtype=dtype,
                                    rng=rng)
            elif spe:
                embed = self.PatchCell(c // 2, c, neuron=neuron, dtype=dtype, rng=rng)
            else:
                embed = self.ConvBN(c // 2, c, 2, 2, 0, dtype=dtype, rng=rng)
            self.to_patch_embedding.append(embed)
            self.to_patch_embedding_lif.append(LIF(**neuron))
            for _ in range(depth):
                self.token_mix.append(self.TokenMixer(size, c, neuron=neuron, dtype=dtype,
                                                      rng=rng))
                self.token_mix_lif.append(LIF(**neuron))
                self.channel_mix.append(self.ChannelMixer(size, c, alpha, neuron=neuron,
                                                          dtype=dtype, rng=rng))
                self.channel_mix_lif.append(LIF(**neuron))
        c_last = dim * 2 ** (len(self.depths) - 1)
        self.batch_norm = self.add_child("batch_norm", BatchNorm(c_last, axis=C_AXIS, dtype=dtype))
        self.mlp_head = self.add_child("mlp_head", Sequential(
            Identity(), Linear(c_last, num_classes, dtype=dtype, rng=rng)))
        self._trace = None

    # -- forward ------------------------------------------------------------------------
    def _check_input(self, x, name, lead):
        cfg = self.config
        expect_array("SMLPNet", name, x)
        expect_shape("SMLPNet", name, x, lead + (cfg["in_channels"], cfg["image_size"],
                                                 cfg["image_size"]))
        if x.dtype != self.dtype:
            raise TypeError(f"SMLPNet was built with dtype {self.dtype} but {name} has dtype "
                            f"{x.dtype}; convert with {name}.astype(np.{self.dtype})")

    def forward(self, x_seq: np.ndarray) -> np.ndarray:
        """x_seq: (T, B, C_in, H, W) -> logits (T, B, classes)."""
        self._check_input(x_seq, "x_seq", ("T", "B"))
        return self._run(np.ascontiguousarray(x_seq.transpose(0, 1, 3, 4, 2)))

    def forward_repeated(self, images: np.ndarray, T: int) -> np.ndarray:
        """Direct encoding: ``images`` (B, C_in, H, W) presented at each of ``T`` steps.

        Same result as ``forward(np.repeat(images[None], T, 0))`` but the stage-0 conv and
        its BN run once (the input is identical at every step); BN still counts
        n = T*B*H*W samples for its unbiased running variance, as PyTorch does on the
        repeated tensor. -> logits (T, B, classes).
        """
        T = expect_positive_int("SMLPNet.forward_repeated", "T", T)
        self._check_input(images, "images", ("B",))
        x = np.ascontiguousarray(images.transpose(0, 2, 3, 1))[None]
        return self._run(x, repeat=T)

    def _run(self, x, repeat=None):
        trace = []
        shift = 0
        for i, depth in enumerate(self.depths):
            embed = self.to_patch_embedding[i]
            if i == 0 and repeat is not None:
                h = embed.forward_repeated(x, repeat)          # (1, B, ...): once, not T times
                x = self.to_patch_embedding_lif[i].forward(
                    np.broadcast_to(h, (repeat,) + h.shape[1:]))
            else:
                h = embed.forward(x)
                x = self.to_patch_embedding_lif[i].forward(h)
            for j in range(shift, shift + depth):
                t = self.token_mix[j].forward(x)
                u = h + t
                x = self.token_mix_lif[j].forward(u)
                x = self.channel_mix_lif[j].forward(u + self.channel_mix[j].forward(x))
            trace.append(h.shape)
            shift += depth
        self._trace = trace
        y = self.batch_norm.forward(x)
        pooled, self._pool_cache = mean_pool_hw_forward(y)
        return self.mlp_head.forward(pooled)

    # -- backward -----------------------------------------------------------------------
    def backward(self, dlogits: np.ndarray) -> None:
        """Accumulate parameter gradients for ``dlogits`` (T, B, classes). Returns None
        (the input is an image, its gradient is never needed)."""
        if self._trace is None:
            raise RuntimeError("SMLPNet.backward called before forward")
        dpooled = self.mlp_head.backward(dlogits)
        dy = mean_pool_hw_backward(dpooled, self._pool_cache)
        dx = self.batch_norm.backward(np.ascontiguousarray(dy))
        shift = sum(self.depths)
        for i in reversed(range(len(self.depths))):
            h_shape = self._trace[i]
            shift -= self.depths[i]
            dh = np.zeros(h_shape, dtype=dx.dtype)
            for j in reversed(range(shift, shift + self.depths[i])):
                du = self.channel_mix_lif[j].backward(dx)
                dx_mid = self.channel_mix[j].backward(du)
                du = du + self.token_mix_lif[j].backward(dx_mid)
                dh += sum_to_shape(du, h_shape)
                dx = self.token_mix[j].backward(du)
            dh += sum_to_shape(self.to_patch_embedding_lif[i].backward(dx), h_shape)
            if i > 0:
                dx = self.to_patch_embedding[i].backward(dh)
            else:
                self.to_patch_embedding[i].backward(dh)
        self._trace = None

    # -- monitoring -----------------------------------------------------------------------
    def firing_rates(self) -> dict[str, np.ndarray]:
        """Per LIF layer (by module path), the fraction of neurons that spiked at each time
        step in the last forward: ``{path: (T,)}``."""
        return {path: module.firing_rate for path, module in self.named_modules()
                if isinstance(module, LIF) and getattr(module, "firing_rate", None) is not None}


# -- presets and config ---------------------------------------------------------------------
_IMAGENET = dict(in_channels=3, alpha=3, num_classes=1000, patch_size=4, image_size=224,
                 depths=[2, 8, 14, 2])
_CIFAR10 = dict(in_channels=3, alpha=3, num_classes=10, image_size=32, spe=True)

#: Paper ImageNet models (image 224, patch 4, alpha 3, depths [2, 8, 14, 2], 1000 classes):
#: ``mlp-spe-t`` (dim 78, SPE, 25.2M), ``mlp-s`` (dim 96, no SPE, 34.5M), ``mlp-spe-s``
#: (dim 96, SPE, 38.0M). CIFAR-10 presets (image 32, 10 classes) are ours.
PRESETS: dict[str, dict] = {
    "mlp-spe-t": dict(_IMAGENET, dim=78, spe=True),
    "mlp-s": dict(_IMAGENET, dim=96, spe=False),
    "mlp-spe-s": dict(_IMAGENET, dim=96, spe=True),
    "cifar10-p4-d48": dict(_CIFAR10, dim=48, patch_size=4, depths=[1, 2, 1]),
    "cifar10-p4-d96": dict(_CIFAR10, dim=96, patch_size=4, depths=[2, 2, 2]),
    "cifar10-p2-d48": dict(_CIFAR10, dim=48, patch_size=2, depths=[2, 2, 2]),
}

CONFIG_KEYS = ("model", "in_channels", "dim", "alpha", "num_classes", "patch_size",
               "image_size", "depths", "spe", "neuron")
CONFIG_DEFAULTS = dict(model="smlpnet", in_channels=3, alpha=3, spe=True, neuron=None)


def resolve(config: dict) -> dict:
    """A (partial) sMLPNet config -> the complete, checked config.

    Keys: in_channels, dim, alpha (channel-mixer expansion), num_classes, patch_size,
    image_size, depths (blocks per stage), spe (spiking patch encoding between stages),
    neuron (LIF options, see :data:`npsnn.models.config.NEURON_DEFAULTS`; configs written
    before it existed get the defaults, which are what they were built with).
    """
    cfg, bad = complete("sMLPNet", config, CONFIG_KEYS, CONFIG_DEFAULTS,
                        ("in_channels", "dim", "alpha", "num_classes", "patch_size",
                         "image_size"))
    if cfg["model"] != "smlpnet":
        raise bad(f"'model' must be 'smlpnet' here, got {cfg['model']!r}")
    if not isinstance(cfg["spe"], (bool, np.bool_)):
        raise bad(f"'spe' must be True or False, got {cfg['spe']!r}")
    cfg["spe"] = bool(cfg["spe"])
    if cfg["spe"]:
        for i in range(1, len(cfg["depths"])):
            width = cfg["dim"] * 2 ** i
            if width % 3:
                raise bad(f"SPE splits each stage width into three nodes, but stage {i} has "
                          f"width dim * 2^{i} = {width}, not divisible by 3; choose dim "
                          f"divisible by 3 or set spe=False")
    cfg["neuron"] = neuron_options(cfg["neuron"], bad)
    return cfg


def infer_config(state: dict) -> dict | None:
    """Guess the sMLPNet architecture of an official state dict from its shapes -> a config
    dict (the architecture keys; :func:`resolve` completes it), or None if the keys are not
    sMLPNet's or the shapes make no valid config. A state dict does not show the neuron
    options: a model built from the guess has the defaults."""
    try:
        dim, in_channels, patch, _ = state["to_patch_embedding.0.0.weight"].shape
        num_classes = state["mlp_head.1.weight"].shape[0]
        grid = state["token_mix.0.proj_h.1.weight"].shape[0]
        alpha = state["channel_mix.0.1.net.0.weight"].shape[0] // dim
        stages = 1 + max(int(k.split(".")[1]) for k in state
                         if k.startswith("to_patch_embedding."))
        widths = [state[f"token_mix.{j}.fuse.0.weight"].shape[0]
                  for j in range(len(state)) if f"token_mix.{j}.fuse.0.weight" in state]
    except (KeyError, ValueError, IndexError, TypeError, AttributeError):
        return None
    depths = [widths.count(dim * 2 ** i) for i in range(stages)]
    spe = "to_patch_embedding.1.cell2node.0.0.weight" in state
    guess = dict(in_channels=int(in_channels), dim=int(dim), alpha=int(alpha),
                 num_classes=int(num_classes), patch_size=int(patch),
                 image_size=int(grid * patch), depths=depths, spe=spe)
    try:
        resolve(guess)
    except (ValueError, TypeError):
        return None
    return guess


SPEC = ModelSpec(name="smlpnet", model_class=SMLPNet, resolve=resolve, presets=PRESETS,
                 time_axis=True, fast_class="npsnn.models.smlpnet_fast.FastSMLPNet",
                 summary="sMLPNet (Li, Leng et al. 2023): spiking token and channel mixers, "
                         "T time steps")
