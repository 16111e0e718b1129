"""Max and average pooling as learners write them, right and wrong.

forward(x, size=.., stride=.., pad=..) -> (out, cache) (avg-pool has no pad), backward(dout,
cache) -> dx; size, stride and pad are ints, stride None meaning `size`. A Learner without
`forward` reads cnnlib's cache: (x, argmax, (KH, KW), (sh, sw), (ph, pw)) for max pooling,
argmax the flat index of the first maximum inside each (padded) window.
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

from . import ADD, Learner

# ----------------------------------------------------------------------------------------
# Correct
# ----------------------------------------------------------------------------------------


def max_loops_forward(x, size=2, stride=None, pad=0):
    """Four loops, -inf padding in a hand-made array, the winner's (row, col) in the cache."""
    stride = size if stride is None else stride
    N, C, H, W = x.shape
    xp = np.full((N, C, H + 2 * pad, W + 2 * pad), -np.inf)
    xp[:, :, pad:pad + H, pad:pad + W] = x
    Ho = (H + 2 * pad - size) // stride + 1
    Wo = (W + 2 * pad - size) // stride + 1
    out = np.zeros((N, C, Ho, Wo))
    where = np.zeros((N, C, Ho, Wo, 2), dtype=int)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    window = xp[n, c, i * stride:i * stride + size, j * stride:j * stride + size]
                    p, q = np.unravel_index(np.argmax(window), window.shape)
                    where[n, c, i, j] = i * stride + p, j * stride + q
                    out[n, c, i, j] = window[p, q]
    return out, {"where": where, "x_shape": x.shape, "pad": pad}


def max_loops_backward(dout, cache):
    N, C, H, W = cache["x_shape"]
    pad = cache["pad"]
    dxp = np.zeros((N, C, H + 2 * pad, W + 2 * pad))
    for n in range(N):
        for c in range(C):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    r, t = cache["where"][n, c, i, j]
                    dxp[n, c, r, t] += dout[n, c, i, j]
    return dxp[:, :, pad:pad + H, pad:pad + W]


def max_swv_forward(x, size=2, stride=None):
    """sliding_window_view, no pad parameter; a one-hot mask of the first maximum."""
    if stride is None:
        stride = size
    win = sliding_window_view(x, (size, size), axis=(2, 3))[:, :, ::stride, ::stride]
    flat = win.reshape(*win.shape[:4], size * size)
    first = flat.argmax(axis=-1)
    mask = np.eye(size * size)[first].reshape(win.shape)  # (N, C, Ho, Wo, size, size)
    return flat.max(axis=-1), (x.shape, mask, size, stride)


def max_swv_backward(dout, cache):
    shape, mask, size, stride = cache
    Ho, Wo = dout.shape[2:]
    dx = np.zeros(shape)
    for p in range(size):
        for q in range(size):
            dx[:, :, p:p + stride * Ho:stride, q:q + stride * Wo:stride] += dout * mask[..., p, q]
    return dx


def max_backward_alone(dout, cache):
    """Backward alone on cnnlib's cache, with np.add.at."""
    x, argmax, (KH, KW), (sh, sw), (ph, pw) = cache
    N, C, Ho, Wo = dout.shape
    H, W = x.shape[2:]
    p, q = np.divmod(argmax.astype(int), KW)
    rows = np.arange(Ho)[:, None] * sh + p
    cols = np.arange(Wo)[None, :] * sw + q
    n, c = np.ogrid[:N, :C]
    dxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw))
    np.add.at(dxp, (n[:, :, None, None], c[:, :, None, None], rows, cols), dout)
    return dxp[:, :, ph:ph + H, pw:pw + W]


def avg_loops_forward(x, size=2, stride=None):
    stride = stride or size
    N, C, H, W = x.shape
    Ho, Wo = (H - size) // stride + 1, (W - size) // stride + 1
    out = np.zeros((N, C, Ho, Wo))
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    out[n, c, i, j] = x[n, c, i * stride:i * stride + size, j * stride:j * stride + size].mean()
    return out, (x.shape, size, stride)


def avg_loops_backward(dout, cache):
    shape, size, stride = cache
    dx = np.zeros(shape)
    for n in range(shape[0]):
        for c in range(shape[1]):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    dx[n, c, i * stride:i * stride + size, j * stride:j * stride + size] += dout[n, c, i, j] / (size * size)
    return dx


def avg_strided_forward(x, stride=None, size=2):
    """as_strided windows and einsum; stride before size in this signature."""
    stride = size if stride is None else stride
    N, C, H, W = x.shape
    Ho, Wo = (H - size) // stride + 1, (W - size) // stride + 1
    s = x.strides
    win = as_strided(x, (N, C, Ho, Wo, size, size), (s[0], s[1], s[2] * stride, s[3] * stride, s[2], s[3]))
    return np.einsum("ncijpq->ncij", win) / size**2, {"shape": x.shape, "k": size, "s": stride}


def avg_strided_backward(dout, cache):
    k, s = cache["k"], cache["s"]
    Ho, Wo = dout.shape[2:]
    dx = np.zeros(cache["shape"])
    share = dout / k**2
    for p in range(k):
        for q in range(k):
            dx[:, :, p:p + s * Ho:s, q:q + s * Wo:s] += share
    return dx


# ----------------------------------------------------------------------------------------
# Buggy
# ----------------------------------------------------------------------------------------


