"""Max and average pooling: finite differences on the naive loops, fast == naive, ties,
overlap and padding.

Finite differences check the naive version, which no slicing mode changes; the fast version is
held to the naive one on the same cases, with the batch whole and split across threads.
"""

import numpy as np
import pytest

from cnnlib import (
    avgpool2d_backward,
    avgpool2d_backward_naive,
    avgpool2d_forward,
    avgpool2d_forward_naive,
    maxpool2d_backward,
    maxpool2d_backward_naive,
    maxpool2d_forward,
    maxpool2d_forward_naive,
)
from gradutil import check_grads, distinct

MAX = {"fast": (maxpool2d_forward, maxpool2d_backward), "naive": (maxpool2d_forward_naive, maxpool2d_backward_naive)}
AVG = {"fast": (avgpool2d_forward, avgpool2d_backward), "naive": (avgpool2d_forward_naive, avgpool2d_backward_naive)}


# A test marked so runs with the batch in one piece and split across threads (conftest). Only
# tests that run the fast version on a batch of 2 or more take it: a batch of 1 is never split,
# and the naive loops ignore it.
every_mode = pytest.mark.usefixtures("slicing")


# (x shape, size, stride, pad)
MAX_CASES = [
    pytest.param((2, 3, 6, 8), 2, None, 0, id="2x2, stride defaults to size"),
    pytest.param((1, 2, 7, 7), 3, 2, 0, id="batch 1, overlapping 3x3 stride 2"),
    pytest.param((2, 2, 7, 5), 3, 2, 1, id="overlapping with padding"),
    pytest.param((2, 1, 5, 6), 2, 1, 1, id="stride 1, pad 1"),
    pytest.param((1, 2, 7, 6), (3, 2), (2, 1), (1, 0), id="non-square window, pairs"),
    pytest.param((2, 2, 5, 5), 2, None, 0, id="odd input, last row dropped"),
    pytest.param((1, 2, 7, 8), 2, 3, 0, id="stride larger than the window"),
    pytest.param((2, 1, 7, 6), (3, 2), (2, 1), 0, id="non-square window, pairs, no pad"),
    pytest.param((5, 2, 6, 6), 3, 1, 1, id="batch 5, uneven slices, overlapping"),
]
AVG_CASES = [p for p in MAX_CASES if p.values[3] == 0]


@pytest.mark.parametrize("x_shape, size, stride, pad", MAX_CASES)
def test_naive_maxpool_backward_matches_finite_differences(rng, x_shape, size, stride, pad):
    # Centred differences in float64 with a random dout, on every case.
    x = distinct(rng, x_shape)  # no near-ties: a step of h must not change which element wins
    out, cache = maxpool2d_forward_naive(x, size=size, stride=stride, pad=pad)
    dout = rng.standard_normal(out.shape)
    dx = maxpool2d_backward_naive(dout, cache)
    check_grads(lambda x: maxpool2d_forward_naive(x, size=size, stride=stride, pad=pad)[0], [x], [dx], dout)


@pytest.mark.parametrize("x_shape, size, stride, pad", AVG_CASES)
def test_naive_avgpool_backward_matches_finite_differences(rng, x_shape, size, stride, pad):
    x = rng.standard_normal(x_shape)
    out, cache = avgpool2d_forward_naive(x, size=size, stride=stride)
    dout = rng.standard_normal(out.shape)
    dx = avgpool2d_backward_naive(dout, cache)
    check_grads(lambda x: avgpool2d_forward_naive(x, size=size, stride=stride)[0], [x], [dx], dout)


@every_mode
@pytest.mark.parametrize("x_shape, size, stride, pad", MAX_CASES)
@pytest.mark.parametrize("ties", [False, True])
def test_maxpool_fast_matches_naive(rng, x_shape, size, stride, pad, ties):
    # Small integers make ties common, so this also checks both versions break ties alike.
    x = rng.integers(-2, 3, x_shape).astype(np.float64) if ties else rng.standard_normal(x_shape)
    out, cache = maxpool2d_forward(x, size=size, stride=stride, pad=pad)
    out_n, cache_n = maxpool2d_forward_naive(x, size=size, stride=stride, pad=pad)
    np.testing.assert_array_equal(out, out_n)
    np.testing.assert_array_equal(cache[1], cache_n[1])
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(maxpool2d_backward(dout, cache), maxpool2d_backward_naive(dout, cache_n), rtol=1e-12, atol=1e-15)


@every_mode
@pytest.mark.parametrize("x_shape, size, stride, pad", AVG_CASES)
def test_avgpool_fast_matches_naive(rng, x_shape, size, stride, pad):
    x = rng.standard_normal(x_shape)
    out, cache = avgpool2d_forward(x, size=size, stride=stride)
    out_n, cache_n = avgpool2d_forward_naive(x, size=size, stride=stride)
    np.testing.assert_allclose(out, out_n, rtol=1e-12, atol=1e-15)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(avgpool2d_backward(dout, cache), avgpool2d_backward_naive(dout, cache_n), rtol=1e-12, atol=1e-15)


def float32_matches_float64(rng, kind, impl, x_shape, size, stride):
    """forward and backward in float32 stay float32 and agree with the naive float64 result."""
    table = MAX if kind == "max" else AVG
    x = distinct(rng, x_shape)
    out64, cache64 = table["naive"][0](x, size=size, stride=stride)
    dout = rng.standard_normal(out64.shape)
    dx64 = table["naive"][1](dout, cache64)
    forward, backward = table[impl]
    out32, cache32 = forward(x.astype(np.float32), size=size, stride=stride)
    dx32 = backward(dout.astype(np.float32), cache32)
    assert out32.dtype == dx32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dx32, dx64, rtol=1e-6, atol=1e-6)


