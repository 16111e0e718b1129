"""Convolution (cross-correlation, NCHW) as learners write it, right and wrong.

Signatures follow cnnlib's: forward(x, w, b, stride=.., pad=..) -> (out, cache) and
backward(dout, cache) -> (dx, dw, db); stride and pad are plain ints here, as in the lessons.
A Learner without `forward` is checked with cnnlib's forward and its cache
(x, w, b, (sh, sw), (ph, pw), kept), as lesson 5's conv_backward_naive reads it.
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

from . import ADD, AVERAGE, Learner

# ----------------------------------------------------------------------------------------
# Correct
# ----------------------------------------------------------------------------------------


def loops_forward(x, w, b, stride=1, pad=0):
    """Six loops deep, a hand-made zero array for the padding, the cache a dict."""
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    xp = np.zeros((N, C, H + 2 * pad, W + 2 * pad))
    xp[:, :, pad:pad + H, pad:pad + W] = x
    Ho = (H + 2 * pad - KH) // stride + 1
    Wo = (W + 2 * pad - KW) // stride + 1
    out = np.zeros((N, F, Ho, Wo))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    total = b[f]
                    for p in range(KH):
                        for q in range(KW):
                            total += np.dot(xp[n, :, i * stride + p, j * stride + q], w[f, :, p, q])
                    out[n, f, i, j] = total
    return out, {"xp": xp, "w": w, "stride": stride, "pad": pad, "x_shape": x.shape}


def loops_backward(dout, cache):
    xp, w, s, pad = cache["xp"], cache["w"], cache["stride"], cache["pad"]
    N, C, H, W = cache["x_shape"]
    F, _, KH, KW = w.shape
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    db = np.zeros(F)
    for n in range(N):
        for f in range(F):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    db[f] += dout[n, f, i, j]
                    for p in range(KH):
                        for q in range(KW):
                            dw[f, :, p, q] += dout[n, f, i, j] * xp[n, :, i * s + p, j * s + q]
                            dxp[n, :, i * s + p, j * s + q] += dout[n, f, i, j] * w[f, :, p, q]
    return dxp[:, :, pad:pad + H, pad:pad + W], dw, db


def swv_forward(x, w, b, pad=0, stride=1):
    """sliding_window_view + einsum; note pad comes BEFORE stride in this signature."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = sliding_window_view(xp, w.shape[2:], axis=(2, 3))[:, :, ::stride, ::stride]
    out = np.einsum("ncijpq,fcpq->nfij", win, w) + b[:, None, None]
    return out, (x, w, b, pad, stride)


def swv_backward(dout, cache):
    x, w, b, pad, stride = cache
    H, W = x.shape[2:]
    KH, KW = w.shape[2:]
    Ho, Wo = dout.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = sliding_window_view(xp, (KH, KW), axis=(2, 3))[:, :, ::stride, ::stride]
    dw = np.einsum("nfij,ncijpq->fcpq", dout, win)
    db = dout.sum(axis=(0, 2, 3))
    dxp = np.zeros_like(xp)
    for p in range(KH):
        for q in range(KW):
            dxp[:, :, p:p + stride * Ho:stride, q:q + stride * Wo:stride] += np.einsum("nfij,fc->ncij", dout, w[:, :, p, q])
    return dxp[:, :, pad:pad + H, pad:pad + W], dw, db


class Im2colCache:
    def __init__(self, x_shape, cols, w, stride, pad, out_hw):
        self.x_shape, self.cols, self.w = x_shape, cols, w
        self.stride, self.pad, self.out_hw = stride, pad, out_hw


def im2col_forward(x, w, b, *, stride=1, pad=0):
    """as_strided im2col and one matrix product; the cache is a small class."""
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    Ho = (H + 2 * pad - KH) // stride + 1
    Wo = (W + 2 * pad - KW) // stride + 1
    sN, sC, sH, sW = xp.strides
    patches = as_strided(xp, shape=(N, Ho, Wo, C, KH, KW),
                         strides=(sN, sH * stride, sW * stride, sC, sH, sW))
    cols = patches.reshape(N * Ho * Wo, C * KH * KW)
    out = cols @ w.reshape(F, -1).T + b  # (N*Ho*Wo, F)
    out = out.reshape(N, Ho, Wo, F).transpose(0, 3, 1, 2)
    return out, Im2colCache(x.shape, cols, w, stride, pad, (Ho, Wo))


