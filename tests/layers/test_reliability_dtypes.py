"""dtypes and shapes at the edges: byte orders, values that are not numbers, sizes that are not
ints, layers with nothing in them, and sizes no machine could hold."""

import re
import tracemalloc

import numpy as np
import pytest

import cnnlib as c
from cnnlib import AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential


class MyReLU:
    """A learner's own layer: no output_shape, so summary runs its forward."""

    def __init__(self):
        self.params, self.grads, self.cache = {}, {}, None

    def forward(self, x):
        out, self.cache = c.relu_forward(x)
        return out

    def backward(self, dout):
        return c.relu_backward(dout, self.cache)


def forwards(x, w, b, wd, bd):
    """Every pure forward, as name -> call taking (x, w, b, wd, bd) in the given dtypes."""
    return {
        "conv": lambda: c.conv2d_forward(x, w, b, pad=1),
        "conv naive": lambda: c.conv2d_forward_naive(x, w, b, pad=1),
        "maxpool": lambda: c.maxpool2d_forward(x, size=2),
        "maxpool naive": lambda: c.maxpool2d_forward_naive(x, size=2),
        "avgpool": lambda: c.avgpool2d_forward(x, size=2),
        "avgpool naive": lambda: c.avgpool2d_forward_naive(x, size=2),
        "dense": lambda: c.dense_forward(x[:, 0, 0], wd, bd),
        "relu": lambda: c.relu_forward(x),
        "flatten": lambda: c.flatten_forward(x),
    }


BACKWARDS = {"conv": c.conv2d_backward, "conv naive": c.conv2d_backward_naive, "maxpool": c.maxpool2d_backward,
             "maxpool naive": c.maxpool2d_backward_naive, "avgpool": c.avgpool2d_backward,
             "avgpool naive": c.avgpool2d_backward_naive, "dense": c.dense_backward,
             "relu": c.relu_backward, "flatten": c.flatten_backward}


def arrays(rng, dtype):
    return (rng.standard_normal((2, 3, 6, 5)).astype(dtype), rng.standard_normal((4, 3, 3, 2)).astype(dtype),
            rng.standard_normal(4).astype(dtype), rng.standard_normal((5, 2)).astype(dtype),
            rng.standard_normal(2).astype(dtype))


# --- byte order ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BACKWARDS)
@pytest.mark.parametrize("dtype, expected", [(">f4", np.float32), ("<f4", np.float32), (">f8", np.float64)])
def test_a_float_keeps_its_precision_whatever_its_byte_order(rng, name, dtype, expected):
    native = arrays(rng, expected)
    out_native, cache_native = forwards(*native)[name]()
    out, cache = forwards(*(a.astype(dtype) for a in native))[name]()
    assert out.dtype == expected and out.dtype.isnative
    np.testing.assert_array_equal(out, out_native)
    dout = rng.standard_normal(out.shape).astype(dtype)
    grads = BACKWARDS[name](dout, cache)
    grads_native = BACKWARDS[name](dout.astype(expected), cache_native)
    for g, g_native in zip(*(gs if isinstance(gs, tuple) else (gs,) for gs in (grads, grads_native))):
        assert g.dtype == expected
        np.testing.assert_array_equal(g, g_native)


def test_softmax_cross_entropy_keeps_float32_whatever_its_byte_order():
    logits = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    for dtype in (">f4", "<f4"):
        _, dlogits = c.softmax_cross_entropy(logits.astype(dtype), np.array([0, 2]))
        assert dlogits.dtype == np.float32


# --- values that are not real numbers --------------------------------------------------------


NOT_NUMBERS = {
    "complex64": (np.complex64, "complex numbers"),
    "complex128": (np.complex128, "complex numbers"),
    "datetime": ("M8[s]", "dates and times"),
    "timedelta": ("m8[ms]", "time durations"),  # NumPy counts it as an integer
    "str": ("U3", "strings"),
    "bytes": ("S3", "bytes"),
    "object": (object, "Python objects"),  # even holding floats
    "record": ([("r", "f8")], "structured records"),
}


