"""Lessons 12 and 13 as learners write them: batch normalisation, dropout, SGD with weight decay, AdamW.

The signatures are the lessons' stubs: batchnorm2d_forward(x, gamma, beta, *, training=True,
running_mean=None, running_var=None, momentum=0.1, eps=1e-5) -> (out, cache) with the cache
(x, x_hat, mean, var, gamma, beta, eps, training), batchnorm2d_backward(dout, cache) -> (dx, dgamma,
dbeta); dropout_forward(x, *, p, training=True, rng=None) -> (out, cache), dropout_backward(dout,
cache) -> dx; sgd_step(params, grads, velocity, lr=, momentum=, weight_decay=) and adamw_step(params,
grads, state, lr=, beta1=, beta2=, eps=, weight_decay=) updating params in place. Each mistake is
one a learner makes on the way from cs231n's or the papers' formulas to the course's (PyTorch's).
Kept out of all_cases(): tests/check/test_check_deeper.py runs them, and checks them without the checker.
"""

import numpy as np

from . import IN_PLACE, Learner

AXES = (0, 2, 3)


def _c(a):
    """(C,) -> (1, C, 1, 1), to broadcast over a batch of images."""
    return a.reshape(1, -1, 1, 1)


# ----------------------------------------------------------------------------------------
# Batch normalisation, forward
# ----------------------------------------------------------------------------------------


def bn_forward(x, gamma, beta, *, training=True, running_mean=None, running_var=None, momentum=0.1, eps=1e-5,
               axes=AXES, ddof=0, std=False, stats_in_eval=False, running_ddof=1, swap=False, rebind=False):
    """Lesson 12's forward; the keywords after eps are the slips the learners below make."""
    M = x.size // x.shape[1]
    if training or stats_in_eval:
        mean = x.mean(axis=axes, keepdims=True)
        var = x.var(axis=axes, ddof=ddof, keepdims=True)
        if training and running_mean is not None:
            batch_mean, batch_var = x.mean(axis=AXES), x.var(axis=AXES) * (M / (M - 1) if running_ddof else 1.0)
            w = 1 - momentum if swap else momentum
            if rebind:
                running_mean = (1 - w) * running_mean + w * batch_mean
                running_var = (1 - w) * running_var + w * batch_var
            else:
                running_mean *= 1 - w
                running_mean += w * batch_mean
                running_var *= 1 - w
                running_var += w * batch_var
    else:
        mean, var = _c(running_mean), _c(running_var)
    x_hat = (x - mean) / (np.sqrt(var) + eps if std else np.sqrt(var + eps))
    out = _c(gamma) * x_hat + _c(beta)
    return out, (x, x_hat, mean.reshape(-1) if mean.size == x.shape[1] else mean,
                 var.reshape(-1) if var.size == x.shape[1] else var, gamma, beta, eps, training)


def lesson_bn_forward(x, gamma, beta, *, training=True, running_mean=None, running_var=None, momentum=0.1, eps=1e-5):
    return bn_forward(x, gamma, beta, training=training, running_mean=running_mean, running_var=running_var,
                      momentum=momentum, eps=eps)


def loop_bn_forward(x, gamma, beta, *, training=True, running_mean=None, running_var=None, momentum=0.1, eps=1e-5):
    """One channel at a time, with np.var and explicit (C,) statistics."""
    N, C, H, W = x.shape
    out, x_hat = np.empty_like(x), np.empty_like(x)
    mean, var = np.empty(C), np.empty(C)
    for c in range(C):
        values = x[:, c]
        if training:
            mean[c], var[c] = values.mean(), np.var(values)
            if running_mean is not None:
                running_mean[c] = (1 - momentum) * running_mean[c] + momentum * mean[c]
                running_var[c] = (1 - momentum) * running_var[c] + momentum * np.var(values, ddof=1)
        else:
            mean[c], var[c] = running_mean[c], running_var[c]
        x_hat[:, c] = (values - mean[c]) / np.sqrt(var[c] + eps)
        out[:, c] = gamma[c] * x_hat[:, c] + beta[c]
    return out, (x, x_hat, mean, var, gamma, beta, eps, training)


