"""What a learner's slips get: an error naming the argument or the layer at fault (a layer that
returns a tuple, a list of layers given to fit, an optimizer class), never Python's own
AttributeError from deep inside; and rel_error, right up to the float64 maximum."""

import sys
from fractions import Fraction

import numpy as np
import pytest

import cnnlib
from cnnlib import SGD, Adam, Dense, Sequential, evaluate, fit, reference_cnn, rel_error
from lesson8_layers import MyDense, MyReLU

FLOAT_MAX = sys.float_info.max


# ------------------------------------------------------------------------------- rel_error


def exact_rel_error(a, b):
    """rel_error's formula, max |a - b| / max(1e-8, |a| + |b|), in exact fractions."""
    return max(abs(Fraction(x) - Fraction(y)) / max(Fraction(1e-8), abs(Fraction(x)) + abs(Fraction(y)))
               for x, y in zip(np.ravel(a).tolist(), np.ravel(b).tolist()))


@pytest.mark.parametrize("a, b", [
    (1.7e308, 1.6e308),  # |a| + |b| overflows
    (1e308, -1e308),  # a - b overflows too
    (FLOAT_MAX, -FLOAT_MAX),
    (FLOAT_MAX, np.nextafter(FLOAT_MAX, 0)),
    (-1.5e308, -0.9e308),
    (1.7e308, 5e-324),  # a subnormal beside the maximum
    ([1.0, 1.7e308], [1.0 + 1e-9, 1.6e308]),  # the largest error is the huge pair's
    ([0.5, 1e308], [0.25, 1e308]),  # the largest error is the ordinary pair's
])
def test_rel_error_stays_right_near_the_float64_maximum(a, b):
    got = rel_error(a, b)
    want = exact_rel_error(a, b)
    # three roundings (difference, sum, quotient): within a few units in the last place
    assert got == pytest.approx(float(want), rel=4 * np.finfo(np.float64).eps, abs=0)
    assert rel_error(b, a) == got


def test_rel_error_gives_the_same_numbers_as_before_for_ordinary_values():
    rng = np.random.default_rng(0)
    for scale in (1e-12, 1e-8, 1.0, 1e5, 1e150, 1e300):
        a = rng.standard_normal(1000) * scale
        b = a + rng.standard_normal(1000) * scale * rng.choice([1e-12, 1e-7, 1e-2, 1.0], 1000)
        total = np.abs(a) + np.abs(b)
        formula = float(np.max(np.abs(a - b) / np.maximum(max(1e-8, 0.01 * total.max()), total)))
        assert rel_error(a, b) == formula  # bit for bit: the lessons print and compare these
        assert rel_error(a.reshape(10, 100), b.reshape(10, 100)) == formula
    assert rel_error(3.0, 1.0) == 0.5 and rel_error(0.0, 0.0) == 0.0


# ----------------------------------------------- a layer returning the wrong thing, in Sequential and fit


class PairForward(MyReLU):
    def forward(self, x):
        out, self.cache = cnnlib.relu_forward(x)
        return out, self.cache  # the pure function's habit


class NoReturnForward(MyReLU):
    def forward(self, x):
        out, self.cache = cnnlib.relu_forward(x)


class TripleBackward(MyDense):
    def backward(self, dout):
        dx, dw, db = cnnlib.dense_backward(dout, self.cache)
        self.grads["w"][...], self.grads["b"][...] = dw, db
        return dx, dw, db  # dense_backward's triple, handed on


class NoReturnBackward(MyReLU):
    def backward(self, dout):
        cnnlib.relu_backward(dout, self.cache)


def network(middle, rng):
    """Dense 4->5, `middle`, Dense 5->3: the learner's layer sits at index 1."""
    return Sequential(Dense(4, 5, rng=rng), middle, Dense(5, 3, rng=rng))


def own_dense(rng):
    return TripleBackward(rng.standard_normal((4, 5)), np.zeros(5))


FORWARD_SLIPS = [
    (PairForward, r"layer 1_pairforward \(PairForward\): forward returned a tuple of 2 items; a layer's forward "
                  r"returns one array: a function pair returns \(out, cache\), a layer keeps the cache itself"),
    (NoReturnForward, r"layer 1_noreturnforward \(NoReturnForward\): forward returned None \(is a `return out` "
                      r"missing\?\); a layer's forward returns one array"),
]


