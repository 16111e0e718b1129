"""Checks of lessons 8 and 9: your own layer classes, the two loops of a network, a whole
network's gradients, the optimizer steps and the training epoch.

- `layer(MyDense, "dense")`, `layer(MyReLU, "relu")`: a layer object of your own.
- `sequential(forward=run_forward, backward=run_backward)`: the loops Sequential runs.
- `network(model, input_shape)`: every parameter's gradient of an assembled network.
- `sgd_momentum(fn)`, `adam(fn)`: one optimizer step, against cnnlib.SGD and cnnlib.Adam.
- `sgd_weight_decay(fn)`, `adamw(fn)`: lesson 13's steps with weight decay, against cnnlib.SGD and AdamW.
- `train_epoch(fn)`: one pass over the data in shuffled mini-batches, against cnnlib.fit's loop.

The exercise editions' fallbacks (dense_with, run_forward, run_backward, sgd_momentum_step,
adam_step, adamw_step, train_one_epoch) live in reference.py and are named from here too.
"""

from collections.abc import Mapping

import numpy as np

from .. import layers as layers_mod
from ..model import Sequential
from . import mistakes, reference as ref
from ._core import (NotWritten, Report, attempt, compare, learner_function, pair_text, read, refuse, rng, same,
                    scalar_error, shown, TOLERANCE)
from .layers import away_from_zero as _off_zero
from .reference import (adam_step, adamw_step, dense_with, run_backward, run_forward, sgd_momentum_step,  # noqa: F401
                        train_one_epoch)

KINDS = {"dense": "MyDense(w, b): forward(x) -> out, backward(dout) -> dx, grads['w'] and grads['b'] filled by backward",
         "relu": "MyReLU(): forward(x) -> out, backward(dout) -> dx, no params"}


def _name(fn):
    return getattr(fn, "__name__", "your function")


# ---- check.layer: a layer object of the learner's own (lesson 8) ----------------------------------
def _dict(report, case, obj, part):
    """obj.part, or obj.part() for a model, read as learner code: a dict name -> array, or None."""
    o = read(obj, part)
    if o.ok and callable(o.value):
        o = attempt(o.value)
    if not case.ran(o, f"reading {part}", report):
        return None
    if not isinstance(o.value, Mapping):
        case.fail(f"{part} should be a dict name -> array, got {type(o.value).__name__}")
        case.facts.add("not a dict")
        return None
    return o.value


def _run_passes(report, case, make, args, passes):
    """Build the layer, run passes (("forward", x) or ("backward", dout)) and put the last out, dx
    and grads into the case; False after a problem."""
    o = attempt(make, list(args), names=["w", "b"][:len(args)])
    if not case.ran(o, f"{_name(make)}({', '.join(['w', 'b'][:len(args)])})", report, _name(make)):
        return False
    obj, keys = o.value, ["b", "w"][2 - len(args):]
    params, grads = _dict(report, case, obj, "params"), _dict(report, case, obj, "grads")
    if params is None or grads is None:
        return False
    case.got["keys"], case.want["keys"] = sorted(grads), sorted(params)
    for problem in ([f"params has keys {sorted(params)}, expected {keys}"] if sorted(params) != keys else []) + (
            [f"grads has keys {sorted(grads)}, params has {sorted(params)}: a gradient is filed under its "
             "parameter's name"] if sorted(grads) != sorted(params) else []) + [
            f"params['{k}'] does not hold the {k} the layer was made with" for k, a in zip(("w", "b"), args)
            if k in params and not same(params[k], a)]:
        case.fail(problem)
    if case.status == "fail":
        return False
    for i, (method, array) in enumerate(passes):
        label = (["first ", "second "][[m for m, _ in passes[:i]].count(method)]
                 if [m for m, _ in passes].count(method) > 1 else "") + method
        o = read(obj, method)
        o = attempt(o.value, [array], names=["x" if method == "forward" else "dout"]) if o.ok else o
        if not case.ran(o, label, report, _name(make)):
            return False
        case.got["out" if method == "forward" else "dx"] = o.value
        if isinstance(o.value, tuple):
            case.fail(f"{label} returned a tuple of {len(o.value)}; a layer's {method} returns " + (
                "out alone and keeps the cache itself" if method == "forward" else
                "dx alone and puts the parameter gradients in self.grads"))
            return False
    grads = _dict(report, case, obj, "grads")
    case.got["grads"] = grads and {k: np.array(g, dtype=np.float64) for k, g in grads.items()}
    return grads is not None