def as_kind(a, dtype):
    if np.dtype(dtype).kind in "US":
        return a.astype("U3").astype(dtype)
    if np.dtype(dtype).kind == "V":
        out = np.zeros(a.shape, dtype)
        out["r"] = a
        return out
    if np.dtype(dtype).kind in "Mm":
        return a.astype(np.int64).astype(dtype)
    return a.astype(dtype)


SLOTS = [(name, slot) for name in BACKWARDS for slot in ("x", "w", "b", "dout")
         if slot in ("x", "dout") or name in ("conv", "conv naive", "dense")]


@pytest.mark.parametrize("kind", NOT_NUMBERS)
@pytest.mark.parametrize("name, slot", SLOTS)
def test_values_that_are_not_real_numbers_are_refused_with_a_type_error(rng, kind, name, slot):
    dtype, what = NOT_NUMBERS[kind]
    good = list(arrays(rng, np.float64))
    if slot == "dout":
        out, cache = forwards(*good)[name]()
        with pytest.raises(TypeError, match=rf"dout must hold real numbers, got an array of dtype .*\({what}\)"):
            BACKWARDS[name](as_kind(out, dtype), cache)
        return
    i = {"x": 0, "w": 1, "b": 2}[slot] + (2 if name == "dense" and slot != "x" else 0)
    good[i] = as_kind(good[i], dtype)
    with pytest.raises(TypeError, match=rf"{slot} must hold real numbers, got an array of dtype .*\({what}\)"):
        forwards(*good)[name]()


@pytest.mark.parametrize("kind", NOT_NUMBERS)
def test_logits_that_are_not_real_numbers_are_refused(kind):
    dtype, what = NOT_NUMBERS[kind]
    with pytest.raises(TypeError, match=rf"logits must hold real numbers.*\({what}\)"):
        c.softmax_cross_entropy(as_kind(np.zeros((2, 3)), dtype), np.array([0, 1]))


@pytest.mark.parametrize("layer", [Conv2D(3, 2, 3, rng=0), MaxPool2D(2), Dense(5, 2, rng=0), ReLU(), Flatten()])
def test_layers_refuse_timedeltas_too(layer):
    shape = (2, 5) if isinstance(layer, Dense) else (2, 3, 4, 4)
    with pytest.raises(TypeError, match=r"x must hold real numbers, got an array of dtype timedelta64\[s\]"):
        layer.forward(np.zeros(shape, "m8[s]"))


# --- sizes that are not ints ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, error, match",
    [
        ((2, 2.5, 2), TypeError, r"shape must be a tuple of ints, got \(2, 2\.5, 2\) \(2\.5 is not an int\)"),
        ((2, 2.0, 4), TypeError, r"2\.0 is not an int"),  # a size computed with / rather than //
        ((2, np.float64(8.0)), TypeError, r"is not an int"),
        ((2, True, 8), TypeError, r"True is not an int"),
        ((2, "8"), TypeError, r"'8' is not an int"),
        ("28", TypeError, r"shape must be a tuple of ints, got '28'"),
        (None, TypeError, r"got None"),
        (8, TypeError, r"got 8"),
        ((2, -1, 4), ValueError, r"sizes >= 0, got \(2, -1, 4\)"),  # reshape would have guessed -1
        ((2,), ValueError, r"k >= 1"),
    ],
)
def test_unflatten_refuses_sizes_that_are_not_ints(shape, error, match):
    with pytest.raises(error, match=match):
        c.unflatten(np.zeros((2, 8)), shape)


@pytest.mark.parametrize("shape", [(2, 2, 4), [2, 8], (np.int64(2), np.int32(2), np.uint8(4)), np.array([2, 4, 2])])
def test_unflatten_takes_numpys_ints_and_lists(shape):
    assert c.unflatten(np.arange(16.0).reshape(2, 8), shape).shape == tuple(int(s) for s in shape)


@pytest.mark.parametrize("model", [Sequential(Flatten(), Dense(4, 2, rng=0)),
                                   Sequential(MyReLU())],
                         ids=["cnnlib layers", "own layers"])
@pytest.mark.parametrize("input_shape", [(4.0,), (2, 2.0), (True, 4), "4"])
def test_summary_refuses_sizes_that_are_not_ints(model, input_shape):
    with pytest.raises(TypeError, match=r"input_shape must be a tuple of ints"):
        model.summary(input_shape)


