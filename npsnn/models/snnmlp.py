"""SNN-MLP: an MLP whose token mixing runs a full-precision LIF *across patches*.

"Brain-inspired Multilayer Perceptron with Spiking Neurons" (Li W. et al., CVPR 2022;
official code huawei-noah/Efficient-AI-Backbones, ``snnmlp_pytorch``). Unlike sMLPNet there
is no time axis: the model maps images ``(B, 3, H, W)`` to logits ``(B, classes)``; the
"time" of each LIF is the position along H or W inside a group of ``group`` rows
(``npsnn/ops/axis_lif.py``).

The layer tree mirrors the official module tree, so parameters carry the official
``state_dict`` keys (``layers.2.blocks.0.lif_module.dw1.weight``, ``...lif1.Vth``; our AxisLIF
calls its threshold ``v_threshold``, which :meth:`SNNMLP.state_dict` renames to ``Vth``).
Activations are channels-last ``(B, H, W, C)`` inside, so every 1x1 conv is one GEMM over
``B*H*W`` rows. Structure (GN = GroupNorm with one group, all 1x1 convs with bias unless said)::

    patch_embed:  conv p x p / stride p (bias) -> GN
    block:        x = x + DropPath(LIFModule(GN(x)));   x = x + DropPath(MLP(GN(x)))
    LIFModule:    conv1 -> GN -> GELU -> dw 3x3 (bias) -> GN -> GELU
                  -> [LIF_H -> conv2_1 -> GELU] + [LIF_W -> conv2_2 -> GELU] -> GN -> conv3
    MLP:          fc1 (C -> ratio C) -> GELU -> fc2
    downsample:   2x2 space-to-depth, order (0::2, 0::2), (1::2, 0::2), (0::2, 1::2),
                  (1::2, 1::2) on channels -> GN(4C) -> 1x1 conv 4C -> 2C without bias
    head:         GN -> mean over H, W -> Linear

Drop-path rates rise linearly over all blocks from 0 to ``drop_path_rate``; the draws come
from the model's own generator ``model.rng`` (seeded; part of a checkpoint for exact resume).
"""
from __future__ import annotations

import numpy as np

from .._checks import expect_array, expect_shape
from ..containers import ModuleList
from ..module import Module
from ..ops.axis_lif import AxisLIF
from ..ops.conv import Conv2d
from ..ops.depthwise_conv import DepthwiseConv2d
from ..ops.drop_path import DropPath
from ..ops.gelu import GELU
from ..ops.groupnorm import GroupNorm
from ..ops.linear import Linear
from ..ops.shape import mean_pool_hw_backward, mean_pool_hw_forward
from .config import complete
from .registry import ModelSpec


class StaticConv2d(Conv2d):
    """Conv2d on single-step channels-last input (B, H, W, C) (the layer itself is multi-step)."""

    def __init__(self, cin, cout, kernel, stride=1, padding=0, bias=True, *, dtype, rng):
        super().__init__(cin, cout, kernel, stride, padding, bias=bias, layout="NHWC",
                         dtype=dtype, rng=rng)

    def forward(self, x):
        return super().forward(x[None])[0]

    def backward(self, dy):
        dx = super().backward(dy[None])
        return None if dx is None else dx[0]


def _gn(channels, dtype):
    return GroupNorm(1, channels, dtype=dtype)


class LIFModule(Module):
    """The token mixer: local mixing, then LIFs along H and along W, merged. (B,H,W,C) -> same."""

    def __init__(self, dim, group, tau, v_threshold, *, dtype, rng):
        super().__init__()
        self.conv1 = self.add_child("conv1", StaticConv2d(dim, dim, 1, dtype=dtype, rng=rng))
        self.norm1 = self.add_child("norm1", _gn(dim, dtype))
        self.act1 = self.add_child("act1", GELU())
        self.dw1 = self.add_child("dw1", DepthwiseConv2d(dim, 3, 1, 1, dtype=dtype, rng=rng))
        self.norm2 = self.add_child("norm2", _gn(dim, dtype))
        self.act2 = self.add_child("act2", GELU())
        self.lif1 = self.add_child("lif1", AxisLIF("h", group, tau, v_threshold, layout="NHWC",
                                                   dtype=dtype))
        self.lif2 = self.add_child("lif2", AxisLIF("w", group, tau, v_threshold, layout="NHWC",
                                                   dtype=dtype))
        self.conv2_1 = self.add_child("conv2_1", StaticConv2d(dim, dim, 1, dtype=dtype, rng=rng))
        self.conv2_2 = self.add_child("conv2_2", StaticConv2d(dim, dim, 1, dtype=dtype, rng=rng))
        self.act_h = self.add_child("act_h", GELU())
        self.act_w = self.add_child("act_w", GELU())
        self.norm3 = self.add_child("norm3", _gn(dim, dtype))
        self.conv3 = self.add_child("conv3", StaticConv2d(dim, dim, 1, dtype=dtype, rng=rng))

    def forward(self, x):
        x = self.act1.forward(self.norm1.forward(self.conv1.forward(x)))
        x = self.act2.forward(self.norm2.forward(self.dw1.forward(x)))
        along_h = self.act_h.forward(self.conv2_1.forward(self.lif1.forward(x)))
        along_w = self.act_w.forward(self.conv2_2.forward(self.lif2.forward(x)))
        return self.conv3.forward(self.norm3.forward(along_h + along_w))

    def backward(self, dy):
        d = self.norm3.backward(self.conv3.backward(dy))
        dx = self.lif1.backward(self.conv2_1.backward(self.act_h.backward(d)))
        dx += self.lif2.backward(self.conv2_2.backward(self.act_w.backward(d)))
        dx = self.dw1.backward(self.norm2.backward(self.act2.backward(dx)))
        return self.conv1.backward(self.norm1.backward(self.act1.backward(dx)))


