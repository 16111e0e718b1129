"""cnnlib.check's layer checks: right verdicts, and each catalogue entry's hint for its real mistake.

Every buggy function below is a learner's function with one classic mistake written into it; the
check must fail it and give that mistake's hint. Correct functions, in several styles, must pass
with no hint. (tests/check/test_heldout_learners.py runs a second set, written without reading the
checker.)
"""

import warnings

import numpy as np
import pytest

import cnnlib
from cnnlib import check



pytestmark = pytest.mark.usefixtures("no_detector_breaks")  # see conftest.py


# ---- a learner's loop convolution, and its mistakes ----

def conv_forward(x, w, b, stride=1, pad=0, flip=False, no_pad_in_size=False):
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    Ho = (H + (0 if no_pad_in_size else 2 * pad) - KH) // stride + 1
    Wo = (W + (0 if no_pad_in_size else 2 * pad) - KW) // stride + 1
    kernel = w[:, :, ::-1, ::-1] if flip else w
    out = np.zeros((N, F, Ho, Wo))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    window = xp[n, :, i * stride:i * stride + KH, j * stride:j * stride + KW]
                    out[n, f, i, j] = np.sum(window * kernel[f]) + b[f]
    return out, (x, w, b, stride, pad, flip)


def conv_backward(dout, cache, bug=None):
    x, w, b, stride, pad, flip = cache
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    kernel = w[:, :, ::-1, ::-1] if flip else w
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    db = dout.sum(axis=(0, 2, 3))
    for n in range(N):
        for f in range(F):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    r, t = (i, j) if bug == "stride" else (i * stride, j * stride)
                    window = xp[n, :, r:r + KH, t:t + KW]
                    if bug == "dw =":
                        dw[f] = dout[n, f, i, j] * window
                    else:
                        dw[f] += dout[n, f, i, j] * window
                    if bug == "dx =":
                        dxp[n, :, r:r + KH, t:t + KW] = dout[n, f, i, j] * kernel[f]
                    else:
                        dxp[n, :, r:r + KH, t:t + KW] += dout[n, f, i, j] * kernel[f]
    if flip:
        dw = dw[:, :, ::-1, ::-1]
    if bug == "crop":
        return dxp[:, :, pad:-pad, pad:-pad], dw, db
    dx = dxp[:, :, pad:pad + H, pad:pad + W]
    if bug == "db axes":
        db = dout.sum(axis=(2, 3))
    if bug == "db mean":
        db = dout.mean(axis=(0, 2, 3))
    if bug == "dw / N":
        dw = dw / N
    if bug == "dw transposed":
        dw = dw.transpose(1, 0, 2, 3)
    if bug == "float32":
        dx = dx.astype(np.float32)
    if bug == "in place":
        dout *= 1.0
        dout[0] = 0
    if bug == "two values":
        return dx, dw
    return dx, dw, db


def conv_backward_buggy(bug):
    def backward(dout, cache):
        return conv_backward(dout, cache, bug)
    return backward


def conv_backward_cnnlib_cache(dout, cache):
    x, w, b, (sh, sw), (ph, pw) = cache[:5]
    return conv_backward(dout, (x, w, b, sh, ph, False))


def test_correct_conv_in_three_styles_passes_with_no_hint():
    for forward, backward in [(conv_forward, conv_backward),
                              (cnnlib.conv2d_forward_naive, cnnlib.conv2d_backward_naive),
                              (cnnlib.conv2d_forward, cnnlib.conv2d_backward),
                              (None, conv_backward_cnnlib_cache)]:
        report = check.conv2d(forward=forward, backward=backward)
        assert report.passed, str(report)
        assert report.hints == [] and str(report).startswith("check.conv2d: PASSED (6 cases)")


@pytest.mark.parametrize("bug, key", [
    ("crop", "pad_crop"),
    ("dx =", "overwrite_dx"),
    ("dw =", "overwrite_dw"),
    ("stride", "stride_ignored"),
    ("db axes", "db_axes"),
    ("db mean", "averaged"),
    ("dw / N", "averaged"),
    ("dw transposed", "transposed_dw"),
    ("float32", "float32"),
    ("in place", "in_place"),
])
def test_conv_backward_mistake_gets_its_hint(bug, key):
    report = check.conv2d(forward=conv_forward, backward=conv_backward_buggy(bug))
    assert not report.passed
    assert key in report.mistakes, str(report)


