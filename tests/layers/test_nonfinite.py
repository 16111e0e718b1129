"""Non-finite values are never turned into wrong finite numbers, and match PyTorch where it is defined.

Each layer gets inputs, weights or upstream gradients holding inf, -inf or NaN, and must give
the same values as PyTorch (where torch is installed) and as its loop version: NaN and inf at
the same places, the finite entries equal. The cases are the ones the fast paths get wrong
unless they take care: a running max that misses a NaN, -inf padding that ties with -inf
pixels, a 0/1 mask multiplied into an inf, and the stride-1 "runs" of the convolution that
pair zero columns of dout with real pixels and weights.
"""

import warnings

import numpy as np
import pytest

import cnnlib as c
import cnnlib.engine.conv

NAN, INF = np.nan, np.inf


def _torch():
    return pytest.importorskip("torch")


def same(actual, expected, name="", rtol=1e-10, atol=1e-12):
    """Equal where finite (to rounding), and NaN, inf and -inf at exactly the same places."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, name
    for what, test in [("NaN", np.isnan), ("inf", np.isposinf), ("-inf", np.isneginf)]:
        where = test(actual) != test(expected)
        assert not where.any(), f"{name}: {what} differs at {np.argwhere(where)[:5].tolist()}"
    finite = np.isfinite(expected)
    np.testing.assert_allclose(actual[finite], expected[finite], rtol=rtol, atol=atol, err_msg=name)


def torch_grads(op, arrays, dout):
    """op's output and the gradients of sum(out * dout) in torch, float64 numpy arrays."""
    torch = _torch()
    leaves = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = op(*leaves)
    out.backward(torch.tensor(dout))
    return [out.detach().numpy()] + [leaf.grad.numpy() for leaf in leaves]


# ---- max pooling ----

MAXPOOL = [(c.maxpool2d_forward, c.maxpool2d_backward), (c.maxpool2d_forward_naive, c.maxpool2d_backward_naive)]


def _pool_both(x, dout_of, **kwargs):
    """[(out, dx, argmax)] of the fast and the loop version."""
    results = []
    for forward, backward in MAXPOOL:
        out, cache = forward(x, **kwargs)
        results.append((out, backward(dout_of(out.shape), cache), cache[1]))
    return results


