"""Flatten and its inverse: the bridge between feature maps and a dense layer.

Shapes: N batch, then any feature axes d1, ..., dk (for images (C, H, W)), D = d1*...*dk.

Flatten has no parameters and computes nothing: it only changes how the same numbers are
indexed. Element x[n, c, h, w] becomes out[n, (c*H + h)*W + w] (C order, the last axis varies
fastest). So its backward is the inverse relabelling: dout (N, D) reshaped back to the
forward input's shape. Any fixed order would work, as long as forward and backward agree.
"""

import math
import numbers

import numpy as np

from ._validate import as_float_array, as_shape


def flatten_forward(x):
    """Flatten every sample into one row, in C order.

    Parameters
    ----------
    x : (N, d1, ..., dk) ndarray, k >= 1.

    Returns
    -------
    out : (N, d1*...*dk) ndarray; a view of x (no copy) whenever x is C-contiguous.
    cache : tuple, the shape of x, all that flatten_backward needs.
    """
    x = as_float_array(x, "x")
    if x.ndim < 2:
        raise ValueError(f"x must have a batch axis and at least one more, got shape {x.shape}")
    # Not reshape(N, -1), as in lesson 7: that fails for N = 0, which Layer.output_shape uses.
    out = x.reshape(x.shape[0], math.prod(x.shape[1:]))  # (N, D)
    return out, x.shape


def unflatten(a, shape):
    """Undo flatten_forward: turn a (N, D) array back into `shape` = (N, d1, ..., dk).

    Parameters
    ----------
    a : (N, D) ndarray with D = d1*...*dk.
    shape : tuple of int, the full shape of the array that was flattened, batch axis
        included. Sizes must be ints: (2, 2.5, 2) is refused with a TypeError rather than
        truncated to (2, 2, 2).

    Returns
    -------
    (N, d1, ..., dk) ndarray, a view of `a` whenever `a` is C-contiguous.
    """
    return _unflatten(a, shape, "a")


def _unflatten(a, shape, name):
    a = as_float_array(a, name)
    shape = as_shape(shape, "shape")
    if len(shape) < 2:
        raise ValueError(f"shape must be (N, d1, ..., dk) with k >= 1, got {shape}")
    expected = (shape[0], math.prod(shape[1:]))
    if a.shape != expected:
        raise ValueError(f"to unflatten into {shape}, {name} must have shape {expected}, got {a.shape}")
    return a.reshape(shape)  # (N, d1, ..., dk)


def flatten_backward(dout, cache):
    """Route the gradient back through Flatten: reshape dout to the forward input's shape.

    Parameters
    ----------
    dout : (N, D) ndarray, dL/d(flattened x), for example the dx of the dense layer above.
    cache : the shape flatten_forward returned.

    Returns
    -------
    dx : (N, d1, ..., dk) ndarray, the same numbers (and dtype) as dout in the shape of x.
        Flatten does no arithmetic, so there is nothing to differentiate: only to re-index.
    """
    if not isinstance(cache, tuple) or len(cache) < 2 or not all(
            isinstance(size, numbers.Integral) and not isinstance(size, bool) for size in cache):
        raise TypeError(
            f"flatten_backward needs the cache flatten_forward returned, the input's shape "
            f"(N, d1, ..., dk), got {_describe_cache(cache)}: the cache of another layer?")
    return _unflatten(dout, cache, "dout")


def _describe_cache(cache):
    if cache is None:
        return "None"
    if isinstance(cache, tuple):
        return f"a tuple of {len(cache)} ({', '.join(type(item).__name__ for item in cache)})"
    return f"a {type(cache).__name__}"
