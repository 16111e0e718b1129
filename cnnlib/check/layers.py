"""Checks of a learner's layer functions: dense, ReLU, conv2d, max/avg pooling, Flatten, softmax.

Each check runs a fixed set of cases in float64 (seeded, so the report is the same every run),
each with a random upstream gradient and nonzero biases. The forward is compared with cnnlib's.
The backward is compared with cnnlib's element by element and, when the learner's forward is
given, with centred differences of that forward along random directions, so that a pair that is
consistent but wrong is told apart from a backward that is wrong for its own forward. Then the
catalogue (mistakes.py) names the classic mistakes the results show.
"""

import numpy as np

from .. import activations, conv, dense as dense_mod, flatten as flatten_mod, losses, pool
from ._core import (
    LearnerError, NotWritten, Report, _check_kwargs, call, compare, directional_fd, learner_function,
    pixel_place, scalar_error, takes, TOLERANCE,
)
from .mistakes import diagnose

SEED = 20261206


def _rng(i):
    return np.random.default_rng([SEED, i])


def _away_from_zero(rng, shape, scale=1.0):
    """Normal draws pushed at least 0.05 from 0: finite differences never straddle ReLU's kink."""
    v = rng.standard_normal(shape) * scale
    return v + np.where(v >= 0, 0.05, -0.05)


def _distinct(rng, shape):
    """Values at least 1e-3 apart (a shuffled grid): no tie, no window max within a step h of another."""
    size = int(np.prod(shape))
    return (rng.permutation(size).reshape(shape) - size / 2) * 1e-2 + rng.uniform(-1e-3, 1e-3, shape)


class _Layer:
    """What a layer check needs: the inputs' names, the gradients' names, cnnlib's functions."""

    def __init__(self, name, inputs, grads, forward, backward, options=(), implicit=None, what=""):
        self.name, self.inputs, self.grads = name, inputs, grads
        self.forward, self.backward = forward, backward
        self.options = options  # keyword arguments of the forward: stride, pad, size
        self.implicit = implicit or {}  # what a function without that keyword is taken to do
        self.what = what


def _read_mask(x_shape, kernel, stride, pad, out_hw):
    """(H, W) bool: the pixels some window reads."""
    H, W = x_shape[2:]
    read = np.zeros((H + 2 * pad[0], W + 2 * pad[1]), dtype=bool)
    for i in range(out_hw[0]):
        for j in range(out_hw[1]):
            read[i * stride[0]:i * stride[0] + kernel[0], j * stride[1]:j * stride[1] + kernel[1]] = True
    return read[pad[0]:pad[0] + H, pad[1]:pad[1] + W]


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _where(spec, name, arrays, kwargs, ref_out):
    """Describe an element of gradient `name`: a corner/edge/inner pixel, or one no window reads."""
    if name != "dx" or arrays["x"].ndim != 4 or spec.name not in ("conv2d", "maxpool2d", "avgpool2d"):
        return None
    x = arrays["x"]
    if "w" in arrays:
        kernel = arrays["w"].shape[2:]
    elif "size" in kwargs:
        kernel = _pair(kwargs["size"])
    else:
        return lambda index: pixel_place(index, x.shape[2:])
    stride = _pair(kwargs.get("stride") or kernel)
    pad = _pair(kwargs.get("pad", 0))
    read = _read_mask(x.shape, kernel, stride, pad, ref_out.shape[2:])
    return lambda index: pixel_place(index, x.shape[2:], read)


def _implicit(spec, key, kwargs):
    """The value of `key` that a learner's function without that parameter is taken to use."""
    if key == "stride" and "size" in kwargs:
        return kwargs["size"]  # pooling windows side by side
    return spec.implicit.get(key, object())


def _as_grads(result, names):
    """The backward's result as a dict by name, or a message when it has the wrong form."""
    if len(names) == 1:
        if isinstance(result, tuple):
            return None, (f"backward should return {names[0]} alone, got a tuple of {len(result)} values")
        return {names[0]: result}, None
    if not isinstance(result, (tuple, list)) or len(result) != len(names):
        got = f"{len(result)} values" if isinstance(result, (tuple, list)) else type(result).__name__
        return None, f"backward should return ({', '.join(names)}), got {got}"
    return dict(zip(names, result)), None


