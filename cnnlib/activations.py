"""ReLU, out = max(x, 0), elementwise on an array of any shape."""

import numpy as np

from ._caches import check_cache
from ._checks import as_float_array, check_dout


def relu_forward(x):
    """Parameters: x : ndarray of any shape. Returns out (same shape) and cache = x."""
    x = as_float_array(x, "x")
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    """dx = dout where x > 0, else 0 (at exactly 0 the slope is taken as 0, as PyTorch does)."""
    x = check_cache("relu", cache)
    dout = check_dout(dout, x.shape)
    # Multiplying by the 0/1 mask is several times faster than np.where, whose branches
    # mispredict on a mask that is as random as the signs of x.
    return (dout * (x > 0)).astype(x.dtype, copy=False)
