"""Cross-checks against PyTorch's conv2d, max_pool2d, avg_pool2d, linear and cross_entropy.

Torch computes the reference forward outputs, and its autograd the reference gradients, for
the same inputs and the same random upstream gradient. Both cnnlib versions (vectorized and
naive) must match them. The whole module is skipped where torch is not installed.

Tolerances: in float64, rtol=1e-10 and atol=1e-12. The two libraries add the same products
in different orders, which moves results by a few ulps (about 1e-15 relative), so 1e-10 is
loose enough never to flake and tight enough that any wrong index or missing term, which
changes results at order 1, fails. In float32 (epsilon 1.2e-7) the same reordering moves
conv results of size ~20 by up to ~5e-6 absolute, near-zero ones included; rtol=1e-5 with
atol=5e-5 leaves a tenfold margin and still fails any real error.
"""

import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import cnnlib  # noqa: E402  (after importorskip, so a missing torch skips before anything runs)

pytestmark = pytest.mark.torch

TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-5, atol=5e-5)}

CONV = {
    "fast": (cnnlib.conv2d_forward, cnnlib.conv2d_backward),
    "naive": (cnnlib.conv2d_forward_naive, cnnlib.conv2d_backward_naive),
}
MAXPOOL = {
    "fast": (cnnlib.maxpool2d_forward, cnnlib.maxpool2d_backward),
    "naive": (cnnlib.maxpool2d_forward_naive, cnnlib.maxpool2d_backward_naive),
}
AVGPOOL = {
    "fast": (cnnlib.avgpool2d_forward, cnnlib.avgpool2d_backward),
    "naive": (cnnlib.avgpool2d_forward_naive, cnnlib.avgpool2d_backward_naive),
}


def make_rng(*config):
    """A generator seeded from the test's configuration, so every run draws the same numbers.

    crc32 rather than hash(): str hashes are salted per process.
    """
    return np.random.default_rng(zlib.crc32(repr(config).encode()))


def leaf(a):
    """A torch copy of `a` (same dtype) that autograd tracks."""
    return torch.tensor(a, requires_grad=True)


def assert_close(actual, expected, dtype):
    np.testing.assert_allclose(actual, expected, **TOL[dtype])


# (N, C, H, W), (F, KH, KW), stride, pad
CONV_CASES = [
    ((2, 3, 7, 7), (4, 3, 3), 1, 0),
    ((2, 3, 7, 7), (4, 3, 3), 1, 1),
    ((2, 2, 9, 8), (3, 3, 3), 2, 1),
    ((1, 3, 6, 9), (2, 2, 4), (2, 1), (1, 2)),  # batch 1, non-square input and kernel, pairs
    ((2, 1, 8, 7), (3, 5, 3), 3, 2),  # stride leaves rows and columns unused
    ((3, 2, 5, 5), (2, 1, 1), 1, 0),  # 1x1 kernel
    ((2, 2, 4, 3), (3, 4, 3), 1, 0),  # kernel as large as the input: 1x1 output
    ((2, 2, 5, 6), (3, 3, 2), 1, 3),  # padding wider than the kernel: all-padding windows
]


@pytest.mark.parametrize("impl", ["fast", "naive"])
@pytest.mark.parametrize("xshape, wshape, stride, pad", CONV_CASES)
def test_conv2d_matches_torch(impl, xshape, wshape, stride, pad, dtype=np.float64):
    rng = make_rng("conv", xshape, wshape, stride, pad, dtype)
    Fn, KH, KW = wshape
    x = rng.standard_normal(xshape).astype(dtype)
    w = rng.standard_normal((Fn, xshape[1], KH, KW)).astype(dtype)
    b = rng.standard_normal(Fn).astype(dtype)
    xt, wt, bt = leaf(x), leaf(w), leaf(b)
    out_t = F.conv2d(xt, wt, bt, stride=stride, padding=pad)
    dout = rng.standard_normal(tuple(out_t.shape)).astype(dtype)
    out_t.backward(torch.tensor(dout))

    forward, backward = CONV[impl]
    out, cache = forward(x, w, b, stride=stride, pad=pad)
    dx, dw, db = backward(dout, cache)
    for got, want in [(out, out_t), (dx, xt.grad), (dw, wt.grad), (db, bt.grad)]:
        assert got.dtype == dtype
        assert_close(got, want.detach().numpy(), dtype)


@pytest.mark.parametrize("impl", ["fast", "naive"])
def test_conv2d_matches_torch_float32(impl):
    test_conv2d_matches_torch(impl, (2, 3, 9, 8), (4, 3, 3), (2, 1), 1, dtype=np.float32)


