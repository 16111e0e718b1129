"""Checks of lessons 8 and 9: your own layer classes, the two loops of a network, a whole
network's gradients, the optimizer steps and the training epoch.

- `layer(MyDense, "dense")`, `layer(MyReLU, "relu")`: a layer object of your own.
- `sequential(forward=run_forward, backward=run_backward)`: the loops Sequential runs.
- `network(model, input_shape)`: every parameter's gradient of an assembled network.
- `sgd_momentum(fn)`, `adam(fn)`: one optimizer step, against cnnlib.SGD and cnnlib.Adam.
- `train_epoch(fn)`: one pass over the data in shuffled mini-batches, against cnnlib.fit's loop.

Like the layer checks, each runs fixed float64 cases (seeded), with random upstream gradients
and nonzero biases, never raises because of your code, and names the classic mistakes it
recognises (the catalogue is mistakes.py). The reference functions at the end of this module
(`dense_with`, `sgd_momentum_step`, `adam_step`, `train_one_epoch`, ...) are what the checks
compare with and what the exercise editions fall back to while a stub is not written.
"""

from collections.abc import Mapping

import numpy as np

from .. import activations, dense as dense_mod, layers as layers_mod, losses, optim
from ..model import Sequential
from ._core import (
    LearnerError, NotWritten, Report, _check_kwargs, call, compare, learner_function, scalar_error, TOLERANCE,
)
from .mistakes import diagnose

SEED = 20261208


def _rng(i):
    return np.random.default_rng([SEED, i])


_RAISED = object()  # what a backward that raised "returned": no value a learner's code can give


def _not_written(report, fn, stub=None):
    report.not_written = getattr(fn, "__name__", "your function")
    report.stub_where = stub.where if stub is not None else ""
    return report


