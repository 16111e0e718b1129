"""Padding, window taps and im2col, shared by the fast convolution and pooling.

Shapes: N batch, C channels, H x W input, KH x KW window, H' x W' output.

A "tap" is one offset (p, q) inside the window: the pixels under tap (p, q) of every window
form one strided slice of the padded input, xp[..., p::sh, q::sw] cut to H' x W' (taps). The
fast layers loop over the KH*KW taps, each step a whole-array operation. im2col copies the
windows into a matrix laid out (C*KH*KW, N*H'*W'), one row per (channel, tap): with the
padded input stored channel-first, (C, N, Hp, Wp), each tap fills C rows with one same-order
strided copy, several times faster than writing pixel rows (N*H'*W', C*KH*KW), where every
element lands KH*KW apart from its neighbour (measured: benchmarks/README.md, lesson 11).
"""

import numpy as np

from .arrays import empty


def pad_hw(x, pad, value):
    """Return x padded by `pad` = (ph, pw) on both sides of H and W (x itself when pad is 0).

    The copy is one of the engine's arrays (see arrays.py). Writing into it is faster than
    np.pad and makes the fill value explicit (max-pooling pads with -inf so padding can never
    win the max).
    """
    ph, pw = pad
    if ph == 0 and pw == 0:
        return x
    N, C, H, W = x.shape
    xp = empty((N, C, H + 2 * ph, W + 2 * pw), x.dtype)  # (N, C, H+2ph, W+2pw)
    fill_padded(xp, x, pad, value)
    return xp


def fill_padded(xp, x, pad, value):
    """Write x (..., H, W) into the interior of xp (..., H+2ph, W+2pw) and `value` around it.

    Only the border is filled, not the whole of xp first: xp's memory is reused (arrays.py),
    not fresh zeros, and a pass over all of it would cost as much as the copy of x itself.
    """
    (ph, pw), (H, W) = pad, x.shape[-2:]
    if ph == 0 and pw == 0:
        xp[...] = x
        return
    xp[..., :ph, :] = value
    xp[..., ph + H:, :] = value
    xp[..., ph:ph + H, :pw] = value
    xp[..., ph:ph + H, pw + W:] = value
    xp[..., ph:ph + H, pw:pw + W] = x


def unpad_hw(xp, pad, hw):
    """The (H, W) interior of a padded array (xp itself when nothing was padded).

    Slicing [ph:ph+H] rather than [ph:-ph] matters: with ph = 0, [0:-0] is empty.
    """
    ph, pw = pad
    if ph == 0 and pw == 0:
        return xp
    return xp[:, :, ph:ph + hw[0], pw:pw + hw[1]]  # (..., H, W), a view


def taps(xp, window, stride, out_hw):
    """Yield one strided view per window offset (p, q), in row-major order.

    xp : (A, B, Hp, Wp) ndarray, already padded (A, B are N, C or C, N).
    The view for (p, q) has shape (A, B, H', W'); its element [a, b, i, j] is the pixel at
    offset (p, q) of window (i, j), i.e. xp[a, b, p + i*sh, q + j*sw]. Writing into a view
    writes into xp.
    """
    (KH, KW), (sh, sw), (Ho, Wo) = window, stride, out_hw
    for p in range(KH):
        for q in range(KW):
            yield xp[:, :, p:p + sh * Ho:sh, q:q + sw * Wo:sw]  # (A, B, H', W')


def im2col(x, kernel, stride, pad, out_hw):
    """Copy every window of x into the columns of one matrix.

    x : (N, C, H, W) ndarray
    Returns cols : (C*KH*KW, N*H'*W') ndarray; cols[(c, p, q), (n, i, j)] is pixel (p, q) of
    channel c in window (i, j) of image n (zero where the window overhangs the padding).
    """
    N, C, H, W = x.shape
    (KH, KW), (ph, pw), (Ho, Wo) = kernel, pad, out_hw
    # Channel-first, so each tap below is a same-order copy.
    xp = empty((C, N, H + 2 * ph, W + 2 * pw), x.dtype)  # (C, N, Hp, Wp)
    fill_padded(xp, x.transpose(1, 0, 2, 3), pad, 0)
    shape = (C, KH * KW, N, Ho, Wo)
    cols = empty(shape, x.dtype)
    for k, tap in enumerate(taps(xp, kernel, stride, out_hw)):
        cols[:, k] = tap  # (C, N, H', W')
    return cols.reshape(C * KH * KW, N * Ho * Wo)  # (C*KH*KW, N*H'*W'), no copy
