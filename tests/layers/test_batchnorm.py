"""Batch normalisation: the loop versions against finite differences, the vectorised ones
against the loops, the running statistics by hand, the layer, and the errors.

PyTorch's agreement is in tests/layers/test_torch_crosscheck.py.
"""

import numpy as np
import pytest

import cnnlib
from cnnlib import (
    BatchNorm2D,
    batchnorm2d_backward,
    batchnorm2d_backward_naive,
    batchnorm2d_forward,
    batchnorm2d_forward_naive,
)
from gradutil import check_grads

IMPLS = {
    "fast": (batchnorm2d_forward, batchnorm2d_backward),
    "naive": (batchnorm2d_forward_naive, batchnorm2d_backward_naive),
}


def make(rng, shape, dtype=np.float64):
    """x far from standardised (so normalising changes it), gamma, beta (nonzero) and running stats."""
    C = shape[1]
    x = (rng.normal(1.5, 2.0, size=shape) + rng.normal(0, 3, size=(1, C, 1, 1))).astype(dtype)
    gamma = rng.uniform(0.5, 2.0, size=C).astype(dtype) * rng.choice([-1, 1], size=C)
    beta = rng.normal(0, 1, size=C).astype(dtype)
    running_mean = rng.normal(0, 1, size=C).astype(dtype)
    running_var = rng.uniform(0.5, 2.0, size=C).astype(dtype)
    return x, gamma, beta, running_mean, running_var


# ------------------------------------------------------------ finite differences on the loops

FD_SHAPES = [(2, 3, 4, 5), (1, 2, 3, 3), (4, 1, 1, 1), (3, 2, 1, 4), (2, 2, 5, 2)]


@pytest.mark.parametrize("shape", FD_SHAPES)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_naive_backward_matches_finite_differences(rng, shape, training):
    x, gamma, beta, rm, rv = make(rng, shape)
    running = {} if training else {"running_mean": rm, "running_var": rv}  # eval reads them, never writes

    def forward(x, gamma, beta):
        return batchnorm2d_forward_naive(x, gamma, beta, training=training, eps=1e-3, **running)[0]

    out, cache = batchnorm2d_forward_naive(x, gamma, beta, training=training, eps=1e-3, **running)
    dout = rng.standard_normal(out.shape)
    grads = batchnorm2d_backward_naive(dout, cache)
    check_grads(forward, [x, gamma, beta], grads, dout)


def test_the_gradient_through_the_statistics_is_not_negligible(rng):
    # A backward that treats mean and var as constants (the eval formula in training) must
    # fail the check above: here it is off by far more than the tolerance.
    x, gamma, beta, _, _ = make(rng, (2, 3, 4, 5))
    out, cache = batchnorm2d_forward_naive(x, gamma, beta)
    dout = rng.standard_normal(out.shape)
    dx, _, _ = batchnorm2d_backward_naive(dout, cache)
    constants = dout * (gamma / np.sqrt(cache[3] + 1e-5)).reshape(1, 3, 1, 1)
    assert cnnlib.rel_error(dx, constants) > 0.1


# --------------------------------------------------------------- the vectorised version is the loops'

SHAPES = [(2, 3, 4, 5), (1, 3, 4, 4), (5, 1, 3, 7), (3, 2, 1, 1), (2, 4, 6, 1), (1, 1, 2, 9), (7, 2, 3, 2)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_fast_equals_naive(rng, shape, training):
    x, gamma, beta, rm, rv = make(rng, shape)
    results = {}
    for impl, (forward, backward) in IMPLS.items():
        running_mean, running_var = rm.copy(), rv.copy()
        out, cache = forward(x, gamma, beta, training=training, running_mean=running_mean,
                             running_var=running_var, momentum=0.3)
        results[impl] = out, cache, running_mean, running_var
    dout = rng.standard_normal(x.shape)
    (out_f, cache_f, rm_f, rv_f), (out_n, cache_n, rm_n, rv_n) = results["fast"], results["naive"]
    close = dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out_f, out_n, **close)
    for entry_f, entry_n in zip(cache_f, cache_n):  # the same cache layout, the same values
        if isinstance(entry_f, np.ndarray):
            np.testing.assert_allclose(entry_f, entry_n, **close)
        else:
            assert entry_f == entry_n
    np.testing.assert_allclose(rm_f, rm_n, **close)
    np.testing.assert_allclose(rv_f, rv_n, **close)
    # Each backward on each forward's cache: the caches are interchangeable.
    for cache in (cache_f, cache_n):
        for got, want in zip(batchnorm2d_backward(dout, cache), batchnorm2d_backward_naive(dout, cache)):
            np.testing.assert_allclose(got, want, **close)


