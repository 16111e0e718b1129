"""Data augmentation: random shifts, crops and flips of a batch of images.

A network that has seen each training image only where it was drawn learns that position
too; shown the same image moved by a pixel or two (or mirrored, for photographs, though not
for digits, where a mirrored 2 is no 2), it must learn what stays the same. Each function
draws a new transformation per image from `rng` and returns a new array, leaving x as it
was; the same generator state gives the same batch, so a run is reproducible from its seed.

Shapes: N batch, C channels, H x W pixels; every function takes and returns (N, C, H, W)
(random_crop returns (N, C, size, size)). Pixels that come from outside the image are 0.

With fit, pass one as its `augment`, which hands it each training batch and fit's own
generator, e.g. ``fit(..., augment=lambda xb, rng: random_shift(xb, 2, rng=rng))``.
"""

import numbers

import numpy as np

from ._validate import as_float_array, as_pair, check_ndim


def _check_rng(rng):
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a np.random.Generator, e.g. np.random.default_rng(0), made once and passed "
                        f"at every call (an int seed would give every batch the same transformations); got {rng!r}")
    return rng


def _images(x):
    x = as_float_array(x, "x")
    check_ndim(x, 4, "x", "(N, C, H, W)")
    return x


def _crop(x, top, left, size):
    """out[n] = x[n, :, top[n]:top[n]+KH, left[n]:left[n]+KW], with size = (KH, KW), gathered at once."""
    N, C = x.shape[:2]
    rows = top[:, None] + np.arange(size[0])  # (N, KH)
    cols = left[:, None] + np.arange(size[1])  # (N, KW)
    return x[np.arange(N)[:, None, None, None], np.arange(C)[None, :, None, None],
             rows[:, None, :, None], cols[:, None, None, :]]  # (N, C, KH, KW)


def random_crop(x, size, *, pad=0, rng):
    """Pad every image with `pad` zeros on each side, then cut a size x size window from it at
    a random position, a new one per image (torchvision's RandomCrop(size, padding=pad)).

    Parameters
    ----------
    x : (N, C, H, W) ndarray
    size : int or (int, int), the window (KH, KW), at most the padded image.
    pad : int or (int, int) >= 0, default 0.
    rng : np.random.Generator, where the positions come from.

    Returns
    -------
    (N, C, KH, KW) ndarray of x's dtype, a new array.
    """
    x = _images(x)
    size = as_pair(size, "size", minimum=1)
    ph, pw = as_pair(pad, "pad", minimum=0)
    rng = _check_rng(rng)
    N, C, H, W = x.shape
    if size[0] > H + 2 * ph or size[1] > W + 2 * pw:
        raise ValueError(f"size {size} is larger than the padded images ({H + 2 * ph}, {W + 2 * pw}) "
                         f"(H, W = {(H, W)}, pad = {(ph, pw)})")
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # (N, C, H+2ph, W+2pw)
    top = rng.integers(0, H + 2 * ph - size[0], size=N, endpoint=True)  # (N,)
    left = rng.integers(0, W + 2 * pw - size[1], size=N, endpoint=True)  # (N,)
    return _crop(xp, top, left, size)


def random_shift(x, max_shift, *, rng):
    """Move every image by a random whole number of pixels, up to `max_shift` in each
    direction, filling the uncovered border with 0; a new shift per image, the same for all
    of its channels.

    Parameters
    ----------
    x : (N, C, H, W) ndarray
    max_shift : int or (int, int) >= 0, the largest vertical and horizontal shift; each
        image moves by (dy, dx) drawn uniformly from -max_shift..max_shift.
    rng : np.random.Generator

    Returns
    -------
    (N, C, H, W) ndarray of x's dtype, a new array.
    """
    x = _images(x)
    shift = as_pair(max_shift, "max_shift", minimum=0)
    return random_crop(x, x.shape[2:], pad=shift, rng=rng)  # a window of the image's size: a shift


def random_flip(x, *, p=0.5, rng):
    """Mirror each image left to right with probability p (a horizontal flip).

    Parameters
    ----------
    x : (N, C, H, W) ndarray
    p : float in [0, 1], default 0.5.
    rng : np.random.Generator

    Returns
    -------
    (N, C, H, W) ndarray of x's dtype, a new array.
    """
    x = _images(x)
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"p must be a number, the probability of a flip, got {p!r}")
    if not 0 <= p <= 1:  # also refuses NaN
        raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
    rng = _check_rng(rng)
    flip = rng.random(len(x)) < p  # (N,)
    out = x.copy()
    out[flip] = x[flip, :, :, ::-1]
    return out
