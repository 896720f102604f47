"""sMLPNet as a NIR graph (Neuromorphic Intermediate Representation), and back.

:func:`to_nir` turns an sMLPNet in eval mode into a ``nir.NIRGraph`` that neuromorphic tool
chains import (``nir`` from PyPI, an optional extra: ``pip install npsnn[nir]``);
:func:`nir_state` reads such a graph back into an sMLPNet state dict, and
:func:`npsnn.from_nir` (:mod:`npsnn.models.nir_import`) into a model. The graph is one time step of
the network: its input is the normalised image ``(C_in, H, W)`` (direct encoding: feed the
same image at each of T steps and average the T outputs) and its output the logits
``(K, 1, 1)``. Batch norm is folded; node names are npsnn's module paths (the official
``state_dict`` prefixes), so a node's spikes can be compared with npsnn's layer by layer.

**Fan-in is a sum.** NIR edges carry a node's output unchanged and a node with several
incoming edges receives their sum (NIRTorch's executor adds them). The residual sums of
sMLPNet (``h + t``, ``h + t + channel_mix(x)``, PatchCell's ``a3 + a1 + ...``) are edges.

**The LIF neuron.** NIR's ``LIF`` is ``tau dv/dt = (v_leak - v) + r I``, spike when
``v > v_threshold``, then ``v = v_reset``. A forward-Euler step of length ``dt`` gives
``v <- v + (dt / tau) (v_leak - v + r I)``. SpikingJelly's (and npsnn's) update is
``H = V + (X - (V - V_reset)) / tau_sj`` (decay_input) or ``H = V - (V - V_reset) / tau_sj
+ X``; both are that Euler step with::

    tau = tau_sj * dt,   v_leak = V_reset,   v_threshold = V_th,   v_reset = V_reset
    r = 1 (decay_input=True)   or   r = tau_sj (decay_input=False)

The membrane starts at ``V_reset`` (SpikingJelly after ``reset_net``); NIR leaves the
initial state to the simulator, and Norse starts at ``v_leak``, which is why ``v_leak``
carries no constants. A per-neuron constant input ``c`` (the part of a folded BN shift
that is not a per-channel conv bias, below) arrives as one more input of the LIF: a
``<lif>.one`` 1x1 Conv2d with zero weights and bias 1 (exactly 1 everywhere) and a
``<lif>.const`` Scale holding ``c``. The graph records ``dt`` in its metadata (default 1e-4, the
time step snnTorch's importer assumes; pass the same ``dt`` to any simulator). Two
differences remain: NIR fires on ``v > v_threshold``, SpikingJelly on ``H >= V_th`` (the
two differ only when a membrane lands exactly on the threshold), and NIR has no soft reset
(a config with ``v_reset=None`` is refused).

**Ops without a NIR primitive, and their exact equivalents** (G: the token grid side,
C: channels; "cost" is per time step and image):

* Token mixer projection along H, ``y[c, h', w] = sum_h W[h', h] x[c, h, w] + b[h']``:
  a weight that depends on the output row is not a convolution, and NIR has no transpose.
  It is split by offset ``d = h - h'``: ``y = sum_d A_d * shift_d(x)``, with
  ``shift_d`` a Conv2d (kernel 3x3, dilation (|d|, 1), padding (|d|, 1), the identity on
  the tap at +d: ``shift_d(x)[c, h'] = x[c, h' + d]``, zero outside) and
  ``A_d[c, h', w] = s[h'] W[h', h' + d]`` a ``Scale`` (BN_H's scale ``s`` folded in; 0
  where ``h' + d`` is outside). ``2G - 1`` Scale nodes and ``2G - 2`` shift convs per
  projection. The shifts are dense, square C -> C convs, not 3x1 depthwise ones: NIR 1.0's
  type inference takes a Conv2d's input channels from ``weight.shape[1]`` (ignoring
  ``groups``) and both kernel sides from ``weight.shape[2]`` (nir/ir/conv.py), and
  ``nir.read`` type-checks every graph, so it would refuse the cheaper forms. Cost per
  projection: ``(2G - 1) C G^2`` multiplies for the scales plus ``(2G - 2) 9 C^2 G^2`` for
  the shifts as written (all but ``C G^2`` of each shift's products are by zero; a
  simulator that skips zero weights does ``C G^2``), against ``C G^3`` for the projection
  itself, and ``(2G - 2) 9 C^2`` stored weights.
  The constant ``s b + t`` is the LIF's constant input. W: the same with columns.
* BN1d over the token axis in the channel mixer (a scale per token, not per channel): the
  Linear is a 1x1 Conv2d (with its bias) followed by a ``Scale`` ``s[n]`` broadcast over
  channels; the shift ``t[n]`` is a constant input of the next LIF.
* Concatenation (the token mixer's fuse input, PatchCell's output): the fuse conv is three
  1x1 convs on the three parts (summed at the LIF); PatchCell's nodes reach its 3n-channel
  output through 1x1 placement convs (identity blocks, 5 n x 3n per pixel).
* Head: BN2d and the mean over H, W -> ``AvgPool2d`` over the whole grid and a 1x1 Conv2d
  ``W diag(s)``, bias ``W t + b``.

Every conv keeps its folded BN as ``weight * scale`` / ``bias = shift``
(:func:`npsnn.ops.batchnorm.batchnorm_affine`, the one fold).
"""
from __future__ import annotations

