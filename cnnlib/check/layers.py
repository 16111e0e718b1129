"""Checks of a learner's layer functions: dense, ReLU, conv2d, max/avg pooling, Flatten, softmax,
batch normalisation, dropout.

Fixed, seeded float64 cases, random upstream gradients, nonzero biases. The forward is compared
with cnnlib's; the backward with cnnlib's and, given the learner's forward, with centred
differences of it along random directions (a consistent but wrong pair is told apart from a
backward wrong for its own forward). Dropout's forward is judged by the mask it drew (any way of
drawing passes), and its backward by that mask. A backward whose forward is still a stub runs on the cache of
the stub's fallback, or of cnnlib's forward.
"""

import collections

import numpy as np

from .. import activations, batchnorm, conv, dense as dense_mod, dropout as dropout_mod, flatten as flatten_mod, losses
from .. import pool
from . import mistakes
from ._core import (NotWritten, Report, _copy, array_problem, attempt, directional_fd, learner_function, pair_text,
                    pixel_place, refuse, rng, same, scalar_error, shown, TOLERANCE, choose)
from .basics import run
from .reference import pair


def away_from_zero(r, shape):
    """Normal draws pushed at least 0.05 from 0: finite differences never straddle ReLU's kink."""
    v = r.standard_normal(shape)
    return v + np.where(v >= 0, 0.05, -0.05)


def _distinct(r, shape):
    """Values at least 1e-3 apart (a shuffled grid): no tie, no window max within a step h of another."""
    size = int(np.prod(shape))
    return (r.permutation(size).reshape(shape) - size / 2) * 1e-2 + r.uniform(-1e-3, 1e-3, shape)


def _conv_cases():
    for i, (label, xs, ws, stride, pad) in enumerate([
            ("3x3 kernel, stride 1, pad 1", (2, 3, 5, 5), (4, 3, 3, 3), 1, 1),
            ("3x3 kernel, stride 1, pad 0", (2, 3, 5, 5), (4, 3, 3, 3), 1, 0),
            ("non-square image and kernel (7x5, 3x2), stride 2, pad 1", (2, 2, 7, 5), (3, 2, 3, 2), 2, 1),
            ("stride 3, pad 0: rows and columns 6-7 are never read", (1, 2, 8, 8), (2, 2, 3, 3), 3, 0),
            ("batch 1, one channel, one filter, stride 1, pad 2", (1, 1, 5, 6), (1, 1, 3, 3), 1, 2),
            ("2x2 kernel, stride 2 (windows do not overlap), one filter", (2, 1, 4, 6), (1, 1, 2, 2), 2, 0)]):
        r = rng(100 + i)
        yield label, {"x": r.standard_normal(xs), "w": r.standard_normal(ws), "b": r.standard_normal(ws[0])}, \
            {"stride": stride, "pad": pad}, False


def _pool_cases(kind):
    equal = "tied maxima" if kind == "max" else "many equal values"
    settings = [("2x2 windows, stride 2", (2, 3, 4, 6), 2, 2, 0, False),
                ("3x3 windows, stride 2: overlapping, non-square image", (1, 2, 7, 5), 3, 2, 0, False),
                ("2x2 windows, stride 1: overlapping", (2, 2, 4, 5), 2, 1, 0, False),
                ("2x2 windows, stride 3: some pixels are never read", (1, 2, 8, 7), 2, 3, 0, False),
                ("batch 1, 3x3 windows, stride 1", (1, 1, 5, 5), 3, 1, 0, False),
                (f"{equal}, 2x2 windows, stride 2", (2, 2, 4, 4), 2, 2, 0, True),
                (f"{equal}, 3x3 windows, stride 1: overlapping", (1, 2, 5, 5), 3, 1, 0, True)]
    if kind == "max":
        settings.append(("3x3 windows, stride 2, pad 1", (2, 2, 6, 5), 3, 2, 1, False))
    for i, (label, xs, size, stride, pad, ties) in enumerate(settings):
        r = rng(200 + i)
        x = r.integers(0, 3, xs).astype(np.float64) if ties else _distinct(r, xs)
        kwargs = {"size": size, "stride": stride, **({"pad": pad} if kind == "max" else {})}
        # Where maxima tie the forward is not differentiable: compared with cnnlib's rule only.
        yield label, {"x": x}, kwargs, ties


