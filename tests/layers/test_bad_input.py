"""Bad input gets a ValueError or TypeError that names the shapes or values at fault."""

import numpy as np
import pytest

import cnnlib as c

x4 = np.zeros((2, 3, 6, 5))
w4 = np.zeros((4, 3, 3, 3))
b4 = np.zeros(4)


@pytest.mark.parametrize("conv", [c.conv2d_forward, c.conv2d_forward_naive])
@pytest.mark.parametrize(
    "args, kwargs, error, pattern",
    [
        ((np.zeros((3, 6, 5)), w4, b4), {}, ValueError, r"x must be 4-D \(N, C, H, W\), got shape \(3, 6, 5\)"),
        ((x4, np.zeros((4, 3, 3)), b4), {}, ValueError, r"w must be 4-D \(F, C, KH, KW\)"),
        ((x4, np.zeros((4, 2, 3, 3)), b4), {}, ValueError, r"x has 3 channels \(shape \(2, 3, 6, 5\)\) but w expects 2"),
        ((x4, w4, np.zeros(3)), {}, ValueError, r"4 filters, b has shape \(3,\)"),
        ((x4, w4, np.zeros((4, 1))), {}, ValueError, r"b must be 1-D"),
        ((x4, np.zeros((4, 3, 7, 3)), b4), {}, ValueError, r"kernel \(7, 3\) is larger than the padded input \(6, 5\)"),
        ((x4, np.zeros((4, 3, 7, 3)), b4), {"pad": 1}, None, None),  # fits once padded to 8 x 7
        ((x4, w4, b4), {"stride": 0}, ValueError, r"stride must be >= 1, got 0"),
        ((x4, w4, b4), {"stride": (1, 0)}, ValueError, r"stride must be >= 1, got \(1, 0\)"),
        ((x4, w4, b4), {"pad": -1}, ValueError, r"pad must be >= 0, got -1"),
        ((x4, w4, b4), {"stride": 1.5}, TypeError, r"stride must be an int or a pair of ints, got 1.5"),
        ((x4, w4, b4), {"pad": (1, 1, 1)}, ValueError, r"pair \(vertical, horizontal\), got \(1, 1, 1\)"),
        ((x4, w4, b4), {"stride": True}, TypeError, r"stride must be an int"),
        ((x4.astype(complex), w4, b4), {}, TypeError, r"x must hold real numbers, got an array of dtype complex128"),
    ],
)
def test_conv_forward_rejects(conv, args, kwargs, error, pattern):
    if error is None:
        conv(*args, **kwargs)
        return
    with pytest.raises(error, match=pattern):
        conv(*args, **kwargs)


@pytest.mark.parametrize("forward, backward", [
    (c.conv2d_forward, c.conv2d_backward), (c.conv2d_forward_naive, c.conv2d_backward_naive)])
def test_conv_backward_rejects_mismatched_dout(forward, backward):
    out, cache = forward(x4, w4, b4, pad=1)
    assert out.shape == (2, 4, 6, 5)
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 4, 6, 5\), got \(2, 4, 6, 4\)"):
        backward(np.zeros((2, 4, 6, 4)), cache)
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 4, 6, 5\), got \(4, 6, 5\)"):
        backward(np.zeros((4, 6, 5)), cache)  # would broadcast if nothing checked


@pytest.mark.parametrize("pool", [c.maxpool2d_forward, c.maxpool2d_forward_naive, c.avgpool2d_forward, c.avgpool2d_forward_naive])
@pytest.mark.parametrize(
    "x, kwargs, error, pattern",
    [
        (np.zeros((6, 5)), {}, ValueError, r"x must be 4-D \(N, C, H, W\), got shape \(6, 5\)"),
        (x4, {"size": 7}, ValueError, r"pool window \(7, 7\) is larger than the padded input \(6, 5\)"),
        (x4, {"size": 0}, ValueError, r"size must be >= 1, got 0"),
        (x4, {"size": 2, "stride": 0}, ValueError, r"stride must be >= 1, got 0"),
    ],
)
def test_pool_forward_rejects(pool, x, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        pool(x, **kwargs)


@pytest.mark.parametrize("pool", [c.maxpool2d_forward, c.maxpool2d_forward_naive])
def test_maxpool_rejects_bad_padding(pool):
    with pytest.raises(ValueError, match=r"pad \(2, 2\) must be at most half the pool window \(3, 3\)"):
        pool(x4, size=3, pad=2)
    with pytest.raises(ValueError, match=r"pad must be >= 0, got -1"):
        pool(x4, size=3, pad=-1)


@pytest.mark.parametrize("forward, backward", [
    (c.maxpool2d_forward, c.maxpool2d_backward), (c.maxpool2d_forward_naive, c.maxpool2d_backward_naive),
    (c.avgpool2d_forward, c.avgpool2d_backward), (c.avgpool2d_forward_naive, c.avgpool2d_backward_naive)])
def test_pool_backward_rejects_mismatched_dout(forward, backward):
    out, cache = forward(x4, size=2)
    assert out.shape == (2, 3, 3, 2)
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 3, 3, 2\), got \(2, 3, 2, 3\)"):
        backward(np.zeros((2, 3, 2, 3)), cache)


