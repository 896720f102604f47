"""The surrogate dynamic network (SDN): the spiking neuron's membrane, predicted in parallel.

A hard-reset neuron (:mod:`npsnn.ops.ssm_neuron`) must be simulated step by step: whether it
fires at step l depends on whether it fired before. The SDN (Shen, Wang et al., SpikingSSMs,
AAAI 2025) is a tiny causal convolutional network trained to predict the *decayed membrane*
m[l] = tau u[l-1] from the input sequence; the neuron then fires at every step at once,
s[l] = H(m^[l] + x[l] - 1). On (N, 1, L), with d = 8 channels and k = 8 taps::

    encoder        z = w_e x                              1x1 conv 1 -> d, no bias
    spatial        z = relu(BN(dwconv_k(z))[..., :L])      depthwise, padding k: y[l] sees
                                                          x[l-k .. l-1] (strictly causal)
    features       h = relu(BN(conv1x1(z)) + z)            residual
    decoder        m^ = w_d h + b_d                        1x1 conv d -> 1

(with n_layers > 1 further spatial/feature pairs follow, their depthwise conv padded by
k - 1: causal but seeing the current step of the features). The official ``SDN`` module of
shenshuaijie/SDN ``model.py`` is mirrored here layer for layer and by parameter name
(``encoder.weight``, ``spatial_layers.0.0.weight``, ``spatial_layers.0.1.running_mean``,
``feature_layers.0.0.weight``, ``decoder.bias``, ...); note that its BN sees the whole
conv output, L + k + 1 positions, *before* the cut to L, and so does this one. The
published checkpoint ``src/models/spike/mem_pred_d8k8_c3(relu(c2(c1(x))+c1(x)))_125.pkl``
is the fused form of this network for tau = 0.125 (``convert.ipynb``; a TorchScript
``PredModel`` with conv1 = Conv1d(1, 8, 8, padding=8), conv2 = Conv1d(8, 8, 1), conv3 =
Conv1d(8, 1, 1)): confirmed by loading it.

Its training data (:func:`synthetic_batch`, as the official ``generate.py``: inputs
x ~ N(0, 1), labels m from the exact recurrence) and its metrics (:func:`evaluate_sdn`; the
spike accuracy is the official metric of ``train.py``: the fraction of (sequence, step)
positions where H(m^ + x - 1) equals the exact spike) are here; the training run itself is
:mod:`npsnn.train.sdn`. The trained network ships with npsnn (:data:`PACKAGED`,
:func:`load_sdn`).

The network used inside SpikingSSM is frozen and in eval mode, so :meth:`SDN.predict` folds
every BN into its conv and the encoder into the first depthwise conv (as ``convert.ipynb``
does) and runs channels-last in row chunks that stay in cache.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .._checks import need_forward
from ..containers import ModuleList, Sequential
from ..io import load_npz, save_npz
from ..module import Module
from ..ops.batchnorm import BatchNorm, batchnorm_affine
from ..ops.conv1d import DepthwiseConv1d, PointwiseConv1d
from ..ops.relu import relu_backward, relu_forward
from ..ops.smooth_l1 import smooth_l1_forward
from ..ops.ssm_neuron import hard_reset_forward, spike_accuracy

ASSETS = Path(__file__).resolve().parent / "assets"
#: the trained SDN shipped with npsnn, by the neuron decay tau it was trained for
PACKAGED = {0.125: ASSETS / "sdn_tau0.125.npz"}


class SDN(Module):
    """``SDN(d_model=8, kernel_size=8, n_layers=1)``: x (N, 1, L) -> predicted decayed
    membrane (N, L). Train it with forward/backward like any layer; use :meth:`predict`
    (eval mode, fused, any leading shape) inside a network."""

    def __init__(self, d_model: int = 8, kernel_size: int = 8, n_layers: int = 1, *,
                 dtype=np.float32, seed: int = 0) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        d, k = d_model, kernel_size
        self.config = dict(d_model=d, kernel_size=k, n_layers=n_layers)
        self.dtype = np.dtype(dtype)
        self.encoder = self.add_child("encoder", PointwiseConv1d(1, d, bias=False, dtype=dtype,
                                                                 rng=rng))
        self.spatial_layers = self.add_child("spatial_layers", ModuleList())
        self.feature_layers = self.add_child("feature_layers", ModuleList())
        for i in range(n_layers):
            # the first spatial conv is padded by k (strictly causal), later ones by k - 1
            self.spatial_layers.append(Sequential(
                DepthwiseConv1d(d, k, padding=k if i == 0 else k - 1, dtype=dtype, rng=rng),
                BatchNorm(d, axis=1, dtype=dtype)))
            self.feature_layers.append(Sequential(
                PointwiseConv1d(d, d, dtype=dtype, rng=rng), BatchNorm(d, axis=1, dtype=dtype)))
        self.decoder = self.add_child("decoder", PointwiseConv1d(d, 1, dtype=dtype, rng=rng))
        self._fused = None
        self._trace = None          # per layer: (full conv length, relu caches), for backward

    # -- training pass ----------------------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (N, 1, L) -> m^ (N, L)."""
        if x.ndim != 3 or x.shape[1] != 1:
            raise ValueError(f"SDN expected x of shape (N, 1, L), got {x.shape}")
        L = x.shape[2]
        self._fused = None                         # weights may change: refold on predict
        need = self.training
        trace = []
        z = self.encoder.forward(x)
        for spatial, features in zip(self.spatial_layers, self.feature_layers):
            full = spatial.forward(z)              # BN sees all L + pad positions (official)
            z, relu1 = relu_forward(np.ascontiguousarray(full[..., :L]), need)
            z, relu2 = relu_forward(features.forward(z) + z, need)
            trace.append((full.shape[2], relu1, relu2))
        self._trace = trace if need else None
        return self.decoder.forward(z)[:, 0]

    def backward(self, dpred: np.ndarray) -> None:
        """dpred: (N, L). Accumulates parameter gradients (the input needs none)."""
        need_forward("SDN", self._trace)
        dz = self.decoder.backward(dpred[:, None])
        for i in reversed(range(len(self._trace))):
            full, relu1, relu2 = self._trace[i]
            dh = relu_backward(dz, relu2)
            dz = relu_backward(self.feature_layers[i].backward(dh) + dh, relu1)
            dfull = np.zeros(dz.shape[:2] + (full,), dtype=dz.dtype)
            dfull[..., :dz.shape[2]] = dz          # the cut-off positions get no gradient
            dz = self.spatial_layers[i].backward(dfull)
        self.encoder.need_input_grad = False
        self.encoder.backward(dz)
        self._trace = None

    # -- frozen, fused inference ------------------------------------------------------------
    def fused(self) -> list:
        """Eval-mode weights for :meth:`predict`: every BN folded into its conv
        (``batchnorm_affine``), the encoder folded into the first depthwise conv, each
        residual folded into its 1x1 conv (W + I), and each bias folded into its matrix by
        a constant-one channel carried at index d (so every layer is one GEMM or one set of
        taps, then ReLU). -> [(kind, weight)]: ("window", (k + 1, d + 1)), ("taps",
        (k, d + 1)), ("mix", (d + 1, d + 1)), ("decoder", (d + 1,))."""
        if self._fused is None:
            def folded(seq):
                bn = seq[1]
                scale, shift = batchnorm_affine(bn.params["weight"], bn.params["bias"],
                                                bn.buffers["running_mean"],
                                                bn.buffers["running_var"], bn.eps)
                w, b = seq[0].params["weight"], seq[0].params["bias"]
                return w * scale.reshape((-1,) + (1,) * (w.ndim - 1)), b * scale + shift

            d, k = self.config["d_model"], self.config["kernel_size"]
            layers = []
            for i, (spatial, features) in enumerate(zip(self.spatial_layers,
                                                        self.feature_layers)):
                w, b = folded(spatial)                                      # (d, 1, k), (d,)
                if i == 0:      # window of k past inputs and a one -> d channels and a one
                    m = np.zeros((k + 1, d + 1))
                    m[:k, :d] = (w[:, 0] * self.encoder.params["weight"][:, 0]).T
                    m[k, :d], m[k, d] = b, 1
                    layers.append(("window", m))
                else:           # depthwise taps; the one channel passes at the current tap
                    m = np.zeros((k, d + 1))
                    m[:, :d] = w[:, 0].T
                    m[k - 1, d] = 1
                    layers.append(("taps", m, np.append(b, 0.0)))
                w, b = folded(features)                                     # (d, d, 1)
                m = np.zeros((d + 1, d + 1))
                m[:d, :d] = w[:, :, 0].T + np.eye(d)                        # conv + residual
                m[d, :d], m[d, d] = b, 1
                layers.append(("mix", m))
            layers.append(("decoder", np.append(self.decoder.params["weight"][0, :, 0],
                                                self.decoder.params["bias"])))
            self._fused = layers
        return self._fused

    def predict(self, x: np.ndarray, chunk: int = 32) -> np.ndarray:
        """x: (..., L) -> m^ (..., L), every leading index an independent sequence. Eval mode,
        no cache, computed ``chunk`` sequences at a time in the dtype of x."""
        L = x.shape[-1]
        rows = x.reshape(-1, L)
        out = np.empty_like(rows)
        layers = [(kind,) + tuple(a.astype(x.dtype) for a in arrays)
                  for kind, *arrays in self.fused()]
        for n0 in range(0, rows.shape[0], chunk):
            out[n0:n0 + chunk] = _predict_rows(rows[n0:n0 + chunk], layers)
        return out.reshape(x.shape)

    def __call__(self, x):
        return self.predict(x)


