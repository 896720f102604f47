"""SpikingSSM: spiking state space models for long sequences (sequential CIFAR-10).

"SpikingSSMs: Learning Long Sequences with Sparse and Parallel Spiking State Space Models"
(Shen, Wang, Huang, Zhong, Guo, Lu, Zhang, Leng; AAAI 2025, arXiv 2408.14909; official code
shenshuaijie/SDN on top of state-spaces/s4). Each layer is an S4D state space model whose
output drives a spiking neuron; only spikes leave the SSM, and a 1x1 conv with GLU mixes
them back into real values. Sequences are (B, d_input, L); inside, activations are
(B, H, L), the official layout, with time last (the FFT and the neuron run along it)::

    encoder      x = W_e u + b_e                            Linear(d_input, H) per step
    layer i      z = x                     (norm "pre": z = LN(x))
                 y = K * z + D z                            S4D kernel K (c, H, L), by FFT
                 y = y / exp(ln_vth)                        learnable threshold
                 s = neuron(y)                              spikes: bptt | sltt | sdn
                 z = GLU(conv1x1_{H->2H}(dropout(s)))
                 x = x + dropout(z)        (norm "post": x = LN(x + dropout(z)))
    decoder      logits = W_d mean_l(x) + b_d               mean over the sequence

The layer tree and parameter names mirror the official modules: ``encoder.*``,
``s4_layers.<i>.D`` (1, H), ``.ln_vth`` (H, 1) (or (1,) shared), ``.kernel.C``,
``.kernel.log_dt``, ``.kernel.log_A_real``, ``.kernel.A_imag``, ``.output_linear.0.*``,
``norms.<i>.*``, ``decoder.*``. Confirmed in shenshuaijie/SDN ``models/spike/ss4d.py``
(``SS4D``, ``SpikingSSM``), ``configs/experiment/spikingssm/cifar.yaml`` (the sCIFAR
settings), and in state-spaces/s4: ``src/tasks/encoders.py`` ("linear": ``nn.Linear(d_input,
d_model)``), ``src/tasks/decoders.py`` (``SequenceDecoder`` mode "pool" with l_output 0: the
sequence mean, then ``nn.Linear``), ``train.py`` ``configure_optimizers`` and
``src/utils/optim_groups.py`` (the parameter groups, :meth:`SpikingSSM.optimizer_options`).

**Normalisation.** With ``prenorm: false`` (the sCIFAR config) the official
``SpikingSSM.forward`` computes ``z = norm(z)`` *after* the residual add and never uses it,
so the official network runs without normalisation; ``norm="none"`` reproduces that, and
the ``spikingssm-scifar`` preset uses it. ``norm="post"`` applies the LayerNorm to the
residual stream as state-spaces/s4's ``example.py`` does; ``norm="pre"`` normalises the
branch input.

**The three neuron modes** (:mod:`npsnn.ops.ssm_neuron`): "sdn" fires from the membrane a
frozen surrogate dynamic network predicts (:mod:`npsnn.models.sdn`; the trained one shipped
with npsnn, or ``sdn=<path>``), "bptt" runs the exact recurrence and backpropagates through
time, "sltt" runs the exact recurrence without the path through time.
``smooth_spikes=True`` fires with the surrogate's primitive so that finite differences
through the whole network are meaningful (:meth:`SpikingSSM.hold_neurons` holds what the
backward treats as constant).
"""
from __future__ import annotations

import numpy as np

from .._checks import expect_array, need_forward
from ..containers import ModuleList, Sequential
from ..module import Module
from ..ops.fft_conv import fft_conv_backward, fft_conv_forward
from ..ops.glu import GLU
from ..ops.layernorm import LayerNorm
from ..ops.conv1d import PointwiseConv1d
from ..ops.linear import Linear
from ..ops.s4d import S4DKernel
from ..ops.sequence_dropout import SequenceDropout
from ..ops.ssm_neuron import MODES, SSMNeuron
from ..ops.threshold_scale import threshold_scale_backward, threshold_scale_forward
from .registry import ModelSpec

NORMS = ("none", "post", "pre")

DEFAULTS = dict(d_input=1, seq_len=1024, num_classes=10, d_model=512, n_layers=6, d_state=64,
                bidirectional=True, dropout=0.1, neuron="sdn", tau=0.125, learnable_vth=True,
                shared_vth=False, norm="none", dt_min=0.001, dt_max=0.1, kernel_lr=0.001,
                smooth_spikes=False, sdn=None)