def _run(spec, cases, forward, backward):
    report = Report(spec.name, spec.what)
    forward = learner_function(forward, "forward")
    backward = learner_function(backward, "backward")
    if forward is None and backward is None:
        raise TypeError(f"check.{spec.name}() needs forward=, backward= or both: the functions to check")
    for index, (label, arrays, kwargs, extra) in enumerate(cases):
        case = report.case(label)
        learner_kwargs = {}
        if forward is not None:
            for key, value in kwargs.items():
                if takes(forward, key):
                    learner_kwargs[key] = value
                elif value != _implicit(spec, key, kwargs):
                    what = "pad" if key == "pad" else key
                    case.skip(f"skipped: your forward has no `{key}` parameter, and this case needs {what} {value}")
                    break
            if case.status == "skip":
                continue
        ref_out, ref_cache = spec.forward(*arrays.values(), **kwargs)
        data = case.data
        data.update(arrays=arrays, kwargs=kwargs, ref_out=ref_out, changed=[], warned=[], **extra)
        if spec.name == "maxpool2d":
            data.update(pool="max", argmax=ref_cache[1])
        elif spec.name == "avgpool2d":
            data.update(pool="avg")
        cache = ref_cache
        if forward is not None:
            try:
                result, changed, warned = call(forward, *arrays.values(), **learner_kwargs)
            except NotWritten as stub:
                report.not_written = getattr(forward, "__name__", "forward")
                report.stub_where = stub.where
                return report
            except LearnerError as error:
                case.fail(f"forward raised {error}")
                data.update(forward_ok=False, error=str(error))
                continue
            names = [list(arrays)[k] if isinstance(k, int) else k for k in changed]
            data["changed"] += [f"forward's {name}" for name in names]
            data["warned"] += warned
            if changed:
                case.fail(f"forward changed its input {', '.join(names)} in place")
            if not (isinstance(result, tuple) and len(result) == 2):
                case.fail(f"forward should return (out, cache), got {type(result).__name__}"
                          + (f" of {len(result)} values" if isinstance(result, tuple) else ""))
                data.update(forward_ok=False, form_error="forward")
                continue
            out, cache = result
            data["out"] = out
            problem = (spec.check_forward(out, arrays, ref_out, data) if hasattr(spec, "check_forward")
                       else compare("out", out, ref_out, dtype=np.float64))
            data["forward_ok"] = problem is None
            data["forward_values_ok"] = problem is None or (
                isinstance(out, np.ndarray) and compare("out", out, ref_out) is None and spec.name != "flatten")
            if problem:
                case.fail("forward: " + problem)
            if not isinstance(out, np.ndarray) or out.shape != ref_out.shape:
                continue  # no dout to send back through a forward of the wrong shape
        if backward is None:
            continue
        dout = _rng(1000 + index).standard_normal(ref_out.shape)
        data["dout"] = dout
        ref_grads = spec.backward(dout, ref_cache)
        ref_grads = dict(zip(spec.grads, ref_grads if isinstance(ref_grads, tuple) else (ref_grads,)))
        if hasattr(spec, "expected_grads"):
            ref_grads = spec.expected_grads(forward, arrays, learner_kwargs, dout, ref_grads, data)
        data["ref_grads"] = ref_grads
        try:
            result, changed, warned = call(backward, dout, cache)
        except NotWritten as stub:
            report.not_written = getattr(backward, "__name__", "backward")
            report.stub_where = stub.where
            return report
        except LearnerError as error:
            case.fail(f"backward raised {error}")
            data["backward_error"] = data["error"] = str(error)
            data["backward_ok"] = {name: False for name in spec.grads}
            continue
        data["warned"] += warned
        if changed:
            data["changed"].append("backward's dout")
            case.fail("backward changed dout in place")
        grads, problem = _as_grads(result, spec.grads)
        if problem:
            case.fail(problem)
            data["form_error"] = "backward"
            data["backward_ok"] = {name: False for name in spec.grads}
            continue
        data["grads"] = grads
        data["backward_ok"], data["values_ok"] = {}, {}
        for name in spec.grads:
            problem = compare(name, grads[name], ref_grads[name], dtype=np.float64,
                              where=_where(spec, name, arrays, kwargs, ref_out))
            data["backward_ok"][name] = problem is None
            # The catalogue reads the numbers: a right gradient in the wrong dtype has only that mistake.
            data["values_ok"][name] = problem is None or compare(name, grads[name], ref_grads[name]) is None
            if problem:
                case.fail(problem)
        if forward is not None and not extra.get("no_fd") and not data["changed"]:
            data["own_ok"] = _own_fd(forward, arrays, learner_kwargs, dout, grads, spec, case)
    diagnose(report, spec.name)
    return report


