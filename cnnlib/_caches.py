"""Checks that a backward was given the cache its own layer's forward returned.

A cache is a plain tuple, so nothing stops a learner from passing a backward another
layer's cache, None, or a tuple put together by hand. Unchecked, that fails deep inside the
backward with an unpacking, index or attribute error that names none of what went wrong, or
worse, computes something. Each backward runs its cache through `check_cache` first: it
looks only at the cache's length, the kinds of its entries (arrays and their number of axes,
(vertical, horizontal) pairs of ints) and whether their shapes fit together, a few
microseconds whatever the batch size, and it raises a TypeError (wrong kinds) or a
ValueError (shapes that do not fit) naming the layer whose cache was expected and, when the
cache is another layer's, which one.

The loop and vectorized versions of a layer share one cache layout, so either backward
accepts either forward's cache.
"""

import numbers

import numpy as np


def _array(ndim):
    def check(value):
        if not isinstance(value, np.ndarray):
            return f"is {_describe(value)}, not an array"
        if value.dtype.kind not in "biuf":
            return f"is an array of dtype {value.dtype}, not of real numbers"
        if ndim is not None and value.ndim != ndim:
            return f"is {value.ndim}-D (shape {value.shape}), not {ndim}-D"
        return None
    return check


def _int(v):
    # type(v) is int first: an isinstance check against the Integral ABC costs ten times more,
    # and runs on every backward call.
    return type(v) is int or isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _pair(minimum):
    def check(value):
        if isinstance(value, tuple) and len(value) == 2:
            a, b = value
            if _int(a) and _int(b) and a >= minimum and b >= minimum:
                return None
        return f"is {value!r}, not a (vertical, horizontal) pair of ints >= {minimum}"
    return check


def _kept(value):
    # The fast forward's chunks of the batch; the loop version stores None.
    if value is None:
        return None
    if not isinstance(value, list) or not all(
            isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], slice)
            and (pair[1] is None or isinstance(pair[1], np.ndarray)) for pair in value):
        return f"is {_describe(value)}, not None or a list of (slice, matrix or None) pairs"
    return None


def _argmax(value):
    problem = _array4(value)
    if problem is None and value.dtype.kind not in "iu":
        return f"is an array of dtype {value.dtype}, not of integers"
    return problem


_array4 = _array(4)

# For each layer: its forward's name(s), the names of its cache's entries, and their checks.
_LAYOUTS = {
    "conv2d": ("conv2d_forward (or conv2d_forward_naive)", "x, w, b, stride, pad, kept",
               (_array(4), _array(4), _array(1), _pair(1), _pair(0), _kept)),
    "maxpool2d": ("maxpool2d_forward (or maxpool2d_forward_naive)", "x, argmax, size, stride, pad",
                  (_array(4), _argmax, _pair(1), _pair(1), _pair(0))),
    "avgpool2d": ("avgpool2d_forward (or avgpool2d_forward_naive)", "x, size, stride",
                  (_array(4), _pair(1), _pair(1))),
    "dense": ("dense_forward", "x, w, b", (_array(2), _array(2), _array(1))),
}


def _describe(value):
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        return f"a {value.ndim}-D array of shape {value.shape}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} entries"
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _problem(layer, cache):
    """What is wrong with the kinds of `cache`'s entries for `layer`, or None."""
    _, names, checks = _LAYOUTS[layer]
    if not isinstance(cache, tuple) or len(cache) != len(checks):
        return f"got {_describe(cache)}"
    for index in range(len(checks)):
        problem = checks[index](cache[index])
        if problem:
            return f"got a tuple whose entry {index} ({names.split(', ')[index]}) {problem}"
    return None


def _whose(cache):
    """The forward whose cache `cache` looks like, for the error message, or None."""
    if isinstance(cache, np.ndarray):
        return "relu_forward" if _array(None)(cache) is None else None
    if isinstance(cache, tuple) and cache and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in cache):
        return "flatten_forward (an input's shape)"
    for layer, (forward, _, _) in _LAYOUTS.items():
        if _problem(layer, cache) is None:
            return forward.split(" ")[0]
    return None


def _refuse(layer, backward, what):
    forward, names, _ = _LAYOUTS[layer] if layer in _LAYOUTS else ("relu_forward", "x", ())
    layout = f"the tuple ({names})" if layer in _LAYOUTS else "the input array x"
    return f"{backward} needs the cache {forward} returned, {layout}; {what}"


def check_cache(layer, cache, backward=None):
    """Return `cache` after checking it has the layout `layer`'s forward gives its cache.

    Parameters
    ----------
    layer : str, one of "conv2d", "maxpool2d", "avgpool2d", "dense", "relu".
    cache : what the backward was given.
    backward : str, the backward's name for the messages, default layer + "_backward".

    Returns
    -------
    cache, unchanged.

    Raises
    ------
    TypeError
        If `cache` is not such a tuple (None, another layer's cache, a tuple of the wrong
        length or with an entry of the wrong kind). The message names the layer and, when
        `cache` is another layer's, whose.
    ValueError
        If its arrays' shapes do not fit together (w expecting another number of channels
        than x has, an argmax not one per output).
    """
    if layer == "relu":
        problem = _array(None)(cache)
        if problem:
            problem = "got " + _describe(cache) if not isinstance(cache, np.ndarray) else "x " + problem
    else:
        problem = _problem(layer, cache)
    if problem:
        whose = _whose(cache)
        if whose and whose != f"{layer}_forward":
            problem += f", which looks like the cache of {whose}"
        raise TypeError(_refuse(layer, backward or f"{layer}_backward", problem))
    mismatch = _mismatch(layer, cache)
    if mismatch:
        raise ValueError(_refuse(layer, backward or f"{layer}_backward", f"got one whose {mismatch}"))
    return cache


def _mismatch(layer, cache):
    """How the shapes of a cache of the right kinds fail to fit together, or None."""
    if layer == "conv2d":
        x, w, b, _, _, kept = cache
        if w.shape[1] != x.shape[1]:
            return f"x has {x.shape[1]} channels (shape {x.shape}) but w expects {w.shape[1]} (shape {w.shape})"
        if b.shape[0] != w.shape[0]:
            return f"w has {w.shape[0]} filters but b has shape {b.shape}"
        if kept is not None:
            starts = [chunk.start for chunk, _ in kept]
            stops = [chunk.stop for chunk, _ in kept]
            if not kept or starts[0] != 0 or stops[-1] != x.shape[0] or starts[1:] != stops[:-1]:
                return f"kept's chunks {[(a, z) for a, z in zip(starts, stops)]} do not cover the {x.shape[0]} images of x"
    elif layer == "maxpool2d":
        x, argmax, size, stride, pad = cache
        padded = (x.shape[2] + 2 * pad[0], x.shape[3] + 2 * pad[1])
        if size[0] > padded[0] or size[1] > padded[1]:
            return f"pool window {size} is larger than the padded input {padded}"
        out_hw = ((padded[0] - size[0]) // stride[0] + 1, (padded[1] - size[1]) // stride[1] + 1)
        if argmax.shape != (*x.shape[:2], *out_hw):
            return f"argmax has shape {argmax.shape}, not one per output {(*x.shape[:2], *out_hw)}"
    elif layer == "dense":
        x, w, b = cache
        if x.shape[1] != w.shape[0]:
            return f"x has {x.shape[1]} features (shape {x.shape}) but w expects {w.shape[0]} (shape {w.shape})"
        if b.shape[0] != w.shape[1]:
            return f"w has {w.shape[1]} outputs but b has shape {b.shape}"
    return None
