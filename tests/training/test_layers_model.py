"""Layer classes, Sequential, initialisation and optimizers.

The layers only wrap the pure functions, so most tests compare them with the functions
called by hand; the end-to-end gradient check then tests the whole chain at once.
"""

import numpy as np
import pytest

import cnnlib
from cnnlib import (
    SGD,
    Adam,
    AvgPool2D,
    Conv2D,
    Dense,
    Flatten,
    Layer,
    MaxPool2D,
    ReLU,
    Sequential,
    numerical_gradient,
    reference_cnn,
    rel_error,
    softmax_cross_entropy,
)


def _randomize_biases(model, rng):
    # Biases start at 0; a bias gradient bug (a missing sum over the batch, say) can hide there.
    for layer in model.layers:
        if "b" in layer.params:
            layer.params["b"][...] = rng.normal(0, 0.5, size=layer.params["b"].shape)


# --- each layer is its function ------------------------------------------------------------

LAYER_CASES = {
    "conv": (lambda: Conv2D(3, 4, (3, 2), stride=(2, 1), pad=(1, 0), rng=1), (2, 3, 7, 5)),
    "dense": (lambda: Dense(6, 4, rng=1), (5, 6)),
    "maxpool": (lambda: MaxPool2D(3, stride=2, pad=1), (2, 3, 7, 7)),
    "avgpool": (lambda: AvgPool2D((2, 3), stride=1), (2, 2, 5, 6)),
    "flatten": (lambda: Flatten(), (2, 3, 4, 5)),
    "relu": (lambda: ReLU(), (2, 3, 4, 5)),
}


def _by_hand(layer, x, dout):
    """The same forward and backward, calling the functions directly: (out, dx, grads)."""
    p = layer.params
    if isinstance(layer, Conv2D):
        out, cache = cnnlib.conv2d_forward(x, p["w"], p["b"], stride=layer.stride, pad=layer.pad)
        dx, dw, db = cnnlib.conv2d_backward(dout, cache)
        return out, dx, {"w": dw, "b": db}
    if isinstance(layer, Dense):
        out, cache = cnnlib.dense_forward(x, p["w"], p["b"])
        dx, dw, db = cnnlib.dense_backward(dout, cache)
        return out, dx, {"w": dw, "b": db}
    if isinstance(layer, MaxPool2D):
        out, cache = cnnlib.maxpool2d_forward(x, size=layer.size, stride=layer.stride, pad=layer.pad)
        return out, cnnlib.maxpool2d_backward(dout, cache), {}
    if isinstance(layer, AvgPool2D):
        out, cache = cnnlib.avgpool2d_forward(x, size=layer.size, stride=layer.stride)
        return out, cnnlib.avgpool2d_backward(dout, cache), {}
    if isinstance(layer, Flatten):
        out, cache = cnnlib.flatten_forward(x)
        return out, cnnlib.flatten_backward(dout, cache), {}
    out, cache = cnnlib.relu_forward(x)
    return out, cnnlib.relu_backward(dout, cache), {}


@pytest.mark.parametrize("case", LAYER_CASES)
def test_layer_matches_its_function(case):
    make, x_shape = LAYER_CASES[case]
    rng = np.random.default_rng(0)
    layer = make()
    _randomize_biases(Sequential(layer), rng)
    x = rng.normal(size=x_shape)
    out = layer.forward(x)
    dout = rng.normal(size=out.shape)
    dx = layer.backward(dout)
    out_ref, dx_ref, grads_ref = _by_hand(layer, x, dout)
    np.testing.assert_array_equal(out, out_ref)
    np.testing.assert_array_equal(dx, dx_ref)
    assert layer.grads.keys() == layer.params.keys() == grads_ref.keys()
    for key in grads_ref:
        np.testing.assert_array_equal(layer.grads[key], grads_ref[key])


@pytest.mark.parametrize("case", LAYER_CASES)
def test_output_shape_matches_real_output(case):
    make, x_shape = LAYER_CASES[case]
    layer = make()
    out = layer.forward(np.random.default_rng(0).normal(size=x_shape))
    assert layer.output_shape(x_shape[1:]) == out.shape[1:]


@pytest.mark.parametrize(
    ("layer", "input_shape", "expected"),
    [
        (Conv2D(1, 8, 3, pad=1), (1, 8, 8), (8, 8, 8)),
        (Conv2D(3, 4, (3, 2), stride=(2, 1), pad=(1, 0)), (3, 7, 5), (4, 4, 4)),  # (7+2-3)//2+1, (5-2)//1+1
        (Conv2D(2, 5, 3, stride=2), (2, 8, 8), (5, 3, 3)),  # (8-3)//2+1 = 3: the last column is never used
        (MaxPool2D(2), (8, 8, 8), (8, 4, 4)),
        (MaxPool2D(3, stride=2, pad=1), (2, 7, 7), (2, 4, 4)),
        (AvgPool2D((2, 3), stride=1), (1, 5, 6), (1, 4, 4)),
        (Flatten(), (3, 4, 5), (60,)),
        (Dense(60, 7), (60,), (7,)),
        (ReLU(), (3, 4), (3, 4)),
    ],
)
def test_output_shape_by_hand(layer, input_shape, expected):
    assert layer.output_shape(input_shape) == expected
    assert layer.forward(np.ones((2, *input_shape))).shape == (2, *expected)


