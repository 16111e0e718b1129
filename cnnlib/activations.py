"""ReLU, out = max(x, 0), elementwise on an array of any shape (lesson 3).

The functions check their inputs here and compute in cnnlib/engine/relu.py, which gives
lesson 3's np.maximum(x, 0) and dout * (x > 0) in the engine's reused memory.
"""

from ._caches import check_cache
from ._validate import as_float_array, check_dout
from .engine import relu as engine


def relu_forward(x):
    """Parameters: x : ndarray of any shape. Returns out (same shape) and cache = x."""
    x = as_float_array(x, "x")
    return engine.forward(x), x  # np.maximum(x, 0)


def relu_backward(dout, cache):
    """dx = dout where x > 0, else 0 (at exactly 0 the slope is taken as 0, as PyTorch does).

    Non-finite values as in PyTorch: where x is NaN, dout passes (x <= 0 is false there), and
    where x <= 0, dx is 0 even if dout is inf or NaN there.
    """
    x = check_cache("relu", cache)
    dout = check_dout(dout, x.shape)
    return engine.backward(dout, x)  # dout * (x > 0), and dout where x is NaN