# (N, C, H, W), size, stride (None: same as size), pad
MAXPOOL_CASES = [
    ((2, 3, 8, 8), 2, None, 0),
    ((2, 2, 7, 7), 2, None, 0),  # the last row and column fall outside every window
    ((2, 2, 9, 9), 3, 2, 0),  # overlapping windows
    ((2, 2, 9, 10), 3, 2, 1),  # overlapping windows and padding
    ((1, 3, 7, 10), (2, 3), (1, 2), (1, 1)),  # batch 1, non-square, pairs
    ((2, 2, 7, 7), 3, 3, 1),
    ((2, 1, 6, 5), (3, 1), 1, (1, 0)),
]


def torch_maxpool(x, dout_of, size, stride, pad):
    """Torch's output and dx for max_pool2d; dout_of(out_shape) draws the upstream gradient."""
    xt = leaf(x)
    out_t = F.max_pool2d(xt, size, stride=stride, padding=pad)
    dout = dout_of(tuple(out_t.shape))
    out_t.backward(torch.tensor(dout))
    return out_t.detach().numpy(), dout, xt.grad.numpy()


@pytest.mark.parametrize("impl", ["fast", "naive"])
@pytest.mark.parametrize("xshape, size, stride, pad", MAXPOOL_CASES)
def test_maxpool2d_matches_torch(impl, xshape, size, stride, pad, dtype=np.float64):
    rng = make_rng("maxpool", xshape, size, stride, pad, dtype)
    x = rng.standard_normal(xshape).astype(dtype)
    out_t, dout, dx_t = torch_maxpool(x, lambda s: rng.standard_normal(s).astype(dtype), size, stride, pad)

    forward, backward = MAXPOOL[impl]
    out, cache = forward(x, size=size, stride=stride, pad=pad)
    dx = backward(dout, cache)
    # Max pooling only selects and adds; with continuous random inputs there are no ties.
    for got, want in [(out, out_t), (dx, dx_t)]:
        assert got.dtype == dtype
        assert_close(got, want, dtype)


@pytest.mark.parametrize("impl", ["fast", "naive"])
def test_maxpool2d_matches_torch_float32(impl):
    test_maxpool2d_matches_torch(impl, (2, 3, 9, 10), 3, 2, 1, dtype=np.float32)


def distinct_dout(rng, shape):
    """Distinct integers 1..n in random order: a gradient routed to the wrong pixel shows, and
    sums of integers are exact in any order, so dx can be compared for exact equality."""
    return (rng.permutation(int(np.prod(shape))) + 1).reshape(shape).astype(np.float64)


def tied_windows(x, size, stride, pad):
    """How many pooling windows hold their maximum more than once."""
    (KH, KW), (sh, sw), (ph, pw) = [(v, v) if isinstance(v, int) else v for v in (size, stride or size, pad)]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    win = np.lib.stride_tricks.sliding_window_view(xp, (KH, KW), axis=(2, 3))[:, :, ::sh, ::sw]
    return int(np.sum((win == win.max(axis=(4, 5), keepdims=True)).sum(axis=(4, 5)) > 1))


TIE_CASES = [
    ((2, 3, 8, 8), 2, None, 0),
    ((2, 2, 9, 10), 3, 2, 1),
    ((2, 2, 9, 9), 3, 1, 1),
    ((1, 3, 7, 10), (2, 3), (1, 2), (1, 1)),
]


@pytest.mark.parametrize("impl", ["fast", "naive"])
@pytest.mark.parametrize("xshape, size, stride, pad", TIE_CASES)
@pytest.mark.parametrize("values", ["ints 0..2", "constant"])
def test_maxpool2d_ties_route_like_torch(impl, xshape, size, stride, pad, values):
    rng = make_rng("maxpool ties", xshape, size, stride, pad, values)
    if values == "constant":
        x = np.full(xshape, 0.5)
    else:
        x = rng.integers(0, 3, size=xshape).astype(np.float64)
    out_t, dout, dx_t = torch_maxpool(x, lambda s: distinct_dout(rng, s), size, stride, pad)

    forward, backward = MAXPOOL[impl]
    out, cache = forward(x, size=size, stride=stride, pad=pad)
    # Without tied windows this test would check nothing beyond the one above.
    assert tied_windows(x, size, stride, pad) >= out.size // 4
    np.testing.assert_array_equal(out, out_t)
    np.testing.assert_array_equal(backward(dout, cache), dx_t)


