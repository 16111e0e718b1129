"""Checks for lessons 5-7: the pieces around the layers, written as small functions in the lessons.

- `scatter_one(fn)`: lesson 5's one-channel dx, every output sending dout * w back onto its window.
- `pool_output_size(fn)`: lesson 6's (H', W') of a pooling layer.
- `permute_dense_weights(fn)`: lesson 7's dense weights for an F-order Flatten.
- `flatten_dense(fn)`: lesson 7's Flatten + dense as one contraction (np.einsum or np.tensordot).
- `port_dense_weights(fn)`: lesson 7's dense weights of a channels-last network, ported to channels-first.

Each check runs a fixed set of small float64 cases (seeded), compares the learner's result with
the right one and names the mistakes the catalogue (mistakes.py) recognises. The layers of these
lessons (conv backward, pooling, Flatten) are checked by check.conv2d, check.maxpool2d,
check.avgpool2d and check.flatten.

`reference` holds working versions of the lessons' functions, with the lessons' signatures and
caches, built on cnnlib: the exercise editions' fallbacks while a stub is not written yet.
"""

import numpy as np

from .. import conv, dense as dense_mod, flatten as flatten_mod, pool
from ._core import LearnerError, NotWritten, Report, call, compare, learner_function
from .mistakes import diagnose

SEED = 20261207


def _rng(i):
    return np.random.default_rng([SEED, i])


def _run(name, what, fn, cases, args_of, expected, judge=None):
    """Run fn on every case: args_of(case) -> its arguments, expected(case) -> the right result.

    judge(got, ref, case) -> problem or None compares the result (default: compare as an array).
    Each case's data gets `got` (None when fn raised), `ref` and `ok`, which the catalogue reads.
    """
    fn = learner_function(fn, "fn")
    if fn is None:
        raise TypeError(f"check.{name}(fn) needs the function to check")
    report = Report(name, what)
    for label, data in cases:
        case = report.case(label)
        case.data.update(data)
        args = args_of(case.data)
        ref = expected(case.data)
        case.data.update(ref=ref, got=None, ok=False)
        try:
            got, changed, warned = call(fn, *args)
        except NotWritten as stub:
            report.not_written = getattr(fn, "__name__", "fn")
            report.stub_where = stub.where
            return report
        except LearnerError as error:
            case.fail(f"raised {error}")
            continue
        if isinstance(got, list):
            got = tuple(got)
        if isinstance(got, tuple) and all(isinstance(g, (int, np.integer)) and not isinstance(g, bool) for g in got):
            got = tuple(int(g) for g in got)  # sizes: plain ints, as the catalogue compares tuples
        case.data["got"] = got
        problem = (judge or _judge_array)(got, ref, case.data)
        if problem:
            case.fail(problem)
        if changed:
            case.fail(f"changed its input {', '.join(str(k) for k in changed)} in place: work on a copy")
        if warned:
            case.fail("NumPy warned: " + "; ".join(warned))
        case.data["ok"] = case.status == "pass"
    diagnose(report, name)
    return report


def _judge_array(got, ref, data):
    return compare(data.get("what", "result"), got, ref, dtype=np.float64)


