"""The pass/fail rule never fails a correct backward: rel_error's floor grows with the gradient.

Centred differences carry an absolute rounding error that does not shrink with the entry, so with
cs231n's fixed floor (1e-8) a correct gradient whose tiniest entries are a thousand times below
its largest can miss 1e-7. These are lesson 5's three conv cases at draws where that happened.
"""

import numpy as np
import pytest

import cnnlib
from cnnlib import check, numerical_gradient, rel_error

CASES = [((2, 3, 5, 5), (4, 3, 3, 3), 1, 1), ((2, 3, 5, 5), (4, 3, 3, 3), 1, 0), ((2, 3, 7, 5), (4, 3, 3, 2), 2, 1)]


def fixed_floor(a, b):
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def conv_gradients(seed, case):
    rng = np.random.default_rng(seed)
    for k, (x_shape, w_shape, stride, pad) in enumerate(CASES):  # draw as lesson 5 does, case by case
        x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
        out, cache = cnnlib.conv2d_forward(x, w, b, stride=stride, pad=pad)
        dout = rng.standard_normal(out.shape)
        if k == case:
            dx, dw, _ = cnnlib.conv2d_backward_naive(dout, cache)
            def f(x_):
                return cnnlib.conv2d_forward(x_, w, b, stride=stride, pad=pad)[0]
            return dx, numerical_gradient(f, x, dout), dw, numerical_gradient(
                lambda w_: cnnlib.conv2d_forward(x, w_, b, stride=stride, pad=pad)[0], w, dout)


@pytest.mark.parametrize("seed, case", [(21, 2), (44, 0), (49, 1), (99, 0), (116, 0)])
def test_a_correct_conv_backward_passes_where_the_fixed_floor_failed_it(seed, case):
    dx, dx_num, dw, dw_num = conv_gradients(seed, case)
    assert max(fixed_floor(dx, dx_num), fixed_floor(dw, dw_num)) > check.TOLERANCE  # the old rule's failure
    assert max(rel_error(dx, dx_num), rel_error(dw, dw_num)) <= check.TOLERANCE / 10


def test_over_many_draws_a_correct_backward_stays_ten_times_under_the_rule():
    worst = max(max(rel_error(dx, dxn), rel_error(dw, dwn))
                for seed in range(300, 330) for case in range(3)
                for dx, dxn, dw, dwn in [conv_gradients(seed, case)])
    assert worst <= check.TOLERANCE / 10


def test_a_wrong_entry_far_below_the_largest_still_fails():
    # The floor is a hundredth of the gradient's scale: an entry 1e-3 of the largest, off by half
    # of itself, is still 2.5e-2 off, far above 1e-7.
    right = np.array([1.0, -0.5, 1e-3])
    wrong = right.copy()
    wrong[2] *= 1.5
    assert rel_error(wrong, right) > 1e-2
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0
