"""Dense (fully connected) layer: out = x @ w + b (lesson 2).

Shapes: N batch, D input features, M output features.

The math is one matrix product, x @ w (run on one thread: cnnlib/engine/dense.py), so this is
already the fast version; matmul(a, b) below is a @ b.
"""

from ._caches import check_cache
from ._validate import as_flag, as_float_array, check_dout, check_ndim
from .engine.dense import matmul


def dense_forward(x, w, b):
    """Affine map of each row of x.

    Parameters
    ----------
    x : (N, D) ndarray; flatten images first (flatten_forward).
    w : (D, M) ndarray
    b : (M,) ndarray

    Returns
    -------
    out : (N, M) ndarray
    cache : tuple (x, w, b).
    """
    x, w, b = as_float_array(x, "x"), as_float_array(w, "w"), as_float_array(b, "b")
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D (N, D), got shape {x.shape}; flatten it first (flatten_forward)")
    check_ndim(w, 2, "w", "(D, M)")
    check_ndim(b, 1, "b", "(M,)")
    if x.shape[1] != w.shape[0]:
        raise ValueError(f"x has {x.shape[1]} features (shape {x.shape}) but w expects {w.shape[0]} (shape {w.shape})")
    if b.shape[0] != w.shape[1]:
        raise ValueError(f"b must have one entry per output: w has shape {w.shape}, b has shape {b.shape}")
    out = matmul(x, w)  # x @ w, (N, M)
    # Broadcast over the batch. b is cast first so that a float32 out adds in float32, as the
    # conv layer does: += alone keeps out's dtype too, but adds in float64 and rounds back.
    out += b.astype(out.dtype, copy=False)
    return out, (x, w, b)


def dense_backward(dout, cache, *, input_grad=True):
    """Gradients with respect to x, w and b.

    Parameters
    ----------
    dout : (N, M) ndarray
    cache : the tuple dense_forward returned.
    input_grad : bool, default True. False skips dx, for a first layer whose x is the data.

    Returns
    -------
    dx : (N, D) ndarray, dout @ w.T, or None when input_grad is False.
    dw : (D, M) ndarray, x.T @ dout
    db : (M,) ndarray, dout summed over the batch
    """
    x, w, b = check_cache("dense", cache)
    dout = check_dout(dout, (x.shape[0], w.shape[1]))
    input_grad = as_flag(input_grad, "input_grad")
    dx = matmul(dout, w.T).astype(x.dtype, copy=False) if input_grad else None  # dout @ w.T, (N, D)
    dw = matmul(x.T, dout)  # x.T @ dout, (D, M)
    # b was added to every row, so each row's gradient flows into it: sum over the batch.
    db = dout.sum(axis=0)  # (M,)
    return dx, dw.astype(w.dtype, copy=False), db.astype(b.dtype, copy=False)