def _judge_pass(case, ref_out, ref_dx, ref_grads, prefix=""):
    got = case.got["grads"]
    case.judge("out", case.got["out"], ref_out, prefix=prefix + "forward: ")
    case.judge("dx", case.got["dx"], ref_dx, prefix=prefix + "backward: ")
    for key, want in ref_grads.items():
        case.judge(f"grads['{key}']", got.get(key), want, prefix=prefix)
    case.got["grads"], case.want["grads"] = got, ref_grads
    if not same(got, ref_grads):
        case.wrong.add("grads")


@shown
def layer(make=None, kind=None, *args, **unknown):
    """Check a layer class of your own: `check.layer(MyDense, "dense")`, `check.layer(MyReLU, "relu")`.

    make builds the layer (make(w, b) for "dense", make() for "relu"); kind names the cnnlib functions
    it is compared with. The layer has `params` and `grads` dicts with the same keys, `forward(x) ->
    out` keeping its cache, `backward(dout) -> dx` writing the parameter gradients into `grads`. Cases:
    two shapes, a second forward/backward (its gradients replace the first's), two forwards before
    one backward (it uses the last forward's cache).
    """
    refuse("layer", "check.layer(MyDense, 'dense') or check.layer(MyReLU, 'relu')", args, unknown)
    if not isinstance(kind, str) or kind not in KINDS:
        raise TypeError(f"check.layer(make, kind): kind is the string 'dense' or 'relu', as in "
                        f"check.layer(MyDense, 'dense'); got {kind!r}")
    make, _ = learner_function(make, "make", classes=True)
    if make is None:
        raise TypeError("check.layer(make, kind) needs the layer class to check, e.g. check.layer(MyDense, 'dense')")
    report = Report("layer", KINDS[kind])

    def inputs(r, shape):
        if kind == "relu":
            return (), _off_zero(r, shape), r.standard_normal(shape)
        n, d, m = shape
        return (r.standard_normal((d, m)), r.standard_normal(m)), r.standard_normal((n, d)), r.standard_normal((n, m))

    try:
        for i, shape in enumerate([(4, 5, 3), (1, 6, 2)] if kind == "dense" else [(2, 3, 4, 5), (5, 7)]):
            args_, x, dout = inputs(rng(1100 + i), shape)
            label = f"batch of {shape[0]}, {shape[1]} -> {shape[2]}" if kind == "dense" else f"x of shape {shape}"
            case = report.case(f"{label}: params, grads, forward and backward vs cnnlib's")
            case.inputs.update(x=x, dout=dout)
            if _run_passes(report, case, make, args_, [("forward", x), ("backward", dout)]):
                _judge_pass(case, *ref.layer_pass(kind, args_, x, dout))
        args_, x, d1 = inputs(rng(1200), (4, 5, 3) if kind == "dense" else (2, 3, 4, 5))
        _, x2, d2 = inputs(rng(1201), (4, 5, 3) if kind == "dense" else (2, 3, 4, 5))
        if kind == "dense":
            case = report.case("forward/backward twice: the second backward's grads replace the first's")
            case.inputs.update(x=x2, dout=d2, **{"grads before": ref.layer_pass(kind, args_, x, d1)[2]})
            if _run_passes(report, case, make, args_, [("forward", x), ("backward", d1), ("forward", x2),
                                                       ("backward", d2)]):
                _judge_pass(case, *ref.layer_pass(kind, args_, x2, d2), prefix="after the second backward, ")
        case = report.case("forward(x1), forward(x2), then backward: it must use x2, the last forward's input")
        case.inputs.update(x=x2, dout=d2, stale=(kind, args_, x, d2))
        if _run_passes(report, case, make, args_, [("forward", x), ("forward", x2), ("backward", d2)]):
            _judge_pass(case, *ref.layer_pass(kind, args_, x2, d2))
    except NotWritten:
        return report
    mistakes.diagnose(report, "layer")
    return report


