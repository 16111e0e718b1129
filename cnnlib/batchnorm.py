"""Batch normalisation for images, forward and backward.

Each channel is normalised with statistics taken over everything that channel holds in the
batch, its N*H*W values, then scaled and shifted by a learned gamma and beta:

    x_hat = (x - mean) / sqrt(var + eps),    out = gamma * x_hat + beta    (per channel)

In training, mean and var are the batch's own (the biased variance, dividing by N*H*W), so
every value's output depends on every other value of its channel, and the backward must go
through mean and var. Running averages of them are kept for evaluation, where a sample's
output must not depend on which other samples share its batch. The semantics are exactly
torch.nn.functional.batch_norm's, and the tests hold the two equal:
    running_mean = (1 - momentum) * running_mean + momentum * mean
    running_var  = (1 - momentum) * running_var  + momentum * var * M / (M - 1)
(the running variance from the UNBIASED batch variance, as PyTorch keeps it).

Shapes: N batch, C channels, H x W pixels, M = N*H*W values per channel; gamma, beta,
running_mean, running_var and the statistics are (C,).

This file holds the loop versions (`*_naive`, the reference: one channel at a time, one value
at a time, the backward through the computational graph) and the vectorised ones, which
reduce over the axes (0, 2, 3) and use the compact backward formula. Both share one cache,
(x, x_hat, mean, var, gamma, beta, eps, batch_stats), so either backward can be checked
against the other on the same forward pass:
    x : (N, C, H, W), the input;  x_hat : (N, C, H, W), the normalised input;
    mean, var : (C,), the statistics that normalised x (the batch's, or the running ones);
    gamma, beta : (C,);  eps : float;
    batch_stats : bool, True when mean and var are the batch's own (training), so the
        gradient flows through them too; False in eval mode (and for an empty batch, which
        has no statistics of its own).
"""

import numbers

import numpy as np

from ._validate import as_flag, as_float_array, check_dout, check_ndim

_AXES = (0, 2, 3)  # every axis but the channels'


def _number(value, name, *, low, high=None, low_open=False):
    """`value` as a float after checking low <= value <= high (low < value if low_open)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    too_low = value <= low if low_open else value < low
    if not np.isfinite(value) or too_low or (high is not None and value > high):
        interval = ("(" if low_open else "[") + f"{low:g}, " + (f"{high:g}]" if high is not None else "inf)")
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return value


def _running(array, name, channels):
    """A running-statistics array, checked: updated in place, so a float ndarray of shape (C,)."""
    if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
        what = f"an array of dtype {array.dtype}" if isinstance(array, np.ndarray) else type(array).__name__
        raise TypeError(f"{name} must be a float ndarray of shape ({channels},) (training updates it in place), "
                        f"got {what}")
    if array.shape != (channels,):
        raise ValueError(f"{name} must have one value per channel, shape ({channels},), got shape {array.shape}")
    return array


def _check_args(x, gamma, beta, training, running_mean, running_var, momentum, eps):
    x = as_float_array(x, "x")
    check_ndim(x, 4, "x", "(N, C, H, W)")
    C = x.shape[1]
    gamma, beta = as_float_array(gamma, "gamma"), as_float_array(beta, "beta")
    for name, param in (("gamma", gamma), ("beta", beta)):
        if param.shape != (C,):
            raise ValueError(f"{name} must have one value per channel: x has {C} channels (shape {x.shape}, "
                             f"laid out (N, C, H, W)), {name} has shape {param.shape}")
    training = as_flag(training, "training")
    momentum = _number(momentum, "momentum", low=0.0, high=1.0)
    eps = _number(eps, "eps", low=0.0, low_open=True)
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var go together: pass both or neither")
    if running_mean is not None:
        running_mean = _running(running_mean, "running_mean", C)
        running_var = _running(running_var, "running_var", C)
    M = x.shape[0] * x.shape[2] * x.shape[3]
    if not training:
        if running_mean is None:
            raise ValueError("eval mode (training=False) normalises with the running statistics: pass "
                             "running_mean and running_var")
        if np.any(running_var < 0):
            raise ValueError(f"running_var must be >= 0 (a variance), got {running_var}")
    elif M == 1:
        # PyTorch refuses this too: one value has variance 0, and x_hat would be 0 whatever x is.
        raise ValueError(f"training needs more than one value per channel to take a variance: x has shape "
                         f"{x.shape}, so each channel holds N*H*W = 1 value")
    # An empty batch (Sequential.summary runs one) has no statistics: it uses the running
    # ones, or none at all, and updates nothing, as in PyTorch.
    batch_stats = training and M > 0
    return x, gamma, beta, running_mean, running_var, momentum, eps, batch_stats


def _given_stats(running_mean, running_var, C, dtype):
    """(mean, var) for a forward that takes no statistics of its own batch."""
    if running_mean is None:  # an empty batch in training without running statistics
        return np.zeros(C, dtype), np.ones(C, dtype)
    return running_mean.astype(dtype), running_var.astype(dtype)


def _update_running(running_mean, running_var, mean, var, M, momentum):
    """Move the running statistics towards the batch's, in place, as PyTorch does."""
    unbiased = var * (M / (M - 1))  # the running variance estimates the population's
    running_mean[...] = (1 - momentum) * running_mean + momentum * mean
    running_var[...] = (1 - momentum) * running_var + momentum * unbiased