def per_sample_bn_forward(x, gamma, beta, *, training=True, running_mean=None, running_var=None, momentum=0.1,
                          eps=1e-5):
    """Statistics of each sample over its channels and pixels, axis=(1, 2, 3): layer normalisation."""
    return bn_forward(x, gamma, beta, training=training, running_mean=running_mean, running_var=running_var,
                      momentum=momentum, eps=eps, axes=(1, 2, 3))


def pooled_bn_forward(x, gamma, beta, *, training=True, running_mean=None, running_var=None, momentum=0.1, eps=1e-5):
    """x.mean() and x.var(): one mean and variance for every channel at once."""
    return bn_forward(x, gamma, beta, training=training, running_mean=running_mean, running_var=running_var,
                      momentum=momentum, eps=eps, axes=(0, 1, 2, 3))


def batch_axis_bn_forward(x, gamma, beta, *, training=True, running_mean=None, running_var=None, momentum=0.1,
                          eps=1e-5):
    """cs231n's BatchNorm1d habit, x.mean(axis=0): a mean per channel and pixel."""
    return bn_forward(x, gamma, beta, training=training, running_mean=running_mean, running_var=running_var,
                      momentum=momentum, eps=eps, axes=(0,))


def unbiased_bn_forward(x, gamma, beta, *, training=True, running_mean=None, running_var=None, momentum=0.1,
                        eps=1e-5):
    """Normalises with np.var(..., ddof=1), "the better estimate"."""
    return bn_forward(x, gamma, beta, training=training, running_mean=running_mean, running_var=running_var,
                      momentum=momentum, eps=eps, ddof=1)


def std_bn_forward(x, gamma, beta, *, training=True, running_mean=None, running_var=None, momentum=0.1, eps=1e-5):
    """(x - mean) / (x.std() + eps): eps outside the square root."""
    return bn_forward(x, gamma, beta, training=training, running_mean=running_mean, running_var=running_var,
                      momentum=momentum, eps=eps, std=True)


def batch_stats_in_eval_bn_forward(x, gamma, beta, *, training=True, running_mean=None, running_var=None,
                                   momentum=0.1, eps=1e-5):
    """The running statistics are kept, but every forward normalises with the batch's own."""
    return bn_forward(x, gamma, beta, training=training, running_mean=running_mean, running_var=running_var,
                      momentum=momentum, eps=eps, stats_in_eval=True)


def biased_running_bn_forward(x, gamma, beta, *, training=True, running_mean=None, running_var=None, momentum=0.1,
                              eps=1e-5):
    """running_var follows the biased batch variance, the one that normalised."""
    return bn_forward(x, gamma, beta, training=training, running_mean=running_mean, running_var=running_var,
                      momentum=momentum, eps=eps, running_ddof=0)


def keras_momentum_bn_forward(x, gamma, beta, *, training=True, running_mean=None, running_var=None, momentum=0.1,
                              eps=1e-5):
    """running = momentum * running + (1 - momentum) * batch, Keras's sense of momentum."""
    return bn_forward(x, gamma, beta, training=training, running_mean=running_mean, running_var=running_var,
                      momentum=momentum, eps=eps, swap=True)


def rebinding_bn_forward(x, gamma, beta, *, training=True, running_mean=None, running_var=None, momentum=0.1,
                         eps=1e-5):
    """running_mean = (1 - momentum) * running_mean + ...: new local arrays, the caller's unchanged."""
    return bn_forward(x, gamma, beta, training=training, running_mean=running_mean, running_var=running_var,
                      momentum=momentum, eps=eps, rebind=True)


