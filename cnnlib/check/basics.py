"""Checks of lessons 2-4's own building blocks: the gradient check, softmax, the output size, one-channel conv.

- `numerical_gradient(fn)`: fn(f, x, dout, h=1e-5) -> grad, against the exact gradient of
  sum(f(x) * dout) for functions whose gradient is known (lesson 2).
- `rel_error(fn)`: fn(a, b) -> the largest elementwise relative error, against cnnlib's (lesson 2).
- `softmax(fn)` and `log_softmax(fn)`: fn(z) -> (N, K), including logits around 1000 (lesson 3).
- `output_size(fn)`: fn(H, KH, stride=1, pad=0) -> H' (lesson 4).
- `conv2d_one_channel(fn)`: fn(x, k, b, stride=1, pad=0) -> out (H', W') for one (H, W) image and
  one (KH, KW) kernel, against cnnlib.conv2d_forward (lesson 4).

Like the layer checks, each one runs fixed, seeded float64 cases, never raises because of the
learner's code, and names the classic mistakes (mistakes.py, section "lessons 2-4") it recognises.
"""

import numbers

import numpy as np

from .. import conv, gradcheck
from ._core import LearnerError, NotWritten, Report, TOLERANCE, _check_kwargs, call, compare, learner_function, takes
from .mistakes import diagnose

SEED = 20261207


def _rng(i):
    return np.random.default_rng([SEED, i])


def _start(name, fn, kwargs, what):
    _check_kwargs(name, kwargs, ())
    fn = learner_function(fn, "fn")
    if fn is None:
        raise TypeError(f"check.{name}(fn) needs the function to check")
    return fn, Report(name, what)


def _run_case(report, case, fn, *args, **kwargs):
    """Call the learner's fn for one case: (ok, result); ok None means 'stop, not written'."""
    try:
        result, changed, warned = call(fn, *args, **kwargs)
    except NotWritten as stub:
        report.not_written = getattr(fn, "__name__", "fn")
        report.stub_where = stub.where
        return None, None
    except LearnerError as error:
        case.fail(f"raised {error}")
        case.data["raised"] = str(error)
        return False, None
    case.data.update(changed=changed, warned=warned)
    return True, result