@pytest.mark.parametrize("layer, match", FORWARD_SLIPS)
def test_a_layers_forward_that_returns_no_array_is_named_by_sequential(rng, layer, match):
    model = network(layer(), rng)
    x = rng.standard_normal((2, 4))
    with pytest.raises(TypeError, match=match):
        model.forward(x)
    with pytest.raises(TypeError, match=match):
        model.trace(x)


@pytest.mark.parametrize("layer, match", FORWARD_SLIPS)
def test_fit_and_evaluate_name_the_layer_before_any_update(rng, layer, match):
    model = network(layer(), rng)
    x, y = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    before = {name: p.copy() for name, p in model.params().items()}
    with pytest.raises(TypeError, match=match):
        fit(model, x, y, optimizer=SGD(0.1), progress=False)
    for name, p in model.params().items():
        np.testing.assert_array_equal(p, before[name])
    with pytest.raises(TypeError, match=match):
        evaluate(model, x, y)


BACKWARD_SLIPS = [
    ("triple", r"layer 0_triplebackward \(TripleBackward\): backward returned a tuple of 3 items; a layer's "
               r"backward returns one array, dx: a function pair returns \(dx, dw, db\), a layer keeps dw and db "
               r"in its grads dict"),
    ("none", r"layer 1_noreturnbackward \(NoReturnBackward\): backward returned None \(is a `return dx` "
             r"missing\?\); a layer's backward returns one array, dx"),
]


def backward_network(kind, rng):
    if kind == "triple":  # first, where its dx is asked for only by Sequential.backward(dout)
        return Sequential(own_dense(rng), MyReLU(), Dense(5, 3, rng=rng))
    return network(NoReturnBackward(), rng)


@pytest.mark.parametrize("kind, match", BACKWARD_SLIPS)
def test_a_layers_backward_that_returns_no_array_is_named_by_sequential(rng, kind, match):
    model = backward_network(kind, rng)
    x = rng.standard_normal((2, 4))
    model.forward(x)
    with pytest.raises(TypeError, match=match):
        model.backward(rng.standard_normal((2, 3)))
    with pytest.raises(TypeError, match=match):
        model.trace(x)


def test_fit_names_a_middle_layers_backward_before_any_update(rng):
    model = backward_network("none", rng)
    x, y = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    before = {name: p.copy() for name, p in model.params().items()}
    with pytest.raises(TypeError, match=BACKWARD_SLIPS[1][1]):
        fit(model, x, y, optimizer=SGD(0.1), progress=False)
    for name, p in model.params().items():
        np.testing.assert_array_equal(p, before[name])


def test_a_first_layers_dx_that_no_one_uses_is_not_checked(rng):
    # fit never asks the first layer for dx: a triple there trains as well as dx alone would
    model = backward_network("triple", rng)
    x, y = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    model.forward(x)
    assert model.backward(rng.standard_normal((6, 3)), input_grad=False) is None
    fit(model, x, y, optimizer=SGD(0.1), progress=False)


def test_a_model_of_ones_own_whose_forward_returns_a_tuple_is_refused_by_fit(rng):
    class PairModel:
        def __init__(self):
            self.inner = Sequential(Dense(4, 3, rng=rng))

        def forward(self, x):
            return self.inner.forward(x), None

        def backward(self, dout, input_grad=True):
            return self.inner.backward(dout, input_grad=input_grad)

        def params(self):
            return self.inner.params()

        def grads(self):
            return self.inner.grads()

    x, y = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    with pytest.raises(TypeError, match=r"the model's forward returned a tuple, not an array of logits \(N, K\)"):
        fit(PairModel(), x, y, optimizer=SGD(0.1), progress=False)


# ------------------------------------------------------------------- fit's arguments mixed up


@pytest.fixture
def digits_like(rng):
    return rng.random((12, 1, 8, 8)), rng.integers(0, 10, 12)