def centring_in_place_bn_forward(x, gamma, beta, *, training=True, running_mean=None, running_var=None, momentum=0.1,
                                 eps=1e-5):
    """x -= mean and x /= std to save memory: the caller's x is changed."""
    C = x.shape[1]
    if training:
        mean, var = x.mean(axis=AXES), x.var(axis=AXES)
        if running_mean is not None:
            M = x.size // C
            running_mean *= 1 - momentum
            running_mean += momentum * mean
            running_var *= 1 - momentum
            running_var += momentum * var * M / (M - 1)
    else:
        mean, var = running_mean, running_var
    x -= _c(mean)
    x /= np.sqrt(_c(var) + eps)
    return _c(gamma) * x + _c(beta), (x, x, mean, var, gamma, beta, eps, training)


# ----------------------------------------------------------------------------------------
# Batch normalisation, backward
# ----------------------------------------------------------------------------------------


def compact_bn_backward(dout, cache):
    """Lesson 12's compact formula."""
    x, x_hat, mean, var, gamma, beta, eps, training = cache
    M = x.size // x.shape[1]
    dbeta, dgamma = dout.sum(axis=AXES), (dout * x_hat).sum(axis=AXES)
    scale = _c(gamma / np.sqrt(var + eps))
    if not training:
        return dout * scale, dgamma, dbeta
    return scale / M * (M * dout - _c(dbeta) - x_hat * _c(dgamma)), dgamma, dbeta


def graph_bn_backward(dout, cache, through_mean=True, through_var=True):
    """Lesson 12's computational graph, node by node; the switches leave a path out."""
    x, x_hat, mean, var, gamma, beta, eps, training = cache
    M = x.size // x.shape[1]
    dbeta, dgamma = dout.sum(axis=AXES), (dout * x_hat).sum(axis=AXES)
    dx_hat = dout * _c(gamma)
    s = 1 / np.sqrt(_c(var) + eps)
    if not training:
        return dx_hat * s, dgamma, dbeta
    d = x - _c(mean)
    dvar = (dx_hat * d).sum(axis=AXES, keepdims=True) * -0.5 * s ** 3 if through_var else 0.0
    dd = dx_hat * s + dvar * 2 * d / M
    dmean = -dd.sum(axis=AXES, keepdims=True) if through_mean else 0.0
    return dd + dmean / M, dgamma, dbeta


def mean_constant_bn_backward(dout, cache):
    """Through the variance, but not through the mean."""
    return graph_bn_backward(dout, cache, through_mean=False)


def var_constant_bn_backward(dout, cache):
    """Through the mean, but not through the variance."""
    return graph_bn_backward(dout, cache, through_var=False)


def constants_bn_backward(dout, cache):
    """dx = dout * gamma / sqrt(var + eps) in training too: the mean and the variance as constants."""
    x, x_hat, mean, var, gamma, beta, eps, training = cache
    return dout * _c(gamma / np.sqrt(var + eps)), (dout * x_hat).sum(axis=AXES), dout.sum(axis=AXES)


# ----------------------------------------------------------------------------------------
# Dropout
# ----------------------------------------------------------------------------------------


def lesson_dropout_forward(x, *, p, training=True, rng=None):
    if not training or p == 0:
        return x, (None, 1.0, x.shape)
    keep = rng.random(x.shape) >= p
    return x * keep / (1 - p), (keep, 1 / (1 - p), x.shape)


def lesson_dropout_backward(dout, cache):
    keep, scale, shape = cache
    return dout if keep is None else dout * keep * scale


def scaled_mask_dropout_forward(x, *, p, training=True, rng=None):
    """The mask holds the scale, drawn with rng.uniform and `>`; the cache is that mask."""
    if not training:
        return x.copy(), np.ones_like(x)
    mask = (rng.uniform(size=x.shape) > p) / (1 - p)
    return x * mask, mask


def scaled_mask_dropout_backward(dout, mask):
    return dout * mask


def binomial_dropout_forward(x, *, p, training=True, rng=None):
    """rng.binomial(1, 1 - p): a mask of 0s and 1s, kept as ints."""
    if not training or p == 0:
        return x, None
    mask = rng.binomial(1, 1 - p, size=x.shape)
    return x * mask / (1 - p), (mask, p)