def _dense_cases():
    for i, (label, n, d, m) in enumerate([("batch of 4, 5 -> 3", 4, 5, 3), ("batch 1, 6 -> 2", 1, 6, 2),
                                          ("batch of 3, 1 -> 4", 3, 1, 4)]):
        r = rng(300 + i)
        yield label, {"x": r.standard_normal((n, d)), "w": r.standard_normal((d, m)), "b": r.standard_normal(m)}, \
            {}, False


def _relu_cases():
    for i, (label, shape) in enumerate([("(N, C, H, W) = (2, 3, 4, 5)", (2, 3, 4, 5)), ("(N, D) = (5, 7)", (5, 7)),
                                        ("batch 1, (1, 2, 3, 3)", (1, 2, 3, 3))]):
        yield label, {"x": away_from_zero(rng(400 + i), shape)}, {}, False
    x = away_from_zero(rng(403), (3, 4))
    x[:, ::2] = 0.0  # ReLU's kink: the course takes the slope there as 0
    yield "x with exact zeros, (3, 4): the slope at 0 is 0", {"x": x}, {}, True


def _flatten_cases(any_shape):
    for i, (label, shape) in enumerate([
            ("(N, C, H, W) = (2, 3, 4, 5)", (2, 3, 4, 5)), ("batch 1, (1, 2, 3, 3)", (1, 2, 3, 3)),
            ("(N, C, H, W) = (3, 4, 2, 3), H != W", (3, 4, 2, 3)), ("not images: (N, T, D) = (2, 3, 4)", (2, 3, 4)),
            ("already flat: (N, D) = (3, 5)", (3, 5))]):
        if any_shape or len(shape) == 4:
            yield label, {"x": rng(500 + i).standard_normal(shape)}, {}, False


def _bn_cases():
    for i, (label, shape, kwargs, stats) in enumerate([
            ("training, (4, 3, 3, 5), momentum 0.1", (4, 3, 3, 5), {}, True),
            ("training, one channel, (3, 1, 4, 2), momentum 0.3, eps 1e-3", (3, 1, 4, 2),
             {"momentum": 0.3, "eps": 1e-3}, True),
            ("training without running statistics (None), (2, 2, 3, 3)", (2, 2, 3, 3), {}, False),
            ("eval (training=False): the running statistics, (5, 3, 2, 3)", (5, 3, 2, 3), {"training": False}, True),
            ("eval, batch of 1, (1, 2, 4, 3)", (1, 2, 4, 3), {"training": False}, True)]):
        r, C = rng(900 + i), shape[1]
        arrays = {"x": r.normal(2.0, 1.5, shape), "gamma": r.uniform(0.5, 1.5, C), "beta": r.standard_normal(C)}
        stats = {"running_mean": r.standard_normal(C), "running_var": r.uniform(0.5, 2.0, C)} if stats else {}
        yield label, arrays, dict({"training": True, "momentum": 0.1}, **kwargs, **stats), False


def _dropout_cases():
    for i, (label, shape, kwargs) in enumerate([
            ("p 0.3, (40, 50): the share kept and the scale", (40, 50), {"p": 0.3}),
            ("p 0.5, images (3, 4, 5, 6)", (3, 4, 5, 6), {"p": 0.5}),
            ("eval (training=False), p 0.5: out is x", (4, 6), {"p": 0.5, "training": False}),
            ("p 0: out is x", (3, 5), {"p": 0.0})]):
        yield label, {"x": away_from_zero(rng(950 + i), shape)}, dict(kwargs, rng=rng(960 + i)), True


