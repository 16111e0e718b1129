"""The held-out learners (tests/learners) are what they claim, checked without cnnlib.check.

Every "pass" learner agrees with cnnlib's reference functions on every case its signature
can express; every other learner is caught on at least one (its stub raises, a mistake gives
a wrong shape, dtype or value, or changes an input). So when cnnlib.check and this set
disagree, test_heldout_learners.py points at the checker, not at a mislabelled learner.
"""

import inspect

import numpy as np
import pytest

import cnnlib
from learners import Learner, all_cases

CASES = all_cases()

CONV = [((2, 3, 6, 6), (4, 3, 3, 3), 1, 1), ((2, 2, 7, 7), (3, 2, 3, 3), 2, 0),
        ((2, 2, 5, 5), (3, 2, 3, 3), 1, 0), ((1, 2, 6, 5), (2, 2, 2, 2), 2, 1)]
MAXPOOL = [((2, 3, 6, 6), 2, 2, 0, False), ((2, 2, 7, 7), 3, 2, 1, False), ((1, 2, 5, 5), 2, 1, 0, False),
           ((2, 2, 4, 4), 2, 2, 0, True)]  # the last: small integers, so windows have tied maxima
AVGPOOL = [((2, 3, 6, 6), 2, 2), ((2, 2, 7, 7), 3, 2), ((1, 2, 5, 5), 2, 1)]
FLATTEN = [(2, 3, 4, 5), (3, 2, 1, 4)]
DENSE = [(4, 5, 3), (1, 3, 2)]
RELU = [(2, 3, 4, 4), (5, 7)]


class Caught(Exception):
    """A problem found: the learner is not the reference."""


def _call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # a learner may raise anything; that is itself the finding
        raise Caught(f"{type(exc).__name__}: {exc}") from exc


def _pair(result, what):
    if not isinstance(result, tuple) or len(result) != 2:
        raise Caught(f"{what} returned {type(result).__name__}, not a pair")
    return result


def _same(got, expected, what):
    got = np.asarray(got)
    if got.shape != expected.shape:
        raise Caught(f"{what}: shape {got.shape}, expected {expected.shape}")
    if got.dtype != np.float64:
        raise Caught(f"{what}: dtype {got.dtype}")
    if not np.allclose(got, expected, rtol=1e-9, atol=1e-11):
        raise Caught(f"{what}: values differ by up to {np.max(np.abs(got - expected)):.2e}")


def _unchanged(arrays, copies):
    for name, a in arrays.items():
        if a.shape != copies[name].shape or not np.array_equal(a, copies[name]):
            raise Caught(f"{name} changed in place")


def _accepts(fn, settings, defaults):
    """The keyword arguments of `settings` fn can take; None if it cannot express them."""
    params = inspect.signature(fn).parameters
    kwargs = {}
    for key, value in settings.items():
        if key in params:
            kwargs[key] = value
        elif value != defaults[key]:
            return None
    return kwargs


def _layer(learner, inputs, settings, defaults, ref_forward, ref_backward, grad_names):
    """Run one case of a layer learner against the reference pair; raise Caught on a difference."""
    rng = np.random.default_rng(7)
    copies = {k: v.copy() for k, v in inputs.items()}
    args = list(inputs.values())
    ref_out, ref_cache = ref_forward(*[a.copy() for a in args], **settings)
    if learner.forward is not None:
        kwargs = _accepts(learner.forward, settings, defaults)
        if kwargs is None:
            return False
        out, cache = _pair(_call(learner.forward, *args, **kwargs), "forward")
        _unchanged(inputs, copies)
        _same(out, ref_out, "out")
    else:
        out, cache = {"conv2d": cnnlib.conv2d_forward, "maxpool2d": cnnlib.maxpool2d_forward,
                      "avgpool2d": cnnlib.avgpool2d_forward, "dense": cnnlib.dense_forward,
                      "relu": cnnlib.relu_forward, "flatten": cnnlib.flatten_forward}[learner.check](
            *args, **settings)
    if learner.backward is None:
        return True
    dout = rng.standard_normal(ref_out.shape)
    dout_copy = dout.copy()
    grads = _call(learner.backward, dout, cache)
    _unchanged({"dout": dout}, {"dout": dout_copy})
    expected = ref_backward(dout, ref_cache)
    expected = expected if isinstance(expected, tuple) else (expected,)
    grads = grads if len(expected) > 1 else (grads,)
    if not isinstance(grads, tuple) or len(grads) != len(expected):
        raise Caught(f"backward returned {len(grads) if isinstance(grads, tuple) else 'no tuple'} values")
    for name, g, e in zip(grad_names, grads, expected):
        _same(g, e, name)
    return True


