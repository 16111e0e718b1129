"""Dense, ReLU, softmax cross-entropy and the gradient-checking tools themselves."""

import warnings

import numpy as np
import pytest

from cnnlib import (
    dense_backward,
    dense_forward,
    numerical_gradient,
    rel_error,
    relu_backward,
    relu_forward,
    softmax_cross_entropy,
)
from gradutil import check_grads, distinct


@pytest.mark.parametrize("N, D, M", [(1, 4, 3), (5, 7, 2), (3, 1, 1)])
def test_dense_backward_matches_finite_differences(rng, N, D, M):
    x, w, b = rng.standard_normal((N, D)), rng.standard_normal((D, M)), rng.standard_normal(M)
    out, cache = dense_forward(x, w, b)
    np.testing.assert_allclose(out, x @ w + b, rtol=1e-12)
    dout = rng.standard_normal(out.shape)
    check_grads(lambda x, w, b: dense_forward(x, w, b)[0], [x, w, b], list(dense_backward(dout, cache)), dout)


def test_dense_input_grad_false_skips_dx_only(rng):
    x, w, b = rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
    out, cache = dense_forward(x, w, b)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = dense_backward(dout, cache)

    class NoTranspose(np.ndarray):
        @property
        def T(self):  # dx = dout @ w.T is the only use of w.T in the backward
            raise AssertionError("dx was computed")

    no_dx, dw_only, db_only = dense_backward(dout, (x, w.view(NoTranspose), b), input_grad=False)
    assert no_dx is None
    np.testing.assert_array_equal(dw_only, dw)
    np.testing.assert_array_equal(db_only, db)
    with pytest.raises(TypeError, match="input_grad must be True or False, got 0"):
        dense_backward(dout, cache, input_grad=0)


def test_dense_float32_stays_float32(rng):
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in [(4, 3), (3, 2), (2,)])
    out, cache = dense_forward(x, w, b)
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in dense_backward(rng.standard_normal(out.shape), cache))


def test_dense_products_run_with_one_blas_thread(rng, monkeypatch):
    # BLAS's idle threads would otherwise spin beside the threaded conv and pool layers
    # (cnnlib/engine/dense.py): the three products go through the engine's matmul, which
    # holds BLAS to one thread, and BLAS is as it was afterwards.
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import cnnlib.dense
    import cnnlib.engine.dense

    def blas_threads():
        return [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]

    if not blas_threads():
        pytest.skip("threadpoolctl finds no BLAS library to limit")
    before, seen = blas_threads(), []

    def spy(a, b, _matmul=cnnlib.engine.dense.matmul):
        seen.append(_matmul(Probe(a), b))
        return a @ b

    class Probe:  # a @ b through the hold, telling how many threads BLAS has there
        def __init__(self, a):
            self.a = a

        def __matmul__(self, b):
            return blas_threads()

    monkeypatch.setattr(cnnlib.dense, "matmul", spy)
    x, w, b = rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
    out, cache = dense_forward(x, w, b)
    dense_backward(rng.standard_normal(out.shape), cache)
    assert seen == [[1] * len(before)] * 3
    assert blas_threads() == before


def test_relu_backward_matches_finite_differences(rng):
    x = distinct(rng, (2, 3, 4, 5))  # nothing within the step h of the kink at 0
    out, cache = relu_forward(x)
    np.testing.assert_array_equal(out, np.where(x > 0, x, 0))
    dout = rng.standard_normal(out.shape)
    check_grads(lambda x: relu_forward(x)[0], [x], [relu_backward(dout, cache)], dout)


def test_relu_arrays_come_from_the_engines_memory_and_stay_as_they_were(rng):
    # Reused from call to call (cnnlib/engine/relu.py), never while the caller holds them.
    from cnnlib.engine import arrays

    arrays.release()
    x1, x2, dout = rng.standard_normal((4, 50)), rng.standard_normal((4, 50)), rng.standard_normal((4, 50))
    out1, cache1 = relu_forward(x1)
    dx1 = relu_backward(dout, cache1)
    saved = out1.copy(), dx1.copy()
    relu_backward(dout, relu_forward(x2)[1])
    np.testing.assert_array_equal(out1, saved[0])
    np.testing.assert_array_equal(dx1, saved[1])
    kept = arrays.kept_bytes()
    assert kept > 0
    for _ in range(5):
        relu_backward(dout, relu_forward(x2)[1])
    assert arrays.kept_bytes() == kept  # the same buffers again, no new ones
    arrays.release()


def test_relu_slope_at_zero_is_zero():
    _, cache = relu_forward(np.array([-1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(relu_backward(np.array([5.0, 5.0, 5.0]), cache), [0.0, 0.0, 5.0])


def test_relu_keeps_float32(rng):
    out, cache = relu_forward(rng.standard_normal((2, 3)).astype(np.float32))
    assert out.dtype == relu_backward(np.ones((2, 3)), cache).dtype == np.float32


def test_softmax_cross_entropy_gradient_matches_finite_differences(rng):
    # Moderate logits: with near-zero probabilities some gradient entries fall to ~1e-8,
    # below what finite differences of an O(1) loss can resolve to 1e-7 relative error.
    logits, y = rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    loss, dlogits = softmax_cross_entropy(logits, y)
    num = numerical_gradient(lambda z: softmax_cross_entropy(z, y)[0], logits, 1.0)
    assert rel_error(dlogits, num) < 1e-7


def test_softmax_cross_entropy_values():
    # Equal logits: every class has probability 1/K, so the loss is log K.
    loss, dlogits = softmax_cross_entropy(np.zeros((2, 4)), np.array([0, 3]))
    assert loss == pytest.approx(np.log(4), rel=1e-15)
    np.testing.assert_allclose(dlogits, [[-0.375, 0.125, 0.125, 0.125], [0.125, 0.125, 0.125, -0.375]])
    # The fused gradient is (probs - onehot) / N: each row sums to zero.
    logits = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]])
    loss, dlogits = softmax_cross_entropy(logits, np.array([2, 0]))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-(np.log(probs[0, 2]) + np.log(probs[1, 0])) / 2, rel=1e-13)
    np.testing.assert_allclose(dlogits, (probs - np.eye(3)[[2, 0]]) / 2, rtol=1e-13)