def batchnorm2d_forward_naive(x, gamma, beta, *, training=True, running_mean=None, running_var=None,
                              momentum=0.1, eps=1e-5):
    """Same as batchnorm2d_forward, one channel and one value at a time: the reference version."""
    x, gamma, beta, running_mean, running_var, momentum, eps, batch_stats = _check_args(
        x, gamma, beta, training, running_mean, running_var, momentum, eps)
    N, C, H, W = x.shape
    M = N * H * W
    dtype = np.result_type(x, gamma, beta)
    if batch_stats:
        mean, var = np.zeros(C, dtype), np.zeros(C, dtype)
    else:
        mean, var = _given_stats(running_mean, running_var, C, dtype)
    x_hat = np.zeros(x.shape, dtype)
    out = np.zeros(x.shape, dtype)
    for c in range(C):
        if batch_stats:
            total = 0.0
            for n, i, j in np.ndindex(N, H, W):
                total += x[n, c, i, j]
            mean[c] = total / M
            squares = 0.0
            for n, i, j in np.ndindex(N, H, W):
                squares += (x[n, c, i, j] - mean[c]) ** 2
            var[c] = squares / M  # biased: the spread of this batch itself
        std = np.sqrt(var[c] + eps)
        for n, i, j in np.ndindex(N, H, W):
            x_hat[n, c, i, j] = (x[n, c, i, j] - mean[c]) / std
            out[n, c, i, j] = gamma[c] * x_hat[n, c, i, j] + beta[c]
    if batch_stats and running_mean is not None:
        _update_running(running_mean, running_var, mean, var, M, momentum)
    return out, (x, x_hat, mean, var, gamma, beta, eps, batch_stats)


