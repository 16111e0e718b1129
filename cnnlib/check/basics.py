"""Checks of lessons 2-4's own building blocks: the gradient check, softmax, the output size, one-channel conv.

- `numerical_gradient(fn)`: fn(f, x, dout, h=1e-5) -> grad, against the exact gradient of
  sum(f(x) * dout) for functions whose gradient is known (lesson 2).
- `rel_error(fn)`: fn(a, b) -> the largest elementwise relative error, against cnnlib's (lesson 2).
- `softmax(fn)` and `log_softmax(fn)`: fn(z) -> (N, K), including logits around 1000 (lesson 3).
- `output_size(fn)`: fn(H, KH, stride=1, pad=0) -> H' (lesson 4).
- `conv2d_one_channel(fn)`: fn(x, k, b, stride=1, pad=0) -> out (H', W') for one (H, W) image and
  one (KH, KW) kernel, against cnnlib.conv2d_forward (lesson 4). Its cases are recorded as a
  batch of one image with one filter, so every convolution entry of the catalogue reads them.
"""

import numbers

import numpy as np

from .. import gradcheck
from . import mistakes, reference as ref
from ._core import (NotWritten, Report, TOLERANCE, attempt, choose, compare, learner_function, pair_text, refuse,
                    rng, same, shown)


def run(name, what, fn, names, cases, judge):
    """Run fn on every case: cases yield (label, args, kwargs, inputs, settings), names name the
    arguments; judge(case, value) records the result against the right one."""
    fn, _ = learner_function(fn, "fn")
    if fn is None:
        raise TypeError(f"check.{name}(fn) needs the function to check")
    report = Report(name, what)
    try:
        for label, args, kwargs, inputs, settings in cases:
            case = report.case(label)
            case.inputs.update(inputs)
            case.settings.update(settings)
            chosen = choose(case, fn, kwargs, {"stride": 1, "pad": 0}, "function")
            if chosen is None:
                continue
            o = attempt(fn, args, chosen, names=names)
            if case.ran(o, "", report, getattr(fn, "__name__", "fn")):
                judge(case, o.value)
    except NotWritten:
        return report
    mistakes.diagnose(report, name)
    return report


# ---- numerical_gradient ----
def _signed_away(r, shape):
    """Values with |v| in [0.5, 1.5], either sign: no gradient near 0, curvature everywhere."""
    return r.uniform(0.5, 1.5, shape) * r.choice([-1.0, 1.0], shape)


def _numgrad_cases():
    r = rng(700)
    x = _signed_away(r, (3, 4))
    yield ("elementwise x**3, x of shape (3, 4)", lambda v: v ** 3, x, r.standard_normal((3, 4)),
           lambda v, d: 3 * v ** 2 * d, False)
    r = rng(701)
    W, x = r.standard_normal((3, 4)), r.standard_normal((2, 3))
    yield ("cross-terms: tanh(x @ W), x (2, 3) -> out (2, 4), every output reads every x in its row",
           lambda v: np.tanh(v @ W), x, r.standard_normal((2, 4)), lambda v, d: (d * (1 - np.tanh(v @ W) ** 2)) @ W.T,
           False)
    r = rng(702)
    x = r.standard_normal((2, 2, 3))
    yield ("f returns a view of x, like Flatten: x.reshape(2, -1), x (2, 2, 3) -> out (2, 6)",
           lambda v: v.reshape(v.shape[0], -1), x, r.standard_normal((2, 6)), lambda v, d: d.reshape(v.shape), True)
    r = rng(703)
    x = _signed_away(r, (2, 3, 2, 2))
    yield ("a batch of images (2, 3, 2, 2), f = sum over channels of x**2 -> out (2, 2, 2)",
           lambda v: (v ** 2).sum(axis=1), x, r.standard_normal((2, 2, 2)), lambda v, d: 2 * v * d[:, None], False)
    r = rng(704)
    c, x = r.standard_normal(5), r.standard_normal(5)
    yield ("a scalar f, like a loss: sum(c * exp(x)), x (5,), dout a number", lambda v: float(np.sum(c * np.exp(v))),
           x, float(r.uniform(0.5, 1.5)), lambda v, d: d * c * np.exp(v), False)


def _judge_grad(case, grad):
    want = case.inputs["exact"]
    case.got["grad"], case.want["grad"] = grad, want
    problem = compare("grad", grad, want, dtype=np.float64)
    if problem is None:
        return
    if isinstance(grad, np.ndarray) and grad.shape == want.shape and grad.dtype == np.float64:
        error = float(np.max(np.abs(grad - want)) / max(1e-8, float(np.max(np.abs(want)))))
        if error <= TOLERANCE:
            return  # near-zero elements differ by rounding only: the gradient is right at its scale
        worst = np.unravel_index(int(np.argmax(np.abs(grad - want))), want.shape)
        place = f"grad[{', '.join(str(int(i)) for i in worst)}]" if want.ndim else "grad"
        problem = (f"grad is off by {error:.1e} of the gradient's size (a centred difference is within about "
                   f"1e-10); the worst is {place}: {float(grad[worst]):.10g} where the exact gradient is "
                   f"{float(want[worst]):.10g}")
    case.wrong.add("grad")
    case.fail(problem)