def _sparse_nans(rng, shape, gap):
    """x with NaNs at least `gap` apart in each row and column: one per window at most."""
    x = rng.standard_normal(shape)
    n, ch, H, W = shape
    for i in range(rng.integers(gap) // 2, H, gap):
        for j in range(rng.integers(gap), W, gap):
            if rng.random() < 0.7:
                x[rng.integers(n), rng.integers(ch), i, j] = NAN
    return x


POOL_GEOMETRIES = [  # size, stride, pad
    (2, 2, 0), (3, 2, 1), (3, 1, 1), (2, 1, 0), ((2, 3), (1, 2), (1, 1)), (4, 3, 2),
]


@pytest.mark.parametrize("size, stride, pad", POOL_GEOMETRIES)
def test_a_nan_window_sends_its_gradient_to_the_nan(rng, size, stride, pad, slicing):
    size2 = size if isinstance(size, tuple) else (size, size)
    x = _sparse_nans(rng, (5, 3, 11, 12), gap=max(size2) + 1)
    assert np.isnan(x).any()
    dout_of = lambda shape: np.random.default_rng(1).standard_normal(shape)  # noqa: E731
    (out, dx, argmax), (out_n, dx_n, argmax_n) = _pool_both(x, dout_of, size=size, stride=stride, pad=pad)
    np.testing.assert_array_equal(argmax, argmax_n)
    same(out, out_n, "out")
    same(dx, dx_n, "dx")
    nan_windows = np.isnan(out)
    assert nan_windows.any() and np.isnan(dx).sum() == 0  # the gradient is finite, and it lands on NaNs
    t_out, t_dx = torch_grads(lambda t: _torch().nn.functional.max_pool2d(t, size, stride, pad), [x],
                              dout_of(out.shape))
    same(out, t_out, "out vs torch")
    same(dx, t_dx, "dx vs torch")


@pytest.mark.parametrize("x, size, stride, pad, dout, expected", [
    # The window that differential fuzzing against PyTorch found: both NaNs in one window.
    ([[NAN, NAN], [1.0, 2.0]], 2, 2, 0, [[10.0]], [[0, 10], [0, 0]]),
    ([[NAN, 1.0], [NAN, 2.0]], 2, 2, 0, [[10.0]], [[0, 0], [10, 0]]),
    ([[NAN, NAN], [NAN, NAN]], 2, 2, 0, [[10.0]], [[0, 0], [0, 10]]),
    ([[1.0, NAN, 3.0, NAN], [NAN, 5.0, NAN, NAN]], 2, 2, 0, [[10.0, 20.0]], [[0, 0, 0, 0], [10, 0, 0, 20]]),
    # Rows of two NaNs, 1x2 windows: each row's second NaN.
    ([[NAN, NAN], [NAN, NAN]], (1, 2), (1, 2), 0, [[10.0], [20.0]], [[0, 10], [0, 20]]),
    # Overlapping padded windows, 2x2 stride 1 pad 1: six of the nine hold a NaN, two of them
    # both (outputs (0, 1) and (1, 1), dout 2 and 16), which go to the second NaN.
    ([[NAN, NAN], [1.0, 2.0]], 2, 1, 1, [[1, 2, 4], [8, 16, 32], [64, 128, 256]],
     [[1 + 8, 2 + 4 + 16 + 32], [64, 128 + 256]]),
])
def test_several_nans_in_a_window_the_last_gets_the_gradient(x, size, stride, pad, dout, expected):
    # PyTorch's CPU max_pool2d takes every NaN it meets as the new maximum, so its gradient goes
    # to the window's last NaN in row-major order (test_torch_crosscheck.py checks it against
    # torch itself); both versions route it there, and once only.
    x = np.array([[x]], dtype=np.float64)
    for forward, backward in MAXPOOL:
        out, cache = forward(x, size=size, stride=stride, pad=pad)
        dx = backward(np.array([[dout]], dtype=np.float64), cache)
        np.testing.assert_array_equal(dx, [[expected]], err_msg=forward.__name__)


@pytest.mark.parametrize("size, stride, pad", [(2, 1, 1), (3, 2, 1), (3, 1, 1), ((2, 3), (1, 2), (1, 1)), (4, 3, 2)])
def test_a_padded_window_of_all_minus_inf_keeps_its_gradient(rng, size, stride, pad, slicing):
    x = rng.standard_normal((4, 2, 7, 8))
    x[0] = -INF  # a whole image: every window, corners and edges too, is all -inf
    x[1, 0, :3, :] = -INF  # top rows: border windows with only -inf real pixels
    x[2, 1, :, -2:] = -INF
    x[3, :, 2:5, 3:6] = -INF  # an interior block
    dout_of = lambda shape: np.random.default_rng(2).standard_normal(shape)  # noqa: E731
    (out, dx, argmax), (out_n, dx_n, argmax_n) = _pool_both(x, dout_of, size=size, stride=stride, pad=pad)
    np.testing.assert_array_equal(argmax, argmax_n)
    same(out, out_n, "out")
    same(dx, dx_n, "dx")
    # No gradient is lost into the padding: every output's dout lands on some pixel of x.
    np.testing.assert_allclose(dx.sum(), dout_of(out.shape).sum(), rtol=1e-12)
    t_out, t_dx = torch_grads(lambda t: _torch().nn.functional.max_pool2d(t, size, stride, pad), [x],
                              dout_of(out.shape))
    same(out, t_out, "out vs torch")
    same(dx, t_dx, "dx vs torch")


def test_an_all_minus_inf_image_routes_like_pytorch():
    # Worked through by hand (PyTorch gives the same): 3x3 windows of 2x2, pad 1, on a 2x2
    # image of -inf; each dout goes to the first real pixel of its window.
    x = np.full((1, 1, 2, 2), -INF)
    for forward, backward in MAXPOOL:
        out, cache = forward(x, size=2, stride=1, pad=1)
        dx = backward(np.arange(9.0).reshape(out.shape), cache)
        np.testing.assert_array_equal(dx, [[[[0 + 1 + 3 + 4, 2 + 5], [6 + 7, 8]]]])


@pytest.mark.parametrize("size, stride, pad", POOL_GEOMETRIES + [(2, 2, 1)])
@pytest.mark.parametrize("bad", [INF, -INF, NAN])
def test_a_non_finite_dout_reaches_its_window_winner_only(rng, size, stride, pad, bad, slicing):
    x = rng.standard_normal((5, 2, 8, 10))
    out, _ = c.maxpool2d_forward(x, size=size, stride=stride, pad=pad)
    dout = rng.standard_normal(out.shape)
    dout[rng.random(out.shape) < 0.1] = bad
    dout[0, 0, 0, 0] = bad
    results = _pool_both(x, lambda shape: dout, size=size, stride=stride, pad=pad)
    same(results[0][1], results[1][1], "dx, fast vs loop")
    assert np.isfinite(results[0][1]).mean() > 0.5  # not spread over whole windows
    t_out, t_dx = torch_grads(lambda t: _torch().nn.functional.max_pool2d(t, size, stride, pad), [x], dout)
    same(results[0][1], t_dx, "dx vs torch")


def test_finite_extremes_pool_without_warnings():
    # The check for non-finite maxima must not itself overflow on large finite values.
    x = np.full((2, 1, 4, 4), np.finfo(np.float32).max, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, cache = c.maxpool2d_forward(x, size=2)
        dx = c.maxpool2d_backward(np.full(out.shape, 3e38, dtype=np.float32), cache)
    assert np.isfinite(out).all() and np.isfinite(dx).all()


# ---- convolution ----


def _conv_torch(x, w, b, dout, stride, pad):
    return torch_grads(lambda xt, wt, bt: _torch().nn.functional.conv2d(xt, wt, bt, stride=stride, padding=pad),
                       [x, w, b], dout)


def _conv_all(x, w, b, dout, **kwargs):
    with np.errstate(invalid="ignore"):  # inf * 0 and inf - inf are NaN, as they should be
        fast = c.conv2d_forward(x, w, b, **kwargs)
        naive = c.conv2d_forward_naive(x, w, b, **kwargs)
        return [(fast[0], *c.conv2d_backward(dout, fast[1])), (naive[0], *c.conv2d_backward_naive(dout, naive[1]))]


def _spots(rng, x, count, value):
    """Put `value` at `count` random pixels of x and at its corners and edge pixels."""
    n, ch, H, W = x.shape
    for i, j in [(0, 0), (H - 1, W - 1), (H // 2, 0), (0, W - 1), (H - 1, W // 2)]:
        x[rng.integers(n), rng.integers(ch), i, j] = value
    for _ in range(count):
        x[rng.integers(n), rng.integers(ch), rng.integers(H), rng.integers(W)] = value
    return x


# (x shape, w shape, stride, pad): stride 1 with 2F <= C*KH*KW goes by runs when per-image
# products are used (the `products` fixture forces both ways), stride 1 by runs over the
# channels with one product for finite w; the others by taps.
CONV_CASES = [
    ((4, 3, 10, 11), (4, 3, 3, 3), 1, 1),
    ((3, 4, 9, 9), (2, 4, 3, 2), 1, 0),
    ((3, 2, 12, 10), (3, 2, 5, 5), 1, 2),
    ((3, 3, 11, 9), (4, 3, 3, 3), 2, 1),
]


@pytest.mark.parametrize("x_shape, w_shape, stride, pad", CONV_CASES)
@pytest.mark.parametrize("where", ["x", "w", "x and w"])
@pytest.mark.parametrize("bad", [INF, -INF, NAN])
def test_a_non_finite_pixel_or_weight_spreads_only_where_it_is_used(
        rng, x_shape, w_shape, stride, pad, where, bad, slicing, products, chunking):
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    if "x" in where:
        _spots(rng, x, 2, bad)
    if "w" in where:
        w[rng.integers(w_shape[0]), rng.integers(w_shape[1]), -1, 0] = bad
    out_shape = c.conv2d_forward(np.zeros_like(x), np.zeros_like(w), b, stride=stride, pad=pad)[0].shape
    dout = rng.standard_normal(out_shape)
    (fast, naive) = _conv_all(x, w, b, dout, stride=stride, pad=pad)
    for name, f, n in zip(["out", "dx", "dw", "db"], fast, naive):
        same(f, n, f"{name}, fast vs loop")
    if where == "x":  # dx = sum of dout * w: x is not in it
        assert np.isfinite(fast[1]).all()
    if where == "w":  # nor is w in dw
        assert np.isfinite(fast[2]).all()
    for name, f, t in zip(["out", "dx", "dw", "db"], fast, _conv_torch(x, w, b, dout, stride, pad)):
        same(f, t, f"{name} vs torch", rtol=1e-9, atol=1e-9)


def _count_calls(monkeypatch, *names):
    """The names of the cnnlib.engine.conv functions `names` in the order they are called."""
    calls = []
    for name in names:
        original = getattr(cnnlib.engine.conv, name)
        monkeypatch.setattr(cnnlib.engine.conv, name, lambda *a, _o=original, _n=name: (calls.append(_n), _o(*a))[1])
    return calls


def test_runs_are_still_used_for_finite_inputs(rng, monkeypatch):
    # The check for non-finite inputs must not send finite ones the slow way.
    calls = _count_calls(monkeypatch, "dw_by_runs", "dx_by_runs")
    x, w, b = rng.standard_normal((2, 8, 12, 12)), rng.standard_normal((4, 8, 3, 3)), np.zeros(4)
    out, cache = c.conv2d_forward(x, w, b, pad=1)
    c.conv2d_backward(rng.standard_normal(out.shape), cache)
    assert sorted(set(calls)) == ["dw_by_runs", "dx_by_runs"]
    calls.clear()
    x[1, 2, 0, 0] = INF
    with np.errstate(invalid="ignore"):
        out, cache = c.conv2d_forward(x, w, b, pad=1)
        c.conv2d_backward(rng.standard_normal(out.shape), cache)
    assert calls == ["dx_by_runs"]  # dx needs no x; dw took the exact way


def test_small_maps_go_by_channel_runs_only_for_finite_weights(rng, monkeypatch):
    calls = _count_calls(monkeypatch, "dx_by_channel_runs", "dx_by_taps")
    x, w, b = rng.standard_normal((3, 4, 8, 8)), rng.standard_normal((5, 4, 3, 3)), rng.standard_normal(5)
    dout = rng.standard_normal((3, 5, 8, 8))  # 64-pixel maps: one product for the chunk
    for weight, way in [(1.0, "dx_by_channel_runs"), (INF, "dx_by_taps")]:
        w[2, 1, 0, 2] = weight
        calls.clear()
        fast, naive = _conv_all(x, w, b, dout, pad=1)
        assert set(calls) == {way}
        for name, f, n in zip(["out", "dx", "dw", "db"], fast, naive):
            same(f, n, f"{name}, fast vs loop, w[2, 1, 0, 2] = {weight}")


@pytest.mark.parametrize("bad", [INF, NAN])
def test_a_non_finite_dout_in_conv_matches_pytorch(rng, bad, products):
    x, w, b = rng.standard_normal((3, 4, 10, 10)), rng.standard_normal((3, 4, 3, 3)), rng.standard_normal(3)
    dout = rng.standard_normal((3, 3, 10, 10))
    dout[0, 1, 0, 0] = bad
    dout[2, 0, 5, 9] = -bad
    fast, naive = _conv_all(x, w, b, dout, pad=1)
    for name, f, n in zip(["out", "dx", "dw", "db"], fast, naive):
        same(f, n, f"{name}, fast vs loop")
    with np.errstate(invalid="ignore"):
        expected = _conv_torch(x, w, b, dout, 1, 1)
    for name, f, t in zip(["out", "dx", "dw", "db"], fast, expected):
        same(f, t, f"{name} vs torch", rtol=1e-9, atol=1e-9)


# ---- ReLU, dense, average pooling ----


def test_relu_passes_dout_at_nan_and_blocks_it_at_non_positive_x():
    x = np.array([-1.0, 0.0, NAN, 2.0, -INF, INF, NAN, -3.0])
    dout = np.array([INF, NAN, 5.0, 7.0, NAN, 2.0, -INF, -INF])
    out, cache = c.relu_forward(x)
    same(out, [0, 0, NAN, 2, 0, INF, NAN, 0])
    same(c.relu_backward(dout, cache), [0, 0, 5, 7, 0, 2, -INF, 0])
    same(c.relu_backward(np.ones(8), cache), [0, 0, 1, 1, 0, 1, 1, 0])
    t_out, t_dx = torch_grads(_torch().nn.functional.relu, [x], dout)
    same(out, t_out)
    same(c.relu_backward(dout, cache), t_dx)
    same(c.relu_backward(np.ones(8), cache), torch_grads(_torch().nn.functional.relu, [x], np.ones(8))[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_keeps_its_dtype_on_the_exact_path(dtype):
    x = np.array([-1.0, 2.0], dtype=dtype)
    assert c.relu_backward(np.array([INF, 1.0]), x).dtype == dtype


@pytest.mark.parametrize("bad", [INF, NAN])
def test_dense_and_avgpool_match_pytorch(rng, bad):
    torch = _torch()
    x, w, b = rng.standard_normal((4, 5)), rng.standard_normal((5, 3)), rng.standard_normal(3)
    x[1, 2] = bad
    dout = rng.standard_normal((4, 3))
    with np.errstate(invalid="ignore"):
        out, cache = c.dense_forward(x, w, b)
        mine = (out, *c.dense_backward(dout, cache))
    for name, m, t in zip(["out", "dx", "dw", "db"], mine,
                          torch_grads(lambda xt, wt, bt: xt @ wt + bt, [x, w, b], dout)):
        same(m, t, name)
    x4 = rng.standard_normal((2, 3, 6, 6))
    x4[0, 1, 2, 3] = bad
    x4[1, 0, 5, 5] = -bad
    dout4 = rng.standard_normal((2, 3, 3, 3))
    dout4[1, 2, 0, 0] = bad
    expected = torch_grads(lambda t: torch.nn.functional.avg_pool2d(t, 2), [x4], dout4)
    for forward, backward in [(c.avgpool2d_forward, c.avgpool2d_backward),
                              (c.avgpool2d_forward_naive, c.avgpool2d_backward_naive)]:
        with np.errstate(invalid="ignore"):
            out, cache = forward(x4, size=2)
            same(out, expected[0], "avg out")
            same(backward(dout4, cache), expected[1], "avg dx")


# ---- softmax cross-entropy ----

EXTREMES = [
    ([[1e308, -1e308]], [0]),
    ([[1e308, -1e308]], [1]),  # a loss of 2e308: inf, the right float
    ([[-1e308, -1e308, 0.0]], [1]),
    ([[1.7e308, -1.7e308, 1.7e308]], [0]),
    ([[-1.7e308, 1e308, 3.0], [0.0, 1.0, 2.0], [1e308, 1e308, -1e308]], [0, 2, 2]),
    ([[np.finfo(np.float64).max, -np.finfo(np.float64).max]], [0]),
    ([[5e-324, -5e-324]], [1]),
]


@pytest.mark.parametrize("logits, y", EXTREMES)
def test_softmax_cross_entropy_at_extreme_logits_matches_pytorch_without_a_warning(logits, y):
    logits, y = np.array(logits), np.array(y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, dlogits = c.softmax_cross_entropy(logits, y)
    assert np.isfinite(dlogits).all()
    torch = _torch()
    t = torch.tensor(logits, requires_grad=True)
    t_loss = torch.nn.functional.cross_entropy(t, torch.tensor(y))
    t_loss.backward()
    same(loss, t_loss.item(), "loss")
    same(dlogits, t.grad.numpy(), "dlogits")


def test_softmax_cross_entropy_mean_does_not_overflow():
    # Two losses of 1e308 each: their mean is 1e308, though their sum is beyond the largest
    # float (PyTorch sums first and gives inf).
    logits = np.array([[0.0, -1e308], [0.0, -1e308]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, dlogits = c.softmax_cross_entropy(logits, np.array([1, 1]))
    assert loss == 1e308
    np.testing.assert_array_equal(dlogits, [[0.5, -0.5], [0.5, -0.5]])


def test_softmax_cross_entropy_float32_extremes():
    big = np.finfo(np.float32).max
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, dlogits = c.softmax_cross_entropy(np.array([[big, -big], [big, -big]], dtype=np.float32), np.array([0, 1]))
    assert loss == np.inf and dlogits.dtype == np.float32
    np.testing.assert_array_equal(dlogits, [[0, 0], [0.5, -0.5]])


@pytest.mark.parametrize("bad", [INF, -INF, NAN])
def test_softmax_cross_entropy_still_refuses_non_finite_logits(bad):
    with pytest.raises(ValueError, match=r"logits must be finite, found .* at index \(0, 1\)"):
        c.softmax_cross_entropy(np.array([[0.0, bad]]), np.array([0]))