def _close(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return False
    return a.size == 0 or bool(np.all(np.abs(a - b) <= TOLERANCE * np.maximum(1e-8, np.abs(a) + np.abs(b))))


# ---------------------------------------------------------------------------------------------
# check.layer: a layer object of the learner's own (lesson 8)
# ---------------------------------------------------------------------------------------------

_KINDS = {
    "dense": {"keys": ("w", "b"), "what": "MyDense(w, b): forward(x) -> out, backward(dout) -> dx, "
                                          "grads['w'] and grads['b'] filled by backward"},
    "relu": {"keys": (), "what": "MyReLU(): forward(x) -> out, backward(dout) -> dx, no params"},
}


def _layer_inputs(kind, rng, shape):
    """(constructor args, x) for one case; x pushed away from 0 so no ReLU sits on its kink."""
    if kind == "dense":
        n, d, m = shape
        w, b = rng.standard_normal((d, m)), rng.standard_normal(m)
        return (w, b), rng.standard_normal((n, d))
    x = rng.standard_normal(shape)
    return (), x + np.where(x >= 0, 0.05, -0.05)


def _layer_reference(kind, args, x, dout):
    """out, dx and the parameter gradients of cnnlib's functions for one forward/backward."""
    if kind == "dense":
        out, cache = dense_mod.dense_forward(x, *args)
        if dout is None:
            return out, None, None
        dx, dw, db = dense_mod.dense_backward(dout, cache)
        return out, dx, {"w": dw, "b": db}
    out, cache = activations.relu_forward(x)
    return out, None if dout is None else activations.relu_backward(dout, cache), {}


def _build(report, case, make, args):
    try:
        obj, _, _ = call(make, *args)
    except NotWritten:
        raise
    except LearnerError as error:
        case.fail(f"constructing the layer raised {error}")
        return None
    return obj


def _layer_parts(case, obj, kind, args):
    """Problems with params/grads before anything runs; True when the layer can be run."""
    keys = set(_KINDS[kind]["keys"])
    ok = True
    for part in ("params", "grads"):
        value = getattr(obj, part, None)
        if not isinstance(value, Mapping):
            case.fail(f"the layer's {part} should be a dict (name -> array), got "
                      f"{'nothing' if value is None else type(value).__name__}")
            ok = False
    if not ok:
        return False
    if set(obj.params) != keys:
        case.fail(f"params has keys {sorted(obj.params)}, expected {sorted(keys)}")
        ok = False
    if set(obj.grads) != set(obj.params):
        case.fail(f"grads has keys {sorted(obj.grads)}, params has {sorted(obj.params)}: a gradient is filed "
                  "under its parameter's name")
        case.data["grads_keys"] = True
        ok = False
    for key in set(obj.grads) & set(obj.params):
        g, p = obj.grads[key], obj.params[key]
        if not isinstance(g, np.ndarray) or g.shape != np.shape(p):
            case.fail(f"grads['{key}'] should be an array shaped like params['{key}'] {np.shape(p)}, got "
                      f"{g.shape if isinstance(g, np.ndarray) else type(g).__name__}")
            ok = False
    if kind == "dense" and ok:
        for key, given in zip(("w", "b"), args):
            if not np.array_equal(obj.params[key], given):
                case.fail(f"params['{key}'] does not hold the {key} the layer was made with")
                ok = False
    return ok


def _run_forward(case, obj, x, label="forward"):
    """The layer's forward(x) as an array, or None after recording the problem."""
    try:
        out, changed, warned = call(obj.forward, x)
    except LearnerError as error:
        case.fail(f"{label} raised {error}")
        return None
    if changed:
        case.fail(f"{label} changed its input x in place")
        case.data["changed"] = True
    if isinstance(out, tuple) and len(out) == 2:
        case.fail(f"{label} returned a tuple of 2 (out, cache); a layer's forward returns out alone and keeps "
                  "the cache itself")
        case.data["returns_cache"] = True
        return None
    if not isinstance(out, np.ndarray):
        case.fail(f"{label} should return an array, got {type(out).__name__}")
        return None
    return out


def _run_backward(case, obj, dout, label="backward"):
    try:
        dx, changed, warned = call(obj.backward, dout)
    except LearnerError as error:
        case.fail(f"{label} raised {error}")
        return None
    if changed:
        case.fail(f"{label} changed dout in place")
        case.data["changed"] = True
    if isinstance(dx, tuple):
        case.fail(f"{label} returned a tuple of {len(dx)}; a layer's backward returns dx alone and puts the "
                  "parameter gradients in self.grads")
        case.data["returns_param_grads"] = True
        return None
    if not isinstance(dx, np.ndarray):
        case.fail(f"{label} should return dx, an array, got {type(dx).__name__}")
        return None
    return dx


def _grads_now(obj):
    return {k: np.array(g, dtype=np.float64, copy=True) for k, g in obj.grads.items()
            if isinstance(g, np.ndarray)}


def layer(make=None, kind=None, **kwargs):
    """Check a layer class of your own: `check.layer(MyDense, "dense")`, `check.layer(MyReLU, "relu")`.

    Parameters
    ----------
    make : the class (or any function) that builds the layer: make(w, b) for "dense", make()
        for "relu".
    kind : "dense" or "relu", the cnnlib functions the layer is compared with.

    The layer must have `params` and `grads` dicts with the same keys ("w" and "b" for dense,
    none for ReLU), `forward(x) -> out` keeping its cache, and `backward(dout) -> dx` writing the
    parameter gradients into `grads`. Cases: forward and backward on two shapes, a second
    forward/backward (the gradients must be replaced, not added to), and two forwards before
    one backward (the backward must use the last forward's cache).
    """
    _check_kwargs("layer", kwargs, ())
    if kind not in _KINDS:
        raise TypeError(f"check.layer(make, kind): kind must be one of {sorted(_KINDS)}, got {kind!r}")
    make = learner_function(make, "make", allow_class=True)
    if make is None:
        raise TypeError("check.layer(make, kind) needs the layer class to check, e.g. check.layer(MyDense, 'dense')")
    report = Report("layer", _KINDS[kind]["what"])
    shapes = [(4, 5, 3), (1, 6, 2)] if kind == "dense" else [(2, 3, 4, 5), (5, 7)]
    try:
        for i, shape in enumerate(shapes):
            rng = _rng(100 + i)
            args, x = _layer_inputs(kind, rng, shape)
            label = (f"batch of {shape[0]}, {shape[1]} -> {shape[2]}" if kind == "dense"
                     else f"x of shape {shape}")
            case = report.case(f"{label}: params, grads, forward and backward vs cnnlib's")
            _layer_case(case, make, kind, args, x, rng)
        args, x = _layer_inputs(kind, _rng(200), shapes[0])
        _repeat_cases(report, make, kind, args, x, _rng(201))
    except NotWritten as stub:
        return _not_written(report, make, stub)
    diagnose(report, "layer")
    return report


def _layer_case(case, make, kind, args, x, rng):
    obj = _build(None, case, make, tuple(a.copy() for a in args))
    if obj is None or not _layer_parts(case, obj, kind, args):
        return
    before = {k: g for k, g in obj.grads.items()}
    out = _run_forward(case, obj, x)
    ref_out, _, _ = _layer_reference(kind, args, x, None)  # the forward only
    if out is None:
        return
    problem = compare("out", out, ref_out, dtype=np.float64)
    if problem:
        case.fail("forward: " + problem)
        return
    dout = rng.standard_normal(ref_out.shape)
    _, ref_dx, ref_grads = _layer_reference(kind, args, x, dout)
    dx = _run_backward(case, obj, dout)
    if dx is None:
        return
    problem = compare("dx", dx, ref_dx, dtype=np.float64)
    if problem:
        case.fail("backward: " + problem)
    grads = _grads_now(obj)
    for key, want in ref_grads.items():
        problem = compare(f"grads['{key}']", grads.get(key), want, dtype=np.float64)
        if problem:
            case.fail("after backward, " + problem)
            if key in grads and not np.any(grads[key]):
                case.data["grads_not_stored"] = True
    for key in ref_grads:
        if obj.grads.get(key) is not before.get(key):
            case.data["grads_replaced"] = True


def _repeat_cases(report, make, kind, args, x, rng):
    """Twice forward/backward (grads replaced, not added to); two forwards before one backward."""
    x2 = rng.standard_normal(x.shape)
    x2 += np.where(x2 >= 0, 0.05, -0.05)
    ref_out, _, _ = _layer_reference(kind, args, x, None)
    d1, d2 = rng.standard_normal(ref_out.shape), rng.standard_normal(ref_out.shape)
    _, dx1, g1 = _layer_reference(kind, args, x, d1)
    _, dx2, g2 = _layer_reference(kind, args, x2, d2)

    if kind == "dense":
        case = report.case("forward/backward twice: the second backward's grads replace the first's")
        obj = _build(None, case, make, tuple(a.copy() for a in args))
        if obj is not None and _layer_parts(case, obj, kind, args):
            if _run_forward(case, obj, x) is not None and _run_backward(case, obj, d1) is not None \
                    and _run_forward(case, obj, x2) is not None and _run_backward(case, obj, d2) is not None:
                grads = _grads_now(obj)
                for key in g2:
                    problem = compare(f"grads['{key}']", grads.get(key), g2[key])
                    if problem:
                        case.fail("after the second backward, " + problem)
                        if key in grads and _close(grads[key], g1[key] + g2[key]):
                            case.data["grads_accumulate"] = True

    case = report.case("forward(x1), forward(x2), then backward: it must use x2, the last forward's input")
    obj = _build(None, case, make, tuple(a.copy() for a in args))
    if obj is None or not _layer_parts(case, obj, kind, args):
        return
    if _run_forward(case, obj, x, "first forward") is None or _run_forward(case, obj, x2, "second forward") is None:
        return
    dx = _run_backward(case, obj, d2)
    if dx is None:
        return
    grads = _grads_now(obj)
    _, dx_stale, g_stale = _layer_reference(kind, args, x, d2)
    problems = [compare("dx", dx, dx2)] + [compare(f"grads['{k}']", grads.get(k), g2[k]) for k in g2]
    problems = [p for p in problems if p]
    for p in problems:
        case.fail(p)
    if problems and _close(dx, dx_stale) and all(k in grads and _close(grads[k], g_stale[k]) for k in g_stale):
        case.data["stale_cache"] = True


# ---------------------------------------------------------------------------------------------
# check.sequential: run_forward(layers, x) and run_backward(layers, dout)
# ---------------------------------------------------------------------------------------------

class _Spy:
    """A cnnlib layer that logs its calls: (kind, its index, the array it was given)."""

    def __init__(self, inner, index, log):
        self.inner, self.index, self.log = inner, index, log
        self.params, self.grads = inner.params, inner.grads

    def forward(self, x):
        self.log.append(("forward", self.index, np.array(x, copy=True)))
        return self.inner.forward(x)

    def backward(self, dout, input_grad=True):
        self.log.append(("backward", self.index, np.array(dout, copy=True)))
        return self.inner.backward(dout, input_grad=input_grad)

    def __repr__(self):
        return f"{self.inner!r}"


def _networks():
    """(label, make_layers(), x) for the sequential check; nonzero biases throughout."""
    def mlp():
        r = _rng(300)
        return [layers_mod.Dense(5, 6, rng=r), layers_mod.ReLU(), layers_mod.Dense(6, 3, rng=r)]

    def cnn():
        r = _rng(301)
        return [layers_mod.Conv2D(1, 2, 3, pad=1, rng=r), layers_mod.ReLU(), layers_mod.MaxPool2D(2),
                layers_mod.Flatten(), layers_mod.Dense(8, 3, rng=r)]

    def one():
        return [layers_mod.Dense(4, 2, rng=_rng(302))]

    def with_biases(make, seed):
        def build():
            layers = make()
            r = _rng(seed)
            for lay in layers:
                if "b" in lay.params:
                    lay.params["b"][...] = r.standard_normal(lay.params["b"].shape)
            return layers
        return build

    yield ("Dense 5->6, ReLU, Dense 6->3; batch of 4", with_biases(mlp, 310),
           _rng(320).standard_normal((4, 5)))
    yield ("Conv 3x3 pad 1, ReLU, MaxPool 2, Flatten, Dense 8->3; batch of 2, 1x4x4 images",
           with_biases(cnn, 311), _distinct_images(_rng(321), (2, 1, 4, 4)))
    yield "a single layer, Dense 4->2; batch 1", with_biases(one, 312), _rng(322).standard_normal((1, 4))


def _distinct_images(rng, shape):
    size = int(np.prod(shape))
    return (rng.permutation(size).reshape(shape) - size / 2) * 0.1 + rng.uniform(-1e-3, 1e-3, shape)


def sequential(**kwargs):
    """Check the two loops of a network: forward(layers, x) -> out, backward(layers, dout) -> dx.

    forward runs every layer in order, each on the previous one's output; backward runs them in
    reverse order, each on the dx of the layer above, and returns the first layer's dx. With
    `backward` the check first runs the layers forward itself, so each layer holds its cache.
    Cases: a dense network, a small CNN, a single layer.
    """
    _check_kwargs("sequential", kwargs, ("forward", "backward"))
    forward = learner_function(kwargs.get("forward"), "forward")
    backward = learner_function(kwargs.get("backward"), "backward")
    if forward is None and backward is None:
        raise TypeError("check.sequential() needs forward=, backward= or both: run_forward and run_backward")
    report = Report("sequential", "forward(layers, x) -> out; backward(layers, dout) -> dx")
    for index, (label, make, x) in enumerate(_networks()):
        case = report.case(label)
        ref_layers = make()
        ref = Sequential(*ref_layers)
        ref_trace_x = [x]
        for lay in ref_layers:
            ref_trace_x.append(lay.forward(ref_trace_x[-1]))
        ref_out = ref_trace_x[-1]
        dout = _rng(330 + index).standard_normal(ref_out.shape)
        ref_douts = [dout]
        for lay in reversed(ref_layers):
            ref_douts.append(lay.backward(ref_douts[-1]))
        ref_dx = ref_douts[-1]
        ref_douts = ref_douts[:-1][::-1]  # ref_douts[k]: the dout layer k receives
        ref_grads = {k: g.copy() for k, g in ref.grads().items()}
        log = []
        spies = [_Spy(lay, k, log) for k, lay in enumerate(make())]
        n = len(spies)
        case.data.update(n=n)
        if forward is not None:
            given = list(spies)
            try:
                out, _, _ = call(forward, given, x)
            except NotWritten as stub:
                return _not_written(report, forward, stub)
            except LearnerError as error:
                case.fail(f"forward raised {error}")
                out = None
            calls = [(k, a) for kind, k, a in log if kind == "forward"]
            case.data["forward_calls"] = calls
            if [s.index for s in given] != list(range(n)):
                case.data["list_changed"] = True
                case.fail("forward changed the order of the list of layers it was given")
            if [k for k, _ in calls] != list(range(n)):
                case.fail(f"forward called the layers in the order {[k for k, _ in calls]}, expected "
                          f"{list(range(n))}: each once, first to last")
                case.data["forward_order"] = True
            elif any(not _close(a, ref_trace_x[k]) for k, a in calls):
                bad = [k for k, a in calls if not _close(a, ref_trace_x[k])]
                case.fail(f"layer {bad[0]} was given the wrong input: each layer gets the previous one's output")
                if all(_close(a, x) for k, a in calls if k in bad and a.shape == x.shape) and \
                        any(a.shape == x.shape and _close(a, x) for k, a in calls if k in bad):
                    case.data["forward_same_input"] = True
            if out is not None:
                problem = compare("out", out, ref_out)
                if problem:
                    case.fail("forward: " + problem)
                    if _close(out, x):
                        case.data["forward_returns_input"] = True
        if backward is None:
            continue
        for spy in spies:  # cnnlib's loop, so every layer holds the cache of this x
            x_k = ref_trace_x[spy.index]
            spy.inner.forward(x_k)
        del log[:]
        given = list(spies)
        try:
            dx, _, _ = call(backward, given, dout)
        except NotWritten as stub:
            return _not_written(report, backward, stub)
        except LearnerError as error:
            case.fail(f"backward raised {error}")
            dx = _RAISED
        calls = [(k, a) for kind, k, a in log if kind == "backward"]
        case.data["backward_calls"] = calls
        if [s.index for s in given] != list(range(n)):
            case.data["list_changed"] = True
            case.fail("backward changed the order of the list of layers it was given (e.g. layers.reverse()): "
                      "the caller's list now runs backwards")
        order = [k for k, _ in calls]
        expected = list(range(n))[::-1]
        bad = [k for k, a in calls if not _close(a, ref_douts[k])]
        if order != expected:
            case.fail(f"backward called the layers in the order {order}, expected {expected}: "
                      "each once, last to first")
            if n > 1 and order and order[0] == 0:
                case.data["backward_forward_order"] = True
            elif dx is not _RAISED and set(order) < set(range(n)) and order == [k for k in expected if k in order]:
                case.data["backward_skips_layer"] = True
        if bad and not case.data.get("backward_forward_order"):
            k = bad[0]
            case.fail(f"layer {k}'s backward was given the wrong dout: each layer gets the dx returned by the "
                      f"layer above it (layer {k + 1})")
            if all(a.shape == dout.shape and _close(a, dout) for j, a in calls if j in bad):
                case.data["backward_same_dout"] = True
        if isinstance(dx, str):
            continue
        if dx is None:
            case.fail("backward returned None: return the first layer's dx")
            case.data["backward_no_return"] = True
            continue
        problem = compare("dx", dx, ref_dx)
        if problem:
            case.fail("backward: " + problem)
        got = Sequential(*spies).grads()
        for (name, want), g in zip(ref_grads.items(), got.values()):
            problem = compare(f"the gradient of {name}", g, want)
            if problem:
                case.fail(problem)
    diagnose(report, "sequential")
    return report


# ---------------------------------------------------------------------------------------------
# check.network: a whole model's gradients by finite differences
# ---------------------------------------------------------------------------------------------

def _model_dicts(model):
    params, grads = model.params, model.grads
    params = params() if callable(params) else params
    grads = grads() if callable(grads) else grads
    return params, grads


def network(model=None, input_shape=None, **kwargs):
    """Check every gradient of an assembled network by finite differences.

    Parameters
    ----------
    model : a cnnlib.Sequential (of cnnlib's layers or your own), or any object with
        forward(x), backward(dout) -> dx and params()/grads() dicts of arrays.
    input_shape : one sample's shape without the batch axis, e.g. (5,) or (1, 8, 8).

    L = sum(model.forward(x) * dout) with a random dout, so dL/d(output) = dout. Each parameter
    array and the input are checked along two random directions: the change of L over a
    centred step against the gradient dotted with the direction. Two more cases run the model
    twice: the second backward's gradients must replace the first's, and after two forwards a
    backward must use the last one. The model's parameters are put back as they were.
    """
    _check_kwargs("network", kwargs, ())
    if model is None or not all(hasattr(model, a) for a in ("forward", "backward", "params", "grads")):
        raise TypeError(f"check.network(model, input_shape): model must have forward, backward, params and grads, "
                        f"got {model!r}")
    if not isinstance(input_shape, (tuple, list)) or not all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in input_shape):
        raise TypeError(f"check.network(model, input_shape): input_shape is one sample's shape, e.g. (5,) or "
                        f"(1, 8, 8), got {input_shape!r}")
    input_shape = tuple(int(s) for s in input_shape)
    report = Report("network", "every parameter and the input, by finite differences of L = sum(out * dout)")
    try:
        params, _ = _model_dicts(model)
    except Exception as error:  # the learner's params() may fail
        report.case("reading the model's params").fail(f"reading params raised {type(error).__name__}: {error}")
        return report
    saved = {name: np.array(p, copy=True) for name, p in params.items()}
    try:
        for i, n in enumerate((4, 1)):
            _network_fd_case(report.case(f"batch of {n}: every parameter and the input"), model, input_shape, n,
                             _rng(400 + i))
        _network_repeat_cases(report, model, input_shape, _rng(410))
    except NotWritten as stub:
        return _not_written(report, model, stub)
    finally:
        for name, p in params.items():
            p[...] = saved[name]
    diagnose(report, "network")
    return report