def test_a_backward_returning_two_values_is_told_what_to_return():
    report = check.conv2d(forward=conv_forward, backward=conv_backward_buggy("two values"))
    assert not report.passed
    assert "backward should return (dx, dw, db), got 2 values" in str(report)
    assert "return_form" in report.mistakes


def test_flipped_kernel_pair_is_consistent_but_wrong():
    def flipped_forward(x, w, b, stride=1, pad=0):
        return conv_forward(x, w, b, stride, pad, flip=True)

    report = check.conv2d(forward=flipped_forward, backward=conv_backward)
    assert not report.passed
    assert "flipped_kernel" in report.mistakes
    assert "consistent_pair" in report.mistakes


def test_a_backward_alone_that_flips_the_kernel_is_recognised():
    def backward(dout, cache):
        x, w, b, (s, _), (p, _) = cache[:5]
        return conv_backward(dout, (x, w, b, s, p, True))

    report = check.conv2d(backward=backward)
    assert not report.passed and "flipped_kernel" in report.mistakes


def test_output_size_without_padding_is_named():
    def forward(x, w, b, stride=1, pad=0):
        return conv_forward(x, w, b, stride, pad, no_pad_in_size=True)

    report = check.conv2d(forward=forward)
    assert not report.passed
    assert "size_no_pad" in report.mistakes, str(report)


def test_cnnlib_cache_unpacked_as_five_ints_gets_the_cache_layout():
    def backward(dout, cache):
        x, w, b, stride, pad = cache  # cnnlib's has six entries, stride and pad as pairs
        return conv_backward(dout, (x, w, b, stride, pad, False))

    report = check.conv2d(backward=backward)
    assert not report.passed and "cache_layout" in report.mistakes, str(report)


def test_an_exception_is_reported_with_the_learners_line_and_not_raised():
    def backward(dout, cache):
        x, w = cache[:2]
        return dout @ w, None, None  # the line that raises

    report = check.conv2d(backward=backward)
    assert not report.passed
    text = str(report)
    assert "in backward, line" in text and "`return dout @ w, None, None  # the line that raises`" in text
    assert "raises" in report.mistakes


def test_a_stub_is_not_written_yet():
    def conv_backward_naive(dout, cache):
        raise NotImplementedError

    report = check.conv2d(backward=conv_backward_naive)
    assert not report.passed
    assert str(report).splitlines()[0] == "check.conv2d: NOT WRITTEN YET"
    assert "conv_backward_naive" in str(report) and "conv_backward_naive" in report._repr_html_()


def test_the_fallback_wrapper_is_seen_through():
    @check.exercise(fallback=cnnlib.conv2d_backward)
    def conv_backward_naive(dout, cache):
        raise NotImplementedError

    assert str(check.conv2d(backward=conv_backward_naive)).startswith("check.conv2d: NOT WRITTEN YET")


def test_a_function_without_pad_is_checked_on_the_cases_it_can_express():
    def forward(x, w, b, stride=1):
        return conv_forward(x, w, b, stride, 0)

    report = check.conv2d(forward=forward)
    skipped = [c for c in report.cases if c.status == "skip"]
    assert report.passed and len(skipped) == 3 and len(report.ran) == 3
    assert all("no `pad` parameter" in c.detail for c in skipped)
    assert "[skip]" in str(report)


@pytest.mark.parametrize("call", [
    lambda: check.conv2d(),
    lambda: check.conv2d(forward=3),
    lambda: check.conv2d(backwards=conv_backward),
    lambda: check.dense(forward=np.ndarray),
    lambda: check.softmax_cross_entropy(),
    lambda: check.softmax_cross_entropy(lambda l, y: 0, extra=1),
])
def test_calling_a_check_wrongly_is_a_type_error(call):
    with pytest.raises(TypeError):
        call()