@pytest.mark.parametrize("cache", [None, (np.zeros((2, 3)), 4), "shape", (2.0, 3.0), (2,),
                                   c.relu_forward(np.zeros((2, 3)))[1]])
def test_flatten_backward_says_which_cache_it_expected(cache):
    with pytest.raises(TypeError, match=r"flatten_backward needs the cache flatten_forward returned"):
        c.flatten_backward(np.zeros((2, 3)), cache)


# --- degenerate layers ------------------------------------------------------------------------------


DEGENERATE = [
    ("conv", lambda f: f(np.zeros((2, 0, 4, 4)), np.zeros((3, 0, 2, 2)), np.zeros(3)), r"x has shape \(2, 0, 4, 4\), laid out \(N, C, H, W\): C = 0"),
    ("conv", lambda f: f(np.zeros((2, 1, 4, 4)), np.zeros((0, 1, 2, 2)), np.zeros(0)), r"w has shape \(0, 1, 2, 2\), laid out \(F, C, KH, KW\): F = 0"),
    ("conv", lambda f: f(np.zeros((2, 1, 4, 4)), np.zeros((3, 1, 0, 0)), np.zeros(3)), r"KH = 0, KW = 0"),
    ("conv", lambda f: f(np.zeros((2, 1, 4, 4)), np.zeros((3, 1, 2, 0)), np.zeros(3), pad=1), r"KW = 0"),
    ("conv", lambda f: f(np.zeros((2, 1, 0, 4)), np.zeros((3, 1, 1, 1)), np.zeros(3), pad=1), r"H = 0"),
    ("pool", lambda f: f(np.zeros((2, 0, 4, 4))), r"x has shape \(2, 0, 4, 4\), laid out \(N, C, H, W\): C = 0"),
    ("pool", lambda f: f(np.zeros((2, 3, 4, 0))), r"W = 0"),
    ("dense", lambda f: f(np.zeros((2, 0)), np.zeros((0, 3)), np.zeros(3)), r"w has shape \(0, 3\), laid out \(D, M\): D = 0"),
    ("dense", lambda f: f(np.zeros((2, 3)), np.zeros((3, 0)), np.zeros(0)), r"M = 0"),
    ("loss", lambda f: f(np.zeros((2, 0)), np.array([0, 0])), r"logits has shape \(2, 0\), laid out \(N, K\): K = 0"),
]
FUNCTIONS = {"conv": [c.conv2d_forward, c.conv2d_forward_naive],
             "pool": [c.maxpool2d_forward, c.maxpool2d_forward_naive, c.avgpool2d_forward, c.avgpool2d_forward_naive],
             "dense": [c.dense_forward], "loss": [c.softmax_cross_entropy]}


@pytest.mark.parametrize("family, call, match", DEGENERATE)
def test_a_layer_with_nothing_in_it_is_refused(family, call, match):
    for function in FUNCTIONS[family]:
        with pytest.raises(ValueError, match=match + r".*every axis but the batch N must be at least 1"):
            call(function)


@pytest.mark.parametrize("make", [lambda: Conv2D(0, 2, 3), lambda: Conv2D(2, 0, 3), lambda: Conv2D(2, 2, 0),
                                  lambda: Conv2D(2, 2, (3, 0)), lambda: Dense(0, 2), lambda: Dense(2, 0),
                                  lambda: MaxPool2D(0), lambda: AvgPool2D((2, 0))])
def test_a_layer_object_with_nothing_in_it_is_refused(make):
    with pytest.raises(ValueError, match=r"must be >= 1, got"):
        make()


def test_an_empty_batch_is_still_a_batch(rng):
    x, w, b, wd, bd = arrays(rng, np.float64)
    for name, forward in forwards(x[:0], w, b, wd, bd).items():
        out, cache = forward()
        assert out.shape[0] == 0, name
        grads = BACKWARDS[name](np.zeros(out.shape), cache)
        dx = grads[0] if isinstance(grads, tuple) else grads
        assert dx.shape[0] == 0, name