@pytest.mark.parametrize(
    ("layer", "input_shape", "match"),
    [
        (Conv2D(3, 4, 3), (2, 8, 8), "x has 2 channels .* w expects 3"),
        (Conv2D(1, 4, 5), (1, 3, 3), "kernel .* larger than the padded input"),
        (MaxPool2D(2, pad=2), (1, 8, 8), "at most half the pool window"),
        (Dense(10, 3), (11,), "x has 11 features .* w expects 10"),
        (Dense(10, 3), (1, 8, 8), "flatten it first"),
        (Flatten(), (), "at least one more"),
        (ReLU(), (0, 8), "positive ints"),
    ],
)
def test_output_shape_bad_input_raises_the_functions_error(layer, input_shape, match):
    with pytest.raises(ValueError, match=match):
        layer.output_shape(input_shape)
    if input_shape and min(input_shape) > 0:
        with pytest.raises(ValueError, match=match):
            layer.forward(np.ones((2, *input_shape)))


def test_backward_before_forward_raises():
    for layer in (Conv2D(1, 2, 3), Dense(3, 2), MaxPool2D(), AvgPool2D(), Flatten(), ReLU()):
        with pytest.raises(RuntimeError, match=r"backward was called before forward"):
            layer.backward(np.ones((1, 2)))


# --- construction and initialisation ------------------------------------------------------


def test_weights_shapes_dtypes_and_zero_biases():
    conv = Conv2D(3, 5, (2, 4))
    dense = Dense(7, 2, dtype=np.float32)
    assert conv.params["w"].shape == (5, 3, 2, 4) and conv.params["w"].dtype == np.float64
    assert dense.params["w"].shape == (7, 2) and dense.params["w"].dtype == np.float32
    for layer in (conv, dense):
        assert layer.params["b"].dtype == layer.params["w"].dtype
        assert not layer.params["b"].any()
        assert layer.grads.keys() == layer.params.keys()
    assert MaxPool2D().params == {} and ReLU().grads == {}


def test_he_and_glorot_scales():
    fan_in, fan_out = 3 * 5 * 5, 64 * 5 * 5
    w = Conv2D(3, 64, 5, rng=0).params["w"]  # 4,800 samples of N(0, 2/75)
    assert abs(w.std() / np.sqrt(2 / fan_in) - 1) < 0.05
    assert abs(w.mean()) < 0.01
    g = Conv2D(3, 64, 5, init="glorot", rng=0).params["w"]
    limit = np.sqrt(6 / (fan_in + fan_out))
    assert np.abs(g).max() <= limit
    assert np.abs(g).max() > 0.98 * limit  # uniform: the extremes are close to the limit
    assert abs(g.std() / (limit / np.sqrt(3)) - 1) < 0.05  # std of U(-a, a) is a / sqrt(3)
    d = Dense(200, 100, rng=0).params["w"]
    assert np.abs(d).max() <= np.sqrt(6 / 300)


def test_init_functions_directly():
    w = cnnlib.he_normal((1000, 10), fan_in=50, rng=0)
    assert w.shape == (1000, 10) and abs(w.std() / np.sqrt(2 / 50) - 1) < 0.05
    g = cnnlib.glorot_uniform((1000, 10), fan_in=20, fan_out=30, rng=0)
    assert np.abs(g).max() <= np.sqrt(6 / 50)
    np.testing.assert_array_equal(w, cnnlib.he_normal((1000, 10), 50, np.random.default_rng(0)))
    with pytest.raises(ValueError, match="fan_in must be a positive int"):
        cnnlib.he_normal((2, 2), 0, 0)


def test_seeds_and_shared_generators():
    np.testing.assert_array_equal(Conv2D(1, 4, 3, rng=7).params["w"], Conv2D(1, 4, 3, rng=7).params["w"])
    assert not np.array_equal(Conv2D(1, 4, 3, rng=7).params["w"], Conv2D(1, 4, 3, rng=8).params["w"])
    # One generator shared by two layers: the second draws the next numbers, not the same ones.
    rng = np.random.default_rng(0)
    a, b = Conv2D(1, 4, 3, rng=rng), Conv2D(1, 4, 3, rng=rng)
    assert not np.array_equal(a.params["w"], b.params["w"])
    # reference_cnn: reproducible per seed, different across seeds.
    p0, p0_again = reference_cnn(seed=0).params(), reference_cnn(seed=0).params()
    p1 = reference_cnn(seed=1).params()
    for name in p0:
        np.testing.assert_array_equal(p0[name], p0_again[name])
    assert not np.array_equal(p0["0_conv2d.w"], p1["0_conv2d.w"])


