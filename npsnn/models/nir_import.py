"""``npsnn.from_nir``: the sMLPNet a NIR graph written by ``npsnn.to_nir`` computes.

The reading of the graph is :func:`npsnn.io.nir.nir_state` (io knows the file format, not
the models); this builds the model of the graph's recorded config and loads that state.
"""
from __future__ import annotations

import numpy as np

from ..io.nir import graph_config, nir_state
from . import build


def from_nir(graph, *, dtype=None):
    """A graph written by :func:`npsnn.to_nir` -> the sMLPNet that computes it, in eval mode.

    Every BN becomes an exact identity carrying the graph's shift and the folded weights go
    into the convs and Linears, so the eval forward equals the graph's (and, for the model
    the graph came from, its eval logits to rounding). dtype: default the graph's. Graphs
    from other tools are refused: only this structure maps back onto sMLPNet's modules.
    """
    config = graph_config(graph)
    if dtype is None:
        dtype = np.asarray(graph.nodes["to_patch_embedding.0"].weight).dtype
    model = build(config, dtype=dtype)
    model.load_state_dict(nir_state(graph, model.state_dict()), strict=True)
    return model.eval()