def _flatten_case(learner, shape):
    """Flatten's own rule: each row holds its sample's numbers; the backward undoes the forward."""
    rng = np.random.default_rng(3)
    x = rng.permutation(np.prod(shape)).reshape(shape).astype(np.float64)  # distinct: positions traceable
    copy = x.copy()
    if learner.forward is not None:
        out, cache = _pair(_call(learner.forward, x), "forward")
        _unchanged({"x": x}, {"x": copy})
    else:
        out, cache = cnnlib.flatten_forward(x)
    out = np.asarray(out)
    N = shape[0]
    if out.shape != (N, x[0].size) or out.dtype != np.float64:
        raise Caught(f"out has shape {out.shape} and dtype {out.dtype}")
    for n in range(N):
        if not np.array_equal(np.sort(out[n]), np.sort(x[n].ravel())):
            raise Caught(f"row {n} does not hold sample {n}'s numbers")
    if learner.backward is None:
        return True
    dout = rng.standard_normal(out.shape)
    dx = np.asarray(_call(learner.backward, dout.copy(), cache))
    expected = np.zeros(shape)
    where = np.argsort(copy.ravel())  # where[v]: the flat index of x that holds the value v
    expected.flat[where[out.astype(int).ravel()]] = dout.ravel()  # the adjoint of a permutation
    _same(dx, expected, "dx")
    return True


def _softmax_case(learner, logits, y):
    copy = logits.copy()
    loss, d = _pair(_call(learner.fn, logits, y), "fn")
    _unchanged({"logits": logits}, {"logits": copy})
    ref_loss, ref_d = cnnlib.softmax_cross_entropy(logits, y)
    if not np.isfinite(loss) or not np.isclose(loss, ref_loss, rtol=1e-9):
        raise Caught(f"loss {loss}, expected {ref_loss}")
    _same(d, ref_d, "dlogits")
    return True


def _run_all(learner):
    """Run every case; returns the number of cases run. Raises Caught at the first difference."""
    rng = np.random.default_rng(11)
    ran = 0
    if learner.check == "conv2d":
        for x_shape, w_shape, stride, pad in CONV:
            inputs = {"x": rng.standard_normal(x_shape), "w": rng.standard_normal(w_shape),
                      "b": rng.standard_normal(w_shape[0])}
            ran += _layer(learner, inputs, {"stride": stride, "pad": pad}, {"stride": 1, "pad": 0},
                          cnnlib.conv2d_forward_naive, cnnlib.conv2d_backward_naive, ("dx", "dw", "db"))
    elif learner.check == "maxpool2d":
        for shape, size, stride, pad, ties in MAXPOOL:
            x = rng.integers(0, 3, shape).astype(np.float64) if ties else rng.standard_normal(shape)
            ran += _layer(learner, {"x": x}, {"size": size, "stride": stride, "pad": pad},
                          {"size": 2, "stride": size, "pad": 0},
                          cnnlib.maxpool2d_forward_naive, cnnlib.maxpool2d_backward_naive, ("dx",))
    elif learner.check == "avgpool2d":
        for shape, size, stride in AVGPOOL:
            ran += _layer(learner, {"x": rng.standard_normal(shape)}, {"size": size, "stride": stride},
                          {"size": 2, "stride": size},
                          cnnlib.avgpool2d_forward_naive, cnnlib.avgpool2d_backward_naive, ("dx",))
    elif learner.check == "dense":
        for N, D, M in DENSE:
            inputs = {"x": rng.standard_normal((N, D)), "w": rng.standard_normal((D, M)), "b": rng.standard_normal(M)}
            ran += _layer(learner, inputs, {}, {}, cnnlib.dense_forward, cnnlib.dense_backward, ("dx", "dw", "db"))
    elif learner.check == "relu":
        for shape in RELU:
            ran += _layer(learner, {"x": rng.standard_normal(shape)}, {}, {},
                          cnnlib.relu_forward, cnnlib.relu_backward, ("dx",))
    elif learner.check == "flatten":
        for shape in FLATTEN:
            ran += _flatten_case(learner, shape)
    elif learner.check == "softmax_cross_entropy":
        ran += _softmax_case(learner, 3 * rng.standard_normal((5, 4)), rng.integers(0, 4, 5))
        ran += _softmax_case(learner, np.array([[1e3, -1e3, 0.0], [0.0, 1.0, 2.0]]), np.array([1, 2]))
    else:
        raise AssertionError(f"no cases for check {learner.check!r}")
    return ran


@pytest.mark.parametrize("learner", [c for c in CASES if c.verdict == "pass"], ids=lambda c: c.id)
def test_correct_learners_agree_with_cnnlib(learner):
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # underflow is harmless
        assert _run_all(learner) >= 1


@pytest.mark.parametrize("learner", [c for c in CASES if c.verdict != "pass"], ids=lambda c: c.id)
def test_buggy_learners_are_caught(learner):
    with np.errstate(all="ignore"):  # the overflowing softmax is one of them
        with pytest.raises(Caught) as caught:
            _run_all(learner)
    if learner.verdict == "not written":
        assert "NotImplementedError" in str(caught.value)


def test_the_set_covers_every_check_and_has_enough_of_each():
    checks = {c.check for c in CASES}
    assert checks == {"conv2d", "maxpool2d", "avgpool2d", "flatten", "dense", "relu", "softmax_cross_entropy"}
    assert sum(c.verdict == "pass" for c in CASES) >= 15
    assert len({c.id for c in CASES}) == len(CASES)
    assert all(isinstance(c, Learner) for c in CASES)
