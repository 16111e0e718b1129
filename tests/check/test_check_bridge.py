"""cnnlib.check's checks for lessons 5-7 (bridge.py), and the layer checks on those lessons' functions.

Each buggy function is a learner's function with one classic mistake written into it: the check
must fail it and give that mistake's hint. Correct functions, in several styles, pass with no hint.
"""

import numpy as np
import pytest

import cnnlib
from cnnlib import check


pytestmark = pytest.mark.usefixtures("no_detector_breaks")  # see conftest.py


def passes(report):
    assert report.passed, str(report)
    assert report.hints == [], str(report)
    assert str(report).splitlines()[0].startswith(f"check.{report.name}: PASSED")


def fails_with(report, *keys):
    assert not report.passed, str(report)
    assert str(report).splitlines()[0].startswith(f"check.{report.name}: FAILED"), str(report)
    for key in keys:
        assert key in report.mistakes, str(report)


# ---- lesson 5: scatter_one ----

def scatter_one(dout, w, stride, pad, shape, crop="size", assign=False, flip=False, use_stride=True):
    KH, KW = w.shape
    H, W = shape
    kernel = w[::-1, ::-1] if flip else w
    s = stride if use_stride else 1
    dxp = np.zeros((H + 2 * pad, W + 2 * pad))
    for i in range(dout.shape[0]):
        for j in range(dout.shape[1]):
            if assign:
                dxp[i * s:i * s + KH, j * s:j * s + KW] = dout[i, j] * kernel
            else:
                dxp[i * s:i * s + KH, j * s:j * s + KW] += dout[i, j] * kernel
    if crop == "size":
        return dxp[pad:pad + H, pad:pad + W]
    if crop == "minus":
        return dxp[pad:-pad, pad:-pad]
    return dxp


def test_scatter_one_passes_the_lessons_loop_and_a_full_convolution():
    passes(check.scatter_one(scatter_one))

    def by_full_convolution(dout, w, stride, pad, shape):  # dilate dout, pad it, correlate with the flipped kernel
        KH, KW = w.shape
        H, W = shape
        dil = np.zeros(((dout.shape[0] - 1) * stride + 1, (dout.shape[1] - 1) * stride + 1))
        dil[::stride, ::stride] = dout
        Hp, Wp = H + 2 * pad, W + 2 * pad
        extra = (Hp - (dil.shape[0] + KH - 1), Wp - (dil.shape[1] + KW - 1))  # rows and columns no window reads
        full = np.pad(dil, ((KH - 1, KH - 1 + extra[0]), (KW - 1, KW - 1 + extra[1])))
        dxp, _ = cnnlib.conv2d_forward(full[None, None], w[::-1, ::-1][None, None], np.zeros(1))
        return dxp[0, 0, pad:pad + H, pad:pad + W]

    passes(check.scatter_one(by_full_convolution))


@pytest.mark.parametrize("bug, key", [
    (dict(crop="minus"), "pad_crop"),
    (dict(crop="none"), "no_crop"),
    (dict(assign=True), "overwrite_dx"),
    (dict(flip=True), "flipped_kernel"),
    (dict(use_stride=False), "stride_ignored"),
])
def test_scatter_one_mistakes(bug, key):
    report = check.scatter_one(lambda *args: scatter_one(*args, **bug))
    fails_with(report, key)
    assert len(report.hints) == 1, report.hints


def test_scatter_one_stub_error_and_wrong_call():
    def stub(dout, w, stride, pad, shape):
        raise NotImplementedError("scatter_one: not written yet")

    report = check.scatter_one(stub)
    assert str(report).splitlines()[0] == "check.scatter_one: NOT WRITTEN YET"

    def broken(dout, w, stride, pad, shape):
        return dout[10, 10]

    report = check.scatter_one(broken)
    assert not report.passed and "IndexError" in str(report) and report.mistakes == ["raises"]
    with pytest.raises(TypeError):
        check.scatter_one()
    with pytest.raises(TypeError):
        check.scatter_one(scatter_one, backward=scatter_one)
    with pytest.raises(TypeError):
        check.scatter_one(np.zeros(3))


# ---- lesson 5: the loop and vectorized backward, with check.conv2d ----