import json
import math

import numpy as np

from ..ops.batchnorm import batchnorm_affine
from .limits import load_json

__all__ = ["to_nir", "nir_state", "graph_config", "write_nir", "read_nir", "DEFAULT_DT"]

DEFAULT_DT = 1e-4            # seconds; snnTorch's NIR importer assumes this time step
INSTALL = "pip install 'npsnn[nir]' (or: pip install nir)"


def _nir():
    try:
        import nir
    except ModuleNotFoundError:
        raise ModuleNotFoundError(f"NIR export needs the 'nir' package: {INSTALL}") from None
    return nir


def _bn(bn):
    return batchnorm_affine(bn.params["weight"], bn.params["bias"],
                            bn.buffers["running_mean"], bn.buffers["running_var"], bn.eps)


class _Builder:
    """Collects nodes and edges; ``lif`` and ``conv`` know NIR's argument conventions."""

    def __init__(self, nir, neuron: dict, dt: float, dtype):
        self.nir, self.dt, self.dtype = nir, dt, dtype
        if neuron["v_reset"] is None:
            raise ValueError("NIR's LIF has a hard reset only; this model uses a soft reset "
                             "(v_reset=None), which NIR cannot express")
        self.tau_sj = neuron["tau"]
        self.r = 1.0 if neuron["decay_input"] else self.tau_sj
        self.v_reset, self.v_th = neuron["v_reset"], neuron["v_threshold"]
        self.nodes, self.edges = {}, []

    def add(self, name, node, *inputs):
        assert name not in self.nodes, name
        self.nodes[name] = node
        self.edges += [(src, name) for src in inputs]
        return name

    def array(self, a):
        return np.ascontiguousarray(a, dtype=self.dtype)

    def conv(self, name, weight, bias, grid, inputs, *, stride=1, padding=0, dilation=1,
             groups=1):
        weight = self.array(weight)
        bias = self.array(np.zeros(weight.shape[0]) if bias is None else bias)
        pair = lambda v: tuple(v) if isinstance(v, tuple) else (v, v)      # noqa: E731
        node = self.nir.Conv2d(input_shape=tuple(grid), weight=weight, stride=pair(stride),
                               padding=pair(padding), dilation=pair(dilation),
                               groups=groups, bias=bias)
        return self.add(name, node, *inputs)

    def lif(self, name, shape, inputs, constant=None, source=None):
        """A LIF node; ``constant`` (broadcast to ``shape``) is a per-neuron input, fed by a
        constant branch read off ``source = (node, its channels)``: a zero 1x1 conv with
        bias 1 (exactly 1 everywhere) and a Scale holding the values."""
        inputs = list(inputs)
        if constant is not None:
            src, channels = source
            ones = self.conv(f"{name}.one", np.zeros((shape[0], channels, 1, 1)),
                             np.ones(shape[0]), shape[1:], [src])
            inputs.append(self.add(f"{name}.const", self.nir.Scale(
                scale=self.array(np.broadcast_to(constant, shape))), ones))
        full = lambda v: self.array(np.broadcast_to(v, shape))     # noqa: E731
        node = self.nir.LIF(tau=full(self.tau_sj * self.dt), r=full(self.r),
                            v_leak=full(self.v_reset), v_threshold=full(self.v_th),
                            v_reset=full(self.v_reset))
        return self.add(name, node, *inputs)


def _placement(n: int, slots: tuple) -> np.ndarray:
    """1x1 conv weight (3n, n, 1, 1) copying its n inputs into each of ``slots`` (0..2)."""
    w = np.zeros((3 * n, n, 1, 1))
    for s in slots:
        w[s * n:(s + 1) * n, :, 0, 0] = np.eye(n)
    return w


def _conv_bn(b, name, convbn, grid, inputs, stride, padding):
    scale, shift = _bn(convbn[1])
    return b.conv(name, convbn[0].params["weight"] * scale[:, None, None, None], shift, grid,
                  inputs, stride=stride, padding=padding)