def im2col_backward(dout, cache):
    N, C, H, W = cache.x_shape
    w, s, pad = cache.w, cache.stride, cache.pad
    F, _, KH, KW = w.shape
    Ho, Wo = cache.out_hw
    dflat = dout.transpose(0, 2, 3, 1).reshape(-1, F)
    dw = (dflat.T @ cache.cols).reshape(w.shape)
    db = dflat.sum(axis=0)
    dcols = (dflat @ w.reshape(F, -1)).reshape(N, Ho, Wo, C, KH, KW)
    dxp = np.zeros((N, C, H + 2 * pad, W + 2 * pad))
    rows = (np.arange(Ho) * s)[:, None] + np.arange(KH)  # (Ho, KH)
    cols = (np.arange(Wo) * s)[:, None] + np.arange(KW)  # (Wo, KW)
    np.add.at(dxp, (slice(None), slice(None), rows[:, None, :, None], cols[None, :, None, :]),
              dcols.transpose(0, 3, 1, 2, 4, 5))
    return dxp[:, :, pad:pad + H, pad:pad + W], dw, db


def _fft_conv(a, k, shape):
    """Circular convolution of the last two axes by FFT, on a grid of `shape`."""
    return np.fft.irfft2(np.fft.rfft2(a, s=shape) * np.fft.rfft2(k, s=shape), s=shape)


def fft_forward(x, w, b, stride=1, pad=0):
    """Correlation by FFT: convolve with the flipped kernel, keep the 'valid' part."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    Hp, Wp = xp.shape[2:]
    KH, KW = w.shape[2:]
    full = _fft_conv(xp[:, None], w[None, :, :, ::-1, ::-1], (Hp, Wp)).sum(axis=2)  # (N, F, Hp, Wp)
    out = full[:, :, KH - 1:, KW - 1:][:, :, ::stride, ::stride] + b[:, None, None]
    return out, (xp, w, stride, pad)


def fft_backward(dout, cache):
    xp, w, stride, pad = cache
    N, C, Hp, Wp = xp.shape
    F, _, KH, KW = w.shape
    # Back to stride 1: the skipped positions had no gradient.
    d1 = np.zeros((N, F, Hp - KH + 1, Wp - KW + 1))
    d1[:, :, ::stride, ::stride] = dout
    Hd, Wd = d1.shape[2:]
    dw = _fft_conv(xp[:, None], d1[:, :, None, ::-1, ::-1], (Hp, Wp)).sum(axis=0)[:, :, Hd - 1:, Wd - 1:]
    dxp = _fft_conv(d1[:, :, None], w[None], (Hp, Wp)).sum(axis=1)  # full convolution, fits Hp x Wp
    db = d1.sum(axis=(0, 2, 3))
    H, W = Hp - 2 * pad, Wp - 2 * pad
    return dxp[:, :, pad:pad + H, pad:pad + W], dw, db


def nopad_forward(x, w, b):
    """Stride 1, no padding, and no parameters for them: checked on the cases it can express."""
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    out = np.empty((N, F, H - KH + 1, W - KW + 1))
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            out[:, :, i, j] = np.tensordot(x[:, :, i:i + KH, j:j + KW], w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out, [x, w]


def nopad_backward(dout, cache):
    x, w = cache
    KH, KW = w.shape[2:]
    dx, dw = np.zeros_like(x), np.zeros_like(w)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            g = dout[:, :, i, j]  # (N, F)
            dx[:, :, i:i + KH, j:j + KW] += np.tensordot(g, w, axes=(1, 0))
            dw += np.tensordot(g, x[:, :, i:i + KH, j:j + KW], axes=(0, 0))
    return dx, dw, dout.sum(axis=(0, 2, 3))


def lesson5_backward(dout, cache):
    """Backward alone, reading cnnlib's cache as lesson 5 does; list comprehensions for dw."""
    x, w, b, (sh, sw), (ph, pw) = cache[:5]
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    Ho, Wo = dout.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dw = np.array([[[[np.sum(dout[:, f] * xp[:, c, p:p + sh * Ho:sh, q:q + sw * Wo:sw])
                      for q in range(KW)] for p in range(KH)] for c in range(C)] for f in range(F)])
    dxp = np.zeros_like(xp)
    for i in range(Ho):
        for j in range(Wo):
            dxp[:, :, i * sh:i * sh + KH, j * sw:j * sw + KW] += np.einsum("nf,fcpq->ncpq", dout[:, :, i, j], w)
    return dxp[:, :, ph:ph + H, pw:pw + W], dw, dout.sum(axis=(0, 2, 3))


