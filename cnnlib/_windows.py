"""Padding and sliding windows shared by the vectorized convolution and pooling layers.

Shapes: N batch, C channels, H x W input, KH x KW window, H' x W' output.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def pad_hw(x, pad, value=0.0):
    """Return x padded by `pad` = (ph, pw) on both sides of H and W (x itself when pad is 0).

    Writing into a preallocated array is faster than np.pad and makes the fill value explicit
    (max-pooling pads with -inf so padding can never win the max).
    """
    ph, pw = pad
    if ph == 0 and pw == 0:
        return x
    N, C, H, W = x.shape
    xp = np.full((N, C, H + 2 * ph, W + 2 * pw), value, dtype=x.dtype)  # (N, C, H+2ph, W+2pw)
    xp[:, :, ph:ph + H, pw:pw + W] = x
    return xp


def windows(xp, window, stride):
    """A read-only view of every window of xp: no data is copied.

    xp : (N, C, Hp, Wp) ndarray, already padded.
    Returns (N, C, H', W', KH, KW): element [n, c, i, j] is the window whose top-left corner
    sits at row i*stride[0], column j*stride[1].
    """
    view = sliding_window_view(xp, window, axis=(2, 3))  # (N, C, Hp-KH+1, Wp-KW+1, KH, KW)
    return view[:, :, ::stride[0], ::stride[1]]  # (N, C, H', W', KH, KW)


def unpad_hw(xp, pad, hw):
    """The (H, W) interior of a padded array, as a contiguous copy when padding was added.

    Slicing [ph:ph+H] rather than [ph:-ph] matters: with ph = 0, [0:-0] is empty.
    """
    ph, pw = pad
    if ph == 0 and pw == 0:
        return xp
    return np.ascontiguousarray(xp[:, :, ph:ph + hw[0], pw:pw + hw[1]])  # (N, C, H, W)


def add_windows_back(dwin, stride, padded_shape):
    """Sum window-shaped gradients back onto the (padded) input they were cut from.

    dwin : (N, C, H', W', KH, KW) ndarray, the gradient of every window.
    Overlapping windows (stride < window) share input pixels, so their contributions add.
    One strided slice per kernel offset (KH*KW of them) replaces a loop over output pixels.
    """
    N, C, Ho, Wo, KH, KW = dwin.shape
    sh, sw = stride
    dxp = np.zeros(padded_shape, dtype=dwin.dtype)  # (N, C, Hp, Wp)
    for i in range(KH):
        for j in range(KW):
            # Kernel offset (i, j) of output pixel (r, s) is input pixel (i + r*sh, j + s*sw).
            dxp[:, :, i:i + sh * Ho:sh, j:j + sw * Wo:sw] += dwin[:, :, :, :, i, j]  # (N, C, H', W')
    return dxp