# ---- check.sequential: run_forward(layers, x) and run_backward(layers, dout) ----------------------
def _spy(layer, index, log):
    """The layer itself, its forward and backward logging (direction, index, a copy of their input)."""
    def logged(method, direction):
        def call(array, **kwargs):
            log.append((direction, index, np.array(array, copy=True)))
            return method(array, **kwargs)
        return call

    layer.forward, layer.backward = logged(layer.forward, "forward"), logged(layer.backward, "backward")
    return layer


def _networks():
    """(label, make_layers(), x) for the sequential check; nonzero biases throughout."""
    def with_biases(layers, seed):
        r = rng(seed)
        for lay in layers:
            if "b" in lay.params:
                lay.params["b"][...] = r.standard_normal(lay.params["b"].shape)
        return layers

    yield ("Dense 5->6, ReLU, Dense 6->3; batch of 4",
           lambda: with_biases([layers_mod.Dense(5, 6, rng=rng(1300)), layers_mod.ReLU(),
                                layers_mod.Dense(6, 3, rng=rng(1301))], 1310), rng(1320).standard_normal((4, 5)))
    size = 2 * 1 * 4 * 4  # distinct pixels, 0.1 apart: no tie in a pooling window
    yield ("Conv 3x3 pad 1, ReLU, MaxPool 2, Flatten, Dense 8->3; batch of 2, 1x4x4 images",
           lambda: with_biases([layers_mod.Conv2D(1, 2, 3, pad=1, rng=rng(1302)), layers_mod.ReLU(),
                                layers_mod.MaxPool2D(2), layers_mod.Flatten(),
                                layers_mod.Dense(8, 3, rng=rng(1303))], 1311),
           (rng(1321).permutation(size).reshape(2, 1, 4, 4) - size / 2) * 0.1)
    yield ("a single layer, Dense 4->2; batch 1", lambda: with_biases([layers_mod.Dense(4, 2, rng=rng(1304))], 1312),
           rng(1322).standard_normal((1, 4)))


def _calls(log, direction):
    return [k for d, k, _ in log if d == direction], [a for d, _, a in log if d == direction]


def _record_calls(case, direction, order, given, want_order, want_given):
    """The order of the layers' calls and what each call was given, against the right ones."""
    case.got[f"{direction} order"], case.want[f"{direction} order"] = order, want_order
    case.got[f"{direction} inputs"], case.want[f"{direction} inputs"] = given, want_given
    if order != want_order:
        case.wrong.add(f"{direction} order")
        case.fail(f"{direction} called the layers in the order {order}, expected {want_order}: each once, "
                  + ("first to last" if direction == "forward" else "last to first"))
    bad = [k for k, a, b in zip(order, given, want_given) if not same(a, b)]
    if bad:
        case.wrong.add(f"{direction} inputs")
        case.fail(f"layer {bad[0]} was given the wrong input: each layer gets the previous one's output"
                  if direction == "forward" else f"layer {bad[0]}'s backward was given the wrong dout: each layer "
                  f"gets the dx returned by the layer above it (layer {bad[0] + 1})")


