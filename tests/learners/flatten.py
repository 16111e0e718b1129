"""Flatten as learners write it: forward(x) -> (out, cache), backward(dout, cache) -> dx.

The contract (the course's spec): each sample's row holds that sample's numbers, and the
backward undoes the learner's OWN forward. So a consistent pair in F order is right, even
though cnnlib reads each sample in C order.
"""

import numpy as np

from . import Learner


def c_forward(x):
    return x.reshape(x.shape[0], -1), x.shape


def c_backward(dout, cache):
    return dout.reshape(cache)


def f_forward(x):
    """Each sample read in F order (first index fastest): a different, valid flattening."""
    return x.reshape(len(x), -1, order="F"), x.shape


def f_backward(dout, shape):
    return dout.reshape(shape, order="F")


def rows_forward(x):
    """A list comprehension of per-sample ravels; the cache a dict."""
    return np.stack([sample.ravel() for sample in x]), {"sample_shape": x.shape[1:]}


def rows_backward(dout, cache):
    return np.stack([row.reshape(cache["sample_shape"]) for row in dout])


def transpose_forward(x):
    """Per-sample F order written with transposes: x[n].T.ravel() is x[n] read in F order."""
    return np.array([x[n].T.ravel() for n in range(x.shape[0])]), x.shape


def transpose_backward(dout, shape):
    return np.array([row.reshape(shape[1:][::-1]).T for row in dout])


# --- buggy -------------------------------------------------------------------------------


def f_order_backward(dout, shape):
    """Backward in F order after cnnlib's C-order forward: dx lands on the wrong cells."""
    return dout.reshape(shape, order="F")


def channels_last_backward(dout, shape):
    """Backward through channels-last: reshape to (N, H, W, C), then move C forward."""
    N, C, H, W = shape
    return dout.reshape(N, H, W, C).transpose(0, 3, 1, 2)


def mixed_forward(x):
    """x.reshape(-1, N), turned into (N, D): the shape is right, each row mixes samples."""
    N = x.shape[0]
    return x.reshape(-1, N).T, x.shape  # (N, D), each row a stride through the whole batch


def mixed_backward(dout, shape):
    return dout.T.reshape(shape)  # exactly undoes mixed_forward


def transposed_batch_forward(x):
    """x.T.reshape(N, -1): reverses ALL axes, batch included, before cutting rows."""
    return x.T.reshape(x.shape[0], -1), x.shape


def transposed_batch_backward(dout, shape):
    return dout.reshape(shape[::-1]).T  # its exact inverse


ORDER = (("order", "c order", "f order", "reshape", "layout"),)
SAMPLES = (("sample", "row", "batch", "mix"),)

CASES = [
    Learner("flatten", "pass", "ok-c-order", "reshape(N, -1)", forward=c_forward, backward=c_backward),
    Learner("flatten", "pass", "ok-f-order-pair", "forward and backward both F order per sample",
            forward=f_forward, backward=f_backward),
    Learner("flatten", "pass", "ok-list-comprehension", "np.stack of per-sample ravels, dict cache",
            forward=rows_forward, backward=rows_backward),
    Learner("flatten", "pass", "ok-transpose-per-sample", "x[n].T.ravel(): per-sample F order, consistent backward",
            forward=transpose_forward, backward=transpose_backward),
    Learner("flatten", "fail", "backward-f-order", "F-order backward after the C-order forward",
            backward=f_order_backward, hint_words=ORDER, keys=("flatten_order",)),
    Learner("flatten", "fail", "backward-channels-last", "backward via (N, H, W, C) and a transpose",
            backward=channels_last_backward,
            hint_words=(("channel", "order", "transpose", "nhwc", "(n, h, w, c)", "reshape"),),
            keys=("flatten_order", "flatten_four_axes")),
    Learner("flatten", "fail", "mixes-samples-reshape-minus1-N", "x.reshape(-1, N).T: every row takes from every sample",
            forward=mixed_forward, backward=mixed_backward, hint_words=SAMPLES, keys=("flatten_mixes_samples",)),
    Learner("flatten", "fail", "mixes-samples-x-T", "x.T.reshape(N, -1): the batch axis reversed with the rest",
            forward=transposed_batch_forward, backward=transposed_batch_backward, hint_words=SAMPLES,
            keys=("flatten_mixes_samples",)),
]


# ----------------------------------------------------------------------------------------
# Second set (issue 23), written from the lessons' stubs without reading cnnlib/check
# ----------------------------------------------------------------------------------------


def shape_assign_forward(x):
    """x.shape = (N, -1): no copy, no new view; the caller's own array is reshaped."""
    shape = x.shape
    x.shape = (shape[0], -1)
    return x, shape


def enumerate_forward(x):
    """A preallocated (N, D) array filled one sample at a time; the cache a dict."""
    N = len(x)
    out = np.empty((N, x[0].size))
    for n, sample in enumerate(x):
        out[n] = sample.flatten()
    return out, {"shape": x.shape}


def split_backward(dout, cache):
    """np.split of the flat buffer into N rows, then back to the cached shape."""
    return np.array(np.split(dout.ravel(), dout.shape[0])).reshape(cache["shape"])


CASES += [
    Learner("flatten", "fail", "forward-assigns-x-shape", "x.shape = (N, -1) on the caller's array",
            forward=shape_assign_forward, backward=c_backward,
            hint_words=(("in place", "in-place", "modif", "changed", "changes", "reshap", "copy"),),
            keys=("in_place",)),
    Learner("flatten", "pass", "ok-enumerate-split", "preallocated rows, np.split backward, dict cache",
            forward=enumerate_forward, backward=split_backward),
]