def scaled_error(a, b):
    """max |a - b| / max |b| (floored at 1e-8): the error relative to the gradient's size."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return np.inf
    if a.size == 0:
        return 0.0
    with np.errstate(all="ignore"):
        err = float(np.max(np.abs(a - b)) / max(1e-8, float(np.max(np.abs(b)))))
    return err if np.isfinite(err) else np.inf


# ---- numerical_gradient ----

def _signed_away(rng, shape, low=0.5, high=1.5):
    """Values with |v| in [low, high], either sign: no gradient near 0, curvature everywhere."""
    return rng.uniform(low, high, shape) * rng.choice([-1.0, 1.0], shape)


def _numgrad_cases():
    """(label, f, x, dout, exact(x, dout), view): exact is the gradient of sum(f(x) * dout)."""
    rng = _rng(700)
    x = _signed_away(rng, (3, 4))
    yield ("elementwise x**3, x of shape (3, 4)", lambda x_: x_ ** 3, x, rng.standard_normal((3, 4)),
           lambda x_, d: 3 * x_ ** 2 * d, False)

    rng = _rng(701)
    W = rng.standard_normal((3, 4))
    x = rng.standard_normal((2, 3))
    yield ("cross-terms: tanh(x @ W), x (2, 3) -> out (2, 4), every output reads every x in its row",
           lambda x_: np.tanh(x_ @ W), x, rng.standard_normal((2, 4)),
           lambda x_, d: (d * (1 - np.tanh(x_ @ W) ** 2)) @ W.T, False)

    rng = _rng(702)
    x = rng.standard_normal((2, 2, 3))
    yield ("f returns a view of x, like Flatten: x.reshape(2, -1), x (2, 2, 3) -> out (2, 6)",
           lambda x_: x_.reshape(x_.shape[0], -1), x, rng.standard_normal((2, 6)),
           lambda x_, d: d.reshape(x_.shape), True)

    rng = _rng(703)
    x = _signed_away(rng, (2, 3, 2, 2))
    yield ("a batch of images (2, 3, 2, 2), f = sum over channels of x**2 -> out (2, 2, 2)",
           lambda x_: (x_ ** 2).sum(axis=1), x, rng.standard_normal((2, 2, 2)),
           lambda x_, d: 2 * x_ * d[:, None], False)

    rng = _rng(704)
    c = rng.standard_normal(5)
    x = rng.standard_normal(5)
    yield ("a scalar f, like a loss: sum(c * exp(x)), x (5,), dout a number",
           lambda x_: float(np.sum(c * np.exp(x_))), x, float(rng.uniform(0.5, 1.5)),
           lambda x_, d: d * c * np.exp(x_), False)


def one_sided(f, x, dout, h, forward=True):
    """(sum(f(x + h) * dout) - sum(f(x) * dout)) / h elementwise (or x - h for forward=False)."""
    x = x.copy()
    base = float(np.sum(np.array(f(x), dtype=np.float64) * dout))
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h if forward else old - h
        moved = float(np.sum(np.array(f(x), dtype=np.float64) * dout))
        x[idx] = old
        grad[idx] = (moved - base) / h if forward else (base - moved) / h
    return grad


def numerical_gradient(fn=None, **kwargs):
    """Check fn(f, x, dout, h=1e-5) -> grad, the centred-difference gradient of sum(f(x) * dout).

    Cases: elementwise and cross-term functions, a function returning a view of x (as Flatten
    does), an image-shaped x, a scalar f with a number as dout. The result is compared with the
    exact gradient; x must be as it was after the call.
    """
    fn, report = _start("numerical_gradient", fn, kwargs,
                        "fn(f, x, dout, h=1e-5) -> grad of sum(f(x) * dout), shaped like x")
    h = 1e-5
    for label, f, x, dout, exact, view in _numgrad_cases():
        case = report.case(label)
        want = exact(x, dout)
        case.data.update(f=f, x=x, dout=dout, want=want, h=h, view=view,
                         ones=exact(x, np.ones_like(dout) if np.ndim(dout) else 1.0))
        extra = {"h": h} if takes(fn, "h") else {}
        ok, grad = _run_case(report, case, fn, f, x, dout, **extra)
        if ok is None:
            return report
        if not ok:
            continue
        if case.data["changed"]:
            case.fail("x is not as it was after the call: every nudged element must be put back")
        case.data["grad"] = grad
        problem = compare("grad", grad, want, dtype=np.float64)
        if problem is None:
            continue
        if isinstance(grad, np.ndarray) and grad.shape == want.shape and grad.dtype == np.float64:
            error = scaled_error(grad, want)
            if error <= TOLERANCE:
                continue  # near-zero elements differ by rounding only: the gradient is right at its scale
            worst = np.unravel_index(int(np.argmax(np.abs(grad - want))), want.shape) if want.ndim else ()
            place = f"grad[{', '.join(str(int(i)) for i in worst)}]" if want.ndim else "grad"
            problem = (f"grad is off by {error:.1e} of the gradient's size (a centred difference is within "
                       f"about 1e-10); the worst is {place}: {float(grad[worst]):.10g} where the exact "
                       f"gradient is {float(want[worst]):.10g}")
        case.data["grad_ok"] = False
        case.fail(problem)
    diagnose(report, "numerical_gradient")
    return report


# ---- rel_error ----

def _rel_error_cases():
    rng = _rng(710)
    a = rng.standard_normal((3, 4))
    yield "arrays that agree to about 1e-9", a, a * (1 + 1e-9 * rng.standard_normal((3, 4)))
    a = rng.standard_normal((4, 5))
    b = a + 1e-9 * rng.standard_normal((4, 5))
    b[2, 3] = a[2, 3] * 1.02
    yield "one element 2% off, the others agree to 1e-9: the largest error counts", a, b
    a = rng.uniform(1, 2, (2, 3))
    b = a * (1 - 1e-3)
    b[1, 1] = a[1, 1] * 1.5
    yield "a - b negative at the worst element, positive elsewhere", a, b
    yield "opposite signs: a = [1, -2, 3], b = [-1, -2, 3.5]", np.array([1.0, -2.0, 3.0]), np.array([-1.0, -2.0, 3.5])
    yield "two zero arrays (a layer whose gradient is 0): the error is 0", np.zeros((2, 3)), np.zeros((2, 3))
    yield "tiny gradients, 1e-9 and 3e-9, below the floor 1e-8", np.array([1e-9, 2e-9]), np.array([3e-9, 2e-9])
    yield "two numbers, not arrays: rel_error(1.0, 0.5)", 1.0, 0.5


def rel_error_variants(a, b):
    """What rel_error returns with each classic mistake, by name."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    with np.errstate(all="ignore"):
        return {
            "no floor": float(np.max(np.abs(a - b) / (np.abs(a) + np.abs(b)))),
            "mean": float(np.mean(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)))),
            "no abs in the numerator": float(np.max((a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)))),
            "no abs in the denominator": float(np.max(np.abs(a - b) / np.maximum(1e-8, a + b))),
            "no abs": float(np.max((a - b) / np.maximum(1e-8, a + b))),
            "|a + b| in the denominator": float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a + b)))),
        }


