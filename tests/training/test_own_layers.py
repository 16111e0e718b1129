"""Sequential with a learner's own layers: written as lesson 8 writes MyDense and MyReLU.

Two kinds: plain classes with forward/backward/params/grads (duck typing), and cnnlib.Layer
subclasses that override forward and backward themselves instead of _forward/_backward.
Neither backward takes input_grad, as a learner's would not.
"""

import numpy as np
import pytest

import cnnlib
from cnnlib import SGD, Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential, numerical_gradient, rel_error
from lesson8_layers import MyDense, MyReLU  # lesson 8's, as a learner writes them


class MyDenseLayer(cnnlib.Layer):
    """The same as a Layer subclass; written from scratch, not with cnnlib's functions."""

    def __init__(self, w, b):
        super().__init__()
        self.params = {"w": w, "b": b}
        self.grads = {"w": np.zeros_like(w), "b": np.zeros_like(b)}

    def forward(self, x):
        self.x = x
        return x @ self.params["w"] + self.params["b"]

    def backward(self, dout):
        self.grads["w"][...] = self.x.T @ dout
        self.grads["b"][...] = dout.sum(axis=0)
        return dout @ self.params["w"].T


class MyReLULayer(cnnlib.Layer):
    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, dout):
        return dout * self.mask


KINDS = {"plain": (MyDense, MyReLU), "subclass": (MyDenseLayer, MyReLULayer)}


def _networks(kind, seed=0):
    """(mine, reference): the same CNN, its dense and ReLU layers the learner's in `mine`.

    Conv2D -> ReLU -> MaxPool2D -> Flatten -> Dense(32, 6) -> ReLU -> Dense(6, 3), with
    nonzero biases (a bias-gradient bug can hide behind zeros).
    """
    dense, relu = KINDS[kind]
    rng = np.random.default_rng(seed)
    ref = Sequential(Conv2D(1, 2, 3, pad=1, rng=rng), ReLU(), MaxPool2D(2), Flatten(),
                     Dense(32, 6, rng=rng), ReLU(), Dense(6, 3, rng=rng))
    for p in ref.params().values():
        p[...] = rng.normal(0, 0.5, p.shape)
    layers = [Conv2D(1, 2, 3, pad=1, rng=0), relu(), MaxPool2D(2), Flatten(),
              dense(ref.layers[4].params["w"].copy(), ref.layers[4].params["b"].copy()), relu(),
              dense(ref.layers[6].params["w"].copy(), ref.layers[6].params["b"].copy())]
    layers[0].params["w"][...] = ref.layers[0].params["w"]
    layers[0].params["b"][...] = ref.layers[0].params["b"]
    return Sequential(layers), ref


def _by_position(model):
    """The model's gradients keyed by layer index and key, so differently named models compare."""
    return {f"{i}.{key}": g for i, layer in enumerate(model.layers) for key, g in layer.grads.items()}


