"""Max and average pooling, forward and backward, as loop versions and vectorized ones.

Shapes: N batch, C channels, H x W input, KH x KW pool window (`size`), H' x W' output,
    H' = (H + 2*pad - KH) // stride + 1   (W' likewise).
`size`, `stride` and `pad` are ints or (vertical, horizontal) pairs; stride defaults to size.

Max pooling pads with -inf, so padding never wins the max, and routes each output's
gradient to the first maximum of its window in row-major order (PyTorch's rule for ties).
Non-finite pixels follow PyTorch too: a window holding a NaN outputs NaN and sends its
gradient to the NaN (the first one, as np.argmax picks it; PyTorch picks the last), and a
padded window whose real pixels are all -inf sends it to its first real pixel, not to the
padding. Both max-pool versions share the cache (x, argmax, size, stride, pad), where argmax
(N, C, H', W') holds the flat index, in 0..KH*KW-1, of the winner inside each window
(the fast forward stores it as uint8 for any window up to 16x16, to save memory and time).
"""

import numpy as np

from ._caches import check_cache
from ._checks import as_float_array, as_pair, check_dout, check_ndim, output_hw
from ._parallel import batch_slices, map_slices
from ._windows import pad_hw, taps, unpad_hw


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


def maxpool2d_forward(x, *, size=2, stride=None, pad=0):
    """Max pooling over KH x KW windows (vectorized).

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
    x, size, stride, pad, (Ho, Wo) = _check_args(x, size, stride, pad)
    out = np.empty((*x.shape[:2], Ho, Wo), dtype=x.dtype)  # (N, C, H', W')
    argmax = np.empty(out.shape, dtype=np.min_scalar_type(size[0] * size[1] - 1))  # uint8 mostly

    def one_slice(part):  # images x[part], n of them; writes out[part] and argmax[part]
        out_part, argmax_part = out[part], argmax[part]  # (n, C, H', W') views
        # A running maximum over the KH*KW taps (see _windows): no window is ever copied out.
        window_taps = taps(pad_hw(x[part], pad, value=-np.inf), size, stride, (Ho, Wo))
        out_part[...] = next(window_taps)  # (n, C, H', W'), tap (0, 0) of every window
        argmax_part[...] = 0
        for k, tap in enumerate(window_taps, start=1):
            # Strictly greater: on a tie the earlier tap keeps the max, so argmax is the first.
            better = tap > out_part
            np.maximum(out_part, tap, out=out_part)
            # Taps come in increasing k, so max(argmax, k * better) is k exactly where this tap
            # won: the same as argmax[better] = k, without a boolean mask's slow scattered writes.
            np.maximum(argmax_part, np.multiply(better, k, dtype=argmax.dtype), out=argmax_part)
        # A NaN never compares greater, so the running argmax above missed it, and an all -inf
        # window kept tap 0, maybe padding. The max of out is NaN in the first case and its min
        # -inf in the second (padding only): a reduction or two over out (a few % of this loop)
        # tells whether any window needs its winner put right.
        if out_part.size and (np.isnan(out_part.max()) or pad != (0, 0) and out_part.min() == -np.inf):
            _nonfinite_winners(x[part], out_part, argmax_part, size, stride, pad)

    map_slices(one_slice, batch_slices(x.shape[0], work=x.size))  # see _parallel
    return out, (x, argmax, size, stride, pad)


def _nonfinite_winners(x, out, argmax, size, stride, pad):
    """Put right argmax (n, C, H', W') of the windows whose max `out` is NaN or -inf.

    A NaN window's winner is its first NaN, as np.argmax (the loop version) has it. A window
    whose real pixels are all -inf ties them with its -inf padding; its winner is its first
    real pixel, as in PyTorch, so that its gradient reaches x.
    """
    nan = np.isnan(out)  # (n, C, H', W')
    if nan.any():
        found = ~nan  # windows done with: those without a NaN, and each NaN window once found
        for k, tap in enumerate(taps(pad_hw(x, pad, value=-np.inf), size, stride, out.shape[2:])):
            first = np.isnan(tap) & ~found
            argmax[first] = k
            found |= first
    if pad != (0, 0):
        lost = out == -np.inf
        if lost.any():
            # Window (i, j) starts at padded row i*sh, so its first real row is ph - i*sh of it
            # when that is positive, else 0; columns likewise.
            rows = np.maximum(0, pad[0] - stride[0] * np.arange(out.shape[2]))  # (H',)
            cols = np.maximum(0, pad[1] - stride[1] * np.arange(out.shape[3]))  # (W',)
            np.copyto(argmax, (rows[:, None] * size[1] + cols).astype(argmax.dtype), where=lost)


def maxpool2d_backward(dout, cache):
    """Gradient of the loss with respect to x (vectorized).

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
    padded = (*x.shape[:2], x.shape[2] + 2 * pad[0], x.shape[3] + 2 * pad[1])
    overlap = stride[0] < size[0] or stride[1] < size[1]
    # When the windows tile x exactly, the loop below writes every pixel: no need to zero it.
    Ho, Wo = argmax.shape[2:]
    tiled = stride == size and pad == (0, 0) and x.shape[2:] == (size[0] * Ho, size[1] * Wo)
    dxp = (np.empty if tiled else np.zeros)(padded, dtype=x.dtype)  # (N, C, H+2ph, W+2pw)

    def one_slice(part):  # images x[part], n of them; writes dxp[part]
        dout_part, argmax_part = dout[part], argmax[part]  # (n, C, H', W') views
        # dout * (argmax == k) would turn an inf or NaN in dout into NaN (inf * 0) at every
        # pixel of its window; np.where does not, but costs several times as much: one pass says
        # whether dout is finite, and np.where is taken only when it is not.
        finite = np.isfinite(dout_part).all()
        for k, tap in enumerate(taps(dxp[part], size, stride, (Ho, Wo))):
            # Only each window's winner influenced its output, so only it gets the gradient.
            winners = argmax_part == k  # (n, C, H', W')
            if not finite:
                routed = np.where(winners, dout_part, 0)
                if overlap:
                    tap += routed
                else:
                    tap[...] = routed
            elif overlap:  # windows share pixels, and a shared winner collects from each of them
                tap += dout_part * winners
            else:  # each pixel is in one window at most: write the gradient straight in
                np.multiply(dout_part, winners, out=tap)

    map_slices(one_slice, batch_slices(x.shape[0], work=x.size))  # see _parallel
    return np.ascontiguousarray(unpad_hw(dxp, pad, x.shape[2:]))  # (N, C, H, W)


