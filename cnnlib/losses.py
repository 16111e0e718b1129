"""Softmax cross-entropy, the loss of a K-class classifier, with its gradient.

Shapes: N batch, K classes.
"""

import numbers

import numpy as np

from ._validate import as_array, as_float_array, check_ndim


def softmax_cross_entropy(logits, y):
    """Mean cross-entropy of softmax(logits) against integer labels, and its gradient.

    Parameters
    ----------
    logits : (N, K) ndarray of finite scores; any finite ones, 1e308 and -1e308 included.
    y : (N,) ndarray of integer labels in 0..K-1.

    Returns
    -------
    loss : float, -mean(log softmax(logits)[n, y[n]]); inf only when some sample's loss is
        beyond the largest float (for float64, above 1.8e308).
    dlogits : (N, K) ndarray, (softmax(logits) - onehot(y)) / N.
    """
    logits = as_float_array(logits, "logits")
    check_ndim(logits, 2, "logits", "(N, K)")
    if not np.all(np.isfinite(logits)):
        bad = np.argwhere(~np.isfinite(logits))[0]
        raise ValueError(f"logits must be finite, found {logits[tuple(bad)]} at index {tuple(int(i) for i in bad)}")
    y = as_array(y, "y")
    if y.dtype.kind not in "iu":  # not bool, nor timedelta64, which NumPy counts as an integer
        raise TypeError(f"y must hold integer class labels, got dtype {y.dtype}")
    N, K = logits.shape
    if y.shape != (N,):
        raise ValueError(f"y must have shape ({N},), one label per row of logits {logits.shape}, got {y.shape}")
    if N == 0:
        raise ValueError(f"logits hold no samples (shape {logits.shape}): the mean loss of an empty batch is undefined")
    if y.min() < 0 or y.max() >= K:
        raise ValueError(f"labels must be in 0..{K - 1} for {K} classes, got values from {y.min()} to {y.max()}")
    # Subtracting the row maximum changes nothing mathematically and keeps exp() from
    # overflowing: the largest exponent becomes exp(0) = 1. The subtraction itself overflows
    # only for finite extremes (1e308 - -1e308), to -inf: the right float for a log-probability
    # below -1.8e308 (its exp is 0, its loss inf), so the overflow is no error to warn about.
    with np.errstate(over="ignore"):
        shifted = logits - logits.max(axis=1, keepdims=True)  # (N, K)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (N, K)
        rows = np.arange(N)
        losses = -log_probs[rows, y]  # (N,)
        loss = losses.mean()
        if loss == np.inf and np.isfinite(losses).all():  # the sum overflowed, not the mean
            loss = (losses / N).sum()
    dlogits = np.exp(log_probs)  # (N, K), the softmax probabilities
    dlogits[rows, y] -= 1
    dlogits /= N
    return float(loss), dlogits