def binomial_dropout_backward(dout, cache):
    if cache is None:
        return dout
    mask, p = cache
    return dout * mask / (1 - p)


def unscaled_dropout_forward(x, *, p, training=True, rng=None):
    """Drops, but leaves the kept values as they were."""
    if not training or p == 0:
        return x, None
    keep = rng.random(x.shape) >= p
    return x * keep, keep


def unscaled_dropout_backward(dout, keep):
    return dout if keep is None else dout * keep


def eval_scaled_dropout_forward(x, *, p, training=True, rng=None):
    """Inverted in training, and "to be safe" divided by 1 - p in eval too."""
    if not training:
        return x / (1 - p), (None, 1.0, x.shape)
    return lesson_dropout_forward(x, p=p, rng=rng)


def classic_dropout_forward(x, *, p, training=True, rng=None):
    """The original dropout (Srivastava et al.): no scale in training, x * (1 - p) in eval."""
    if not training:
        return x * (1 - p), (None, 1.0, x.shape)
    keep = rng.random(x.shape) >= p
    return x * keep, (keep, 1.0, x.shape)


def cs231n_dropout_forward(x, *, p, training=True, rng=None):
    """cs231n's convention: p is the probability of keeping a value, and the scale 1 / p."""
    if not training or p == 0:
        return x, (None, 1.0, x.shape)
    keep = rng.random(x.shape) < p
    return x * keep / p, (keep, 1 / p, x.shape)


def redrawing_dropout_forward(x, *, p, training=True, rng=None):
    """Right, but keeps only p in the cache."""
    if not training or p == 0:
        return x, (None, x.shape)
    return x * (rng.random(x.shape) >= p) / (1 - p), (p, x.shape)


def redrawing_dropout_backward(dout, cache):
    """Draws the mask again, from NumPy's global generator."""
    p, shape = cache
    if p is None:
        return dout
    return dout * (np.random.random(shape) >= p) / (1 - p)


def global_rng_dropout_forward(x, *, p, training=True, rng=None):
    """np.random.rand, as in many tutorials: the rng argument is never used."""
    if not training or p == 0:
        return x, (None, 1.0, x.shape)
    keep = np.random.rand(*x.shape) >= p
    return x * keep / (1 - p), (keep, 1 / (1 - p), x.shape)


def fixed_seed_dropout_forward(x, *, p, training=True, rng=None):
    """A generator of its own, seeded 0 at every call: the same mask every time."""
    return lesson_dropout_forward(x, p=p, training=training, rng=np.random.default_rng(0))


# ----------------------------------------------------------------------------------------
# SGD with weight decay
# ----------------------------------------------------------------------------------------


def lesson_sgd_step(params, grads, velocity, lr=0.01, momentum=0.9, weight_decay=0.0):
    for name, p in params.items():
        g = grads[name] + weight_decay * p
        if name not in velocity:
            velocity[name] = np.zeros_like(p)
        v = velocity[name]
        v *= momentum
        v += g
        p -= lr * v


def cs231n_sgd_step(params, grads, velocity, lr=0.01, momentum=0.9, weight_decay=0.0):
    """v = mu * v - lr * (g + wd * p); p += v: the same method with another velocity."""
    for name, p in params.items():
        v = velocity.setdefault(name, np.zeros_like(p))
        v[...] = momentum * v - lr * (grads[name] + weight_decay * p)
        p += v


def decay_outside_sgd_step(params, grads, velocity, lr=0.01, momentum=0.9, weight_decay=0.0):
    """Momentum on the loss's gradient alone, the decay taken off p beside it (SGDW's order)."""
    for name, p in params.items():
        v = velocity.setdefault(name, np.zeros_like(p))
        v *= momentum
        v += grads[name]
        p -= lr * (v + weight_decay * p)


def no_decay_sgd_step(params, grads, velocity, lr=0.01, momentum=0.9, weight_decay=0.0):
    """Lesson 9's step, the new argument accepted and never used."""
    for name, p in params.items():
        v = velocity.setdefault(name, np.zeros_like(p))
        v *= momentum
        v += grads[name]
        p -= lr * v