@shown
def sequential(*args, forward=None, backward=None, **unknown):
    """Check the two loops of a network: forward(layers, x) -> out, backward(layers, dout) -> dx.

    forward runs every layer in order, each on the previous one's output; backward runs them in
    reverse order, each on the dx of the layer above (the check runs the layers forward first).
    Cases: a dense network, a small CNN, a single layer.
    """
    refuse("sequential", "check.sequential(forward=run_forward), check.sequential(backward=run_backward) or both",
           args, unknown)
    forward, _ = learner_function(forward, "forward")
    backward, _ = learner_function(backward, "backward")
    if forward is None and backward is None:
        raise TypeError("check.sequential() needs forward=, backward= or both: "
                        "check.sequential(forward=run_forward, backward=run_backward)")
    report = Report("sequential", "forward(layers, x) -> out; backward(layers, dout) -> dx")
    try:
        for index, (label, make, x) in enumerate(_networks()):
            case = report.case(label)
            ref_layers, trace = make(), [x]
            for lay in ref_layers:
                trace.append(lay.forward(trace[-1]))
            douts = [rng(1330 + index).standard_normal(trace[-1].shape)]
            for lay in reversed(ref_layers):
                douts.append(lay.backward(douts[-1]))
            dout = douts[0]
            ref_grads = {k: g.copy() for k, g in Sequential(*ref_layers).grads().items()}
            log, n = [], len(ref_layers)
            layers = [_spy(lay, k, log) for k, lay in enumerate(make())]
            case.inputs.update(x=x, dout=dout)
            if forward is not None:
                o = attempt(forward, [layers, x], names=["layers", "x"])
                order, given = _calls(log, "forward")
                _record_calls(case, "forward", order, given, list(range(n)), [trace[k] for k in order])
                if case.ran(o, "forward", report, _name(forward)):
                    case.judge("out", o.value, trace[-1], dtype=None, prefix="forward: ")
            if backward is None:
                continue
            for k, lay in enumerate(layers):  # cnnlib's loop, so every layer holds the cache of this x
                lay.forward(trace[k])
            del log[:]
            o = attempt(backward, [layers, dout], names=["layers", "dout"])
            order, given = _calls(log, "backward")
            want_order = list(range(n))[::-1]
            _record_calls(case, "backward", order, given, want_order, [douts[n - 1 - k] for k in order])
            if not case.ran(o, "backward", report, _name(backward)):
                continue
            case.judge("dx", o.value, douts[-1], dtype=None, prefix="backward: ")
            for (name, want), got in zip(ref_grads.items(), Sequential(*layers).grads().values()):
                case.judge(f"the gradient of {name}", got, want, dtype=None)
    except NotWritten:
        return report
    mistakes.diagnose(report, "sequential")
    return report


# ---- check.network: a whole model's gradients by finite differences -------------------------------
def _model_pass(report, case, model, x, dout=None):
    """(out, dx, grads copies) of one forward (and backward, given dout) of the model; None after a problem."""
    o = attempt(model.forward, [x], names=["x"])
    if not case.ran(o, "forward", report):
        return None
    case.got["out"] = o.value
    if not isinstance(o.value, np.ndarray) or (dout is not None and o.value.shape != dout.shape):
        case.fail(f"forward should return an array of shape {dout.shape if dout is not None else '(N, ...)'}, got "
                  + (f"shape {o.value.shape}" if isinstance(o.value, np.ndarray) else type(o.value).__name__))
        return None
    if dout is None:
        return o.value, None, None
    b = attempt(model.backward, [dout], names=["dout"])
    grads = case.ran(b, "backward", report) and _dict(report, case, model, "grads")
    return grads and (o.value, b.value, {k: np.array(g, dtype=np.float64) for k, g in grads.items()})


def _network_fd_case(report, case, model, params, x, r, h=1e-5):
    """Every parameter's gradient, and dx, along two random directions against centred differences."""
    first = _model_pass(report, case, model, x)
    dout = first and r.standard_normal(first[0].shape)
    result = first and _model_pass(report, case, model, x, dout)
    if not result:
        return
    _, dx, grads = result
    if set(grads) != set(params):
        return case.fail(f"grads has names {sorted(grads)}, params has {sorted(params)}")
    for name, arr in list(params.items()) + [("the input x", x)]:
        grad = dx if name == "the input x" else grads[name]
        if not isinstance(arr, np.ndarray):
            case.fail(f"params()['{name}'] should be an array, got {type(arr).__name__}")
            continue
        if not isinstance(grad, np.ndarray) or grad.shape != np.shape(arr):
            case.fail(f"{'dx' if name == 'the input x' else 'the gradient of ' + name} has shape {np.shape(grad)}, "
                      f"expected {np.shape(arr)}")
            continue
        for _ in range(2):
            direction, original, sides = r.standard_normal(arr.shape), arr.copy(), []
            for sign in (1, -1):
                arr[...] = original + sign * h * direction
                o = attempt(model.forward, [x])
                sides.append(float(np.sum(np.asarray(o.value, dtype=np.float64) * dout)) if o.ok else np.nan)
            arr[...] = original
            err = scalar_error((sides[0] - sides[1]) / (2 * h), float(np.sum(grad * direction)))
            if err > 1e-6:
                case.fail(f"the gradient of {name} disagrees with finite differences (relative error {err:.1e})")
                break