def _forward_backward(case, model, x, dout):
    """(out, dx, grads copies) or None after recording the problem."""
    try:
        out, _, _ = call(model.forward, x)
    except LearnerError as error:
        case.fail(f"forward raised {error}")
        return None
    if not isinstance(out, np.ndarray):
        case.fail(f"forward should return an array, got {type(out).__name__}")
        return None
    if dout is None:
        return out, None, None
    if out.shape != dout.shape:
        case.fail(f"forward returned shape {out.shape}, expected {dout.shape}")
        return None
    try:
        dx, _, _ = call(model.backward, dout)
    except LearnerError as error:
        case.fail(f"backward raised {error}")
        return None
    try:
        _, grads = _model_dicts(model)
    except Exception as error:
        case.fail(f"reading grads raised {type(error).__name__}: {error}")
        return None
    return out, dx, {k: np.array(g, dtype=np.float64, copy=True) for k, g in grads.items()}


def _network_input(rng, shape):
    x = rng.standard_normal(shape)
    return x + np.where(x >= 0, 0.05, -0.05)


def _network_fd_case(case, model, input_shape, n, rng):
    x = _network_input(rng, (n, *input_shape))
    first = _forward_backward(case, model, x, None)
    if first is None:
        return
    dout = rng.standard_normal(first[0].shape)
    result = _forward_backward(case, model, x, dout)
    if result is None:
        return
    _, dx, grads = result
    params, _ = _model_dicts(model)
    if set(grads) != set(params):
        case.fail(f"grads has names {sorted(grads)}, params has {sorted(params)}")
        return

    def loss():
        return float(np.sum(np.asarray(model.forward(x), dtype=np.float64) * dout))

    h = 1e-5
    targets = list(params.items()) + [("the input x", x)]
    for name, arr in targets:
        grad = dx if name == "the input x" else grads[name]
        if not isinstance(grad, np.ndarray) or grad.shape != arr.shape:
            what = "dx (what backward returns)" if name == "the input x" else f"the gradient of {name}"
            case.fail(f"{what} has shape {np.shape(grad)}, expected {arr.shape}")
            continue
        for k in range(2):
            direction = rng.standard_normal(arr.shape)
            original = arr.copy()
            try:
                arr += h * direction
                up = loss()
                arr[...] = original - h * direction
                down = loss()
            except Exception as error:
                case.fail(f"forward raised {type(error).__name__} on a nudged {name}: {error}")
                return
            finally:
                arr[...] = original
            numeric = (up - down) / (2 * h)
            analytic = float(np.sum(grad * direction))
            err = scalar_error(numeric, analytic)
            if err > 1e-6:
                case.fail(f"the gradient of {name} disagrees with finite differences (relative error {err:.1e})")
                case.data.setdefault("wrong", []).append(name)
                break