@pytest.mark.parametrize("caller", [fit, evaluate])
@pytest.mark.parametrize("container", [list, tuple])
def test_a_list_of_layers_is_told_to_be_wrapped_in_sequential(digits_like, caller, container):
    layers = container(reference_cnn().layers)
    name = caller.__name__
    kwargs = {"optimizer": SGD(0.1), "progress": False} if caller is fit else {}
    with pytest.raises(TypeError, match=rf"model must be a Sequential, got a {container.__name__} of 5 items: wrap "
                                        rf"the layers in Sequential: {name}\(Sequential\(\[\.\.\.\]\), \.\.\.\)"):
        caller(layers, *digits_like, **kwargs)


@pytest.mark.parametrize("optimizer", [SGD, Adam])
def test_an_optimizer_class_is_told_to_be_made_an_instance(digits_like, optimizer):
    model = reference_cnn()
    before = model.params()["0_conv2d.w"].copy()
    with pytest.raises(TypeError, match=rf"optimizer must be an optimizer object, got the class {optimizer.__name__}: "
                                        r"pass an optimizer instance, e.g. SGD\(0\.1\) or Adam\(\)"):
        fit(model, *digits_like, optimizer=optimizer, progress=False)
    np.testing.assert_array_equal(model.params()["0_conv2d.w"], before)


@pytest.mark.parametrize("maker, what", [(Sequential, "class"), (reference_cnn, "function")])
def test_the_maker_of_a_model_is_told_to_be_called(digits_like, maker, what):
    name = maker.__name__
    with pytest.raises(TypeError, match=rf"model must be a model object, got the {what} {name}, which makes one: "
                                        rf"call it, fit\({name}\(\.\.\.\), \.\.\.\)"):
        fit(maker, *digits_like, optimizer=SGD(0.1), progress=False)


def test_a_single_layer_is_told_to_be_wrapped_in_sequential(rng):
    x, y = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    with pytest.raises(TypeError, match=r"model is a single layer \(Dense\), not a model: wrap it in Sequential: "
                                        r"fit\(Sequential\(\[layer\]\), \.\.\.\)"):
        fit(Dense(4, 3, rng=rng), x, y, optimizer=SGD(0.1), progress=False)
    assert evaluate(Dense(4, 3, rng=rng), x, y)  # running it forward is all evaluate needs


def test_a_model_of_ones_own_missing_a_method_is_named(digits_like):
    class ForwardOnly:
        def forward(self, x):
            return x.reshape(len(x), -1)[:, :10]

    with pytest.raises(TypeError, match=r"model must be a Sequential \(or have the methods forward, backward, "
                                        r"params, grads\); ForwardOnly has no method backward and no method params "
                                        r"and no method grads"):
        fit(ForwardOnly(), *digits_like, optimizer=SGD(0.1), progress=False)


def test_a_model_without_logits_is_refused_rather_than_its_labels(digits_like):
    # Without Flatten and Dense the output is (N, 4, 8, 8): its last axis, 8, is no number of classes.
    model = Sequential(cnnlib.Conv2D(1, 4, 3, pad=1, rng=0), cnnlib.ReLU())
    with pytest.raises(ValueError, match=r"the model's output for one sample has shape \(1, 4, 8, 8\); the loss "
                                         r"needs logits \(N, K\).*end the model with Flatten\(\) and Dense"):
        fit(model, *digits_like, optimizer=SGD(0.1), progress=False)


@pytest.mark.parametrize("labels, hint", [
    (lambda y: np.eye(10)[y], r"y looks one-hot \(a row of K per sample\): y\.argmax\(axis=1\) gives the \(N,\) "
                              r"labels"),
    (lambda y: np.eye(10, dtype=int)[y], r"y looks one-hot"),
    (lambda y: y[:, None], r"y\.ravel\(\) gives the \(N,\) labels"),
], ids=["one-hot floats", "one-hot ints", "column"])
def test_labels_in_a_column_or_one_hot_get_the_way_back(digits_like, labels, hint):
    x, y = digits_like
    with pytest.raises(ValueError, match=r"y must be \(N,\), got shapes .*" + hint):
        fit(reference_cnn(), x, labels(y), optimizer=SGD(0.1), progress=False)
    with pytest.raises(ValueError, match=hint):
        evaluate(reference_cnn(), x, labels(y))