def test_reports_are_the_same_every_run_and_change_no_global_state():
    np.random.seed(5)
    state, errors, filters = np.random.get_state()[1].copy(), np.geterr(), list(warnings.filters)
    first = str(check.conv2d(forward=conv_forward, backward=conv_backward_buggy("dx =")))
    second = str(check.conv2d(forward=conv_forward, backward=conv_backward_buggy("dx =")))
    assert first == second
    assert np.array_equal(np.random.get_state()[1], state) and np.geterr() == errors
    assert warnings.filters == filters


def test_the_html_table_says_what_the_text_says():
    report = check.conv2d(forward=conv_forward, backward=conv_backward_buggy("crop"))
    page = report._repr_html_()
    assert report.status_line() in page and "FAIL" in page and "dx has shape (2, 3, 0, 0)" in page
    assert "Hint:" in page


def test_the_worst_element_is_located():
    report = check.conv2d(forward=conv_forward, backward=conv_backward_buggy("dx ="))
    assert any("pixel" in c.detail and "the worst is dx[" in c.detail for c in report.failed)


# ---- pooling ----

def maxpool_forward(x, size=2, stride=None, pad=0):
    stride = stride or size
    N, C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=-np.inf)
    Ho, Wo = (H + 2 * pad - size) // stride + 1, (W + 2 * pad - size) // stride + 1
    out = np.empty((N, C, Ho, Wo))
    for n, c, i, j in np.ndindex(out.shape):
        out[n, c, i, j] = xp[n, c, i * stride:i * stride + size, j * stride:j * stride + size].max()
    return out, (x, size, stride, pad)


def maxpool_backward(dout, cache, bug=None):
    x, size, stride, pad = cache
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=-np.inf)
    dxp = np.zeros_like(xp)
    for n, c, i, j in np.ndindex(dout.shape):
        rows, cols = slice(i * stride, i * stride + size), slice(j * stride, j * stride + size)
        window = xp[n, c, rows, cols]
        if bug == "every tie":
            dxp[n, c, rows, cols] += dout[n, c, i, j] * (window == window.max())
        elif bug == "spread":
            dxp[n, c, rows, cols] += dout[n, c, i, j] / size ** 2
        else:
            p, q = divmod(int(np.argmax(window)), stride if bug == "decode by stride" else size)
            if bug == "row and column swapped":
                p, q = q, p
            if bug == "=":
                dxp[n, c, i * stride + p, j * stride + q] = dout[n, c, i, j]
            else:
                dxp[n, c, i * stride + p, j * stride + q] += dout[n, c, i, j]
    if bug == "crop":
        return dxp[:, :, pad:-pad, pad:-pad]
    return dxp[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]]


def test_correct_max_pooling_passes():
    for forward, backward in [(maxpool_forward, maxpool_backward),
                              (cnnlib.maxpool2d_forward_naive, cnnlib.maxpool2d_backward_naive),
                              (cnnlib.maxpool2d_forward, cnnlib.maxpool2d_backward)]:
        report = check.maxpool2d(forward=forward, backward=backward)
        assert report.passed and not report.hints, str(report)


@pytest.mark.parametrize("bug, key", [("every tie", "every_tie"), ("spread", "spread_window"),
                                      ("=", "overwrite_dx"), ("crop", "pad_crop"),
                                      ("decode by stride", "argmax_decoded_by_stride"),
                                      ("row and column swapped", "window_row_column_swapped")])
def test_max_pooling_mistake_gets_its_hint(bug, key):
    report = check.maxpool2d(forward=maxpool_forward, backward=lambda d, c: maxpool_backward(d, c, bug))
    assert not report.passed and key in report.mistakes, str(report)


def test_max_pooling_ties_fail_only_in_the_tie_cases():
    report = check.maxpool2d(forward=maxpool_forward, backward=lambda d, c: maxpool_backward(d, c, "every tie"))
    assert {c.name for c in report.failed} == {c.name for c in report.cases if "tied" in c.name}


def avgpool_forward(x, size=2, stride=None, bug=None):
    stride = stride or size
    N, C, H, W = x.shape
    Ho, Wo = (H - size) // stride + 1, (W - size) // stride + 1
    out = np.empty((N, C, Ho, Wo))
    for n, c, i, j in np.ndindex(out.shape):
        window = x[n, c, i * stride:i * stride + size, j * stride:j * stride + size]
        out[n, c, i, j] = window.sum() if bug == "sum" else window.mean()
    return out, (x, size, stride)


