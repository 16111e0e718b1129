"""Dropout: the mask's statistics, its reuse in the backward, eval mode, the layer, the errors."""

import numpy as np
import pytest

import cnnlib
from cnnlib import Dense, Dropout, Sequential, dropout_backward, dropout_forward
from gradutil import check_grads


def test_inverted_dropout_keeps_1_minus_p_and_scales_them(rng):
    x = rng.uniform(1, 2, size=(200, 50))
    out, (keep, scale, shape) = dropout_forward(x, p=0.3, rng=np.random.default_rng(0))
    assert keep.dtype == bool and keep.shape == x.shape and shape == x.shape and scale == 1 / 0.7
    np.testing.assert_array_equal(out[~keep], 0)
    np.testing.assert_allclose(out[keep], x[keep] / 0.7, rtol=1e-15)
    # 10,000 values: the kept fraction is 0.7 to within 4 standard deviations (0.0046 each)
    assert abs(keep.mean() - 0.7) < 4 * np.sqrt(0.7 * 0.3 / keep.size)
    # the expected output is the input: the mean over many values stays x's
    ones = np.ones((400, 500))
    assert abs(dropout_forward(ones, p=0.5, rng=np.random.default_rng(1))[0].mean() - 1) < 4 * np.sqrt(1 / ones.size)


def test_masks_are_independent_across_values_and_calls(rng):
    gen = np.random.default_rng(2)
    x = np.ones((100, 100))
    _, (first, _, _) = dropout_forward(x, p=0.5, rng=gen)
    _, (second, _, _) = dropout_forward(x, p=0.5, rng=gen)
    assert 0.4 < (first == second).mean() < 0.6  # a new mask each call, unrelated to the last
    # no structure across rows or columns: every row and column drops some and keeps some
    assert first.any(axis=0).all() and (~first).any(axis=0).all()
    assert first.any(axis=1).all() and (~first).any(axis=1).all()


def test_the_same_generator_state_gives_the_same_mask():
    x = np.arange(24.0).reshape(2, 3, 2, 2)
    a, _ = dropout_forward(x, p=0.5, rng=np.random.default_rng(7))
    b, _ = dropout_forward(x, p=0.5, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)


def test_backward_uses_the_forward_mask(rng):
    x = rng.normal(size=(4, 3, 5, 5))
    out, cache = dropout_forward(x, p=0.4, rng=np.random.default_rng(3))
    dout = rng.standard_normal(x.shape)
    for _ in range(2):  # called twice: the same mask both times, nothing redrawn
        dx = dropout_backward(dout, cache)
        np.testing.assert_array_equal(dx != 0, out != 0)
        np.testing.assert_allclose(dx, dout * (out != 0) / 0.6, rtol=1e-15)


def test_backward_matches_finite_differences_for_a_fixed_mask(rng):
    x = rng.normal(size=(3, 4, 2, 2))
    gen_state = np.random.default_rng(5).bit_generator.state

    def forward(x):  # the same mask at every call, as finite differences need
        gen = np.random.default_rng()
        gen.bit_generator.state = gen_state
        return dropout_forward(x, p=0.5, rng=gen)[0]

    gen = np.random.default_rng()
    gen.bit_generator.state = gen_state
    _, cache = dropout_forward(x, p=0.5, rng=gen)
    dout = rng.standard_normal(x.shape)
    check_grads(forward, [x], [dropout_backward(dout, cache)], dout)


@pytest.mark.parametrize("training, p", [(False, 0.5), (True, 0.0), (False, 0.0)])
def test_eval_mode_and_p_zero_are_the_identity_and_draw_nothing(rng, training, p):
    x = rng.normal(size=(3, 4))
    gen = np.random.default_rng(0)
    state = gen.bit_generator.state
    out, cache = dropout_forward(x, p=p, training=training, rng=gen)
    assert out is x
    assert gen.bit_generator.state == state
    dout = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(dropout_backward(dout, cache), dout)


def test_rng_none_draws_fresh_masks():
    x = np.ones((50, 50))
    a, _ = dropout_forward(x, p=0.5)
    b, _ = dropout_forward(x, p=0.5)
    assert not np.array_equal(a, b)