class LIFBlock(Module):
    """``x = x + DropPath(LIFModule(GN(x)))``, then ``x = x + DropPath(MLP(GN(x)))``."""

    def __init__(self, dim, group, tau, v_threshold, mlp_ratio, drop_path, *, dtype, rng):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = self.add_child("norm1", _gn(dim, dtype))
        self.lif_module = self.add_child("lif_module", LIFModule(
            dim, group, tau, v_threshold, dtype=dtype, rng=rng))
        self.norm2 = self.add_child("norm2", _gn(dim, dtype))
        self.mlp = self.add_child("mlp", Module())
        self.fc1 = self.mlp.add_child("fc1", StaticConv2d(dim, hidden, 1, dtype=dtype, rng=rng))
        self.act = self.mlp.add_child("act", GELU())
        self.fc2 = self.mlp.add_child("fc2", StaticConv2d(hidden, dim, 1, dtype=dtype, rng=rng))
        # Two independent draws per step (the official block applies one DropPath twice).
        self.drop_path = self.add_child("drop_path", DropPath(drop_path, rng))
        self.drop_path_mlp = self.add_child("drop_path_mlp", DropPath(drop_path, rng))

    def forward(self, x):
        x = x + self.drop_path.forward(self.lif_module.forward(self.norm1.forward(x)))
        mlp = self.fc2.forward(self.act.forward(self.fc1.forward(self.norm2.forward(x))))
        return x + self.drop_path_mlp.forward(mlp)

    def backward(self, dy):
        d = self.drop_path_mlp.backward(dy)
        dx = dy + self.norm2.backward(self.fc1.backward(self.act.backward(self.fc2.backward(d))))
        d = self.drop_path.backward(dx)
        return dx + self.norm1.backward(self.lif_module.backward(d))


class PatchMerging(Module):
    """2x2 space-to-depth -> GN(4C) -> 1x1 conv 4C -> 2C (no bias). (B,H,W,C) -> (B,H/2,W/2,2C)."""

    # (row offset, column offset) of the four sub-grids, in the official concat order
    OFFSETS = ((0, 0), (1, 0), (0, 1), (1, 1))

    def __init__(self, dim, *, dtype, rng):
        super().__init__()
        self.norm = self.add_child("norm", _gn(4 * dim, dtype))
        self.reduction = self.add_child("reduction", StaticConv2d(4 * dim, 2 * dim, 1, bias=False,
                                                                  dtype=dtype, rng=rng))
        self._shape = None

    def forward(self, x):
        self._shape = x.shape
        y = np.concatenate([x[:, i::2, j::2] for i, j in self.OFFSETS], axis=-1)
        return self.reduction.forward(self.norm.forward(y))

    def backward(self, dy):
        d = self.norm.backward(self.reduction.backward(dy))
        C = self._shape[-1]
        dx = np.empty(self._shape, dtype=d.dtype)
        for k, (i, j) in enumerate(self.OFFSETS):
            dx[:, i::2, j::2] = d[..., k * C:(k + 1) * C]
        return dx


class BasicLayer(Module):
    """One stage: ``blocks.<j>`` then (all stages but the last) ``downsample``."""

    def __init__(self, blocks, downsample):
        super().__init__()
        self.blocks = self.add_child("blocks", ModuleList(blocks))
        self.downsample = self.add_child("downsample", downsample) if downsample else None

    def forward(self, x):
        for block in self.blocks:
            x = block.forward(x)
        return self.downsample.forward(x) if self.downsample else x

    def backward(self, dy):
        if self.downsample:
            dy = self.downsample.backward(dy)
        for block in reversed(list(self.blocks)):
            dy = block.backward(dy)
        return dy