def _predict_rows(x: np.ndarray, layers) -> np.ndarray:
    """The fused SDN on rows (n, L), channels-last (n, L, d + 1) so that every 1x1 conv is
    one GEMM; channel d is the constant one that carries the biases."""
    n, L = x.shape
    z = None
    for kind, *w in layers:
        if kind == "window":
            k = w[0].shape[0] - 1
            windows = np.zeros((n, L, k + 1), x.dtype)      # window l: x[l-k .. l-1], 1
            for a in range(k):                              # strictly causal (official pad k)
                shift = k - a
                windows[:, shift:, a] = x[:, :L - shift] if shift < L else 0
            windows[:, :, k] = 1
            z = np.maximum(windows @ w[0], 0)
        elif kind == "taps":
            k = w[0].shape[0]
            acc = z * w[0][k - 1]                           # causal depthwise, pad k - 1
            for a in range(k - 1):
                shift = k - 1 - a
                if shift < L:
                    acc[:, shift:] += z[:, :L - shift] * w[0][a]
            acc += w[1]
            z = np.maximum(acc, 0, out=acc)
        elif kind == "mix":
            z = z @ w[0]                                    # conv + BN + residual + bias
            np.maximum(z, 0, out=z)
        else:
            return z @ w[0]
    raise AssertionError("the fused SDN ends with its decoder")


