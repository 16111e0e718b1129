"""2-D convolution, forward and backward, as a readable loop version and a vectorized one.

Like every deep-learning library, "convolution" here is cross-correlation: the kernel is not
flipped. The flip appears in the backward pass instead: dx is a full convolution of dout
with the flipped kernel. The code computes that same sum by sending dout * w back onto each
window, which needs no flip and reads straight off the forward formula.

Shapes: N batch, C input channels, H x W input, F filters, KH x KW kernel, H' x W' output,
    H' = (H + 2*pad - KH) // stride + 1   (W' likewise with the horizontal stride and pad).
`stride` and `pad` are ints or (vertical, horizontal) pairs.

Both versions share one cache, (x, w, b, stride, pad, cols) with stride and pad as pairs, so
the backward of either can be checked against the other on exactly the same forward pass.
cols is the fast forward's im2col matrix (see _windows), kept so the backward need not copy
every window again; the naive forward stores None there, and the fast backward then builds it.
"""

import numpy as np

from ._checks import as_float_array, as_pair, check_dout, check_ndim, output_hw
from ._windows import col2im, im2col


def _check_args(x, w, b, stride, pad):
    x, w, b = as_float_array(x, "x"), as_float_array(w, "w"), as_float_array(b, "b")
    check_ndim(x, 4, "x", "(N, C, H, W)")
    check_ndim(w, 4, "w", "(F, C, KH, KW)")
    check_ndim(b, 1, "b", "(F,)")
    if w.shape[1] != x.shape[1]:
        raise ValueError(
            f"x has {x.shape[1]} channels (shape {x.shape}) but w expects {w.shape[1]} "
            f"(shape {w.shape}, laid out (F, C, KH, KW))"
        )
    if b.shape[0] != w.shape[0]:
        raise ValueError(f"b must have one bias per filter: w has {w.shape[0]} filters, b has shape {b.shape}")
    stride = as_pair(stride, "stride", minimum=1)
    pad = as_pair(pad, "pad", minimum=0)
    out_hw = output_hw(x.shape[2:], w.shape[2:], stride, pad, "kernel")
    return x, w, b, stride, pad, out_hw


def _check_backward(dout, cache):
    x, w, b, stride, pad, _ = cache
    out_hw = output_hw(x.shape[2:], w.shape[2:], stride, pad, "kernel")
    return check_dout(dout, (x.shape[0], w.shape[0], *out_hw))


def conv2d_forward(x, w, b, *, stride=1, pad=0):
    """Convolve a batch of images with F filters (vectorized).

    Parameters
    ----------
    x : (N, C, H, W) ndarray
    w : (F, C, KH, KW) ndarray
    b : (F,) ndarray
    stride, pad : int or (int, int)

    Returns
    -------
    out : (N, F, H', W') ndarray
    cache : tuple (x, w, b, stride, pad, cols), what conv2d_backward needs.
    """
    x, w, b, stride, pad, (Ho, Wo) = _check_args(x, w, b, stride, pad)
    N, F = x.shape[0], w.shape[0]
    cols = im2col(x, w.shape[2:], stride, pad, (Ho, Wo))  # (C*KH*KW, N*H'*W')
    # Row f of w times column (n, i, j) of cols is out[n, f, i, j] before the bias.
    prod = w.reshape(F, -1) @ cols  # (F, N*H'*W')
    prod = prod.reshape(F, N, Ho, Wo).transpose(1, 0, 2, 3)  # (N, F, H', W'), a view
    out = np.empty(prod.shape, dtype=prod.dtype)
    # One pass adds the bias and makes out contiguous: b as (F, 1, 1), one bias per map.
    np.add(prod, b[:, None, None].astype(out.dtype, copy=False), out=out)
    return out, (x, w, b, stride, pad, cols)


def conv2d_backward(dout, cache):
    """Gradients of the loss with respect to x, w and b (vectorized).

    Parameters
    ----------
    dout : (N, F, H', W') ndarray, the upstream gradient dL/dout.
    cache : the tuple conv2d_forward returned.

    Returns
    -------
    dx : (N, C, H, W) ndarray
    dw : (F, C, KH, KW) ndarray
    db : (F,) ndarray
    """
    dout = _check_backward(dout, cache)
    x, w, b, stride, pad, cols = cache
    N, F, Ho, Wo = dout.shape
    # The forward was prod = w2 @ cols with w2 = w as (F, C*KH*KW); the backward is the two
    # products of the matrix chain rule, in the same column order as cols.
    dprod = dout.transpose(1, 0, 2, 3).reshape(F, N * Ho * Wo)  # (F, N*H'*W'), a copy
    # b[f] was added to every pixel of every map f, so all their gradients flow into it.
    db = dprod.sum(axis=1)  # (F,)
    if cols is None:  # the naive forward's cache
        cols = im2col(x, w.shape[2:], stride, pad, (Ho, Wo))  # (C*KH*KW, N*H'*W')
    # dw = dprod @ cols.T, written transposed: OpenBLAS runs this product up to twice as fast
    # with the long N*H'*W' axis on the outside (measured in benchmarks/).
    dw = (cols @ dprod.T).T.reshape(w.shape)  # (F, C, KH, KW)
    # Every output pixel sends dout * w back onto the window it was computed from.
    dcols = w.reshape(F, -1).T @ dprod  # (C*KH*KW, N*H'*W')
    dx = col2im(dcols, x.shape, w.shape[2:], stride, pad, (Ho, Wo))  # (N, C, H, W)
    return dx.astype(x.dtype, copy=False), dw.astype(w.dtype, copy=False), db.astype(b.dtype, copy=False)


def conv2d_forward_naive(x, w, b, *, stride=1, pad=0):
    """Same as conv2d_forward, with one loop per output element: the reference version."""
    x, w, b, stride, pad, (Ho, Wo) = _check_args(x, w, b, stride, pad)
    (sh, sw), (ph, pw) = stride, pad
    N, F, KH, KW = x.shape[0], w.shape[0], w.shape[2], w.shape[3]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # (N, C, H+2ph, W+2pw)
    out = np.zeros((N, F, Ho, Wo), dtype=np.result_type(x, w))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    window = xp[n, :, i * sh:i * sh + KH, j * sw:j * sw + KW]  # (C, KH, KW)
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    return out, (x, w, b, stride, pad, None)


def conv2d_backward_naive(dout, cache):
    """Same as conv2d_backward, with one loop per output element: the reference version."""
    dout = _check_backward(dout, cache)
    x, w, b, (sh, sw), (ph, pw), _ = cache
    N, F, Ho, Wo = dout.shape
    H, W, KH, KW = x.shape[2], x.shape[3], w.shape[2], w.shape[3]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # (N, C, H+2ph, W+2pw)
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    db = np.zeros_like(b)
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    rows, columns = slice(i * sh, i * sh + KH), slice(j * sw, j * sw + KW)
                    # out[n, f, i, j] = sum(window * w[f]) + b[f]; differentiate each term.
                    db[f] += dout[n, f, i, j]
                    dw[f] += dout[n, f, i, j] * xp[n, :, rows, columns]
                    dxp[n, :, rows, columns] += dout[n, f, i, j] * w[f]
    # [ph:ph+H], not [ph:-ph]: with pad 0 the latter is an empty array.
    dx = dxp[:, :, ph:ph + H, pw:pw + W]  # (N, C, H, W)
    return dx, dw, db