class reference:
    """The lessons' functions, with their signatures and caches, done by cnnlib (exercise fallbacks)."""

    @staticmethod
    def scatter_one(dout, w, stride, pad, shape):
        """Lesson 5: dout (H', W'), w (KH, KW) -> dx (H, W), one channel and one filter."""
        _, cache = conv.conv2d_forward(np.zeros((1, 1, *shape)), w[None, None], np.zeros(1), stride=stride, pad=pad)
        return conv.conv2d_backward(np.asarray(dout, dtype=np.float64)[None, None], cache)[0][0, 0]

    @staticmethod
    def pool_output_size(H, W, size, stride):
        """Lesson 6: (H', W') of a size x size pooling window moved by `stride`."""
        out, _ = pool.maxpool2d_forward(np.zeros((1, 1, H, W)), size=size, stride=stride)
        return tuple(int(n) for n in out.shape[2:])

    @staticmethod
    def maxpool_forward_loop(x, size=2, stride=None):
        """Lesson 6: out and the cache (x, argmax, size, stride), with int size and stride."""
        stride = size if stride is None else stride
        out, cache = pool.maxpool2d_forward(x, size=size, stride=stride)
        return out, (x, cache[1].astype(int), size, stride)

    @staticmethod
    def maxpool_backward_loop(dout, cache):
        x, argmax, size, stride = cache
        return pool.maxpool2d_backward(dout, (x, argmax, (size, size), (stride, stride), (0, 0)))

    @staticmethod
    def avgpool_forward_loop(x, size=2, stride=None):
        """Lesson 6: out and the cache (x, size, stride), with int size and stride."""
        stride = size if stride is None else stride
        return pool.avgpool2d_forward(x, size=size, stride=stride)[0], (x, size, stride)

    @staticmethod
    def avgpool_backward_loop(dout, cache):
        x, size, stride = cache
        return pool.avgpool2d_backward(dout, (x, (size, size), (stride, stride)))

    @staticmethod
    def flatten_forward_F(x):
        """Lesson 7: Flatten in F order within each sample; the cache is x's shape."""
        x = np.asarray(x)
        cells = np.arange(x[0].size).reshape(x.shape[1:]).ravel(order="F")  # C position of each F position
        return flatten_mod.flatten_forward(x)[0][:, cells], x.shape

    @staticmethod
    def flatten_backward_F(dout, shape):
        cells = np.arange(int(np.prod(shape[1:]))).reshape(shape[1:]).ravel(order="F")
        flat = np.empty_like(dout)
        flat[:, cells] = dout
        return flatten_mod.flatten_backward(flat, shape)

    @staticmethod
    def permute_dense_weights(w, shape):
        """Lesson 7: w (C*H*W, M) for a C-order Flatten -> the rows for an F-order one."""
        return w[np.arange(w.shape[0]).reshape(shape).ravel(order="F")]

    @staticmethod
    def flatten_dense(x, w, b):
        """Lesson 7: dense(flatten(x)), (N, C, H, W) -> (N, M)."""
        return dense_mod.dense_forward(flatten_mod.flatten_forward(x)[0], w, b)[0]

    @staticmethod
    def port_dense_weights(w_nhwc, shape):
        """Lesson 7: dense weights after a channels-last Flatten -> after cnnlib's channels-first one."""
        C, H, W = shape
        return w_nhwc.reshape(H, W, C, -1).transpose(2, 0, 1, 3).reshape(w_nhwc.shape)


def _check_fn_only(name, kwargs):
    if kwargs:
        raise TypeError(f"check.{name}() got unexpected keyword argument(s) {sorted(kwargs)}; it takes fn only")


# ---- lesson 5: scatter_one ----