def _network_repeat_cases(report, model, input_shape, rng):
    x1, x2 = _network_input(rng, (3, *input_shape)), _network_input(rng, (3, *input_shape))
    case = report.case("forward/backward twice: the second backward's gradients replace the first's")
    first = _forward_backward(case, model, x1, None)
    if first is None:
        return
    d1, d2 = rng.standard_normal(first[0].shape), rng.standard_normal(first[0].shape)
    a = _forward_backward(case, model, x1, d1)
    b = a and _forward_backward(case, model, x2, d2)
    c = b and _forward_backward(case, model, x2, d2)  # the same pass again
    if c:
        for name in c[2]:
            problem = compare(f"the gradient of {name}", c[2][name], b[2][name])
            if problem:
                case.fail("after the same forward/backward ran again, " + problem)
        # Added to instead of replaced: each pass adds its own gradient, so C - B = B - A.
        if any(not _close(c[2][k], b[2][k]) for k in c[2]) and all(
                _close(c[2][k] - b[2][k], b[2][k] - a[2][k]) for k in c[2]):
            case.data["grads_accumulate"] = True

    case = report.case("forward(x1), forward(x2), then backward: it must use x2, the last forward's input")
    fresh = _forward_backward(case, model, x2, d2)
    if fresh is None:
        return
    if _forward_backward(case, model, x1, None) is None:
        return
    try:
        model.forward(x2)  # the learner's forward already ran on x2 above
    except Exception:
        return
    # now forward(x1) was followed by forward(x2): a backward must give x2's gradients
    result = _forward_backward_only(case, model, d2)
    if result is None:
        return
    dx, grads = result
    problems = [compare("dx", dx, fresh[1])] + [compare(f"the gradient of {k}", grads[k], fresh[2][k])
                                                for k in fresh[2]]
    problems = [p for p in problems if p]
    for p in problems:
        case.fail(p)