def _network_repeat_cases(report, model, input_shape, r):
    x1, x2 = _off_zero(r, (3, *input_shape)), _off_zero(r, (3, *input_shape))
    case = report.case("forward/backward twice: the second backward's gradients replace the first's")
    first = _model_pass(report, case, model, x1)
    d1, d2 = (r.standard_normal(first[0].shape) for _ in range(2)) if first else (None, None)
    a = first and _model_pass(report, case, model, x1, d1)
    b = a and _model_pass(report, case, model, x2, d2)
    c = b and _model_pass(report, case, model, x2, d2)  # the same pass again: the same gradients
    if c:
        case.inputs["grads before"] = {k: b[2][k] - a[2][k] for k in b[2] if k in a[2]}
        for name in c[2]:
            case.judge(f"the gradient of {name}", c[2][name], b[2].get(name), dtype=None,
                       prefix="after the same forward/backward ran again, ")
        case.got["grads"], case.want["grads"] = c[2], b[2]
        if not same(c[2], b[2]):
            case.wrong.add("grads")
    case = report.case("forward(x1), forward(x2), then backward: it must use x2, the last forward's input")
    fresh = b and _model_pass(report, case, model, x2, d2)
    if fresh and _model_pass(report, case, model, x1) and _model_pass(report, case, model, x2):
        o = attempt(model.backward, [d2], names=["dout"])
        grads = case.ran(o, "backward", report) and _dict(report, case, model, "grads")
        if grads:
            case.judge("dx", o.value, fresh[1], dtype=None)
            for k in fresh[2]:
                case.judge(f"the gradient of {k}", grads.get(k), fresh[2][k], dtype=None)


@shown
def network(model=None, input_shape=None, *args, **unknown):
    """Check every gradient of an assembled network by finite differences.

    model: a cnnlib.Sequential (of cnnlib's layers or your own), or any object with forward(x),
    backward(dout) -> dx and params()/grads() dicts of arrays; input_shape: one sample's shape, e.g.
    (5,) or (1, 8, 8). Every parameter and the input are checked along two random directions against
    centred differences of L = sum(model.forward(x) * dout); two more cases run the model twice (the
    second backward's gradients replace the first's; after two forwards, backward uses the last).
    The model's parameters are put back as they were.
    """
    refuse("network", "check.network(model, input_shape), e.g. check.network(net, (5,))", args, unknown)
    if model is None or isinstance(model, type) or not all(
            hasattr(type(model), a) or a in getattr(model, "__dict__", {}) for a in ("forward", "backward", "params",
                                                                                  "grads")):
        raise TypeError(f"check.network(model, input_shape): model must be a model object with forward, backward, "
                        f"params and grads (e.g. cnnlib.Sequential(...)), got {model!r}")
    if not isinstance(input_shape, (tuple, list)) or not all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in input_shape):
        raise TypeError(f"check.network(model, input_shape): input_shape is one sample's shape, a tuple such as (5,) "
                        f"or (1, 8, 8), got {input_shape!r}")
    input_shape = tuple(int(s) for s in input_shape)
    report = Report("network", "every parameter and the input, by finite differences of L = sum(out * dout)")
    case = report.case("batch of 4: every parameter and the input")
    params = _dict(report, case, model, "params")
    if params is None:
        mistakes.diagnose(report, "network")
        return report
    saved = {name: np.array(p, copy=True) for name, p in params.items() if isinstance(p, np.ndarray)}
    try:
        _network_fd_case(report, case, model, params, _off_zero(rng(1400), (4, *input_shape)), rng(1401))
        _network_fd_case(report, report.case("batch of 1: every parameter and the input"), model, params,
                         _off_zero(rng(1402), (1, *input_shape)), rng(1403))
        _network_repeat_cases(report, model, input_shape, rng(1410))
    except NotWritten:
        return report
    finally:
        for name, p in saved.items():
            params[name][...] = p
    mistakes.diagnose(report, "network")
    return report


