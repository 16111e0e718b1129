"""conv2d: finite differences on the naive loops, fast == naive under every engine mode,
float32, and hand-computed examples.

Finite differences check the naive version (no mode changes its loops); the fast version is
held to the naive one within 1e-12 on the same cases, once per way it can split its work.
"""

import numpy as np
import pytest

import cnnlib.engine.conv
from cnnlib import (
    conv2d_backward,
    conv2d_backward_naive,
    conv2d_forward,
    conv2d_forward_naive,
)
from gradutil import check_grads

# A test marked so runs once per way the fast version can split its work (conftest): the batch
# in one piece and split across threads, each with the products image by image and one per
# chunk, each with the slices whole and cut into chunks of 2 images. Only tests that run the
# fast version on a batch of 2 or more take it: a batch of 1 goes the same way in every mode,
# and the naive loops ignore the modes.
every_mode = pytest.mark.usefixtures("slicing", "products", "chunking")


# (x shape, w shape, stride, pad): every case the guide lists, and the ones peers got wrong.
CASES = [
    pytest.param((2, 3, 7, 5), (4, 3, 3, 2), 1, 0, id="non-square, pad 0"),
    pytest.param((1, 2, 6, 6), (3, 2, 3, 3), 1, 1, id="batch 1, pad 1"),
    pytest.param((2, 3, 7, 5), (4, 3, 3, 2), 2, 1, id="stride 2, pad 1"),
    pytest.param((2, 2, 8, 7), (3, 2, 2, 3), (2, 1), (0, 2), id="stride and pad pairs"),
    pytest.param((1, 2, 4, 5), (2, 2, 3, 3), 2, 2, id="pad 2, stride 2"),
    pytest.param((2, 1, 6, 6), (2, 1, 3, 3), 2, 0, id="stride skips the last row"),
    pytest.param((2, 3, 6, 4), (2, 3, 1, 1), 3, 0, id="1x1 kernel, stride 3"),
    pytest.param((1, 1, 5, 4), (2, 1, 5, 4), 1, 0, id="kernel as large as the input"),
    pytest.param((5, 2, 6, 5), (3, 2, 3, 2), (2, 1), 1, id="batch 5, uneven slices"),
    pytest.param((3, 1, 4, 5), (2, 1, 2, 3), 1, (2, 1), id="batch 3, stride 1, pad pair"),
    pytest.param((2, 1, 5, 4), (7, 1, 2, 3), 1, 1, id="more filters than taps"),  # F > C*KH*KW
]


def make(rng, x_shape, w_shape, dtype=np.float64):
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)  # nonzero biases, so db is exercised
    return x, w, b


@pytest.mark.parametrize("x_shape, w_shape, stride, pad", CASES)
def test_naive_backward_matches_finite_differences(rng, x_shape, w_shape, stride, pad):
    # Centred differences in float64 with a random dout and nonzero biases (make), on every case.
    x, w, b = make(rng, x_shape, w_shape)
    out, cache = conv2d_forward_naive(x, w, b, stride=stride, pad=pad)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv2d_backward_naive(dout, cache)
    check_grads(lambda x, w, b: conv2d_forward_naive(x, w, b, stride=stride, pad=pad)[0], [x, w, b], [dx, dw, db],
                dout)


@every_mode
@pytest.mark.parametrize("x_shape, w_shape, stride, pad", CASES)
def test_fast_matches_naive(rng, x_shape, w_shape, stride, pad):
    x, w, b = make(rng, x_shape, w_shape)
    out, cache = conv2d_forward(x, w, b, stride=stride, pad=pad)
    out_n, cache_n = conv2d_forward_naive(x, w, b, stride=stride, pad=pad)
    np.testing.assert_allclose(out, out_n, rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    for fast, naive in zip(conv2d_backward(dout, cache), conv2d_backward_naive(dout, cache_n)):
        np.testing.assert_allclose(fast, naive, rtol=1e-12, atol=1e-12)


def float32_matches_float64(rng, forward, backward, x_shape, w_shape, stride, pad):
    """forward and backward in float32 stay float32 and agree with the naive float64 result."""
    x, w, b = make(rng, x_shape, w_shape)
    out64, cache64 = conv2d_forward_naive(x, w, b, stride=stride, pad=pad)
    dout = rng.standard_normal(out64.shape)
    grads64 = conv2d_backward_naive(dout, cache64)
    out32, cache32 = forward(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), stride=stride, pad=pad)
    grads32 = backward(dout.astype(np.float32), cache32)
    for got, want in zip((out32, *grads32), (out64, *grads64)):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)


@every_mode
@pytest.mark.parametrize("x_shape, w_shape, stride, pad", CASES)
def test_float32_stays_float32_and_matches_float64(rng, x_shape, w_shape, stride, pad):
    float32_matches_float64(rng, conv2d_forward, conv2d_backward, x_shape, w_shape, stride, pad)


@pytest.mark.parametrize("x_shape, w_shape, stride, pad", CASES)
def test_naive_float32_stays_float32_and_matches_float64(rng, x_shape, w_shape, stride, pad):
    float32_matches_float64(rng, conv2d_forward_naive, conv2d_backward_naive, x_shape, w_shape, stride, pad)