def _own_fd(forward, arrays, kwargs, dout, grads, spec, case):
    """Whether each gradient agrees with centred differences of the learner's own forward."""
    def f(a):
        return forward(*a.values(), **kwargs)[0]

    ok = True
    rng = _rng(7)
    for name, grad in zip(spec.grads, (grads[g] for g in spec.grads)):
        key = name[1:]
        if not isinstance(grad, np.ndarray) or grad.shape != arrays[key].shape or grad.dtype.kind not in "biuf":
            ok = False
            continue
        direction = rng.standard_normal(arrays[key].shape)
        try:
            with np.errstate(all="ignore"):
                numeric = directional_fd(f, arrays, key, dout, direction)
        except Exception:  # the forward already ran on these inputs; a nudge breaking it is its problem
            return None
        with np.errstate(all="ignore"):
            analytic = float(np.sum(grad * direction))
        if scalar_error(numeric, analytic) > 1e-6:
            ok = False
            if case.data["forward_ok"]:
                case.fail(f"{name} disagrees with finite differences of your forward")
    return ok


# ---- the layers and their cases ----

def _conv_cases():
    settings = [  # (label, x shape, w shape, stride, pad)
        ("3x3 kernel, stride 1, pad 1", (2, 3, 5, 5), (4, 3, 3, 3), 1, 1),
        ("3x3 kernel, stride 1, pad 0", (2, 3, 5, 5), (4, 3, 3, 3), 1, 0),
        ("non-square image and kernel (7x5, 3x2), stride 2, pad 1", (2, 2, 7, 5), (3, 2, 3, 2), 2, 1),
        ("stride 3, pad 0: rows and columns 6-7 are never read", (1, 2, 8, 8), (2, 2, 3, 3), 3, 0),
        ("batch 1, one channel, one filter, stride 1, pad 2", (1, 1, 5, 6), (1, 1, 3, 3), 1, 2),
        ("2x2 kernel, stride 2 (windows do not overlap), one filter", (2, 1, 4, 6), (1, 1, 2, 2), 2, 0),
    ]
    for i, (label, xs, ws, stride, pad) in enumerate(settings):
        rng = _rng(100 + i)
        arrays = {"x": rng.standard_normal(xs), "w": rng.standard_normal(ws), "b": rng.standard_normal(ws[0])}
        yield label, arrays, {"stride": stride, "pad": pad}, {}


def _pool_cases(with_pad):
    settings = [  # (label, x shape, size, stride, pad, ties)
        ("2x2 windows, stride 2", (2, 3, 4, 6), 2, 2, 0, False),
        ("3x3 windows, stride 2: overlapping, non-square image", (1, 2, 7, 5), 3, 2, 0, False),
        ("2x2 windows, stride 1: overlapping", (2, 2, 4, 5), 2, 1, 0, False),
        ("2x2 windows, stride 3: some pixels are never read", (1, 2, 8, 7), 2, 3, 0, False),
        ("batch 1, 3x3 windows, stride 1", (1, 1, 5, 5), 3, 1, 0, False),
        ("tied maxima, 2x2 windows, stride 2", (2, 2, 4, 4), 2, 2, 0, True),
        ("tied maxima, 3x3 windows, stride 1: overlapping", (1, 2, 5, 5), 3, 1, 0, True),
    ]
    if with_pad:
        settings.append(("3x3 windows, stride 2, pad 1", (2, 2, 6, 5), 3, 2, 1, False))
    for i, (label, xs, size, stride, pad, ties) in enumerate(settings):
        rng = _rng(200 + i)
        x = rng.integers(0, 3, xs).astype(np.float64) if ties else _distinct(rng, xs)
        kwargs = {"size": size, "stride": stride}
        if with_pad:
            kwargs["pad"] = pad
        # Where maxima tie the forward is not differentiable: compare with cnnlib's rule only.
        yield label, {"x": x}, kwargs, {"no_fd": ties}


def _dense_cases():
    for i, (label, n, d, m) in enumerate([("batch of 4, 5 -> 3", 4, 5, 3), ("batch 1, 6 -> 2", 1, 6, 2),
                                          ("batch of 3, 1 -> 4", 3, 1, 4)]):
        rng = _rng(300 + i)
        yield label, {"x": rng.standard_normal((n, d)), "w": rng.standard_normal((d, m)),
                      "b": rng.standard_normal(m)}, {}, {}


