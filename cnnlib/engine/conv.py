"""The fast convolution: what cnnlib.conv2d_forward and conv2d_backward run once their inputs
are checked. It computes exactly what cnnlib/conv.py's loops compute (up to rounding); lesson
11 builds it rung by rung, and this package's docstring says why it is shaped this way.

Shapes: N batch, C input channels, H x W input, F filters, KH x KW kernel, H' x W' output,
Hp x Wp the padded input; stride and pad are (vertical, horizontal) pairs, already checked.

The batch goes through the layer a chunk of images at a time (CHUNK_BYTES), the chunks shared
out among the threads (see parallel.py). For each chunk:
- forward: copy its windows into an im2col matrix (windows.im2col), then one matrix product
  per image for maps of PER_IMAGE_MIN_PIXELS or more (written straight into the output), or
  one for the whole chunk for smaller maps;
- backward, dw: the transposed product of that matrix with dout; with stride 1, the product of
  dout with each tap's "run" of the padded input instead (dw_by_runs), no matrix needed;
- backward, dx: each tap's weights times dout, added back onto that tap's pixels (dx_by_taps);
  with stride 1 each tap's pixels are one contiguous run, added in one go (dx_by_runs), and
  for maps under PER_IMAGE_MIN_PIXELS, stride 1 and finite w, one run spans every channel
  and image of a block (dx_by_channel_runs).

The cache's last item, kept, is a list of (chunk, im2col matrix of its images or None), one per
chunk; the backward goes by the same chunks (or, given the loop forward's None, cuts its own).
"""

import numpy as np

from .arrays import empty, zeros
from .parallel import batch_slices, map_slices
from .windows import fill_padded, im2col, taps, unpad_hw

# The matrix products run image by image (a stack of products, one per image) when each
# image has at least this many output pixels: each image's maps are then already in place
# and nothing needs transposing. Smaller maps give BLAS too little work per call, and one
# product over the whole chunk, with dout and out transposed, is faster. Measured on one
# core (benchmarks/README.md): per image is 0-15% faster at 14x14, about even from 8x8 to
# 12x12 (0.87-1.27x the time), 1.05-1.8x slower at 7x7 and 4x4, and 12-19x at 1x1.
PER_IMAGE_MIN_PIXELS = 100

# The batch goes through the layer a chunk of images at a time, each chunk's im2col matrix at
# most this big (at least one image), so that the matrix is still in the core's cache when the
# product reads it; the threads share out the chunks as they go (see parallel.py). Chunks are
# cut from the batch's slices (one per thread, see batch_slices), so a batch too small to cut
# into chunks is still split between the threads. When the slices are cut into several
# chunks the backward copies the windows again rather than keeping the forward's matrices:
# writing them all out to memory and reading them back cost more than copying from the
# images twice. When every slice is one chunk, the chunks keep their matrices. Maps under
# PER_IMAGE_MIN_PIXELS are not cut: their products take a whole slice at once, and copying
# their short rows again cost more than keeping them (measured: benchmarks/README.md).
CHUNK_BYTES = 3 << 20


