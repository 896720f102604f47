"""sMLPNet: the spiking MLP network of Li, Leng et al. (arXiv 2306.12465).

The layer tree mirrors the official mixer-snn module tree, so every parameter and BN
buffer is named by its official ``state_dict`` key (``token_mix.3.proj_h.1.weight``).

Internally activations are **channels-last**, ``(T, B, H, W, C)``: the 1x1 "fuse" conv, the
channel-mixer Linears and the im2col convs then write their GEMM results directly in the
layout the next op reads, and ``(T, B, H, W, C)`` *is* the token layout ``(T, B, N, C)``
(N = H*W, row-major) without a copy. The public entry points take and return the
official ``(T, B, C, H, W)`` layout.

Stage ``i`` (``depths[i]`` blocks), exactly as the official forward::

    h = patch_embed_i(x);  x = LIF(h)
    for each block:  t = token_mix(x);  x = LIF_t(h + t);  x = LIF_c(h + t + channel_mix(x))

``h`` is re-used by every block of the stage. Head: BN2d on the spikes, mean over H and W,
Linear -> logits ``(T, B, classes)``.
"""
from __future__ import annotations

import numpy as np

from ._checks import expect_array, expect_positive_int, expect_shape, need_forward
from .containers import Identity, ModuleList, Sequential
from .module import Module
from .ops.axis_projection import AxisProjection, axis_projection_forward
from .ops.batchnorm import BatchNorm, batchnorm_backward, batchnorm_forward
from .ops.conv import Conv2d, conv2d_backward, conv2d_forward
from .ops.linear import Linear
from .ops.lif import LIF
from .ops.shape import mean_pool_hw_backward, mean_pool_hw_forward, sum_to_shape

# Axes of a channels-last multi-step tensor (T, B, H, W, C).
H_AXIS, W_AXIS, C_AXIS = 2, 3, 4


def _fuse(parts, w):
    """The token mixer's 1x1 fuse conv on [x | x_h | x_w] without building the concatenation:
    ``y = x W_0^T + x_h W_1^T + x_w W_2^T`` with W = [W_0 | W_1 | W_2] (C, 3C).

    parts: three contiguous (T, B, H, W, C) arrays -> y (T, B, H, W, C). Three GEMMs write
    into one output (the second and third through one scratch buffer). Deliberately numpy's
    own BLAS: scipy.linalg.blas is a second OpenBLAS with its own thread pool, and two pools
    spinning on 2 cores made steps several times slower on a busy machine.
    """
    c = w.shape[0]
    y = np.empty(parts[0].shape, dtype=parts[0].dtype)
    y2 = y.reshape(-1, c)
    np.matmul(parts[0].reshape(-1, c), w[:, :c].T, out=y2)
    tmp = np.empty_like(y2)
    for k in (1, 2):
        np.matmul(parts[k].reshape(-1, c), w[:, k * c:(k + 1) * c].T, out=tmp)
        y2 += tmp
    return y


def _lif() -> LIF:
    """The neuron used everywhere in sMLPNet: SpikingJelly LIFNode defaults, detach_reset."""
    return LIF(tau=2.0, v_threshold=1.0, v_reset=0.0, decay_input=True, detach_reset=True,
               surrogate="sigmoid", alpha=4.0)


def _bn_affine(bns):
    """Eval-mode BN (one, or several stacked along the feature axis) as the per-feature
    affine map ``y = x * scale + shift`` (the same expressions as ``batchnorm_forward``).

    In eval mode every BN that follows a conv or projection is folded into its weights
    (``W' = scale W``, ``b' = scale b + shift``): one GEMM with a bias instead of a GEMM and
    two more passes over the activations. Training never folds (it needs batch stats).
    """
    gamma = np.concatenate([b.params["weight"] for b in bns])
    beta = np.concatenate([b.params["bias"] for b in bns])
    mean = np.concatenate([b.buffers["running_mean"] for b in bns])
    var = np.concatenate([b.buffers["running_var"] for b in bns])
    scale = gamma * (1 / np.sqrt(var + var.dtype.type(bns[0].eps)))
    return scale, beta - mean * scale


