"""The fast twin of sMLPNet: fused kernels and eval-mode BN folding, opt-in.

:func:`npsnn.build` builds :class:`FastSMLPNet` unless ``fast=False``. It is the plain
model of :mod:`npsnn.models.smlpnet` with four blocks swapped for subclasses that compute
the same function with fewer passes over memory; the module tree, the parameter names, the
initialisation and every gradient are the plain model's (tests hold the two equal to
rounding in float64, and both to PyTorch to 1e-8). What each subclass changes, and why:

* :class:`FastConvBN`, eval mode: BN folded into the conv (``W' = scale W``,
  ``b' = shift``): one GEMM with a bias instead of a GEMM and two more passes.
* :class:`FastPatchCell`: the three ``cell2node`` ConvBNs read the same input with the
  same geometry, so they run as one conv with their weights stacked (one im2col, one GEMM,
  one cached column matrix instead of three) and one BN over the 3n channels (per-channel
  statistics, so identical to three BNs); eval mode folds that BN.
* :class:`FastTokenMixer`: the fuse conv ``y = [x | x_h | x_w] W^T`` runs as three GEMMs
  accumulating into one output, so the 3C-wide concatenation is never built (forward) or
  sliced and copied back apart (backward); eval mode folds every BN into the projection or
  conv before it.
* :class:`FastChannelMixer`, eval mode: each ``Linear -> BN1d(N)`` as
  ``(x W^T) s_n + (b s_n + t_n)`` (the BN scales per token, so it cannot enter W, but bias
  and BN merge into one (N, out) shift).

Training never folds: it needs batch statistics. Every fold uses
:func:`npsnn.ops.batchnorm.batchnorm_affine`, the one BN fold.
"""
from __future__ import annotations

import numpy as np

from .._checks import need_forward
from ..ops.axis_projection import axis_projection_forward
from ..ops.batchnorm import batchnorm_affine, batchnorm_backward, batchnorm_forward
from ..ops.conv import conv2d_backward, conv2d_forward
from .smlpnet import C_AXIS, ChannelMixer, ConvBN, PatchCell, SMLPNet, TokenMixer


def bn_affine(bns):
    """Eval-mode BN (one, or several stacked along the feature axis) as ``(scale, shift)``."""
    def stack(get):
        return np.concatenate([get(b) for b in bns])
    return batchnorm_affine(stack(lambda b: b.params["weight"]), stack(lambda b: b.params["bias"]),
                            stack(lambda b: b.buffers["running_mean"]),
                            stack(lambda b: b.buffers["running_var"]), bns[0].eps)


def fuse_gemm(parts, w):
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


class FastConvBN(ConvBN):
    def forward(self, x):
        if self.training:
            return super().forward(x)
        conv = self[0]
        scale, shift = bn_affine([self[1]])
        y, _ = conv2d_forward(x, conv.params["weight"] * scale[:, None, None, None], shift,
                              conv.stride, conv.padding, "NHWC")
        return y