def dampened_sgd_step(params, grads, velocity, lr=0.01, momentum=0.9, weight_decay=0.0):
    """v = momentum * v + (1 - momentum) * g: a running mean of the gradient."""
    for name, p in params.items():
        v = velocity.setdefault(name, np.zeros_like(p))
        v *= momentum
        v += (1 - momentum) * (grads[name] + weight_decay * p)
        p -= lr * v


def decaying_grads_sgd_step(params, grads, velocity, lr=0.01, momentum=0.9, weight_decay=0.0):
    """grads[name] += weight_decay * p: the model's gradients changed."""
    for name, p in params.items():
        grads[name] += weight_decay * p
        v = velocity.setdefault(name, np.zeros_like(p))
        v *= momentum
        v += grads[name]
        p -= lr * v


# ----------------------------------------------------------------------------------------
# AdamW
# ----------------------------------------------------------------------------------------


def adamw(params, grads, state, lr, beta1, beta2, eps, weight_decay, decay="first", correct=True):
    """Lesson 13's adamw_step; decay "L2", "no lr", "after" or "none" and correct=False are slips."""
    if not state:
        state.update(t=0, m={n: np.zeros_like(p) for n, p in params.items()},
                     v={n: np.zeros_like(p) for n, p in params.items()})
    state["t"] += 1
    t = state["t"]
    for name, p in params.items():
        g = grads[name] + weight_decay * p if decay == "L2" else grads[name]
        if decay in ("first", "no lr"):
            p *= 1 - (lr if decay == "first" else 1.0) * weight_decay
        m, v = state["m"][name], state["v"][name]
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * g * g
        m_hat, v_hat = (m / (1 - beta1 ** t), v / (1 - beta2 ** t)) if correct else (m, v)
        p -= lr * m_hat / (np.sqrt(v_hat) + eps)
        if decay == "after":
            p *= 1 - lr * weight_decay