def _forward_backward_only(case, model, dout):
    try:
        dx, _, _ = call(model.backward, dout)
        _, grads = _model_dicts(model)
    except LearnerError as error:
        case.fail(f"backward raised {error}")
        return None
    return dx, {k: np.array(g, dtype=np.float64, copy=True) for k, g in grads.items()}



# ---------------------------------------------------------------------------------------------
# check.sgd_momentum and check.adam: one optimizer step, several steps in a row
# ---------------------------------------------------------------------------------------------

def _step_params(rng, shapes):
    return {f"p{k}": rng.standard_normal(shape) for k, shape in enumerate(shapes)}


def _simulate(rule, params, grads_seq, settings, **variant):
    """The parameters after each step under `rule` (a reference or a mistaken variant)."""
    params = {k: p.copy() for k, p in params.items()}
    state = {}
    history = []
    with np.errstate(all="ignore"):
        for t, grads in enumerate(grads_seq, start=1):
            rule(params, grads, state, t, settings, **variant)
            history.append({k: p.copy() for k, p in params.items()})
    return history


def _sgd_rule(params, grads, state, t, s, sign=1.0, keep=True, dampen=False, lag=False):
    lr, mu = s["lr"], s["momentum"]
    for name, p in params.items():
        g = grads[name]
        v = state.get(name) if keep else None
        v = np.zeros_like(p) if v is None else v
        old = v.copy()
        v = mu * v + sign * ((1 - mu) * g if dampen else g)
        state[name] = v
        p -= lr * (old if lag else v)