def _own_mask(case, forward, chosen, value, ref_out, ref_cache):
    """Dropout: the right out and cache for the mask the learner's forward drew, once that mask is
    checked: its share of kept values, and drawn from rng (a generator of the same seed gives the
    same mask; the same generator, a new one at the next call)."""
    keep, scale, shape = ref_cache
    out = value[0] if isinstance(value, tuple) and len(value) == 2 else None
    if keep is None or not isinstance(out, np.ndarray) or out.shape != shape or "rng" not in chosen:
        return ref_out, ref_cache
    x, p, keep, again = case.inputs["x"], case.settings["p"], out != 0, _copy(chosen["rng"])
    outs = [attempt(forward, [x], dict(chosen, rng=again), keep=["rng"]).value for _ in range(2)]
    outs = [o[0] if isinstance(o, tuple) and len(o) == 2 else None for o in outs]
    if not same(outs[0], out) or same(outs[1], out):
        case.fail("forward: a generator of the same seed must give the same mask, and one generator a new mask "
                  "at every call: draw it from rng")
        case.facts.add("own rng")
    share, sigma = keep.mean(), np.sqrt(p * (1 - p) / keep.size)
    if abs(share - (1 - p)) > 5 * sigma:
        case.fail(f"forward kept {share:.1%} of the values, where each is kept with probability 1 - p = {1 - p:g}")
        if abs(share - p) <= 5 * sigma:
            case.facts.add("keeps p")
    return x * keep * scale, (keep, scale, shape)


# A layer as a check needs it: the inputs' and gradients' names, cnnlib's pair, what it looks like,
# and what a function without one of the keywords is taken to do.
# state: arguments updated in place (judged after the forward); adapt: the reference for the learner's own draw.
_Spec = collections.namedtuple("_Spec", "name inputs grads forward backward what implicit state adapt",
                               defaults=[{}, (), None])
_SPECS = {s.name: s for s in [
    _Spec("dense", ("x", "w", "b"), ("dx", "dw", "db"), dense_mod.dense_forward, dense_mod.dense_backward,
          "forward(x, w, b) -> (out, cache); backward(dout, cache) -> (dx, dw, db)"),
    _Spec("relu", ("x",), ("dx",), activations.relu_forward, activations.relu_backward,
          "forward(x) -> (out, cache); backward(dout, cache) -> dx"),
    _Spec("conv2d", ("x", "w", "b"), ("dx", "dw", "db"), conv.conv2d_forward, conv.conv2d_backward,
          "forward(x, w, b, stride=, pad=) -> (out, cache); backward(dout, cache) -> (dx, dw, db)",
          {"stride": 1, "pad": 0}),
    _Spec("maxpool2d", ("x",), ("dx",), pool.maxpool2d_forward, pool.maxpool2d_backward,
          "forward(x, size=, stride=, pad=) -> (out, cache); backward(dout, cache) -> dx", {"pad": 0}),
    _Spec("avgpool2d", ("x",), ("dx",), pool.avgpool2d_forward, pool.avgpool2d_backward,
          "forward(x, size=, stride=) -> (out, cache); backward(dout, cache) -> dx"),
    _Spec("flatten", ("x",), ("dx",), flatten_mod.flatten_forward, flatten_mod.flatten_backward,
          "forward(x) -> (out, cache); backward(dout, cache) -> dx"),
    _Spec("batchnorm2d", ("x", "gamma", "beta"), ("dx", "dgamma", "dbeta"), batchnorm.batchnorm2d_forward,
          batchnorm.batchnorm2d_backward, "forward(x, gamma, beta, training=, running_mean=, running_var=, "
          "momentum=, eps=) -> (out, cache); backward(dout, cache) -> (dx, dgamma, dbeta)",
          {"training": True, "momentum": 0.1, "eps": 1e-5}, ("running_mean", "running_var")),
    _Spec("dropout", ("x",), ("dx",), dropout_mod.dropout_forward, dropout_mod.dropout_backward,
          "forward(x, p=, training=, rng=) -> (out, cache); backward(dout, cache) -> dx", {"training": True},
          adapt=_own_mask)]}


def _axes(x, kernel, kwargs):
    """The size formula's (H, K, stride, pad) of each image axis, for the catalogue's size entries."""
    stride, pad = pair(kwargs.get("stride") or kernel), pair(kwargs.get("pad", 0))
    return [(x.shape[2 + a], kernel[a], stride[a], pad[a]) for a in range(2)]