# --- sizes no machine could hold --------------------------------------------------------------------


ABSURD = [
    lambda x: c.conv2d_forward(x, np.zeros((1, 1, 2, 2)), np.zeros(1), pad=2**40),
    lambda x: c.conv2d_forward_naive(x, np.zeros((1, 1, 2, 2)), np.zeros(1), pad=(0, 2**40)),
    lambda x: c.conv2d_forward(x[:0], np.zeros((1, 1, 2, 2)), np.zeros(1), pad=2**22),  # even for no image
    lambda x: c.maxpool2d_forward(x, size=2**41, pad=2**40),
    lambda x: c.maxpool2d_forward_naive(x, size=(2**41, 2), pad=(2**40, 1)),
    lambda x: Conv2D(1, 1, 3, pad=2**40).forward(x),
    lambda x: Sequential(Conv2D(1, 1, 3, pad=2**40), ReLU()).summary((1, 4, 4)),
]


@pytest.mark.parametrize("call", ABSURD)
def test_absurd_sizes_are_refused_before_any_allocation_naming_the_size(call):
    x = np.zeros((2, 1, 4, 4))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"the padded input would be \d+ x \d+ = .* values per channel of "
                                             r"each image .* GiB even as float32, more than this machine's .* GiB of memory"):
            call(x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


@pytest.mark.parametrize("make", [lambda s: c.he_normal(s, 4, rng=0), lambda s: c.glorot_uniform(s, 4, 3, rng=0)],
                         ids=["he", "glorot"])
@pytest.mark.parametrize("shape", [(4, 2.5), (4.0, 3), (True, 3)])
def test_initialisers_refuse_sizes_that_are_not_ints(make, shape):
    with pytest.raises(TypeError, match=r"shape must be a tuple of ints"):
        make(shape)


@pytest.mark.parametrize("dtype, expected", [(">f4", np.float32), ("<f4", np.float32), (">f8", np.float64)])
@pytest.mark.parametrize("make", [lambda d: Conv2D(1, 2, 3, rng=0, dtype=d), lambda d: Dense(3, 2, rng=0, dtype=d)],
                         ids=["conv", "dense"])
def test_layers_take_a_float_dtype_in_either_byte_order(make, dtype, expected):
    layer = make(np.dtype(dtype))
    for p in (*layer.params.values(), *layer.grads.values()):
        assert p.dtype == expected and p.dtype.isnative


@pytest.mark.parametrize("labels", [np.array([0, 1], "m8[s]"), np.array([True, False]), np.array([0.0, 1.0]),
                                    np.array([0, 1], object)], ids=["timedelta", "bool", "float", "object"])
def test_softmax_cross_entropy_refuses_labels_that_are_not_integers(labels):
    with pytest.raises(TypeError, match=re.escape(f"y must hold integer class labels, got dtype {labels.dtype}")):
        c.softmax_cross_entropy(np.zeros((2, 3)), labels)


@pytest.mark.parametrize("hw", [(3, 3), (12, 12)], ids=["small maps, one product", "per-image products"])
def test_a_float64_dout_beyond_float32s_range_gives_the_loops_dx_for_float32_layers(hw):
    # The loops multiply w by dout in float64 here, and dx (about 1e36) fits in float32: the
    # fast ways must not round dout to float32 (inf) first. db, a float32 sum of 1e39s, is
    # inf either way.
    x, w = np.ones((2, 2, *hw), np.float32), np.full((2, 2, 3, 3), 1e-3, np.float32)
    out, cache = c.conv2d_forward(x, w, np.zeros(2, np.float32), pad=1)
    _, cache_naive = c.conv2d_forward_naive(x, w, np.zeros(2, np.float32), pad=1)
    dout = np.full(out.shape, 1e39)  # float64, beyond float32's largest, about 3.4e38
    with np.errstate(over="ignore"):
        dx, dx_naive = c.conv2d_backward(dout, cache)[0], c.conv2d_backward_naive(dout, cache_naive)[0]
    assert np.isfinite(dx_naive).all() and dx.dtype == np.float32
    np.testing.assert_allclose(dx, dx_naive, rtol=1e-6)
