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
pytestmark = pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")  # a learner's np.matrix

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
    except (Exception, SystemExit) as exc:  # a learner may raise anything (even exit); that is itself the finding
        raise Caught(type(exc).__name__) from exc


def _pair(result, what):
    if not isinstance(result, tuple) or len(result) != 2:
        raise Caught(f"{what} returned {type(result).__name__}, not a pair")
    return result


def _same(got, expected, what):
    if isinstance(got, np.ndarray) and type(got) is not np.ndarray:
        raise Caught(f"{what} is a {type(got).__name__}, not an ndarray")
    if not isinstance(got, np.ndarray):
        raise Caught(f"{what} is a {type(got).__name__}, not an ndarray")
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
    _unchanged({"dout": dout, **inputs}, {"dout": dout_copy, **copies})  # the cache holds the inputs too
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


def _log_softmax_case(learner, rng):
    for z in (3 * rng.standard_normal((4, 5)), np.array([[0.0, -800.0], [1.0, 2.0]])):
        m = z.max(axis=1, keepdims=True)
        _same(_call(learner.fn, z.copy()), z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True)), "log_softmax")
    return 1


def _output_size_case(learner, rng):
    for H, K, s, p in [(8, 3, 1, 0), (8, 3, 2, 1), (7, 3, 2, 1), (8, 5, 3, 2)]:
        got = _call(learner.fn, H, K, stride=s, pad=p)
        if not isinstance(got, int) or got != cnnlib.conv2d_forward(np.zeros((1, 1, H, 1)), np.zeros((1, 1, K, 1)),
                                                                     np.zeros(1), stride=(s, 1), pad=(p, 0))[0].shape[2]:
            raise Caught(f"output size {got!r} for H={H}, K={K}, stride={s}, pad={p}")
    return 1


def _layer_object_case(learner, rng):
    """The layer against cnnlib's functions: one pass, two passes, two forwards then a backward."""
    kind = learner.args[0]
    w, b = rng.standard_normal((5, 3)), rng.standard_normal(3)
    x1, x2 = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    if kind == "relu":
        x1, x2 = x1 @ w, x2 @ w
    d1, d2 = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))

    def ref(x, dout):
        if kind == "relu":
            return cnnlib.relu_forward(x)[0], cnnlib.relu_backward(dout, x), {}
        out, cache = cnnlib.dense_forward(x, w, b)
        dx, dw, db = cnnlib.dense_backward(dout, cache)
        return out, dx, {"w": dw, "b": db}

    def check_pass(layer, steps, want):
        for method, arr in steps:
            copy = arr.copy()
            got = _call(getattr(layer, method), arr)
            _unchanged({"input": arr}, {"input": copy})
        _same(got, want[1], "dx")
        for k, g in want[2].items():
            _same(_call(lambda: layer.grads)[k], g, f"grads[{k}]")

    def make():
        layer = _call(learner.fn, *((w.copy(), b.copy()) if kind == "dense" else ()))
        if layer is None:
            raise Caught("the factory returned None")
        return layer

    check_pass(make(), [("forward", x1), ("backward", d1)], ref(x1, d1))
    check_pass(make(), [("forward", x1), ("backward", d1), ("forward", x2), ("backward", d2)], ref(x2, d2))
    check_pass(make(), [("forward", x1), ("forward", x2), ("backward", d2)], ref(x2, d2))
    return 1


def _sequential_case(learner, rng):
    layers = [cnnlib.Dense(5, 6, rng=1), cnnlib.ReLU(), cnnlib.Dense(6, 3, rng=2)]
    model = cnnlib.Sequential(*[cnnlib.Dense(5, 6, rng=1), cnnlib.ReLU(), cnnlib.Dense(6, 3, rng=2)])
    x = rng.standard_normal((4, 5))
    given = list(layers)
    if learner.forward is not None:
        _same(_call(learner.forward, given, x), model.forward(x), "out")
    else:
        cnnlib.Sequential(*layers).forward(x)
        model.forward(x)
    if given != layers:
        raise Caught("the list of layers changed")
    if learner.backward is not None:
        dout = rng.standard_normal((4, 3))
        _same(_call(learner.backward, given, dout), model.backward(dout), "dx")
        if given != layers:
            raise Caught("the list of layers changed")
    return 1