def maxpool2d_forward_naive(x, *, size=2, stride=None, pad=0):
    """Same as maxpool2d_forward, with one loop per output element: the reference version."""
    x, size, stride, pad, (Ho, Wo) = _check_args(x, size, stride, pad)
    (KH, KW), (sh, sw), (ph, pw) = size, stride, pad
    N, C = x.shape[:2]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    out = np.zeros((N, C, Ho, Wo), dtype=x.dtype)
    argmax = np.zeros((N, C, Ho, Wo), dtype=np.intp)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    window = xp[n, c, i * sh:i * sh + KH, j * sw:j * sw + KW]  # (KH, KW)
                    k = np.argmax(window)  # flat index of the first maximum (or of the first NaN)
                    if window.flat[k] == -np.inf:  # every real pixel is -inf: not the padding,
                        k = max(0, ph - i * sh) * KW + max(0, pw - j * sw)  # the first real one wins
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
                    di, dj = divmod(argmax[n, c, i, j], KW)
                    dxp[n, c, i * sh + di, j * sw + dj] += dout[n, c, i, j]
    return dxp[:, :, ph:ph + H, pw:pw + W]  # (N, C, H, W)


def avgpool2d_forward(x, *, size=2, stride=None):
    """Average pooling over KH x KW windows (vectorized), no padding.

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
    window_taps = taps(x, size, stride, out_hw)
    out = next(window_taps).copy()  # (N, C, H', W')
    for tap in window_taps:
        out += tap
    out /= size[0] * size[1]
    return out, (x, size, stride)


def _check_avg_backward(dout, cache, backward):
    x, size, stride = check_cache("avgpool2d", cache, backward)
    out_hw = output_hw(x.shape[2:], size, stride, (0, 0), "pool window")
    return check_dout(dout, (*x.shape[:2], *out_hw))


def avgpool2d_backward(dout, cache):
    """Gradient of the loss with respect to x (vectorized).

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
    # Every pixel of a window contributed 1/(KH*KW) of the output.
    share = (dout / (size[0] * size[1])).astype(x.dtype, copy=False)  # (N, C, H', W')
    dx = np.zeros_like(x)
    for tap in taps(dx, size, stride, dout.shape[2:]):
        tap += share  # overlapping windows add up
    return dx


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
