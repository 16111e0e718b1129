"""What a learner's slips get: an error naming the argument or the layer at fault (a layer that
returns a tuple, a list of layers given to fit, an optimizer class), never Python's own
AttributeError from deep inside; and rel_error, right up to the float64 maximum."""

import sys
from fractions import Fraction

import numpy as np
import pytest

from cnnlib import rel_error

FLOAT_MAX = sys.float_info.max


# ------------------------------------------------------------------------------- rel_error


def exact_rel_error(a, b):
    """rel_error's formula, max |a - b| / max(1e-8, |a| + |b|), in exact fractions."""
    return max(abs(Fraction(x) - Fraction(y)) / max(Fraction(1e-8), abs(Fraction(x)) + abs(Fraction(y)))
               for x, y in zip(np.ravel(a).tolist(), np.ravel(b).tolist()))


@pytest.mark.parametrize("a, b", [
    (1.7e308, 1.6e308),  # |a| + |b| overflows
    (1e308, -1e308),  # a - b overflows too
    (FLOAT_MAX, -FLOAT_MAX),
    (FLOAT_MAX, np.nextafter(FLOAT_MAX, 0)),
    (-1.5e308, -0.9e308),
    (1.7e308, 5e-324),  # a subnormal beside the maximum
    ([1.0, 1.7e308], [1.0 + 1e-9, 1.6e308]),  # the largest error is the huge pair's
    ([0.5, 1e308], [0.25, 1e308]),  # the largest error is the ordinary pair's
])
def test_rel_error_stays_right_near_the_float64_maximum(a, b):
    got = rel_error(a, b)
    want = exact_rel_error(a, b)
    # three roundings (difference, sum, quotient): within a few units in the last place
    assert got == pytest.approx(float(want), rel=4 * np.finfo(np.float64).eps, abs=0)
    assert rel_error(b, a) == got


def test_rel_error_gives_the_same_numbers_as_before_for_ordinary_values():
    rng = np.random.default_rng(0)
    for scale in (1e-12, 1e-8, 1.0, 1e5, 1e150, 1e300):
        a = rng.standard_normal(1000) * scale
        b = a + rng.standard_normal(1000) * scale * rng.choice([1e-12, 1e-7, 1e-2, 1.0], 1000)
        formula = float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))
        assert rel_error(a, b) == formula  # bit for bit: the lessons print and compare these
        assert rel_error(a.reshape(10, 100), b.reshape(10, 100)) == formula
    assert rel_error(3.0, 1.0) == 0.5 and rel_error(0.0, 0.0) == 0.0