@every_mode
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("x_shape, size, stride, pad", AVG_CASES)
def test_float32_stays_float32_and_matches_float64(rng, kind, x_shape, size, stride, pad):
    float32_matches_float64(rng, kind, "fast", x_shape, size, stride)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("x_shape, size, stride, pad", AVG_CASES)
def test_naive_float32_stays_float32_and_matches_float64(rng, kind, x_shape, size, stride, pad):
    float32_matches_float64(rng, kind, "naive", x_shape, size, stride)


@pytest.mark.parametrize("impl", ["fast", "naive"])
def test_tie_goes_to_first_maximum_in_row_major_order(impl):
    forward, backward = MAX[impl]
    # One 2x2 window holding three equal maxima: (0, 1), (1, 0) and (1, 1). Row-major order
    # visits (0, 1) first, so all of dout lands there, as in PyTorch.
    x = np.array([[0.0, 5.0], [5.0, 5.0]]).reshape(1, 1, 2, 2)
    out, cache = forward(x, size=2)
    dx = backward(np.array([[[[3.0]]]]), cache)
    np.testing.assert_array_equal(out, [[[[5.0]]]])
    np.testing.assert_array_equal(dx[0, 0], [[0.0, 3.0], [0.0, 0.0]])


@pytest.mark.parametrize("impl", ["fast", "naive"])
def test_ties_in_overlapping_windows(rng, impl):
    forward, backward = MAX[impl]
    # On a constant image every element of every window ties; each window's first element is
    # its top-left corner, so output (i, j) routes to input (i, j) and nothing overlaps.
    x = np.full((1, 1, 4, 4), 7.0)
    out, cache = forward(x, size=3, stride=1)
    dout = rng.standard_normal(out.shape)
    dx = backward(dout, cache)
    expected = np.zeros((4, 4))
    expected[:2, :2] = dout[0, 0]
    np.testing.assert_array_equal(dx[0, 0], expected)


@pytest.mark.parametrize("impl", ["fast", "naive"])
def test_overlapping_windows_accumulate(impl):
    forward, backward = MAX[impl]
    # The centre pixel is the maximum of all four overlapping 2x2 windows (stride 1), so it
    # collects the sum of their four upstream gradients.
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 1.0
    out, cache = forward(x, size=2, stride=1)
    dout = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 2, 2)
    dx = backward(dout, cache)
    assert dx[0, 0, 1, 1] == 10.0 and np.count_nonzero(dx) == 1


def test_near_ties_match_finite_differences(rng):
    # Maxima that differ by 1e-3 (far more than the step h = 1e-5) are not ties: the finite
    # differences see exactly which element wins, and the routing must agree with them.
    x = rng.uniform(-1.0, 0.0, (1, 2, 4, 4))
    x[..., 1::2, 1::2] = rng.uniform(1.0, 2.0, (1, 2, 2, 2))
    # Top-left and bottom-right of each 2x2 window are the two largest, 1e-3 apart either way.
    x[..., ::2, ::2] = x[..., 1::2, 1::2] + rng.choice([-1e-3, 1e-3], (1, 2, 2, 2))
    out, cache = maxpool2d_forward_naive(x, size=2)
    dout = rng.standard_normal(out.shape)
    dx = maxpool2d_backward_naive(dout, cache)
    check_grads(lambda x: maxpool2d_forward_naive(x, size=2)[0], [x], [dx], dout)
    # The fast version routes them alike (a batch of 1: no slicing mode changes it).
    out_fast, cache_fast = maxpool2d_forward(x, size=2)
    np.testing.assert_array_equal(out_fast, out)
    np.testing.assert_array_equal(maxpool2d_backward(dout, cache_fast), dx)


@every_mode
@pytest.mark.parametrize("impl", ["fast", "naive"])
def test_padding_never_wins_the_max(rng, impl):
    forward, backward = MAX[impl]
    x = -1.0 - rng.random((2, 3, 5, 5))  # all negative: zero padding would win everywhere
    out, cache = forward(x, size=3, stride=2, pad=1)
    assert out.shape == (2, 3, 3, 3)
    assert np.all(out < -1.0)
    dout = rng.standard_normal(out.shape)
    dx = backward(dout, cache)
    # Every upstream gradient lands on a real pixel; none is lost to the padding.
    np.testing.assert_allclose(dx.sum(axis=(2, 3)), dout.sum(axis=(2, 3)), rtol=1e-12)


def test_avgpool_hand_computed_example():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    out, cache = avgpool2d_forward(x, size=2)
    np.testing.assert_array_equal(out[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    dx = avgpool2d_backward(np.array([4.0, 8.0, 12.0, 16.0]).reshape(1, 1, 2, 2), cache)
    np.testing.assert_array_equal(dx[0, 0], [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])


def test_either_maxpool_backward_takes_either_forwards_cache_past_row_255(rng):
    # The fast forward stores argmax in the smallest integer type (uint8 for a 3x3 window): a
    # backward adding it to a row index must not wrap at 256.
    x = rng.standard_normal((1, 2, 257, 4))
    x[0, 0, 256, 1] = 10.0  # wins both windows of the last row of windows: (254, 0) and (254, 1)
    dout = rng.standard_normal((1, 2, 255, 2))
    want = maxpool2d_backward_naive(dout, maxpool2d_forward_naive(x, size=3, stride=1)[1])
    assert want[0, 0, 256, 1] == dout[0, 0, 254, 0] + dout[0, 0, 254, 1]
    for forward in (maxpool2d_forward, maxpool2d_forward_naive):
        _, cache = forward(x, size=3, stride=1)
        for backward in (maxpool2d_backward, maxpool2d_backward_naive):
            np.testing.assert_allclose(backward(dout, cache), want, rtol=1e-12, atol=1e-15)
