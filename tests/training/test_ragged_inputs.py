"""A ragged nested list given to fit, evaluate, predict or the loss is named in the error.

NumPy's own message ("setting an array element with a sequence ... inhomogeneous shape")
says no argument; the layer functions name it (tests/layers/test_bad_input.py), and so must these.
"""

import numpy as np
import pytest

import cnnlib as c

RAGGED = [[1.0, 2.0, 3.0], [4.0, 5.0]]  # two rows of different lengths: no array at all
RAGGED_LABELS = [[0], [1, 2]]


def named(argument):
    return pytest.raises(ValueError, match=rf"^{argument} is a nested list whose rows have different lengths")


def model():
    return c.Sequential(c.Dense(3, 2, rng=0))


X = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]  # well formed: (2, 3)
Y = [0, 1]


@pytest.mark.parametrize("call, argument", [
    (lambda: c.fit(model(), RAGGED, Y, optimizer=c.SGD(0.1), progress=False), "x"),
    (lambda: c.fit(model(), X, RAGGED_LABELS, optimizer=c.SGD(0.1), progress=False), "y"),
    (lambda: c.fit(model(), X, Y, optimizer=c.SGD(0.1), progress=False, validation_data=(RAGGED, Y)),
     "validation_data x"),
    (lambda: c.fit(model(), X, Y, optimizer=c.SGD(0.1), progress=False, validation_data=(X, RAGGED_LABELS)),
     "validation_data y"),
    (lambda: c.evaluate(model(), RAGGED, Y), "x"),
    (lambda: c.evaluate(model(), X, RAGGED_LABELS), "y"),
    (lambda: c.predict(model(), RAGGED), "x"),
    (lambda: c.softmax_cross_entropy(np.zeros((2, 3)), RAGGED_LABELS), "y"),
], ids=["fit x", "fit y", "fit validation x", "fit validation y", "evaluate x", "evaluate y", "predict x",
        "softmax_cross_entropy y"])
def test_a_ragged_list_is_named(call, argument):
    with named(argument):
        call()


def test_well_formed_lists_still_work():
    # The same calls with lists of equal rows run as with arrays.
    m = model()
    history = c.fit(m, X, Y, optimizer=c.SGD(0.1), progress=False, validation_data=(X, Y))
    assert len(history["loss"]) == 1 and np.isfinite(history["val_loss"][0])
    np.testing.assert_array_equal(c.predict(m, X), c.predict(m, np.array(X)))
    assert c.evaluate(m, X, Y) == c.evaluate(m, np.array(X), np.array(Y))
    loss, dlogits = c.softmax_cross_entropy(np.zeros((2, 3)), Y)
    assert loss == pytest.approx(np.log(3)) and dlogits.shape == (2, 3)
