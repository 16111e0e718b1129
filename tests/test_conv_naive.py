"""conv2d's naive reference against finite differences, once per case.

Apart from test_conv.py, whose every test runs once per way the fast version can split its
work (conftest's modes): none of them changes the naive loops.
"""

import pytest

from cnnlib import conv2d_backward_naive, conv2d_forward_naive
from gradutil import check_grads
from test_conv import CASES, make


@pytest.mark.parametrize("x_shape, w_shape, stride, pad", CASES)
def test_naive_backward_matches_finite_differences(rng, x_shape, w_shape, stride, pad):
    x, w, b = make(rng, x_shape, w_shape)
    out, cache = conv2d_forward_naive(x, w, b, stride=stride, pad=pad)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv2d_backward_naive(dout, cache)
    check_grads(lambda x, w, b: conv2d_forward_naive(x, w, b, stride=stride, pad=pad)[0], [x, w, b], [dx, dw, db],
                dout)
