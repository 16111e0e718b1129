"""Learners whose function does not run: a stub, and one line that raises."""

import numpy as np

from . import NONE, Learner


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
            hint_words=RAISES, keys=("raises",)),
    Learner("flatten", "fail", "index-error", "x.shape[4] of a 4-d array", forward=index_error_flatten_forward,
            backward=c_backward, hint_words=RAISES, keys=("raises",)),
]


# ----------------------------------------------------------------------------------------
# Second set (issue 23), written from the lessons' stubs without reading cnnlib/check
# ----------------------------------------------------------------------------------------

import functools  # noqa: E402 - the second set's imports, kept next to it
import sys  # noqa: E402
import time  # noqa: E402


def exits_relu_forward(x):
    """Validates its input the way a script does: sys.exit on anything but a 2-d batch."""
    if x.ndim != 2:
        sys.exit("relu_forward: expected a 2-d array (N, D)")
    return np.maximum(x, 0), x


class ShapeMismatch(Exception):
    """A learner's own exception whose message reads attributes __init__ never set."""

    def __init__(self, x, w):
        super().__init__()
        self.shapes = (x.shape, w.shape)

    def __str__(self):
        return f"x {self.x_shape} does not fit w {self.w_shape}"  # AttributeError


def bad_message_dense_forward(x, w, b):
    """Checks the wrong axis of w and raises its own exception, whose str() itself raises."""
    if x.shape[1] != w.shape[1]:
        raise ShapeMismatch(x, w)
    return x @ w + b, (x, w, b)


def timed(fn):
    """A timing decorator that forgets to return the function's result."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        fn(*args, **kwargs)
        wrapper.seconds = time.perf_counter() - start
    return wrapper


@timed
def timed_relu_forward(x):
    return np.maximum(x, 0), x


def first_try_relu_backward(dout, cache):
    """The learner's first attempt, kept around: the mask returned without dout."""
    return (cache > 0).astype(float)


def fixed_relu_backward(dout, cache):
    return np.where(cache > 0, dout, 0.0)


# The learner copied the first attempt's name and docstring onto the fix: the fix is what runs.
functools.update_wrapper(fixed_relu_backward, first_try_relu_backward)

CASES += [
    Learner("relu", "fail", "forward-calls-sys-exit", "sys.exit() on a 4-d input", forward=exits_relu_forward,
            hint_words=(("exit", "systemexit"),), keys=("exits",)),
    Learner("dense", "fail", "exception-whose-str-raises", "its own exception, whose __str__ raises",
            forward=bad_message_dense_forward, hint_words=(("shapemismatch", "raise", "exception", "error"),),
            keys=("raises",)),
    Learner("relu", "fail", "decorator-drops-result", "a functools.wraps timing decorator returning None",
            forward=timed_relu_forward, hint_words=NONE, keys=("returns_none",)),
    Learner("relu", "pass", "ok-fix-with-old-metadata", "a correct backward carrying an old attempt's __wrapped__",
            backward=fixed_relu_backward),
]