def _relu_cases():
    for i, (label, shape) in enumerate([("(N, C, H, W) = (2, 3, 4, 5)", (2, 3, 4, 5)), ("(N, D) = (5, 7)", (5, 7)),
                                        ("batch 1, (1, 2, 3, 3)", (1, 2, 3, 3))]):
        yield label, {"x": _away_from_zero(_rng(400 + i), shape)}, {}, {}


def _flatten_cases(any_shape=True):
    shapes = [("(N, C, H, W) = (2, 3, 4, 5)", (2, 3, 4, 5)),
              ("batch 1, (1, 2, 3, 3)", (1, 2, 3, 3)),
              ("(N, C, H, W) = (3, 4, 2, 3), H != W", (3, 4, 2, 3)),
              ("not images: (N, T, D) = (2, 3, 4)", (2, 3, 4)),
              ("already flat: (N, D) = (3, 5)", (3, 5))]
    for i, (label, shape) in enumerate(shapes):
        if any_shape or len(shape) == 4:
            yield label, {"x": _rng(500 + i).standard_normal(shape)}, {}, {}


class _Flatten(_Layer):
    """Flatten may use any order within a sample, as long as its backward undoes it."""

    def check_forward(self, out, arrays, ref_out, data):
        x = arrays["x"]
        if not isinstance(out, np.ndarray):
            return f"out should be an ndarray, got {type(out).__name__}"
        if out.shape != ref_out.shape:
            if out.shape == ref_out.shape[::-1] and x.shape[0] > 1:
                data["mixes_samples"] = True
            return f"out has shape {out.shape}, expected {ref_out.shape}: (N, D), one row of D values per sample"
        if out.dtype != np.float64:
            return f"out has dtype {out.dtype}, expected float64: keep the inputs' precision"
        if not np.array_equal(np.sort(out, axis=None), np.sort(x, axis=None)):
            return "out does not hold the numbers of x (flatten only rearranges them)"
        for n in range(x.shape[0]):
            if not np.array_equal(np.sort(out[n]), np.sort(x[n], axis=None)):
                data["mixes_samples"] = True
                return f"row {n} of out does not hold the numbers of sample {n}"
        if not np.array_equal(out, ref_out):
            data["own_order"] = True
        return None

    def expected_grads(self, forward, arrays, kwargs, dout, ref_grads, data):
        """The learner's forward is a permutation P of x's cells, so dL/dx = P^T dout exactly."""
        if forward is None or (data.get("forward_ok") is not True and not data.get("mixes_samples")):
            return ref_grads
        x = arrays["x"]
        labels = np.arange(x.size, dtype=np.float64).reshape(x.shape)  # each cell's own C-order index
        try:
            source = np.asarray(forward(labels, **kwargs)[0]).astype(np.intp)  # out cell -> x cell
        except Exception:  # it ran on x already; whatever breaks here, the C-order inverse is the answer
            return ref_grads
        if source.size != x.size or not np.array_equal(np.sort(source, axis=None), np.arange(x.size)):
            return ref_grads  # not a rearrangement of x: the C-order inverse is all one can expect
        dx = np.zeros(x.size)
        dx[source.ravel()] = dout.ravel()
        return {"dx": dx.reshape(x.shape)}


def _flatten_backward_ref(dout, cache):
    return flatten_mod.flatten_backward(dout, cache)


