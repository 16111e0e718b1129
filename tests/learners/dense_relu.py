"""Dense and ReLU layers as learners write them.

dense: forward(x, w, b) -> (out, cache), backward(dout, cache) -> (dx, dw, db); x (N, D),
w (D, M), b (M,). relu: forward(x) -> (out, cache), backward(dout, cache) -> dx.
A Learner without `forward` reads cnnlib's caches: (x, w, b) for dense, x for ReLU.
"""

import numpy as np

from . import AVERAGE, IN_PLACE, Learner


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


CASES = [
    Learner("dense", "pass", "ok-einsum", "einsum, dict cache", forward=einsum_forward, backward=einsum_backward),
    Learner("dense", "pass", "ok-loops", "three loops and a generator sum", forward=loops_forward,
            backward=loops_backward),
    Learner("dense", "pass", "ok-backward-alone", "lesson 2's backward on cnnlib's cache", backward=lesson_backward),
    Learner("relu", "pass", "ok-where-mask", "np.where, mask in a dict", forward=relu_where_forward,
            backward=relu_where_backward),
    Learner("dense", "fail", "dw-transposed", "dw = dout.T @ x, (M, D)", backward=dw_transposed_backward,
            hint_words=(("transpos", "x.t", "shape", "(d, m)"),), keys=("transposed_dw",)),
    Learner("dense", "fail", "db-averaged", "db = dout.mean(axis=0)", backward=db_mean_backward,
            hint_words=(("db",), AVERAGE), keys=("averaged",)),
    Learner("dense", "fail", "forward-drops-bias", "out = x @ w", forward=no_bias_forward, backward=lesson_backward,
            hint_words=(("bias", " b", "+ b"),), keys=("no_bias",)),
    Learner("relu", "fail", "backward-returns-mask", "returns (x > 0) instead of dout * (x > 0)",
            backward=relu_mask_backward, hint_words=(("dout", "upstream", "multipl", "mask", "chain"),),
            keys=("relu_mask_only",)),
    Learner("relu", "fail", "backward-writes-dout", "dout[x <= 0] = 0; return dout", backward=relu_in_place_backward,
            hint_words=IN_PLACE, keys=("in_place",)),
    Learner("relu", "fail", "forward-writes-x", "x[x < 0] = 0; return x, x", forward=relu_in_place_forward,
            backward=relu_lesson_backward,
            hint_words=IN_PLACE, keys=("in_place",)),
]


# ----------------------------------------------------------------------------------------
# Second set (issue 23), written from the lessons' stubs without reading cnnlib/check
# ----------------------------------------------------------------------------------------


def transposes_forward(x, w, b):
    """(w.T @ x.T).T + b[None, :]: the product written the other way round, the cache a list."""
    return (w.T @ x.T).T + b[np.newaxis, :], [x, w]


def tensordot_backward(dout, cache):
    x, w = cache
    return np.tensordot(dout, w, axes=(1, 1)), np.tensordot(x, dout, axes=(0, 0)), np.add.reduce(dout, axis=0)


def swapped_order_backward(dout, cache):
    """Returns (dw, dx, db): the gradients in the wrong order."""
    x, w, b = cache
    dx = dout @ w.T
    dw = x.T @ dout
    return dw, dx, dout.sum(axis=0)


def frees_cache_backward(dout, cache):
    """Zeroes the cached x once done with it ("to free memory"): the caller's x is wiped."""
    x, w, b = cache
    dx, dw, db = dout @ w.T, x.T @ dout, dout.sum(axis=0)
    x.fill(0.0)
    return dx, dw, db


def keepdims_db_backward(dout, cache):
    """db = dout.sum(axis=0, keepdims=True): shape (1, M), not (M,)."""
    x, w, b = cache
    return dout @ w.T, x.T @ dout, dout.sum(axis=0, keepdims=True)


def matrix_forward(x, w, b):
    """np.matrix, so that * is the matrix product: the output is a np.matrix, not an ndarray."""
    out = np.asmatrix(x) * np.asmatrix(w) + b
    return out, (x, w, b)


def relu_ge0_backward(dout, cache):
    """Slope 1 at x = 0 (x >= 0), where the course takes 0."""
    x = cache
    return dout * (x >= 0)


def relu_heaviside_backward(dout, cache):
    """np.heaviside(x, 0): the step function with the value 0 at 0."""
    return dout * np.heaviside(cache, 0.0)


def relu_heaviside1_backward(dout, cache):
    """np.heaviside(x, 1): the value 1 at 0."""
    return np.heaviside(cache, 1.0) * dout


def relu_out_forward(x):
    """np.maximum(x, 0, out=x): the result written over the caller's x; out and cache are x."""
    np.maximum(x, 0.0, out=x)
    return x, x


def relu_keeps_out_forward(x):
    """The cache is the output (its positive cells are x's)."""
    out = np.maximum(x, 0)
    return out, out


def relu_sign_backward(dout, cache):
    """dout * sign(relu(x)): 1 where the output is positive, 0 elsewhere."""
    return dout * np.sign(cache)


IN_PLACE_OR_CACHE = (("in place", "in-place", "modif", "changed", "changes", "overwr", "copy", "wipe", "zero"),)
ZERO = (("x = 0", "x == 0", "exactly 0", "zero", ">= 0", ">="),)

CASES += [
    Learner("dense", "pass", "ok-transposes-tensordot", "(w.T @ x.T).T, list cache, tensordot backward",
            forward=transposes_forward, backward=tensordot_backward),
    Learner("dense", "fail", "backward-returns-dw-dx-db", "returns (dw, dx, db)", backward=swapped_order_backward,
            hint_words=(("order", "dx, dw, db", "swap"),), keys=("grads_order",)),
    Learner("dense", "fail", "backward-zeroes-cached-x", "x.fill(0) on the cached x after use",
            backward=frees_cache_backward, hint_words=IN_PLACE_OR_CACHE, keys=("in_place",)),
    Learner("dense", "fail", "db-keepdims", "db of shape (1, M)", backward=keepdims_db_backward,
            hint_words=(("shape", "keepdims", "(1,"),), keys=("db_keepdims",)),
    Learner("dense", "fail", "forward-np-matrix", "np.matrix product, returns a np.matrix",
            forward=matrix_forward, hint_words=(("matrix", "ndarray"),), keys=("np_matrix",)),
    Learner("relu", "fail", "backward-x-ge-0", "dout * (x >= 0): slope 1 at 0", backward=relu_ge0_backward,
            hint_words=ZERO, keys=("relu_slope_at_zero",)),
    Learner("relu", "fail", "backward-heaviside-1", "np.heaviside(x, 1): slope 1 at 0",
            backward=relu_heaviside1_backward, hint_words=ZERO, keys=("relu_slope_at_zero",)),
    Learner("relu", "pass", "ok-heaviside-0", "np.heaviside(x, 0) * dout", backward=relu_heaviside_backward),
    Learner("relu", "pass", "ok-sign-of-output", "the output as cache, dout * sign(cache)",
            forward=relu_keeps_out_forward, backward=relu_sign_backward),
    Learner("relu", "fail", "forward-out-equals-x", "np.maximum(x, 0, out=x): the caller's x overwritten",
            forward=relu_out_forward, backward=relu_sign_backward, hint_words=IN_PLACE, keys=("in_place",)),
]