def max_ties_backward(dout, cache):
    """Mask x == max: on a tie every tied cell gets the whole gradient."""
    x, argmax, (KH, KW), (sh, sw), (ph, pw) = cache
    H, W = x.shape[2:]
    Ho, Wo = dout.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    dxp = np.zeros(xp.shape)
    for i in range(Ho):
        for j in range(Wo):
            window = xp[:, :, i * sh:i * sh + KH, j * sw:j * sw + KW]
            mask = window == window.max(axis=(2, 3), keepdims=True)
            dxp[:, :, i * sh:i * sh + KH, j * sw:j * sw + KW] += mask * dout[:, :, i, j, None, None]
    return dxp[:, :, ph:ph + H, pw:pw + W]


def max_ties_swv_forward(x, size=2, stride=None):
    """The sliding-window forward keeping a mask of every cell equal to the max."""
    stride = size if stride is None else stride
    win = sliding_window_view(x, (size, size), axis=(2, 3))[:, :, ::stride, ::stride]
    out = win.max(axis=(4, 5))
    return out, (x.shape, win == out[..., None, None], size, stride)


def max_spread_backward(dout, cache):
    """The whole window gets dout, as if every cell had won."""
    x, argmax, (KH, KW), (sh, sw), (ph, pw) = cache
    H, W = x.shape[2:]
    dxp = np.zeros((x.shape[0], x.shape[1], H + 2 * ph, W + 2 * pw))
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            dxp[:, :, i * sh:i * sh + KH, j * sw:j * sw + KW] += dout[:, :, i, j, None, None]
    return dxp[:, :, ph:ph + H, pw:pw + W]


def max_spread_avg_backward(dout, cache):
    """Average-pool's backward used for max pooling: dout / (KH*KW) on every cell."""
    shape, mask, size, stride = cache
    Ho, Wo = dout.shape[2:]
    dx = np.zeros(shape)
    for p in range(size):
        for q in range(size):
            dx[:, :, p:p + stride * Ho:stride, q:q + stride * Wo:stride] += dout / size**2
    return dx


def max_assign_backward(dout, cache):
    """dx[winner] = dout: a cell that wins two overlapping windows keeps only the last."""
    N, C, H, W = cache["x_shape"]
    pad = cache["pad"]
    dxp = np.zeros((N, C, H + 2 * pad, W + 2 * pad))
    for n in range(N):
        for c in range(C):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    r, t = cache["where"][n, c, i, j]
                    dxp[n, c, r, t] = dout[n, c, i, j]
    return dxp[:, :, pad:pad + H, pad:pad + W]


def avg_no_scale_backward(dout, cache):
    """The forward divides by size*size, the backward forgets to."""
    shape, size, stride = cache
    dx = np.zeros(shape)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            dx[:, :, i * stride:i * stride + size, j * stride:j * stride + size] += dout[:, :, i, j, None, None]
    return dx


def avg_assign_backward(dout, cache):
    """= instead of += : overlapping windows overwrite each other's share."""
    k, s = cache["k"], cache["s"]
    dx = np.zeros(cache["shape"])
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            dx[:, :, i * s:i * s + k, j * s:j * s + k] = dout[:, :, i, j, None, None] / k**2
    return dx


TIES = (("tie", "tied", "first", "equal", "one cell", "single"),)
WINNER = (("max", "winner", "argmax", "largest", "only"),)

CASES = [
    Learner("maxpool2d", "pass", "ok-loops-pad", "loops, -inf padding, winners' coordinates cached",
            forward=max_loops_forward, backward=max_loops_backward),
    Learner("maxpool2d", "pass", "ok-swv-no-pad", "sliding_window_view, no pad parameter, one-hot first-max mask",
            forward=max_swv_forward, backward=max_swv_backward),
    Learner("maxpool2d", "pass", "ok-backward-alone", "np.add.at on cnnlib's argmax cache",
            backward=max_backward_alone),
    Learner("avgpool2d", "pass", "ok-loops", "four loops", forward=avg_loops_forward, backward=avg_loops_backward),
    Learner("avgpool2d", "pass", "ok-as-strided", "as_strided + einsum, signature (x, stride, size)",
            forward=avg_strided_forward, backward=avg_strided_backward),
    Learner("maxpool2d", "fail", "ties-all-get-gradient", "mask window == max on cnnlib's cache",
            backward=max_ties_backward, hint_words=TIES, keys=("every_tie",)),
    Learner("maxpool2d", "fail", "ties-all-get-gradient-own-cache", "the same mask kept by its own forward",
            forward=max_ties_swv_forward, backward=max_swv_backward, hint_words=TIES, keys=("every_tie",)),
    Learner("maxpool2d", "fail", "spread-over-window", "every cell of the window gets dout", backward=max_spread_backward,
            hint_words=WINNER, keys=("spread_window",)),
    Learner("maxpool2d", "fail", "spread-avg-style", "dout / (size*size) on every cell",
            forward=max_swv_forward, backward=max_spread_avg_backward, hint_words=WINNER, keys=("spread_window",)),
    Learner("maxpool2d", "fail", "assign-overlap", "dx[winner] = dout with overlapping windows",
            forward=max_loops_forward, backward=max_assign_backward, hint_words=(ADD,), keys=("overwrite_dx",)),
    Learner("avgpool2d", "fail", "no-1-over-k2", "backward without the 1/(KH*KW)", forward=avg_loops_forward,
            backward=avg_no_scale_backward,
            hint_words=(("kh*kw", "kh * kw", "size", "divid", "1/", "window", "average", "mean", "scale"),),
            keys=("avg_factor",)),
    Learner("avgpool2d", "fail", "assign-overlap", "= instead of += with overlapping windows",
            forward=avg_strided_forward, backward=avg_assign_backward, hint_words=(ADD,), keys=("overwrite_dx",)),
]