@shown
def numerical_gradient(fn=None, *args, **unknown):
    """Check fn(f, x, dout, h=1e-5) -> grad, the centred-difference gradient of sum(f(x) * dout).

    Cases: elementwise and cross-term functions, a function returning a view of x (as Flatten
    does), an image-shaped x, a scalar f with a number as dout. The result is compared with the
    exact gradient; x must be as it was after the call.
    """
    refuse("numerical_gradient", "check.numerical_gradient(fn)", args, unknown)

    def cases():
        for label, f, x, dout, exact, view in _numgrad_cases():
            inputs = {"f": f, "x": x, "dout": dout, "h": 1e-5, "exact": exact(x, dout)}
            yield label, [f, x, dout], {"h": 1e-5}, inputs, {"view": view}

    def judge(case, grad):
        if case.changed:
            case.problems[:] = [p for p in case.problems if "in place" not in p] + [
                "x is not as it was after the call: every nudged element must be put back"]
        _judge_grad(case, grad)

    return run("numerical_gradient", "fn(f, x, dout, h=1e-5) -> grad of sum(f(x) * dout), shaped like x", fn,
               ["f", "x", "dout"], cases(), judge)


# ---- rel_error ----
def _rel_error_cases():
    r = rng(710)
    a = r.standard_normal((3, 4))
    yield "arrays that agree to about 1e-9", a, a * (1 + 1e-9 * r.standard_normal((3, 4)))
    a = r.standard_normal((4, 5))
    b = a + 1e-9 * r.standard_normal((4, 5))
    b[2, 3] = a[2, 3] * 1.02
    yield "one element 2% off, the others agree to 1e-9: the largest error counts", a, b
    a = r.uniform(1, 2, (2, 3))
    b = a * (1 - 1e-3)
    b[1, 1] = a[1, 1] * 1.5
    yield "a - b negative at the worst element, positive elsewhere", a, b
    yield "opposite signs: a = [1, -2, 3], b = [-1, -2, 3.5]", np.array([1.0, -2.0, 3.0]), np.array([-1.0, -2.0, 3.5])
    yield "two zero arrays (a layer whose gradient is 0): the error is 0", np.zeros((2, 3)), np.zeros((2, 3))
    yield "tiny gradients, 1e-9 and 3e-9, below the floor 1e-8", np.array([1e-9, 2e-9]), np.array([3e-9, 2e-9])
    yield "an entry 1e5 times below the largest, off by its size", np.array([2.0, -1, 1e-5]), np.array([2.0, -1, 2e-5])
    yield "two numbers, not arrays: rel_error(1.0, 0.5)", 1.0, 0.5


@shown
def rel_error(fn=None, *args, **unknown):
    """Check fn(a, b) -> max |a - b| / max(|a| + |b|, max(1e-8, 0.01 max(|a| + |b|))), as cnnlib.rel_error."""
    refuse("rel_error", "check.rel_error(fn)", args, unknown)

    def judge(case, result):
        if isinstance(result, np.ndarray) and result.size != 1:
            case.fail(f"should return one number (the largest error), got an array of shape {result.shape}")
            case.facts.add("form")
            return
        try:
            got = float(result)
        except (TypeError, ValueError):
            case.fail(f"should return one number, got {type(result).__name__}")
            case.facts.add("form")
            return
        want = gradcheck.rel_error(case.inputs["a"], case.inputs["b"])
        case.got["value"], case.want["value"] = got, float(want)
        if not same(got, float(want)):
            case.wrong.add("value")
            case.fail("returned {}, expected {}".format(*pair_text(got, want)))

    return run("rel_error", "fn(a, b) -> max over elements of |a - b| / max(|a| + |b|, floor)", fn, ["a", "b"],
               ((label, [a, b], {}, {"a": a, "b": b}, {}) for label, a, b in _rel_error_cases()), judge)


# ---- softmax and log_softmax ----
def _softmax_cases():
    r = rng(720)
    yield "batch of 4, 5 classes", r.standard_normal((4, 5)) * 2
    yield "batch 1, 3 classes", r.standard_normal((1, 3))
    yield "3 x 3 (square: a max or sum over the wrong axis keeps the right shape)", r.standard_normal((3, 3)) * 2
    yield "large logits (around 1000)", 1000 + r.standard_normal((3, 4)) * 5
    yield "rows far apart: one around 1000, one around -1000", np.array([[1000.0, 1001.0, 998.0],
                                                                         [-1000.0, -1002.0, -999.0]])
    yield "a probability below float64's range: logits [0, -800]", np.array([[0.0, -800.0], [1.0, 2.0]])