def _adam_rule(params, grads, state, t, s, correct=True, t_shift=0, keep=True, sqrt=True, eps_inside=False,
               swap=False):
    lr, b1, b2, eps = s["lr"], s["beta1"], s["beta2"], s["eps"]
    if swap:
        b1, b2 = b2, b1
    tt = t + t_shift
    for name, p in params.items():
        g = grads[name]
        m, v = (state.get(name) if keep else None) or (np.zeros_like(p), np.zeros_like(p))
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        state[name] = (m, v)
        m_hat = m / (1 - b1 ** tt) if correct else m
        v_hat = v / (1 - b2 ** tt) if correct else v
        if eps_inside:
            p -= lr * m_hat / np.sqrt(v_hat + eps)
        else:
            p -= lr * m_hat / ((np.sqrt(v_hat) if sqrt else v_hat) + eps)


_SGD_VARIANTS = {
    "momentum_sign": {"sign": -1.0},
    "momentum_not_kept": {"keep": False},
    "momentum_dampened": {"dampen": True},
    "momentum_lag": {"lag": True},
}
_ADAM_VARIANTS = {
    "adam_no_bias_correction": {"correct": False},
    "adam_step_from_0": {"t_shift": -1},
    "adam_step_from_2": {"t_shift": 1},
    "adam_not_kept": {"keep": False},
    "adam_no_sqrt": {"sqrt": False},
    "adam_eps_inside": {"eps_inside": True},
    "adam_betas_swapped": {"swap": True},
}


def _optimizer_check(name, fn, what, cases, rule, variants, state_name):
    fn = learner_function(fn, "fn")
    if fn is None:
        raise TypeError(f"check.{name}(fn) needs the function to check")
    report = Report(name, what)
    for index, (label, shapes, steps, settings, scales) in enumerate(cases):
        case = report.case(label)
        rng = _rng(500 + index)
        start = _step_params(rng, shapes)
        grads_seq = [{k: rng.standard_normal(p.shape) * scales[j] for j, (k, p) in enumerate(start.items())}
                     for _ in range(steps)]
        want = _simulate(rule, start, grads_seq, settings)
        params = {k: p.copy() for k, p in start.items()}
        arrays = dict(params)  # the arrays a model would hold: the step must update these
        state = {}
        got = []
        case.data.update(settings=settings, steps=steps, variants={})
        for t, grads in enumerate(grads_seq, start=1):
            given = {k: g.copy() for k, g in grads.items()}
            try:
                _, _, warned = call(fn, params, given, state, **settings)
            except NotWritten as stub:
                return _not_written(report, fn, stub)
            except LearnerError as error:
                case.fail(f"step {t} raised {error}")
                break
            if any(not np.array_equal(given[k], grads[k]) for k in grads):
                case.fail(f"step {t} changed grads in place")
                case.data["changed"] = True
            if any(params.get(k) is not arrays[k] for k in arrays):
                case.fail(f"step {t} put new arrays into params instead of updating the ones it was given in place "
                          "(the model holds those): write p -= ..., not params[name] = ...")
                case.data["not_in_place"] = True
                break
            got.append({k: p.copy() for k, p in arrays.items()})
            if case.status == "fail":
                continue  # the first wrong step is reported; the later ones are kept for the diagnosis
            for k in arrays:
                problem = compare(k, arrays[k], want[t - 1][k], dtype=np.float64)
                if problem:
                    case.fail(f"after step {t}: {problem}")
                    case.data["values_wrong"] = compare(k, arrays[k], want[t - 1][k]) is not None
                    if all(np.array_equal(arrays[k], start[k]) for k in arrays):
                        case.data["unchanged"] = True
                    if t == 1 and not all(np.all(np.isfinite(p)) for p in arrays.values()):
                        case.data["nonfinite_first"] = True
                    break
        if case.data.get("values_wrong") and got:
            for key, variant in variants.items():
                other = _simulate(rule, start, grads_seq, settings, **variant)
                if all(_close(w[k], o[k]) for w, o in zip(want, other) for k in w):
                    continue  # in this case the mistaken rule gives the right numbers: it shows nothing
                matches = all(_close(g[k], o[k]) for g, o in zip(got, other) for k in g)
                case.data["variants"][key] = matches and len(got) == steps
    diagnose(report, name)
    return report


def sgd_momentum(fn=None, **kwargs):
    """Check fn(params, grads, velocity, lr=, momentum=), one step of SGD with momentum.

    params and grads are dicts name -> array; velocity is a dict the function keeps its state in
    ({} at the start, the same dict every step). For every name: v = momentum * v + g, then
    p -= lr * v, updating p in place. The parameters are compared after every step with
    cnnlib.SGD(lr, momentum)'s; the velocity itself is not (v = momentum * v - lr * g with
    p += v is the same method, written the other way round, and passes).
    """
    _check_kwargs("sgd_momentum", kwargs, ())
    cases = [
        ("momentum 0.9, lr 0.1, 4 steps, two parameters (3, 2) and (2,)", [(3, 2), (2,)], 4,
         {"lr": 0.1, "momentum": 0.9}, (1.0, 1.0)),
        ("momentum 0.5, lr 0.05, 3 steps, one parameter (2, 3, 2)", [(2, 3, 2)], 3,
         {"lr": 0.05, "momentum": 0.5}, (1.0,)),
        ("momentum 0 (plain SGD), lr 0.1, 2 steps", [(4,), (2, 2)], 2, {"lr": 0.1, "momentum": 0.0}, (1.0, 1.0)),
    ]
    return _optimizer_check("sgd_momentum", fn, "fn(params, grads, velocity, lr=, momentum=) updates params in place",
                            cases, _sgd_rule, _SGD_VARIANTS, "velocity")


