"""cnnlib.check's checks for lessons 2-4 (basics.py): right verdicts, and each mistake's hint.

Each buggy function is the lesson's function with one classic mistake written into it: the check
must fail it and give that mistake's hint. The correct functions (the lessons' own, and a few
written another way) must pass with no hint.
"""

import numpy as np
import pytest

import cnnlib
from cnnlib import check

pytestmark = pytest.mark.usefixtures("no_detector_breaks")  # see conftest.py


def assert_fails_with(report, key):
    assert not report.passed, str(report)
    assert key in report.mistakes, str(report)
    assert str(report).splitlines()[0].startswith(f"check.{report.name}: FAILED"), str(report)


def assert_passes(report):
    assert report.passed, str(report)
    assert report.hints == [], str(report)
    assert str(report).splitlines()[0].startswith(f"check.{report.name}: PASSED"), str(report)


def numerical_gradient(f, x, dout, h=1e-5, bug=None):
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        plus = f(x) if bug == "view" else np.sum(f(x) * (1.0 if bug == "no dout" else dout))
        if bug == "one-sided":
            x[idx] = old
        elif bug == "add back":
            x[idx] -= 2 * h
        else:
            x[idx] = old - h
        minus = f(x) if bug == "view" else np.sum(f(x) * (1.0 if bug == "no dout" else dout))
        if bug == "add back":
            x[idx] += h
        elif bug != "not restored":
            x[idx] = old
        if bug == "view":
            grad[idx] = np.sum((plus - minus) * dout) / (2 * h)
        elif bug == "one-sided":
            grad[idx] = (plus - minus) / h
        elif bug == "divide by h":
            grad[idx] = (plus - minus) / h
        else:
            grad[idx] = (plus - minus) / (2 * h)
    return grad


def numerical_gradient_copying(f, x, dout, h=1e-5):
    """Another correct style: probe copies of x, never x itself."""
    grad = np.zeros(x.shape)
    for i in range(x.size):
        step = np.zeros(x.size)
        step[i] = h
        step = step.reshape(x.shape)
        grad.flat[i] = np.sum((np.asarray(f(x + step)) - np.asarray(f(x - step))) * dout) / (2 * h)
    return grad


@pytest.mark.parametrize("fn", [numerical_gradient, numerical_gradient_copying, cnnlib.numerical_gradient])
def test_numerical_gradient_correct_passes(fn):
    assert_passes(check.numerical_gradient(fn))


@pytest.mark.parametrize("bug, key", [
    ("one-sided", "numgrad_one_sided"), ("not restored", "numgrad_not_restored"),
    ("add back", "numgrad_not_restored"), ("divide by h", "numgrad_divided_by_h"),
    ("no dout", "numgrad_no_dout"), ("view", "numgrad_view_kept"),
])
def test_numerical_gradient_mistakes(bug, key):
    report = check.numerical_gradient(lambda f, x, dout, h=1e-5: numerical_gradient(f, x, dout, h, bug=bug))
    assert_fails_with(report, key)
    assert len(report.hints) == 1, str(report)


def test_numerical_gradient_one_sided_is_off_by_order_h_not_rounding():
    report = check.numerical_gradient(lambda f, x, dout, h=1e-5: numerical_gradient(f, x, dout, h, bug="one-sided"))
    failed = [c.name for c in report.failed]
    assert any("x**3" in name for name in failed) and not any("view" in name for name in failed), str(report)


def test_numerical_gradient_leaves_x_unchanged_and_reports_it():
    report = check.numerical_gradient(lambda f, x, dout, h=1e-5: numerical_gradient(f, x, dout, h, bug="not restored"))
    assert any("not as it was" in p for c in report.cases for p in c.problems), str(report)