def images_per_chunk(n, image_bytes, out_hw):
    """How many of n images go through the layer at once, their im2col matrices image_bytes each."""
    if out_hw[0] * out_hw[1] < PER_IMAGE_MIN_PIXELS:
        return max(1, n)
    return max(1, CHUNK_BYTES // image_bytes)


def chunks(parts, m):
    """The slices `parts` of the batch cut into consecutive chunks of m images, the last chunk of
    each slice shorter. An empty batch is one empty chunk: its dw and db are zeros all the same."""
    cut = [slice(i, min(i + m, part.stop)) for part in parts for i in range(part.start, part.stop, m)]
    return cut or [slice(0, 0)]


def batch_chunks(n, tap_channels, out_hw, itemsize):
    """The slices of a batch of n images (see parallel.py) and the chunks they are cut into."""
    pixels = out_hw[0] * out_hw[1]
    parts = batch_slices(n, work=tap_channels * n * pixels)  # work: the im2col matrix's size
    return parts, chunks(parts, images_per_chunk(n, tap_channels * pixels * itemsize, out_hw))


def images_per_product(n, out_hw):
    """1 for a stack of n per-image products, or n for one product over the whole chunk."""
    return 1 if out_hw[0] * out_hw[1] >= PER_IMAGE_MIN_PIXELS or n == 0 else n


def stack_columns(cols, m):
    """cols (C*KH*KW, n*H'*W') as a stack of n/g matrices of m = g*H'*W' columns, a view."""
    return cols.reshape(len(cols), -1, m).transpose(1, 0, 2)  # (n/g, C*KH*KW, m)


def stack_maps(a, g):
    """a (n, F, H', W') as a stack of n/g matrices (F, g*H'*W'); a view when g is 1."""
    n, F, Ho, Wo = a.shape
    return a.reshape(n // g, g, F, Ho * Wo).transpose(0, 2, 1, 3).reshape(n // g, F, g * Ho * Wo)


def unstack_maps(a, g, out_hw):
    """The inverse of stack_maps as a view: (n/g, F, g*H'*W') -> (n/g, g, F, H', W')."""
    return a.reshape(*a.shape[:2], g, *out_hw).transpose(0, 2, 1, 3, 4)


def by_runs(stride, g, F, tap_channels):
    """Whether a chunk's backward goes by runs image by image (dw_by_runs, dx_by_runs).

    Runs need stride 1. They are used only for maps of PER_IMAGE_MIN_PIXELS or more (g == 1),
    which are the ones they were measured faster on, and when 2F <= C*KH*KW: they copy dout
    widened, F maps per image, to save work on the C*KH*KW tap-channels, and for 1 -> 16
    channels at 28x28, and for dw with 1 -> 8, they were slower (benchmarks/README.md).
    """
    return stride == (1, 1) and g == 1 and 2 * F <= tap_channels


def widen(dout, Wp, dtype):
    """dout (n, F, H', W') as dtype, zeros in columns W'..Wp-1, each map flat: (n, F, H'*Wp)."""
    n, F, Ho, Wo = dout.shape
    wide = empty((n, F, Ho, Wp), dtype)  # (n, F, H', Wp)
    wide[..., :Wo] = dout
    wide[..., Wo:] = 0
    return wide.reshape(n, F, Ho * Wp)  # (n, F, H'*Wp), a view


def flat_images(n, padded, kernel, dtype):
    """Room for n padded images, padded = (C, Hp, Wp), laid out flat one after another, then
    (KH-1)*Wp + KW-1 more, zeros: room for the last of runs' runs, which starts that far in.
    The images' part is left uninitialised, for the caller to fill."""
    C, Hp, Wp = padded
    flat = empty((n * C * Hp * Wp + (kernel[0] - 1) * Wp + kernel[1] - 1,), dtype)
    flat[n * C * Hp * Wp:] = 0
    return flat


def runs(flat, n, plane, kernel, Wp):
    """Yield, for each tap (p, q), the run of the flat images `flat` starting at p*Wp + q.

    flat : 1-D ndarray from flat_images, n padded images of plane = C*Hp*Wp pixels each.
    Each run is n*plane long, a view.

    With stride 1, tap (p, q) of window (i, j) is pixel (i + p, j + q). In the padded image
    laid out flat, row after row, that is index (i*Wp + j) + (p*Wp + q). Give dout the same row
    width Wp (widen), zeros in its last Wp - W' columns, and dout[..., i*Wp + j] goes with
    pixel i*Wp + j of tap (p, q)'s run: the run is one contiguous stretch, where the tap's
    strided view (see windows.taps) has rows only W' long. The zero columns pair dout with
    pixels where a run wraps onto the next row or image, adding exact zeros, as long as x (for
    dw) and w (for dx) are finite: 0 * inf is NaN, so an inf there would spread NaN to taps or
    pixels it never meets. backward therefore goes by runs only for finite x and w.
    """
    KH, KW = kernel
    for k in range(KH * KW):
        p, q = divmod(k, KW)
        yield flat[p * Wp + q:p * Wp + q + n * plane]


def dw_by_runs(x, dout_wide, kernel, pad, padded):
    """dw of n images, transposed, (C*KH*KW, F), for stride 1 from the runs of padded x.

    x : (n, C, H, W) ndarray; dout_wide : (n, F, H'*Wp) ndarray, from widen.
    Tap (p, q)'s weights met x's run at p*Wp + q: dw[:, :, p, q] = dout_wide @ run.T,
    summed over the images. No im2col matrix is needed.
    """
    n, C, H, W = x.shape
    (KH, KW), (ph, pw), (_, Hp, Wp) = kernel, pad, padded
    run = dout_wide.shape[2]  # H'*Wp
    flat = flat_images(n, padded, kernel, x.dtype)
    fill_padded(flat[:n * C * Hp * Wp].reshape(n, C, Hp, Wp), x, pad, 0)
    dw_taps = empty((KH * KW, n, dout_wide.shape[1], C), np.result_type(x, dout_wide))
    for k, x_run in enumerate(runs(flat, n, C * Hp * Wp, kernel, Wp)):
        x_run = x_run.reshape(n, C, Hp * Wp)[:, :, :run]  # (n, C, H'*Wp), a view
        np.matmul(dout_wide, x_run.transpose(0, 2, 1), out=dw_taps[k])  # (n, F, C)
    return dw_taps.sum(axis=1).transpose(2, 0, 1).reshape(C * KH * KW, -1)  # (C*KH*KW, F), rows (c, p, q)


def dx_by_runs(dout_wide, w_tap, kernel, padded):
    """dx of n images, padded, (n, C, Hp, Wp), for stride 1: each tap's += is one run.

    dout_wide : (n, F, H'*Wp) ndarray, from widen; w_tap : (KH*KW, C, F) ndarray.
    As in dx_by_taps, but each tap's += is one long 1-D add of its run (see runs). A
    strided += into rows only W' long costs NumPy about 4x as much per element (it loops row by
    row, or copies into a buffer).
    """
    n, F, run = dout_wide.shape
    C, Hp, Wp = padded
    dtype = np.result_type(w_tap, dout_wide)
    flat = flat_images(n, padded, kernel, dtype)
    prod = empty((n, C, Hp * Wp), dtype)
    prod[:, :, run:] = 0  # no product writes there: the rows below the last run
    for k, dx_run in enumerate(runs(flat, n, C * Hp * Wp, kernel, Wp)):
        np.matmul(w_tap[k], dout_wide, out=prod[:, :, :run])  # (n, C, H'*Wp)
        if k == 0:  # tap (0, 0)'s run is all the images: it sets them, no zeroing first
            dx_run[...] = prod.reshape(-1)
        else:
            dx_run += prod.reshape(-1)
    return flat[:prod.size].reshape(n, C, Hp, Wp)  # (n, C, Hp, Wp), a view


def dx_by_channel_runs(dout, w_tap, kernel, pad, dx):
    """Write dx (n, C, H, W) for stride 1 and maps under PER_IMAGE_MIN_PIXELS: the runs of
    dx_by_runs, each taken over every channel and image of a block at once.

    dout : (n, F, H', W') ndarray; w_tap : (KH*KW, C, F) ndarray, as in dx_by_taps.
    dout is widened to the padded size, (F, n, Hp, Wp), zeros right of and below its H' x W'
    maps, and dx is laid out channel-first, (C, n, Hp, Wp), flat: then tap (p, q)'s pixels of
    every channel and image are one run starting at p*Wp + q, and one product gives every
    tap's share, C rows a tap. Tap by tap instead, each += walks rows only W' long: 2-3x as
    slow (benchmarks/README.md). A run also spans the zero columns and rows, onto the next
    row, image or channel, which adds exact zeros for finite w, as in runs.
    The product holds KH*KW copies of the widened images: blocks of images keep it within
    CHUNK_BYTES. It is computed in result_type(w_tap, dout), as the loops compute it.
    """
    n, F, Ho, Wo = dout.shape
    C, H, W = dx.shape[1:]
    (KH, KW), (ph, pw) = kernel, pad
    padded = (C, H + 2 * ph, W + 2 * pw)  # (C, Hp, Wp)
    dtype = np.result_type(w_tap, dout)
    image_bytes = KH * KW * C * padded[1] * padded[2] * dtype.itemsize
    step = max(1, CHUNK_BYTES // image_bytes)
    for start in range(0, n, step):
        m = min(step, n - start)  # images in this block
        size = m * padded[1] * padded[2]
        wide = empty((F, m, *padded[1:]), dtype)  # (F, m, Hp, Wp)
        wide[:, :, :Ho, :Wo] = dout[start:start + m].transpose(1, 0, 2, 3)
        wide[:, :, :Ho, Wo:] = 0
        wide[:, :, Ho:] = 0
        dcols = np.matmul(w_tap.reshape(-1, F), wide.reshape(F, size),
                          out=empty((KH * KW * C, size), dtype))  # (KH*KW*C, m*Hp*Wp), rows (p, q, c)
        flat = flat_images(m, padded, kernel, dtype)  # channel-first here: (C, m, Hp, Wp), flat
        for k in range(KH * KW):
            p, q = divmod(k, KW)
            run = dcols[k * C:(k + 1) * C].reshape(-1)  # tap (p, q) of every channel and image
            if k == 0:  # tap (0, 0)'s run is all of dx: it sets it, no zeroing first
                flat[:C * size] = run
            else:
                flat[p * padded[2] + q:p * padded[2] + q + C * size] += run
        dxp = flat[:C * size].reshape(C, m, *padded[1:])  # (C, m, Hp, Wp)
        dx[start:start + m] = unpad_hw(dxp, pad, (H, W)).transpose(1, 0, 2, 3)  # (m, C, H, W)


def dx_by_taps(dout, w_tap, kernel, stride, padded, g, dtype):
    """dx of n images, padded: (n, C, Hp, Wp). dout : (n, F, H', W') ndarray.

    w_tap : (KH*KW, C, F) ndarray, w_tap[k] = w[:, :, p, q].T for tap k = (p, q).
    Tap (p, q) of window (i, j) fed out[:, :, i, j] through w[:, :, p, q], so that pixel gets
    w[:, :, p, q].T @ dout[:, :, i, j] back. One product and one strided += per tap sends it
    to every window at once; overlapping windows add up.
    """
    n, _, Ho, Wo = dout.shape
    dprod = stack_maps(dout, g)  # (n/g, F, g*H'*W')
    dxp = zeros((n, *padded), dtype)  # (n, C, Hp, Wp)
    prod = empty((n // g, w_tap.shape[1], g * Ho * Wo), np.result_type(w_tap, dprod))
    for k, tap in enumerate(taps(dxp, kernel, stride, (Ho, Wo))):
        # NumPy 2.0 has no reshape(copy=False); splitting the leading axis always gives a view,
        # and the += below must land in dxp, so that is checked rather than assumed (an empty
        # batch's tap shares no memory with anything, and has nothing to land).
        tap = tap.reshape(n // g, g, *tap.shape[1:])  # (n/g, g, C, H', W')
        assert tap.size == 0 or np.may_share_memory(tap, dxp)
        tap += unstack_maps(np.matmul(w_tap[k], dprod, out=prod), g, (Ho, Wo))
    return dxp


def forward(x, w, b, stride, pad, out_hw):
    """out (N, F, H', W') and kept (see the module docstring), for checked x, w, b, stride, pad."""
    Ho, Wo = out_hw
    N, F = x.shape[0], w.shape[0]
    w2 = w.reshape(F, -1)  # (F, C*KH*KW)
    out = empty((N, F, Ho, Wo), np.result_type(x, w))
    # Each filter's bias spread over a whole map: NumPy adds a contiguous operand about twice
    # as fast as a (F, 1, 1) column broadcast along H' and W' (measured, benchmarks/README.md).
    bias = empty((F, Ho, Wo), out.dtype)  # (F, H', W')
    bias[...] = b[:, None, None]
    parts, cut = batch_chunks(N, w2.shape[1], (Ho, Wo), x.itemsize)
    keep = len(cut) == len(parts)  # see CHUNK_BYTES

    def one_chunk(chunk):  # images x[chunk]
        n = chunk.stop - chunk.start
        g = images_per_product(n, (Ho, Wo))  # images per product, see PER_IMAGE_MIN_PIXELS
        cols = im2col(x[chunk], w.shape[2:], stride, pad, (Ho, Wo))  # (C*KH*KW, n*H'*W')
        # Row f of w2 times column (n, i, j) of cols is out[n, f, i, j] before the bias.
        stacked = stack_columns(cols, g * Ho * Wo)  # (n/g, C*KH*KW, g*H'*W'), a view
        if g == 1:  # image n's product w2 @ stacked[n] lands straight in its maps out[n]
            np.matmul(w2, stacked, out=out[chunk].reshape(n, F, Ho * Wo))  # (n, F, H'*W')
            out[chunk] += bias
        else:  # one product; one pass adds the bias and lays the maps out as (n, F, H', W')
            prod = np.matmul(w2, stacked, out=empty((n // g, F, g * Ho * Wo), out.dtype))
            np.add(unstack_maps(prod, g, (Ho, Wo)), bias, out=out[chunk].reshape(1, n, F, Ho, Wo))
        # See CHUNK_BYTES; a backward by runs needs no im2col matrix.
        return cols if keep and not by_runs(stride, g, F, w2.shape[1]) else None

    kept = list(zip(cut, map_slices(one_chunk, cut)))  # [(chunk, its matrix or None)]
    return out, kept


def backward(dout, x, w, stride, pad, kept, input_grad):
    """(dx or None, dw, db) for a checked dout (N, F, H', W') and the cache's x, w, stride, pad,
    kept; dx is None when input_grad is False. dx has dtype result_type(x, w), dw and db too."""
    N, F, Ho, Wo = dout.shape
    w2 = w.reshape(F, -1)  # (F, C*KH*KW)
    out_dtype = np.result_type(x, w)  # the forward's output's, and dx's
    dx = empty(x.shape, out_dtype) if input_grad else None
    KH, KW = w.shape[2:]
    # w_tap[k] = w[:, :, p, q].T, the (C, F) weights of tap k = (p, q) (see windows.taps).
    w_tap = w.transpose(2, 3, 1, 0).reshape(KH * KW, -1, F)  # (KH*KW, C, F)
    padded = (x.shape[1], x.shape[2] + 2 * pad[0], x.shape[3] + 2 * pad[1])  # (C, Hp, Wp)
    # Runs pair the zero columns of dout with real weights (dx) and pixels (dw), see runs: for
    # an inf or NaN there that is NaN where the true gradient is finite. So runs are taken only
    # for finite w (checked once here, a few microseconds) and finite x (checked chunk by chunk
    # below where runs would be used, a pass over x, well under 1% of this backward); the taps
    # give the exact result otherwise.
    w_finite = bool(np.isfinite(w).all())
    if kept is None:  # the loop forward's cache: copy every chunk's windows below
        kept = [(chunk, None) for chunk in batch_chunks(N, w2.shape[1], (Ho, Wo), x.itemsize)[1]]

    def one_chunk(chunk, matrix):  # images x[chunk], and the forward's im2col matrix for them
        # b[f] was added to every pixel of every map f, so all their gradients flow into it.
        # einsum's sum is 1.4-3x faster here than dout.sum(axis=(0, 2, 3)) (measured).
        db = np.einsum("nfhw->f", dout[chunk])  # (F,)
        n = chunk.stop - chunk.start
        g = images_per_product(n, (Ho, Wo))  # as in the forward
        chunk_by_runs = by_runs(stride, g, F, w2.shape[1])
        dw_runs = chunk_by_runs and bool(np.isfinite(x[chunk], out=empty(x[chunk].shape, bool)).all())
        dx_runs = chunk_by_runs and w_finite
        if dw_runs or dx_runs:
            # As wide as dout too: a float64 dout beyond float32's range stays finite, as in the loops.
            dout_wide = widen(dout[chunk], padded[2], np.result_type(out_dtype, dout))  # (n, F, H'*Wp)
        if dw_runs:
            dw_t = dw_by_runs(x[chunk], dout_wide, (KH, KW), pad, padded)  # (C*KH*KW, F)
        else:
            cols = matrix if matrix is not None else (
                im2col(x[chunk], w.shape[2:], stride, pad, (Ho, Wo)))  # (C*KH*KW, n*H'*W')
            stacked_cols = stack_columns(cols, g * Ho * Wo)  # (n/g, C*KH*KW, g*H'*W'), a view
            dprod = stack_maps(dout[chunk], g)  # (n/g, F, g*H'*W'), the forward's product
            # The forward was prod = w2 @ stacked_cols, so dw = dprod @ stacked_cols.T summed
            # over the stack. Written transposed, as OpenBLAS ran it about 1.2x faster that way.
            dw_stack = empty((len(dprod), len(cols), F), np.result_type(cols, dprod))
            dw_t = np.matmul(stacked_cols, dprod.transpose(0, 2, 1), out=dw_stack).sum(axis=0)  # (C*KH*KW, F)
        if not input_grad:
            pass
        elif dx_runs:
            dx[chunk] = unpad_hw(dx_by_runs(dout_wide, w_tap, (KH, KW), padded), pad, x.shape[2:])  # (n, C, H, W)
        elif g > 1 and stride == (1, 1) and w_finite:
            dx_by_channel_runs(dout[chunk], w_tap, (KH, KW), pad, dx[chunk])
        else:
            dxp = dx_by_taps(dout[chunk], w_tap, (KH, KW), stride, padded, g, out_dtype)  # (n, C, Hp, Wp)
            dx[chunk] = unpad_hw(dxp, pad, x.shape[2:])  # (n, C, H, W)
        return dw_t, db

    # Each chunk's dw and db cover its own images; the batch's are their sums, in chunk order.
    dw_t, db = (np.sum(parts, axis=0) for parts in zip(*map_slices(one_chunk, *zip(*kept))))
    return dx, dw_t.T.reshape(w.shape), db  # dw: (F, C, KH, KW)