def _scatter_cases():
    settings = [  # (label, image (H, W), kernel (KH, KW), stride, pad)
        ("3x3 kernel, stride 1, pad 1", (6, 6), (3, 3), 1, 1),
        ("3x3 kernel, stride 1, pad 0", (5, 5), (3, 3), 1, 0),
        ("non-square image and kernel (7x5, 3x2), stride 2, pad 1", (7, 5), (3, 2), 2, 1),
        ("stride 3, pad 0: rows and columns 6-7 are never read", (8, 8), (3, 3), 3, 0),
        ("2x2 kernel, stride 2: windows do not overlap", (4, 6), (2, 2), 2, 0),
        ("3x3 kernel, stride 1, pad 2", (4, 5), (3, 3), 1, 2),
    ]
    for i, (label, hw, kernel, stride, pad) in enumerate(settings):
        rng = _rng(100 + i)
        out_hw = tuple((n + 2 * pad - k) // stride + 1 for n, k in zip(hw, kernel))
        yield label, {"args": (rng.standard_normal(out_hw), rng.standard_normal(kernel), stride, pad, hw),
                      "what": "dx"}


def scatter_one(fn=None, **kwargs):
    """Check lesson 5's fn(dout, w, stride, pad, shape) -> dx (H, W): one channel, one filter.

    dout (H', W') is the gradient of the output, w (KH, KW) the kernel, shape (H, W) the image's;
    every output (i, j) sends dout[i, j] * w back onto its window, and the padding is cut off.
    """
    _check_fn_only("scatter_one", kwargs)
    return _run("scatter_one", "fn(dout, w, stride, pad, shape) -> dx of shape `shape`", fn, _scatter_cases(),
                lambda d: d["args"], lambda d: reference.scatter_one(*d["args"]))


# ---- lesson 6: pool_output_size ----

def _pool_size_cases():
    settings = [  # (H, W, size, stride)
        (8, 8, 2, 2), (7, 5, 3, 2), (6, 7, 2, 1), (8, 7, 2, 3), (4, 4, 4, 1), (5, 9, 3, 3), (9, 6, 3, 2),
    ]
    for H, W, size, stride in settings:
        label = f"{H}x{W} map, size {size}, stride {stride}"
        yield label, {"args": (H, W, size, stride)}


def _judge_sizes(got, ref, data):
    if not (isinstance(got, tuple) and len(got) == 2):
        return f"should return (H', W'), two ints, got {type(got).__name__}"
    if not all(isinstance(g, (int, np.integer)) and not isinstance(g, bool) for g in got):
        kinds = ", ".join(type(g).__name__ for g in got)
        return f"should return two ints, got ({kinds}) {got}"
    if tuple(int(g) for g in got) != ref:
        return f"got {tuple(int(g) for g in got)}, expected {ref}"
    return None


def pool_output_size(fn=None, **kwargs):
    """Check lesson 6's fn(H, W, size, stride) -> (H', W'), the output size of a pooling layer."""
    _check_fn_only("pool_output_size", kwargs)

    return _run("pool_output_size", "fn(H, W, size, stride) -> (H', W')", fn, _pool_size_cases(),
                lambda d: d["args"], lambda d: reference.pool_output_size(*d["args"]), _judge_sizes)


# ---- lesson 7: the dense weights after a Flatten ----

_SHAPES = [  # (label, N, (C, H, W), M)
    ("(C, H, W) = (3, 4, 2), 5 outputs", 2, (3, 4, 2), 5),
    ("(C, H, W) = (2, 3, 5), 2 outputs, batch 1", 1, (2, 3, 5), 2),
    ("(C, H, W) = (4, 2, 3), 1 output", 3, (4, 2, 3), 1),
    ("one channel, (C, H, W) = (1, 3, 4), 3 outputs", 2, (1, 3, 4), 3),
    ("square maps, (C, H, W) = (2, 3, 3), 4 outputs", 2, (2, 3, 3), 4),
]


def _weight_cases(offset):
    for i, (label, N, shape, M) in enumerate(_SHAPES):
        rng = _rng(offset + i)
        D = int(np.prod(shape))
        yield label, {"arrays": {"x": rng.standard_normal((N, *shape)), "w": rng.standard_normal((D, M)),
                                 "b": rng.standard_normal(M)}, "shape": shape}


def permute_dense_weights(fn=None, **kwargs):
    """Check lesson 7's fn(w, shape) -> w_F: the dense weights for an F-order Flatten.

    w (C*H*W, M) are dense weights whose rows follow cnnlib's C-order Flatten of (C, H, W) = shape;
    w_F must give the same outputs after an F-order Flatten: row j of w_F is the row of the cell
    at F position j.
    """
    _check_fn_only("permute_dense_weights", kwargs)

    def judge(got, ref, d):
        problem = compare("w_F", got, ref, dtype=np.float64)
        if problem:
            x, w, b = (d["arrays"][k] for k in ("x", "w", "b"))
            f_flat = x.reshape(x.shape[0], -1, order="F")
            if isinstance(got, np.ndarray) and got.shape == w.shape:
                wrong = np.abs(f_flat @ got + b - (dense_mod.dense_forward(flatten_mod.flatten_forward(x)[0], w, b)[0]))
                problem += f"; an F-order Flatten with these weights is off by up to {wrong.max():.3g}"
        return problem

    return _run("permute_dense_weights", "fn(w, shape) -> w_F, the same rows in the F order of the cells", fn,
                _weight_cases(300), lambda d: (d["arrays"]["w"], d["shape"]),
                lambda d: reference.permute_dense_weights(d["arrays"]["w"], d["shape"]), judge)


def flatten_dense(fn=None, **kwargs):
    """Check lesson 7's fn(x, w, b) -> out: Flatten then dense in one contraction.

    x (N, C, H, W), w (C*H*W, M) with rows in cnnlib's C-order Flatten, b (M,); out (N, M) must be
    `x.reshape(N, -1) @ w + b`.
    """
    _check_fn_only("flatten_dense", kwargs)

    def args(d):
        return d["arrays"]["x"], d["arrays"]["w"], d["arrays"]["b"]

    return _run("flatten_dense", "fn(x, w, b) -> out (N, M), the same as dense(flatten(x))", fn,
                _weight_cases(400), args, lambda d: reference.flatten_dense(*args(d)),
                lambda got, ref, d: compare("out", got, ref, dtype=np.float64))


def port_dense_weights(fn=None, **kwargs):
    """Check lesson 7's fn(w_nhwc, shape) -> w_nchw: dense weights after a Flatten, NHWC to NCHW.

    w_nhwc (H*W*C, M) are the weights of a channels-last network, rows in the order of its flattened
    (H, W, C) maps; shape = (C, H, W). w_nchw must give the same outputs after cnnlib's Flatten of
    the same maps stored (C, H, W).
    """
    _check_fn_only("port_dense_weights", kwargs)

    return _run("port_dense_weights", "fn(w_nhwc, shape) -> w_nchw, shape = (C, H, W)", fn, _weight_cases(500),
                lambda d: (d["arrays"]["w"], d["shape"]),
                lambda d: reference.port_dense_weights(d["arrays"]["w"], d["shape"]),
                lambda got, ref, d: compare("w_nchw", got, ref, dtype=np.float64))
