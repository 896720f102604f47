"""Containers: ``Sequential`` (chains children) and ``ModuleList`` (only holds them).

Both exist so that the layer tree, and therefore the dotted parameter names, mirror the
official PyTorch module tree (``to_patch_embedding.0.1.weight`` is child ``1`` of child
``0`` of ``to_patch_embedding``).
"""
from __future__ import annotations

from .module import Module


class Sequential(Module):
    """Children ``"0"``, ``"1"``, ... applied in order; backward runs them in reverse."""

    def __init__(self, *layers: Module) -> None:
        super().__init__()
        for i, layer in enumerate(layers):
            self.add_child(str(i), layer)

    def __getitem__(self, i: int) -> Module:
        if not -len(self) <= i < len(self):
            raise IndexError(f"Sequential index {i} out of range (it has {len(self)} layers)")
        return self.children[str(i % len(self))]

    def __len__(self) -> int:
        return len(self.children)

    def __iter__(self):
        return iter(self.children.values())

    def forward(self, x):
        for layer in self.children.values():
            x = layer.forward(x)
        return x

    def backward(self, dout):
        for layer in reversed(list(self.children.values())):
            dout = layer.backward(dout)
        return dout


class ModuleList(Module):
    """An indexable list of children; it has no forward of its own."""

    def __init__(self, layers=()) -> None:
        super().__init__()
        for layer in layers:
            self.append(layer)

    def append(self, layer: Module) -> Module:
        return self.add_child(str(len(self.children)), layer)

    def __getitem__(self, i: int) -> Module:
        return self.children[str(i)]

    def __len__(self) -> int:
        return len(self.children)

    def __iter__(self):
        return iter(self.children.values())


class Identity(Module):
    """Placeholder that keeps official indices (e.g. the Rearrange at ``proj_h.0``)."""

    def forward(self, x):
        return x

    def backward(self, dout):
        return dout