def avgpool_backward(dout, cache, bug=None):
    x, size, stride = cache
    dx = np.zeros_like(x)
    share = 1.0 if bug == "no factor" else 1.0 / size ** 2
    for n, c, i, j in np.ndindex(dout.shape):
        rows, cols = slice(i * stride, i * stride + size), slice(j * stride, j * stride + size)
        if bug == "=":
            dx[n, c, rows, cols] = dout[n, c, i, j] * share
        else:
            dx[n, c, rows, cols] += dout[n, c, i, j] * share
    return dx


def test_average_pooling_verdicts():
    assert check.avgpool2d(forward=avgpool_forward, backward=avgpool_backward).passed
    assert check.avgpool2d(forward=cnnlib.avgpool2d_forward, backward=cnnlib.avgpool2d_backward).passed
    report = check.avgpool2d(forward=avgpool_forward, backward=lambda d, c: avgpool_backward(d, c, "no factor"))
    assert not report.passed and "avg_factor" in report.mistakes
    report = check.avgpool2d(forward=lambda x, size=2, stride=None: avgpool_forward(x, size, stride, "sum"))
    assert not report.passed and "avg_factor" in report.mistakes
    report = check.avgpool2d(forward=avgpool_forward, backward=lambda d, c: avgpool_backward(d, c, "="))
    assert not report.passed and "overwrite_dx" in report.mistakes


def test_a_pool_stride_ignored_in_the_backward_is_named():
    def backward(dout, cache):
        x, size, stride = cache
        return avgpool_backward(dout, (x, size, 1))

    report = check.avgpool2d(forward=avgpool_forward, backward=backward)
    assert not report.passed and "stride_ignored" in report.mistakes, str(report)


# ---- Flatten ----

def flatten_c(x):
    return x.reshape(x.shape[0], -1), x.shape


def unflatten_c(dout, shape):
    return dout.reshape(shape)


def flatten_f(x):
    return np.stack([sample.ravel(order="F") for sample in x]), x.shape


def unflatten_f(dout, shape):
    return np.stack([row.reshape(shape[1:], order="F") for row in dout])


def test_flatten_in_c_order_and_a_consistent_f_order_pair_pass():
    assert check.flatten(forward=flatten_c, backward=unflatten_c).passed
    report = check.flatten(forward=flatten_f, backward=unflatten_f)
    assert report.passed and report.notes and "another order" in report.notes[0]
    assert check.flatten(backward=unflatten_c).passed


@pytest.mark.parametrize("backward", [
    unflatten_f,  # F order within each sample, after a C-order forward
    lambda dout, shape: dout.reshape(shape, order="F"),
    lambda dout, shape: dout.reshape(shape[0], shape[2], shape[3], shape[1]).transpose(0, 3, 1, 2),
], ids=["F per sample", "F whole array", "channels-last"])
def test_a_flatten_backward_in_another_order_puts_numbers_in_wrong_cells(backward):
    report = check.flatten(forward=flatten_c, backward=backward)
    assert not report.passed and "flatten_order" in report.mistakes, str(report)


@pytest.mark.parametrize("forward", [
    lambda x: (x.reshape(-1, x.shape[0]), x.shape),
    lambda x: (x.T.reshape(x.shape[0], -1), x.shape),
], ids=["reshape(-1, N)", "x.T.reshape(N, -1)"])
def test_a_flatten_that_mixes_samples_is_named(forward):
    report = check.flatten(forward=forward)
    assert not report.passed and "flatten_mixes_samples" in report.mistakes, str(report)


def test_a_flatten_that_mixes_samples_is_not_also_blamed_for_its_exact_inverse():
    def forward(x):
        return x.T.reshape(x.shape[0], -1), x.shape

    def backward(dout, shape):
        return dout.reshape(shape[::-1]).T

    report = check.flatten(forward=forward, backward=backward)
    assert not report.passed and report.mistakes == ["flatten_mixes_samples"], str(report)


