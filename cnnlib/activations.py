"""ReLU, out = max(x, 0), elementwise on an array of any shape (lesson 3).

The functions check their inputs here and compute lesson 3's np.maximum(x, 0) and
dout * (x > 0) in cnnlib/engine/relu.py; NaN and inf go as in PyTorch (see relu_backward).
"""

from ._caches import check_cache
from ._validate import as_float_array, check_dout
from .engine import relu as engine


def relu_forward(x):
    """out = max(x, 0), element by element.

    Parameters
    ----------
    x : ndarray of any shape.

    Returns
    -------
    out : ndarray shaped like x, max(x, 0).
    cache : x, all that relu_backward needs.
    """
    x = as_float_array(x, "x")
    return engine.forward(x), x  # np.maximum(x, 0)


def relu_backward(dout, cache):
    """dx = dout where x > 0, else 0 (the slope at exactly 0 is taken as 0, as in PyTorch).

    Parameters
    ----------
    dout : ndarray shaped like x.
    cache : the x relu_forward returned.

    Returns
    -------
    dx : ndarray shaped like x. Non-finite values as in PyTorch: where x is NaN, dout passes
        (x <= 0 is false there), and where x <= 0, dx is 0 even if dout is inf or NaN there.
    """
    x = check_cache("relu", cache)
    dout = check_dout(dout, x.shape)
    return engine.backward(dout, x)  # dout where x > 0 or x is NaN, else 0