KEYS = ("model",) + tuple(DEFAULTS)


def resolve(config: dict) -> dict:
    """A (partial) config dict -> the complete, checked SpikingSSM config (ValueError /
    TypeError naming the key and the fix)."""
    if not isinstance(config, dict):
        raise TypeError(f"SpikingSSM expected a config dict, got {type(config).__name__}")
    unknown = sorted(set(config) - set(KEYS))
    if unknown:
        raise ValueError(f"unknown SpikingSSM config keys {unknown}; valid keys: "
                         f"{', '.join(KEYS)}")
    if config.get("model", "spikingssm") != "spikingssm":
        raise ValueError(f"SpikingSSM config has model={config['model']!r}, expected "
                         f"'spikingssm'")
    cfg = dict(DEFAULTS, **config)
    cfg["model"] = "spikingssm"

    def bad(msg):
        return ValueError(f"invalid SpikingSSM config: {msg}")

    for key in ("d_input", "seq_len", "num_classes", "d_model", "n_layers", "d_state"):
        v = cfg[key]
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise bad(f"'{key}' must be a positive integer, got {v!r}")
        cfg[key] = int(v)
    if cfg["d_state"] % 2:
        raise bad(f"'d_state' must be even (N/2 complex modes and their conjugates), got "
                  f"{cfg['d_state']}")
    for key in ("bidirectional", "learnable_vth", "shared_vth", "smooth_spikes"):
        if not isinstance(cfg[key], (bool, np.bool_)):
            raise bad(f"'{key}' must be true or false, got {cfg[key]!r}")
        cfg[key] = bool(cfg[key])
    for key in ("dropout", "tau", "dt_min", "dt_max", "kernel_lr"):
        if isinstance(cfg[key], bool) or not isinstance(cfg[key], (int, float, np.floating)):
            raise bad(f"'{key}' must be a number, got {cfg[key]!r}")
        cfg[key] = float(cfg[key])
    if not 0.0 <= cfg["dropout"] < 1.0:
        raise bad(f"'dropout' must be in [0, 1), got {cfg['dropout']!r}")
    if not 0.0 <= cfg["tau"] <= 1.0:
        raise bad(f"'tau' must be in [0, 1] (the neuron's decay), got {cfg['tau']!r}")
    if not 0.0 < cfg["dt_min"] <= cfg["dt_max"]:
        raise bad(f"need 0 < dt_min <= dt_max, got {cfg['dt_min']!r}, {cfg['dt_max']!r}")
    if not cfg["kernel_lr"] >= 0.0:
        raise bad(f"'kernel_lr' must be >= 0 (0 freezes the SSM dynamics), got "
                  f"{cfg['kernel_lr']!r}")
    if cfg["neuron"] not in MODES:
        raise bad(f"'neuron' must be one of {list(MODES)}, got {cfg['neuron']!r}")
    if cfg["norm"] not in NORMS:
        raise bad(f"'norm' must be one of {list(NORMS)}, got {cfg['norm']!r}")
    if cfg["sdn"] is not None and not isinstance(cfg["sdn"], str):
        raise bad(f"'sdn' must be null (the SDN shipped with npsnn) or the path of an SDN "
                  f".npz, got {cfg['sdn']!r}")
    return cfg