# -- data, metrics, training ----------------------------------------------------------------
def synthetic_batch(rng: np.random.Generator, n: int, L: int = 1024, tau: float = 0.125,
                    dtype=np.float32):
    """The SDN's training data: x ~ N(0, 1) (n, L) and its exact decayed membranes and
    spikes from the recurrence. -> (x, membrane, spikes)."""
    x = rng.standard_normal((n, L)).astype(dtype)
    spikes, membrane, _ = hard_reset_forward(x, tau, need_grad=False, need_membrane=True)
    return x, membrane, spikes


def evaluate_sdn(sdn: SDN, x: np.ndarray, membrane: np.ndarray, spikes: np.ndarray) -> dict:
    """Eval-mode metrics on held-out sequences (n, L): smooth L1 loss, mean absolute
    membrane error, spike accuracy (official metric), and the recall and precision of the
    predicted spikes."""
    pred = sdn.predict(x)
    fired = (pred + x - 1 >= 0)
    exact = spikes >= 0.5
    return dict(loss=smooth_l1_forward(pred, membrane)[0],
                mae=float(np.mean(np.abs(pred - membrane))),
                spike_accuracy=spike_accuracy(fired.astype(x.dtype), spikes),
                spike_recall=float(np.sum(fired & exact) / max(np.sum(exact), 1)),
                spike_precision=float(np.sum(fired & exact) / max(np.sum(fired), 1)),
                firing_rate=float(exact.mean()))


def save_sdn(path, sdn: SDN, meta: dict) -> None:
    """Weights (official names) plus a JSON ``meta`` (config, tau, recipe, metrics)."""
    arrays = {k: v.astype(np.float32) if v.dtype.kind == "f" else v
              for k, v in sdn.state_dict().items()}
    arrays["meta"] = np.array(json.dumps(dict(meta, config=sdn.config)))
    save_npz(path, arrays)


def load_sdn(path=None, *, tau: float = 0.125, dtype=np.float32) -> SDN:
    """A trained SDN in eval mode: from ``path``, or the one shipped with npsnn for ``tau``."""
    if path is None:
        if tau not in PACKAGED:
            raise ValueError(f"npsnn ships a trained SDN for tau in {sorted(PACKAGED)}, not "
                             f"{tau!r}; train one with 'python -m npsnn.train.sdn --tau {tau} "
                             f"--out sdn.npz' and pass its path")
        path = PACKAGED[tau]
    arrays = load_npz(path)
    if "meta" not in arrays:
        raise ValueError(f"{path} is not an SDN file written by npsnn (no 'meta' entry)")
    try:
        meta = json.loads(str(arrays.pop("meta")))
        trained_tau, config = float(meta["tau"]), dict(meta["config"])
        sdn = SDN(**config, dtype=dtype)
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: unreadable SDN metadata ({type(e).__name__}: {e}); "
                         f"write SDN files with npsnn.models.sdn.save_sdn") from None
    if trained_tau != float(tau):
        raise ValueError(f"{path} holds an SDN trained for tau={trained_tau!r}, but the "
                         f"neuron uses tau={tau!r}: its predictions would be wrong")
    sdn.load_state_dict(arrays)
    sdn.meta = meta
    return sdn.eval()