# ------------------------------------------------------------------------ what the forward computes


def test_training_standardises_each_channel_over_batch_and_pixels(rng):
    x, _, _, _, _ = make(rng, (6, 3, 5, 4))
    C = x.shape[1]
    out, _ = batchnorm2d_forward(x, np.ones(C), np.zeros(C), eps=1e-12)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1, rtol=1e-9)  # the biased variance is 1
    # per channel, not per sample: one sample's channel is not standardised on its own
    assert np.abs(out[0].mean(axis=(1, 2))).max() > 0.05


def test_gamma_and_beta_scale_and_shift_each_channel(rng):
    x, gamma, beta, _, _ = make(rng, (4, 3, 2, 2))
    plain, _ = batchnorm2d_forward(x, np.ones(3), np.zeros(3))
    out, _ = batchnorm2d_forward(x, gamma, beta)
    np.testing.assert_allclose(out, plain * gamma.reshape(1, 3, 1, 1) + beta.reshape(1, 3, 1, 1), rtol=1e-13,
                               atol=1e-13)


@pytest.mark.parametrize("impl", IMPLS)
def test_running_statistics_by_hand(rng, impl):
    forward, _ = IMPLS[impl]
    x, gamma, beta, rm, rv = make(rng, (3, 2, 4, 5))
    running_mean, running_var = rm.copy(), rv.copy()
    refs = running_mean, running_var
    forward(x, gamma, beta, running_mean=running_mean, running_var=running_var, momentum=0.25)
    assert (running_mean, running_var) == refs  # updated in place, not replaced
    M = 3 * 4 * 5
    mean = x.mean(axis=(0, 2, 3))
    unbiased = x.var(axis=(0, 2, 3)) * M / (M - 1)
    np.testing.assert_allclose(running_mean, 0.75 * rm + 0.25 * mean, rtol=1e-13)
    np.testing.assert_allclose(running_var, 0.75 * rv + 0.25 * unbiased, rtol=1e-13)


@pytest.mark.parametrize("impl", IMPLS)
def test_momentum_zero_keeps_and_one_replaces_the_running_statistics(rng, impl):
    forward, _ = IMPLS[impl]
    x, gamma, beta, rm, rv = make(rng, (2, 2, 3, 3))
    kept_mean, kept_var = rm.copy(), rv.copy()
    forward(x, gamma, beta, running_mean=kept_mean, running_var=kept_var, momentum=0)
    np.testing.assert_array_equal(kept_mean, rm)
    np.testing.assert_array_equal(kept_var, rv)
    new_mean, new_var = rm.copy(), rv.copy()
    forward(x, gamma, beta, running_mean=new_mean, running_var=new_var, momentum=1)
    np.testing.assert_allclose(new_mean, x.mean(axis=(0, 2, 3)), rtol=1e-13)
    np.testing.assert_allclose(new_var, x.var(axis=(0, 2, 3), ddof=1), rtol=1e-13)


