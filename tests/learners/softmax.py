"""Softmax cross-entropy as learners write it: fn(logits, y) -> (loss, dlogits), mean over N."""

import numpy as np

from . import AVERAGE, Learner


def logsumexp_loss(logits, y):
    N = logits.shape[0]
    m = logits.max(axis=1, keepdims=True)
    lse = m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True))  # (N, 1)
    log_p = logits - lse
    loss = -np.mean(log_p[np.arange(N), y])
    d = np.exp(log_p)
    d[np.arange(N), y] -= 1
    return loss, d / N


def per_sample_loss(logits, y):
    """One sample at a time, a list of losses, the one-hot built by hand."""
    N, K = logits.shape
    losses, grads = [], []
    for n in range(N):
        z = logits[n] - np.max(logits[n])
        p = np.exp(z) / np.sum(np.exp(z))
        losses.append(np.log(np.sum(np.exp(z))) - z[y[n]])
        onehot = np.array([1.0 if k == y[n] else 0.0 for k in range(K)])
        grads.append((p - onehot) / N)
    return sum(losses) / N, np.array(grads)


def no_shift_loss(logits, y):
    """exp(logits) straight away: inf / inf = nan for logits near 1e3."""
    N = logits.shape[0]
    e = np.exp(logits)
    p = e / e.sum(axis=1, keepdims=True)
    loss = -np.mean(np.log(p[np.arange(N), y]))
    d = p.copy()
    d[np.arange(N), y] -= 1
    return loss, d / N


def log_of_softmax_loss(logits, y):
    """Shifted, but the log taken of the softmax itself: p underflows to 0, log(0) = -inf."""
    N = logits.shape[0]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    loss = -np.mean(np.log(p[np.arange(N), y]))
    d = p.copy()
    d[np.arange(N), y] -= 1
    return loss, d / N


def no_1_over_n_loss(logits, y):
    """The loss is a mean, its gradient forgets the 1/N."""
    loss, d = logsumexp_loss(logits, y)
    return loss, d * logits.shape[0]


def summed_loss(logits, y):
    """The loss summed over the batch (the gradient still has the 1/N of a mean)."""
    loss, d = logsumexp_loss(logits, y)
    return loss * logits.shape[0], d


CASES = [
    Learner("softmax_cross_entropy", "pass", "ok-logsumexp", "vectorised log-sum-exp", fn=logsumexp_loss),
    Learner("softmax_cross_entropy", "pass", "ok-per-sample", "a loop over samples, lists", fn=per_sample_loss),
    Learner("softmax_cross_entropy", "fail", "no-max-shift", "exp overflows at logits of 1e3", fn=no_shift_loss,
            hint_words=(("overflow", "max", "shift", "large", "inf", "nan", "stab"),), keys=("softmax_no_shift",)),
    Learner("softmax_cross_entropy", "fail", "log-of-underflowed-softmax", "log(p) with p = 0: loss inf",
            fn=log_of_softmax_loss,
            hint_words=(("log", "underflow", "inf"), ("log-sum-exp", "logsumexp", "log_softmax", "log softmax",
                                                     "underflow", "log(0)", "log of", "-inf", "inf", "zero")),
            keys=("log_of_softmax",)),
    Learner("softmax_cross_entropy", "fail", "grad-without-1-over-n", "dlogits N times too big", fn=no_1_over_n_loss,
            hint_words=(AVERAGE,), keys=("softmax_no_mean",)),
    Learner("softmax_cross_entropy", "fail", "loss-summed", "loss summed over the batch, not averaged",
            fn=summed_loss, hint_words=(AVERAGE + ("sum",),), keys=("softmax_loss_sum",)),
]


# ----------------------------------------------------------------------------------------
# Second set (issue 23), written from the lessons' stubs without reading cnnlib/check
# ----------------------------------------------------------------------------------------


def logaddexp_loss(logits, y):
    """np.logaddexp.reduce for the log-sum-exp, a boolean one-hot."""
    N, K = logits.shape
    lse = np.logaddexp.reduce(logits, axis=1)  # (N,)
    onehot = np.arange(K)[None, :] == y[:, None]
    loss = np.sum(lse - logits[onehot]) / N
    return loss, (np.exp(logits - lse[:, None]) - onehot) / N


def log_softmax_shifted(z):
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))


def log_softmax_of_softmax(z):
    """log(softmax(z)), the softmax shifted: a probability that underflows to 0 gives -inf."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.log(e / e.sum(axis=1, keepdims=True))


CASES += [
    Learner("softmax_cross_entropy", "pass", "ok-logaddexp", "np.logaddexp.reduce, boolean one-hot",
            fn=logaddexp_loss),
    Learner("log_softmax", "pass", "ok-shifted", "z - max - log(sum(exp(z - max)))", fn=log_softmax_shifted),
    Learner("log_softmax", "fail", "log-of-softmax", "np.log of the (shifted) softmax: -inf where p underflows",
            fn=log_softmax_of_softmax,
            hint_words=(("underflow", "log(0)", "-inf", "inf", "log-sum-exp", "logsumexp"),),
            keys=("log_of_softmax",)),
]