def batchnorm2d_backward_naive(dout, cache):
    """Same as batchnorm2d_backward, through the computational graph one value at a time.

    In training, each x reaches the loss along three paths: directly through x_hat, through
    the mean, and through the variance (which depends on x and on the mean):
        x_hat = (x - mean) * (var + eps)**-0.5,  var = sum((x - mean)**2) / M,  mean = sum(x) / M
    so dvar collects every value's pull on the variance, dmean every value's pull on the
    mean (its own and the variance's), and dx adds the three.
    """
    dout = _check_backward(dout, cache, "batchnorm2d_backward_naive")
    x, x_hat, mean, var, gamma, beta, eps, batch_stats = cache
    N, C, H, W = x.shape
    M = N * H * W
    dx = np.zeros(x.shape, np.result_type(dout, x_hat))
    dgamma, dbeta = np.zeros_like(gamma), np.zeros_like(beta)
    for c in range(C):
        inv_std = 1 / np.sqrt(var[c] + eps)
        for n, i, j in np.ndindex(N, H, W):
            dgamma[c] += dout[n, c, i, j] * x_hat[n, c, i, j]
            dbeta[c] += dout[n, c, i, j]
        if not batch_stats:  # mean and var are constants here: x reaches the loss only through x_hat
            for n, i, j in np.ndindex(N, H, W):
                dx[n, c, i, j] = dout[n, c, i, j] * gamma[c] * inv_std
            continue
        dvar = 0.0
        for n, i, j in np.ndindex(N, H, W):
            dx_hat = dout[n, c, i, j] * gamma[c]
            dvar += dx_hat * (x[n, c, i, j] - mean[c]) * -0.5 * inv_std ** 3
        dmean = 0.0
        for n, i, j in np.ndindex(N, H, W):
            dx_hat = dout[n, c, i, j] * gamma[c]
            # The second term sums to 0 (the deviations from the mean do), but it is the graph's.
            dmean += -dx_hat * inv_std + dvar * -2 * (x[n, c, i, j] - mean[c]) / M
        for n, i, j in np.ndindex(N, H, W):
            dx_hat = dout[n, c, i, j] * gamma[c]
            dx[n, c, i, j] = dx_hat * inv_std + dvar * 2 * (x[n, c, i, j] - mean[c]) / M + dmean / M
    return dx.astype(x.dtype, copy=False), dgamma, dbeta


def batchnorm2d_forward(x, gamma, beta, *, training=True, running_mean=None, running_var=None,
                        momentum=0.1, eps=1e-5):
    """Normalise each channel of a batch of images, then scale and shift it.

    Parameters
    ----------
    x : (N, C, H, W) ndarray
    gamma, beta : (C,) ndarray, the learned scale and shift.
    training : bool, default True. True: normalise with the batch's mean and (biased)
        variance, and update the running statistics if given. False (eval): normalise with
        the running statistics, which are then required and left unchanged.
    running_mean, running_var : (C,) float ndarray or None (both or neither), updated IN
        PLACE in training, as torch.nn.functional.batch_norm does.
    momentum : float in [0, 1], the weight of the batch's statistics in the running ones
        (PyTorch's sense: new = (1 - momentum) * old + momentum * batch).
    eps : float > 0, added to the variance so a constant channel does not divide by 0.

    Returns
    -------
    out : (N, C, H, W) ndarray, in the dtype x, gamma and beta promote to (float32 stays
        float32).
    cache : tuple (x, x_hat, mean, var, gamma, beta, eps, batch_stats), see the module's
        docstring; what batchnorm2d_backward needs.

    Raises
    ------
    ValueError
        For shapes that do not fit (x not 4-D, gamma, beta or a running array not (C,)), a
        running array without the other, eval mode without running statistics, training on
        one value per channel (N*H*W == 1), a negative running_var in eval, eps <= 0 or
        momentum outside [0, 1].
    TypeError
        For a running array that is not a float ndarray (it is updated in place), a flag
        that is not a bool, a momentum or eps that is not a number, x that is not numbers.
    """
    x, gamma, beta, running_mean, running_var, momentum, eps, batch_stats = _check_args(
        x, gamma, beta, training, running_mean, running_var, momentum, eps)
    N, C, H, W = x.shape
    dtype = np.result_type(x, gamma, beta)
    if batch_stats:
        mean = x.mean(axis=_AXES, dtype=dtype)  # (C,)
        centred = x - mean.reshape(1, C, 1, 1)  # (N, C, H, W)
        var = np.mean(centred * centred, axis=_AXES)  # (C,), biased
    else:
        mean, var = _given_stats(running_mean, running_var, C, dtype)
        centred = x - mean.reshape(1, C, 1, 1)  # (N, C, H, W)
    inv_std = 1 / np.sqrt(var + dtype.type(eps))  # (C,)
    x_hat = centred * inv_std.reshape(1, C, 1, 1)  # (N, C, H, W)
    out = x_hat * gamma.astype(dtype).reshape(1, C, 1, 1) + beta.astype(dtype).reshape(1, C, 1, 1)
    if batch_stats and running_mean is not None:
        _update_running(running_mean, running_var, mean, var, N * H * W, momentum)
    return out, (x, x_hat, mean, var, gamma, beta, eps, batch_stats)