def test_hand_computed_example():
    # A kernel [[1, 0], [0, -1]] subtracts each pixel's lower-right neighbour from it; on
    # x = 0..8 laid out 3x3 that difference is always -4, so every output is -4 + b.
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    w = np.array([[1.0, 0.0], [0.0, -1.0]]).reshape(1, 1, 2, 2)
    b = np.array([0.5])
    for forward in (conv2d_forward, conv2d_forward_naive):
        out, _ = forward(x, w, b)
        np.testing.assert_array_equal(out, np.full((1, 1, 2, 2), -3.5))
    # With dout all ones here (a hand example, not a gradient check), dx counts how often
    # each pixel was multiplied by +1 minus how often by -1.
    _, cache = conv2d_forward(x, w, b)
    dx, dw, db = conv2d_backward(np.ones((1, 1, 2, 2)), cache)
    np.testing.assert_array_equal(dx[0, 0], [[1, 1, 0], [1, 0, -1], [0, -1, -1]])
    np.testing.assert_array_equal(dw[0, 0], [[0 + 1 + 3 + 4, 1 + 2 + 4 + 5], [3 + 4 + 6 + 7, 4 + 5 + 7 + 8]])
    np.testing.assert_array_equal(db, [4.0])


def test_pad_zero_backward_is_not_empty(rng):
    # The classic bug: dx = dx_pad[:, :, pad:-pad, pad:-pad] is empty when pad == 0.
    x, w, b = make(rng, (1, 1, 4, 4), (1, 1, 3, 3))
    for forward, backward in [(conv2d_forward, conv2d_backward), (conv2d_forward_naive, conv2d_backward_naive)]:
        out, cache = forward(x, w, b, pad=0)
        dx, _, _ = backward(rng.standard_normal(out.shape), cache)
        assert dx.shape == x.shape
        assert np.count_nonzero(dx) == dx.size


@every_mode
def test_padding_alone_keeps_output_size(rng):
    # "Same" padding for a 3x3 kernel: pad 1 keeps H x W, and zero padding adds nothing at the
    # centre, so interior outputs match the unpadded convolution shifted by one pixel.
    x, w, b = make(rng, (2, 2, 6, 5), (3, 2, 3, 3))
    same, _ = conv2d_forward(x, w, b, pad=1)
    valid, _ = conv2d_forward(x, w, b, pad=0)
    assert same.shape == (2, 3, 6, 5)
    np.testing.assert_allclose(same[:, :, 1:-1, 1:-1], valid, rtol=1e-12, atol=1e-12)


def test_uncovered_pixels_get_zero_gradient(rng):
    # 3x3 kernel, stride 2 on 6x6: windows start at rows 0 and 2, so row 5 and column 5 never
    # reach an output and must get exactly zero gradient.
    x, w, b = make(rng, (1, 1, 6, 6), (1, 1, 3, 3))
    out, cache = conv2d_forward(x, w, b, stride=2)
    assert out.shape == (1, 1, 2, 2)
    dx, _, _ = conv2d_backward(rng.standard_normal(out.shape), cache)
    assert np.all(dx[0, 0, 5, :] == 0) and np.all(dx[0, 0, :, 5] == 0)
    assert np.all(dx[0, 0, :5, :5] != 0)


@every_mode
def test_caches_are_interchangeable(rng):
    # Both versions document the same cache, so each backward accepts the other's.
    x, w, b = make(rng, (2, 2, 5, 6), (3, 2, 2, 3))
    out, cache = conv2d_forward(x, w, b, stride=(1, 2), pad=1)
    _, cache_n = conv2d_forward_naive(x, w, b, stride=(1, 2), pad=1)
    dout = rng.standard_normal(out.shape)
    for a, c in zip(conv2d_backward(dout, cache_n), conv2d_backward_naive(dout, cache)):
        np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-12)


def test_integer_input_becomes_float64(rng):
    x = rng.integers(0, 256, (1, 1, 4, 4), dtype=np.uint8)  # pixels as they come from files
    w, b = np.ones((1, 1, 2, 2), np.float32), np.zeros(1, np.float32)
    out, _ = conv2d_forward(x, w, b)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out[0, 0, 0, 0], x[0, 0, :2, :2].astype(np.int64).sum())


@every_mode
@pytest.mark.parametrize("x_shape, w_shape, stride, pad", CASES)
def test_input_grad_false_skips_dx_only(rng, x_shape, w_shape, stride, pad, monkeypatch):
    x, w, b = make(rng, x_shape, w_shape)
    out, cache = conv2d_forward(x, w, b, stride=stride, pad=pad)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv2d_backward(dout, cache)

    def refuse_dx(*args):
        raise AssertionError("dx was computed")

    monkeypatch.setattr(cnnlib.engine.conv, "dx_by_runs", refuse_dx)
    monkeypatch.setattr(cnnlib.engine.conv, "dx_by_taps", refuse_dx)
    monkeypatch.setattr(cnnlib.engine.conv, "dx_by_channel_runs", refuse_dx)
    no_dx, dw_only, db_only = conv2d_backward(dout, cache, input_grad=False)
    assert no_dx is None
    np.testing.assert_array_equal(dw_only, dw)  # the same products in the same order
    np.testing.assert_array_equal(db_only, db)


def test_input_grad_must_be_a_bool(rng):
    x, w, b = make(rng, (1, 1, 4, 4), (1, 1, 3, 3))
    out, cache = conv2d_forward(x, w, b)
    with pytest.raises(TypeError, match="input_grad must be True or False, got 'no'"):
        conv2d_backward(np.ones(out.shape), cache, input_grad="no")