def _network_case(learner, rng):
    model = learner.fn()
    params, grads = _call(model.params), _call(model.grads)
    if not isinstance(params, dict) or not isinstance(grads, dict) or params.keys() != grads.keys():
        raise Caught("params() and grads() are not dicts with the same names")
    x = rng.standard_normal((3, 5))
    dout = rng.standard_normal(model.forward(x).shape)
    model.backward(dout)
    for name, p in params.items():
        numeric = cnnlib.numerical_gradient(lambda _: model.forward(x), p, dout)
        if not np.allclose(_call(model.grads)[name], numeric, rtol=1e-6, atol=1e-8):
            raise Caught(f"the gradient of {name} disagrees with finite differences")
    return 1


def _optimizer_case(learner, rng):
    sgd = learner.check == "sgd_momentum"
    settings = {"lr": 0.1, "momentum": 0.9} if sgd else {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    theirs = cnnlib.SGD(**settings) if sgd else cnnlib.Adam(**settings)
    start = {"a": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}
    params, expected, state = {k: p.copy() for k, p in start.items()}, {k: p.copy() for k, p in start.items()}, {}
    arrays = dict(params)
    for _ in range(3):
        grads = {k: rng.standard_normal(p.shape) for k, p in start.items()}
        given = {k: g.copy() for k, g in grads.items()}
        _call(learner.fn, params, given, state, **settings)
        theirs.step(expected, grads)
        if given.keys() != grads.keys() or any(not np.array_equal(given[k], grads[k]) for k in grads):
            raise Caught("grads changed in place")
        for k in start:
            if params[k] is not arrays[k]:
                raise Caught(f"params[{k!r}] is a new array")
            _same(params[k], expected[k], k)
    return 1


def _epoch_case(learner, rng):
    def model():
        return cnnlib.Sequential(cnnlib.Dense(6, 5, rng=3), cnnlib.ReLU(), cnnlib.Dense(5, 3, rng=4))

    def step(params, grads):
        for name, p in params.items():
            p -= 0.5 * grads[name]

    x, y = rng.standard_normal((10, 6)), rng.integers(0, 3, 10)
    copies = {"x": x.copy(), "y": y.copy()}
    mine, theirs = model(), model()
    loss = _call(learner.fn, mine, x, y, step, 4, np.random.default_rng(5))
    _unchanged({"x": x, "y": y}, copies)
    want = cnnlib.check.reference.train_one_epoch(theirs, x, y, step, 4, np.random.default_rng(5))
    if not np.isclose(loss, want, rtol=1e-9):
        raise Caught(f"loss {loss}, expected {want}")
    for name, p in theirs.params().items():
        _same(mine.params()[name], p, name)
    return 1


LESSONS_8_9 = {"log_softmax": _log_softmax_case, "output_size": _output_size_case, "layer": _layer_object_case,
               "sequential": _sequential_case, "network": _network_case, "sgd_momentum": _optimizer_case,
               "adam": _optimizer_case, "train_epoch": _epoch_case}


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
        with_zeros = rng.standard_normal((3, 4))
        with_zeros[:, ::2] = 0.0  # the kink: the slope there is 0
        for x in [rng.standard_normal(shape) for shape in RELU] + [with_zeros]:
            ran += _layer(learner, {"x": x}, {}, {}, cnnlib.relu_forward, cnnlib.relu_backward, ("dx",))
    elif learner.check == "flatten":
        for shape in FLATTEN:
            ran += _flatten_case(learner, shape)
    elif learner.check == "softmax_cross_entropy":
        ran += _softmax_case(learner, 3 * rng.standard_normal((5, 4)), rng.integers(0, 4, 5))
        ran += _softmax_case(learner, np.array([[1e3, -1e3, 0.0], [0.0, 1.0, 2.0]]), np.array([1, 2]))
    elif learner.check in LESSONS_8_9:
        ran += LESSONS_8_9[learner.check](learner, rng)
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
    assert checks == {"conv2d", "maxpool2d", "avgpool2d", "flatten", "dense", "relu", "softmax_cross_entropy",
                      "log_softmax", "output_size", "layer", "sequential", "network", "sgd_momentum", "adam",
                      "train_epoch"}
    assert sum(c.verdict == "pass" for c in CASES) >= 25
    assert len({c.id for c in CASES}) == len(CASES)
    assert all(isinstance(c, Learner) for c in CASES)