class ConvBN(Sequential):
    """``Conv2d(no bias) -> BN2d``, children ``0`` and ``1`` as in the official code."""

    def __init__(self, cin, cout, kernel, stride, padding, *, dtype, rng):
        super().__init__(Conv2d(cin, cout, kernel, stride, padding, bias=False, layout="NHWC",
                                dtype=dtype, rng=rng),
                         BatchNorm(cout, axis=C_AXIS, dtype=dtype))

    def forward(self, x):
        if self.training:
            return super().forward(x)
        conv = self[0]
        scale, shift = _bn_affine([self[1]])          # eval: BN folded into the conv
        y, _ = conv2d_forward(x, conv.params["weight"] * scale[:, None, None, None], shift,
                              conv.stride, conv.padding, "NHWC")
        return y

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

    def __init__(self, cin: int, cout: int, *, dtype, rng):
        super().__init__()
        if cout % 3:
            raise ValueError(f"PatchCell needs C_out divisible by 3 (three nodes), got {cout}")
        n = cout // 3
        self.node_width = n
        self.cell2node = self.add_child("cell2node", ModuleList(
            ConvBN(cin, n, 3, 2, 1, dtype=dtype, rng=rng) for _ in range(3)))
        self.node1_node2 = self.add_child("node1_node2", ConvBN(n, n, 3, 1, 1, dtype=dtype, rng=rng))
        self.node2_node3 = self.add_child("node2_node3", ConvBN(n, n, 3, 1, 1, dtype=dtype, rng=rng))
        self.lif = self.add_child("lif", ModuleList([_lif(), _lif()]))
        self._nodes_cache = None

    def forward(self, x):
        a = self._nodes_forward(x)                     # [a1 | a2 | a3], one conv, one BN
        n = self.node_width
        a1, a2, a3 = a[..., :n], a[..., n:2 * n], a[..., 2 * n:]
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
        # da = [da1 | da2 | da3] with da2 = dn2 (n2 = a2 + ...) and da3 = dn3
        return self._nodes_backward(np.concatenate([da1, dn2, dn3], axis=-1))

    # The three ``cell2node`` ConvBNs read the same input with the same geometry, so they
    # run as one conv with their weights stacked (3n output channels: one im2col, one
    # GEMM, one cached column matrix instead of three) followed by one BN over the 3n
    # channels (per-channel statistics, so identical to three BNs). Parameters, gradients
    # and running statistics stay in the three children, under their official names.
    def _nodes_forward(self, x):
        convs = [node[0] for node in self.cell2node]
        bns = [node[1] for node in self.cell2node]
        weight = np.concatenate([c.params["weight"] for c in convs])
        if not self.training:                           # eval: BNs folded into the conv
            self._nodes_cache = None
            scale, shift = _bn_affine(bns)
            y, _ = conv2d_forward(x, weight * scale[:, None, None, None], shift,
                                  convs[0].stride, convs[0].padding, "NHWC")
            return y
        y, conv_cache = conv2d_forward(x, weight, None, convs[0].stride, convs[0].padding,
                                       "NHWC")
        stats = {k: np.concatenate([b.buffers[k] for b in bns])
                 for k in ("running_mean", "running_var")}
        bn = bns[0]
        a, bn_cache = batchnorm_forward(
            y, np.concatenate([b.params["weight"] for b in bns]),
            np.concatenate([b.params["bias"] for b in bns]), stats["running_mean"],
            stats["running_var"], axis=C_AXIS, training=True, momentum=bn.momentum,
            eps=bn.eps)
        n = self.node_width
        for i, b in enumerate(bns):                     # updated statistics back to each BN
            for k, v in stats.items():
                b.buffers[k][...] = v[i * n:(i + 1) * n]
            b.buffers["num_batches_tracked"] += 1
        self._nodes_cache = (conv_cache, bn_cache)
        return a

    def _nodes_backward(self, da):
        need_forward("PatchCell", self._nodes_cache)
        conv_cache, bn_cache = self._nodes_cache
        self._nodes_cache = None
        dy, dgamma, dbeta = batchnorm_backward(da, bn_cache)
        dx, dweight, _ = conv2d_backward(dy, conv_cache)
        n = self.node_width
        for i, node in enumerate(self.cell2node):
            part = slice(i * n, (i + 1) * n)
            node[0].grads["weight"] += dweight[part]
            node[1].grads["weight"] += dgamma[part]
            node[1].grads["bias"] += dbeta[part]
        return dx