# ----------------------------------------------------------------------------------------
# Buggy: each keeps the correct code but for its one mistake
# ----------------------------------------------------------------------------------------


def crop_backward(dout, cache):
    """Lesson-5 loops, but cutting the padding off with [pad:-pad]: empty at pad 0."""
    x, w, b, (sh, sw), (ph, pw) = cache[:5]
    F, _, KH, KW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for n in range(x.shape[0]):
        for f in range(F):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    r, t = i * sh, j * sw
                    dw[f] += dout[n, f, i, j] * xp[n, :, r:r + KH, t:t + KW]
                    dxp[n, :, r:r + KH, t:t + KW] += dout[n, f, i, j] * w[f]
    dx = dxp[:, :, ph:-ph, pw:-pw]
    return dx, dw, dout.sum(axis=(0, 2, 3))


def crop_swv_backward(dout, cache):
    """The einsum version with its own cache and the same [pad:-pad] crop."""
    x, w, b, pad, stride = cache
    KH, KW = w.shape[2:]
    Ho, Wo = dout.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = sliding_window_view(xp, (KH, KW), axis=(2, 3))[:, :, ::stride, ::stride]
    dw = np.einsum("nfij,ncijpq->fcpq", dout, win)
    dxp = np.zeros_like(xp)
    for p in range(KH):
        for q in range(KW):
            dxp[:, :, p:p + stride * Ho:stride, q:q + stride * Wo:stride] += np.einsum("nfij,fc->ncij", dout, w[:, :, p, q])
    return dxp[:, :, pad:-pad, pad:-pad], dw, dout.sum(axis=(0, 2, 3))


def assign_dx_backward(dout, cache):
    """dx window written with = : where windows overlap (stride < kernel) earlier ones are lost."""
    x, w, b, (sh, sw), (ph, pw) = cache[:5]
    H, W = x.shape[2:]
    KH, KW = w.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            r, t = i * sh, j * sw
            dw += np.einsum("nf,ncpq->fcpq", dout[:, :, i, j], xp[:, :, r:r + KH, t:t + KW])
            dxp[:, :, r:r + KH, t:t + KW] = np.einsum("nf,fcpq->ncpq", dout[:, :, i, j], w)
    return dxp[:, :, ph:ph + H, pw:pw + W], dw, dout.sum(axis=(0, 2, 3))


def assign_dx_loops_backward(dout, cache):
    """Six loops with dxp[...] = instead of +=."""
    xp, w, s, pad = cache["xp"], cache["w"], cache["stride"], cache["pad"]
    N, C, H, W = cache["x_shape"]
    F, _, KH, KW = w.shape
    dxp, dw, db = np.zeros_like(xp), np.zeros_like(w), np.zeros(F)
    for n in range(N):
        for f in range(F):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    db[f] += dout[n, f, i, j]
                    for p in range(KH):
                        for q in range(KW):
                            dw[f, :, p, q] += dout[n, f, i, j] * xp[n, :, i * s + p, j * s + q]
                            dxp[n, :, i * s + p, j * s + q] = dout[n, f, i, j] * w[f, :, p, q]
    return dxp[:, :, pad:pad + H, pad:pad + W], dw, db


def assign_dw_backward(dout, cache):
    """dw[f] = ... in the loop over windows and samples: only the last window's term is kept."""
    x, w, b, (sh, sw), (ph, pw) = cache[:5]
    H, W = x.shape[2:]
    F, _, KH, KW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for n in range(x.shape[0]):
        for f in range(F):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    r, t = i * sh, j * sw
                    dw[f] = dout[n, f, i, j] * xp[n, :, r:r + KH, t:t + KW]
                    dxp[n, :, r:r + KH, t:t + KW] += dout[n, f, i, j] * w[f]
    return dxp[:, :, ph:ph + H, pw:pw + W], dw, dout.sum(axis=(0, 2, 3))