def lesson_adamw_step(params, grads, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
    adamw(params, grads, state, lr, beta1, beta2, eps, weight_decay)


def per_name_adamw_step(params, grads, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
    """State per parameter name, (t, m, v), m and v replaced rather than updated."""
    for name, p in params.items():
        t, m, v = state.get(name, (0, 0.0, 0.0))
        t += 1
        g = grads[name]
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g ** 2
        state[name] = (t, m, v)
        p -= lr * weight_decay * p
        p -= lr * (m / (1 - beta1 ** t)) / (np.sqrt(v / (1 - beta2 ** t)) + eps)


def l2_adamw_step(params, grads, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
    """torch.optim.Adam's weight_decay: g + weight_decay * p into m and v."""
    adamw(params, grads, state, lr, beta1, beta2, eps, weight_decay, decay="L2")


def paper_adamw_step(params, grads, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
    """Loshchilov and Hutter's algorithm 2 with a constant schedule: p *= 1 - weight_decay."""
    adamw(params, grads, state, lr, beta1, beta2, eps, weight_decay, decay="no lr")


def decay_after_adamw_step(params, grads, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
    """Adam's step first, then the decay."""
    adamw(params, grads, state, lr, beta1, beta2, eps, weight_decay, decay="after")


def no_decay_adamw_step(params, grads, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
    """Lesson 9's Adam step under a new name."""
    adamw(params, grads, state, lr, beta1, beta2, eps, weight_decay, decay="none")


def uncorrected_adamw_step(params, grads, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
    """The decay right, the bias correction left out."""
    adamw(params, grads, state, lr, beta1, beta2, eps, weight_decay, correct=False)


AXIS_WORDS = ("axis", "axes", "(0, 2, 3)")
MEAN_VAR = (("mean",), ("variance",), ("constant",))
CASES = [
    Learner("batchnorm2d", "pass", "ok-lesson", "lesson 12's forward and compact backward",
            forward=lesson_bn_forward, backward=compact_bn_backward),
    Learner("batchnorm2d", "pass", "ok-graph", "lesson 12's forward and backward through the graph",
            forward=lesson_bn_forward, backward=graph_bn_backward),
    Learner("batchnorm2d", "pass", "ok-loops", "one channel at a time", forward=loop_bn_forward,
            backward=compact_bn_backward),
    Learner("batchnorm2d", "fail", "per-sample", "statistics over axis=(1, 2, 3)", forward=per_sample_bn_forward,
            hint_words=(AXIS_WORDS, ("sample",)), keys=("bn_per_sample",)),
    Learner("batchnorm2d", "fail", "channels-pooled", "x.mean() over every axis", forward=pooled_bn_forward,
            hint_words=(AXIS_WORDS, ("channel",)), keys=("bn_channels_pooled",)),
    Learner("batchnorm2d", "fail", "batch-axis", "x.mean(axis=0), BatchNorm1d's rule", forward=batch_axis_bn_forward,
            hint_words=(AXIS_WORDS,), keys=("bn_batch_axis",)),
    Learner("batchnorm2d", "fail", "unbiased-variance", "normalises with ddof=1", forward=unbiased_bn_forward,
            hint_words=(("unbiased", "ddof", "m - 1"),), keys=("bn_unbiased_variance",)),
    Learner("batchnorm2d", "fail", "eps-outside-sqrt", "(x - mean) / (std + eps)", forward=std_bn_forward,
            hint_words=(("eps",), ("sqrt", "root")), keys=("bn_eps",)),
    Learner("batchnorm2d", "fail", "batch-stats-in-eval", "eval normalises with the batch's statistics",
            forward=batch_stats_in_eval_bn_forward, hint_words=(("eval",), ("running",)),
            keys=("bn_eval_batch_stats",)),
    Learner("batchnorm2d", "fail", "biased-running-var", "running_var from the biased variance",
            forward=biased_running_bn_forward, hint_words=(("running_var",), ("unbiased", "m - 1")),
            keys=("bn_running_var_biased",)),
    Learner("batchnorm2d", "fail", "keras-momentum", "momentum weighs the old running value",
            forward=keras_momentum_bn_forward, hint_words=(("momentum",),), keys=("bn_momentum_swapped",)),
    Learner("batchnorm2d", "fail", "running-rebound", "running_mean = ...: the caller's arrays unchanged",
            forward=rebinding_bn_forward, hint_words=(("in place",),), keys=("bn_running_not_in_place",)),
    Learner("batchnorm2d", "fail", "centres-x-in-place", "x -= mean", forward=centring_in_place_bn_forward,
            backward=compact_bn_backward, hint_words=IN_PLACE, keys=("in_place",)),
    Learner("batchnorm2d", "fail", "mean-and-var-constant", "dx = dout * gamma / std in training",
            forward=lesson_bn_forward, backward=constants_bn_backward, hint_words=MEAN_VAR,
            keys=("bn_backward_constants",)),
    Learner("batchnorm2d", "fail", "mean-constant", "the graph without the mean's path", forward=lesson_bn_forward,
            backward=mean_constant_bn_backward, hint_words=MEAN_VAR, keys=("bn_backward_mean_constant",)),
    Learner("batchnorm2d", "fail", "var-constant", "the graph without the variance's path",
            backward=var_constant_bn_backward, hint_words=MEAN_VAR, keys=("bn_backward_var_constant",)),
    Learner("dropout", "pass", "ok-lesson", "lesson 13's pair", forward=lesson_dropout_forward,
            backward=lesson_dropout_backward),
    Learner("dropout", "pass", "ok-scaled-mask", "rng.uniform(...) > p, the scale in the mask",
            forward=scaled_mask_dropout_forward, backward=scaled_mask_dropout_backward),
    Learner("dropout", "pass", "ok-binomial", "rng.binomial(1, 1 - p)", forward=binomial_dropout_forward,
            backward=binomial_dropout_backward),
    Learner("dropout", "fail", "no-rescale", "kept values not scaled by 1 / (1 - p)", forward=unscaled_dropout_forward,
            backward=unscaled_dropout_backward, hint_words=(("1 / (1 - p)",),), keys=("dropout_no_rescale",)),
    Learner("dropout", "fail", "scaled-in-eval", "eval divides by 1 - p", forward=eval_scaled_dropout_forward,
            hint_words=(("eval",), ("scal",)), keys=("dropout_scaled_in_eval",)),
    Learner("dropout", "fail", "classic-dropout", "no scale in training, x * (1 - p) in eval",
            forward=classic_dropout_forward, hint_words=(("eval",), ("scal",)),
            keys=("dropout_no_rescale", "dropout_scaled_in_eval")),
    Learner("dropout", "fail", "keeps-with-p", "cs231n's p, the probability of keeping", forward=cs231n_dropout_forward,
            hint_words=(("probability",), ("drop",)), keys=("dropout_keeps_p",)),
    Learner("dropout", "fail", "mask-redrawn", "backward draws a new mask", forward=redrawing_dropout_forward,
            backward=redrawing_dropout_backward, hint_words=(("mask",), ("cache", "forward")),
            keys=("dropout_mask_redrawn",)),
    Learner("dropout", "fail", "global-rng", "np.random.rand, rng unused", forward=global_rng_dropout_forward,
            backward=lesson_dropout_backward, hint_words=(("rng",),), keys=("dropout_own_rng",)),
    Learner("dropout", "fail", "fixed-seed", "default_rng(0) inside: one mask for ever",
            forward=fixed_seed_dropout_forward, hint_words=(("rng",),), keys=("dropout_own_rng",)),
    Learner("sgd_weight_decay", "pass", "ok-lesson", "lesson 13's sgd_step", fn=lesson_sgd_step),
    Learner("sgd_weight_decay", "pass", "ok-cs231n", "v = mu * v - lr * g; p += v", fn=cs231n_sgd_step),
    Learner("sgd_weight_decay", "fail", "decay-outside-momentum", "p -= lr * (v + wd * p)", fn=decay_outside_sgd_step,
            hint_words=(("momentum",), ("first", "before")), keys=("sgd_decay_outside_momentum",)),
    Learner("sgd_weight_decay", "fail", "decay-ignored", "weight_decay never used", fn=no_decay_sgd_step,
            hint_words=(("weight_decay",),), keys=("weight_decay_ignored",)),
    Learner("sgd_weight_decay", "fail", "dampened", "v = mu * v + (1 - mu) * g", fn=dampened_sgd_step,
            hint_words=(("1 - momentum",),), keys=("momentum_dampened",)),
    Learner("sgd_weight_decay", "fail", "decays-grads", "grads[name] += wd * p", fn=decaying_grads_sgd_step,
            hint_words=IN_PLACE, keys=("in_place",)),
    Learner("adamw", "pass", "ok-lesson", "lesson 13's adamw_step", fn=lesson_adamw_step),
    Learner("adamw", "pass", "ok-per-name", "t, m and v per parameter name", fn=per_name_adamw_step),
    Learner("adamw", "fail", "adam-l2", "torch.optim.Adam's weight_decay", fn=l2_adamw_step,
            hint_words=(("l2",), ("decoupl",)), keys=("adamw_l2",)),
    Learner("adamw", "fail", "decay-without-lr", "the paper's p *= 1 - weight_decay", fn=paper_adamw_step,
            hint_words=(("lr",), ("paper",)), keys=("adamw_decay_without_lr",)),
    Learner("adamw", "fail", "decay-after", "the decay after Adam's step", fn=decay_after_adamw_step,
            hint_words=(("first", "after"),), keys=("adamw_decay_after",)),
    Learner("adamw", "fail", "decay-ignored", "lesson 9's Adam", fn=no_decay_adamw_step,
            hint_words=(("weight_decay",),), keys=("weight_decay_ignored",)),
    Learner("adamw", "fail", "no-bias-correction", "m and v without 1 - beta**t", fn=uncorrected_adamw_step,
            hint_words=(("bias", "correct"),), keys=("adam_no_bias_correction",)),
]