class TokenMixer(Module):
    """Spiking token mixer (``sMLPBlock``): mix along H, mix along W, fuse with the input.

    ``x_h = LIF(BN_H(proj_H(x)))``, ``x_w = LIF(BN_W(proj_W(x)))``,
    ``out = BN2d(fuse([x, x_h, x_w]))`` with fuse a 1x1 conv 3C -> C without bias.
    Children keep the official indices: ``proj_h.1`` projection, ``proj_h.2`` BN,
    ``proj_h.3`` LIF (``.0`` and ``.4`` are the official Rearranges).
    x: (T, B, S, S, C) spikes -> (T, B, S, S, C).
    """

    def __init__(self, size: int, channels: int, *, dtype, rng):
        super().__init__()
        self.channels = channels
        self.proj_h = self.add_child("proj_h", Sequential(
            Identity(), AxisProjection(size, axis=H_AXIS, dtype=dtype, rng=rng),
            BatchNorm(size, axis=H_AXIS, dtype=dtype), _lif(), Identity()))
        self.proj_w = self.add_child("proj_w", Sequential(
            Identity(), AxisProjection(size, axis=W_AXIS, dtype=dtype, rng=rng),
            BatchNorm(size, axis=W_AXIS, dtype=dtype), _lif(), Identity()))
        self.fuse = self.add_child("fuse", ConvBN(3 * channels, channels, 1, 1, 0,
                                                  dtype=dtype, rng=rng))
        self._fuse_inputs = None

    # ``fuse`` is a 1x1 conv on the channel concatenation [x | x_h | x_w], i.e.
    # ``y = x W_0^T + x_h W_1^T + x_w W_2^T`` with W = [W_0 | W_1 | W_2] (C, 3C). It runs as
    # three GEMMs accumulating into one output, so the 3C-wide concatenation is never
    # built (forward) or sliced and copied back apart (backward). The weight and its
    # gradient stay in the ``fuse.0`` child.
    def forward(self, x):
        if not self.training:
            return self._forward_eval(x)
        parts = [np.ascontiguousarray(p) for p in
                 (x, self.proj_h.forward(x), self.proj_w.forward(x))]
        c = self.channels
        y = _fuse(parts, self.fuse[0].params["weight"].reshape(c, 3 * c))
        self._fuse_inputs = parts
        return self.fuse[1].forward(y)

    def _forward_eval(self, x):
        """Eval: every BN folded into the projection or conv before it."""
        self._fuse_inputs = None
        branches = []
        for proj in (self.proj_h, self.proj_w):
            ap = proj[1]
            scale, shift = _bn_affine([proj[2]])
            w = ap.params["weight"].reshape(scale.shape[0], -1) * scale[:, None]
            b = shift if "bias" not in ap.params else ap.params["bias"] * scale + shift
            branches.append(proj[3].forward(axis_projection_forward(x, w, b, ap.axis)[0]))
        c = self.channels
        scale, shift = _bn_affine([self.fuse[1]])
        y = _fuse([np.ascontiguousarray(p) for p in [x] + branches],
                  self.fuse[0].params["weight"].reshape(c, 3 * c) * scale[:, None])
        y += shift                                      # the folded BN shift
        return y

    def backward(self, dout):
        need_forward("TokenMixer", self._fuse_inputs)
        parts, self._fuse_inputs = self._fuse_inputs, None
        c = self.channels
        dy2 = self.fuse[1].backward(dout).reshape(-1, c)
        w = self.fuse[0].params["weight"].reshape(c, 3 * c)
        dw = self.fuse[0].grads["weight"].reshape(c, 3 * c)       # a view: += accumulates
        dparts = []
        for k, part in enumerate(parts):
            cols = slice(k * c, (k + 1) * c)
            dw[:, cols] += dy2.T @ part.reshape(-1, c)
            dparts.append((dy2 @ w[:, cols]).reshape(part.shape))
        dx = dparts[0]
        dx += self.proj_h.backward(dparts[1])
        dx += self.proj_w.backward(dparts[2])
        return dx