class FastPatchCell(PatchCell):
    ConvBN = FastConvBN

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._nodes_cache = None

    def _nodes_forward(self, x):
        """The three ``cell2node`` ConvBNs as one conv + one BN over 3n channels ->
        views a1, a2, a3 of [a1 | a2 | a3]. Parameters, gradients and running statistics
        stay in the three children."""
        a = self._stacked_forward(x)
        n = self.node_width
        return a[..., :n], a[..., n:2 * n], a[..., 2 * n:]

    def _stacked_forward(self, x):
        convs = [node[0] for node in self.cell2node]
        bns = [node[1] for node in self.cell2node]
        weight = np.concatenate([c.params["weight"] for c in convs])
        stride, padding = convs[0].stride, convs[0].padding
        if not self.training:
            self._nodes_cache = None
            scale, shift = bn_affine(bns)
            return conv2d_forward(x, weight * scale[:, None, None, None], shift, stride,
                                  padding, "NHWC")[0]
        y, conv_cache = conv2d_forward(x, weight, None, stride, padding, "NHWC")
        stats = {k: np.concatenate([b.buffers[k] for b in bns])
                 for k in ("running_mean", "running_var")}
        a, bn_cache = batchnorm_forward(
            y, np.concatenate([b.params["weight"] for b in bns]),
            np.concatenate([b.params["bias"] for b in bns]), stats["running_mean"],
            stats["running_var"], axis=C_AXIS, training=True, momentum=bns[0].momentum,
            eps=bns[0].eps)
        n = self.node_width
        for i, b in enumerate(bns):                     # updated statistics back to each BN
            for k, v in stats.items():
                b.buffers[k][...] = v[i * n:(i + 1) * n]
            b.buffers["num_batches_tracked"] += 1
        self._nodes_cache = (conv_cache, bn_cache)
        return a

    def _nodes_backward(self, da1, da2, da3):
        da = np.concatenate([da1, da2, da3], axis=-1)
        need_forward("PatchCell", self._nodes_cache)
        conv_cache, bn_cache = self._nodes_cache
        self._nodes_cache = None
        dy, dgamma, dbeta = batchnorm_backward(da, bn_cache)
        dx, dweight, _ = conv2d_backward(dy, conv_cache)
        n = self.node_width
        for i, node in enumerate(self.cell2node):
            part = slice(i * n, (i + 1) * n)
            node[0].accumulate(weight=dweight[part])
            node[1].accumulate(weight=dgamma[part], bias=dbeta[part])
        return dx


class FastTokenMixer(TokenMixer):
    ConvBN = FastConvBN

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._fuse_inputs = None

    def forward(self, x):
        if not self.training:
            return self._forward_eval(x)
        parts = [np.ascontiguousarray(p) for p in
                 (x, self.proj_h.forward(x), self.proj_w.forward(x))]
        c = self.channels
        y = fuse_gemm(parts, self.fuse[0].params["weight"].reshape(c, 3 * c))
        self._fuse_inputs = parts
        return self.fuse[1].forward(y)

    def _forward_eval(self, x):
        self._fuse_inputs = None
        branches = []
        for proj in (self.proj_h, self.proj_w):
            ap = proj[1]
            scale, shift = bn_affine([proj[2]])
            w = ap.params["weight"].reshape(scale.shape[0], -1) * scale[:, None]
            b = shift if "bias" not in ap.params else ap.params["bias"] * scale + shift
            branches.append(proj[3].forward(axis_projection_forward(x, w, b, ap.axis)[0]))
        c = self.channels
        scale, shift = bn_affine([self.fuse[1]])
        y = fuse_gemm([np.ascontiguousarray(p) for p in [x] + branches],
                      self.fuse[0].params["weight"].reshape(c, 3 * c) * scale[:, None])
        y += shift
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


class FastChannelMixer(ChannelMixer):
    def forward(self, x):
        if self.training:
            return super().forward(x)
        T, B, H, W, C = x.shape
        tokens = x.reshape(T, B, H * W, C)
        for lin, bn in ((self.net[0], self.net[1]), (self.net[3], self.net[4])):
            scale, shift = bn_affine([bn])
            w = lin.params["weight"]                   # one 2-D GEMM over all T*B*N rows
            y = (tokens.reshape(-1, w.shape[1]) @ w.T).reshape(tokens.shape[:-1] + w.shape[:1])
            y *= scale[:, None]
            bias = lin.params.get("bias")
            y += shift[:, None] if bias is None else bias * scale[:, None] + shift[:, None]
            tokens = self.net[2].forward(y) if lin is self.net[0] else y
        return tokens.reshape(x.shape)


class FastSMLPNet(SMLPNet):
    """sMLPNet with the fast blocks (see the module docstring)."""

    ConvBN, PatchCell = FastConvBN, FastPatchCell
    TokenMixer, ChannelMixer = FastTokenMixer, FastChannelMixer
