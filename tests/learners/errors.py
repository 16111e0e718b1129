"""Learners whose function does not run: a stub, and one line that raises."""

import numpy as np

from . import Learner


def stub_relu_backward(dout, cache):
    # Your code here.
    raise NotImplementedError("relu_backward: not written yet")


def stub_softmax_cross_entropy(logits, y):
    # Your code here.
    raise NotImplementedError("softmax_cross_entropy: not written yet")


def typo_dense_backward(dout, cache):
    """W for w on one line: NameError."""
    x, w, b = cache
    dx = dout @ W.T  # noqa: F821 - the learner's typo, on purpose
    return dx, x.T @ dout, dout.sum(axis=0)


def index_error_flatten_forward(x):
    """x.shape[4] of a 4-d array: IndexError."""
    N, C, H = x.shape[0], x.shape[1], x.shape[2]
    return x.reshape(N, C * H * x.shape[4]), x.shape


def c_backward(dout, shape):
    return dout.reshape(shape)


RAISES = (("nameerror", "indexerror", "error", "raise", "exception", "crash"),)

CASES = [
    Learner("relu", "not written", "stub", "the generated stub", backward=stub_relu_backward),
    Learner("softmax_cross_entropy", "not written", "stub", "the generated stub", fn=stub_softmax_cross_entropy),
    Learner("dense", "fail", "name-error", "W instead of w on one line", backward=typo_dense_backward,
            hint_words=RAISES),
    Learner("flatten", "fail", "index-error", "x.shape[4] of a 4-d array", forward=index_error_flatten_forward,
            backward=c_backward, hint_words=RAISES),
]
