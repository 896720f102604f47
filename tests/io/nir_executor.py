"""A small NumPy executor of NIR graphs, written from NIR's documented semantics only.

It knows nothing of npsnn (no npsnn import): the tests hold npsnn's exporter to it. One
call runs a graph for T time steps on a batch::

    outputs = run(graph, x, T, dt)     # x (B, *input shape); {node name: (T, B, *shape)}

Semantics (NIR primitives, neuromorphs/NIR docs/source/primitives.md and nir/ir/*.py):

* a node with several incoming edges receives the **sum** of their outputs;
* ``Conv2d``: cross-correlation with zero padding, stride, dilation, groups, bias;
* ``Scale``: ``s * x``; ``Affine``: ``W x + b``; ``Linear``: ``W x``; ``Flatten``;
* ``AvgPool2d`` / ``SumPool2d``: windows of ``kernel_size`` every ``stride``;
* ``LIF``: ``tau dv/dt = (v_leak - v) + r I``, forward Euler with step ``dt``, spike
  ``z = v > v_threshold``, then ``v = v_reset`` where it spiked; v starts at ``v_reset``...
  NIR leaves the initial state to the simulator; we start at ``v_reset``, as SpikingJelly.
"""
import numpy as np


def _conv2d(x, node):
    w, b = node.weight, node.bias
    sh, sw = node.stride
    ph, pw = node.padding
    dh, dw = node.dilation
    g = node.groups
    B, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    xp = np.zeros((B, C, H + 2 * ph, W + 2 * pw), x.dtype)
    xp[:, :, ph:ph + H, pw:pw + W] = x
    OH = (H + 2 * ph - dh * (KH - 1) - 1) // sh + 1
    OW = (W + 2 * pw - dw * (KW - 1) - 1) // sw + 1
    out = np.zeros((B, O, OH, OW), np.result_type(x, w))
    og = O // g
    for gi in range(g):
        xs = xp[:, gi * Cg:(gi + 1) * Cg]
        ws = w[gi * og:(gi + 1) * og]
        for i in range(KH):
            for j in range(KW):
                patch = xs[:, :, i * dh:i * dh + sh * (OH - 1) + 1:sh,
                           j * dw:j * dw + sw * (OW - 1) + 1:sw]
                out[:, gi * og:(gi + 1) * og] += np.einsum("bchw,oc->bohw", patch, ws[:, :, i, j])
    return out + b[None, :, None, None]


def _pool(x, node, mean):
    kh, kw = (int(v) for v in np.broadcast_to(node.kernel_size, 2))
    sh, sw = (int(v) for v in np.broadcast_to(node.stride, 2))
    assert not np.any(node.padding), "padding of pools is not needed here"
    B, C, H, W = x.shape
    OH, OW = (H - kh) // sh + 1, (W - kw) // sw + 1
    out = np.zeros((B, C, OH, OW), x.dtype)
    for i in range(OH):
        for j in range(OW):
            win = x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            out[:, :, i, j] = win.mean((2, 3)) if mean else win.sum((2, 3))
    return out


def _order(graph):
    """Nodes in an order where every node comes after its inputs (the graphs are acyclic)."""
    preds = {n: [a for a, b in graph.edges if b == n] for n in graph.nodes}
    done, order = set(), []
    while len(order) < len(preds):
        ready = [n for n in preds if n not in done and all(p in done for p in preds[n])]
        assert ready, "the graph has a cycle"
        for n in ready:
            done.add(n)
            order.append(n)
    return order, preds


def run(graph, x, T, dt):
    """Run ``graph`` for ``T`` steps on the constant input ``x`` -> {node: (T, B, ...)}."""
    import nir
    order, preds = _order(graph)
    state, trace = {}, {n: [] for n in order}
    for _ in range(T):
        out = {}
        for name in order:
            node = graph.nodes[name]
            if isinstance(node, nir.Input):
                y = x
            else:
                i = sum(out[p] for p in preds[name])
                if isinstance(node, nir.Output):
                    y = i
                elif isinstance(node, nir.Conv2d):
                    y = _conv2d(i, node)
                elif isinstance(node, nir.Scale):
                    y = i * node.scale
                elif isinstance(node, nir.Affine):
                    y = i @ node.weight.T + node.bias
                elif isinstance(node, nir.Linear):
                    y = i @ node.weight.T
                elif isinstance(node, nir.Flatten):
                    y = i.reshape(len(i), -1)
                elif isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
                    y = _pool(i, node, isinstance(node, nir.AvgPool2d))
                elif isinstance(node, nir.LIF):
                    v = state.get(name, np.broadcast_to(node.v_reset, i.shape))
                    v = v + (dt / node.tau) * (node.v_leak - v + node.r * i)
                    y = (v > node.v_threshold).astype(i.dtype)
                    state[name] = np.where(y > 0, node.v_reset, v)
                else:
                    raise NotImplementedError(f"{name}: {type(node).__name__}")
            out[name] = y
            trace[name].append(y)
    return {n: np.stack(v) for n, v in trace.items()}