def test_reference_cnn_draws_all_layers_from_one_generator():
    model = reference_cnn(channels=8, seed=5)
    rng = np.random.default_rng(5)
    conv, dense = Conv2D(1, 8, 3, pad=1, rng=rng), Dense(128, 10, rng=rng)  # dense continues the stream
    np.testing.assert_array_equal(model.params()["0_conv2d.w"], conv.params["w"])
    np.testing.assert_array_equal(model.params()["4_dense.w"], dense.params["w"])
    # Seeding each layer with 5 instead would restart the stream: not what reference_cnn does.
    assert not np.array_equal(model.params()["4_dense.w"], Dense(128, 10, rng=5).params["w"])
    assert model.params()["0_conv2d.w"].dtype == np.float64
    assert reference_cnn(dtype=np.float32).params()["4_dense.w"].dtype == np.float32


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: Conv2D(1, 8, 3, init="xavier"), ValueError, "init must be one of 'he', 'glorot'"),
        (lambda: Dense(4, 2, init="kaiming"), ValueError, "init must be one of 'he', 'glorot'"),
        (lambda: Conv2D(0, 8, 3), ValueError, "in_channels must be >= 1"),
        (lambda: Conv2D(1, 8.0, 3), TypeError, "out_channels must be an int"),
        (lambda: Conv2D(1, 8, 0), ValueError, "kernel_size must be >= 1"),
        (lambda: Conv2D(1, 8, 3, stride=(1, 2, 3)), ValueError, "stride must be an int or a pair"),
        (lambda: Conv2D(1, 8, 3, pad=-1), ValueError, "pad must be >= 0"),
        (lambda: Dense(4, 2, rng="seed"), TypeError, "rng must be an int seed, a np.random.Generator or None"),
        (lambda: Dense(4, 2, rng=True), TypeError, "rng must be an int seed"),
        (lambda: Dense(4, 2, dtype=np.int32), TypeError, "dtype must be np.float32 or np.float64"),
        (lambda: Conv2D(1, 2, 3, dtype=np.float16), TypeError, "dtype must be np.float32 or np.float64"),
        (lambda: MaxPool2D(0), ValueError, "size must be >= 1"),
        (lambda: AvgPool2D(2, stride=0), ValueError, "stride must be >= 1"),
        (lambda: Sequential(), ValueError, "at least one layer"),
        (lambda: Sequential(Flatten(), "relu"), TypeError, "layer 1 must be a cnnlib layer"),
    ],
)
def test_bad_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


# --- Sequential ---------------------------------------------------------------------------


def test_sequential_names_and_live_params():
    model = reference_cnn()
    assert model.names == ["0_conv2d", "1_relu", "2_maxpool2d", "3_flatten", "4_dense"]
    names = ["0_conv2d.w", "0_conv2d.b", "4_dense.w", "4_dense.b"]
    assert list(model.params()) == names and list(model.grads()) == names
    assert model.params()["4_dense.b"] is model.layers[4].params["b"]
    x = np.random.default_rng(0).random((2, 1, 8, 8))
    before = model.forward(x)
    model.params()["4_dense.b"][3] += 1.0  # writing into the dict's array changes the model
    np.testing.assert_allclose(model.forward(x) - before, np.eye(10)[[3, 3]], atol=1e-12)
    assert Sequential([Flatten(), ReLU()]).names == ["0_flatten", "1_relu"]  # a list works too


def test_sequential_backward_equals_functions_chained_by_hand():
    rng = np.random.default_rng(1)
    model = reference_cnn(channels=4, seed=3)
    _randomize_biases(model, rng)
    x = rng.random((5, 1, 8, 8))
    dout = rng.normal(size=(5, 10))
    out = model.forward(x)
    dx = model.backward(dout)

    p = {name: a.copy() for name, a in model.params().items()}
    h1, c1 = cnnlib.conv2d_forward(x, p["0_conv2d.w"], p["0_conv2d.b"], pad=1)  # (5, 4, 8, 8)
    h2, c2 = cnnlib.relu_forward(h1)
    h3, c3 = cnnlib.maxpool2d_forward(h2, size=2)  # (5, 4, 4, 4)
    h4, c4 = cnnlib.flatten_forward(h3)  # (5, 64)
    out_ref, c5 = cnnlib.dense_forward(h4, p["4_dense.w"], p["4_dense.b"])  # (5, 10)
    d4, dw5, db5 = cnnlib.dense_backward(dout, c5)
    d3 = cnnlib.flatten_backward(d4, c4)
    d2 = cnnlib.maxpool2d_backward(d3, c3)
    d1 = cnnlib.relu_backward(d2, c2)
    dx_ref, dw1, db1 = cnnlib.conv2d_backward(d1, c1)

    np.testing.assert_array_equal(out, out_ref)
    np.testing.assert_array_equal(dx, dx_ref)
    expected = {"0_conv2d.w": dw1, "0_conv2d.b": db1, "4_dense.w": dw5, "4_dense.b": db5}
    for name, g in model.grads().items():
        np.testing.assert_array_equal(g, expected[name], err_msg=name)


# --- end-to-end gradient check --------------------------------------------------------------

KINK_MARGIN = 1e-3  # numerical_gradient nudges by 1e-5; this keeps every nudge on one side of a kink


def _small_cnn(seed):
    rng = np.random.default_rng(seed)
    model = Sequential(
        Conv2D(2, 3, 3, pad=1, rng=rng),  # (N, 3, 8, 8)
        ReLU(),
        MaxPool2D(2),  # (N, 3, 4, 4)
        Conv2D(3, 4, (2, 3), stride=2, rng=rng),  # (N, 4, 2, 1)
        ReLU(),
        Flatten(),  # (N, 8)
        Dense(8, 5, rng=rng),  # (N, 5)
    )
    _randomize_biases(model, rng)
    x = rng.normal(size=(3, 2, 8, 8))
    return model, x


