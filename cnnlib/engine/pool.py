"""The fast pooling: what cnnlib.maxpool2d_* and avgpool2d_* run once their inputs are checked.

It computes what cnnlib/pool.py's loops compute a window at a time, but tap by tap: tap
(p, q) is pixel (p, q) of every window at once, one strided view of the input (windows.taps),
so a layer is a loop over the KH*KW taps of whole-array operations. Max pooling keeps a
running maximum over the taps and the index of the tap that won it; its backward sends each
dout to its window's winner, one tap at a time. Max pooling splits a very large batch into
slices that threads take through the layer at once (parallel.py, pool_slices). Lesson 6
writes the loops; lesson 11 shows why taps are fast. The results are the loops' exactly,
but for the sign of a zero maximum: np.maximum of -0.0 and 0.0 may return either.

Shapes: N batch, C channels, H x W input, KH x KW window (size), H' x W' output.

Non-finite pixels follow PyTorch, whose rules a plain argmax does not give: a window holding
a NaN outputs NaN and sends its gradient to the NaN, to the last one in row-major order if
there are several (PyTorch's CPU kernel takes every NaN it meets as the new maximum), and a
padded window whose real pixels are all -inf (so tied with its -inf padding) sends it to its
first real pixel, not to the padding, where it would be lost. max_forward puts its winners
right for those windows afterwards (nonfinite_winners); the loop version in cnnlib/pool.py
applies the same rules one window at a time (window_argmax), and the tests hold the two equal.
"""

import numpy as np

from . import parallel
from .arrays import empty, zeros
from .parallel import batch_slices, map_slices
from .windows import pad_hw, taps, unpad_hw


def pool_slices(x):
    """The slices of x's batch that threads take through max-pooling: each slice at least 2**20
    input elements, so two slices from 2**21. Its passes are short (a few strided copies per
    tap), and below that a second thread cost as much as it saved or more (measured on a
    2-core VM, benchmarks/README.md)."""
    return batch_slices(x.shape[0], work=x.size, min_work=8 * parallel.MIN_SLICE_WORK)


def max_forward(x, size, stride, pad, out_hw):
    """out (N, C, H', W') and argmax (see cnnlib/pool.py) for checked x, size, stride, pad."""
    Ho, Wo = out_hw
    out = empty((*x.shape[:2], Ho, Wo), x.dtype)  # (N, C, H', W')
    argmax = empty(out.shape, np.min_scalar_type(size[0] * size[1] - 1))  # uint8 mostly

    def one_slice(part):  # images x[part], n of them; writes out[part] and argmax[part]
        out_part, argmax_part = out[part], argmax[part]  # (n, C, H', W') views
        # A running maximum over the KH*KW taps (see windows.py): no window is ever copied out.
        xp = pad_hw(x[part], pad, -np.inf)  # (n, C, Hp, Wp)
        window_taps = taps(xp, size, stride, (Ho, Wo))
        # The running maximum alternates between out_part and a scratch array, arranged so that
        # the last tap writes out_part: each tap is then read once, by np.maximum, and whether
        # it won is a comparison of the two contiguous maxima (a tap's strided reads cost
        # several times a contiguous pass).
        scratch = empty(out_part.shape, x.dtype)
        n_taps = size[0] * size[1]
        before, after = (out_part, scratch) if n_taps % 2 else (scratch, out_part)
        before[...] = next(window_taps)  # (n, C, H', W'), tap (0, 0) of every window
        argmax_part[...] = 0
        better = empty(out_part.shape, bool)
        won = empty(out_part.shape, argmax.dtype)
        for k, tap in enumerate(window_taps, start=1):
            np.maximum(before, tap, out=after)
            # Strictly greater: on a tie the earlier tap keeps the max, so argmax is the first.
            # max(m, t) > m exactly where t > m, NaN or not (a NaN never compares greater).
            np.greater(after, before, out=better)
            # Taps come in increasing k, so max(argmax, k * better) is k exactly where this tap
            # won: the same as argmax[better] = k, without a boolean mask's slow scattered writes.
            np.maximum(argmax_part, np.multiply(better, k, out=won, dtype=argmax.dtype), out=argmax_part)
            before, after = after, before
        # A NaN never compares greater, so the running argmax above missed it, and an all -inf
        # window kept tap 0, maybe padding. The max of out is NaN in the first case and its min
        # -inf in the second (padding only): a reduction or two over out (a few % of this loop)
        # tells whether any window needs its winner put right.
        if out_part.size and (np.isnan(out_part.max()) or pad != (0, 0) and out_part.min() == -np.inf):
            nonfinite_winners(xp, out_part, argmax_part, size, stride, pad)

    map_slices(one_slice, pool_slices(x))  # see parallel.py
    return out, argmax