@pytest.mark.parametrize("impl", IMPLS)
def test_eval_uses_the_running_statistics_and_changes_nothing(rng, impl):
    forward, backward = IMPLS[impl]
    x, gamma, beta, rm, rv = make(rng, (1, 3, 2, 3))  # N = 1 is fine in eval
    running_mean, running_var = rm.copy(), rv.copy()
    out, cache = forward(x, gamma, beta, training=False, running_mean=running_mean, running_var=running_var,
                         eps=1e-4)
    expected = ((x - rm.reshape(1, 3, 1, 1)) / np.sqrt(rv.reshape(1, 3, 1, 1) + 1e-4) * gamma.reshape(1, 3, 1, 1)
                + beta.reshape(1, 3, 1, 1))
    np.testing.assert_allclose(out, expected, rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(running_mean, rm)
    np.testing.assert_array_equal(running_var, rv)
    # a sample's output does not depend on the rest of its batch
    batch = np.concatenate([x, rng.normal(size=(4, 3, 2, 3))])
    np.testing.assert_allclose(forward(batch, gamma, beta, training=False, running_mean=rm, running_var=rv,
                                       eps=1e-4)[0][:1], out, rtol=1e-13)
    dout = rng.standard_normal(x.shape)
    dx, _, _ = backward(dout, cache)
    np.testing.assert_allclose(dx, dout * (gamma / np.sqrt(rv + 1e-4)).reshape(1, 3, 1, 1), rtol=1e-13)


@pytest.mark.parametrize("impl", IMPLS)
def test_training_without_running_statistics_works_and_updates_nothing(rng, impl):
    forward, backward = IMPLS[impl]
    x, gamma, beta, _, _ = make(rng, (2, 2, 3, 3))
    out, cache = forward(x, gamma, beta)
    assert out.shape == x.shape
    assert [g.shape for g in backward(rng.standard_normal(x.shape), cache)] == [x.shape, (2,), (2,)]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_an_empty_batch_gives_empty_output_and_updates_nothing(impl, training):
    forward, backward = IMPLS[impl]
    rm, rv = np.array([0.5, -1.0]), np.array([2.0, 3.0])
    out, cache = forward(np.zeros((0, 2, 3, 3)), np.ones(2), np.zeros(2), training=training,
                         running_mean=rm, running_var=rv)
    assert out.shape == (0, 2, 3, 3)
    np.testing.assert_array_equal(rm, [0.5, -1.0])
    np.testing.assert_array_equal(rv, [2.0, 3.0])
    dx, dgamma, dbeta = backward(np.zeros((0, 2, 3, 3)), cache)
    assert dx.shape == (0, 2, 3, 3)
    np.testing.assert_array_equal(dgamma, [0, 0])
    np.testing.assert_array_equal(dbeta, [0, 0])


@pytest.mark.parametrize("impl", IMPLS)
def test_float32_stays_float32(rng, impl):
    forward, backward = IMPLS[impl]
    x, gamma, beta, rm, rv = (a.astype(np.float32) for a in make(rng, (3, 2, 4, 4)))
    for training in (True, False):
        out, cache = forward(x, gamma, beta, training=training, running_mean=rm, running_var=rv)
        assert out.dtype == np.float32
        assert rm.dtype == np.float32 and rv.dtype == np.float32
        grads = backward(rng.standard_normal(x.shape).astype(np.float32), cache)
        assert [g.dtype for g in grads] == [np.float32] * 3
        # and agrees with the float64 computation to float32's precision
        out64, _ = forward(x.astype(np.float64), gamma.astype(np.float64), beta.astype(np.float64),
                           training=training, running_mean=rm.astype(np.float64), running_var=rv.astype(np.float64))
        np.testing.assert_allclose(out, out64, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------------------- errors

GOOD = dict(x=np.zeros((2, 3, 2, 2)), gamma=np.ones(3), beta=np.zeros(3))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("change, error, match", [
    ({"x": np.zeros((2, 3, 4))}, ValueError, r"x must be 4-D \(N, C, H, W\)"),
    ({"gamma": np.ones(2)}, ValueError,
     r"gamma must have one value per channel: x has 3 channels.*gamma has shape \(2,\)"),
    ({"beta": np.zeros((3, 1))}, ValueError, r"beta must have one value per channel.*\(3, 1\)"),
    ({"running_mean": np.zeros(3)}, ValueError, "running_mean and running_var go together"),
    ({"running_mean": np.zeros(2), "running_var": np.ones(3)}, ValueError,
     r"running_mean must have one value per channel, shape \(3,\), got shape \(2,\)"),
    ({"running_mean": np.zeros(3), "running_var": [1.0, 1.0, 1.0]}, TypeError,
     r"running_var must be a float ndarray of shape \(3,\) \(training updates it in place\), got list"),
    ({"running_mean": np.zeros(3, dtype=int), "running_var": np.ones(3)}, TypeError,
     "running_mean must be a float ndarray.*got an array of dtype int"),
    ({"training": False}, ValueError, r"eval mode \(training=False\) normalises with the running statistics"),
    ({"training": False, "running_mean": np.zeros(3), "running_var": np.array([1.0, -0.5, 1.0])}, ValueError,
     "running_var must be >= 0"),
    ({"x": np.zeros((1, 3, 1, 1))}, ValueError, r"more than one value per channel.*N\*H\*W = 1 value"),
    ({"eps": 0}, ValueError, r"eps must be in \(0, inf\), got 0.0"),
    ({"eps": -1e-5}, ValueError, "eps must be in"),
    ({"eps": float("nan")}, ValueError, "eps must be in"),
    ({"momentum": -0.1}, ValueError, r"momentum must be in \[0, 1\], got -0.1"),
    ({"momentum": 1.5}, ValueError, r"momentum must be in \[0, 1\]"),
    ({"momentum": "0.1"}, TypeError, "momentum must be a number"),
    ({"training": 1}, TypeError, "training must be True or False"),
])
def test_bad_arguments_are_refused(impl, change, error, match):
    forward, _ = IMPLS[impl]
    kwargs = {**GOOD, **change}
    with pytest.raises(error, match=match):
        forward(**kwargs)


def test_a_refused_call_leaves_the_running_statistics_alone():
    rm, rv = np.zeros(3), np.ones(3)
    with pytest.raises(ValueError):
        batchnorm2d_forward(np.ones((2, 3, 2, 2)), np.ones(3), np.zeros(3), running_mean=rm, running_var=rv,
                            momentum=2.0)
    np.testing.assert_array_equal(rm, 0)
    np.testing.assert_array_equal(rv, 1)


def test_one_sample_with_several_pixels_trains():
    out, _ = batchnorm2d_forward(np.arange(8.0).reshape(1, 2, 2, 2), np.ones(2), np.zeros(2))
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-12)


@pytest.mark.parametrize("backward", [batchnorm2d_backward, batchnorm2d_backward_naive])
def test_backward_refuses_another_cache_or_a_wrong_dout(backward):
    _, cache = batchnorm2d_forward(**GOOD)
    name = backward.__name__
    with pytest.raises(TypeError, match=rf"{name} needs the cache batchnorm2d_forward .*got NoneType"):
        backward(np.zeros((2, 3, 2, 2)), None)
    _, conv_cache = cnnlib.conv2d_forward(np.zeros((2, 3, 2, 2)), np.zeros((1, 3, 1, 1)), np.zeros(1))
    with pytest.raises(TypeError, match="got tuple of 6 entries"):
        backward(np.zeros((2, 3, 2, 2)), conv_cache)
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 3, 2, 2\), got \(2, 3, 2\)"):
        backward(np.zeros((2, 3, 2)), cache)