def _same_number(got, want):
    if np.isnan(want):
        return bool(np.isnan(got))
    if np.isinf(want):
        return got == want
    return abs(got - want) <= 1e-9 * abs(want) + 1e-300


def rel_error(fn=None, **kwargs):
    """Check fn(a, b) -> max |a - b| / max(1e-8, |a| + |b|), one number, as cnnlib.rel_error."""
    fn, report = _start("rel_error", fn, kwargs, "fn(a, b) -> max over elements of |a - b| / max(1e-8, |a| + |b|)")
    for label, a, b in _rel_error_cases():
        case = report.case(label)
        want = gradcheck.rel_error(a, b)
        case.data.update(a=a, b=b, want=want)
        ok, result = _run_case(report, case, fn, a, b)
        if ok is None:
            return report
        if not ok:
            continue
        if isinstance(result, np.ndarray) and result.size != 1:
            case.fail(f"should return one number (the largest error), got an array of shape {result.shape}")
            continue
        try:
            got = float(result)
        except (TypeError, ValueError):
            case.fail(f"should return one number, got {type(result).__name__}")
            continue
        case.data["got"] = got
        if not _same_number(got, want):
            case.data["value_ok"] = False
            case.fail(f"returned {got:.6g}, expected {want:.6g}")
        if case.data["changed"]:
            case.fail("changed its input in place")
    diagnose(report, "rel_error")
    return report


# ---- softmax and log_softmax ----

def softmax_reference(z):
    shifted = z - z.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def log_softmax_reference(z):
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _softmax_cases():
    rng = _rng(720)
    yield "batch of 4, 5 classes", rng.standard_normal((4, 5)) * 2
    yield "batch 1, 3 classes", rng.standard_normal((1, 3))
    yield "3 x 3 (square: a max or sum over the wrong axis keeps the right shape)", rng.standard_normal((3, 3)) * 2
    yield "large logits (around 1000)", 1000 + rng.standard_normal((3, 4)) * 5
    yield ("rows far apart: one around 1000, one around -1000",
           np.array([[1000.0, 1001.0, 998.0], [-1000.0, -1002.0, -999.0]]))
    yield "a probability below float64's range: logits [0, -800]", np.array([[0.0, -800.0], [1.0, 2.0]])


def softmax_variants(z, log):
    """The learner's output under each classic mistake, by name (NaN where it breaks down)."""
    def finish(shifted, axis, keep):
        e = np.exp(shifted)
        s = e.sum(axis=axis, keepdims=keep)
        if log:
            return shifted - np.log(s)
        return e / s

    out = {}
    with np.errstate(all="ignore"):
        out["no shift"] = finish(z, 1, True)
        out["global max"] = finish(z - z.max(), 1, True)
        out["max over axis 0"] = finish(z - z.max(axis=0, keepdims=True), 1, True)
        out["sum over axis 0"] = finish(z - z.max(axis=1, keepdims=True), 0, True)
        if z.shape[0] == z.shape[1]:
            out["max without keepdims"] = finish(z - z.max(axis=1), 1, True)
            out["sum without keepdims"] = finish(z - z.max(axis=1, keepdims=True), 1, False)
        if log:
            out["log of softmax"] = np.log(softmax_reference(z))
    return out