def _place(case, spec, ref_out):
    """Describe an element of dx: a corner/edge/inner pixel, or one no window reads."""
    x, s = case.inputs["x"], case.settings
    if x.ndim != 4 or spec.name not in ("conv2d", "maxpool2d", "avgpool2d"):
        return None
    kernel = case.inputs["w"].shape[2:] if "w" in case.inputs else pair(s["size"])
    (sh, sw), (ph, pw) = pair(s.get("stride") or kernel), pair(s.get("pad", 0))
    read = np.zeros((x.shape[2] + 2 * ph, x.shape[3] + 2 * pw), dtype=bool)
    for i, j in np.ndindex(ref_out.shape[2:]):
        read[i * sh:i * sh + kernel[0], j * sw:j * sw + kernel[1]] = True
    read = read[ph:ph + x.shape[2], pw:pw + x.shape[3]]
    return lambda index: pixel_place(index, x.shape[2:], read)


def _judge_flatten(case, out, x, ref_out):
    """Any order within a sample passes, as long as each row holds its own sample's numbers."""
    case.got["out"], case.want["out"] = out, ref_out
    problem = array_problem("out", out)
    out = np.asarray(out) if problem is None else out
    if problem is None and out.shape != ref_out.shape:
        problem = f"out has shape {out.shape}, expected {ref_out.shape}: (N, D), one row of D values per sample"
        if out.shape == ref_out.shape[::-1] and len(x) > 1:
            case.facts.add("mixes samples")
    elif problem is None and out.dtype != np.float64:
        problem = f"out has dtype {out.dtype}, expected float64: keep the inputs' precision"
    elif problem is None and not np.array_equal(np.sort(out, axis=None), np.sort(x, axis=None)):
        problem = "out does not hold the numbers of x (flatten only rearranges them)"
    elif problem is None:
        for n in range(len(x)):
            if not np.array_equal(np.sort(out[n]), np.sort(x[n], axis=None)):
                case.facts.add("mixes samples")
                problem = f"row {n} of out does not hold the numbers of sample {n}"
                break
        else:
            if not np.array_equal(out, ref_out):
                case.facts.add("own order")
    if problem:
        case.fail("forward: " + problem)
        case.wrong.add("out")
    return problem is None


def _flatten_adjoint(forward, x, kwargs, dout):
    """The learner's forward is a permutation P of x's cells, so dL/dx = P^T dout exactly."""
    labels = np.arange(x.size, dtype=np.float64).reshape(x.shape)  # each cell's own C-order index
    o = attempt(forward, [labels], kwargs)
    source = np.asarray(o.value[0]).astype(np.intp) if o.ok and isinstance(o.value, tuple) else None
    if source is None or source.size != x.size or not np.array_equal(np.sort(source, axis=None), np.arange(x.size)):
        return None
    dx = np.zeros(x.size)
    dx[source.ravel()] = dout.ravel()
    return dx.reshape(x.shape)


