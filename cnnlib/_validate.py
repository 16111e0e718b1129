"""Argument validation shared by every layer (cnnlib.check, the checks of a learner's own
code, is something else).

Each forward function runs its arguments through these helpers before touching them, so a
learner who passes the wrong thing gets a message that names the argument, its shape and
what was expected, instead of a broadcast that silently computes nonsense.
"""

import functools
import numbers
import os

import numpy as np


def as_array(value, name):
    """Return `value` as an ndarray, as np.asarray does, or say which argument is ragged.

    Parameters
    ----------
    value : array_like
    name : str, the argument's name for the error message.

    Returns
    -------
    ndarray, of whatever dtype np.asarray gives.

    Raises
    ------
    ValueError
        For a ragged nested list (rows of different lengths), which is no array at all.
    """
    try:
        return np.asarray(value)
    except ValueError as error:
        # NumPy's own message ("setting an array element with a sequence ... inhomogeneous
        # shape") names no argument; the learner needs to know which one is ragged. Any other
        # error (an object whose __array__ fails) is not about rows, and goes up as it is.
        if "sequence" not in str(error):
            raise
        raise ValueError(
            f"{name} is a nested list whose rows have different lengths, so it is not an array: "
            f"every row at each depth must be as long as the others ({error})"
        ) from None


def as_float_array(x, name):
    """Return `x` as a float ndarray, keeping float32 and float64 as they are.

    Parameters
    ----------
    x : array_like of real numbers: floats, integers or booleans.
    name : str, the argument's name for the error message.

    Returns
    -------
    ndarray of dtype float32 or float64. float32 stays float32 and float64 stays float64
    whatever their byte order (a big-endian array read from a file comes back in the
    machine's own); integers and booleans become float64 (pixel values arrive as uint8 more
    often than not), and so do other floats (float16, longdouble), so every layer computes
    in one of the two precisions the tests cover.

    Raises
    ------
    TypeError
        For anything that is not a real number: complex, datetime64 and timedelta64 (NumPy
        counts timedeltas as integers, but a duration is not a pixel), strings, bytes,
        structured records and Python objects.
    ValueError
        For a ragged nested list (rows of different lengths), which is no array at all.
    """
    arr = as_array(x, name)
    if arr.dtype in (np.float32, np.float64):  # the normal path: nothing to convert
        return arr
    kind = arr.dtype.kind
    if kind == "f" and arr.dtype.itemsize in (4, 8):
        return arr.astype(arr.dtype.newbyteorder("="))
    if kind in "biuf":
        return arr.astype(np.float64)
    what = KIND_NAMES.get(kind, "values that are not numbers")
    raise TypeError(f"{name} must hold real numbers, got an array of dtype {arr.dtype} ({what})")


# What each NumPy dtype kind that is not a real number holds, for error messages.
KIND_NAMES = {
    "c": "complex numbers",
    "M": "dates and times",
    "m": "time durations",
    "U": "strings",
    "S": "bytes",
    "O": "Python objects",
    "V": "structured records",
}


def check_ndim(arr, ndim, name, layout):
    """Raise ValueError unless `arr` has `ndim` axes, none of them empty but the batch axis.

    Parameters
    ----------
    arr : ndarray
    ndim : int
    name : str, the argument's name for the error message.
    layout : str naming the axes, e.g. '(N, C, H, W)'. The axis named N, the batch, may be
        empty (an empty batch is a batch all the same); any other of length 0 is a
        degenerate layer: no channels, no filters, no features or an empty kernel, which
        compute nothing useful (PyTorch refuses them too).
    """
    if arr.ndim != ndim:
        raise ValueError(
            f"{name} must be {ndim}-D {layout}, got shape {arr.shape} ({arr.ndim}-D)"
        )
    if 0 in arr.shape:
        axes = [axis.strip() for axis in layout.strip("()").split(",") if axis.strip()]
        empty = [axis for axis, length in zip(axes, arr.shape) if length == 0 and axis != "N"]
        if empty:
            raise ValueError(
                f"{name} has shape {arr.shape}, laid out {layout}: "
                + ", ".join(f"{axis} = 0" for axis in empty)
                + "; every axis but the batch N must be at least 1 (a layer needs channels, "
                "filters, features and a kernel of at least 1 x 1)"
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

    Parameters
    ----------
    hw, kernel, stride, pad : (vertical, horizontal) pairs of ints.
    what : str naming the window ("kernel", "pool window") for the error message.

    Returns
    -------
    (H', W') : tuple of int.

    Raises
    ------
    ValueError
        If the window is empty or larger than the padded input, or if one padded plane
        (one channel of one image) could not fit in this machine's memory even as float32:
        a pad or image that large is a slip (pad=2**40), and is refused here, before any
        array is allocated, rather than by NumPy's allocator halfway through a layer.
    """
    if kernel[0] < 1 or kernel[1] < 1:
        raise ValueError(f"{what} {tuple(kernel)} is empty: it must be at least 1 x 1")
    padded = (hw[0] + 2 * pad[0], hw[1] + 2 * pad[1])
    if kernel[0] > padded[0] or kernel[1] > padded[1]:
        raise ValueError(
            f"{what} {kernel} is larger than the padded input {padded} "
            f"(input H, W = {tuple(hw)}, pad = {pad})"
        )
    values = padded[0] * padded[1]  # Python ints: no overflow however absurd the pad
    if values * 4 > _memory_bytes():
        raise ValueError(
            f"the padded input would be {padded[0]} x {padded[1]} = {values:.3g} values per "
            f"channel of each image (input H, W = {tuple(hw)}, pad = {pad}), "
            f"{values * 4 / 2**30:.3g} GiB even as float32, more than this machine's "
            f"{_memory_bytes() / 2**30:.3g} GiB of memory"
        )
    return (padded[0] - kernel[0]) // stride[0] + 1, (padded[1] - kernel[1]) // stride[1] + 1


@functools.cache
def _memory_bytes():
    """This machine's physical memory in bytes, or 2**63 where the OS does not tell."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # Windows has no sysconf
        return 2**63


def as_shape(value, name):
    """Return `value` as a tuple of ints >= 0 after checking it is one (an array's shape).

    Parameters
    ----------
    value : sequence of ints, NumPy's integers included.
    name : str, the argument's name for the error message.

    Raises
    ------
    TypeError
        If `value` is not a sequence, or an entry is not an int: a float such as 2.5 is
        refused, not truncated, and so is 2.0 (a size computed with / rather than //).
    ValueError
        If an entry is negative.
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list, np.ndarray)):
        raise TypeError(f"{name} must be a tuple of ints, got {value!r}")
    shape = tuple(value.tolist() if isinstance(value, np.ndarray) else value)
    for size in shape:
        # bool is an int subclass; a size of True is always a mistake.
        if isinstance(size, bool) or not isinstance(size, numbers.Integral):
            raise TypeError(f"{name} must be a tuple of ints, got {value!r} ({size!r} is not an int)")
        if size < 0:
            raise ValueError(f"{name} must hold sizes >= 0, got {value!r}")
    return tuple(int(size) for size in shape)


def check_dout(dout, cache_shape, name="dout"):
    """Return `dout` as a float array after checking it has exactly the forward output's shape."""
    dout = as_float_array(dout, name)
    check_shape(dout, cache_shape, name)
    return dout


class NotAMethod:
    """model.fit(...), Keras' way: an AttributeError that names the function to call instead."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, model, owner=None):
        raise AttributeError(f"{(owner or type(model)).__name__} has no {self.name} method: {self.name} is a "
                             f"function that takes the model, cnnlib.{self.name}(model, x, ...)")
