"""2-D convolution, forward and backward (lessons 4 and 5).

Like every deep-learning library, "convolution" here is cross-correlation: the kernel is not
flipped. The flip appears in the backward pass instead: dx is a full convolution of dout
with the flipped kernel. The code computes that same sum by sending dout * w back onto each
window, which needs no flip and reads straight off the forward formula.

Shapes: N batch, C input channels, H x W input, F filters, KH x KW kernel, H' x W' output,
    H' = (H + 2*pad - KH) // stride + 1   (W' likewise with the horizontal stride and pad).
`stride` and `pad` are ints or (vertical, horizontal) pairs.

This file holds the input checks, the loop versions (`*_naive`, the reference: one loop per
output element, as lessons 4 and 5 write them) and the public functions. conv2d_forward and
conv2d_backward, the ones the layers and training use, check their inputs here and run the
fast version in cnnlib/engine/conv.py: windows copied into one matrix (im2col, lesson 4) and
the gradients added back one kernel offset (p, q) at a time (lesson 5), tuned for speed as
lesson 11 explains. The tests hold it equal to the loops below.

Both versions share one cache, (x, w, b, stride, pad, kept) with stride and pad as pairs, so
the backward of either can be checked against the other on exactly the same forward pass.
kept is what the fast forward keeps for its backward (groups of images from the batch and
their im2col matrices, see cnnlib/engine/conv.py); the loop forward stores None there.
"""

import numpy as np

from ._caches import check_cache
from ._validate import as_flag, as_float_array, as_pair, check_dout, check_ndim, output_hw
from .engine import conv as engine


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


def _check_backward(dout, cache, backward):
    x, w, b, stride, pad, _ = check_cache("conv2d", cache, backward)
    out_hw = output_hw(x.shape[2:], w.shape[2:], stride, pad, "kernel")
    return check_dout(dout, (x.shape[0], w.shape[0], *out_hw))


def conv2d_forward_naive(x, w, b, *, stride=1, pad=0):
    """Same as conv2d_forward, with one loop per output element: the reference version.

    Each output pixel is its window times the filter, summed, plus the filter's bias.
    """
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
    dout = _check_backward(dout, cache, "conv2d_backward_naive")
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


def conv2d_forward(x, w, b, *, stride=1, pad=0):
    """Convolve a batch of images with F filters (fast: see cnnlib/engine/conv.py).

    Parameters
    ----------
    x : (N, C, H, W) ndarray
    w : (F, C, KH, KW) ndarray
    b : (F,) ndarray
    stride, pad : int or (int, int)

    Returns
    -------
    out : (N, F, H', W') ndarray
    cache : tuple (x, w, b, stride, pad, kept), what conv2d_backward needs.
    """
    x, w, b, stride, pad, out_hw = _check_args(x, w, b, stride, pad)
    out, kept = engine.forward(x, w, b, stride, pad, out_hw)  # see cnnlib/engine/conv.py
    return out, (x, w, b, stride, pad, kept)


def conv2d_backward(dout, cache, *, input_grad=True):
    """Gradients of the loss with respect to x, w and b (fast: see cnnlib/engine/conv.py).

    Parameters
    ----------
    dout : (N, F, H', W') ndarray, the upstream gradient dL/dout.
    cache : the tuple conv2d_forward returned.
    input_grad : bool, default True. False skips dx, for a first layer whose x are the
        images: no layer below needs dL/dx, so training need not pay for it (PyTorch skips it
        too, as images do not require grad).

    Returns
    -------
    dx : (N, C, H, W) ndarray, or None when input_grad is False.
    dw : (F, C, KH, KW) ndarray
    db : (F,) ndarray
    """
    dout = _check_backward(dout, cache, "conv2d_backward")
    input_grad = as_flag(input_grad, "input_grad")
    x, w, b, stride, pad, kept = cache
    dx, dw, db = engine.backward(dout, x, w, stride, pad, kept, input_grad)  # see cnnlib/engine/conv.py
    if input_grad:
        dx = dx.astype(x.dtype, copy=False)
    return dx, dw.astype(w.dtype, copy=False), db.astype(b.dtype, copy=False)