def test_softmax_cross_entropy_is_finite_for_huge_logits(rng):
    logits, y = rng.standard_normal((5, 3)), rng.integers(0, 3, 5)
    # Adding a constant to every logit changes nothing; 1e4 overflows a naive exp().
    loss, dlogits = softmax_cross_entropy(logits, y)
    loss_big, dlogits_big = softmax_cross_entropy(logits + 1e4, y)
    assert loss_big == pytest.approx(loss, rel=1e-9)
    np.testing.assert_allclose(dlogits_big, dlogits, atol=1e-12)
    loss_huge, dlogits_huge = softmax_cross_entropy(np.array([[1e4, -1e4], [-1e4, 1e4]]), np.array([1, 1]))
    assert np.isfinite(loss_huge) and loss_huge == pytest.approx(1e4)  # row 0: -log(e^-20000) / 2
    assert np.all(np.isfinite(dlogits_huge))


def test_numerical_gradient_of_known_functions():
    x = np.array([[1.0, -2.0], [3.0, 0.5]])
    before = x.copy()
    dout = np.array([[2.0, 0.0], [-1.0, 3.0]])
    np.testing.assert_allclose(numerical_gradient(lambda x: x**2, x, dout), 2 * x * dout, rtol=1e-9)
    np.testing.assert_array_equal(x, before)  # every nudge was undone
    np.testing.assert_allclose(numerical_gradient(np.sin, x, dout), np.cos(x) * dout, rtol=1e-9)


def test_numerical_gradient_of_a_function_returning_a_view():
    # f(x) = x.reshape(...) returns a view; the gradient of sum(f(x) * dout) is dout itself.
    x = np.arange(6.0).reshape(2, 3)
    dout = np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    np.testing.assert_allclose(numerical_gradient(lambda x: x.reshape(1, 6), x, dout), dout.reshape(2, 3), rtol=1e-9)


def test_numerical_gradient_rejects_bad_arguments():
    with pytest.raises(TypeError, match="float ndarray"):
        numerical_gradient(lambda x: x, np.arange(3), np.ones(3))
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        numerical_gradient(lambda x: x, np.zeros(3), np.ones(4))


@pytest.mark.parametrize("dout", [np.ones((2, 3)), np.zeros((2, 3)), np.full((2, 3), -0.5)])
def test_numerical_gradient_warns_about_a_constant_dout(rng, dout):
    x = rng.standard_normal((2, 3))
    # A transposing "backward" passes every check with a constant dout: the warning is the point.
    with pytest.warns(UserWarning, match=r"dout is constant.*random dout") as record:
        grad = numerical_gradient(lambda x: 3 * x, x, dout)
    np.testing.assert_allclose(grad, 3 * dout, rtol=1e-9)  # still computed
    assert len(record) == 1
    assert record[0].filename == __file__  # stacklevel=2: the caller's line, not cnnlib's


def test_numerical_gradient_warns_about_float32_x(rng):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    dout = rng.standard_normal((2, 3))
    with pytest.warns(UserWarning, match=r"float32.*7 significant digits.*rounding.*float64") as record:
        numerical_gradient(lambda x: 3 * x, x, dout)
    assert len(record) == 1 and record[0].filename == __file__


def test_numerical_gradient_warns_twice_for_both_problems(rng):
    x = rng.standard_normal(4).astype(np.float32)
    with pytest.warns(UserWarning) as record:
        numerical_gradient(lambda x: x, x, np.ones(4))
    messages = sorted(str(r.message) for r in record)
    assert len(messages) == 2
    assert "dout is constant" in messages[0] and "float32" in messages[1]


@pytest.mark.parametrize("dout_shape, f", [((2, 3), lambda x: x**2), ((), lambda x: np.sum(x**2))])
def test_numerical_gradient_is_silent_for_float64_and_a_random_or_scalar_dout(rng, dout_shape, f):
    # A scalar dout (one element) is the usual way to check a loss: nothing to mix up.
    x = rng.standard_normal((2, 3))
    dout = rng.standard_normal(dout_shape) if dout_shape else 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grad = numerical_gradient(f, x, dout)
    np.testing.assert_allclose(grad, 2 * x * dout, rtol=1e-8)


def test_rel_error():
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert rel_error(np.array([1.0, 3.0]), np.array([1.0, 1.0])) == pytest.approx(0.5)
    assert rel_error(np.zeros(2), np.zeros(2)) == 0.0  # the 1e-8 floor avoids 0/0
    with pytest.raises(ValueError, match=r"\(2,\) and \(3,\)"):
        rel_error(np.zeros(2), np.zeros(3))


def test_dense_float64_bias_keeps_float32_input_float32(rng):
    x, w = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((3, 2)).astype(np.float32)
    out, _ = dense_forward(x, w, rng.standard_normal(2))
    assert out.dtype == np.float32


def test_softmax_cross_entropy_rejects_an_empty_batch():
    with pytest.raises(ValueError, match=r"no samples \(shape \(0, 3\)\)"):
        softmax_cross_entropy(np.zeros((0, 3)), np.zeros(0, dtype=int))