def flipped_forward(x, w, b, stride=1, pad=0):
    """True convolution (the kernel turned 180 degrees), not the cross-correlation CNNs use."""
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    Ho, Wo = (H + 2 * pad - KH) // stride + 1, (W + 2 * pad - KW) // stride + 1
    wf = w[:, :, ::-1, ::-1]
    out = np.zeros((N, F, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            out[:, :, i, j] = np.einsum("ncpq,fcpq->nf", xp[:, :, i * stride:i * stride + KH, j * stride:j * stride + KW], wf) + b
    return out, (x, w, stride, pad)


def flipped_backward(dout, cache):
    """The exact gradient of flipped_forward: consistent with it, so only the forward is wrong."""
    x, w, stride, pad = cache
    H, W = x.shape[2:]
    KH, KW = w.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    wf = w[:, :, ::-1, ::-1]
    dxp, dwf = np.zeros_like(xp), np.zeros_like(w)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            r, t = i * stride, j * stride
            dwf += np.einsum("nf,ncpq->fcpq", dout[:, :, i, j], xp[:, :, r:r + KH, t:t + KW])
            dxp[:, :, r:r + KH, t:t + KW] += np.einsum("nf,fcpq->ncpq", dout[:, :, i, j], wf)
    return dxp[:, :, pad:pad + H, pad:pad + W], dwf[:, :, ::-1, ::-1], dout.sum(axis=(0, 2, 3))


def no_stride_backward(dout, cache):
    """Windows placed at (i, j) instead of (i*stride, j*stride): fine at stride 1 only."""
    xp, w, s, pad = cache["xp"], cache["w"], cache["stride"], cache["pad"]
    N, C, H, W = cache["x_shape"]
    F, _, KH, KW = w.shape
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for n in range(N):
        for f in range(F):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    dw[f] += dout[n, f, i, j] * xp[n, :, i:i + KH, j:j + KW]
                    dxp[n, :, i:i + KH, j:j + KW] += dout[n, f, i, j] * w[f]
    return dxp[:, :, pad:pad + H, pad:pad + W], dw, dout.sum(axis=(0, 2, 3))


def size_without_pad_forward(x, w, b, stride=1, pad=0):
    """H' = (H - KH) // stride + 1, the padding forgotten in the formula (but x is padded)."""
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    Ho, Wo = (H - KH) // stride + 1, (W - KW) // stride + 1
    out = np.zeros((N, F, Ho, Wo))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    out[n, f, i, j] = np.sum(xp[n, :, i * stride:i * stride + KH, j * stride:j * stride + KW] * w[f]) + b[f]
    return out, {"xp": xp, "w": w, "stride": stride, "pad": pad, "x_shape": x.shape}


def _lesson5_dx_dw(dout, cache):
    dx, dw, _ = lesson5_backward(dout, cache)
    return dx, dw


def db_axes_backward(dout, cache):
    """db summed over filters and space instead of batch and space: shape (N,), not (F,)."""
    dx, dw = _lesson5_dx_dw(dout, cache)
    return dx, dw, dout.sum(axis=(1, 2, 3))


def db_axes_shape_ok_backward(dout, cache):
    """db summed over axes (0, 1, 3): shape (H',), which passes for (F,) when F == H'."""
    dx, dw = _lesson5_dx_dw(dout, cache)
    return dx, dw, dout.sum(axis=(0, 1, 3))


def dw_mean_backward(dout, cache):
    """dw divided by the batch size, as if the layer had to average."""
    dx, dw = _lesson5_dx_dw(dout, cache)
    return dx, dw / dout.shape[0], dout.sum(axis=(0, 2, 3))


def db_mean_backward(dout, cache):
    """db = dout.mean(...) where a sum is needed."""
    dx, dw = _lesson5_dx_dw(dout, cache)
    return dx, dw, dout.mean(axis=(0, 2, 3))


def flips_w_in_place_forward(x, w, b, stride=1, pad=0):
    """FFT convolution made a correlation by flipping w IN PLACE: the output is right, the
    caller's weights are left upside down (and flip back and forth at every call)."""
    w[...] = w[:, :, ::-1, ::-1].copy()
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    Hp, Wp = xp.shape[2:]
    KH, KW = w.shape[2:]
    full = _fft_conv(xp[:, None], w[None], (Hp, Wp)).sum(axis=2)
    out = full[:, :, KH - 1:, KW - 1:][:, :, ::stride, ::stride] + b[:, None, None]
    return out, (xp, w[:, :, ::-1, ::-1], stride, pad)  # the cache holds the right kernel


def float32_forward(x, w, b, stride=1, pad=0):
    """Output allocated as float32 "to save memory": the loops' sums are rounded to 7 digits."""
    out, cache = loops_forward(x, w, b, stride=stride, pad=pad)
    out32 = np.zeros(out.shape, dtype=np.float32)
    out32[...] = out
    return out32, cache


def float32_backward(dout, cache):
    """dx cast to float32 at the end."""
    dx, dw, db = loops_backward(dout, cache)
    return dx.astype(np.float32), dw, db


def no_cache_forward(x, w, b, stride=1, pad=0):
    """Returns out alone, not (out, cache)."""
    return swv_forward(x, w, b, pad=pad, stride=stride)[0]


def two_values_backward(dout, cache):
    """Returns (dx, dw): db forgotten."""
    dx, dw, db = lesson5_backward(dout, cache)
    return dx, dw


def axis_error_backward(dout, cache):
    """A typo on one line: axis 4 of a 4-d array (numpy raises AxisError)."""
    dx, dw = _lesson5_dx_dw(dout, cache)
    db = dout.sum(axis=(0, 2, 3, 4))
    return dx, dw, db


def stub_backward(dout, cache):
    # Your code here.
    raise NotImplementedError("conv2d_backward: not written yet")


CROP = (("pad",), ("0", "zero", "empty"))
STRIDE = (("stride",),)

CASES = [
    Learner("conv2d", "pass", "ok-loops6", "six nested loops, manual zero padding, dict cache",
            forward=loops_forward, backward=loops_backward),
    Learner("conv2d", "pass", "ok-swv-einsum", "sliding_window_view + einsum; signature (x, w, b, pad, stride)",
            forward=swv_forward, backward=swv_backward),
    Learner("conv2d", "pass", "ok-im2col-as-strided", "as_strided im2col, np.add.at col2im, class cache",
            forward=im2col_forward, backward=im2col_backward),
    Learner("conv2d", "pass", "ok-fft", "FFT correlation forward and FFT backward",
            forward=fft_forward, backward=fft_backward),
    Learner("conv2d", "pass", "ok-no-pad-no-stride", "forward(x, w, b) without pad and stride parameters",
            forward=nopad_forward, backward=nopad_backward),
    Learner("conv2d", "pass", "ok-backward-alone", "backward alone on cnnlib's cache, dw by list comprehension",
            backward=lesson5_backward),
    Learner("conv2d", "fail", "crop-pad-minus-pad", "dxp[:, :, ph:-ph, pw:-pw]: dx empty at pad 0",
            backward=crop_backward, hint_words=CROP, keys=("pad_crop",)),
    Learner("conv2d", "fail", "crop-pad-minus-pad-own-cache", "the same crop in an einsum backward with its own cache",
            forward=swv_forward, backward=crop_swv_backward, hint_words=CROP, keys=("pad_crop",)),
    Learner("conv2d", "fail", "assign-dx-overlap", "dx windows written with = (vectorised over N and F)",
            backward=assign_dx_backward, hint_words=(ADD,), keys=("overwrite_dx",)),
    Learner("conv2d", "fail", "assign-dx-loops", "dx written with = in six loops (also loses other filters' terms)",
            forward=loops_forward, backward=assign_dx_loops_backward, hint_words=(ADD,), keys=("overwrite_dx",)),
    Learner("conv2d", "fail", "assign-dw", "dw[f] = ... keeps only the last window's term",
            backward=assign_dw_backward, hint_words=(ADD + ("sum",),), keys=("overwrite_dw",)),
    Learner("conv2d", "fail", "flipped-kernel", "true convolution forward, backward consistent with it",
            forward=flipped_forward, backward=flipped_backward,
            hint_words=(("flip", "rotat", "180", "cross-correlation", "correlation", "reversed"),),
            keys=("flipped_kernel", "consistent_pair")),
    Learner("conv2d", "fail", "stride-ignored-in-backward", "backward places windows at (i, j), not (i*s, j*s)",
            forward=loops_forward, backward=no_stride_backward, hint_words=STRIDE, keys=("stride_ignored",)),
    Learner("conv2d", "fail", "out-size-without-pad", "H' = (H - KH)//stride + 1 though x is padded",
            forward=size_without_pad_forward, backward=loops_backward,
            hint_words=(("pad",), ("shape", "size", "formula", "h'", "output")), keys=("size_no_pad",)),
    Learner("conv2d", "fail", "db-wrong-axes", "db = dout.sum(axis=(1, 2, 3)), shape (N,)",
            backward=db_axes_backward, hint_words=(("db",), ("axis", "axes", "shape", "sum")), keys=("db_axes",)),
    Learner("conv2d", "fail", "db-wrong-axes-same-shape", "db = dout.sum(axis=(0, 1, 3)): (H',), equal to (F,) if F == H'",
            backward=db_axes_shape_ok_backward, hint_words=(("db",), ("axis", "axes", "shape", "sum")),
            keys=("db_axes",)),
    Learner("conv2d", "fail", "dw-averaged", "dw divided by N", backward=dw_mean_backward,
            hint_words=(("dw",), AVERAGE), keys=("averaged",)),
    Learner("conv2d", "fail", "db-averaged", "db = dout.mean(axis=(0, 2, 3))", backward=db_mean_backward,
            hint_words=(("db",), AVERAGE), keys=("averaged",)),
    Learner("conv2d", "fail", "forward-flips-w-in-place", "FFT forward flips the caller's w in place",
            forward=flips_w_in_place_forward, backward=fft_backward,
            hint_words=(("in place", "in-place", "modif", "changed", "changes", "overwr", "copy"),),
            keys=("in_place",)),
    Learner("conv2d", "fail", "forward-float32", "out allocated as float32", forward=float32_forward,
            backward=loops_backward, hint_words=(("float32", "dtype", "float64"),), keys=("float32",)),
    Learner("conv2d", "fail", "backward-float32", "dx returned as float32", forward=loops_forward,
            backward=float32_backward, hint_words=(("float32", "dtype", "float64"),), keys=("float32",)),
    Learner("conv2d", "fail", "forward-returns-out-only", "forward returns out, not (out, cache)",
            forward=no_cache_forward, backward=swv_backward,
            hint_words=(("return", "tuple", "cache", "pair", "two"),), keys=("return_form",)),
    Learner("conv2d", "fail", "backward-returns-two", "backward returns (dx, dw), no db",
            backward=two_values_backward, hint_words=(("return", "tuple", "three", "3", "db"),),
            keys=("return_form",)),
    Learner("conv2d", "fail", "axis-error", "db summed over axis 4 of a 4-d array: AxisError",
            backward=axis_error_backward, hint_words=(("axis", "error", "raise", "exception"),), keys=("raises",)),
    Learner("conv2d", "not written", "stub", "the generated stub", backward=stub_backward),
]


# ----------------------------------------------------------------------------------------
# Second set (issue 23), written from the lessons' stubs without reading cnnlib/check
# ----------------------------------------------------------------------------------------


def _while_windows(x, w, b, stride, pad, Ho, Wo, window, mode="constant"):
    """The loops of a while-loop learner: every window (i, j) taken by `window(i, j)`."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode=mode)
    out = np.zeros((x.shape[0], w.shape[0], Ho, Wo))
    i = 0
    while i < Ho:
        j = 0
        while j < Wo:
            patch = window(xp, i, j)  # (N, C, KH, KW)
            out[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3])) + b
            j += 1
        i += 1
    return out


def lesson4_forward(x, w, b, stride=1, pad=0):
    """Lesson 4's conv_naive with while loops, the cache in cnnlib's (and lesson 5's) layout."""
    KH, KW = w.shape[2:]
    Ho = (x.shape[2] + 2 * pad - KH) // stride + 1
    Wo = (x.shape[3] + 2 * pad - KW) // stride + 1
    out = _while_windows(x, w, b, stride, pad, Ho, Wo,
                         lambda xp, i, j: xp[:, :, i * stride:i * stride + KH, j * stride:j * stride + KW])
    return out, (x, w, b, (stride, stride), (pad, pad))


def int_cache_forward(x, w, b, stride=1, pad=0):
    """The same forward keeping stride and pad as plain ints, (x, w, b, stride, pad)."""
    out, _ = lesson4_forward(x, w, b, stride=stride, pad=pad)
    return out, (x, w, b, stride, pad)


def no_plus_one_forward(x, w, b, stride=1, pad=0):
    """H' = (H + 2*pad - KH) // stride: the + 1 forgotten, one window too few on each axis."""
    KH, KW = w.shape[2:]
    Ho = (x.shape[2] + 2 * pad - KH) // stride
    Wo = (x.shape[3] + 2 * pad - KW) // stride
    out = _while_windows(x, w, b, stride, pad, Ho, Wo,
                         lambda xp, i, j: xp[:, :, i * stride:i * stride + KH, j * stride:j * stride + KW])
    return out, (x, w, b, (stride, stride), (pad, pad))


def window_ignores_stride_forward(x, w, b, stride=1, pad=0):
    """The right H' and W', but window (i, j) cut at xp[i:i+KH, j:j+KW]: the stride forgotten."""
    KH, KW = w.shape[2:]
    Ho = (x.shape[2] + 2 * pad - KH) // stride + 1
    Wo = (x.shape[3] + 2 * pad - KW) // stride + 1
    out = _while_windows(x, w, b, stride, pad, Ho, Wo, lambda xp, i, j: xp[:, :, i:i + KH, j:j + KW])
    return out, (x, w, b, (stride, stride), (pad, pad))


def edge_pad_forward(x, w, b, stride=1, pad=0):
    """np.pad(..., mode="edge"): the border repeats the image's edge instead of zeros."""
    KH, KW = w.shape[2:]
    Ho = (x.shape[2] + 2 * pad - KH) // stride + 1
    Wo = (x.shape[3] + 2 * pad - KW) // stride + 1
    out = _while_windows(x, w, b, stride, pad, Ho, Wo,
                         lambda xp, i, j: xp[:, :, i * stride:i * stride + KH, j * stride:j * stride + KW],
                         mode="edge")
    return out, (x, w, b, (stride, stride), (pad, pad))


def filter0_dx_backward(dout, cache):
    """dx from filter 0 alone: dout[:, 0] * w[0], the sum over the F filters left out."""
    x, w, b, (sh, sw), (ph, pw) = cache[:5]
    H, W = x.shape[2:]
    KH, KW = w.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            r, t = i * sh, j * sw
            dw += np.einsum("nf,ncpq->fcpq", dout[:, :, i, j], xp[:, :, r:r + KH, t:t + KW])
            dxp[:, :, r:r + KH, t:t + KW] += dout[:, 0, i, j][:, None, None, None] * w[0]
    return dxp[:, :, ph:ph + H, pw:pw + W], dw, dout.sum(axis=(0, 2, 3))


def first_sample_dw_backward(dout, cache):
    """dw from sample 0 alone: the sum over the batch left out of dw (dx and db are right)."""
    x, w, b, (sh, sw), (ph, pw) = cache[:5]
    dx, _, db = lesson5_backward(dout, cache)
    KH, KW = w.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dw = np.zeros_like(w)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            dw += dout[0, :, i, j][:, None, None, None] * xp[0, :, i * sh:i * sh + KH, j * sw:j * sw + KW][None]
    return dx, dw, db


PLUS_ONE = (("+ 1", "+1", "one too", "one window", "one row", "one fewer", "one less"),)

CASES += [
    Learner("conv2d", "pass", "ok-while-loops-lesson4-cache", "while loops, cache (x, w, b, (s, s), (p, p))",
            forward=lesson4_forward, backward=lesson5_backward),
    Learner("conv2d", "fail", "int-cache-with-lesson5-backward",
            "a forward caching (x, w, b, stride, pad) with ints, and a backward unpacking (sh, sw), (ph, pw)",
            forward=int_cache_forward, backward=lesson5_backward, hint_words=(("cache",),), keys=("cache_mismatch",)),
    Learner("conv2d", "fail", "out-size-without-plus-one", "H' = (H + 2p - KH) // s, no + 1",
            forward=no_plus_one_forward, hint_words=PLUS_ONE, keys=("size_no_plus_one",)),
    Learner("conv2d", "fail", "window-ignores-stride", "right output size, windows at (i, j) not (i*s, j*s)",
            forward=window_ignores_stride_forward, hint_words=STRIDE, keys=("stride_ignored",)),
    Learner("conv2d", "fail", "pad-mode-edge", "np.pad(mode='edge') instead of zeros",
            forward=edge_pad_forward, hint_words=(("edge", "zero", "constant"),), keys=("edge_padding",)),
    Learner("conv2d", "fail", "dx-from-filter-0", "dx = dout[:, 0] * w[0]: the sum over filters left out",
            backward=filter0_dx_backward, hint_words=(("filter",), ("sum", "every", "all", "each")),
            keys=("dx_one_filter",)),
    Learner("conv2d", "fail", "dw-from-sample-0", "dw from sample 0 only: the sum over the batch left out",
            backward=first_sample_dw_backward, hint_words=(("dw",), ("sample", "batch", "image")),
            keys=("dw_one_sample",)),
]
