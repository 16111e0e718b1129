"""Input checks shared by every layer.

Each forward function runs its arguments through these helpers before touching them, so a
learner who passes the wrong thing gets a message that names the argument, its shape and
what was expected, instead of a broadcast that silently computes nonsense.
"""

import numbers

import numpy as np


def as_float_array(x, name):
    """Return `x` as a float ndarray, keeping float32 and float64 as they are.

    Integers and booleans become float64 (pixel values arrive as uint8 more often than not);
    other floats (float16, longdouble) also become float64, so every layer computes in one
    of the two precisions the tests cover.
    """
    arr = np.asarray(x)
    if arr.dtype in (np.float32, np.float64):
        return arr
    if arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.float64)
    if np.issubdtype(arr.dtype, np.floating):
        return arr.astype(np.float64)
    raise TypeError(f"{name} must hold real numbers, got an array of dtype {arr.dtype}")


def check_ndim(arr, ndim, name, layout):
    """Raise ValueError unless `arr` has `ndim` axes; `layout` names them, e.g. '(N, C, H, W)'."""
    if arr.ndim != ndim:
        raise ValueError(
            f"{name} must be {ndim}-D {layout}, got shape {arr.shape} ({arr.ndim}-D)"
        )


def check_shape(arr, shape, name):
    """Raise ValueError unless `arr.shape == shape` exactly (no broadcasting)."""
    if tuple(arr.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(arr.shape)}")


def positive_int(value, name):
    """Return `value` as an int after checking it is an int >= 1 (a count: channels, epochs)."""
    # bool is an int subclass; epochs=True is always a mistake.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def as_flag(value, name):
    """Return `value` as a bool after checking it is one (True/False, NumPy's bool too)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def as_pair(value, name, *, minimum):
    """Turn an int or an (int, int) pair into a (vertical, horizontal) tuple of ints >= minimum."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (vertical, horizontal), got {value!r}")
        pair = tuple(value)
    else:
        pair = (value, value)
    for v in pair:
        # bool is an int subclass; stride=True is always a mistake.
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
        if v < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def output_hw(hw, kernel, stride, pad, what):
    """Output height and width, (H + 2*pad - KH) // stride + 1 per axis, checked.

    `hw`, `kernel`, `stride` and `pad` are (vertical, horizontal) pairs; `what` names the
    window ("kernel", "pool window") for the error message.
    """
    padded = (hw[0] + 2 * pad[0], hw[1] + 2 * pad[1])
    if kernel[0] > padded[0] or kernel[1] > padded[1]:
        raise ValueError(
            f"{what} {kernel} is larger than the padded input {padded} "
            f"(input H, W = {tuple(hw)}, pad = {pad})"
        )
    return (padded[0] - kernel[0]) // stride[0] + 1, (padded[1] - kernel[1]) // stride[1] + 1


def check_dout(dout, cache_shape, name="dout"):
    """Return `dout` as a float array after checking it has exactly the forward output's shape."""
    dout = as_float_array(dout, name)
    check_shape(dout, cache_shape, name)
    return dout