def _distance_to_kinks(model, x):
    """Smallest |ReLU input| and smallest gap between a max-pool window's winner and runner-up.

    Finite differences straddling a kink (a ReLU input at 0, a tie in a pooling window)
    measure an average of two slopes, which is no bug of the backward pass.
    """
    gaps = []
    for layer in model.layers:
        if isinstance(layer, ReLU):
            gaps.append(np.abs(x).min())
        if isinstance(layer, MaxPool2D):
            N, C, H, W = x.shape
            win = x.reshape(N, C, H // 2, 2, W // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(-1, 4)
            top2 = np.sort(win, axis=1)[:, -2:]
            alive = top2[:, 1] > 0  # all-zero windows come from negative ReLU inputs, checked above
            gaps.append((top2[alive, 1] - top2[alive, 0]).min())
        x = layer.forward(x)
    return min(gaps)


def _kink_free_cnn():
    for seed in range(50):
        model, x = _small_cnn(seed)
        if _distance_to_kinks(model, x) > KINK_MARGIN:
            return model, x
    raise AssertionError("no seed gave inputs away from the ReLU and max-pool kinks")


def test_whole_cnn_gradient_of_logits():
    model, x = _kink_free_cnn()
    dout = np.random.default_rng(99).normal(size=model.forward(x).shape)
    dx = model.backward(dout)
    grads = {name: g.copy() for name, g in model.grads().items()}
    assert len(grads) == 6
    for name, p in model.params().items():
        # numerical_gradient nudges p itself, the live array the model reads, and the closure
        # reruns the whole network each time.
        num = numerical_gradient(lambda _: model.forward(x), p, dout)
        assert rel_error(grads[name], num) < 1e-7, name
        assert np.abs(grads[name]).max() > 0, name  # not a vacuous check of zeros against zeros
    num_dx = numerical_gradient(lambda xx: model.forward(xx), x.copy(), dout)
    assert rel_error(dx, num_dx) < 1e-7


def test_whole_cnn_gradient_of_loss():
    model, x = _kink_free_cnn()
    y = np.array([0, 3, 4])
    loss, dlogits = softmax_cross_entropy(model.forward(x), y)
    dx = model.backward(dlogits)
    grads = {name: g.copy() for name, g in model.grads().items()}

    def loss_of(xx):
        return softmax_cross_entropy(model.forward(xx), y)[0]

    # A looser bound than for the logits: the loss is one O(1) number, its rounding error
    # (~1e-16) divided by 2h lands on gradient elements that can be as small as 1e-6.
    for name, p in model.params().items():
        num = numerical_gradient(lambda _: loss_of(x), p, 1.0)
        assert rel_error(grads[name], num) < 1e-6, name
    assert rel_error(dx, numerical_gradient(loss_of, x.copy(), 1.0)) < 1e-6
    assert np.isclose(loss_of(x), loss)


def test_trace_dx_has_the_shape_of_x_at_every_layer():
    model, x = _small_cnn(0)
    trace = model.trace(x)
    assert [t.name for t in trace] == model.names
    assert trace[0].x_shape == x.shape and trace[-1].out_shape == (3, 5)
    for t in trace:
        assert t.dx_shape == t.x_shape, t.name
    for before, after in zip(trace, trace[1:]):
        assert before.out_shape == after.x_shape
    assert [t.out_shape for t in trace] == [(3, 3, 8, 8), (3, 3, 8, 8), (3, 3, 4, 4), (3, 4, 2, 1),
                                           (3, 4, 2, 1), (3, 8), (3, 5)]


# --- summary ----------------------------------------------------------------------------------


def test_summary_reference_cnn():
    text = reference_cnn(channels=8).summary((1, 8, 8))
    rows = {line.split()[0]: line for line in text.splitlines() if line[:1].isdigit()}
    assert list(rows) == ["0_conv2d", "1_relu", "2_maxpool2d", "3_flatten", "4_dense"]
    # conv: 8 filters of 1x3x3 plus 8 biases; dense: 128x10 weights plus 10 biases.
    expected = {"0_conv2d": ("(N, 8, 8, 8)", "80"), "1_relu": ("(N, 8, 8, 8)", "0"),
                "2_maxpool2d": ("(N, 8, 4, 4)", "0"), "3_flatten": ("(N, 128)", "0"),
                "4_dense": ("(N, 10)", "1,290")}
    for name, (shape, count) in expected.items():
        assert shape in rows[name] and rows[name].split()[-1] == count, rows[name]
    assert "Total params: 1,370" in text
    assert "(N, 1, 8, 8)" in text  # the input


def test_summary_small_cnn_total():
    model, _ = _small_cnn(0)
    text = model.summary((2, 8, 8))
    # 3*2*3*3 + 3 = 57, 4*3*2*3 + 4 = 76, 8*5 + 5 = 45
    assert text.splitlines()[-1] == "Total params: 178"
    assert "(N, 4, 2, 1)" in text and "(N, 8)" in text


def test_summary_shape_mismatch_names_the_layer():
    with pytest.raises(ValueError, match=r"layer 0_conv2d .*x has 3 channels"):
        reference_cnn().summary((3, 8, 8))
    with pytest.raises(ValueError, match=r"layer 1_dense .*x has 64 features .* w expects 10"):
        Sequential(Flatten(), Dense(10, 3)).summary((1, 8, 8))


# --- save / load ----------------------------------------------------------------------------


def test_save_load_round_trip(tmp_path):
    model = reference_cnn(seed=0)
    _randomize_biases(model, np.random.default_rng(0))
    path = model.save_weights(tmp_path / "weights")
    assert path == tmp_path / "weights.npz" and path.exists()

    other = reference_cnn(seed=1)
    arrays_before = other.params()
    other.load_weights(path)
    for name, p in other.params().items():
        np.testing.assert_array_equal(p, model.params()[name])
        assert p is arrays_before[name]  # copied in place, references stay valid
    x = np.random.default_rng(0).random((4, 1, 8, 8))
    np.testing.assert_array_equal(other.forward(x), model.forward(x))


def test_saved_file_is_plain_arrays(tmp_path):
    path = reference_cnn().save_weights(tmp_path / "w.npz")
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == sorted(reference_cnn().params())
        for name in data.files:
            assert data[name].dtype == np.float64 and data[name].dtype != object


def test_load_mismatched_model_raises(tmp_path):
    path = reference_cnn(channels=8).save_weights(tmp_path / "w.npz")
    narrow = reference_cnn(channels=4)
    before = {name: p.copy() for name, p in narrow.params().items()}
    with pytest.raises(ValueError, match=r"0_conv2d\.w has shape \(8, 1, 3, 3\) in the file, \(4, 1, 3, 3\)"):
        narrow.load_weights(path)
    for name, p in narrow.params().items():  # nothing was copied
        np.testing.assert_array_equal(p, before[name])
    other = Sequential(Flatten(), Dense(64, 10))
    missing = r"missing from the file: 1_dense\.b, 1_dense\.w.*not in this model: 0_conv2d\.b"
    with pytest.raises(ValueError, match=missing):
        other.load_weights(path)


# --- optimizers --------------------------------------------------------------------------------


def _param_and_grads(steps=2, shape=(3, 4), seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape), [rng.normal(size=shape) for _ in range(steps)]


def test_sgd_plain_step_is_exact():
    p0, (g,) = _param_and_grads(1)
    p = p0.copy()
    ref = p
    SGD(lr=0.1).step({"w": p}, {"w": g})
    assert p is ref
    np.testing.assert_array_equal(p, p0 - 0.1 * g)


def test_sgd_momentum_two_steps_by_hand():
    p0, (g1, g2) = _param_and_grads()
    p = p0.copy()
    opt = SGD(lr=0.1, momentum=0.9)
    opt.step({"w": p}, {"w": g1})
    opt.step({"w": p}, {"w": g2})
    v1 = g1
    v2 = 0.9 * v1 + g2
    np.testing.assert_allclose(p, p0 - 0.1 * v1 - 0.1 * v2, rtol=1e-14, atol=1e-15)


def test_adam_two_steps_by_hand():
    p0, (g1, g2) = _param_and_grads()
    p = p0.copy()
    opt = Adam(lr=0.01)
    opt.step({"w": p}, {"w": g1})
    # Step 1: m_hat = g1, v_hat = g1**2, so each element moves by lr * sign(g1) (up to eps).
    np.testing.assert_allclose(p, p0 - 0.01 * g1 / (np.abs(g1) + 1e-8), rtol=1e-14)
    opt.step({"w": p}, {"w": g2})
    m = 0.9 * 0.1 * g1 + 0.1 * g2
    v = 0.999 * 0.001 * g1**2 + 0.001 * g2**2
    m_hat, v_hat = m / (1 - 0.9**2), v / (1 - 0.999**2)
    p1 = p0 - 0.01 * g1 / (np.abs(g1) + 1e-8)
    np.testing.assert_allclose(p, p1 - 0.01 * m_hat / (np.sqrt(v_hat) + 1e-8), rtol=1e-13)


def test_optimizer_state_is_per_parameter():
    pa, pb = np.zeros(2), np.zeros(3)
    opt = SGD(lr=1.0, momentum=0.5)
    for _ in range(2):
        opt.step({"a": pa, "b": pb}, {"a": np.ones(2), "b": -np.ones(3)})
    np.testing.assert_array_equal(pa, [-2.5, -2.5])  # v = 1, then 1.5
    np.testing.assert_array_equal(pb, [2.5, 2.5, 2.5])


@pytest.mark.torch
@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda: SGD(lr=0.05), lambda t: {"cls": "SGD", "lr": 0.05}),
        (lambda: SGD(lr=0.05, momentum=0.9), lambda t: {"cls": "SGD", "lr": 0.05, "momentum": 0.9}),
        (lambda: Adam(lr=0.01), lambda t: {"cls": "Adam", "lr": 0.01}),
        (lambda: Adam(lr=0.003, beta1=0.8, beta2=0.99, eps=1e-6),
         lambda t: {"cls": "Adam", "lr": 0.003, "betas": (0.8, 0.99), "eps": 1e-6}),
    ],
)
def test_optimizers_match_torch(ours, theirs):
    torch = pytest.importorskip("torch")
    w0, gw = _param_and_grads(5, (4, 3), seed=1)
    b0, gb = _param_and_grads(5, (3,), seed=2)
    params = {"w": w0.copy(), "b": b0.copy()}
    tw, tb = torch.tensor(w0, requires_grad=True), torch.tensor(b0, requires_grad=True)
    kwargs = theirs(torch)
    topt = getattr(torch.optim, kwargs.pop("cls"))([tw, tb], **kwargs)
    opt = ours()
    for step in range(5):
        opt.step(params, {"w": gw[step], "b": gb[step]})
        tw.grad, tb.grad = torch.tensor(gw[step]), torch.tensor(gb[step])
        topt.step()
    np.testing.assert_allclose(params["w"], tw.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(params["b"], tb.detach().numpy(), rtol=1e-12, atol=1e-14)
    assert not np.allclose(params["w"], w0)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: SGD(lr=0), ValueError, r"lr must be in \(0, inf\)"),
        (lambda: SGD(lr=-0.1), ValueError, "lr must be in"),
        (lambda: SGD(lr="0.1"), TypeError, "lr must be a number"),
        (lambda: SGD(lr=float("nan")), ValueError, "lr must be in"),
        (lambda: SGD(momentum=1.0), ValueError, r"momentum must be in \[0, 1\)"),
        (lambda: SGD(momentum=-0.5), ValueError, "momentum must be in"),
        (lambda: Adam(lr=0), ValueError, "lr must be in"),
        (lambda: Adam(beta1=1.0), ValueError, r"beta1 must be in \[0, 1\)"),
        (lambda: Adam(beta2=1.5), ValueError, "beta2 must be in"),
        (lambda: Adam(eps=0), ValueError, "eps must be in"),
        (lambda: Adam(lr=True), TypeError, "lr must be a number"),
    ],
)
def test_optimizer_bad_hyperparameters(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_optimizer_step_checks_names_and_shapes():
    opt = Adam()
    with pytest.raises(ValueError, match=r"no gradient for \['b'\]"):
        opt.step({"w": np.zeros(2), "b": np.zeros(2)}, {"w": np.zeros(2)})
    with pytest.raises(ValueError, match=r"gradients of unknown parameters \['x'\]"):
        opt.step({"w": np.zeros(2)}, {"w": np.zeros(2), "x": np.zeros(2)})
    with pytest.raises(ValueError, match=r"gradient of w has shape \(3,\), the parameter has shape \(2,\)"):
        opt.step({"w": np.zeros(2)}, {"w": np.zeros(3)})
    with pytest.raises(TypeError, match="parameter w must be a float ndarray"):
        SGD().step({"w": [0.0, 1.0]}, {"w": np.zeros(2)})
    assert opt.t == {} and opt.m == {}  # a refused step leaves the optimizer untouched


def test_backward_refills_the_same_grad_arrays():
    model = reference_cnn()
    grads = model.grads()  # taken once, as an optimizer might
    assert all(not g.any() for g in grads.values())  # zeros before the first backward
    x = np.random.default_rng(0).random((3, 1, 8, 8))
    for dout in (np.ones((3, 10)), -np.ones((3, 10))):
        model.forward(x)
        model.backward(dout)
        for name, g in model.grads().items():
            assert g is grads[name], name
    np.testing.assert_allclose(grads["4_dense.b"], -3 * np.ones(10))  # the last backward's, not a sum


@pytest.mark.parametrize("first", ["conv", "dense"])
def test_sequential_backward_without_input_grad(first, monkeypatch):
    rng = np.random.default_rng(2)
    if first == "conv":
        model, x = reference_cnn(channels=3, seed=1), rng.random((4, 1, 8, 8))
    else:
        model, x = Sequential(Dense(6, 5, rng=0), ReLU(), Dense(5, 10, rng=1)), rng.random((4, 6))
    _randomize_biases(model, rng)
    dout = rng.normal(size=(4, 10))
    model.forward(x)
    dx = model.backward(dout)
    assert dx.shape == x.shape
    full = {name: g.copy() for name, g in model.grads().items()}

    asked = []  # input_grad as each layer's pure backward function saw it
    for name in ("conv2d_backward", "dense_backward"):
        original = getattr(cnnlib.layers, name)

        def spy(dout, cache, *, input_grad=True, original=original):
            asked.append(input_grad)
            return original(dout, cache, input_grad=input_grad)

        monkeypatch.setattr(cnnlib.layers, name, spy)
    for g in model.grads().values():
        g[...] = np.nan  # so a gradient left unfilled shows
    model.forward(x)
    assert model.backward(dout, input_grad=False) is None
    assert asked == [True, False]  # the last layer's dx still feeds the ones below it
    for name, g in model.grads().items():
        np.testing.assert_array_equal(g, full[name], err_msg=name)
    with pytest.raises(TypeError, match="input_grad must be True or False"):
        model.backward(dout, input_grad=None)


def test_a_layer_without_weights_does_nothing_without_input_grad(monkeypatch):
    relu = ReLU()
    relu.forward(np.array([[-1.0, 2.0]]))
    np.testing.assert_array_equal(relu.backward(np.array([[3.0, 4.0]])), [[0.0, 4.0]])

    def no_backward(dout, cache):
        raise AssertionError("a layer without weights computed its dx")

    monkeypatch.setattr(relu, "_backward", no_backward)
    assert relu.backward(np.array([[3.0, 4.0]]), input_grad=False) is None


class Scale(Layer):
    """A user's layer with a weight, written without the input_grad flag."""

    def __init__(self):
        super().__init__()
        self._set_params(s=np.array([2.0]))

    def _forward(self, x):
        return self.params["s"] * x, x

    def _backward(self, dout, cache):
        self._store_grads(s=np.array([np.sum(dout * cache)]))
        return dout * self.params["s"]


class ScaleWithFlag(Scale):
    """The same layer, taking the flag; its default is deliberately the unusual one."""

    def _backward(self, dout, cache, *, input_grad=False):
        dx = super()._backward(dout, cache)
        return dx if input_grad else None


def test_layer_backward_always_tells_the_layer_whether_dx_is_wanted():
    layer, x, dout = ScaleWithFlag(), np.arange(4.0).reshape(1, 4), np.ones((1, 4))
    layer.forward(x)
    np.testing.assert_array_equal(layer.backward(dout), 2 * dout)  # asked for dx: gets it
    assert layer.backward(dout, input_grad=False) is None
    np.testing.assert_array_equal(layer.grads["s"], [6.0])


def test_a_layer_written_without_input_grad_still_trains():
    model = Sequential(Scale(), Flatten(), Dense(4, 10, rng=0))
    x = np.arange(8.0).reshape(2, 1, 2, 2)
    dout = np.random.default_rng(0).normal(size=(2, 10))
    model.forward(x)
    assert model.backward(dout).shape == x.shape
    full = model.grads()["0_scale.s"].copy()
    assert full[0] != 0
    model.forward(x)
    assert model.backward(dout, input_grad=False) is None  # its dx is computed, then dropped
    np.testing.assert_array_equal(model.grads()["0_scale.s"], full)
    cnnlib.fit(model, x, np.array([1, 2]), optimizer=SGD(lr=0.1), progress=False)


class UnhashableBackward:
    """A backward that is an object, unhashable (it defines __eq__): the signature cache
    cannot keep it, and it is read afresh each time."""

    __eq__ = object.__eq__
    __hash__ = None

    def __init__(self, scale):
        self.scale, self.asked = scale, []

    def __call__(self, dout, *more, input_grad=True):
        self.asked.append(input_grad)
        self.scale.grads["s"][...] = 1.0
        return 2 * dout if input_grad else None


def test_an_unhashable_backward_is_told_input_grad_in_a_layer_and_in_a_model():
    x, dout = np.arange(4.0).reshape(1, 4), np.ones((1, 4))
    layer = Scale()
    layer._backward = UnhashableBackward(layer)  # Layer.backward calls it with (dout, cache)
    layer.forward(x)
    assert layer.backward(dout, input_grad=False) is None
    model = Sequential(layer, Flatten(), Dense(4, 2, rng=0))
    layer.backward = UnhashableBackward(layer)  # a backward of its own: Sequential calls it with (dout,)
    model.forward(x.reshape(1, 1, 2, 2))
    assert model.backward(np.ones((1, 2)), input_grad=False) is None
    assert model.backward(np.ones((1, 2))).shape == (1, 1, 2, 2)
    assert layer._backward.asked == [False] and layer.backward.asked == [False, True]


def test_a_layer_object_cannot_appear_twice():
    # Reusing a layer would let its second forward overwrite the cache its first backward needs.
    relu = ReLU()
    with pytest.raises(ValueError, match="the same layer object appears more than once"):
        Sequential(Conv2D(1, 2, 3, rng=0), relu, Conv2D(2, 2, 3, rng=1), relu)


def test_save_and_load_take_the_same_path(tmp_path):
    model = reference_cnn(seed=0)
    model.save_weights(tmp_path / "weights")  # written as weights.npz
    other = reference_cnn(seed=1)
    other.load_weights(tmp_path / "weights")
    for name, value in model.params().items():
        np.testing.assert_array_equal(other.params()[name], value)


def test_unseeded_layers_differ_and_seeded_ones_repeat():
    assert not np.array_equal(Conv2D(2, 3, 3).params["w"], Conv2D(2, 3, 3).params["w"])
    np.testing.assert_array_equal(Conv2D(2, 3, 3, rng=7).params["w"], Conv2D(2, 3, 3, rng=7).params["w"])


def test_adam_counts_steps_per_parameter():
    # Adam's first step for a parameter moves it by about lr against its gradient's sign,
    # whatever step the optimizer as a whole is on (PyTorch keeps the count per parameter).
    opt = Adam(lr=0.1)
    a, b = np.zeros(3), np.zeros(3)
    for _ in range(10):
        opt.step({"a": a}, {"a": np.ones(3)})
    opt.step({"a": a, "b": b}, {"a": np.ones(3), "b": np.array([2.0, -3.0, 0.5])})
    np.testing.assert_allclose(b, [-0.1, 0.1, -0.1], rtol=1e-6)


def test_optimizer_state_must_fit_the_parameters():
    opt = SGD(lr=0.1, momentum=0.9)
    opt.step({"w": np.zeros(2)}, {"w": np.ones(2)})
    with pytest.raises(ValueError, match=r"state of shape \(2,\) for w, which now has shape \(3,\)"):
        opt.step({"w": np.zeros(3)}, {"w": np.ones(3)})
    w = np.zeros(2)
    SGD(lr=0.5).step({"w": w}, {"w": [1.0, -2.0]})  # a list is taken as an array
    np.testing.assert_array_equal(w, [-0.5, 1.0])


def test_a_layer_without_forward_says_so():
    class Half(Layer):
        pass
    with pytest.raises(NotImplementedError, match="Half must define _forward"):
        Half().forward(np.zeros((1, 2)))


@pytest.mark.parametrize("size, flat", [(8, 16 * 4 * 4), (28, 16 * 14 * 14), (9, 16 * 4 * 4)])
def test_reference_cnn_fits_its_image_size(size, flat):
    model = reference_cnn(image_size=size)
    assert model.layers[-1].params["w"].shape == (flat, 10)
    assert model.forward(np.zeros((2, 1, size, size))).shape == (2, 10)


def test_reference_cnn_rejects_images_smaller_than_the_pool():
    with pytest.raises(ValueError, match="image_size must be at least 2"):
        reference_cnn(image_size=1)


# --- training and eval modes, buffers (issue 26) -------------------------------------------------


def bn_cnn(seed=0):
    """A small conv-BN-ReLU-pool-dropout-dense network on 8x8 images."""
    rng = np.random.default_rng(seed)
    return Sequential(Conv2D(1, 4, 3, pad=1, rng=rng), cnnlib.BatchNorm2D(4), ReLU(), MaxPool2D(2), Flatten(),
                      cnnlib.Dropout(0.3, rng=seed), Dense(64, 10, rng=rng))


def test_every_layer_has_a_training_flag_and_train_eval_set_them_all():
    model = bn_cnn()
    assert all(layer.training is True for layer in model.layers)
    assert model.eval() is model
    assert all(layer.training is False for layer in model.layers)
    assert model.train() is model
    assert all(layer.training is True for layer in model.layers)
    assert model.train(False) is model and not any(layer.training for layer in model.layers)
    with pytest.raises(TypeError, match="mode must be True or False"):
        model.train("eval")


def test_buffers_are_named_like_params_and_not_trained():
    model = bn_cnn()
    assert list(model.buffers()) == ["1_batchnorm2d.running_mean", "1_batchnorm2d.running_var"]
    assert model.buffers()["1_batchnorm2d.running_var"] is model.layers[1].running_var
    assert "1_batchnorm2d.gamma" in model.params() and "1_batchnorm2d.running_mean" not in model.params()
    assert model.grads().keys() == model.params().keys()
    assert reference_cnn().buffers() == {}
    assert "Total params: " in model.summary((1, 8, 8))  # summary runs an empty batch through BN


def test_running_statistics_move_in_training_only():
    model = bn_cnn()
    x = np.random.default_rng(1).normal(size=(5, 1, 8, 8))
    model.forward(x)
    moved = model.layers[1].running_mean.copy()
    assert not np.array_equal(moved, np.zeros(4))
    model.eval()
    model.forward(x)
    np.testing.assert_array_equal(model.layers[1].running_mean, moved)


def test_save_and_load_round_trip_the_running_statistics(tmp_path):
    model = bn_cnn(seed=0)
    x = np.random.default_rng(2).normal(size=(6, 1, 8, 8))
    for _ in range(3):
        model.forward(x)
    path = model.save_weights(tmp_path / "bn")
    with np.load(path) as saved:
        assert sorted(saved.files) == sorted([*model.params(), *model.buffers()])
    other = bn_cnn(seed=1)
    buffers = other.buffers()  # taken before loading: copied into, not replaced
    other.load_weights(path)
    for name, b in model.buffers().items():
        np.testing.assert_array_equal(other.buffers()[name], b)
        assert other.buffers()[name] is buffers[name]
    for name, p in model.params().items():
        np.testing.assert_array_equal(other.params()[name], p)
    np.testing.assert_array_equal(cnnlib.predict(other, x), cnnlib.predict(model, x))


def test_a_file_without_running_statistics_is_refused_by_a_model_with_batchnorm(tmp_path):
    model = bn_cnn()
    path = tmp_path / "params_only.npz"
    np.savez(path, **model.params())
    before = {name: b.copy() for name, b in model.buffers().items()}
    with pytest.raises(ValueError, match=r"missing from the file: 1_batchnorm2d\.running_mean, "
                                         r"1_batchnorm2d\.running_var"):
        model.load_weights(path)
    for name, b in model.buffers().items():
        np.testing.assert_array_equal(b, before[name])


def test_files_saved_before_buffers_existed_still_load(tmp_path):
    # A model without BatchNorm2D has no buffers: its file holds the parameters only, as every
    # file written before issue 26 did, and it loads as it always did.
    model = reference_cnn(seed=3)
    path = tmp_path / "old.npz"
    np.savez(path, **model.params())  # exactly what save_weights wrote then
    other = reference_cnn(seed=4)
    other.load_weights(path)
    for name, p in model.params().items():
        np.testing.assert_array_equal(other.params()[name], p)
    with np.load(model.save_weights(tmp_path / "new")) as new:
        assert sorted(new.files) == sorted(model.params())  # nothing new in the format


def test_non_finite_running_statistics_are_neither_saved_nor_loaded(tmp_path):
    model = bn_cnn()
    good = model.save_weights(tmp_path / "good")
    model.layers[1].running_var[0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinity in 1_batchnorm2d\.running_var"):
        model.save_weights(tmp_path / "bad")
    arrays = dict(np.load(good))
    arrays["1_batchnorm2d.running_mean"] = np.array([0.0, np.inf, 0.0, 0.0])
    np.savez(tmp_path / "inf.npz", **arrays)
    with pytest.raises(ValueError, match=r"1_batchnorm2d\.running_mean holds inf"):
        bn_cnn().load_weights(tmp_path / "inf.npz")


def test_a_layer_of_ones_own_with_buffers_is_saved_too(tmp_path):
    class Counter(Layer):
        def __init__(self):
            super().__init__()
            self.buffers = {"seen": np.zeros(1)}

        def _forward(self, x):
            self.buffers["seen"] += len(x)
            return x, None

        def _backward(self, dout, cache):
            return dout

    model = Sequential(Counter(), Flatten(), Dense(4, 2, rng=0))
    model.forward(np.zeros((3, 1, 2, 2)))
    path = model.save_weights(tmp_path / "counter")
    other = Sequential(Counter(), Flatten(), Dense(4, 2, rng=1))
    other.load_weights(path)
    np.testing.assert_array_equal(other.buffers()["0_counter.seen"], [3.0])


@pytest.mark.parametrize("name", ["fit", "evaluate", "predict"])
def test_keras_style_methods_point_to_the_functions(name):
    model = Sequential(Flatten(), Dense(4, 2))
    with pytest.raises(AttributeError, match=rf"cnnlib\.{name}\(model, x, \.\.\.\)"):
        getattr(model, name)
    with pytest.raises(AttributeError, match="no attribute 'fitt'"):
        model.fitt
    assert not hasattr(model, "predict") and hasattr(model, "forward")