# ---- dense, ReLU ----

def test_dense_verdicts():
    def forward(x, w, b):
        return x @ w + b, (x, w)

    def backward(dout, cache, bug=None):
        x, w = cache
        dw = dout.T @ x if bug == "transposed" else x.T @ dout
        db = dout.mean(axis=0) if bug == "mean" else dout.sum(axis=0)
        return dout @ w.T, dw, db

    assert check.dense(forward=forward, backward=backward).passed
    report = check.dense(forward=forward, backward=lambda d, c: backward(d, c, "transposed"))
    assert not report.passed and "transposed_dw" in report.mistakes
    report = check.dense(forward=forward, backward=lambda d, c: backward(d, c, "mean"))
    assert not report.passed and "averaged" in report.mistakes
    report = check.dense(forward=lambda x, w, b: (x @ w, (x, w)))
    assert not report.passed and "no_bias" in report.mistakes


def test_relu_verdicts():
    def forward(x):
        return np.maximum(x, 0), x

    def forward_in_place(x):
        x[x < 0] = 0
        return x, x

    assert check.relu(forward=forward, backward=lambda d, x: d * (x > 0)).passed
    report = check.relu(forward=forward, backward=lambda d, x: (x > 0).astype(float))
    assert not report.passed and "relu_mask_only" in report.mistakes
    report = check.relu(forward=forward_in_place)
    assert not report.passed and "in_place" in report.mistakes
    assert "forward changed its input x in place" in str(report)


# ---- softmax cross-entropy ----

def softmax_ce(logits, y, bug=None):
    N = len(y)
    shifted = logits if bug == "no shift" else logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    if bug == "log of probs":
        loss = -np.log(probs[np.arange(N), y]).mean()
    else:
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss = -log_probs[np.arange(N), y].mean()
    dlogits = probs.copy()
    dlogits[np.arange(N), y] -= 1
    if bug == "sign":
        dlogits = -dlogits
    if bug == "loss summed":
        loss = loss * N
    return loss, dlogits if bug == "no 1/N" else dlogits / N


@pytest.mark.parametrize("bug, key", [("no shift", "softmax_no_shift"), ("log of probs", "log_of_softmax"),
                                      ("no 1/N", "softmax_no_mean"), ("sign", "softmax_sign"),
                                      ("loss summed", "softmax_loss_sum")])
def test_softmax_mistake_gets_its_hint(bug, key):
    report = check.softmax_cross_entropy(lambda logits, y: softmax_ce(logits, y, bug))
    assert not report.passed and key in report.mistakes, str(report)
    others = {"softmax_no_mean", "softmax_loss_sum"} - {key}
    assert not any(k in report.mistakes for k in others), str(report)


def test_correct_softmax_cross_entropy_passes_without_warnings():
    for fn in (softmax_ce, cnnlib.softmax_cross_entropy):
        report = check.softmax_cross_entropy(fn)
        assert report.passed and not report.hints, str(report)


def test_flatten_of_any_shape_and_its_four_axes_mistake():
    def forward_four_axes(x):
        N, C, H, W = x.shape
        return x.reshape(N, C * H * W), x.shape

    assert check.flatten(forward=flatten_c, backward=unflatten_c).passed
    shapes = {c.inputs["x"].ndim for c in check.flatten(forward=flatten_c).cases}
    assert shapes == {2, 3, 4}
    report = check.flatten(forward=forward_four_axes)
    assert not report.passed and "flatten_four_axes" in report.mistakes, str(report)
    assert check.flatten(forward=forward_four_axes, any_shape=False).passed


def test_a_flatten_backward_that_forgets_the_samples_offset_is_named():
    def backward(dout, shape):
        D = dout.shape[1]
        src, dst = dout.ravel(), np.empty(shape).ravel()
        for n in range(shape[0]):
            for j in range(D):
                dst[n * D + j] = src[j]  # the offset n * D left out of the source index
        return dst.reshape(shape)

    report = check.flatten(forward=flatten_c, backward=backward)
    assert not report.passed and "flatten_first_sample" in report.mistakes, str(report)