class SNNMLP(Module):
    """The whole network; build it with ``npsnn.build("snn-mlp-t")`` or a config dict."""

    OFFICIAL_RENAMES = {".v_threshold": ".Vth"}

    def __init__(self, in_channels=3, embed_dim=96, depths=(2, 2, 6, 2), num_classes=1000,
                 image_size=224, patch_size=4, mlp_ratio=4.0, group=4, drop_path_rate=0.2,
                 lif_tau=0.25, lif_vth=0.1, *, dtype=np.float32, seed: int = 0):
        super().__init__()
        self.config = dict(model="snn-mlp", in_channels=in_channels, embed_dim=embed_dim,
                           depths=list(depths), num_classes=num_classes, image_size=image_size,
                           patch_size=patch_size, mlp_ratio=mlp_ratio, group=group,
                           drop_path_rate=drop_path_rate, lif_tau=lif_tau, lif_vth=lif_vth)
        self.dtype = np.dtype(dtype)
        init_rng = np.random.default_rng(seed)
        self.rng = np.random.default_rng([seed, 1])      # drop-path draws
        self.patch_embed = self.add_child("patch_embed", Module())
        self.patch_embed.add_child("proj", StaticConv2d(in_channels, embed_dim, patch_size,
                                                        patch_size, dtype=dtype, rng=init_rng))
        self.patch_embed.add_child("norm", _gn(embed_dim, dtype))
        rates = np.linspace(0, drop_path_rate, sum(depths))
        self.layers = self.add_child("layers", ModuleList())
        k = 0
        for i, depth in enumerate(depths):
            dim = embed_dim * 2 ** i
            blocks = []
            for _ in range(depth):
                blocks.append(LIFBlock(dim, group, lif_tau, lif_vth, mlp_ratio, float(rates[k]),
                                       dtype=dtype, rng=init_rng))
                k += 1
            down = PatchMerging(dim, dtype=dtype, rng=init_rng) if i < len(depths) - 1 else None
            self.layers.append(BasicLayer(blocks, down))
        c_last = embed_dim * 2 ** (len(depths) - 1)
        self.norm = self.add_child("norm", _gn(c_last, dtype))
        self.head = self.add_child("head", Linear(c_last, num_classes, dtype=dtype, rng=init_rng))
        # official init of the head: truncated normal (std 0.02, cut at +-2 std), zero bias
        w = init_rng.normal(0, 0.02, self.head.params["weight"].shape)
        self.head.params["weight"][...] = np.clip(w, -0.04, 0.04)
        self.head.params["bias"][...] = 0
        for _, drop in self.named_modules():
            if isinstance(drop, DropPath):
                drop.rng = self.rng
        self._pool_cache = None

    # -- official names (state_dict and load_state_dict go through named_parameters) -----
    @classmethod
    def _official(cls, key: str) -> str:
        for ours, theirs in cls.OFFICIAL_RENAMES.items():
            if key.endswith(ours):
                return key[: -len(ours)] + theirs
        return key

    def named_parameters(self):
        return ((self._official(k), v) for k, v in super().named_parameters())

    def named_grads(self):
        return {self._official(k): v for k, v in super().named_grads().items()}

    # -- the pass -----------------------------------------------------------------------
    def forward(self, images: np.ndarray) -> np.ndarray:
        """images: (B, C_in, H, W) -> logits (B, classes)."""
        cfg = self.config
        expect_array("SNNMLP", "images", images)
        expect_shape("SNNMLP", "images", images, ("B", cfg["in_channels"], cfg["image_size"],
                                                  cfg["image_size"]))
        if images.dtype != self.dtype:
            raise TypeError(f"SNNMLP was built with dtype {self.dtype} but images has dtype "
                            f"{images.dtype}; convert with images.astype(np.{self.dtype})")
        x = np.ascontiguousarray(images.transpose(0, 2, 3, 1))
        x = self.patch_embed.children["norm"].forward(self.patch_embed.children["proj"].forward(x))
        for layer in self.layers:
            x = layer.forward(x)
        pooled, self._pool_cache = mean_pool_hw_forward(self.norm.forward(x)[None])
        return self.head.forward(pooled[0])

    def forward_repeated(self, images: np.ndarray, T: int = 1) -> np.ndarray:
        """Trainer interface shared with sMLPNet. SNN-MLP has no time axis, so ``T`` does
        not apply: -> logits (1, B, classes), one 'step'."""
        return self.forward(images)[None]

    def backward(self, dlogits: np.ndarray) -> None:
        """dlogits: (B, classes) (or (1, B, classes) from forward_repeated). Accumulates
        parameter gradients; returns None."""
        if self._pool_cache is None:
            raise RuntimeError("SNNMLP.backward called before forward")
        if dlogits.ndim == 3:
            dlogits = dlogits[0]
        dpooled = self.head.backward(dlogits)
        dx = mean_pool_hw_backward(dpooled[None], self._pool_cache)[0]
        dx = self.norm.backward(np.ascontiguousarray(dx))
        for layer in reversed(list(self.layers)):
            dx = layer.backward(dx)
        self.patch_embed.children["proj"].need_input_grad = False
        self.patch_embed.children["proj"].backward(self.patch_embed.children["norm"].backward(dx))
        self._pool_cache = None