@pytest.mark.parametrize("kind", KINDS)
def test_own_layers_give_the_cnnlib_networks_results(rng, kind):
    mine, ref = _networks(kind)
    dense, relu = (cls.__name__.lower() for cls in KINDS[kind])
    assert mine.names == ["0_conv2d", f"1_{relu}", "2_maxpool2d", "3_flatten", f"4_{dense}", f"5_{relu}",
                          f"6_{dense}"]
    assert list(mine.params()) == ["0_conv2d.w", "0_conv2d.b", f"4_{dense}.w", f"4_{dense}.b",
                                   f"6_{dense}.w", f"6_{dense}.b"]
    assert mine.params()[f"6_{dense}.b"] is mine.layers[6].params["b"]
    x = rng.standard_normal((5, 1, 8, 8))
    dout = rng.standard_normal((5, 3))
    np.testing.assert_allclose(mine.forward(x), ref.forward(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mine.backward(dout), ref.backward(dout), rtol=1e-12, atol=1e-12)
    got, expected = _by_position(mine), _by_position(ref)
    assert got.keys() == expected.keys()
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-12, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("kind", KINDS)
def test_own_layer_first_without_input_grad(rng, kind):
    dense, relu = KINDS[kind]
    w1, b1 = rng.standard_normal((4, 5)), rng.standard_normal(5)
    w2, b2 = rng.standard_normal((5, 3)), rng.standard_normal(3)
    x, dout = rng.standard_normal((6, 4)), rng.standard_normal((6, 3))
    # The learner's backward takes no input_grad: Sequential must not pass it one.
    model = Sequential(dense(w1, b1), relu(), dense(w2, b2))
    model.forward(x)
    assert model.backward(dout).shape == x.shape
    full = {name: g.copy() for name, g in model.grads().items()}
    for g in model.grads().values():
        g[...] = np.nan  # a gradient left unfilled shows
    model.forward(x)
    assert model.backward(dout, input_grad=False) is None
    for name, g in model.grads().items():
        np.testing.assert_array_equal(g, full[name], err_msg=name)
    # A first layer without weights has nothing to compute when dx is not wanted.
    model = Sequential(relu(), Dense(4, 3, rng=0))
    model.forward(x)
    assert model.backward(dout, input_grad=False) is None
    np.testing.assert_allclose(model.grads()["1_dense.b"], dout.sum(axis=0), rtol=1e-12)
    with pytest.raises(TypeError, match="input_grad must be True or False"):
        model.backward(dout, input_grad=None)


class FlagDense(MyDense):
    """A learner's layer that does take input_grad, with the unusual default False."""

    def __init__(self, w, b):
        super().__init__(w, b)
        self.asked = []

    def backward(self, dout, input_grad=False):
        self.asked.append(input_grad)
        dx = super().backward(dout)
        return dx if input_grad else None


def test_own_layer_that_takes_input_grad_is_told(rng):
    first, last = FlagDense(rng.standard_normal((4, 5)), np.zeros(5)), FlagDense(rng.standard_normal((5, 2)), np.zeros(2))
    model = Sequential(first, ReLU(), last)
    x, dout = rng.standard_normal((3, 4)), rng.standard_normal((3, 2))
    model.forward(x)
    assert model.backward(dout).shape == x.shape
    model.forward(x)
    assert model.backward(dout, input_grad=False) is None
    assert first.asked == [True, False] and last.asked == [True, True]


@pytest.mark.parametrize("kind", KINDS)
def test_summary_with_own_layers(rng, kind):
    mine, ref = _networks(kind)
    text = mine.summary((1, 8, 8))
    print(text)
    dense, relu = (cls.__name__.lower() for cls in KINDS[kind])
    # The same table as the cnnlib network's, but for the names (and the columns they widen).
    lines = text.splitlines()
    assert lines[-1] == f"Total params: {2 * 9 + 2 + 32 * 6 + 6 + 6 * 3 + 3}"
    assert lines[-1] == ref.summary((1, 8, 8)).splitlines()[-1]
    rows = {line.split()[0]: line.split()[1:] for line in lines if line[:1].isdigit()}
    assert rows[f"1_{relu}"] == ["(N,", "2,", "8,", "8)", "0"]
    assert rows[f"4_{dense}"] == ["(N,", "6)", "198"]
    assert rows[f"5_{relu}"] == ["(N,", "6)", "0"]
    assert rows[f"6_{dense}"] == ["(N,", "3)", "21"]


def test_summary_runs_a_learners_forward_on_one_sample_and_keeps_its_cache(rng):
    seen = []

    class Counting(MyReLU):
        def forward(self, x):
            seen.append(x.shape)  # a learner's loop over range(len(x)) would need N >= 1
            return super().forward(x)

    layer = Counting()
    model = Sequential(layer, Dense(12, 2, rng=0))
    x, dout = rng.standard_normal((4, 12)), rng.standard_normal((4, 2))
    model.forward(x)
    cache = layer.cache
    assert "(N, 12)" in model.summary((12,))
    assert seen == [(4, 12), (1, 12)]
    assert layer.cache is cache  # put back: the backward below still sees x's signs
    expected = (x > 0) * (dout @ model.layers[1].params["w"].T)
    np.testing.assert_allclose(model.backward(dout), expected, rtol=1e-12, atol=1e-15)


def test_summary_names_an_own_layer_that_fails_or_returns_a_tuple():
    w, b = np.zeros((5, 3)), np.zeros(3)
    with pytest.raises(ValueError, match=r"layer 1_mydense \(MyDense\) failed on one sample of shape \(4,\).*ValueError"):
        Sequential(MyReLU(), MyDense(w, b)).summary((4,))

    class PairForward(MyReLU):
        def forward(self, x):
            return cnnlib.relu_forward(x)  # (out, cache), the function's habit

    with pytest.raises(ValueError, match=r"0_pairforward.*returned a tuple of 2.*\(out, cache\)"):
        Sequential(PairForward()).summary((4,))


@pytest.mark.parametrize("kind", KINDS)
def test_trace_and_save_load_with_own_layers(rng, tmp_path, kind):
    mine, _ = _networks(kind)
    x = rng.standard_normal((2, 1, 8, 8))
    for t in mine.trace(x):
        assert t.dx_shape == t.x_shape, t.name
    assert [t.out_shape for t in mine.trace(x)][-3:] == [(2, 6), (2, 6), (2, 3)]
    path = mine.save_weights(tmp_path / "mine")
    other, _ = _networks(kind, seed=1)
    assert not np.array_equal(other.forward(x), mine.forward(x))
    other.load_weights(path)
    np.testing.assert_array_equal(other.forward(x), mine.forward(x))
    with np.load(path) as data:
        assert sorted(data.files) == sorted(mine.params())


@pytest.mark.parametrize("kind", KINDS)
def test_fit_trains_a_network_of_own_layers(kind):
    dense, relu = KINDS[kind]
    rng = np.random.default_rng(3)
    # Two classes a straight line separates: a few steps must lower the loss.
    x = rng.standard_normal((40, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    model = Sequential(dense(rng.normal(0, 0.5, (4, 8)), np.zeros(8)), relu(),
                       dense(rng.normal(0, 0.5, (8, 2)), np.zeros(2)))
    loss_before, _ = cnnlib.evaluate(model, x, y)
    history = cnnlib.fit(model, x, y, optimizer=SGD(lr=0.2), epochs=8, batch_size=8, progress=False)
    loss_after, accuracy = cnnlib.evaluate(model, x, y)
    assert history["loss"][-1] < history["loss"][0]
    assert loss_after < 0.7 * loss_before and accuracy > 0.8
    assert np.all(model.layers[0].params["b"] != 0)  # the first layer trained, without its dx


@pytest.mark.parametrize("kind", KINDS)
def test_whole_network_of_own_layers_passes_a_gradient_check(rng, kind):
    mine, _ = _networks(kind)
    x = rng.standard_normal((3, 1, 8, 8))
    dout = rng.standard_normal((3, 3))  # random, float64: a mixed-up gradient cannot hide
    mine.forward(x)
    dx = mine.backward(dout)
    analytic = {name: g.copy() for name, g in mine.grads().items()}
    for name, p in mine.params().items():
        # numerical_gradient nudges the live parameter array the model reads.
        num = numerical_gradient(lambda _: mine.forward(x), p, dout)
        assert rel_error(analytic[name], num) < 1e-6, name
    assert rel_error(dx, numerical_gradient(lambda xx: mine.forward(xx), x.copy(), dout)) < 1e-6


@pytest.mark.parametrize(
    "layer, match",
    [
        ("relu", r"layer 1 must be a cnnlib layer .*'relu' \(str\) has no forward and no backward and no params and no grads"),
        (type("NoBackward", (), {"forward": lambda self, x: x, "params": {}, "grads": {}})(),
         r"layer 1 .*\(NoBackward\) has no backward$"),
        (type("ForwardNotCallable", (), {"forward": 3, "backward": lambda self, d: d, "params": {}, "grads": {}})(),
         r"\(ForwardNotCallable\) has no forward$"),
    ],
)
def test_sequential_names_what_a_layer_lacks(layer, match):
    with pytest.raises(TypeError, match=match):
        Sequential(Flatten(), layer)


def test_sequential_refuses_params_that_are_not_a_dict():
    class MethodParams(MyReLU):
        def __init__(self):
            self.grads, self.cache = {}, None

        def params(self):  # a method where Sequential reads a dict
            return {}

    with pytest.raises(TypeError, match=r"layer 0 \(MethodParams\): params must be a dict of arrays.*got method"):
        Sequential(MethodParams())

    class NoInit(cnnlib.Layer):
        def __init__(self):  # forgets super().__init__(): no params, no grads
            self.scale = 2.0

    with pytest.raises(TypeError, match=r"has no params and no grads \(a Layer subclass whose __init__ does not call super"):
        Sequential(NoInit())