def conv_backward_naive(dout, cache, crop="size", assign=False, use_stride=True):
    x, w, b, (sh, sw), (ph, pw) = cache[:5]
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    db = dout.sum(axis=(0, 2, 3))
    for n in range(N):
        for f in range(F):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    r, t = (i * sh, j * sw) if use_stride else (i, j)
                    dw[f] += dout[n, f, i, j] * xp[n, :, r:r + KH, t:t + KW]
                    if assign:
                        dxp[n, :, r:r + KH, t:t + KW] = dout[n, f, i, j] * w[f]
                    else:
                        dxp[n, :, r:r + KH, t:t + KW] += dout[n, f, i, j] * w[f]
    dx = dxp[:, :, ph:ph + H, pw:pw + W] if crop == "size" else dxp[:, :, ph:-ph, pw:-pw]
    return dx, dw, db


def conv_backward_vectorized(dout, cache, bug=None):
    from numpy.lib.stride_tricks import sliding_window_view

    x, w, b, (sh, sw), (ph, pw) = cache[:5]
    H, W = x.shape[2:]
    KH, KW = w.shape[2:]
    H_out, W_out = dout.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    windows = sliding_window_view(xp, (KH, KW), axis=(2, 3))[:, :, ::sh, ::sw]
    db = dout.mean(axis=(0, 2, 3)) if bug == "mean" else dout.sum(axis=(0, 2, 3))
    dw = np.einsum("nfij,ncijpq->cfpq" if bug == "dw axes" else "nfij,ncijpq->fcpq", dout, windows)
    dwindows = np.einsum("nfij,fcpq->ncijpq", dout, w)
    dxp = np.zeros_like(xp)
    for p in range(KH):
        for q in range(KW):
            if bug == "no stride":
                dxp[:, :, p:p + H_out, q:q + W_out] += dwindows[:, :, :, :, p, q]
            else:
                dxp[:, :, p:p + sh * H_out:sh, q:q + sw * W_out:sw] += dwindows[:, :, :, :, p, q]
    return dxp[:, :, ph:ph + H, pw:pw + W], dw, db


def test_conv2d_passes_lesson_5s_backward_functions():
    passes(check.conv2d(backward=conv_backward_naive))
    passes(check.conv2d(backward=conv_backward_vectorized))


@pytest.mark.parametrize("bug, key", [
    (dict(crop="minus"), "pad_crop"),
    (dict(assign=True), "overwrite_dx"),
    (dict(use_stride=False), "stride_ignored"),
])
def test_conv2d_recognises_lesson_5s_mistakes(bug, key):
    fails_with(check.conv2d(backward=lambda dout, cache: conv_backward_naive(dout, cache, **bug)), key)


@pytest.mark.parametrize("bug, key", [("dw axes", "transposed_dw"), ("no stride", "stride_ignored"),
                                      ("mean", "averaged")])
def test_conv2d_recognises_mistakes_in_the_vectorized_backward(bug, key):
    fails_with(check.conv2d(backward=lambda dout, cache: conv_backward_vectorized(dout, cache, bug)), key)


# ---- lesson 6: pool_output_size ----