def _run(spec, cases, forward, backward):
    report = Report(spec.name, spec.what)
    forward, fallback = learner_function(forward, "forward")
    backward, _ = learner_function(backward, "backward")
    if forward is None and backward is None:
        raise TypeError(f"check.{spec.name}() needs forward=, backward= or both: the functions to check, "
                        f"e.g. check.{spec.name}(forward=my_forward, backward=my_backward)")
    stand_in = forward_stub = None  # what runs in place of a forward that is still a stub
    try:
        for index, (label, arrays, kwargs, no_fd) in enumerate(cases):
            case = report.case(label)
            implicit = dict(spec.implicit, **({"stride": kwargs["size"]} if "size" in kwargs else {}))
            chosen = choose(case, forward, kwargs, implicit, "forward") if forward is not None else kwargs
            if chosen is None:
                continue
            ref_kw = _copy(kwargs)  # cnnlib's forward moves its own running statistics, draws from its own rng
            ref_out, ref_cache = spec.forward(*arrays.values(), **ref_kw)
            case.inputs.update(arrays)
            case.settings.update(kwargs)
            kernel = arrays["w"].shape[2:] if spec.name == "conv2d" else pair(kwargs["size"]) if "size" in kwargs else 0
            if kernel:
                case.settings["axes"] = _axes(arrays["x"], kernel, kwargs)
            cache, own = ref_cache, forward is not None and stand_in is None
            if own:
                chosen = _copy(chosen)
                o = attempt(forward, list(arrays.values()), chosen, names=list(arrays), keep=spec.state)
                if o.stub is not None and backward is not None:
                    forward_stub = (getattr(forward, "__name__", "forward"), o.stub)
                    stand_in, own = fallback or "cnnlib", False
                    report.note(f"your forward, {forward_stub[0]}, is not written yet: the backward was checked on "
                                f"the cache of {'its fallback' if fallback else 'cnnlib.' + spec.forward.__name__}.")
                else:
                    if spec.adapt and o.ok:
                        ref_out, ref_cache = spec.adapt(case, forward, chosen, o.value, ref_out, ref_cache)
                    if not _forward_case(report, case, spec, o, forward, arrays, ref_out,
                                         [(k, chosen[k], ref_kw[k]) for k in spec.state if k in chosen]):
                        continue
                    cache = o.value[1]
            if stand_in not in (None, "cnnlib"):
                cache = stand_in(*arrays.values(), **_copy(chosen))[1]
            if backward is not None:
                _backward_case(report, case, spec, index, forward if own else None, chosen, backward, cache,
                               ref_cache, ref_out, no_fd)
    except NotWritten:
        if forward_stub and report.stubs:
            report.stubs.insert(0, forward_stub)
        return report
    mistakes.diagnose(report, spec.name)
    return report


def _forward_case(report, case, spec, o, forward, arrays, ref_out, state=()):
    """Judge the learner's forward (and what it updates in place, state: (name, got, want)); True when its
    cache can go to the backward."""
    if not case.ran(o, "forward", report, getattr(forward, "__name__", "forward")):
        return False
    if not (isinstance(o.value, tuple) and len(o.value) == 2):
        n = f" of {len(o.value)} values" if isinstance(o.value, tuple) else ""
        case.fail(f"forward should return (out, cache), got {type(o.value).__name__}{n}")
        case.facts.add("form")
        return False
    out = o.value[0]
    for name, got, want in state:
        case.judge(name, got.copy(), want, prefix="forward: ")
    if spec.name == "flatten":
        _judge_flatten(case, out, arrays["x"], ref_out)
    else:
        case.judge("out", out, ref_out, prefix="forward: ")
    if isinstance(out, np.ndarray) and out.ndim == 4 and "axes" in case.settings:
        case.got["size"], case.want["size"] = tuple(int(n) for n in out.shape[2:]), tuple(ref_out.shape[2:])
        if case.got["size"] != case.want["size"]:
            case.wrong.add("size")
    return isinstance(out, np.ndarray) and out.shape == ref_out.shape  # else no dout can go back through it


def _backward_case(report, case, spec, index, forward, chosen, backward, cache, ref_cache, ref_out, no_fd):
    arrays = {k: case.inputs[k] for k in spec.inputs}
    dout = rng(1000 + index).standard_normal(ref_out.shape)
    case.inputs["dout"] = dout
    ref_grads = spec.backward(dout, ref_cache)
    ref_grads = dict(zip(spec.grads, ref_grads if isinstance(ref_grads, tuple) else (ref_grads,)))
    if spec.name == "flatten" and forward is not None and ("out" not in case.wrong or "mixes samples" in case.facts):
        adjoint = _flatten_adjoint(forward, arrays["x"], chosen, dout)
        ref_grads["dx"] = ref_grads["dx"] if adjoint is None else adjoint
    if forward is None:
        case.facts.add("backward alone")
    o = attempt(backward, [dout, cache], names=["dout", "cache"])
    if not case.ran(o, "backward", report, getattr(backward, "__name__", "backward")):
        if o.error and forward is not None and attempt(backward, [dout, ref_cache]).ok:
            case.facts.add("cache mismatch")
        return
    result = o.value
    if len(spec.grads) == 1 and isinstance(result, tuple):
        case.fail(f"backward should return {spec.grads[0]} alone, got a tuple of {len(result)} values")
        case.facts.add("form")
        return
    if len(spec.grads) > 1 and not (isinstance(result, (tuple, list)) and len(result) == len(spec.grads)):
        got = f"{len(result)} values" if isinstance(result, (tuple, list)) else type(result).__name__
        case.fail(f"backward should return ({', '.join(spec.grads)}), got {got}")
        case.facts.add("form")
        return
    grads = dict(zip(spec.grads, result if len(spec.grads) > 1 else (result,)))
    for name in spec.grads:
        case.judge(name, grads[name], ref_grads[name], where=_place(case, spec, ref_out) if name == "dx" else None)
    if forward is not None and not no_fd and not case.changed:
        _own_fd(case, forward, arrays, chosen, dout, grads, spec, quiet="out" in case.wrong)