# -- presets and config ---------------------------------------------------------------------
_IMAGENET = dict(in_channels=3, num_classes=1000, image_size=224, patch_size=4, mlp_ratio=4.0,
                 group=4, lif_tau=0.25, lif_vth=0.1)

#: SNN-MLP (image 224, patch 4, mlp ratio 4, LIF group 4, tau 0.25, Vth 0.1): ``snn-mlp-t``
#: (embed 96, depths [2, 2, 6, 2], 28.3M), ``snn-mlp-s`` (96, [2, 2, 18, 2], 49.7M),
#: ``snn-mlp-b`` (128, [2, 2, 18, 2], 87.9M), and ``cifar10-snn-mlp`` (patch 2, so that the
#: last stage still has 4 rows for a group of 4).
PRESETS: dict[str, dict] = {
    "snn-mlp-t": dict(_IMAGENET, embed_dim=96, depths=[2, 2, 6, 2], drop_path_rate=0.2),
    "snn-mlp-s": dict(_IMAGENET, embed_dim=96, depths=[2, 2, 18, 2], drop_path_rate=0.3),
    "snn-mlp-b": dict(_IMAGENET, embed_dim=128, depths=[2, 2, 18, 2], drop_path_rate=0.5),
    # 32 / 2 = 16, 8, 4 rows: every stage holds at least one full LIF group of 4.
    "cifar10-snn-mlp": dict(_IMAGENET, num_classes=10, image_size=32, patch_size=2,
                            embed_dim=64, depths=[2, 2, 2], drop_path_rate=0.1),
}

CONFIG_KEYS = ("model", "in_channels", "embed_dim", "depths", "num_classes", "image_size",
               "patch_size", "mlp_ratio", "group", "drop_path_rate", "lif_tau", "lif_vth")
CONFIG_DEFAULTS = dict(model="snn-mlp", in_channels=3, mlp_ratio=4.0, group=4,
                       drop_path_rate=0.1, lif_tau=0.25, lif_vth=0.1)


def resolve(config: dict) -> dict:
    """A (partial) SNN-MLP config -> the complete, checked config.

    The neuron options are ``lif_tau`` and ``lif_vth``: SNN-MLP's full-precision LIF across
    patches (:class:`npsnn.AxisLIF`), whose ``tau`` is a *decay factor* (V <- tau V + x),
    not sMLPNet's time constant (V <- V + (x - V) / tau); hence the different names.
    """
    cfg, bad = complete("SNN-MLP", config, CONFIG_KEYS, CONFIG_DEFAULTS,
                        ("in_channels", "embed_dim", "num_classes", "image_size",
                         "patch_size", "group"))
    last_rows = cfg["image_size"] // (cfg["patch_size"] * 2 ** (len(cfg["depths"]) - 1))
    if last_rows < cfg["group"]:
        raise bad(f"the last stage is {last_rows} rows wide, fewer than the LIF group size "
                  f"{cfg['group']}: its LIFs would pass everything through unchanged; use "
                  f"a smaller patch_size, fewer stages or a smaller group")
    if not 0.0 <= cfg["drop_path_rate"] < 1.0:
        raise bad(f"'drop_path_rate' must be in [0, 1), got {cfg['drop_path_rate']!r}")
    if not cfg["mlp_ratio"] > 0:
        raise bad(f"'mlp_ratio' must be positive, got {cfg['mlp_ratio']!r}")
    for key in ("lif_tau", "lif_vth"):
        if isinstance(cfg[key], bool) or not isinstance(cfg[key], (int, float, np.number)) \
                or not np.isfinite(cfg[key]):
            raise bad(f"'{key}' must be a finite number, got {cfg[key]!r}")
    return cfg


SPEC = ModelSpec(name="snn-mlp", model_class=SNNMLP, resolve=resolve, presets=PRESETS,
                 time_axis=False,
                 summary="SNN-MLP (Li W. et al. 2022): full-precision LIFs across patches, "
                         "no time axis")
