"""The integer network: an ordered list of integer ops plus their integer parameters.

This is the object both execution paths interpret and the exporter serialises to
``manifest.json`` + ``params.npz``. It holds no floats that influence execution (the
float scales in ``meta`` are documentation: how the integers were made).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from .intops import EQUATION_VERSION, POLICIES, READABLE_VERSIONS
from .terms import term_kind

# The op types of docs/golden-model.md, section 4 (a term's kinds: npsnn.golden.terms).
OP_TYPES = ("term", "add", "concat", "lif", "head")


def storage_dtype(bits: int, signed: bool = True) -> np.dtype:
    """The smallest NumPy integer type that holds a ``bits``-bit value (files only)."""
    for width in (8, 16, 32, 64):
        if bits <= width:
            return np.dtype(f"{'' if signed else 'u'}int{width}")
    raise ValueError(f"no integer type holds {bits} bits")


def check_images(op: str, images, input_shape) -> np.ndarray:
    """Check that ``images`` are raw uint8 pixels (B, C, H, W) for ``input_shape`` (H, W, C).
    -> images; TypeError / ValueError naming ``op`` and what was expected otherwise."""
    if not isinstance(images, np.ndarray):
        raise TypeError(f"{op} expected images to be a numpy.ndarray, got "
                        f"{type(images).__name__}")
    if images.dtype != np.uint8:
        raise TypeError(f"{op} expected uint8 images (raw pixels 0..255), got {images.dtype}; "
                        f"pass the undecoded uint8 array, not normalised floats")
    H, W, C = input_shape
    if images.ndim != 4 or images.shape[1:] != (C, H, W):
        raise ValueError(f"{op} expected images of shape (B, {C}, {H}, {W}), got "
                         f"{images.shape}")
    return images


@dataclass
class IntegerNetwork:
    """ops: list of op dicts in execution order (docs/golden-model.md, "Ops").
    params: name -> integer array (a converted network keeps weights in the narrowest type
    of their width, int8 for 8 bits, and everything else in int64; one read from an export
    holds int64). bits: declared widths {weight, bias, acc, mem}.
    leak_shift: k with tau = 2^k. input_shape: (H, W, C) of one uint8 image.
    meta: conversion record (units per stage, head scale, calibration maxima, ...).
    """
    ops: list
    params: dict
    bits: dict
    leak_shift: int
    input_shape: tuple
    num_classes: int
    meta: dict = field(default_factory=dict)
    policy: str = "error"
    #: GEMM bounds of the terms, worked out once (npsnn.golden.run.op_gemm_bound)
    gemm_bounds: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        if self.policy not in POLICIES:
            raise ValueError(f"IntegerNetwork expected policy to be one of {POLICIES}, got "
                             f"{self.policy!r}")
        for op in self.ops:
            if op.get("op") not in OP_TYPES:
                raise ValueError(f"IntegerNetwork: op '{op.get('name')}' has unknown type "
                                 f"{op.get('op')!r}; the op types are {', '.join(OP_TYPES)}")
            if op["op"] == "term":
                missing = [f for f in term_kind(op).params if op.get(f) not in self.params]
                if missing:
                    raise ValueError(f"IntegerNetwork: {op['kind']} term '{op['name']}' lacks "
                                     f"its parameter(s) {', '.join(missing)}")

    # -- bookkeeping ---------------------------------------------------------------------
    def op(self, name: str) -> dict:
        for op in self.ops:
            if op["name"] == name:
                return op
        raise KeyError(f"IntegerNetwork has no op named {name!r}")

    def lif_names(self) -> list[str]:
        return [op["name"] for op in self.ops if op["op"] == "lif"]

    def param_bits(self, name: str) -> int:
        """Declared width of one integer parameter (weights, biases, thresholds, ...)."""
        suffix = name.rsplit(".", 1)[-1]
        return {"weight": self.bits["weight"], "bias": self.bits["bias"],
                "threshold": self.bits["mem"], "shift": 8, "sign": 2}[suffix]

    def memory(self) -> dict:
        """Parameter memory: {param name: (words, bits per word, bytes)} and totals, plus
        the per-token BN1d cost of the ``dense_token`` weight tables broken out (the
        per-token biases, shifts, signs and thresholds are in ``params``)."""
        rows, total_bits, token_bits = {}, 0, 0
        for name, arr in self.params.items():
            b = self.param_bits(name)
            rows[name] = (int(arr.size), b, arr.size * b / 8)
            total_bits += arr.size * b
        shared_equiv = 0
        for op in self.ops:
            if op["op"] == "term" and term_kind(op).per_token_weights:
                w = self.params[op["weight"]]
                token_bits += w.size * self.bits["weight"]
                shared_equiv += (w.size // w.shape[0]) * self.bits["weight"]
        return dict(params=rows, total_bytes=total_bits / 8,
                    per_token_table_bytes=token_bits / 8,
                    per_token_table_if_shared_bytes=shared_equiv / 8)

    def with_policy(self, policy: str) -> "IntegerNetwork":
        net = copy.copy(self)
        net.policy = policy
        net.__post_init__()
        return net

    # -- serialisation -------------------------------------------------------------------
    def manifest(self) -> dict:
        params = {name: dict(shape=list(arr.shape), bits=self.param_bits(name), signed=True,
                             dtype=str(storage_dtype(self.param_bits(name))))
                  for name, arr in self.params.items()}
        return dict(format="npsnn-golden", equation_version=EQUATION_VERSION,
                    input=dict(shape=list(self.input_shape), layout="HWC", dtype="uint8",
                               bits=8),
                    num_classes=self.num_classes, leak_shift=self.leak_shift,
                    bits=dict(self.bits), policy=self.policy, ops=copy.deepcopy(self.ops),
                    params=params, meta=copy.deepcopy(self.meta))

    @classmethod
    def from_manifest(cls, manifest: dict, params: dict) -> "IntegerNetwork":
        if manifest.get("format") != "npsnn-golden":
            raise ValueError("not an npsnn golden-model manifest (format field missing or "
                             "different)")
        if manifest.get("equation_version") not in READABLE_VERSIONS:
            raise ValueError(f"manifest has equation_version "
                             f"{manifest.get('equation_version')!r}; this npsnn implements "
                             f"{EQUATION_VERSION!r}")
        missing = sorted(set(manifest["params"]) - set(params))
        if missing:
            raise ValueError(f"params file lacks {missing[:5]} listed in the manifest")
        return cls(ops=manifest["ops"],
                   params={k: np.asarray(params[k], dtype=np.int64) for k in manifest["params"]},
                   bits=dict(manifest["bits"]), leak_shift=int(manifest["leak_shift"]),
                   input_shape=tuple(manifest["input"]["shape"]),
                   num_classes=int(manifest["num_classes"]), meta=manifest.get("meta", {}),
                   policy=manifest.get("policy", "error"))