class ChannelMixer(Module):
    """Channel mixer (``FeedForward``) on tokens, official key ``channel_mix.<i>.1.net.*``.

    ``Linear(C, alpha C) -> BN1d(N) -> LIF -> Linear(alpha C, C) -> BN1d(N)``, where BN1d
    takes the **token axis N** as its feature axis (statistics per token over T, B and
    channels), the official choice.
    x: (T, B, S, S, C) spikes -> (T, B, S, S, C); viewed as tokens (T, B, N, C), N = S*S.
    """

    def __init__(self, size: int, channels: int, alpha: int, *, dtype, rng):
        super().__init__()
        hidden, ntok = alpha * channels, size * size
        self.add_child("0", Identity())
        feed = self.add_child("1", Module())
        self.net = feed.add_child("net", Sequential(
            Linear(channels, hidden, dtype=dtype, rng=rng), BatchNorm(ntok, axis=2, dtype=dtype),
            _lif(), Linear(hidden, channels, dtype=dtype, rng=rng),
            BatchNorm(ntok, axis=2, dtype=dtype)))

    def forward(self, x):
        T, B, H, W, C = x.shape
        if not self.training:
            return self._forward_eval(x.reshape(T, B, H * W, C)).reshape(x.shape)
        return self.net.forward(x.reshape(T, B, H * W, C)).reshape(x.shape)

    def _forward_eval(self, tokens):
        """Eval: each ``Linear -> BN1d(N)`` as ``(x W^T) s_n + (b s_n + t_n)``: the BN scales
        per token, so it cannot enter W, but bias and BN merge into one (N, out) shift."""
        for lin, bn in ((self.net[0], self.net[1]), (self.net[3], self.net[4])):
            scale, shift = _bn_affine([bn])
            w = lin.params["weight"]                   # one 2-D GEMM over all T*B*N rows
            y = (tokens.reshape(-1, w.shape[1]) @ w.T).reshape(tokens.shape[:-1] + w.shape[:1])
            y *= scale[:, None]
            bias = lin.params.get("bias")
            y += shift[:, None] if bias is None else bias * scale[:, None] + shift[:, None]
            tokens = self.net[2].forward(y) if lin is self.net[0] else y
        return tokens

    def backward(self, dout):
        T, B, H, W, C = dout.shape
        return self.net.backward(dout.reshape(T, B, H * W, C)).reshape(dout.shape)


class SMLPNet(Module):
    """The whole network. Build it with :func:`npsnn.build` (presets, config checks)."""

    def __init__(self, in_channels=3, dim=96, alpha=3, num_classes=1000, patch_size=4,
                 image_size=224, depths=(2, 8, 14, 2), spe=True, *, dtype=np.float32,
                 seed: int = 0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.config = dict(in_channels=in_channels, dim=dim, alpha=alpha,
                           num_classes=num_classes, patch_size=patch_size,
                           image_size=image_size, depths=list(depths), spe=spe)
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
                embed = ConvBN(in_channels, c, patch_size, patch_size, 0, dtype=dtype, rng=rng)
            elif spe:
                embed = PatchCell(c // 2, c, dtype=dtype, rng=rng)
            else:
                embed = ConvBN(c // 2, c, 2, 2, 0, dtype=dtype, rng=rng)
            self.to_patch_embedding.append(embed)
            self.to_patch_embedding_lif.append(_lif())
            for _ in range(depth):
                self.token_mix.append(TokenMixer(size, c, dtype=dtype, rng=rng))
                self.token_mix_lif.append(_lif())
                self.channel_mix.append(ChannelMixer(size, c, alpha, dtype=dtype, rng=rng))
                self.channel_mix_lif.append(_lif())
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