_SPECS = {
    "dense": _Layer("dense", ("x", "w", "b"), ("dx", "dw", "db"), dense_mod.dense_forward, dense_mod.dense_backward,
                    what="forward(x, w, b) -> (out, cache); backward(dout, cache) -> (dx, dw, db)"),
    "relu": _Layer("relu", ("x",), ("dx",), activations.relu_forward, activations.relu_backward,
                   what="forward(x) -> (out, cache); backward(dout, cache) -> dx"),
    "conv2d": _Layer("conv2d", ("x", "w", "b"), ("dx", "dw", "db"), conv.conv2d_forward, conv.conv2d_backward,
                     options=("stride", "pad"), implicit={"stride": 1, "pad": 0},
                     what="forward(x, w, b, stride=, pad=) -> (out, cache); backward(dout, cache) -> (dx, dw, db)"),
    "maxpool2d": _Layer("maxpool2d", ("x",), ("dx",), pool.maxpool2d_forward, pool.maxpool2d_backward,
                        options=("size", "stride", "pad"), implicit={"pad": 0},
                        what="forward(x, size=, stride=, pad=) -> (out, cache); backward(dout, cache) -> dx"),
    "avgpool2d": _Layer("avgpool2d", ("x",), ("dx",), pool.avgpool2d_forward, pool.avgpool2d_backward,
                        options=("size", "stride"),
                        what="forward(x, size=, stride=) -> (out, cache); backward(dout, cache) -> dx"),
    "flatten": _Flatten("flatten", ("x",), ("dx",), flatten_mod.flatten_forward, _flatten_backward_ref,
                        what="forward(x) -> (out, cache); backward(dout, cache) -> dx"),
}


def _positional(name, args):
    if args:
        raise TypeError(f"check.{name} takes your functions by name: check.{name}(forward=my_forward), "
                        f"check.{name}(backward=my_backward) or both, not check.{name}({args[0]!r})")


def _layer_check(name, cases, kwargs):
    _check_kwargs(name, kwargs, ("forward", "backward"))
    report = _run(_SPECS[name], list(cases), kwargs.get("forward"), kwargs.get("backward"))
    if name == "flatten" and any(c.data.get("own_order") for c in report.cases) and report.passed:
        report.note("your Flatten uses another order than cnnlib's (C order, the last axis fastest). That is "
                    "fine as long as the dense weights after it were learned, or ported, in the same order.")
    return report


def dense(*args, **kwargs):
    """Check a dense layer: forward(x, w, b) -> (out, cache), backward(dout, cache) -> (dx, dw, db)."""
    _positional("dense", args)
    return _layer_check("dense", _dense_cases(), kwargs)


def relu(*args, **kwargs):
    """Check ReLU: forward(x) -> (out, cache), backward(dout, cache) -> dx."""
    _positional("relu", args)
    return _layer_check("relu", _relu_cases(), kwargs)


def conv2d(*args, **kwargs):
    """Check a convolution: forward(x, w, b, stride=, pad=) -> (out, cache), backward -> (dx, dw, db).

    Cases: pad 0, 1 and 2, stride 1, 2 and 3, non-square image and kernel, batch 1, one and several
    channels and filters, windows that overlap and windows that do not.
    """
    _positional("conv2d", args)
    return _layer_check("conv2d", _conv_cases(), kwargs)


def maxpool2d(*args, **kwargs):
    """Check max pooling: forward(x, size=, stride=, pad=) -> (out, cache), backward -> dx.

    Ties go to the first maximum in row-major order (cnnlib's and PyTorch's rule).
    """
    _positional("maxpool2d", args)
    return _layer_check("maxpool2d", _pool_cases(with_pad=True), kwargs)


def avgpool2d(*args, **kwargs):
    """Check average pooling: forward(x, size=, stride=) -> (out, cache), backward -> dx."""
    _positional("avgpool2d", args)
    return _layer_check("avgpool2d", _pool_cases(with_pad=False), kwargs)


def flatten(*args, order=None, any_shape=True, **kwargs):
    """Check Flatten: forward(x) -> (out, cache), backward(dout, cache) -> dx, for x of any (N, ...) shape.

    Any order within a sample passes, as long as each row holds its own sample's numbers and the
    backward sends each number of dout back to the cell the forward took it from. order="C" or
    "F" also asks for that order within each sample (lesson 7's F-order pair). any_shape=False
    keeps to images, (N, C, H, W), for a function written for them only (lesson 7's loops).
    """
    _positional("flatten", args)
    if order not in (None, "C", "F"):
        raise TypeError(f"check.flatten(order=...) takes 'C', 'F' or None (any order), got {order!r}")
    report = _layer_check("flatten", _flatten_cases(any_shape=bool(any_shape)), kwargs)
    if order is not None and kwargs.get("forward") is not None:
        _flatten_order(report, order)
    return report


