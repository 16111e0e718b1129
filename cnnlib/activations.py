"""ReLU, out = max(x, 0), elementwise on an array of any shape."""

import numpy as np

from ._caches import check_cache
from ._validate import as_float_array, check_dout


def relu_forward(x):
    """Parameters: x : ndarray of any shape. Returns out (same shape) and cache = x."""
    x = as_float_array(x, "x")
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    """dx = dout where x > 0, else 0 (at exactly 0 the slope is taken as 0, as PyTorch does).

    Non-finite values as in PyTorch: where x is NaN, dout passes (x <= 0 is false there), and
    where x <= 0, dx is 0 even if dout is inf or NaN there.
    """
    x = check_cache("relu", cache)
    dout = check_dout(dout, x.shape)
    keep = ~(x <= 0)  # not x > 0, which is false at NaN
    # Multiplying by the 0/1 mask is several times faster than np.where, whose branches
    # mispredict on a mask that is as random as the signs of x. But 0 * inf and 0 * NaN are
    # NaN, where dx should be 0: a NaN in dx, which its max shows, sends this call the exact
    # way. The max and the NaN-proof mask make this backward about 1.25x as long as
    # dout * (x > 0) alone (measured), some 1.5% of a LeNet step.
    with np.errstate(invalid="ignore"):  # the NaN of 0 * inf is put right below
        dx = dout * keep
    if dx.size and np.isnan(dx.max()):
        dx = np.where(keep, dout, 0)
    return dx.astype(x.dtype, copy=False)
