"""Max and average pooling, forward and backward (lesson 6).

Shapes: N batch, C channels, H x W input, KH x KW pool window (`size`), H' x W' output,
    H' = (H + 2*pad - KH) // stride + 1   (W' likewise).
`size`, `stride` and `pad` are ints or (vertical, horizontal) pairs; stride defaults to size.

Max pooling pads with -inf, so padding never wins the max, and routes each output's
gradient to the first maximum of its window in row-major order (PyTorch's rule for ties).
Non-finite windows follow PyTorch too: a window holding NaN outputs NaN and sends its
gradient to its last NaN, and a padded window whose real pixels are all -inf sends it to its
first real pixel (cnnlib/engine/pool.py says why). Both max-pool versions make the cache
(x, argmax, size, stride, pad), where argmax (N, C, H', W') holds the flat index, in
0..KH*KW-1, of the winner inside each window (as the smallest integer type that fits, in the
fast version), and either backward takes either's cache.

This file holds the input checks, the loop versions (`*_naive`, the reference: one loop per
output element, as lesson 6 writes them) and the public functions. The public ones check
their inputs here and run the fast versions in cnnlib/engine/pool.py, which take one offset
(p, q) inside the window at a time, that cell of every window at once, instead of one window
at a time (lesson 11 explains why that is fast); the tests hold them equal to the loops below.
"""

import numpy as np

from ._caches import check_cache
from ._validate import as_float_array, as_pair, check_dout, check_ndim, output_hw
from .engine import pool as engine


def _check_args(x, size, stride, pad):
    x = as_float_array(x, "x")
    check_ndim(x, 4, "x", "(N, C, H, W)")
    size = as_pair(size, "size", minimum=1)
    stride = size if stride is None else as_pair(stride, "stride", minimum=1)
    pad = as_pair(pad, "pad", minimum=0)
    if pad[0] > size[0] // 2 or pad[1] > size[1] // 2:
        # A window made only of padding would have no real maximum (PyTorch refuses it too).
        raise ValueError(f"pad {pad} must be at most half the pool window {size}")
    out_hw = output_hw(x.shape[2:], size, stride, pad, "pool window")
    return x, size, stride, pad, out_hw


def _check_avg_backward(dout, cache, backward):
    x, size, stride = check_cache("avgpool2d", cache, backward)
    out_hw = output_hw(x.shape[2:], size, stride, (0, 0), "pool window")
    return check_dout(dout, (*x.shape[:2], *out_hw))


def maxpool2d_forward_naive(x, *, size=2, stride=None, pad=0):
    """Same as maxpool2d_forward, with one loop per output element: the reference version."""
    x, size, stride, pad, (Ho, Wo) = _check_args(x, size, stride, pad)
    (KH, KW), (sh, sw), (ph, pw) = size, stride, pad
    N, C = x.shape[:2]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)  # (N, C, H+2ph, W+2pw)
    out = np.zeros((N, C, Ho, Wo), dtype=x.dtype)
    argmax = np.zeros((N, C, Ho, Wo), dtype=np.intp)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    window = xp[n, c, i * sh:i * sh + KH, j * sw:j * sw + KW]  # (KH, KW)
                    k = np.argmax(window)  # flat index of the first maximum
                    if not np.isfinite(window.flat[k]):
                        # NaN or all -inf: PyTorch's rules, see cnnlib/engine/pool.py.
                        k = engine.window_argmax(window, (i * sh, j * sw), pad)
                    argmax[n, c, i, j] = k
                    out[n, c, i, j] = window.flat[k]
    return out, (x, argmax, size, stride, pad)


