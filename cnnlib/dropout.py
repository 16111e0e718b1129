"""Dropout, forward and backward: inverted dropout, as torch.nn.functional.dropout.

In training, each value is kept with probability 1 - p and zeroed otherwise, and the kept
values are scaled by 1 / (1 - p), so that every value's expected output is its input: the
next layer sees activations of the same size in training and in evaluation, where dropout
does nothing. The backward sends the gradient through the same mask, with the same scale:
a mask drawn again in the backward would send gradients to values the forward dropped.

Shapes: any, e.g. (N, D) features or (N, C, H, W) images; the mask has x's shape.

The mask comes from `rng`, a np.random.Generator, so a run is reproducible from its seed.
The cache is (keep, scale, shape): keep is the boolean mask ((x's shape), True where a value
is kept) and scale is 1 / (1 - p), or keep is None and scale 1.0 when dropout did nothing
(eval mode, or p = 0); shape is x's.
"""

import numbers

import numpy as np

from ._validate import as_flag, as_float_array, check_dout


def check_p(p):
    """`p` as a float after checking it is a probability in [0, 1)."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"p must be a number, the probability of dropping a value, got {p!r}")
    p = float(p)
    if not 0 <= p < 1:  # also refuses NaN
        raise ValueError(f"p must be in [0, 1), the probability of dropping a value, got {p!r}"
                         + (" (p = 1 would drop everything and scale by 1/0)" if p == 1 else ""))
    return p


def check_rng(rng):
    """`rng` if it is a Generator, a fresh one if None; else a TypeError saying why."""
    if rng is None:
        return np.random.default_rng()
    if not isinstance(rng, np.random.Generator):
        hint = ""
        if isinstance(rng, numbers.Integral):
            hint = (": an int seed would draw the same mask at every call; make one generator, "
                    "rng = np.random.default_rng(seed), and pass it every time")
        raise TypeError(f"rng must be a np.random.Generator or None, got {rng!r}{hint}")
    return rng


def dropout_forward(x, *, p, training=True, rng=None):
    """Zero each value with probability p and scale the rest by 1 / (1 - p) (training only).

    Parameters
    ----------
    x : (N, ...) ndarray
    p : float in [0, 1), the probability of dropping a value (PyTorch's p; Keras' rate).
    training : bool, default True. False (eval mode) returns x unchanged.
    rng : np.random.Generator or None. The mask is drawn from it, so one generator passed
        at every call gives a new mask each time and the same sequence of masks on every
        run. None draws from a fresh np.random.default_rng(), unseeded: a different mask
        each call, not reproducible.

    Returns
    -------
    out : ndarray shaped like x, same dtype. In eval mode or with p = 0 it is x itself
        (no copy, as PyTorch does; nothing draws from rng then).
    cache : tuple (keep, scale, shape), see the module's docstring.
    """
    x = as_float_array(x, "x")
    p = check_p(p)
    training = as_flag(training, "training")
    rng = check_rng(rng)
    if not training or p == 0:
        return x, (None, 1.0, x.shape)
    keep = rng.random(x.shape) >= p  # True with probability 1 - p
    scale = 1 / (1 - p)
    out = x * keep
    out *= x.dtype.type(scale)  # in x's dtype: float32 stays float32
    return out, (keep, scale, x.shape)


def dropout_backward(dout, cache):
    """Gradient of the loss with respect to x: dout through the forward's own mask.

    Parameters
    ----------
    dout : ndarray shaped like x, dL/dout.
    cache : the tuple dropout_forward returned.

    Returns
    -------
    dx : ndarray shaped like x: dout * keep / (1 - p), or dout itself when the forward did
        nothing (eval mode, or p = 0).
    """
    if (not isinstance(cache, tuple) or len(cache) != 3 or not isinstance(cache[2], tuple)
            or not (cache[0] is None or isinstance(cache[0], np.ndarray) and cache[0].dtype == bool)):
        raise TypeError("dropout_backward needs the cache dropout_forward returned, the tuple (keep, scale, shape) "
                        f"with keep a boolean mask or None; got {cache!r:.80}")
    keep, scale, shape = cache
    dout = check_dout(dout, shape)
    if keep is None:
        return dout
    if keep.shape != shape:
        raise ValueError(f"dropout_backward: the cache's mask has shape {keep.shape}, not its x's {shape}")
    dx = dout * keep
    dx *= dout.dtype.type(scale)
    return dx