def test_numerical_gradient_stub_and_exceptions():
    def stub(f, x, dout, h=1e-5):
        raise NotImplementedError("numerical_gradient: not written yet")

    assert str(check.numerical_gradient(stub)).splitlines()[0] == "check.numerical_gradient: NOT WRITTEN YET"

    def broken(f, x, dout, h=1e-5):
        return x[100]

    report = check.numerical_gradient(broken)
    assert not report.passed and "IndexError" in str(report)
    with pytest.raises(TypeError):
        check.numerical_gradient(3)
    with pytest.raises(TypeError):
        check.numerical_gradient(numerical_gradient, backward=numerical_gradient)


# ---- rel_error (lesson 2) ----

def rel_error(a, b, bug=None):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    diff = a - b if bug == "no abs" else np.abs(a - b)
    total = np.abs(a) + np.abs(b)
    floor = 1e-8 if bug == "fixed floor" else max(1e-8, 0.01 * np.max(total))
    errors = diff / total if bug == "no floor" else diff / np.maximum(floor, total)
    return float(np.mean(errors) if bug == "mean" else np.max(errors))


def rel_error_abs_of_sum(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(max(1e-8, 0.01 * np.max(np.abs(a) + np.abs(b))), np.abs(a + b))))


@pytest.mark.parametrize("fn", [rel_error, cnnlib.rel_error])
def test_rel_error_correct_passes(fn):
    assert_passes(check.rel_error(fn))


@pytest.mark.parametrize("bug, key", [("no floor", "rel_error_no_floor"), ("mean", "rel_error_mean"),
                                      ("no abs", "rel_error_abs"), ("fixed floor", "rel_error_fixed_floor")])
def test_rel_error_mistakes(bug, key):
    with np.errstate(all="ignore"):
        report = check.rel_error(lambda a, b: rel_error(a, b, bug=bug))
    assert_fails_with(report, key)
    assert len(report.hints) == 1, str(report)


def test_rel_error_abs_of_the_sum_and_elementwise():
    assert_fails_with(check.rel_error(rel_error_abs_of_sum), "rel_error_abs")
    report = check.rel_error(lambda a, b: np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)))
    assert not report.passed and "one number" in str(report)


# ---- softmax and log_softmax (lesson 3) ----

def softmax(z, bug=None):
    if bug == "no shift":
        shifted = z
    elif bug == "global max":
        shifted = z - z.max()
    elif bug == "no keepdims":
        shifted = z - z.max(axis=1)
    else:
        shifted = z - z.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=0 if bug == "axis 0" else 1, keepdims=True)


def log_softmax(z, bug=None):
    if bug == "log of softmax":
        return np.log(softmax(z))
    shifted = z if bug == "no shift" else z - (z.max() if bug == "global max" else z.max(axis=1, keepdims=True))
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax_from_log(z):
    return np.exp(log_softmax(z))


@pytest.mark.parametrize("fn", [softmax, softmax_from_log])
def test_softmax_correct_passes(fn):
    assert_passes(check.softmax(fn))


def test_log_softmax_correct_passes():
    assert_passes(check.log_softmax(log_softmax))


@pytest.mark.parametrize("bug, key", [("no shift", "softmax_no_shift"), ("global max", "softmax_global_max"),
                                      ("no keepdims", "softmax_axis"), ("axis 0", "softmax_axis")])
def test_softmax_mistakes(bug, key):
    report = check.softmax(lambda z: softmax(z, bug=bug))
    assert_fails_with(report, key)
    assert len(report.hints) == 1, str(report)


@pytest.mark.parametrize("bug, key", [("no shift", "softmax_no_shift"), ("global max", "softmax_global_max"),
                                      ("log of softmax", "log_of_softmax")])
def test_log_softmax_mistakes(bug, key):
    report = check.log_softmax(lambda z: log_softmax(z, bug=bug))
    assert_fails_with(report, key)
    assert len(report.hints) == 1, str(report)


def test_softmax_no_shift_hint_only_for_that_mistake():
    report = check.softmax(lambda z: softmax(z, bug="global max"))
    assert "softmax_no_shift" not in report.mistakes, str(report)


# ---- output size (lesson 4) ----

def out_size(H, KH, stride=1, pad=0):
    return (H + 2 * pad - KH) // stride + 1