def maxpool2d_backward_naive(dout, cache):
    """Same as maxpool2d_backward, with one loop per output element: the reference version."""
    x, argmax, (KH, KW), (sh, sw), (ph, pw) = check_cache("maxpool2d", cache, "maxpool2d_backward_naive")
    dout = check_dout(dout, argmax.shape)
    N, C, Ho, Wo = dout.shape
    H, W = x.shape[2:]
    dxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    # Only the winner influenced the output, so only it gets a gradient.
                    # int(): the fast forward stores argmax as uint8, and i * sh + di in uint8
                    # would wrap past row 255.
                    di, dj = divmod(int(argmax[n, c, i, j]), KW)
                    dxp[n, c, i * sh + di, j * sw + dj] += dout[n, c, i, j]
    return dxp[:, :, ph:ph + H, pw:pw + W]  # (N, C, H, W)


def avgpool2d_forward_naive(x, *, size=2, stride=None):
    """Same as avgpool2d_forward, with one loop per output element: the reference version."""
    x, (KH, KW), (sh, sw), _, (Ho, Wo) = _check_args(x, size, stride, 0)
    N, C = x.shape[:2]
    out = np.zeros((N, C, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    out[n, c, i, j] = x[n, c, i * sh:i * sh + KH, j * sw:j * sw + KW].mean()
    return out, (x, (KH, KW), (sh, sw))


def avgpool2d_backward_naive(dout, cache):
    """Same as avgpool2d_backward, with one loop per output element: the reference version."""
    dout = _check_avg_backward(dout, cache, "avgpool2d_backward_naive")
    x, (KH, KW), (sh, sw) = cache
    N, C, Ho, Wo = dout.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    dx[n, c, i * sh:i * sh + KH, j * sw:j * sw + KW] += dout[n, c, i, j] / (KH * KW)
    return dx


def maxpool2d_forward(x, *, size=2, stride=None, pad=0):
    """Max pooling over KH x KW windows (fast: see cnnlib/engine/pool.py).

    Parameters
    ----------
    x : (N, C, H, W) ndarray
    size : int or (int, int), the window KH x KW.
    stride : int or (int, int), default `size` (windows side by side).
    pad : int or (int, int), at most half the window.

    Returns
    -------
    out : (N, C, H', W') ndarray
    cache : tuple (x, argmax, size, stride, pad), see the module docstring.
    """
    x, size, stride, pad, out_hw = _check_args(x, size, stride, pad)
    out, argmax = engine.max_forward(x, size, stride, pad, out_hw)
    return out, (x, argmax, size, stride, pad)


def maxpool2d_backward(dout, cache):
    """Gradient of the loss with respect to x (fast: see cnnlib/engine/pool.py).

    Parameters
    ----------
    dout : (N, C, H', W') ndarray
    cache : the tuple maxpool2d_forward returned.

    Returns
    -------
    dx : (N, C, H, W) ndarray; each dout element lands on its window's maximum only.
    """
    x, argmax, size, stride, pad = check_cache("maxpool2d", cache)
    dout = check_dout(dout, argmax.shape)
    return engine.max_backward(dout, x, argmax, size, stride, pad)


def avgpool2d_forward(x, *, size=2, stride=None):
    """Average pooling over KH x KW windows (fast: see cnnlib/engine/pool.py), no padding.

    (Padding would raise a question with no single answer: do the zeros count towards a
    border window's average? Modern networks rarely pad average pooling, so we don't.)

    Parameters
    ----------
    x : (N, C, H, W) ndarray
    size, stride : int or (int, int); stride defaults to size.

    Returns
    -------
    out : (N, C, H', W') ndarray
    cache : tuple (x, size, stride).
    """
    x, size, stride, _, out_hw = _check_args(x, size, stride, 0)
    return engine.avg_forward(x, size, stride, out_hw), (x, size, stride)


def avgpool2d_backward(dout, cache):
    """Gradient of the loss with respect to x (fast: see cnnlib/engine/pool.py).

    Parameters
    ----------
    dout : (N, C, H', W') ndarray
    cache : the tuple avgpool2d_forward returned.

    Returns
    -------
    dx : (N, C, H, W) ndarray; each pixel gets 1/(KH*KW) of dout from every window it is in.
    """
    dout = _check_avg_backward(dout, cache, "avgpool2d_backward")
    x, size, stride = cache
    return engine.avg_backward(dout, x, size, stride)