class SS4D(Module):
    """One spiking S4D layer: (B, H, L) -> (B, H, L). Children ``kernel``, ``neuron``,
    ``dropout``, ``output_linear`` (conv 1x1 H -> 2H, GLU); params ``D`` (1, H) and, with a
    learnable threshold, ``ln_vth`` (H, 1) or (1,)."""

    def __init__(self, d_model: int, d_state: int, *, bidirectional: bool, dropout: float,
                 neuron: str, tau: float, learnable_vth: bool, shared_vth: bool,
                 dt_min: float, dt_max: float, kernel_lr: float, smooth_spikes: bool,
                 predictor, rng: np.random.Generator, dropout_rng: np.random.Generator,
                 dtype) -> None:
        super().__init__()
        H = d_model
        self.add_param("D", rng.standard_normal((1, H)).astype(dtype))
        if learnable_vth:
            self.add_param("ln_vth", np.zeros((1,) if shared_vth else (H, 1), dtype))
        self.kernel = self.add_child("kernel", S4DKernel(
            H, d_state, channels=2 if bidirectional else 1, dt_min=dt_min, dt_max=dt_max,
            lr=kernel_lr, dtype=dtype, rng=rng))
        self.neuron = self.add_child("neuron", SSMNeuron(neuron, tau, predictor,
                                                         smooth_spikes))
        self.dropout = self.add_child("dropout", SequenceDropout(dropout, dropout_rng))
        self.output_linear = self.add_child("output_linear", Sequential(
            PointwiseConv1d(H, 2 * H, dtype=dtype, rng=rng), GLU(axis=1)))
        self._caches = None

    def forward(self, u: np.ndarray) -> np.ndarray:
        need = self.training
        K = self.kernel.forward(u.shape[-1])
        y, conv_cache = fft_conv_forward(u, K, self.params["D"][0], need_grad=need)
        vth_cache = None
        if "ln_vth" in self.params:
            y, vth_cache = threshold_scale_forward(y, self.params["ln_vth"], need_grad=need)
        s = self.dropout.forward(self.neuron.forward(y))
        self._caches = (conv_cache, vth_cache) if need else None
        return self.output_linear.forward(s)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        need_forward("SS4D", self._caches)
        conv_cache, vth_cache = self._caches
        d = self.neuron.backward(self.dropout.backward(self.output_linear.backward(dy)))
        if vth_cache is not None:
            d, dln_vth = threshold_scale_backward(d, vth_cache)
            self.accumulate(ln_vth=dln_vth)
        du, dK, dD = fft_conv_backward(d, conv_cache)
        self.accumulate(D=dD[None])
        self.kernel.backward(dK)
        self._caches = None
        return du