@pytest.mark.parametrize("fn, key", [
    (lambda H, KH, stride=1, pad=0: (H - KH) // stride + 1, "size_no_pad"),
    (lambda H, KH, stride=1, pad=0: (H + pad - KH) // stride + 1, "size_pad_once"),
    (lambda H, KH, stride=1, pad=0: (H + 2 * pad - KH) // stride, "size_no_plus_one"),
    (lambda H, KH, stride=1, pad=0: H + 2 * pad - KH + 1, "size_no_stride"),
    (lambda H, KH, stride=1, pad=0: (H + 2 * pad - KH) / stride + 1, "size_true_division"),
])
def test_output_size_mistakes(fn, key):
    report = check.output_size(fn)
    assert_fails_with(report, key)
    assert len(report.hints) == 1, str(report)


def test_output_size_correct_passes_and_numpy_ints_are_fine():
    assert_passes(check.output_size(out_size))
    assert_passes(check.output_size(lambda H, KH, stride=1, pad=0: np.int64((H + 2 * pad - KH) // stride + 1)))


def test_output_size_without_stride_and_pad_runs_the_cases_it_can():
    report = check.output_size(lambda H, KH: H - KH + 1)
    assert report.passed and any(c.status == "skip" for c in report.cases), str(report)


# ---- one channel, one filter (lesson 4) ----

def conv_one(x, k, b=0.0, stride=1, pad=0, bug=None):
    KH, KW = k.shape
    kernel = k[::-1, ::-1] if bug == "flip" else k
    xp = x if bug == "no padding" else np.pad(x, pad)
    H_out = (x.shape[0] + 2 * pad - KH) // stride + 1
    W_out = (x.shape[1] + 2 * pad - KW) // stride + 1
    if bug == "size":
        H_out, W_out = (x.shape[0] - KH) // stride + 1, (x.shape[1] - KW) // stride + 1
    out = np.zeros((H_out, W_out))
    for i in range(H_out):
        for j in range(W_out):
            r, t = (i, j) if bug == "window start" else (i * stride, j * stride)
            out[i, j] = np.sum(xp[r:r + KH, t:t + KW] * kernel) + (0.0 if bug == "no bias" else b)
    return out


def conv_one_cnnlib(x, k, b=0.0, stride=1, pad=0):
    return cnnlib.conv2d_forward(x[None, None], k[None, None], np.array([b]), stride=stride, pad=pad)[0][0, 0]


@pytest.mark.parametrize("fn", [conv_one, conv_one_cnnlib])
def test_conv_one_correct_passes(fn):
    assert_passes(check.conv2d_one_channel(fn))


@pytest.mark.parametrize("bug, key", [("flip", "flipped_kernel"), ("window start", "stride_ignored"),
                                      ("no bias", "no_bias"), ("size", "size_no_pad"),
                                      ("no padding", "no_padding")])
def test_conv_one_mistakes(bug, key):
    report = check.conv2d_one_channel(lambda x, k, b=0.0, stride=1, pad=0: conv_one(x, k, b, stride, pad, bug=bug))
    assert_fails_with(report, key)
    assert len(report.hints) == 1, str(report)


def test_conv_one_size_names_the_missing_part():
    report = check.conv2d_one_channel(lambda x, k, b=0.0, stride=1, pad=0: conv_one(x, k, b, stride, pad, bug="size"))
    assert report.mistakes == ["size_no_pad"], str(report)


def test_conv_one_without_stride_and_pad_is_checked_on_what_it_can_do():
    def first(x, k, b=0.0):
        return conv_one(x, k, b)

    report = check.conv2d_one_channel(first)
    assert report.passed and sum(c.status == "skip" for c in report.cases) == 4, str(report)


def test_reports_are_deterministic():
    one = str(check.numerical_gradient(lambda f, x, dout, h=1e-5: numerical_gradient(f, x, dout, h, bug="no dout")))
    two = str(check.numerical_gradient(lambda f, x, dout, h=1e-5: numerical_gradient(f, x, dout, h, bug="no dout")))
    assert one == two