def _softmax_check(name, fn, kwargs, log):
    fn, report = _start(name, fn, kwargs, f"fn(z) -> (N, K) {'log-' if log else ''}probabilities, one row per sample")
    reference = log_softmax_reference if log else softmax_reference
    for label, z in _softmax_cases():
        case = report.case(label)
        want = reference(z)
        case.data.update(z=z, want=want, log=log)
        ok, out = _run_case(report, case, fn, z)
        if ok is None:
            return report
        if not ok:
            continue
        case.data["out"] = out
        problem = compare("out", out, want, dtype=np.float64)
        if problem:
            case.data["out_ok"] = False
            case.fail(problem)
        if case.data["changed"]:
            case.fail("changed its input z in place")
        if case.data["warned"]:
            case.fail("NumPy warned: " + "; ".join(case.data["warned"]))
    diagnose(report, name)
    return report


def softmax(fn=None, **kwargs):
    """Check fn(z) -> softmax of each row of z (N, K), stable for logits around 1000."""
    return _softmax_check("softmax", fn, kwargs, log=False)


def log_softmax(fn=None, **kwargs):
    """Check fn(z) -> log of the softmax of each row of z (N, K), finite where a probability underflows."""
    return _softmax_check("log_softmax", fn, kwargs, log=True)


# ---- output size ----

_SIZE_CASES = [  # (H, KH, stride, pad)
    (8, 3, 1, 0), (8, 3, 1, 1), (8, 3, 2, 1), (7, 3, 2, 1), (8, 5, 3, 2), (8, 3, 3, 0), (9, 2, 2, 0), (28, 5, 1, 2),
]


def size_variants(H, KH, stride, pad):
    """H' under each classic mistake, by name."""
    return {
        "pad left out": (H - KH) // stride + 1,
        "pad added once": (H + pad - KH) // stride + 1,
        "no + 1": (H + 2 * pad - KH) // stride,
        "no division by the stride": H + 2 * pad - KH + 1,
        "true division": (H + 2 * pad - KH) / stride + 1,
    }



def _expressible(fn, case, stride, pad):
    """The stride and pad keywords to pass fn, or None (the case skipped) when it cannot take them."""
    learner_kwargs = {}
    for key, value in (("stride", stride), ("pad", pad)):
        if takes(fn, key):
            learner_kwargs[key] = value
        elif value != {"stride": 1, "pad": 0}[key]:
            case.skip(f"skipped: your function has no `{key}` parameter, and this case needs {key} {value}")
            return None
    return learner_kwargs


def output_size(fn=None, **kwargs):
    """Check fn(H, KH, stride=1, pad=0) -> H' = (H + 2*pad - KH) // stride + 1, a whole number."""
    fn, report = _start("output_size", fn, kwargs, "fn(H, KH, stride=1, pad=0) -> H', the number of window positions")
    for H, KH, stride, pad in _SIZE_CASES:
        want = (H + 2 * pad - KH) // stride + 1
        case = report.case(f"H={H}, KH={KH}, stride={stride}, pad={pad}: H' = {want}")
        learner_kwargs = _expressible(fn, case, stride, pad)
        if learner_kwargs is None:
            continue
        case.data.update(args=(H, KH, stride, pad), want=want)
        ok, got = _run_case(report, case, fn, H, KH, **learner_kwargs)
        if ok is None:
            return report
        if not ok:
            continue
        case.data["got"] = got
        if isinstance(got, (bool, np.bool_)) or not isinstance(got, numbers.Real):
            case.fail(f"should return a number, got {type(got).__name__}")
        elif not isinstance(got, numbers.Integral):
            case.fail(f"returned {got!r}, a {type(got).__name__}: a size is a whole number, use // (floor division)")
        elif got != want:
            case.fail(f"returned {got}, expected {want}")
    diagnose(report, "output_size")
    return report


# ---- one channel, one filter ----