class SpikingSSM(Module):
    """The whole network; build it with ``SpikingSSM(**config)`` (see :data:`DEFAULTS`)
    or through the model registry (presets ``spikingssm-scifar``, ``spikingssm-scifar-cpu``).

    ``forward(x)``: x (B, d_input, seq_len) -> logits (B, num_classes). The layers work for
    any length; ``seq_len`` says which one the model is built for (checked, as an image
    model checks its image size).
    """

    def __init__(self, *, dtype=np.float32, seed: int = 0, **config) -> None:
        super().__init__()
        cfg = resolve(config)
        self.config = cfg
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"SpikingSSM expected dtype float32 or float64, got {self.dtype}")
        init_rng = np.random.default_rng(seed)
        self.rng = np.random.default_rng([seed, 1])        # dropout draws (checkpointed)
        self.sdn = None
        if cfg["neuron"] == "sdn":
            from .sdn import load_sdn
            self.sdn = load_sdn(cfg["sdn"], tau=cfg["tau"], dtype=self.dtype)
        H = cfg["d_model"]
        self.encoder = self.add_child("encoder", PointwiseConv1d(
            cfg["d_input"], H, layout="linear", dtype=dtype, rng=init_rng))
        self.encoder.need_input_grad = False
        self.s4_layers = self.add_child("s4_layers", ModuleList())
        self.norms = self.add_child("norms", ModuleList())
        self.dropouts = self.add_child("dropouts", ModuleList())
        layer_options = {k: cfg[k] for k in ("bidirectional", "dropout", "neuron", "tau",
                                             "learnable_vth", "shared_vth", "dt_min",
                                             "dt_max", "kernel_lr", "smooth_spikes")}
        for _ in range(cfg["n_layers"]):
            self.s4_layers.append(SS4D(H, cfg["d_state"], predictor=self.sdn, rng=init_rng,
                                       dropout_rng=self.rng, dtype=dtype, **layer_options))
            if cfg["norm"] != "none":
                self.norms.append(LayerNorm(H, axis=1, dtype=dtype))
            self.dropouts.append(SequenceDropout(cfg["dropout"], self.rng))
        self.decoder = self.add_child("decoder", Linear(H, cfg["num_classes"], dtype=dtype,
                                                        rng=init_rng))
        self._L = None

    # -- the pass -----------------------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (B, d_input, seq_len) -> logits (B, num_classes)."""
        cfg = self.config
        expect_array("SpikingSSM", "x", x)
        if x.ndim != 3 or x.shape[1:] != (cfg["d_input"], cfg["seq_len"]):
            raise ValueError(f"SpikingSSM expected x of shape (B, {cfg['d_input']}, "
                             f"{cfg['seq_len']}) (d_input, seq_len), got {x.shape}; sequential "
                             f"CIFAR gives (B, 1, 1024)")
        if x.dtype != self.dtype:
            raise TypeError(f"SpikingSSM was built with dtype {self.dtype} but x has dtype "
                            f"{x.dtype}; convert with x.astype(np.{self.dtype})")
        h = self.encoder.forward(x)
        for i, (layer, dropout) in enumerate(zip(self.s4_layers, self.dropouts)):
            z = self.norms[i].forward(h) if cfg["norm"] == "pre" else h
            h = h + dropout.forward(layer.forward(z))
            if cfg["norm"] == "post":
                h = self.norms[i].forward(h)
        self._L = h.shape[-1]
        pooled = h.sum(axis=-1) / h.dtype.type(self._L)     # official: sum / L
        return self.decoder.forward(pooled)

    def forward_repeated(self, x: np.ndarray, T: int = 1) -> np.ndarray:
        """Trainer interface shared with the image models. A sequence model has no
        repetition axis, so ``T`` does not apply: -> logits (1, B, classes)."""
        return self.forward(x)[None]

    def backward(self, dlogits: np.ndarray) -> None:
        """dlogits: (B, classes) or (1, B, classes). Accumulates parameter gradients."""
        if self._L is None:
            raise RuntimeError("SpikingSSM.backward called before forward (in train mode)")
        if dlogits.ndim == 3:
            dlogits = dlogits[0]
        dpooled = self.decoder.backward(dlogits) / dlogits.dtype.type(self._L)
        dh = np.repeat(dpooled[:, :, None], self._L, axis=2)
        norm = self.config["norm"]
        for i in reversed(range(len(self.s4_layers))):
            if norm == "post":
                dh = self.norms[i].backward(dh)
            dz = self.s4_layers[i].backward(self.dropouts[i].backward(dh))
            dh = dh + (self.norms[i].backward(dz) if norm == "pre" else dz)
        self.encoder.backward(dh)
        self._L = None

    # -- helpers ------------------------------------------------------------------------
    def neurons(self) -> list:
        return [layer.neuron for layer in self.s4_layers]

    def firing_rates(self) -> dict:
        """{neuron name: fraction of ones among its spikes} at the last forward (sparsity is
        one minus it), e.g. ``{"s4_layers.0.neuron": 0.08, ...}``."""
        return {f"s4_layers.{i}.neuron": n.firing_rate for i, n in enumerate(self.neurons())}

    def hold_neurons(self) -> None:
        """Finite-difference checks: every neuron holds what its backward treats as
        constant (:meth:`npsnn.ops.ssm_neuron.SSMNeuron.hold`)."""
        for n in self.neurons():
            n.hold()

    def release_neurons(self) -> None:
        for n in self.neurons():
            n.release()

    def optimizer_options(self) -> dict:
        """Per-parameter optimizer settings that differ from the run's lr and weight decay,
        by parameter name, as the official training sets them: the SSM dynamics
        (``log_dt``, ``log_A_real``, ``A_imag``) get their own lr (``kernel_lr``, at most
        0.001) and no weight decay; the backbone's biases and LayerNorm parameters get no
        weight decay (``optimizer_param_grouping``: ``bias_weight_decay: False``,
        ``normalization_weight_decay: False``; encoder and decoder are outside the
        backbone and keep the run's weight decay)."""
        out = {}
        for path, module in self.named_modules():
            if path.split(".")[0] not in ("s4_layers", "norms"):
                continue
            for name in module.params:
                full = f"{path}.{name}"
                if isinstance(module, LayerNorm) or name == "bias":
                    out[full] = {"weight_decay": 0.0}
                if name in getattr(module, "param_options", {}):
                    out[full] = dict(module.param_options[name])
        return out


#: the official sCIFAR model (configs/experiment/spikingssm/cifar.yaml: 6 layers, d_model
#: 512, d_state 64, bidirectional, dropout 0.1, learnable per-feature thresholds, kernel lr
#: 0.001, prenorm false -- whose LayerNorm result the official code discards, see the module
#: docstring), and a CPU-sized one: same structure, width 64, 4 layers
PRESETS: dict[str, dict] = {
    "spikingssm-scifar": dict(DEFAULTS),
    "spikingssm-scifar-cpu": dict(DEFAULTS, d_model=64, n_layers=4),
}

SPEC = ModelSpec(name="spikingssm", model_class=SpikingSSM, resolve=resolve, presets=PRESETS,
                 time_axis=False, dataset="scifar",
                 input_shape=lambda cfg: (cfg["d_input"], cfg["seq_len"]),
                 summary="SpikingSSM (Shen et al. 2025): S4D layers with spiking neurons "
                         "(SDN, BPTT or SLTT) on sequences (B, d_input, seq_len)")
