"""Dense and ReLU layers as learners write them.

dense: forward(x, w, b) -> (out, cache), backward(dout, cache) -> (dx, dw, db); x (N, D),
w (D, M), b (M,). relu: forward(x) -> (out, cache), backward(dout, cache) -> dx.
A Learner without `forward` reads cnnlib's caches: (x, w, b) for dense, x for ReLU.
"""

import numpy as np

from . import AVERAGE, Learner


def einsum_forward(x, w, b):
    return np.einsum("nd,dm->nm", x, w) + b, {"x": x, "w": w}


def einsum_backward(dout, cache):
    x, w = cache["x"], cache["w"]
    return np.einsum("nm,dm->nd", dout, w), np.einsum("nd,nm->dm", x, dout), np.einsum("nm->m", dout)


def loops_forward(x, w, b):
    N, D = x.shape
    M = w.shape[1]
    out = np.zeros((N, M))
    for n in range(N):
        for m in range(M):
            out[n, m] = b[m] + sum(x[n, d] * w[d, m] for d in range(D))
    return out, (x, w)


def loops_backward(dout, cache):
    x, w = cache
    N, D = x.shape
    M = w.shape[1]
    dx, dw, db = np.zeros((N, D)), np.zeros((D, M)), np.zeros(M)
    for n in range(N):
        for m in range(M):
            db[m] += dout[n, m]
            for d in range(D):
                dx[n, d] += dout[n, m] * w[d, m]
                dw[d, m] += x[n, d] * dout[n, m]
    return dx, dw, db


def lesson_backward(dout, cache):
    """Backward alone, on cnnlib's cache."""
    x, w, b = cache
    return dout @ w.T, x.T @ dout, dout.sum(axis=0)


def dw_transposed_backward(dout, cache):
    x, w, b = cache
    return dout @ w.T, dout.T @ x, dout.sum(axis=0)  # (M, D), not (D, M)


def db_mean_backward(dout, cache):
    x, w, b = cache
    return dout @ w.T, x.T @ dout, dout.mean(axis=0)


def no_bias_forward(x, w, b):
    return x @ w, (x, w, b)


def relu_where_forward(x):
    mask = x > 0
    return np.where(mask, x, 0.0), {"mask": mask}


def relu_where_backward(dout, cache):
    return np.where(cache["mask"], dout, 0.0)


def relu_lesson_backward(dout, cache):
    """Lesson 3's backward: its cache is x (or relu(x), which has the same positive cells)."""
    return dout * (cache > 0)


def relu_mask_backward(dout, cache):
    """Returns the local slope (the mask) instead of dout * mask."""
    x = cache
    return (x > 0).astype(float)


def relu_in_place_backward(dout, cache):
    """Zeroes dout in place and returns it: the caller's dout is changed."""
    dout[cache <= 0] = 0
    return dout


def relu_in_place_forward(x):
    """x[x < 0] = 0 on the caller's array; out and cache are x itself."""
    x[x < 0] = 0
    return x, x


IN_PLACE = (("in place", "in-place", "modif", "changed", "changes", "overwr", "copy"),)

CASES = [
    Learner("dense", "pass", "ok-einsum", "einsum, dict cache", forward=einsum_forward, backward=einsum_backward),
    Learner("dense", "pass", "ok-loops", "three loops and a generator sum", forward=loops_forward,
            backward=loops_backward),
    Learner("dense", "pass", "ok-backward-alone", "lesson 2's backward on cnnlib's cache", backward=lesson_backward),
    Learner("relu", "pass", "ok-where-mask", "np.where, mask in a dict", forward=relu_where_forward,
            backward=relu_where_backward),
    Learner("dense", "fail", "dw-transposed", "dw = dout.T @ x, (M, D)", backward=dw_transposed_backward,
            hint_words=(("transpos", "x.t", "shape", "(d, m)"),)),
    Learner("dense", "fail", "db-averaged", "db = dout.mean(axis=0)", backward=db_mean_backward,
            hint_words=(("db",), AVERAGE)),
    Learner("dense", "fail", "forward-drops-bias", "out = x @ w", forward=no_bias_forward, backward=lesson_backward,
            hint_words=(("bias", " b", "+ b"),)),
    Learner("relu", "fail", "backward-returns-mask", "returns (x > 0) instead of dout * (x > 0)",
            backward=relu_mask_backward, hint_words=(("dout", "upstream", "multipl", "mask", "chain"),)),
    Learner("relu", "fail", "backward-writes-dout", "dout[x <= 0] = 0; return dout", backward=relu_in_place_backward,
            hint_words=IN_PLACE),
    Learner("relu", "fail", "forward-writes-x", "x[x < 0] = 0; return x, x", forward=relu_in_place_forward,
            backward=relu_lesson_backward,
            hint_words=IN_PLACE),
]
