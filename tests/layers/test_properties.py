"""Property-based tests (hypothesis): random shapes, kernels, strides and pads.

Finite differences are slow, so across random configurations these tests check cheaper
facts that a wrong backward violates: fast == naive, the output-size formula, and the
adjoint identity. Convolution is linear in x (and in w), so for out = conv(x) - b,
sum(dout * out) == sum(dx * x) == sum(dw * w) exactly, up to rounding.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import cnnlib as c

SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def conv_config(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    # Inputs at least as large as the kernel once padded, so the configuration is valid.
    h = draw(st.integers(max(1, kh - 2 * ph), 9))
    w = draw(st.integers(max(1, kw - 2 * pw), 9))
    n, ch, f = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    return (n, ch, h, w), (f, ch, kh, kw), (sh, sw), (ph, pw), seed


@st.composite
def pool_config(draw, padded=True):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = (draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))) if padded else (0, 0)
    h = draw(st.integers(max(1, kh - 2 * ph), 9))
    w = draw(st.integers(max(1, kw - 2 * pw), 9))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)), h, w)
    return shape, (kh, kw), (sh, sw), (ph, pw), draw(st.integers(0, 2**32 - 1))


@SETTINGS
@given(conv_config())
def test_conv_fast_matches_naive_and_adjoint(config):
    x_shape, w_shape, stride, pad, seed = config
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    out, cache = c.conv2d_forward(x, w, b, stride=stride, pad=pad)
    out_n, cache_n = c.conv2d_forward_naive(x, w, b, stride=stride, pad=pad)
    expected_hw = tuple((x_shape[2 + i] + 2 * pad[i] - w_shape[2 + i]) // stride[i] + 1 for i in range(2))
    assert out.shape == (x_shape[0], w_shape[0], *expected_hw)
    np.testing.assert_allclose(out, out_n, rtol=1e-10, atol=1e-10)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = c.conv2d_backward(dout, cache)
    for fast, naive in zip((dx, dw, db), c.conv2d_backward_naive(dout, cache_n)):
        np.testing.assert_allclose(fast, naive, rtol=1e-10, atol=1e-10)
    linear_part = np.sum(dout * (out - b[:, None, None]))
    np.testing.assert_allclose(np.sum(dx * x), linear_part, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(np.sum(dw * w), linear_part, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(db, dout.sum(axis=(0, 2, 3)), rtol=1e-12)


@SETTINGS
@given(pool_config(), st.booleans())
def test_maxpool_fast_matches_naive(config, ties):
    shape, size, stride, pad, seed = config
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, shape).astype(np.float64) if ties else rng.standard_normal(shape)
    out, cache = c.maxpool2d_forward(x, size=size, stride=stride, pad=pad)
    out_n, cache_n = c.maxpool2d_forward_naive(x, size=size, stride=stride, pad=pad)
    np.testing.assert_array_equal(out, out_n)
    dout = rng.standard_normal(out.shape)
    dx = c.maxpool2d_backward(dout, cache)
    np.testing.assert_allclose(dx, c.maxpool2d_backward_naive(dout, cache_n), rtol=1e-12, atol=1e-14)
    # Max-pooling picks one input per output, so it is linear once the winners are fixed.
    np.testing.assert_allclose(np.sum(dx * x), np.sum(dout * out), rtol=1e-9, atol=1e-9)


@SETTINGS
@given(pool_config(padded=False))
def test_avgpool_fast_matches_naive_and_adjoint(config):
    shape, size, stride, _, seed = config
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    out, cache = c.avgpool2d_forward(x, size=size, stride=stride)
    out_n, cache_n = c.avgpool2d_forward_naive(x, size=size, stride=stride)
    np.testing.assert_allclose(out, out_n, rtol=1e-10, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    dx = c.avgpool2d_backward(dout, cache)
    np.testing.assert_allclose(dx, c.avgpool2d_backward_naive(dout, cache_n), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.sum(dx * x), np.sum(dout * out), rtol=1e-9, atol=1e-9)


@SETTINGS
@given(st.lists(st.integers(1, 4), min_size=2, max_size=5), st.integers(0, 2**32 - 1))
def test_flatten_round_trip(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    out, cache = c.flatten_forward(x)
    assert out.shape == (shape[0], int(np.prod(shape[1:])))
    np.testing.assert_array_equal(c.flatten_backward(out, cache), x)
    np.testing.assert_array_equal(out.ravel(), x.ravel())  # C order, sample after sample