def test_pool_output_size_passes():
    passes(check.pool_output_size(lambda H, W, size, stride: ((H - size) // stride + 1, (W - size) // stride + 1)))
    # NumPy integers and a list are fine too
    passes(check.pool_output_size(lambda H, W, size, stride: [np.int64((H - size) // stride + 1),
                                                              np.int64((W - size) // stride + 1)]))


@pytest.mark.parametrize("fn, key", [
    (lambda H, W, k, s: ((H - k) // s, (W - k) // s), "size_no_plus_one"),
    (lambda H, W, k, s: (H - k + 1, W - k + 1), "size_no_stride"),
    (lambda H, W, k, s: (int(np.ceil((H - k) / s)) + 1, int(np.ceil((W - k) / s)) + 1), "size_rounded_up"),
    (lambda H, W, k, s: ((H - k) / s + 1, (W - k) / s + 1), "size_true_division"),
    (lambda H, W, k, s: ((H - k) // s + 1, (H - k) // s + 1), "size_height_width"),
    (lambda H, W, k, s: ((W - k) // s + 1, (H - k) // s + 1), "size_height_width"),
])
def test_pool_output_size_mistakes(fn, key):
    report = check.pool_output_size(fn)
    fails_with(report, key)
    assert len(report.hints) == 1, report.hints


def test_pool_output_size_other_answers():
    report = check.pool_output_size(lambda H, W, k, s: H)
    assert not report.passed and "two ints" in str(report) and report.hints == []
    report = check.pool_output_size(lambda H, W, k, s: (1, 1))
    assert not report.passed and report.hints == []


# ---- lesson 6: the loop pooling functions, with check.maxpool2d and check.avgpool2d ----

def pool_output_size(H, W, size, stride):
    return (H - size) // stride + 1, (W - size) // stride + 1


def maxpool_forward_loop(x, size=2, stride=None):
    stride = size if stride is None else stride
    N, C, H, W = x.shape
    Ho, Wo = pool_output_size(H, W, size, stride)
    out = np.zeros((N, C, Ho, Wo))
    argmax = np.zeros((N, C, Ho, Wo), dtype=int)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    window = x[n, c, i * stride:i * stride + size, j * stride:j * stride + size]
                    argmax[n, c, i, j] = np.argmax(window)
                    out[n, c, i, j] = window.flat[argmax[n, c, i, j]]
    return out, (x, argmax, size, stride)


def maxpool_backward_loop(dout, cache, bug=None):
    x, argmax, size, stride = cache
    N, C, Ho, Wo = dout.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    p, q = divmod(argmax[n, c, i, j], stride if bug == "divmod by stride" else size)
                    if bug == "no stride":
                        dx[n, c, i + p, j + q] += dout[n, c, i, j]
                    elif bug == "assign":
                        dx[n, c, i * stride + p, j * stride + q] = dout[n, c, i, j]
                    else:
                        dx[n, c, i * stride + p, j * stride + q] += dout[n, c, i, j]
    return dx


def avgpool_forward_loop(x, size=2, stride=None):
    stride = size if stride is None else stride
    N, C, H, W = x.shape
    Ho, Wo = pool_output_size(H, W, size, stride)
    out = np.zeros((N, C, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            out[:, :, i, j] = x[:, :, i * stride:i * stride + size, j * stride:j * stride + size].mean(axis=(2, 3))
    return out, (x, size, stride)


def avgpool_backward_loop(dout, cache, divide_by=None):
    x, size, stride = cache
    Ho, Wo = dout.shape[2:]
    dx = np.zeros_like(x)
    for i in range(Ho):
        for j in range(Wo):
            share = dout[:, :, i, j] / (size ** 2 if divide_by is None else divide_by(size))
            dx[:, :, i * stride:i * stride + size, j * stride:j * stride + size] += share[:, :, None, None]
    return dx


def test_pool_checks_pass_lesson_6s_functions():
    report = check.maxpool2d(forward=maxpool_forward_loop)
    passes(report)
    assert [c.status for c in report.cases].count("skip") == 1  # the pad case: the lesson's forward has no pad
    passes(check.maxpool2d(forward=maxpool_forward_loop, backward=maxpool_backward_loop))
    passes(check.avgpool2d(forward=avgpool_forward_loop))
    passes(check.avgpool2d(forward=avgpool_forward_loop, backward=avgpool_backward_loop))


@pytest.mark.parametrize("bug, key", [("no stride", "stride_ignored"), ("assign", "overwrite_dx")])
def test_maxpool2d_recognises_lesson_6s_mistakes(bug, key):
    report = check.maxpool2d(forward=maxpool_forward_loop,
                             backward=lambda dout, cache: maxpool_backward_loop(dout, cache, bug))
    fails_with(report, key)


def test_avgpool2d_recognises_a_backward_without_the_division():
    report = check.avgpool2d(forward=avgpool_forward_loop,
                             backward=lambda dout, cache: avgpool_backward_loop(dout, cache, lambda k: 1))
    fails_with(report, "avg_factor")


# Classic mistakes the layer checks fail but do not name yet (told to the lead, who owns the layer
# entries of the catalogue). strict: when an entry names them, these tests fail until the marker goes.
def test_avgpool2d_names_a_division_by_the_window_side():
    report = check.avgpool2d(forward=avgpool_forward_loop,
                             backward=lambda dout, cache: avgpool_backward_loop(dout, cache, lambda k: k))
    assert not report.passed
    assert any("size" in h for h in report.hints), str(report)


def test_maxpool2d_names_argmax_decoded_with_the_stride():
    report = check.maxpool2d(forward=maxpool_forward_loop,
                             backward=lambda dout, cache: maxpool_backward_loop(dout, cache, "divmod by stride"))
    assert not report.passed
    assert any("divmod" in h for h in report.hints), str(report)


# ---- lesson 7: Flatten pairs, with check.flatten ----

def my_flatten_forward(x):
    return x.reshape(x.shape[0], -1), x.shape


def my_flatten_backward(dout, shape):
    return dout.reshape(shape)


def flatten_forward_F(x):
    return x.reshape(x.shape[0], -1, order="F"), x.shape


def flatten_backward_F(dout, shape):
    return dout.reshape(shape, order="F")


def test_flatten_passes_lesson_7s_pairs():
    passes(check.flatten(forward=my_flatten_forward))
    passes(check.flatten(forward=my_flatten_forward, backward=my_flatten_backward))
    report = check.flatten(forward=flatten_forward_F, backward=flatten_backward_F)
    passes(report)
    assert any("another order" in note for note in report.notes)


def test_flatten_recognises_a_mismatched_pair():
    fails_with(check.flatten(forward=my_flatten_forward, backward=flatten_backward_F), "flatten_order")


# ---- lesson 7: permute_dense_weights ----

def permute_by_index(w, shape):
    from cnnlib.explorers.flatten import flat_index, unravel

    perm = np.array([flat_index(*unravel(j, shape, "F"), shape, "C") for j in range(w.shape[0])])
    return w[perm]


def test_permute_dense_weights_passes():
    passes(check.permute_dense_weights(permute_by_index))
    passes(check.permute_dense_weights(lambda w, shape: w[np.arange(w.shape[0]).reshape(shape).ravel(order="F")]))
    passes(check.permute_dense_weights(
        lambda w, shape: w.reshape(*shape, -1).transpose(2, 1, 0, 3).reshape(w.shape)))


@pytest.mark.parametrize("fn, key", [
    (lambda w, shape: w.copy(), "permute_unchanged"),
    (lambda w, shape: w[np.argsort(np.arange(w.shape[0]).reshape(shape).ravel(order="F"))], "permute_inverse"),
    (lambda w, shape: w.reshape(*shape, -1).transpose(1, 2, 0, 3).reshape(w.shape), "permute_axes"),  # channels last
    (lambda w, shape: w.reshape(*shape, -1).transpose(2, 0, 1, 3).reshape(w.shape), "permute_axes"),
])
def test_permute_dense_weights_mistakes(fn, key):
    report = check.permute_dense_weights(fn)
    fails_with(report, key)
    assert len(report.hints) == 1, report.hints
    assert "off by up to" in str(report)


# ---- lesson 7: flatten_dense ----

def test_flatten_dense_passes_einsum_and_tensordot():
    passes(check.flatten_dense(lambda x, w, b: np.einsum("nchw,chwm->nm", x, w.reshape(*x.shape[1:], -1)) + b))
    passes(check.flatten_dense(lambda x, w, b: np.tensordot(x, w.reshape(*x.shape[1:], -1), axes=3) + b))


@pytest.mark.parametrize("fn, key", [
    # the weights viewed channels last, letters paired as if x were (N, H, W, C)
    (lambda x, w, b: np.einsum("nchw,hwcm->nm", x, w.reshape(x.shape[2], x.shape[3], x.shape[1], -1)) + b,
     "flatten_dense_axes"),
    # w viewed (C, W, H, M): h and w swapped
    (lambda x, w, b: np.einsum("nchw,cwhm->nm", x, w.reshape(x.shape[1], x.shape[3], x.shape[2], -1)) + b,
     "flatten_dense_axes"),
    (lambda x, w, b: np.einsum("nchw,mchw->nm", x, w.reshape(-1, *x.shape[1:])) + b, "flatten_dense_weight_layout"),
    (lambda x, w, b: np.einsum("nchw,chwm->nm", x, w.reshape(*x.shape[1:], -1)), "no_bias"),
])
def test_flatten_dense_mistakes(fn, key):
    report = check.flatten_dense(fn)
    fails_with(report, key)
    assert len(report.hints) == 1, report.hints


def test_flatten_dense_wrong_shape_is_reported():
    report = check.flatten_dense(lambda x, w, b: np.einsum("nchw,chwm->m", x, w.reshape(*x.shape[1:], -1)) + b)
    assert not report.passed and "shape" in str(report)


# ---- lesson 7: port_dense_weights ----

def test_port_dense_weights_passes():
    def port(w_nhwc, shape):
        C, H, W = shape
        return w_nhwc.reshape(H, W, C, -1).transpose(2, 0, 1, 3).reshape(C * H * W, -1)

    passes(check.port_dense_weights(port))

    def port_by_rows(w_nhwc, shape):
        C, H, W = shape
        w_nchw = np.empty_like(w_nhwc)
        for c in range(C):
            for h in range(H):
                for w in range(W):
                    w_nchw[(c * H + h) * W + w] = w_nhwc[(h * W + w) * C + c]
        return w_nchw

    passes(check.port_dense_weights(port_by_rows))


@pytest.mark.parametrize("fn, key", [
    (lambda w, shape: w, "permute_unchanged"),
    # the way back, NCHW -> NHWC
    (lambda w, shape: w.reshape(*shape, -1).transpose(1, 2, 0, 3).reshape(w.shape), "port_inverse"),
    # rows viewed (H, W, C), C moved to the front but H and W swapped
    (lambda w, shape: w.reshape(shape[1], shape[2], shape[0], -1).transpose(2, 1, 0, 3).reshape(w.shape),
     "port_wrong_axes"),
    # rows viewed (C, H, W), the wrong view of the old order
    (lambda w, shape: w.reshape(*shape, -1).transpose(2, 0, 1, 3).reshape(w.shape), "port_wrong_axes"),
])
def test_port_dense_weights_mistakes(fn, key):
    report = check.port_dense_weights(fn)
    fails_with(report, key)
    assert len(report.hints) == 1, report.hints


def test_port_unchanged_passes_the_one_channel_case():
    report = check.port_dense_weights(lambda w, shape: w)
    one_channel = [c for c in report.cases if c.name.startswith("one channel")]
    assert one_channel and one_channel[0].status == "pass"


def test_the_bridge_checks_are_deterministic_and_exported():
    for name in ["scatter_one", "pool_output_size", "permute_dense_weights", "flatten_dense", "port_dense_weights"]:
        assert name in check.__all__
    a = str(check.flatten_dense(lambda x, w, b: x.reshape(x.shape[0], -1) @ w))
    b = str(check.flatten_dense(lambda x, w, b: x.reshape(x.shape[0], -1) @ w))
    assert a == b
    html = check.port_dense_weights(lambda w, shape: w)._repr_html_()
    assert "check.port_dense_weights: FAILED" in html


def test_the_references_pass_their_checks():
    ref = check.bridge.reference
    passes(check.scatter_one(ref.scatter_one))
    passes(check.pool_output_size(ref.pool_output_size))
    passes(check.maxpool2d(forward=ref.maxpool_forward_loop, backward=ref.maxpool_backward_loop))
    passes(check.avgpool2d(forward=ref.avgpool_forward_loop, backward=ref.avgpool_backward_loop))
    report = check.flatten(forward=ref.flatten_forward_F, backward=ref.flatten_backward_F)
    passes(report)
    assert report.notes
    passes(check.permute_dense_weights(ref.permute_dense_weights))
    passes(check.flatten_dense(ref.flatten_dense))
    passes(check.port_dense_weights(ref.port_dense_weights))


def test_the_references_take_the_lessons_caches(rng):
    x = rng.standard_normal((2, 3, 7, 7))
    dout = rng.standard_normal((2, 3, 3, 3))
    ref = check.bridge.reference
    for forward, backward, mine, theirs in [
            (maxpool_forward_loop, maxpool_backward_loop, ref.maxpool_forward_loop, ref.maxpool_backward_loop),
            (avgpool_forward_loop, avgpool_backward_loop, ref.avgpool_forward_loop, ref.avgpool_backward_loop)]:
        out, cache = forward(x, 3, 2)
        out_ref, cache_ref = mine(x, 3, 2)
        np.testing.assert_allclose(out_ref, out)
        np.testing.assert_allclose(backward(dout, cache_ref), backward(dout, cache))  # the lesson's backward, its cache
        np.testing.assert_allclose(theirs(dout, cache), backward(dout, cache))  # and the other way round
    flat, shape = ref.flatten_forward_F(x)
    np.testing.assert_array_equal(flat, flatten_forward_F(x)[0])
    np.testing.assert_array_equal(ref.flatten_backward_F(flat, shape), x)