def window_argmax(window, corner, pad):
    """The flat index of the winner of one window (KH, KW) of the images padded with -inf,
    its top-left pixel at `corner` (row, column) of the padded image: np.argmax(window), the
    first maximum, but the last NaN if it holds any, and its first real pixel if all of its
    real pixels are -inf (see the module docstring)."""
    k = np.argmax(window)  # the first maximum, or the first NaN
    if np.isnan(window.flat[k]):
        return int(np.flatnonzero(np.isnan(window))[-1])
    if window.flat[k] == -np.inf:
        # Rows above pad[0] and columns left of pad[1] are padding.
        return max(0, pad[0] - corner[0]) * window.shape[1] + max(0, pad[1] - corner[1])
    return int(k)


def nonfinite_winners(xp, out, argmax, size, stride, pad):
    """Put right argmax (n, C, H', W') of the windows whose max `out` is NaN or -inf, given
    the images xp padded with -inf.

    A NaN window's winner is its last NaN in row-major order, as in PyTorch (and
    window_argmax). A window whose real pixels are all -inf ties them with its -inf padding;
    its winner is its first real pixel, as in PyTorch, so that its gradient reaches x.
    """
    if np.isnan(out).any():
        # Only NaN windows have a NaN under any tap, and the taps come in row-major order:
        # each NaN found overrides the ones before it, so the last one stays.
        for k, tap in enumerate(taps(xp, size, stride, out.shape[2:])):
            argmax[np.isnan(tap)] = k
    if pad != (0, 0):
        lost = out == -np.inf
        if lost.any():
            # Window (i, j) starts at padded row i*sh, so its first real row is ph - i*sh of it
            # when that is positive, else 0; columns likewise.
            rows = np.maximum(0, pad[0] - stride[0] * np.arange(out.shape[2]))  # (H',)
            cols = np.maximum(0, pad[1] - stride[1] * np.arange(out.shape[3]))  # (W',)
            np.copyto(argmax, (rows[:, None] * size[1] + cols).astype(argmax.dtype), where=lost)


def max_backward(dout, x, argmax, size, stride, pad):
    """dx (N, C, H, W) for a checked dout (N, C, H', W') and the cache's x, argmax, size, stride, pad."""
    padded = (*x.shape[:2], x.shape[2] + 2 * pad[0], x.shape[3] + 2 * pad[1])
    overlap = stride[0] < size[0] or stride[1] < size[1]
    # When the windows tile x exactly, the loop below writes every pixel: no need to zero it.
    Ho, Wo = argmax.shape[2:]
    tiled = stride == size and pad == (0, 0) and x.shape[2:] == (size[0] * Ho, size[1] * Wo)
    dxp = empty(padded, x.dtype)  # (N, C, H+2ph, W+2pw)
    if not tiled:
        dxp.fill(0)

    def one_slice(part):  # images x[part], n of them; writes dxp[part]
        dout_part, argmax_part = dout[part], argmax[part]  # (n, C, H', W') views
        # dout * (argmax == k) would turn an inf or NaN in dout into NaN (inf * 0) at every
        # pixel of its window; np.where does not, but costs several times as much: one pass says
        # whether dout is finite, and np.where is taken only when it is not.
        winners = empty(dout_part.shape, bool)
        finite = np.isfinite(dout_part, out=winners).all()
        routed = empty(dout_part.shape, dout.dtype) if overlap or not finite else None
        for k, tap in enumerate(taps(dxp[part], size, stride, (Ho, Wo))):
            # Only each window's winner influenced its output, so only it gets the gradient.
            np.equal(argmax_part, k, out=winners)  # (n, C, H', W')
            if not finite:
                routed[...] = 0
                np.copyto(routed, dout_part, where=winners)
                if overlap:
                    tap += routed
                else:
                    tap[...] = routed
            elif overlap:  # windows share pixels, and a shared winner collects from each of them
                tap += np.multiply(dout_part, winners, out=routed)
            else:  # each pixel is in one window at most: write the gradient straight in
                np.multiply(dout_part, winners, out=tap)

    map_slices(one_slice, pool_slices(x))  # see parallel.py
    if pad == (0, 0):
        return dxp  # (N, C, H, W)
    dx = empty(x.shape, x.dtype)
    dx[...] = unpad_hw(dxp, pad, x.shape[2:])
    return dx  # (N, C, H, W)


def avg_forward(x, size, stride, out_hw):
    """out (N, C, H', W') for checked x, size, stride (no padding)."""
    window_taps = taps(x, size, stride, out_hw)
    out = empty((*x.shape[:2], *out_hw), x.dtype)  # (N, C, H', W')
    out[...] = next(window_taps)
    for tap in window_taps:
        out += tap
    out /= size[0] * size[1]
    return out


def avg_backward(dout, x, size, stride):
    """dx (N, C, H, W) for a checked dout (N, C, H', W') and the cache's x, size, stride."""
    # Every pixel of a window contributed 1/(KH*KW) of the output.
    share = (dout / (size[0] * size[1])).astype(x.dtype, copy=False)  # (N, C, H', W')
    dx = zeros(x.shape, x.dtype)
    for tap in taps(dx, size, stride, dout.shape[2:]):
        tap += share  # overlapping windows add up
    return dx
