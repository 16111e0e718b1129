"""A backward given the wrong cache says so (cnnlib/_caches.py).

Every backward, given another layer's cache, None, or a tuple made by hand with the wrong
length, kinds or shapes, raises a TypeError or ValueError that names the backward and the
forward whose cache it expected, never an unpacking, index or attribute error; and each
layer's loop and vectorized backward accept either forward's cache.
"""

import numpy as np
import pytest

import cnnlib as c

RNG = np.random.default_rng(17)
X4 = RNG.standard_normal((2, 3, 6, 6))
W4, B4 = RNG.standard_normal((4, 3, 3, 3)), RNG.standard_normal(4)
X2, W2, B2 = RNG.standard_normal((2, 5)), RNG.standard_normal((5, 3)), RNG.standard_normal(3)

# Each layer: its forwards (fast, and loop when there is one), their arguments, its backwards.
LAYERS = {
    "conv2d": ((c.conv2d_forward, c.conv2d_forward_naive), (X4, W4, B4), {"pad": 1},
               (c.conv2d_backward, c.conv2d_backward_naive)),
    "maxpool2d": ((c.maxpool2d_forward, c.maxpool2d_forward_naive), (X4,), {"size": 3, "stride": 2, "pad": 1},
                  (c.maxpool2d_backward, c.maxpool2d_backward_naive)),
    "avgpool2d": ((c.avgpool2d_forward, c.avgpool2d_forward_naive), (X4,), {"size": 2},
                  (c.avgpool2d_backward, c.avgpool2d_backward_naive)),
    "dense": ((c.dense_forward,), (X2, W2, B2), {}, (c.dense_backward,)),
    "relu": ((c.relu_forward,), (X4,), {}, (c.relu_backward,)),
    "flatten": ((c.flatten_forward,), (X4,), {}, ()),
}
BACKWARDS = [(layer, backward) for layer, spec in LAYERS.items() for backward in spec[3]]


def _caches(layer):
    forwards, args, kwargs, _ = LAYERS[layer]
    return [(forward.__name__, *forward(*args, **kwargs)) for forward in forwards]


@pytest.mark.parametrize("layer, backward", BACKWARDS, ids=[b.__name__ for _, b in BACKWARDS])
def test_another_layers_cache_is_refused_by_name(layer, backward):
    for other in LAYERS:
        if other == layer:
            continue
        for forward_name, out, cache in _caches(other):
            with pytest.raises(TypeError) as error:
                backward(np.zeros_like(out), cache)
            message = str(error.value)
            assert message.startswith(f"{backward.__name__} needs the cache {layer}_forward"), message
            assert f"looks like the cache of {forward_name.removesuffix('_naive')}" in message, message


HAND_MADE = [None, (), (1, 2, 3), [X4, (2, 2), (2, 2)], "cache", 3.0, (X4, W4, B4, 1, 1, None, None),
             {"x": X4}, (None, None, None), (None,) * 5, (None,) * 6]


@pytest.mark.parametrize("layer, backward", BACKWARDS, ids=[b.__name__ for _, b in BACKWARDS])
@pytest.mark.parametrize("cache", HAND_MADE, ids=[repr(h)[:20] for h in HAND_MADE])
def test_none_or_a_hand_made_cache_is_refused_by_name(layer, backward, cache):
    with pytest.raises(TypeError, match=rf"^{backward.__name__} needs the cache {layer}_forward"):
        backward(np.zeros((2, 4, 6, 6)), cache)


def _replace(cache, index, value):
    return cache[:index] + (value,) + cache[index + 1:]


# (layer, entry index, wrong value, what the message says about it)
WRONG_ENTRIES = [
    ("conv2d", 0, X4.tolist(), r"entry 0 \(x\) is a list of 2 entries, not an array"),
    ("conv2d", 1, W4[0], r"entry 1 \(w\) is 3-D \(shape \(3, 3, 3\)\), not 4-D"),
    ("conv2d", 2, 1.0, r"entry 2 \(b\) is a float, not an array"),
    ("conv2d", 3, 1, r"entry 3 \(stride\) is 1, not a \(vertical, horizontal\) pair of ints >= 1"),
    ("conv2d", 4, (1, 1.5), r"entry 4 \(pad\) is \(1, 1.5\), not a \(vertical, horizontal\) pair"),
    ("conv2d", 4, (-1, 0), r"entry 4 \(pad\) is \(-1, 0\), not a \(vertical, horizontal\) pair of ints >= 0"),
    ("conv2d", 5, "kept", r"entry 5 \(kept\) is a str, not None or a list of \(slice, matrix or None\) pairs"),
    ("conv2d", 5, [(0, None)], r"entry 5 \(kept\) is a list of 1 entries"),
    ("conv2d", 0, X4.astype(complex), r"entry 0 \(x\) is an array of dtype complex128, not of real numbers"),
    ("maxpool2d", 1, np.zeros((2, 3, 3, 3)), r"entry 1 \(argmax\) is an array of dtype float64, not of integers"),
    ("maxpool2d", 2, (3, True), r"entry 2 \(size\) is \(3, True\), not a \(vertical, horizontal\) pair"),
    ("avgpool2d", 1, (0, 2), r"entry 1 \(size\) is \(0, 2\), not a \(vertical, horizontal\) pair of ints >= 1"),
    ("dense", 1, W2.ravel(), r"entry 1 \(w\) is 1-D \(shape \(15,\)\), not 2-D"),
    ("relu", None, X4.astype(object), r"x is an array of dtype object, not of real numbers"),
]