def test_flatten_order_f_asks_for_f_order_within_each_sample():
    assert check.flatten(forward=flatten_f, backward=unflatten_f, order="F").passed
    report = check.flatten(forward=flatten_c, backward=unflatten_c, order="F")
    assert not report.passed and report.mistakes == ["flatten_wanted_order"], str(report)
    assert any('order="F"' in h for h in report.hints), str(report)
    assert check.flatten(forward=flatten_c, order="C").passed
    with pytest.raises(TypeError):
        check.flatten(forward=flatten_c, order="K")


@pytest.mark.parametrize("layer, forward, backward", [
    ("conv2d", conv_forward, conv_backward),
    ("maxpool2d", maxpool_forward, maxpool_backward),
    ("avgpool2d", avgpool_forward, avgpool_backward),
])
def test_a_right_gradient_in_float32_gets_the_dtype_hint_and_no_other(layer, forward, backward):
    def backward32(dout, cache):
        grads = backward(dout, cache)
        if isinstance(grads, tuple):
            return tuple(g.astype(np.float32) for g in grads)
        return grads.astype(np.float32)

    report = getattr(check, layer)(forward=forward, backward=backward32)
    assert not report.passed and report.mistakes == ["float32"], str(report)


def test_a_dense_backward_in_float32_is_not_called_transposed():
    def forward(x, w, b):
        return x @ w + b, (x, w)

    def backward(dout, cache):
        x, w = cache
        return (dout @ w.T).astype(np.float32), (x.T @ dout).astype(np.float32), dout.sum(axis=0)

    report = check.dense(forward=forward, backward=backward)
    assert report.mistakes == ["float32"], str(report)


def test_a_signature_other_than_cnnlibs_is_named_not_blamed_on_the_check():
    def backward(dout, x, w, b):
        return x, w, b

    text = str(check.conv2d(backward=backward))
    assert "the check calls backward with 2 positional argument(s)" in text and "_core.py" not in text


def test_a_stub_report_names_the_line_still_raising():
    def conv_backward_naive(dout, cache):
        db = dout.sum(axis=(0, 2, 3))
        raise NotImplementedError("conv_backward_naive: not written yet")

    report = check.conv2d(backward=conv_backward_naive)
    text = str(report)
    assert text.splitlines()[0] == "check.conv2d: NOT WRITTEN YET"
    assert "`raise NotImplementedError(\"conv_backward_naive: not written yet\")`" in text
    assert "delete that line" in text


def test_passed_with_skipped_cases_says_so_in_the_first_line():
    def forward(x, w, b, stride=1):
        return conv_forward(x, w, b, stride, 0)

    first = str(check.conv2d(forward=forward)).splitlines()[0]
    assert first == "check.conv2d: PASSED (3 cases; 3 skipped, see below)"


def test_a_positional_call_says_how_to_call_the_check():
    with pytest.raises(TypeError, match=r"check.conv2d\(backward=my_backward\)"):
        check.conv2d(conv_backward)


def test_nan_never_passes_and_equal_infinities_are_not_reported():
    from cnnlib.check._core import compare, scalar_error

    assert scalar_error(np.nan, 1.0) == np.inf and scalar_error(1.0, np.inf) == np.inf
    assert scalar_error(np.inf, np.inf) == 0.0
    a = np.array([1.0, np.inf, np.nan])
    assert compare("a", a, a.copy()) is None
    assert "1 of 3 values wrong" in compare("a", a, np.array([1.0, np.inf, 2.0]))


def test_a_gradient_of_strings_or_objects_is_reported_not_raised():
    def backward(dout, cache):
        x, w = cache[0], cache[1]
        return np.full(x.shape, "a"), np.empty(w.shape, dtype=object), dout.sum(axis=(0, 2, 3))

    report = check.conv2d(forward=conv_forward, backward=lambda d, c: backward(d, c))
    assert not report.passed


def test_a_flatten_backward_that_mixes_samples_is_named():
    report = check.flatten(forward=flatten_c, backward=lambda dout, shape: dout.T.reshape(shape))
    assert not report.passed and "flatten_backward_mixes_samples" in report.mistakes, str(report)
    assert "flatten_mixes_samples" not in report.mistakes