def test_float32_stays_float32(rng):
    x = rng.normal(size=(4, 6)).astype(np.float32)
    out, cache = dropout_forward(x, p=0.25, rng=np.random.default_rng(0))
    assert out.dtype == np.float32
    assert dropout_backward(np.ones_like(x), cache).dtype == np.float32
    np.testing.assert_array_equal(out[out != 0], x[out != 0] * np.float32(1 / 0.75))


@pytest.mark.parametrize("p, error, match", [
    (1.0, ValueError, r"p must be in \[0, 1\).*got 1.0 \(p = 1 would drop everything"),
    (-0.1, ValueError, r"p must be in \[0, 1\)"),
    (float("nan"), ValueError, r"p must be in \[0, 1\)"),
    (1.5, ValueError, r"p must be in \[0, 1\)"),
    ("0.5", TypeError, "p must be a number"),
    (True, TypeError, "p must be a number"),
])
def test_bad_p_is_refused(p, error, match):
    with pytest.raises(error, match=match):
        dropout_forward(np.ones((2, 2)), p=p)
    with pytest.raises(error, match=match):
        Dropout(p)


def test_bad_rng_training_flag_and_cache_are_refused():
    with pytest.raises(TypeError, match="rng must be a np.random.Generator or None, got 0: an int seed would draw "
                                        "the same mask at every call"):
        dropout_forward(np.ones(3), p=0.5, rng=0)
    with pytest.raises(TypeError, match="rng must be a np.random.Generator"):
        dropout_forward(np.ones(3), p=0.5, rng=np.random.RandomState(0))
    with pytest.raises(TypeError, match="training must be True or False"):
        dropout_forward(np.ones(3), p=0.5, training="no")
    with pytest.raises(TypeError, match="dropout_backward needs the cache dropout_forward returned"):
        dropout_backward(np.ones(3), np.ones(3))
    _, cache = dropout_forward(np.ones((2, 3)), p=0.5, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 3\), got \(3, 2\)"):
        dropout_backward(np.ones((3, 2)), cache)
    _, eval_cache = dropout_forward(np.ones((2, 3)), p=0.5, training=False)
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 3\)"):
        dropout_backward(np.ones((3, 2)), eval_cache)


# ---------------------------------------------------------------------------------------- the layer


def test_layer_draws_a_new_mask_each_step_from_its_own_generator():
    layer = Dropout(0.5, rng=11)
    assert layer.training is True and layer.params == {} and repr(layer) == "Dropout(p=0.5)"
    x = np.ones((20, 30))
    first = layer.forward(x)
    dx = layer.backward(np.ones_like(x))
    np.testing.assert_array_equal(dx, first)  # the same mask, the same scale 2
    second = layer.forward(x)
    assert not np.array_equal(first, second)
    again = Dropout(0.5, rng=11)  # the same seed, the same sequence of masks
    np.testing.assert_array_equal(again.forward(x), first)
    np.testing.assert_array_equal(again.forward(x), second)
    shared = np.random.default_rng(11)
    assert Dropout(0.5, rng=shared).rng is shared
    layer.training = False
    assert layer.forward(x) is x
    with pytest.raises(TypeError, match="rng must be an int seed, a np.random.Generator or None"):
        Dropout(0.5, rng=1.5)


def test_layer_output_shape_draws_nothing():
    layer = Dropout(0.3, rng=0)
    state = layer.rng.bit_generator.state
    assert layer.output_shape((3, 4, 5)) == (3, 4, 5)
    assert layer.rng.bit_generator.state == state


def test_in_a_model_eval_mode_makes_outputs_deterministic(rng):
    model = Sequential(Dense(6, 20, rng=0), Dropout(0.5, rng=1), Dense(20, 3, rng=2))
    x = rng.normal(size=(5, 6))
    assert not np.array_equal(model.forward(x), model.forward(x))  # training: a new mask each time
    model.eval()
    np.testing.assert_array_equal(model.forward(x), model.forward(x))
    # evaluate and predict run in eval mode whatever the model's mode, and put it back
    model.train()
    logits = cnnlib.predict(model, x)
    np.testing.assert_array_equal(logits, cnnlib.predict(model, x))
    assert all(layer.training for layer in model.layers)