@pytest.mark.parametrize("layer, index, value, says", WRONG_ENTRIES)
def test_an_entry_of_the_wrong_kind_is_named(layer, index, value, says):
    for backward in LAYERS[layer][3]:
        for _, out, cache in _caches(layer):
            bad = value if index is None else _replace(cache, index, value)
            with pytest.raises(TypeError, match=rf"^{backward.__name__} needs the cache {layer}_forward.*{says}"):
                backward(np.zeros_like(out), bad)


# (layer, a function of a cache giving a cache whose kinds are right but shapes do not fit, message)
MISMATCHES = [
    ("conv2d", lambda k: _replace(k, 1, W4[:, :2]), r"x has 3 channels \(shape \(2, 3, 6, 6\)\) but w expects 2"),
    ("conv2d", lambda k: _replace(k, 2, B4[:3]), r"w has 4 filters but b has shape \(3,\)"),
    ("conv2d", lambda k: _replace(k, 0, X4[:1]) if k[5] is not None else _replace(k, 5, [(slice(0, 1), None)]),
     r"kept's chunks .* do not cover the [12] images of x"),
    ("maxpool2d", lambda k: _replace(k, 1, k[1][:, :, :2]), r"argmax has shape \(2, 3, 2, 3\), not one per output \(2, 3, 3, 3\)"),
    ("maxpool2d", lambda k: _replace(k, 2, (9, 9)), r"pool window \(9, 9\) is larger than the padded input \(8, 8\)"),
    ("dense", lambda k: _replace(k, 1, W2[:4]), r"x has 5 features \(shape \(2, 5\)\) but w expects 4"),
    ("dense", lambda k: _replace(k, 2, B2[:2]), r"w has 3 outputs but b has shape \(2,\)"),
]


@pytest.mark.parametrize("layer, spoil, says", MISMATCHES)
def test_shapes_that_do_not_fit_together_are_a_value_error(layer, spoil, says):
    for backward in LAYERS[layer][3]:
        for _, out, cache in _caches(layer):
            with pytest.raises(ValueError, match=rf"^{backward.__name__} needs the cache {layer}_forward.*{says}"):
                backward(np.zeros_like(out), spoil(cache))


@pytest.mark.parametrize("layer", ["conv2d", "maxpool2d", "avgpool2d"])
def test_either_backward_accepts_either_forwards_cache(layer, rng):
    (fast, naive), _, kwargs, backwards = LAYERS[layer]
    args = LAYERS[layer][1]
    out, cache = fast(*args, **kwargs)
    dout = rng.standard_normal(out.shape)
    expected = backwards[1](dout, naive(*args, **kwargs)[1])
    for forward in (fast, naive):
        cache = forward(*args, **kwargs)[1]
        for backward in backwards:
            got = backward(dout, cache)
            for g, e in zip(got if isinstance(got, tuple) else (got,), expected if isinstance(expected, tuple) else (expected,)):
                np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)


class Subclass(np.ndarray):
    pass


def test_a_hand_made_cache_of_the_right_kinds_works():
    # What cnnlib stores is all a backward needs: a tuple built by hand with the same entries
    # (an ndarray subclass for w, integer argmax of any width) computes the same gradients.
    dout = RNG.standard_normal((2, 3))
    np.testing.assert_array_equal(c.dense_backward(dout, (X2, W2.view(Subclass), B2))[1],
                                  c.dense_backward(dout, c.dense_forward(X2, W2, B2)[1])[1])
    out, (x, argmax, size, stride, pad) = c.maxpool2d_forward(X4, size=2)
    dout = RNG.standard_normal(out.shape)
    np.testing.assert_array_equal(c.maxpool2d_backward(dout, (x, argmax.astype(np.int64), size, stride, pad)),
                                  c.maxpool2d_backward_naive(dout, (x, argmax, size, stride, pad)))
    np.testing.assert_array_equal(c.relu_backward(X4, X4), X4 * (X4 > 0))


def test_layers_still_run_forward_then_backward():
    # The Layer classes hand their backward their own forward's cache: nothing to refuse.
    for layer in [c.Conv2D(3, 4, 3, pad=1), c.MaxPool2D(2), c.AvgPool2D(2), c.ReLU(), c.Flatten()]:
        out = layer.forward(X4)
        assert layer.backward(np.ones_like(out)).shape == X4.shape


def test_flatten_backward_refuses_other_caches_too():
    # flatten.py checks its own cache (a shape); with it, every backward in cnnlib says so.
    for other in LAYERS:
        if other == "flatten":
            continue
        for _, out, cache in _caches(other):
            with pytest.raises(TypeError, match=r"^flatten_backward needs the cache flatten_forward"):
                c.flatten_backward(np.zeros((2, 108)), cache)
    for cache in HAND_MADE:
        if isinstance(cache, tuple) and all(isinstance(v, int) for v in cache):
            continue  # a shape, flatten's own kind of cache (ValueError if it does not fit dout)
        with pytest.raises((TypeError, ValueError), match=r"^flatten_backward"):
            c.flatten_backward(np.zeros((2, 108)), cache)