def adam(fn=None, **kwargs):
    """Check fn(params, grads, state, lr=, beta1=, beta2=, eps=), one Adam step.

    params and grads are dicts name -> array; state is a dict the function keeps m, v and the
    step count t in ({} at the start, the same dict every step). With t counted from 1:
    m = beta1*m + (1-beta1)*g, v = beta2*v + (1-beta2)*g**2, m_hat = m / (1 - beta1**t),
    v_hat = v / (1 - beta2**t), p -= lr * m_hat / (sqrt(v_hat) + eps), p updated in place.
    The parameters are compared after every step with cnnlib.Adam's.
    """
    _check_kwargs("adam", kwargs, ())
    default = {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    cases = [
        ("lr 0.01, default betas, 5 steps, two parameters (3, 2) and (2,)", [(3, 2), (2,)], 5, default, (1.0, 1.0)),
        ("beta1 0.5, beta2 0.8, lr 0.1, 3 steps", [(2, 3)], 3, {"lr": 0.1, "beta1": 0.5, "beta2": 0.8, "eps": 1e-8},
         (1.0,)),
        ("gradients of sizes 1e-3 and 1e3, eps 1e-3, 4 steps", [(3,), (3,)], 4, dict(default, eps=1e-3), (1e-3, 1e3)),
    ]
    return _optimizer_check("adam", fn, "fn(params, grads, state, lr=, beta1=, beta2=, eps=) updates params in place",
                            cases, _adam_rule, _ADAM_VARIANTS, "state")


# ---------------------------------------------------------------------------------------------
# check.train_epoch: one pass over the data in shuffled mini-batches
# ---------------------------------------------------------------------------------------------

def _epoch_model(seed):
    r = _rng(seed)
    model = Sequential(layers_mod.Dense(6, 5, rng=r), layers_mod.ReLU(), layers_mod.Dense(5, 3, rng=r))
    for name, p in model.params().items():
        if name.endswith(".b"):
            p[...] = r.standard_normal(p.shape) * 0.1
    return model


class _SGDStep:
    """step(params, grads): plain SGD, counting its calls."""

    def __init__(self, lr=0.5):
        self.lr, self.calls = lr, 0

    def __call__(self, params, grads):
        self.calls += 1
        for name, p in params.items():
            p -= self.lr * grads[name]


def _epoch_variant(x, y, batch_size, seed, variant=None):
    """(final params, returned loss) of one epoch under the reference or a mistaken loop."""
    model, step, rng = _epoch_model(700), _SGDStep(), np.random.default_rng(seed)
    n = len(x)
    order_x = np.arange(n) if variant == "epoch_no_shuffle" else rng.permutation(n)
    order_y = rng.permutation(n) if variant == "epoch_separate_shuffles" else order_x
    stop = n - n % batch_size if variant == "epoch_skips_last" else n
    losses_, sizes = [], []
    for start in range(0, stop, batch_size):
        ix, iy = order_x[start:start + batch_size], order_y[start:start + batch_size]
        loss, dlogits = losses.softmax_cross_entropy(model.forward(x[ix]), y[iy])
        model.backward(dlogits, input_grad=False)
        step(model.params(), model.grads())
        losses_.append(loss)
        sizes.append(len(ix))
    if variant == "epoch_unweighted_loss":
        mean = float(np.mean(losses_))
    elif variant == "epoch_last_loss":
        mean = float(losses_[-1]) if losses_ else 0.0
    else:
        mean = float(np.dot(losses_, sizes) / max(1, sum(sizes))) if variant == "epoch_skips_last" \
            else float(np.dot(losses_, sizes) / n)
    return {k: p.copy() for k, p in model.params().items()}, mean


def train_epoch(fn=None, **kwargs):
    """Check fn(model, x, y, step, batch_size, rng) -> mean loss, one epoch of training.

    fn shuffles the sample indices with rng.permutation(len(x)) (once, the same order for x and
    y), cuts that order into batches of batch_size (the last one may be smaller), and for each
    batch runs model.forward, softmax_cross_entropy, model.backward and step(model.params(),
    model.grads()). It returns the epoch's mean loss over the samples: each batch's loss
    weighted by its size. Compared with that loop on the same rng: the final weights, the loss,
    the number of steps, the batches' sizes and which samples each batch held.
    """
    _check_kwargs("train_epoch", kwargs, ())
    fn = learner_function(fn, "fn")
    if fn is None:
        raise TypeError("check.train_epoch(fn) needs the function to check")
    report = Report("train_epoch", "fn(model, x, y, step, batch_size, rng) -> mean loss of the epoch")
    settings = [("10 samples, batches of 4: the last batch has 2", 10, 4),
                ("12 samples, batches of 4: no partial batch", 12, 4),
                ("5 samples, batch size 8: one batch of 5", 5, 8)]
    for index, (label, n, batch_size) in enumerate(settings):
        case = report.case(label)
        rng = _rng(600 + index)
        x, y = rng.standard_normal((n, 6)), rng.integers(0, 3, n)
        seed = 900 + index
        want_params, want_loss = _epoch_variant(x, y, batch_size, seed)
        model, step = _epoch_model(700), _SGDStep()
        log = []
        model.layers[0] = _Spy(model.layers[0], 0, log)
        case.data.update(variants={})
        try:
            loss, changed, _ = call(fn, model, x, y, step, batch_size, np.random.default_rng(seed))
        except NotWritten as stub:
            return _not_written(report, fn, stub)
        except LearnerError as error:
            case.fail(f"raised {error}")
            continue
        if changed:
            case.fail("changed x or y in place")
            case.data["changed"] = True
        # Which samples each training batch held: the spy saw every forward's input.
        batches = [a for kind, _, a in log if kind == "forward"]
        rows = {x[i].tobytes(): i for i in range(n)}
        seen = [[rows.get(r.tobytes(), -1) for r in b] for b in batches if b.ndim == 2]
        sizes = [len(b) for b in seen]
        want_sizes = [min(batch_size, n - s) for s in range(0, n, batch_size)]
        order = [i for b in seen for i in b]
        want_order = list(np.random.default_rng(seed).permutation(n))
        if step.calls != len(want_sizes):
            case.fail(f"{step.calls} steps, expected {len(want_sizes)}: one per batch")
        if sizes != want_sizes and len(sizes) == step.calls:
            case.fail(f"batch sizes {sizes}, expected {want_sizes}")
        if sizes == want_sizes and order != want_order:
            if order == list(range(n)) and n > 1:
                case.fail("the batches take the samples in their stored order: shuffle first")
            elif sorted(order) == list(range(n)):
                case.fail("the samples are shuffled, but not in the order rng.permutation(len(x)) gives with the "
                          "rng passed in")
                case.data["own_rng"] = True
            else:
                case.fail("the batches do not hold each sample exactly once")
        got_params = model.params()
        for name, want in want_params.items():
            key = name.replace("0_dense", "0__spy") if name not in got_params else name
            problem = compare(f"{name} after the epoch", got_params.get(key), want)
            if problem:
                case.fail(problem)
                break
        if not isinstance(loss, (float, int, np.floating, np.integer)) and not (
                isinstance(loss, np.ndarray) and loss.ndim == 0):
            case.fail(f"should return the mean loss, a number, got {type(loss).__name__}")
        elif scalar_error(float(loss), want_loss) > TOLERANCE:
            case.fail(f"returned loss {float(loss):.6g}, expected {want_loss:.6g} (the mean over the samples)")
            case.data["loss"] = float(loss)
        if case.status == "fail":
            got = {name: got_params.get(name.replace("0_dense", "0__spy") if name not in got_params else name)
                   for name in want_params}
            for key in ("epoch_no_shuffle", "epoch_skips_last", "epoch_separate_shuffles", "epoch_unweighted_loss",
                        "epoch_last_loss"):
                other_params, other_loss = _epoch_variant(x, y, batch_size, seed, key)
                params_match = all(isinstance(got[k], np.ndarray) and _close(got[k], other_params[k])
                                   for k in other_params)
                loss_match = isinstance(loss, (float, int, np.number)) and scalar_error(float(loss), other_loss) <= 1e-7
                differs = not (all(_close(other_params[k], want_params[k]) for k in want_params)
                               and scalar_error(other_loss, want_loss) <= 1e-7)
                case.data["variants"][key] = params_match and loss_match and differs
    diagnose(report, "train_epoch")
    return report


# ---------------------------------------------------------------------------------------------
# Reference versions: what the checks compare with and the exercise editions fall back to
# ---------------------------------------------------------------------------------------------

def dense_with(w, b):
    """A cnnlib.Dense whose params are the arrays w (D, M) and b (M,) themselves (MyDense's fallback)."""
    w, b = np.asarray(w), np.asarray(b)
    lay = layers_mod.Dense(*w.shape, dtype=w.dtype)
    lay._set_params(w=w, b=b)
    return lay


def run_forward(layers, x):
    """Every layer's forward in order, each on the previous one's output."""
    for lay in layers:
        x = lay.forward(x)
    return x


def run_backward(layers, dout):
    """Every layer's backward in reverse order, each on the dx of the layer above; the first's dx."""
    for lay in reversed(layers):
        dout = lay.backward(dout)
    return dout


def sgd_momentum_step(params, grads, velocity, lr=0.01, momentum=0.9):
    """One step of cnnlib.SGD(lr, momentum), its velocity kept in the dict `velocity`."""
    opt = optim.SGD(lr=lr, momentum=momentum)
    opt.velocity = velocity
    opt.step(params, grads)


def adam_step(params, grads, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """One step of cnnlib.Adam, its state in the dict `state`: "t" (int), "m" and "v" (dicts of arrays)."""
    if not state:
        state["t"] = 0
        state["m"] = {name: np.zeros_like(p) for name, p in params.items()}
        state["v"] = {name: np.zeros_like(p) for name, p in params.items()}
    opt = optim.Adam(lr=lr, beta1=beta1, beta2=beta2, eps=eps)
    opt.m, opt.v = state["m"], state["v"]
    opt.t = {name: state["t"] for name in params}
    opt.step(params, grads)
    state["t"] += 1


def train_one_epoch(model, x, y, step, batch_size, rng):
    """One epoch as cnnlib.fit runs it, with step(params, grads) for the update; the mean loss."""
    order = rng.permutation(len(x))
    loss_sum = 0.0
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        loss, dlogits = losses.softmax_cross_entropy(model.forward(x[idx]), y[idx])
        model.backward(dlogits, input_grad=False)
        step(model.params(), model.grads())
        loss_sum += loss * len(idx)
    return loss_sum / len(x)