def _own_fd(case, forward, arrays, kwargs, dout, grads, spec, quiet=False):
    """Whether each gradient agrees with centred differences of the learner's own forward."""
    r, agree = rng(7), True
    for name in spec.grads:
        key, grad = name[1:], grads[name]
        if not isinstance(grad, np.ndarray) or grad.shape != arrays[key].shape or grad.dtype.kind not in "biuf":
            agree = False
            continue
        direction = r.standard_normal(arrays[key].shape)
        try:
            with np.errstate(all="ignore"):
                numeric = directional_fd(lambda a: forward(*a.values(), **_copy(kwargs))[0], arrays, key, dout,
                                         direction)
        except (Exception, SystemExit):  # it ran on these inputs already; a nudge breaking it tells nothing here
            return
        with np.errstate(all="ignore"):
            analytic = float(np.sum(grad * direction))
        if scalar_error(numeric, analytic) > 1e-6:
            agree = False
            if not quiet:
                case.fail(f"{name} disagrees with finite differences of your forward")
    case.facts.add("own fd ok" if agree else "own fd wrong")


def _layer_check(name, cases, forward, backward, args, unknown):
    refuse(name, f"check.{name}(forward=my_forward), check.{name}(backward=my_backward) or both", args, unknown)
    return _run(_SPECS[name], list(cases), forward, backward)


@shown
def dense(*args, forward=None, backward=None, **unknown):
    """Check a dense layer: forward(x, w, b) -> (out, cache), backward(dout, cache) -> (dx, dw, db)."""
    return _layer_check("dense", _dense_cases(), forward, backward, args, unknown)


@shown
def relu(*args, forward=None, backward=None, **unknown):
    """Check ReLU: forward(x) -> (out, cache), backward(dout, cache) -> dx (slope 0 at x = 0)."""
    return _layer_check("relu", _relu_cases(), forward, backward, args, unknown)


@shown
def conv2d(*args, forward=None, backward=None, **unknown):
    """Check a convolution: forward(x, w, b, stride=, pad=) -> (out, cache), backward -> (dx, dw, db)."""
    return _layer_check("conv2d", _conv_cases(), forward, backward, args, unknown)


@shown
def maxpool2d(*args, forward=None, backward=None, **unknown):
    """Check max pooling: forward(x, size=, stride=, pad=) -> (out, cache), backward -> dx (a tie's
    gradient goes to its first maximum in row-major order, as in cnnlib and PyTorch)."""
    return _layer_check("maxpool2d", _pool_cases("max"), forward, backward, args, unknown)


@shown
def avgpool2d(*args, forward=None, backward=None, **unknown):
    """Check average pooling: forward(x, size=, stride=) -> (out, cache), backward -> dx."""
    return _layer_check("avgpool2d", _pool_cases("avg"), forward, backward, args, unknown)


@shown
def batchnorm2d(*args, forward=None, backward=None, **unknown):
    """Check batch normalisation: forward(x, gamma, beta, training=, running_mean=, running_var=, momentum=,
    eps=) -> (out, cache), backward(dout, cache) -> (dx, dgamma, dbeta). Training normalises each channel
    over (N, H, W) with the batch's mean and biased variance and moves the running statistics in place
    (the variance's from the unbiased one); eval normalises with them and leaves them as they are."""
    return _layer_check("batchnorm2d", _bn_cases(), forward, backward, args, unknown)