@pytest.mark.parametrize("impl", ["fast", "naive"])
@pytest.mark.parametrize("xshape, size, stride, pad", TIE_CASES + [((1, 1, 2, 2), 2, None, 0)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_maxpool2d_windows_of_several_nans_route_like_torch(impl, xshape, size, stride, pad, dtype):
    # PyTorch sends a NaN window's gradient to its last NaN in row-major order; a window of
    # [nan, nan] is what differential fuzzing first found cnnlib routing elsewhere.
    rng = make_rng("maxpool nans", xshape, size, stride, pad, np.dtype(dtype).name)
    x = rng.standard_normal(xshape).astype(dtype)
    x[rng.random(xshape) < 0.4] = np.nan
    x.reshape(-1)[:2] = np.nan  # the first window's first row
    out_t, dout, dx_t = torch_maxpool(x, lambda s: distinct_dout(rng, s).astype(dtype), size, stride, pad)

    forward, backward = MAXPOOL[impl]
    out, cache = forward(x, size=size, stride=stride, pad=pad)
    assert np.isnan(out).sum() >= out.size // 4  # enough windows with a NaN to test anything
    np.testing.assert_array_equal(out, out_t)  # NaN where torch has NaN, the maxima exact
    np.testing.assert_array_equal(backward(dout, cache), dx_t)


# (N, C, H, W), size, stride (None: same as size); cnnlib's average pooling has no padding.
AVGPOOL_CASES = [
    ((2, 3, 8, 8), 2, None),
    ((2, 2, 7, 7), 2, None),
    ((2, 2, 9, 9), 3, 2),  # overlapping windows
    ((1, 3, 7, 10), (2, 3), (1, 2)),  # batch 1, non-square, pairs
    ((2, 2, 7, 7), 3, 3),
    ((2, 1, 6, 5), (3, 1), 1),
]


@pytest.mark.parametrize("impl", ["fast", "naive"])
@pytest.mark.parametrize("xshape, size, stride", AVGPOOL_CASES)
def test_avgpool2d_matches_torch(impl, xshape, size, stride, dtype=np.float64):
    rng = make_rng("avgpool", xshape, size, stride, dtype)
    x = rng.standard_normal(xshape).astype(dtype)
    xt = leaf(x)
    out_t = F.avg_pool2d(xt, size, stride=stride)
    dout = rng.standard_normal(tuple(out_t.shape)).astype(dtype)
    out_t.backward(torch.tensor(dout))

    forward, backward = AVGPOOL[impl]
    out, cache = forward(x, size=size, stride=stride)
    dx = backward(dout, cache)
    for got, want in [(out, out_t.detach().numpy()), (dx, xt.grad.numpy())]:
        assert got.dtype == dtype
        assert_close(got, want, dtype)


@pytest.mark.parametrize("impl", ["fast", "naive"])
def test_avgpool2d_matches_torch_float32(impl):
    test_avgpool2d_matches_torch(impl, (2, 2, 9, 9), 3, 2, dtype=np.float32)


@pytest.mark.parametrize("N, D, M", [(1, 5, 3), (4, 7, 2), (8, 20, 10), (3, 1, 1)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dense_matches_torch(N, D, M, dtype):
    rng = make_rng("dense", N, D, M, dtype)
    x = rng.standard_normal((N, D)).astype(dtype)
    w = rng.standard_normal((D, M)).astype(dtype)  # cnnlib's layout (D, M); torch wants (M, D)
    b = rng.standard_normal(M).astype(dtype)
    xt, wt, bt = leaf(x), leaf(w), leaf(b)
    out_t = F.linear(xt, wt.T, bt)
    dout = rng.standard_normal((N, M)).astype(dtype)
    out_t.backward(torch.tensor(dout))

    out, cache = cnnlib.dense_forward(x, w, b)
    dx, dw, db = cnnlib.dense_backward(dout, cache)
    for got, want in [(out, out_t), (dx, xt.grad), (dw, wt.grad), (db, bt.grad)]:
        assert got.dtype == dtype
        assert_close(got, want.detach().numpy(), dtype)


def torch_cross_entropy(logits, y, scale):
    """Torch's mean cross-entropy and d(scale * loss)/dlogits."""
    lt = leaf(logits)
    loss_t = F.cross_entropy(lt, torch.tensor(y))
    loss_t.backward(torch.tensor(scale, dtype=lt.dtype))
    return loss_t.item(), lt.grad.numpy()


@pytest.mark.parametrize("N, K", [(1, 3), (5, 4), (16, 10), (4, 2)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_entropy_matches_torch(N, K, dtype):
    rng = make_rng("ce", N, K, dtype)
    logits = (3 * rng.standard_normal((N, K))).astype(dtype)
    y = rng.integers(0, K, size=N)
    # A random upstream scalar, not 1, so a gradient that ignores it would fail.
    scale = float(rng.uniform(0.5, 2.0))
    loss_t, dlogits_t = torch_cross_entropy(logits, y, scale)

    loss, dlogits = cnnlib.softmax_cross_entropy(logits, y)
    assert dlogits.dtype == dtype
    assert_close(loss, loss_t, dtype)
    assert_close(scale * dlogits, dlogits_t, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_entropy_large_logits_matches_torch(dtype):
    rng = make_rng("ce large", dtype)
    # exp(1e4) overflows in any float type: only the max-shifted formula stays finite.
    logits = (1e4 * rng.uniform(-1, 1, size=(6, 5))).astype(dtype)
    logits[0, :2] = 1e4  # a tie for the row maximum
    y = rng.integers(0, 5, size=6)
    loss_t, dlogits_t = torch_cross_entropy(logits, y, 1.0)

    loss, dlogits = cnnlib.softmax_cross_entropy(logits, y)
    assert np.isfinite(loss) and np.all(np.isfinite(dlogits))
    assert_close(loss, loss_t, dtype)
    assert_close(dlogits, dlogits_t, dtype)


# ----------------------------------------------------------------------- batch normalisation (issue 26)

BATCHNORM = {
    "fast": (cnnlib.batchnorm2d_forward, cnnlib.batchnorm2d_backward),
    "naive": (cnnlib.batchnorm2d_forward_naive, cnnlib.batchnorm2d_backward_naive),
}
# (N, C, H, W): batch of 1 (several pixels), one channel, non-square maps, 1x1 maps.
BATCHNORM_SHAPES = [(4, 3, 5, 5), (1, 2, 3, 4), (3, 1, 4, 2), (2, 3, 1, 6), (6, 4, 1, 1)]


def batchnorm_inputs(rng, shape, dtype):
    C = shape[1]
    x = (rng.normal(2.0, 3.0, size=shape) + rng.normal(0, 2, size=(1, C, 1, 1))).astype(dtype)
    gamma = (rng.uniform(0.5, 2.0, size=C) * rng.choice([-1, 1], size=C)).astype(dtype)
    beta = rng.normal(size=C).astype(dtype)
    running_mean, running_var = rng.normal(size=C).astype(dtype), rng.uniform(0.5, 2, size=C).astype(dtype)
    return x, gamma, beta, running_mean, running_var


@pytest.mark.parametrize("impl", ["fast", "naive"])
@pytest.mark.parametrize("shape", BATCHNORM_SHAPES)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batchnorm2d_matches_torch(impl, shape, training, dtype=np.float64):
    rng = make_rng("batchnorm", shape, training, np.dtype(dtype).name)
    x, gamma, beta, rm, rv = batchnorm_inputs(rng, shape, dtype)
    xt, gt, bt = leaf(x), leaf(gamma), leaf(beta)
    rm_t, rv_t = torch.tensor(rm), torch.tensor(rv)
    out_t = F.batch_norm(xt, rm_t, rv_t, gt, bt, training=training, momentum=0.2, eps=1e-4)
    dout = rng.standard_normal(shape).astype(dtype)
    out_t.backward(torch.tensor(dout))

    forward, backward = BATCHNORM[impl]
    out, cache = forward(x, gamma, beta, training=training, running_mean=rm, running_var=rv, momentum=0.2, eps=1e-4)
    dx, dgamma, dbeta = backward(dout, cache)
    for got, want in [(out, out_t), (dx, xt.grad), (dgamma, gt.grad), (dbeta, bt.grad), (rm, rm_t), (rv, rv_t)]:
        assert got.dtype == dtype
        assert_close(got, want.detach().numpy(), dtype)


@pytest.mark.parametrize("impl", ["fast", "naive"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batchnorm2d_matches_torch_float32(impl, training):
    test_batchnorm2d_matches_torch(impl, (4, 3, 5, 5), training, dtype=np.float32)


@pytest.mark.parametrize("impl", ["fast", "naive"])
@pytest.mark.parametrize("momentum", [0.1, 0.5, 1.0, 0.0])
def test_batchnorm2d_running_statistics_follow_torch_over_steps(impl, momentum):
    # Five training batches of different sizes and spreads, then eval on a new batch: the
    # running statistics (unbiased variance, PyTorch's momentum) and the eval output agree.
    rng = make_rng("batchnorm running", impl, momentum)
    forward, _ = BATCHNORM[impl]
    C = 3
    rm, rv = np.zeros(C), np.ones(C)
    rm_t, rv_t = torch.zeros(C, dtype=torch.float64), torch.ones(C, dtype=torch.float64)
    gamma, beta = rng.uniform(0.5, 2, size=C), rng.normal(size=C)
    for step, n in enumerate([4, 2, 5, 1, 3]):
        x = rng.normal(step, 1 + step, size=(n, C, 3, 2))
        forward(x, gamma, beta, running_mean=rm, running_var=rv, momentum=momentum)
        F.batch_norm(torch.tensor(x), rm_t, rv_t, torch.tensor(gamma), torch.tensor(beta), training=True,
                     momentum=momentum)
        assert_close(rm, rm_t.numpy(), np.float64)
        assert_close(rv, rv_t.numpy(), np.float64)
    x = rng.normal(size=(2, C, 4, 4))
    out, _ = forward(x, gamma, beta, training=False, running_mean=rm, running_var=rv)
    out_t = F.batch_norm(torch.tensor(x), rm_t, rv_t, torch.tensor(gamma), torch.tensor(beta), training=False)
    assert_close(out, out_t.numpy(), np.float64)


def test_batchnorm2d_layer_in_a_network_matches_torch_through_training_and_eval():
    # conv -> BN -> ReLU -> flatten -> dense, three SGD steps in train mode, then eval: the
    # loss, every gradient, the weights and the running statistics stay PyTorch's.
    rng = make_rng("batchnorm network")
    model = cnnlib.Sequential(cnnlib.Conv2D(2, 3, 3, pad=1, rng=1), cnnlib.BatchNorm2D(3, momentum=0.3),
                              cnnlib.ReLU(), cnnlib.Flatten(), cnnlib.Dense(3 * 4 * 4, 5, rng=2))
    bn = model.layers[1]
    bn.params["gamma"][...] = rng.uniform(0.5, 1.5, size=3)
    bn.params["beta"][...] = rng.normal(size=3)
    tconv, tbn, tdense = torch.nn.Conv2d(2, 3, 3, padding=1).double(), torch.nn.BatchNorm2d(3, momentum=0.3).double(), \
        torch.nn.Linear(48, 5).double()
    with torch.no_grad():
        tconv.weight.copy_(torch.tensor(model.layers[0].params["w"]))
        tconv.bias.copy_(torch.tensor(model.layers[0].params["b"]))
        tbn.weight.copy_(torch.tensor(bn.params["gamma"]))
        tbn.bias.copy_(torch.tensor(bn.params["beta"]))
        tdense.weight.copy_(torch.tensor(model.layers[4].params["w"].T))
        tdense.bias.copy_(torch.tensor(model.layers[4].params["b"]))
    tmodel = torch.nn.Sequential(tconv, tbn, torch.nn.ReLU(), torch.nn.Flatten(), tdense)
    opt, topt = cnnlib.SGD(lr=0.1, momentum=0.9), torch.optim.SGD(tmodel.parameters(), lr=0.1, momentum=0.9)
    for step in range(3):
        x = rng.normal(size=(6, 2, 4, 4))
        y = rng.integers(0, 5, size=6)
        loss, dlogits = cnnlib.softmax_cross_entropy(model.forward(x), y)
        model.backward(dlogits)
        opt.step(model.params(), model.grads())
        topt.zero_grad()
        loss_t = F.cross_entropy(tmodel(torch.tensor(x)), torch.tensor(y))
        loss_t.backward()
        topt.step()
        assert_close(loss, loss_t.item(), np.float64)
        assert_close(bn.grads["gamma"], tbn.weight.grad.numpy(), np.float64)
        assert_close(bn.grads["beta"], tbn.bias.grad.numpy(), np.float64)
        assert_close(bn.params["gamma"], tbn.weight.detach().numpy(), np.float64)
        assert_close(model.layers[0].params["w"], tconv.weight.detach().numpy(), np.float64)
        assert_close(bn.running_mean, tbn.running_mean.numpy(), np.float64)
        assert_close(bn.running_var, tbn.running_var.numpy(), np.float64)
    x = rng.normal(size=(3, 2, 4, 4))
    tmodel.eval()
    assert_close(cnnlib.predict(model, x), tmodel(torch.tensor(x)).detach().numpy(), np.float64)
