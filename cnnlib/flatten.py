"""Flatten and its inverse: the bridge between feature maps and a dense layer.

Shapes: N batch, then any feature axes d1, ..., dk (for images (C, H, W)), D = d1*...*dk.

Flatten has no parameters and computes nothing: it only changes how the same numbers are
indexed. Element x[n, c, h, w] becomes out[n, (c*H + h)*W + w] (C order, the last axis varies
fastest). So its backward is the inverse relabelling: dout (N, D) reshaped back to the
forward input's shape. Any fixed order would work, as long as forward and backward agree.
"""

import math

import numpy as np

from ._checks import as_float_array


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
    out = x.reshape(x.shape[0], math.prod(x.shape[1:]))  # (N, D)
    return out, x.shape


def unflatten(a, shape):
    """Undo flatten_forward: turn a (N, D) array back into `shape` = (N, d1, ..., dk).

    Parameters
    ----------
    a : (N, D) ndarray with D = d1*...*dk.
    shape : tuple, the full shape of the array that was flattened, batch axis included.

    Returns
    -------
    (N, d1, ..., dk) ndarray, a view of `a` whenever `a` is C-contiguous.
    """
    a = as_float_array(a, "a")
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2:
        raise ValueError(f"shape must be (N, d1, ..., dk) with k >= 1, got {shape}")
    expected = (shape[0], math.prod(shape[1:]))
    if a.shape != expected:
        raise ValueError(f"to unflatten into {shape}, a must have shape {expected}, got {a.shape}")
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
    return unflatten(dout, cache)