@shown
def dropout(*args, forward=None, backward=None, **unknown):
    """Check inverted dropout: forward(x, p=, training=, rng=) -> (out, cache), backward(dout, cache) -> dx.
    Training keeps each value with probability 1 - p, the mask drawn from rng, and scales the kept ones
    by 1 / (1 - p); eval and p = 0 give x. Any way of drawing passes: the forward is judged by its
    mask's share of kept values, the backward by the mask of its own forward."""
    return _layer_check("dropout", _dropout_cases(), forward, backward, args, unknown)


@shown
def flatten(*args, forward=None, backward=None, order=None, any_shape=True, **unknown):
    """Check Flatten: forward(x) -> (out, cache), backward(dout, cache) -> dx, for x of any (N, ...) shape.

    Any order within a sample passes, as long as each row holds its own sample's numbers and the
    backward sends each number of dout back to the cell the forward took it from. order="C" or
    "F" also asks for that order within each sample (lesson 7's F-order pair). any_shape=False
    keeps to images, (N, C, H, W), for a function written for them only (lesson 7's loops).
    """
    if order not in (None, "C", "F"):
        raise TypeError(f"check.flatten(order=...) takes 'C', 'F' or None (any order), got {order!r}")
    report = _layer_check("flatten", _flatten_cases(bool(any_shape)), forward, backward, args, unknown)
    wrong = [c for c in report.cases if order and "out" in c.got and "out" not in c.wrong and not np.array_equal(
        c.got["out"], np.stack([s.ravel(order=order) for s in c.inputs["x"]]))]
    for case in wrong:
        case.fail(f"forward: each row should list its sample in {order} order "
                  f"({'the first' if order == 'F' else 'the last'} axis fastest)")
        case.facts.add("wanted order")
    if wrong:
        mistakes.diagnose(report, "flatten")
    elif not order and report.passed and any("own order" in c.facts for c in report.cases):
        report.note("your Flatten uses another order than cnnlib's (C order, the last axis fastest). That is fine "
                    "as long as the dense weights after it were learned, or ported, in the same order.")
    return report


# ---- softmax cross-entropy ----
def _softmax_cases():
    r = rng(600)
    yield "batch of 4, 5 classes", r.standard_normal((4, 5)) * 2, r.integers(0, 5, 4)
    yield "batch 1, 3 classes", r.standard_normal((1, 3)), np.array([2])
    yield "2 classes, batch of 3", r.standard_normal((3, 2)), np.array([1, 0, 1])
    yield "large logits (around 1000)", 1000 + r.standard_normal((3, 4)) * 5, np.array([0, 3, 1])
    yield ("a label whose probability underflows (logits -1000 to 1000)",
           np.array([[1000.0, 0.0, -1000.0], [3.0, -2.0, 1.0]]), np.array([2, 0]))


@shown
def softmax_cross_entropy(fn=None, *args, **unknown):
    """Check fn(logits, y) -> (loss, dlogits), the mean cross-entropy of softmax and its gradient."""
    refuse("softmax_cross_entropy", "check.softmax_cross_entropy(fn), fn(logits, y) -> (loss, dlogits)", args,
           unknown)

    def judge(case, value):
        ref_loss, ref_dl = losses.softmax_cross_entropy(case.inputs["logits"], case.inputs["y"])
        if not (isinstance(value, tuple) and len(value) == 2):
            case.fail(f"should return (loss, dlogits), got {type(value).__name__}")
            return case.facts.add("form")
        if not (isinstance(value[0], (int, float, np.number)) or isinstance(value[0], np.ndarray) and
                value[0].ndim == 0 and value[0].dtype.kind in "iuf"):
            case.fail(f"loss should be a number, got {type(value[0]).__name__}")
            return case.facts.add("form")
        case.got["loss"], case.want["loss"] = float(value[0]), float(ref_loss)
        if scalar_error(value[0], ref_loss) > TOLERANCE:
            case.wrong.add("loss")
            case.fail("loss is {} where {} was expected".format(*pair_text(value[0], ref_loss)))
        case.judge("dlogits", value[1], ref_dl)

    return run("softmax_cross_entropy", "fn(logits, y) -> (loss, dlogits); loss the batch mean", fn, ["logits", "y"],
               ((label, [z, y], {}, {"logits": z, "y": y}, {}) for label, z, y in _softmax_cases()), judge)
