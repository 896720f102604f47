"""Ops without parameters that move, join or average values: concat, add, mean-pool over
H and W, and the image <-> token rearrangements. Each is a forward/backward pair.

    concat   y = [x_1 | x_2 | ...] along an axis     dx_i = the matching slice of dy
    add      y = a + b (b may broadcast)             da = dy, db = dy summed over broadcast axes
    meanpool y[..., c] = mean_{h,w} x[..., h, w, c]  dx = dy / (H W) at every (h, w)
    tokens   (T, B, C, H, W) <-> (T, B, N, C),  N = H W in row-major (h, w) order

sMLPNet keeps activations channels-last, ``(T, B, H, W, C)``; that layout already *is* the
token layout ``(T, B, N, C)``, so inside the network the rearrangement is a free reshape.
The official-layout functions here convert at the boundary.
"""
from __future__ import annotations

import numpy as np

from .._checks import expect_array, expect_same_shape, expect_shape, need_forward


def concat_forward(xs, axis: int = -1):
    """xs: arrays equal in shape except along ``axis`` -> (y, cache)."""
    xs = list(xs)
    if not xs:
        raise ValueError("concat expected at least one array, got none")
    for i, x in enumerate(xs):
        expect_array("concat", f"xs[{i}]", x)
    ax = axis % xs[0].ndim
    for i, x in enumerate(xs[1:], 1):
        if x.ndim != xs[0].ndim or x.shape[:ax] + x.shape[ax + 1:] != \
                xs[0].shape[:ax] + xs[0].shape[ax + 1:]:
            raise ValueError(f"concat expected xs[{i}] to match xs[0] {xs[0].shape} on every "
                             f"axis but {axis}, got {x.shape}")
    sizes = [x.shape[ax] for x in xs]
    y = np.concatenate(xs, axis=ax)
    return y, (ax, sizes, y.shape)


def concat_backward(dy: np.ndarray, cache) -> list[np.ndarray]:
    """-> [dx_1, dx_2, ...], contiguous slices of dy along the concat axis."""
    need_forward("concat", cache)
    ax, sizes, shape = cache
    expect_same_shape("concat.backward", "dy", dy, shape)
    splits = np.cumsum(sizes)[:-1]
    return [np.ascontiguousarray(d) for d in np.split(dy, splits, axis=ax)]


def add_forward(a: np.ndarray, b: np.ndarray):
    """y = a + b with numpy broadcasting -> (y, cache)."""
    try:
        y = a + b
    except ValueError:
        raise ValueError(f"add expected broadcastable shapes, got {np.shape(a)} and "
                         f"{np.shape(b)}") from None
    return y, (np.shape(a), np.shape(b))


def sum_to_shape(grad: np.ndarray, shape) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting expanded to reach its shape from ``shape``."""
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape)
                                      if s == 1 and grad.shape[i + lead] != 1)
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


def add_backward(dy: np.ndarray, cache):
    """-> (da, db), each summed back to its input's shape."""
    need_forward("add", cache)
    a_shape, b_shape = cache
    expect_same_shape("add.backward", "dy", dy, np.broadcast_shapes(a_shape, b_shape))
    return sum_to_shape(dy, a_shape), sum_to_shape(dy, b_shape)


def mean_pool_hw_forward(x: np.ndarray, channels_last: bool = True):
    """x: (T, B, H, W, C) (or (T, B, C, H, W) if not channels_last) -> (y (T, B, C), cache)."""
    expect_array("mean_pool_hw", "x", x)
    spec = ("T", "B", "H", "W", "C") if channels_last else ("T", "B", "C", "H", "W")
    expect_shape("mean_pool_hw", "x", x, spec)
    axes = (2, 3) if channels_last else (3, 4)
    return x.mean(axis=axes), (x.shape, channels_last)


def mean_pool_hw_backward(dy: np.ndarray, cache) -> np.ndarray:
    """dy: (T, B, C) -> dx of the input shape (a broadcast view, read-only)."""
    need_forward("mean_pool_hw", cache)
    shape, channels_last = cache
    T, B = shape[:2]
    H, W = (shape[2], shape[3]) if channels_last else (shape[3], shape[4])
    C = shape[4] if channels_last else shape[2]
    expect_same_shape("mean_pool_hw.backward", "dy", dy, (T, B, C))
    d = dy / dy.dtype.type(H * W)
    d = d[:, :, None, None, :] if channels_last else d[:, :, :, None, None]
    return np.broadcast_to(d, shape)


def image_to_tokens(x: np.ndarray) -> np.ndarray:
    """(T, B, C, H, W) -> (T, B, N, C), N = H W row-major. Its backward is tokens_to_image."""
    expect_array("image_to_tokens", "x", x)
    expect_shape("image_to_tokens", "x", x, ("T", "B", "C", "H", "W"))
    T, B, C, H, W = x.shape
    return np.ascontiguousarray(x.reshape(T, B, C, H * W).transpose(0, 1, 3, 2))


def tokens_to_image(x: np.ndarray, H: int, W: int) -> np.ndarray:
    """(T, B, N, C) -> (T, B, C, H, W); the inverse (and the backward) of image_to_tokens."""
    expect_array("tokens_to_image", "x", x)
    expect_shape("tokens_to_image", "x", x, ("T", "B", H * W, "C"))
    T, B, N, C = x.shape
    return np.ascontiguousarray(x.transpose(0, 1, 3, 2)).reshape(T, B, C, H, W)