def test_dense_rejects():
    with pytest.raises(ValueError, match=r"x must be 2-D \(N, D\), got shape \(2, 3, 6, 5\); flatten it first"):
        c.dense_forward(x4, np.zeros((90, 2)), np.zeros(2))
    with pytest.raises(ValueError, match=r"x has 4 features \(shape \(2, 4\)\) but w expects 5 \(shape \(5, 3\)\)"):
        c.dense_forward(np.zeros((2, 4)), np.zeros((5, 3)), np.zeros(3))
    with pytest.raises(ValueError, match=r"w has shape \(4, 3\), b has shape \(4,\)"):
        c.dense_forward(np.zeros((2, 4)), np.zeros((4, 3)), np.zeros(4))
    _, cache = c.dense_forward(np.zeros((2, 4)), np.zeros((4, 3)), np.zeros(3))
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 3\), got \(3,\)"):
        c.dense_backward(np.zeros(3), cache)


def test_relu_backward_rejects_mismatched_dout():
    _, cache = c.relu_forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 3\), got \(3,\)"):
        c.relu_backward(np.zeros(3), cache)


@pytest.mark.parametrize(
    "logits, y, error, pattern",
    [
        (np.zeros((3, 4)), np.array([0, 1, 4]), ValueError, r"labels must be in 0..3 for 4 classes, got values from 0 to 4"),
        (np.zeros((3, 4)), np.array([0, -1, 2]), ValueError, r"got values from -1 to 2"),
        (np.zeros((3, 4)), np.array([0, 1]), ValueError, r"y must have shape \(3,\), one label per row of logits \(3, 4\), got \(2,\)"),
        (np.zeros((3, 4)), np.array([[0], [1], [2]]), ValueError, r"got \(3, 1\)"),
        (np.zeros((3, 4)), np.array([0.0, 1.0, 2.0]), TypeError, r"integer class labels, got dtype float64"),
        (np.zeros((3, 4)), np.array([True, False, True]), TypeError, r"got dtype bool"),
        (np.zeros(4), np.array([0]), ValueError, r"logits must be 2-D \(N, K\)"),
        (np.array([[0.0, np.nan], [1.0, 2.0]]), np.array([0, 1]), ValueError, r"logits must be finite, found nan at index \(0, 1\)"),
        (np.array([[0.0, 1.0], [np.inf, 2.0]]), np.array([0, 1]), ValueError, r"found inf at index \(1, 0\)"),
    ],
)
def test_softmax_cross_entropy_rejects(logits, y, error, pattern):
    with pytest.raises(error, match=pattern):
        c.softmax_cross_entropy(logits, y)


@pytest.mark.parametrize("call", [
    lambda x: c.conv2d_forward(x, w4, b4),
    lambda x: c.conv2d_forward_naive(x, w4, b4),
    lambda x: c.maxpool2d_forward(x),
    lambda x: c.avgpool2d_forward(x),
])
@pytest.mark.parametrize("ragged", [[[1, 2], [3]], [[[[1.0, 2.0]], [[3.0]]]]])
def test_a_ragged_nested_list_is_named(call, ragged):
    # NumPy alone says "inhomogeneous shape" without saying which argument.
    with pytest.raises(ValueError, match=r"^x is a nested list whose rows have different lengths"):
        call(ragged)