def _softmax_check(name, fn, log):
    reference = ref.log_softmax if log else ref.softmax
    return run(name, f"fn(z) -> (N, K) {'log-' if log else ''}probabilities, one row per sample", fn, ["z"],
               ((label, [z], {}, {"z": z}, {}) for label, z in _softmax_cases()),
               lambda case, out: case.judge("out", out, reference(case.inputs["z"])))


@shown
def softmax(fn=None, *args, **unknown):
    """Check fn(z) -> softmax of each row of z (N, K), stable for logits around 1000."""
    refuse("softmax", "check.softmax(fn)", args, unknown)
    return _softmax_check("softmax", fn, log=False)


@shown
def log_softmax(fn=None, *args, **unknown):
    """Check fn(z) -> log of the softmax of each row of z (N, K), finite where a probability underflows."""
    refuse("log_softmax", "check.log_softmax(fn)", args, unknown)
    return _softmax_check("log_softmax", fn, log=True)


# ---- output size ----
_SIZE_CASES = [(8, 3, 1, 0), (8, 3, 1, 1), (8, 3, 2, 1), (7, 3, 2, 1), (8, 5, 3, 2), (8, 3, 3, 0), (9, 2, 2, 0),
               (28, 5, 1, 2)]


@shown
def output_size(fn=None, *args, **unknown):
    """Check fn(H, KH, stride=1, pad=0) -> H' = (H + 2*pad - KH) // stride + 1, a whole number."""
    refuse("output_size", "check.output_size(fn)", args, unknown)

    def cases():
        for H, KH, stride, pad in _SIZE_CASES:
            want = ref.out_size(H, KH, stride, pad)
            yield (f"H={H}, KH={KH}, stride={stride}, pad={pad}: H' = {want}", [H, KH], {"stride": stride, "pad": pad},
                   {"H": H, "KH": KH}, {"axes": [(H, KH, stride, pad)], "stride": stride, "pad": pad})

    def judge(case, got):
        want = ref.out_size(*case.settings["axes"][0])
        case.got["size"], case.want["size"] = got, want
        if isinstance(got, (bool, np.bool_)) or not isinstance(got, numbers.Real):
            case.fail(f"should return a number, got {type(got).__name__}")
        elif not isinstance(got, numbers.Integral):
            case.fail(f"returned {got!r}, a {type(got).__name__}: a size is a whole number, use // (floor division)")
        elif got != want:
            case.fail(f"returned {got}, expected {want}")
        if case.status == "fail":
            case.wrong.add("size")

    return run("output_size", "fn(H, KH, stride=1, pad=0) -> H', the number of window positions", fn, ["H", "KH"],
               cases(), judge)


# ---- one channel, one filter ----
def _conv_one_cases():
    for i, (label, xs, ks, stride, pad) in enumerate([
            ("6x5 image, 3x3 kernel, stride 1, pad 0", (6, 5), (3, 3), 1, 0),
            ("8x8 image, 3x3 kernel, stride 1, pad 1: the output is as large as the image", (8, 8), (3, 3), 1, 1),
            ("7x5 image, non-square 3x2 kernel, stride 2, pad 1", (7, 5), (3, 2), 2, 1),
            ("8x8 image, 3x3 kernel, stride 3, pad 0: rows and columns 6-7 are never read", (8, 8), (3, 3), 3, 0),
            ("5x6 image, 2x2 kernel, stride 1, pad 2", (5, 6), (2, 2), 1, 2)]):
        r = rng(730 + i)
        x, k, b = r.standard_normal(xs), r.standard_normal(ks), float(r.uniform(0.2, 1.0))
        axes = [(xs[0], ks[0], stride, pad), (xs[1], ks[1], stride, pad)]
        yield (label, [x, k, b], {"stride": stride, "pad": pad},
               {"x": x[None, None], "w": k[None, None], "b": np.array([b])}, {"stride": stride, "pad": pad, "axes": axes})


def _judge_conv_one(case, out):
    i = case.inputs
    want = ref.conv_forward(i["x"], i["w"], i["b"], case.settings["stride"], case.settings["pad"])
    case.judge("out", out, want[0, 0])
    if isinstance(out, np.ndarray) and out.ndim == 2:
        case.got["out"], case.want["out"] = out[None, None], want
        case.got["size"], case.want["size"] = tuple(int(n) for n in out.shape), tuple(want.shape[2:])
        if case.got["size"] != case.want["size"]:
            case.wrong.add("size")


@shown
def conv2d_one_channel(fn=None, *args, **unknown):
    """Check fn(x, k, b, stride=1, pad=0) -> out (H', W'), one (H, W) image and one (KH, KW) kernel:
    cnnlib.conv2d_forward's sum (cross-correlation, zero padding) for one image, channel and filter."""
    refuse("conv2d_one_channel", "check.conv2d_one_channel(fn)", args, unknown)
    return run("conv2d_one_channel", "fn(x, k, b, stride=1, pad=0) -> out (H', W'), x (H, W), k (KH, KW), b a number",
               fn, ["x", "k", "b"], _conv_one_cases(), _judge_conv_one)