def batchnorm2d_backward(dout, cache):
    """Gradients of the loss with respect to x, gamma and beta.

    Parameters
    ----------
    dout : (N, C, H, W) ndarray, dL/dout.
    cache : the tuple batchnorm2d_forward (or batchnorm2d_forward_naive) returned.

    Returns
    -------
    dx : (N, C, H, W) ndarray, in x's dtype.
    dgamma : (C,) ndarray, sum of dout * x_hat per channel, in gamma's dtype.
    dbeta : (C,) ndarray, sum of dout per channel, in beta's dtype.

    Notes
    -----
    In training, the three paths of the naive version (through x_hat, the mean and the
    variance) add up to one formula per channel, written with dbeta and dgamma:
        dx = gamma / (M * sqrt(var + eps)) * (M * dout - dbeta - x_hat * dgamma)
    In eval mode mean and var are constants: dx = dout * gamma / sqrt(var + eps).
    """
    dout = _check_backward(dout, cache, "batchnorm2d_backward")
    x, x_hat, mean, var, gamma, beta, eps, batch_stats = cache
    N, C, H, W = x.shape
    M = N * H * W
    dtype = np.result_type(dout, x_hat)
    dbeta = dout.sum(axis=_AXES, dtype=dtype)  # (C,)
    dgamma = np.sum(dout * x_hat, axis=_AXES, dtype=dtype)  # (C,)
    scale = gamma.astype(dtype) / np.sqrt(var.astype(dtype) + dtype.type(eps))  # (C,)
    if batch_stats:
        dx = (M * dout - dbeta.reshape(1, C, 1, 1) - x_hat * dgamma.reshape(1, C, 1, 1))  # (N, C, H, W)
        dx *= (scale / M).reshape(1, C, 1, 1)
    else:
        dx = dout * scale.reshape(1, C, 1, 1)  # (N, C, H, W)
    return dx.astype(x.dtype, copy=False), dgamma.astype(gamma.dtype), dbeta.astype(beta.dtype)


_CACHE = "the tuple (x, x_hat, mean, var, gamma, beta, eps, batch_stats)"


def _check_backward(dout, cache, backward):
    """dout as a float array after checking the cache is a batchnorm2d forward's and dout fits it."""
    def refuse(what, error=TypeError):
        return error(f"{backward} needs the cache batchnorm2d_forward (or batchnorm2d_forward_naive) returned, "
                     f"{_CACHE}; {what}")

    if not isinstance(cache, tuple) or len(cache) != 8:
        length = f" of {len(cache)} entries" if isinstance(cache, (tuple, list)) else ""
        raise refuse(f"got {type(cache).__name__}{length}")
    x, x_hat, mean, var, gamma, beta, eps, batch_stats = cache
    arrays = {"x": (x, 4), "x_hat": (x_hat, 4), "mean": (mean, 1), "var": (var, 1), "gamma": (gamma, 1),
              "beta": (beta, 1)}
    for name, (value, ndim) in arrays.items():
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f" or value.ndim != ndim:
            raise refuse(f"its entry {name} is not a {ndim}-D float array")
    if not isinstance(eps, float) or not isinstance(batch_stats, bool):
        raise refuse("its entries eps and batch_stats must be a float and a bool")
    C = x.shape[1]
    if x_hat.shape != x.shape or any(a.shape != (C,) for a in (mean, var, gamma, beta)):
        raise refuse(f"got one whose shapes do not fit x of shape {x.shape}", ValueError)
    return check_dout(dout, x.shape)