def conv_one_reference(x, k, b, stride=1, pad=0, flip=False, stride_in_window=True):
    """cnnlib's conv on one (H, W) image and one (KH, KW) kernel; or a mistaken variant of it."""
    if flip:
        k = k[::-1, ::-1]
    if stride_in_window:
        out = conv.conv2d_forward(x[None, None], np.ascontiguousarray(k)[None, None], np.array([b]),
                                  stride=stride, pad=pad)[0]
        return out[0, 0]
    xp = np.pad(x, pad)
    KH, KW = k.shape
    Ho, Wo = (xp.shape[0] - KH) // stride + 1, (xp.shape[1] - KW) // stride + 1
    return np.array([[np.sum(xp[i:i + KH, j:j + KW] * k) + b for j in range(Wo)] for i in range(Ho)])


def _conv_one_cases():
    settings = [  # (label, image, kernel, stride, pad)
        ("6x5 image, 3x3 kernel, stride 1, pad 0", (6, 5), (3, 3), 1, 0),
        ("8x8 image, 3x3 kernel, stride 1, pad 1: the output is as large as the image", (8, 8), (3, 3), 1, 1),
        ("7x5 image, non-square 3x2 kernel, stride 2, pad 1", (7, 5), (3, 2), 2, 1),
        ("8x8 image, 3x3 kernel, stride 3, pad 0: rows and columns 6-7 are never read", (8, 8), (3, 3), 3, 0),
        ("5x6 image, 2x2 kernel, stride 1, pad 2", (5, 6), (2, 2), 1, 2),
    ]
    for i, (label, xs, ks, stride, pad) in enumerate(settings):
        rng = _rng(730 + i)
        yield label, rng.standard_normal(xs), rng.standard_normal(ks), float(rng.uniform(0.2, 1.0)), stride, pad


def conv2d_one_channel(fn=None, **kwargs):
    """Check fn(x, k, b, stride=1, pad=0) -> out (H', W'), one (H, W) image and one (KH, KW) kernel.

    The same sum as cnnlib.conv2d_forward with one image, one channel and one filter: cross-correlation,
    no flip; zeros padded on every side; the window of out[i, j] starts at (i*stride, j*stride).
    """
    fn, report = _start("conv2d_one_channel", fn, kwargs,
                        "fn(x, k, b, stride=1, pad=0) -> out (H', W'), x (H, W), k (KH, KW), b a number")
    for label, x, k, b, stride, pad in _conv_one_cases():
        case = report.case(label)
        learner_kwargs = _expressible(fn, case, stride, pad)
        if learner_kwargs is None:
            continue
        want = conv_one_reference(x, k, b, stride, pad)
        case.data.update(x=x, k=k, b=b, stride=stride, pad=pad, want=want)
        ok, out = _run_case(report, case, fn, x, k, b, **learner_kwargs)
        if ok is None:
            return report
        if not ok:
            continue
        case.data["out"] = out
        problem = compare("out", out, want, dtype=np.float64)
        if problem:
            case.data["out_ok"] = False
            if isinstance(out, np.ndarray) and out.ndim == 2 and out.shape != want.shape:
                for what, size in _size_names(x.shape, k.shape, stride, pad).items():
                    if out.shape == size:
                        problem += f": that is the size {what}"
                        break
            case.fail(problem)
        if case.data["changed"]:
            case.fail("changed its input in place")
    diagnose(report, "conv2d_one_channel")
    return report


_SIZE_WORDS = {"pad left out": "without the padding", "pad added once": "with the padding added on one side only",
               "no + 1": "without the + 1", "no division by the stride": "without the division by the stride"}


def _size_names(xs, ks, stride, pad):
    """{description: (H', W')} for each mistaken size formula that gives another shape than the right one."""
    rows, cols = size_variants(xs[0], ks[0], stride, pad), size_variants(xs[1], ks[1], stride, pad)
    right = ((xs[0] + 2 * pad - ks[0]) // stride + 1, (xs[1] + 2 * pad - ks[1]) // stride + 1)
    names = {}
    for what, words in _SIZE_WORDS.items():
        shape = (rows[what], cols[what])
        if shape != right:
            names[words] = shape
    return names