# ---- check.sgd_momentum and check.adam: several steps in a row ------------------------------------
def _optimizer_check(name, fn, what, cases, history):
    fn, _ = learner_function(fn, "fn")
    if fn is None:
        raise TypeError(f"check.{name}(fn) needs the function to check")
    report = Report(name, what)
    kept = "velocity" if name.startswith("sgd") else "state"
    try:
        for index, (label, shapes, steps, settings, scales) in enumerate(cases):
            case = report.case(label)
            r = rng(1500 + index)
            start = {f"p{k}": r.standard_normal(shape) for k, shape in enumerate(shapes)}
            grads_seq = [{k: r.standard_normal(p.shape) * scales[j] for j, (k, p) in enumerate(start.items())}
                         for _ in range(steps)]
            case.inputs.update(start=start, grads=grads_seq, settings=settings)
            want = history(start, grads_seq, **settings)
            params = {k: p.copy() for k, p in start.items()}
            arrays, state, got = dict(params), {}, []
            for t, grads in enumerate(grads_seq, start=1):
                o = attempt(fn, [params, grads, state], settings, names=["params", "grads", kept],
                            keep=("params", kept))
                if not case.ran(o, f"step {t}", report, _name(fn), returns=False):
                    break
                if any(params.get(k) is not arrays[k] for k in arrays):
                    case.fail(f"step {t} put new arrays into params instead of updating the ones it was given in "
                              "place (the model holds those): write p -= ..., not params[name] = ...")
                    case.facts.add("rebound")
                    break
                got.append({k: p.copy() for k, p in arrays.items()})
                if t == 1 and all(np.array_equal(arrays[k], start[k]) for k in arrays) and any(
                        map(np.any, grads.values())):  # not moved, though a gradient would move it
                    case.facts.add("unchanged")
                if case.status == "pass":
                    for k in arrays:
                        if not case.judge(k, arrays[k], want[t - 1][k], prefix=f"after step {t}: "):
                            break
            case.got["params"], case.want["params"] = got, want[:len(got)] if len(got) < steps else want
            if len(got) < steps or not same(got, want):
                case.wrong.add("params")
    except NotWritten:
        return report
    mistakes.diagnose(report, name)
    return report


@shown
def sgd_momentum(fn=None, *args, **unknown):
    """Check fn(params, grads, velocity, lr=, momentum=), one step of SGD with momentum.

    For every name: v = momentum * v + g, then p -= lr * v, p updated in place; velocity is the dict
    the caller keeps ({} at the start). The parameters are compared after every step with cnnlib.SGD's;
    the velocity is not (v = momentum * v - lr * g with p += v is the same method, and passes).
    """
    refuse("sgd_momentum", "check.sgd_momentum(fn)", args, unknown)
    cases = [("momentum 0.9, lr 0.1, 4 steps, two parameters (3, 2) and (2,)", [(3, 2), (2,)], 4,
              {"lr": 0.1, "momentum": 0.9}, (1.0, 1.0)),
             ("momentum 0.5, lr 0.05, 3 steps, one parameter (2, 3, 2)", [(2, 3, 2)], 3,
              {"lr": 0.05, "momentum": 0.5}, (1.0,)),
             ("momentum 0 (plain SGD), lr 0.1, 2 steps", [(4,), (2, 2)], 2, {"lr": 0.1, "momentum": 0.0}, (1.0, 1.0))]
    return _optimizer_check("sgd_momentum", fn, "fn(params, grads, velocity, lr=, momentum=) updates params in place",
                            cases, ref.sgd_history)