# ---------------------------------------------------------------------------------------- the layer


def test_layer_starts_as_the_identity_and_matches_the_functions(rng):
    layer = BatchNorm2D(3, momentum=0.2, eps=1e-3)
    assert layer.training is True
    np.testing.assert_array_equal(layer.params["gamma"], np.ones(3))
    np.testing.assert_array_equal(layer.params["beta"], np.zeros(3))
    np.testing.assert_array_equal(layer.running_mean, np.zeros(3))
    np.testing.assert_array_equal(layer.running_var, np.ones(3))
    assert layer.buffers["running_mean"] is layer.running_mean
    x, gamma, beta, _, _ = make(rng, (4, 3, 2, 5))
    layer.params["gamma"][...], layer.params["beta"][...] = gamma, beta
    dout = rng.standard_normal(x.shape)
    rm, rv = np.zeros(3), np.ones(3)
    for training in (True, False, True):
        layer.training = training
        out = layer.forward(x)
        dx = layer.backward(dout)
        want, cache = batchnorm2d_forward(x, gamma, beta, training=training, running_mean=rm, running_var=rv,
                                          momentum=0.2, eps=1e-3)
        want_dx, dgamma, dbeta = batchnorm2d_backward(dout, cache)
        np.testing.assert_array_equal(out, want)
        np.testing.assert_array_equal(dx, want_dx)
        np.testing.assert_array_equal(layer.grads["gamma"], dgamma)
        np.testing.assert_array_equal(layer.grads["beta"], dbeta)
        np.testing.assert_array_equal(layer.running_mean, rm)
        np.testing.assert_array_equal(layer.running_var, rv)
    assert repr(layer) == "BatchNorm2D(3, momentum=0.2, eps=0.001)"


def test_layer_dtype_and_output_shape():
    layer = BatchNorm2D(2, dtype=np.float32)
    assert {a.dtype for a in (*layer.params.values(), *layer.buffers.values())} == {np.dtype(np.float32)}
    out = layer.forward(np.random.default_rng(0).normal(size=(3, 2, 4, 4)).astype(np.float32))
    assert out.dtype == np.float32 and layer.running_var.dtype == np.float32
    before = layer.running_mean.copy()
    assert layer.output_shape((2, 5, 7)) == (2, 5, 7)  # an empty batch: no update
    np.testing.assert_array_equal(layer.running_mean, before)
    with pytest.raises(ValueError, match="gamma must have one value per channel: x has 3 channels"):
        layer.output_shape((3, 5, 7))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"num_channels": 0}, ValueError, "num_channels must be >= 1"),
    ({"num_channels": 2.0}, TypeError, "num_channels must be an int"),
    ({"num_channels": 2, "momentum": 1.1}, ValueError, r"momentum must be in \[0, 1\]"),
    ({"num_channels": 2, "eps": 0}, ValueError, r"eps must be in \(0, inf\)"),
    ({"num_channels": 2, "dtype": np.int32}, TypeError, "dtype must be"),
])
def test_layer_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        BatchNorm2D(**kwargs)