def _patch_cell(b, prefix, cell, grid, x):
    """PatchCell: three stride-2 convs, two LIF nodes, placement into the 3n output."""
    n, half = cell.node_width, (grid[0] // 2, grid[1] // 2)
    a = [_conv_bn(b, f"{prefix}.cell2node.{k}", cell.cell2node[k], grid, [x], 2, 1)
         for k in range(3)]
    s1 = b.lif(f"{prefix}.lif.0", (n,) + half, [a[0]])
    c12 = _conv_bn(b, f"{prefix}.node1_node2", cell.node1_node2, half, [s1], 1, 1)
    s2 = b.lif(f"{prefix}.lif.1", (n,) + half, [a[1], c12])
    c23 = _conv_bn(b, f"{prefix}.node2_node3", cell.node2_node3, half, [s2], 1, 1)
    # out = [a1 | a2 + c12 | a3 + a1 + c23]
    places = []
    for src, slots in ((a[0], (0, 2)), (a[1], (1,)), (a[2], (2,)), (c12, (1,)), (c23, (2,))):
        places.append(b.conv(f"{src}.place", _placement(n, slots), None, half, [src]))
    return places


def _projection(b, prefix, proj, grid, channels, x, axis):
    """proj_h / proj_w as shifted depthwise convs and Scales (module docstring)."""
    G = grid[0]
    w = proj[1].params["weight"].reshape(G, G)
    bias = proj[1].params.get("bias")
    s, t = _bn(proj[2])
    w = w * s[:, None]                                   # the fold of the fast twin
    const = t if bias is None else bias * s + t
    scales = []
    for d in range(-(G - 1), G):
        rows = np.arange(G)
        coef = np.where((rows + d >= 0) & (rows + d < G), w[rows, np.clip(rows + d, 0, G - 1)], 0)
        src = x
        if d:
            # a dense 3x3 conv whose only non-zero taps copy channel c at offset d: NIR's
            # type inference (nir 1.0) takes a Conv2d's input channels from weight.shape[1]
            # (ignoring groups) and its kernel width from weight.shape[2] (square kernels
            # only), and nir.read type-checks every graph it reads
            tap = 2 if d > 0 else 0
            k = np.zeros((channels, channels, 3, 3))
            diag = np.arange(channels)
            if axis == "h":
                k[diag, diag, tap, 1] = 1
            else:
                k[diag, diag, 1, tap] = 1
            dil = (abs(d), 1) if axis == "h" else (1, abs(d))
            src = b.conv(f"{prefix}.shift{d:+d}", k, None, grid, [x], padding=dil, dilation=dil)
        shape = (channels, G, 1) if axis == "h" else (channels, 1, G)
        scale = np.broadcast_to(coef.reshape(shape[1:]), shape)
        scale = np.broadcast_to(scale, (channels, G, G))
        scales.append(b.add(f"{prefix}.scale{d:+d}", b.nir.Scale(scale=b.array(scale)), src))
    cshape = (1, G, 1) if axis == "h" else (1, 1, G)
    return b.lif(f"{prefix}.3", (channels, G, G), scales, const.reshape(cshape), (x, channels))


def to_nir(model, *, dt: float = DEFAULT_DT):
    """The sMLPNet ``model`` in eval mode (BN folded) as a ``nir.NIRGraph`` (one time step).

    dt: the simulation time step the LIF time constants are expressed in (``tau = tau_sj *
    dt``; recorded in the metadata). The model is not changed; float64 models give float64
    graphs. See the module docstring for the mapping.
    """
    nir = _nir()
    cfg = getattr(model, "config", {})
    if cfg.get("model") != "smlpnet":
        raise ValueError(f"to_nir exports sMLPNet models; got {type(model).__name__} "
                         f"({cfg.get('model')!r})")
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"to_nir: dt must be a finite number > 0, got {dt!r}")
    b = _Builder(nir, cfg["neuron"], float(dt), model.dtype)
    S, p = cfg["image_size"], cfg["patch_size"]
    x = b.add("input", nir.Input(input_type={"input": np.array([cfg["in_channels"], S, S])}))
    grid, shift = (S, S), 0
    for i, depth in enumerate(model.depths):
        c = cfg["dim"] * 2 ** i
        embed = model.to_patch_embedding[i]
        prefix = f"to_patch_embedding.{i}"
        if i == 0:
            h = [_conv_bn(b, prefix, embed, grid, [x], p, 0)]
            grid = (S // p, S // p)
        elif cfg["spe"]:
            h = _patch_cell(b, prefix, embed, grid, x)
            grid = (grid[0] // 2, grid[1] // 2)
        else:
            h = [_conv_bn(b, prefix, embed, grid, [x], 2, 0)]
            grid = (grid[0] // 2, grid[1] // 2)
        shape = (c,) + grid
        x = b.lif(f"to_patch_embedding_lif.{i}", shape, h)
        for j in range(shift, shift + depth):
            tm, cm = model.token_mix[j], model.channel_mix[j]
            xh = _projection(b, f"token_mix.{j}.proj_h", tm.proj_h, grid, c, x, "h")
            xw = _projection(b, f"token_mix.{j}.proj_w", tm.proj_w, grid, c, x, "w")
            fs, ft = _bn(tm.fuse[1])
            fw = tm.fuse[0].params["weight"].reshape(c, 3 * c) * fs[:, None]
            fuse = [b.conv(f"token_mix.{j}.fuse.{part}", fw[:, k * c:(k + 1) * c, None, None],
                           ft if k == 0 else None, grid, [src])
                    for k, (part, src) in enumerate((("x", x), ("h", xh), ("w", xw)))]
            t_lif = b.lif(f"token_mix_lif.{j}", shape, h + fuse)
            net, pre = cm.net, f"channel_mix.{j}.1.net"
            hidden = net[0].params["weight"].shape[0]
            s1, t1 = _bn(net[1])
            s2, t2 = _bn(net[4])
            z = b.conv(f"{pre}.0", net[0].params["weight"][:, :, None, None],
                       net[0].params["bias"], grid, [t_lif])
            z = b.add(f"{pre}.1", nir.Scale(scale=b.array(np.broadcast_to(
                s1.reshape(1, *grid), (hidden,) + grid))), z)
            z = b.lif(f"{pre}.2", (hidden,) + grid, [z], t1.reshape(1, *grid), (t_lif, c))
            z = b.conv(f"{pre}.3", net[3].params["weight"][:, :, None, None],
                       net[3].params["bias"], grid, [z])
            z = b.add(f"{pre}.4", nir.Scale(scale=b.array(np.broadcast_to(
                s2.reshape(1, *grid), shape))), z)
            x = b.lif(f"channel_mix_lif.{j}", shape, h + fuse + [z], t2.reshape(1, *grid),
                      (t_lif, c))
        shift += depth
    pool = b.add("mlp_head.0", nir.AvgPool2d(kernel_size=np.array(grid), stride=np.array(grid),
                                             padding=np.array([0, 0])), x)
    s, t = _bn(model.batch_norm)
    head = model.mlp_head[1]
    w, bias = head.params["weight"], head.params["bias"]
    out = b.conv("mlp_head.1", (w * s)[:, :, None, None], w @ t + bias, (1, 1), [pool])
    k = cfg["num_classes"]
    b.add("output", nir.Output(output_type={"output": np.array([k, 1, 1])}), out)
    metadata = {"source": "npsnn", "model": "smlpnet", "dt": float(dt),
                "npsnn_config": json.dumps(cfg, sort_keys=True),
                "encoding": "direct: the normalised image at every time step; average the "
                            "T outputs"}
    return nir.NIRGraph(nodes=b.nodes, edges=b.edges, metadata=metadata, type_check=False)


# -- files -------------------------------------------------------------------------------------
def write_nir(path, graph) -> None:
    """Write ``graph`` to ``path`` (NIR's HDF5 file format), atomically."""
    from .files import atomic_write
    nir = _nir()
    with atomic_write(path, "w+b") as f:          # h5py reads back what it writes
        nir.write(f, graph)


def read_nir(path):
    """Read a NIR file -> ``nir.NIRGraph`` (its size checked first: npsnn.io.limits; the
    HDF5 inside is read by the nir package)."""
    from .limits import check_file_size
    check_file_size(path, "NIR graph")
    return _nir().read(str(path))


# -- back ---------------------------------------------------------------------------------------
def _identity_var(eps: float, dtype) -> np.ndarray:
    """A running variance whose ``var + eps`` rounds to exactly 1 in ``dtype``, so that an
    eval-mode BN with weight 1 and mean 0 is ``y = x + bias`` exactly."""
    dt = np.dtype(dtype)
    var = np.asarray(1.0 - eps, dt)
    while var + dt.type(eps) != 1:
        var = np.nextafter(var, dt.type(2) if var + dt.type(eps) < 1 else dt.type(0))
    return var


def graph_config(graph) -> dict:
    """The npsnn model config recorded in a graph written by :func:`to_nir`."""
    meta = getattr(graph, "metadata", None) or {}
    if meta.get("source") != "npsnn" or "npsnn_config" not in meta:
        names = ", ".join(list(getattr(graph, "nodes", {}))[:5])
        raise ValueError(f"from_nir reads graphs written by npsnn.to_nir (sMLPNet); this one "
                         f"has no npsnn metadata (nodes: {names} ...)")
    text = meta["npsnn_config"]
    return load_json(text if isinstance(text, str) else bytes(text).decode(errors="replace"),
                     "the graph's npsnn_config")


def nir_state(graph, template: dict, eps: float = 1e-5) -> dict:
    """The state dict of the sMLPNet that computes ``graph`` (written by :func:`to_nir`).

    template: the ``state_dict()`` of a model of the graph's config (:func:`graph_config`;
    it gives every key, shape and dtype). Folded weights go into the convs and Linears, and
    every BN becomes an exact identity carrying the graph's shift (weight 1, mean 0,
    ``var + eps == 1``; the per-token BN1d keeps its scale as weight). Raises ValueError
    naming the first node the graph lacks.
    """
    cfg = graph_config(graph)
    nodes = graph.nodes
    out = {k: v.copy() for k, v in template.items()}

    def node(name):
        if name not in nodes:
            raise ValueError(f"from_nir: the graph has no node {name!r}; it was not written by "
                             f"this version of npsnn.to_nir")
        return nodes[name]

    def put(key, value):
        out[key][...] = value

    def identity_bn(prefix, bias, weight=1.0):
        put(f"{prefix}.weight", weight)
        put(f"{prefix}.bias", bias)
        put(f"{prefix}.running_mean", 0)
        put(f"{prefix}.running_var", _identity_var(eps, out[f"{prefix}.running_var"].dtype))

    def conv_bn(prefix, name):
        n = node(name)
        put(f"{prefix}.0.weight", n.weight)
        identity_bn(f"{prefix}.1", n.bias)

    def constant(lif, shape):
        """The per-neuron constant input of a LIF node (its constant branch)."""
        return node(f"{lif}.const").scale.reshape(shape)

    G = cfg["image_size"] // cfg["patch_size"]
    shift = 0
    for i, depth in enumerate(cfg["depths"]):
        prefix = f"to_patch_embedding.{i}"
        if i == 0 or not cfg["spe"]:
            conv_bn(prefix, prefix)
        else:
            for name in ("cell2node.0", "cell2node.1", "cell2node.2", "node1_node2",
                         "node2_node3"):
                conv_bn(f"{prefix}.{name}", f"{prefix}.{name}")
        G //= 2 if i else 1
        c = cfg["dim"] * 2 ** i
        rows = np.arange(G)
        for j in range(shift, shift + depth):
            for axis in "hw":
                pre = f"token_mix.{j}.proj_{axis}"
                w = np.zeros((G, G))
                for d in range(-(G - 1), G):
                    sc = node(f"{pre}.scale{d:+d}").scale
                    coef = sc[0, :, 0] if axis == "h" else sc[0, 0, :]
                    ok = (rows + d >= 0) & (rows + d < G)
                    w[rows[ok], rows[ok] + d] = coef[ok]
                put(f"{pre}.1.weight", w.reshape(G, G, 1, 1))
                if f"{pre}.1.bias" in out:
                    put(f"{pre}.1.bias", 0)
                const = constant(f"{pre}.3", (c, G, G))
                identity_bn(f"{pre}.2", const[0, :, 0] if axis == "h" else const[0, 0, :])
            put(f"token_mix.{j}.fuse.0.weight", np.concatenate(
                [node(f"token_mix.{j}.fuse.{p}").weight for p in "xhw"], axis=1))
            identity_bn(f"token_mix.{j}.fuse.1", node(f"token_mix.{j}.fuse.x").bias)
            pre = f"channel_mix.{j}.1.net"
            for k in (0, 3):
                put(f"{pre}.{k}.weight", node(f"{pre}.{k}").weight[:, :, 0, 0])
                put(f"{pre}.{k}.bias", node(f"{pre}.{k}").bias)
            for bn, lif in ((1, f"{pre}.2"), (4, f"channel_mix_lif.{j}")):
                scale = node(f"{pre}.{bn}").scale
                identity_bn(f"{pre}.{bn}", constant(lif, scale.shape)[0].reshape(-1),
                            weight=scale[0].reshape(-1))
        shift += depth
    head = node("mlp_head.1")
    put("mlp_head.1.weight", head.weight[:, :, 0, 0])
    put("mlp_head.1.bias", head.bias)
    identity_bn("batch_norm", 0)
    return out