@shown
def adam(fn=None, *args, **unknown):
    """Check fn(params, grads, state, lr=, beta1=, beta2=, eps=), one Adam step.

    With t counted from 1 (kept in the dict state with m and v): m = beta1*m + (1-beta1)*g,
    v = beta2*v + (1-beta2)*g**2, p -= lr * m_hat / (sqrt(v_hat) + eps) with m_hat = m / (1 - beta1**t)
    and v_hat = v / (1 - beta2**t), p updated in place; compared after every step with cnnlib.Adam's.
    """
    refuse("adam", "check.adam(fn)", args, unknown)
    default = {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    cases = [("lr 0.01, default betas, 5 steps, two parameters (3, 2) and (2,)", [(3, 2), (2,)], 5, default, (1.0, 1.0)),
             ("beta1 0.5, beta2 0.8, lr 0.1, 3 steps", [(2, 3)], 3, {"lr": 0.1, "beta1": 0.5, "beta2": 0.8, "eps": 1e-8},
              (1.0,)),
             ("gradients of sizes 1e-3 and 1e3, eps 1e-3, 4 steps", [(3,), (3,)], 4, dict(default, eps=1e-3),
              (1e-3, 1e3))]
    return _optimizer_check("adam", fn, "fn(params, grads, state, lr=, beta1=, beta2=, eps=) updates params in place",
                            cases, ref.adam_history)


@shown
def sgd_weight_decay(fn=None, *args, **unknown):
    """Check fn(params, grads, velocity, lr=, momentum=, weight_decay=), lesson 13's SGD step, as
    torch.optim.SGD: g = grad + weight_decay * p, then v = momentum * v + g and p -= lr * v, p updated in
    place; compared after every step with cnnlib.SGD's."""
    refuse("sgd_weight_decay", "check.sgd_weight_decay(fn)", args, unknown)
    cases = [("weight_decay 0.1, momentum 0.9, lr 0.1, 4 steps, two parameters (3, 2) and (2,)", [(3, 2), (2,)], 4,
              {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.1}, (1.0, 1.0)),
             ("zero gradients, weight_decay 0.2, momentum 0.9: the decay alone moves the weights, 3 steps", [(2, 3)],
              3, {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.2}, (0.0,)),
             ("momentum 0 (plain SGD), weight_decay 0.2, lr 0.1, 3 steps", [(4,), (2, 2)], 3,
              {"lr": 0.1, "momentum": 0.0, "weight_decay": 0.2}, (1.0, 1.0)),
             ("weight_decay 0, momentum 0.5, lr 0.05, 2 steps", [(2, 3, 2)], 2,
              {"lr": 0.05, "momentum": 0.5, "weight_decay": 0.0}, (1.0,))]
    return _optimizer_check("sgd_weight_decay", fn, "fn(params, grads, velocity, lr=, momentum=, weight_decay=) "
                            "updates params in place", cases, ref.sgd_history)


@shown
def adamw(fn=None, *args, **unknown):
    """Check fn(params, grads, state, lr=, beta1=, beta2=, eps=, weight_decay=), lesson 13's AdamW step, as
    torch.optim.AdamW: p *= 1 - lr * weight_decay, then Adam's step with the gradient alone (check.adam), p
    updated in place; compared after every step with cnnlib.AdamW's."""
    refuse("adamw", "check.adamw(fn)", args, unknown)
    default = {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1}
    cases = [("weight_decay 0.1, lr 0.01, default betas, 5 steps, two parameters (3, 2) and (2,)", [(3, 2), (2,)], 5,
              default, (1.0, 1.0)),
             ("zero gradients beside gradients of size 1e3: the decay alone moves the first, 4 steps", [(3,), (3,)],
              4, default, (0.0, 1e3)),
             ("beta1 0.5, beta2 0.8, lr 0.1, weight_decay 0.05, 3 steps", [(2, 3)], 3,
              dict(default, lr=0.1, beta1=0.5, beta2=0.8, weight_decay=0.05), (1.0,)),
             ("weight_decay 0 (Adam itself), 3 steps", [(2, 2)], 3, dict(default, weight_decay=0.0), (1.0,))]
    return _optimizer_check("adamw", fn, "fn(params, grads, state, lr=, beta1=, beta2=, eps=, weight_decay=) "
                            "updates params in place", cases, ref.adam_history)


# ---- check.train_epoch: one pass over the data in shuffled mini-batches ---------------------------
LR = 0.5  # the plain SGD step the check gives the learner's epoch


def _epoch_model():
    r = rng(1700)
    model = Sequential(layers_mod.Dense(6, 5, rng=r), layers_mod.ReLU(), layers_mod.Dense(5, 3, rng=r))
    for name, p in model.params().items():
        if name.endswith(".b"):
            p[...] = r.standard_normal(p.shape) * 0.1
    return model


@shown
def train_epoch(fn=None, *args, **unknown):
    """Check fn(model, x, y, step, batch_size, rng) -> mean loss, one epoch of training.

    One order from rng.permutation(len(x)) for x and y, cut into batches of batch_size (the last may
    be smaller); per batch forward, softmax_cross_entropy, backward, step(model.params(),
    model.grads()); the mean loss over the samples returned. Compared with that loop on the same
    rng: the final weights, the loss, the steps, the batches' sizes and samples.
    """
    refuse("train_epoch", "check.train_epoch(fn)", args, unknown)
    fn, _ = learner_function(fn, "fn")
    if fn is None:
        raise TypeError("check.train_epoch(fn) needs the function to check")
    report = Report("train_epoch", "fn(model, x, y, step, batch_size, rng) -> mean loss of the epoch")
    try:
        for index, (label, n, batch_size) in enumerate([("10 samples, batches of 4: the last batch has 2", 10, 4),
                                                        ("12 samples, batches of 4: no partial batch", 12, 4),
                                                        ("5 samples, batch size 8: one batch of 5", 5, 8)]):
            case = report.case(label)
            r, seed = rng(1600 + index), 1900 + index
            x, y = r.standard_normal((n, 6)), r.integers(0, 3, n)
            case.inputs.update(x=x, y=y, epoch=lambda slip, x=x, y=y, b=batch_size, s=seed:
                               ref.epoch(_epoch_model, x, y, b, s, LR, slip))
            want_params, want_loss = case.inputs["epoch"](None)
            model, log, calls = _epoch_model(), [], []

            def step(params, grads):
                calls.append(1)
                for name, p in params.items():
                    p -= LR * grads[name]

            _spy(model.layers[0], 0, log)
            o = attempt(fn, [model, x, y, step, batch_size, np.random.default_rng(seed)],
                        names=["model", "x", "y", "step", "batch_size", "rng"], keep=("model", "step", "rng"))
            if not case.ran(o, "", report, _name(fn)):
                continue
            _epoch_batches(case, log, x, n, batch_size, seed, len(calls))
            got = {k: np.array(p, copy=True) for k, p in model.params().items()}
            case.got["params"], case.want["params"] = got, want_params
            if not same(got, want_params):
                case.wrong.add("params")
                case.fail(next(p for p in (compare(f"{k} after the epoch", got.get(k), w)
                                           for k, w in want_params.items()) if p))
            loss = o.value
            if not isinstance(loss, (float, int, np.floating, np.integer)) and not (
                    isinstance(loss, np.ndarray) and loss.ndim == 0):
                case.fail(f"should return the mean loss, a number, got {type(loss).__name__}")
                continue
            case.got["loss"], case.want["loss"] = float(loss), want_loss
            if scalar_error(float(loss), want_loss) > TOLERANCE:
                case.wrong.add("loss")
                case.fail("returned loss {} where {} was expected (the mean over the samples)".format(
                    *pair_text(loss, want_loss)))
    except NotWritten:
        return report
    mistakes.diagnose(report, "train_epoch")
    return report


def _epoch_batches(case, log, x, n, batch_size, seed, steps):
    """Compare the steps, the batches' sizes and which samples each held with the right loop's."""
    rows = {x[i].tobytes(): i for i in range(n)}
    seen = [[rows.get(row.tobytes(), -1) for row in batch] for d, _, batch in log if d == "forward" and batch.ndim == 2]
    sizes, order = [len(b) for b in seen], [i for b in seen for i in b]
    want_sizes = [min(batch_size, n - s) for s in range(0, n, batch_size)]
    if steps != len(want_sizes):
        case.fail(f"{steps} steps, expected {len(want_sizes)}: one per batch")
    if sizes != want_sizes and len(sizes) == steps:
        case.fail(f"batch sizes {sizes}, expected {want_sizes}")
    if sizes == want_sizes and order != list(np.random.default_rng(seed).permutation(n)):
        if order == list(range(n)) and n > 1:
            case.fail("the batches take the samples in their stored order: shuffle first")
        elif sorted(order) == list(range(n)):
            case.fail("the samples are shuffled, but not in the order rng.permutation(len(x)) gives with the rng "
                      "passed in")
            case.facts.add("own rng")
        else:
            case.fail("the batches do not hold each sample exactly once")
