"""The output-size formula as learners write it: fn(H, KH, stride=1, pad=0) -> H'.

Written for issue 23 from lesson 4's stub, without reading cnnlib/check.
"""

import math

from . import Learner


def ceil_size(H, KH, stride=1, pad=0):
    """ceil((H + 2p - KH + 1) / s): the same count as floor((H + 2p - KH) / s) + 1."""
    return math.ceil((H + 2 * pad - KH + 1) / stride)


def true_division_size(H, KH, stride=1, pad=0):
    """/ instead of //: a float, 4.5 where 4 windows fit."""
    return (H + 2 * pad - KH) / stride + 1


CASES = [
    Learner("output_size", "pass", "ok-ceil", "math.ceil((H + 2p - KH + 1) / s)", fn=ceil_size),
    Learner("output_size", "fail", "true-division", "(H + 2p - KH) / s + 1, a float",
            fn=true_division_size, hint_words=(("//", "integer", "floor", "int", "round"),),
            keys=("size_true_division",)),
]
