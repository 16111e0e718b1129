"""Flatten and unflatten: the C-order relabelling and its exact inverse."""

import numpy as np
import pytest

from cnnlib import (
    dense_backward,
    dense_forward,
    flatten_backward,
    flatten_forward,
    numerical_gradient,
    rel_error,
    unflatten,
)
from gradutil import check_grads


def test_flat_index_is_c_order():
    # Fill a (C, H, W) volume with its own C-order flat index: flattening must lay the
    # numbers out as 0, 1, 2, ..., that is out[n, (c*H + h)*W + w] = x[n, c, h, w].
    N, C, H, W = 2, 3, 4, 5
    x = np.arange(N * C * H * W, dtype=np.float64).reshape(N, C, H, W)
    out, _ = flatten_forward(x)
    assert out.shape == (N, C * H * W)
    np.testing.assert_array_equal(out[1], np.arange(C * H * W) + C * H * W)
    assert out[0, (2 * H + 1) * W + 3] == x[0, 2, 1, 3]


def test_forward_is_a_view_when_contiguous(rng):
    x = rng.standard_normal((2, 3, 4, 4))
    out, _ = flatten_forward(x)
    assert np.shares_memory(out, x)


def test_non_contiguous_input_is_copied_correctly(rng):
    x = rng.standard_normal((2, 4, 4, 3)).transpose(0, 3, 1, 2)  # (N, C, H, W) view of NHWC data
    out, cache = flatten_forward(x)
    np.testing.assert_array_equal(out, np.ascontiguousarray(x).reshape(2, -1))
    np.testing.assert_array_equal(flatten_backward(out, cache), x)


@pytest.mark.parametrize("shape", [(1, 5), (2, 3, 4), (2, 3, 4, 5), (3, 1, 2, 2, 2)])
def test_backward_is_the_exact_inverse(rng, shape):
    x = rng.standard_normal(shape)
    out, cache = flatten_forward(x)
    dout = rng.standard_normal(out.shape)
    dx = flatten_backward(dout, cache)
    assert dx.shape == x.shape
    np.testing.assert_array_equal(flatten_backward(out, cache), x)
    np.testing.assert_array_equal(unflatten(dout, shape), dx)
    check_grads(lambda x: flatten_forward(x)[0], [x], [dx], dout)


def test_wrong_order_backward_is_caught_by_the_gradient_check(rng):
    # A backward that reshapes with the axes in the wrong order has the right shape and the
    # right numbers, only in the wrong places: the gradient check must catch it.
    N, C, H, W, M = 2, 3, 4, 5, 6
    x = rng.standard_normal((N, C, H, W))
    w, b = rng.standard_normal((C * H * W, M)), rng.standard_normal(M)

    def model(x):
        return dense_forward(flatten_forward(x)[0], w, b)[0]

    flat, fcache = flatten_forward(x)
    out, dcache = dense_forward(flat, w, b)
    dout = rng.standard_normal(out.shape)
    dflat, _, _ = dense_backward(dout, dcache)
    right = flatten_backward(dflat, fcache)
    wrong = dflat.reshape(N, W, H, C).transpose(0, 3, 2, 1)  # F-order: same shape, scrambled
    numeric = numerical_gradient(model, x, dout)
    assert wrong.shape == x.shape
    assert rel_error(right, numeric) < 1e-7
    assert rel_error(wrong, numeric) > 1e-2


def test_any_consistent_order_gives_the_same_network(rng):
    # Flattening in F order instead of C order permutes the dense weights' rows; with the
    # rows permuted to match, outputs and input gradients are identical.
    N, C, H, W, M = 2, 3, 2, 4, 5
    x = rng.standard_normal((N, C, H, W))
    w, b = rng.standard_normal((C * H * W, M)), rng.standard_normal(M)
    out_c, _ = dense_forward(flatten_forward(x)[0], w, b)
    perm = np.arange(C * H * W).reshape(C, H, W).ravel(order="F")  # row of w used by each F position
    x_f = x.transpose(0, 3, 2, 1).reshape(N, -1)  # each sample raveled in F order
    out_f, cache_f = dense_forward(x_f, w[perm], b)
    np.testing.assert_allclose(out_f, out_c, rtol=1e-12)
    dout = rng.standard_normal(out_c.shape)
    dx_f = dense_backward(dout, cache_f)[0].reshape(N, C, H, W, order="F")
    _, cache_c = dense_forward(flatten_forward(x)[0], w, b)
    dx_c = flatten_backward(dense_backward(dout, cache_c)[0], x.shape)
    np.testing.assert_allclose(dx_f, dx_c, rtol=1e-12)


def test_flatten_then_dense_is_a_tensor_contraction(rng):
    # Viewing the dense weights as (C, H, W, M), flatten + dense is a contraction over
    # (C, H, W): out[n, m] = sum_chw x[n, c, h, w] * w4[c, h, w, m] + b[m].
    N, C, H, W, M = 3, 2, 3, 4, 5
    x = rng.standard_normal((N, C, H, W))
    w, b = rng.standard_normal((C * H * W, M)), rng.standard_normal(M)
    out, _ = dense_forward(flatten_forward(x)[0], w, b)
    w4 = w.reshape(C, H, W, M)
    np.testing.assert_allclose(np.tensordot(x, w4, axes=3) + b, out, rtol=1e-12)
    np.testing.assert_allclose(np.einsum("nchw,chwm->nm", x, w4) + b, out, rtol=1e-12)


def test_backward_rejects_mismatched_dout(rng):
    x = rng.standard_normal((2, 3, 4, 4))
    _, cache = flatten_forward(x)
    with pytest.raises(ValueError, match=r"\(2, 48\).*\(48, 2\)"):
        flatten_backward(rng.standard_normal((48, 2)), cache)  # same size, transposed
    with pytest.raises(ValueError, match=r"\(2, 48\).*\(2, 47\)"):
        flatten_backward(rng.standard_normal((2, 47)), cache)


def test_bad_shapes_are_rejected(rng):
    with pytest.raises(ValueError, match=r"batch axis.*\(5,\)"):
        flatten_forward(np.zeros(5))
    with pytest.raises(ValueError, match=r"\(6,\)"):
        unflatten(np.zeros((1, 6)), (6,))
    with pytest.raises(ValueError, match=r"\(2, 3, 2\).*\(2, 6\).*\(3, 4\)"):
        unflatten(np.zeros((3, 4)), (2, 3, 2))