def _flatten_order(report, order):
    """Fail the cases whose forward, right in every other way, flattens in another order than `order`."""
    for case in report.cases:
        out, x = case.data.get("out"), case.data.get("arrays", {}).get("x")
        if case.data.get("forward_ok") and isinstance(out, np.ndarray) and x is not None:
            want = np.stack([sample.ravel(order=order) for sample in x])
            if not np.array_equal(out, want):
                case.fail(f"forward: each row should list its sample in {order} order "
                          f"({'the first' if order == 'F' else 'the last'} axis fastest)")
                case.data["wrong_order"] = order
    report.notes[:] = [n for n in report.notes if "another order than cnnlib's" not in n]
    if any(c.data.get("wrong_order") for c in report.cases):
        report.hint(f"Your forward flattens each sample, but not in {order} order: "
                    + ("use `x.reshape(x.shape[0], -1, order=\"F\")`, and unflatten with "
                       "`dout.reshape(shape, order=\"F\")`" if order == "F" else
                       "use `x.reshape(x.shape[0], -1)`, and unflatten with `dout.reshape(shape)`")
                    + " (lesson 7, 'Does the flatten order matter?').")


# ---- softmax cross-entropy ----

def _softmax_cases():
    rng = _rng(600)
    yield "batch of 4, 5 classes", rng.standard_normal((4, 5)) * 2, rng.integers(0, 5, 4)
    yield "batch 1, 3 classes", rng.standard_normal((1, 3)), np.array([2])
    yield "2 classes, batch of 3", rng.standard_normal((3, 2)), np.array([1, 0, 1])
    yield "large logits (around 1000)", 1000 + rng.standard_normal((3, 4)) * 5, np.array([0, 3, 1])
    yield ("a label whose probability underflows (logits -1000 to 1000)",
           np.array([[1000.0, 0.0, -1000.0], [3.0, -2.0, 1.0]]), np.array([2, 0]))


def softmax_cross_entropy(fn=None, *args, **kwargs):
    """Check fn(logits, y) -> (loss, dlogits), the mean cross-entropy of softmax and its gradient."""
    _check_kwargs("softmax_cross_entropy", kwargs, ())
    if args:
        raise TypeError("check.softmax_cross_entropy(fn) takes one function, fn(logits, y) -> (loss, dlogits)")
    fn = learner_function(fn, "fn")
    if fn is None:
        raise TypeError("check.softmax_cross_entropy(fn) needs the function to check")
    report = Report("softmax_cross_entropy", "fn(logits, y) -> (loss, dlogits); loss the batch mean")
    for label, logits, y in _softmax_cases():
        case = report.case(label)
        ref_loss, ref_dl = losses.softmax_cross_entropy(logits, y)
        data = case.data
        data.update(arrays={"logits": logits, "y": y}, ref_loss=ref_loss, ref_grads={"dlogits": ref_dl},
                    changed=[], warned=[], backward_ok={})
        try:
            result, changed, warned = call(fn, logits, y)
        except NotWritten as stub:
            report.not_written = getattr(fn, "__name__", "fn")
            report.stub_where = stub.where
            return report
        except LearnerError as error:
            case.fail(f"raised {error}")
            data["backward_ok"]["dlogits"] = False
            data["error"] = str(error)
            continue
        data["changed"] = changed
        data["warned"] = warned
        if changed:
            case.fail("changed its input logits in place")
        if not (isinstance(result, tuple) and len(result) == 2):
            case.fail("should return (loss, dlogits)")
            data["backward_ok"]["dlogits"] = False
            data["form_error"] = "fn"
            continue
        loss, dl = result
        try:
            loss = float(loss)
        except (TypeError, ValueError):
            case.fail(f"loss should be a number, got {type(loss).__name__}")
            continue
        data.update(loss=loss, grads={"dlogits": dl})
        overflow = any("overflow" in w for w in warned) or (not np.isfinite(loss) and np.isnan(loss))
        if isinstance(dl, np.ndarray) and dl.dtype.kind == "f" and np.isnan(dl).any():
            overflow = True
        data["overflow"] = overflow
        data["log_underflow"] = bool(np.isinf(loss)) and not overflow
        if abs(loss - ref_loss) > TOLERANCE * max(1.0, abs(ref_loss)) or not np.isfinite(loss):
            data["loss_ok"] = False
            case.fail(f"loss is {loss:.6g}, expected {ref_loss:.6g}")
        problem = compare("dlogits", dl, ref_dl, dtype=np.float64)
        data["backward_ok"]["dlogits"] = problem is None
        if problem:
            case.fail(problem)
        if warned:
            case.fail("NumPy warned: " + "; ".join(warned))
    diagnose(report, "softmax_cross_entropy")
    return report
